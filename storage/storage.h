/* The storage backend interface: each backend checks a [disk] section, describes what qemu will open, and acquires it. */
#ifndef VMLAUNCH_STORAGE_H
#define VMLAUNCH_STORAGE_H

#include <stdbool.h>

#include "config.h"
#include "strv.h"

struct journal;
struct host_facts;
struct populate_source;

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
	bool zeroed;             /* a fresh disk that reads as zeros: filling it may skip the source's holes */
	bool keep_contents;      /* an existing persistent volume: never overwritten from source = */
	char *volume;            /* lvm: the LV's name */
	bool create;             /* describe found the volume missing: prepare creates it */
	bool create_pool;        /* lvm: ... and its thin pool */
	bool activate;           /* lvm: an existing, inactive volume to activate (and deactivate at exit) */
	struct populate_source *source; /* source = IMAGE, probed before anything is touched */
	/* rbd: qemu's rbd driver opens the image itself (no raw layer); the cephx key reaches qemu only through
	 * rbd_key_file (0600, in the state dir) as -object secret, never on its command line */
	char *rbd_pool, *rbd_image, *rbd_namespace, *rbd_conf, *rbd_user, *rbd_key_file;
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

/* The backend's describe, then the source image's probe and size check: everything that can be refused is refused
 * here, before the host is touched. -EINVAL for bad input. */
int storage_describe(const struct vm_config *cfg, const struct disk_config *disk, const struct host_facts *host,
		     const char *state_dir, struct storage_target *out);
/* The backend's prepare, then filling the disk from its source. */
int storage_prepare(const struct vm_config *cfg, const struct disk_config *disk, struct storage_target *target,
		    struct journal *journal);
void storage_target_free(struct storage_target *t);

extern const struct storage_backend storage_file, storage_tmpfs, storage_zram, storage_brd, storage_lvm, storage_rbd;

/* Undo actions the journal replays (journal.c dispatches to them). */
int zram_remove(const char *id);
int brd_unload(const char *unused);
int brd_discard_undo(const char *dev);
void brd_modprobe_argv(unsigned count, unsigned long long max_bytes, struct strv *out);
int lvm_remove(const char *vg_slash_lv);
int lvm_deactivate(const char *vg_slash_lv);
/* key=value lines (pool, namespace, image, conf, user, keyring, ms-mode): everything needed to reconnect and remove
 * an image vmlaunch created or cloned; see storage/rbd.c. */
int rbd_remove_undo(const char *spec);

/* LVM command vectors, pure, exposed for unit tests. */
char *lvm_default_lv_name(const char *vm, const char *disk);
void lvm_create_argv(const char *vg, const char *lv, unsigned long long bytes, const char *thin_pool, struct strv *out);
void lvm_create_pool_argv(const char *vg, const char *pool, unsigned long long bytes, struct strv *out);
void lvm_readahead_off_argv(const char *vg, const char *lv, struct strv *out);

#endif
