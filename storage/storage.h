/* The storage backend interface: each backend checks a [disk] section, describes what qemu will open, and acquires it. */
#ifndef VMLAUNCH_STORAGE_H
#define VMLAUNCH_STORAGE_H

#include <stdbool.h>

#include "config.h"

struct journal;
struct host_facts;

/* What qemu opens for one disk. Filled by `describe` before anything on the host is touched (so --dry-run shows the
 * real command line), completed by `prepare`. qemu_argv.c alone turns it into -blockdev/-device arguments. */
struct storage_target {
	const char *driver;      /* qemu protocol driver: "file", "host_device" */
	char *filename;          /* what that driver opens */
	enum disk_format format; /* the format layer above it; raw means none: the device sits on the protocol node */
	bool direct_ok;          /* O_DIRECT works on the target (probed, not assumed) */
	bool ephemeral;          /* thrown away at exit: flushes buy nothing */
	bool readonly;
	bool ram_backed;         /* lives in host RAM: the page cache would only hold a second copy */
	char *overlay_base;      /* file backend, ephemeral: the image the qcow2 overlay in `filename` stands on */
	enum disk_format overlay_base_format;
};

struct storage_backend {
	const char *name;
	/* Read-only checks and probes; fills the target. Errors name the config line; -EINVAL for bad input. */
	int (*describe)(const struct vm_config *cfg, const struct disk_config *disk, const struct host_facts *host,
			const char *state_dir, struct storage_target *out);
	/* Acquires the disk; registers each undo in the journal right after the acquisition it undoes. */
	int (*prepare)(const struct vm_config *cfg, const struct disk_config *disk, struct storage_target *target,
		       struct journal *journal);
};

const struct storage_backend *storage_backend_for(enum backend_kind kind);
void storage_target_free(struct storage_target *t);

extern const struct storage_backend storage_file, storage_tmpfs;

#endif
