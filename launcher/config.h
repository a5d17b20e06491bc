/* The config file (INI, parsed by libinih) as a validated, typed struct vm_config; every error names file:line. */
#ifndef VMLAUNCH_CONFIG_H
#define VMLAUNCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strv.h"

enum accel_choice { ACCEL_AUTO, ACCEL_KVM, ACCEL_TCG };
enum disk_format { FORMAT_RAW, FORMAT_QCOW2 };
/* auto: the backend's fastest correct default; safe: flushes always honoured; unsafe: flushes ignored. */
enum cache_choice { CACHE_AUTO, CACHE_SAFE, CACHE_UNSAFE };
enum backend_kind { BACKEND_FILE, BACKEND_TMPFS, BACKEND_ZRAM, BACKEND_BRD, BACKEND_LVM, BACKEND_COUNT };

#define DISK_NAME_MAX 20 /* the disk name is the virtio serial, which holds 20 bytes */
#define VM_NAME_MAX 64
/* The `line` of a value that came from --set rather than the file. */
#define CONFIG_LINE_SET 0xffffffffu

struct disk_config {
	char *name;
	unsigned line; /* the [disk NAME] header */

	enum backend_kind backend;
	unsigned backend_line;
	uint64_t size; /* 0 = not given */
	unsigned size_line;
	char *path; /* file backend: the image, resolved against the config's directory */
	unsigned path_line;
	char *source; /* populate from this image before boot */
	unsigned source_line;
	char *source_format; /* NULL: detected by qemu-img */
	unsigned source_format_line;
	char *comp_algorithm; /* zram */
	unsigned comp_algorithm_line;
	char *vg; /* lvm: the volume group */
	unsigned vg_line;
	char *lv; /* lvm: the logical volume (default vmlaunch-VMNAME-DISK) */
	unsigned lv_line;
	char *thin_pool; /* lvm: a thin pool in vg; created (chunk 4M, no zeroing) when missing */
	unsigned thin_pool_line;
	uint64_t thin_pool_size;
	unsigned thin_pool_size_line;
	enum disk_format format;
	unsigned format_line;
	bool ephemeral;
	unsigned ephemeral_line;
	bool readonly;
	unsigned readonly_line;
	enum cache_choice cache;
	unsigned cache_line;
};

struct vm_config {
	char *file; /* as the user named it: the prefix of every message */
	char *dir;  /* relative paths in the file are relative to this */

	char *name;
	unsigned name_line;
	unsigned cpus;
	unsigned cpus_line;
	uint64_t memory;
	unsigned memory_line;
	enum accel_choice accel;
	unsigned accel_line;
	char *machine;
	unsigned machine_line;
	char *console_log; /* NULL: the serial console is on stdio */
	unsigned console_log_line;
	unsigned shutdown_timeout; /* seconds between system_powerdown and quit */
	unsigned shutdown_timeout_line;

	char *kernel;
	unsigned kernel_line;
	char *initrd;
	unsigned initrd_line;
	char *append; /* NULL or the user's words for the kernel command line */
	unsigned append_line;

	char *qemu_binary;
	unsigned qemu_binary_line;
	struct strv qemu_extra;
	unsigned qemu_extra_line;

	struct disk_config *disks;
	size_t n_disks;
};

/* Parses and validates FILE, then applies each "section.key=value" of `sets` (--set) on top.
 * Returns 0, or -EINVAL after printing one "vmlaunch: FILE:LINE: ..." message; -errno if FILE cannot be read. */
int config_load(const char *file, const struct strv *sets, struct vm_config *out);
void config_free(struct vm_config *cfg);

/* "512M", "2G", "1T", "64K", also "512MiB": bytes. Returns 0 or -EINVAL. Exposed for tests. */
int config_parse_size(const char *s, uint64_t *out);

const char *backend_kind_name(enum backend_kind b);

/* Every key the parser accepts, for the documentation test: "section.key" strings, NULL-terminated. */
extern const char *const config_known_keys[];

#endif
