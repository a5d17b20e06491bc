/* The storage backend interface: a table of backends (storage.c), each describing, acquiring and undoing one kind of
 * disk. A backend sees only its [disk] section, the journal (it registers its own undo verbs), the command runner and
 * the log; what qemu gets is data in struct storage_target, which launcher/qemu_argv.c alone turns into arguments. */
#ifndef VMLAUNCH_STORAGE_H
#define VMLAUNCH_STORAGE_H

#include <stdbool.h>

#include "config.h"
#include "strv.h"

struct journal;
struct populate_source;
struct privileges;

/* The qemu protocol driver of a disk's bottom node. */
enum storage_driver { DRIVER_FILE, DRIVER_HOST_DEVICE, DRIVER_RBD };
static inline const char *storage_driver_name(enum storage_driver d)
{
	return d == DRIVER_RBD ? "rbd" : d == DRIVER_HOST_DEVICE ? "host_device" : "file";
}

/* Where a disk is described and acquired: the VM (its name, config file and other disks) and its state dir, which
 * does not exist yet while describing. */
struct storage_context {
	const struct vm_config *cfg;
	const char *state_dir;
	const struct privileges *helper_user; /* who parses a source image (qemu's user); NULL: vmlaunch's own */
};

/* What qemu opens for one disk. Filled by `describe` before anything on the host is touched (so --dry-run shows the
 * real command line), completed by `prepare` (zram learns its device there). */
struct storage_target {
	const struct storage_backend *backend;
	enum storage_driver driver;
	char *filename;          /* file/host_device: what the driver opens; rbd: "rbd:POOL/IMAGE", for messages */
	struct strv driver_opts; /* more KEY, VALUE pairs of the protocol node, in order (rbd: pool, image, conf, user) */
	char *secret_file;       /* a key qemu reads from this 0600 file (-object secret), never from its command line */
	struct strv qemu_opens;  /* files vmlaunch made in the state dir that qemu reads by path (a key, a ceph conf):
				  * readable, not writable, by qemu's group; never a device or a file outside the state dir */
	char *backing;           /* the image an ephemeral overlay stands on (qemu as another user gets it as an fd) */
	enum disk_format backing_format;
	enum storage_driver backing_driver;
	enum disk_format format; /* the format layer above it; raw means none: the device sits on the protocol node */
	bool direct_ok;          /* O_DIRECT works on the target (probed, not assumed) */
	bool ephemeral;          /* thrown away at exit: flushes buy nothing */
	bool readonly;
	bool ram_backed;         /* lives in host RAM: the page cache would only hold a second copy */
	bool zeroed;             /* a fresh disk that reads as zeros: filling it may skip the source's holes */
	bool keep_contents;      /* an existing persistent volume: never overwritten from source = */
	bool filled_elsewhere;   /* set before describe: a snapshot restore makes the disk from its frozen image, so
				  * source = is neither probed nor copied, and clone-from = not read */
	struct populate_source *source; /* source = IMAGE, probed before anything is touched */
	void *priv;              /* the backend's own state from describe to prepare */
};

struct storage_backend {
	/* Read-only checks and probes; fills the target. Errors name the config line; -EINVAL for bad input. */
	int (*describe)(const struct storage_context *ctx, const struct disk_config *disk, struct storage_target *out);
	/* Acquires the disk; records each undo in the journal before the acquisition it undoes. */
	int (*prepare)(const struct storage_context *ctx, const struct disk_config *disk, struct storage_target *target,
		       struct journal *journal);
	void (*free_priv)(void *priv); /* NULL: free() */
};

/* The backend's describe, then the source image's probe and size check: everything that can be refused is refused
 * here, before the host is touched. -EINVAL for bad input. */
int storage_describe(const struct storage_context *ctx, const struct disk_config *disk, struct storage_target *out);
struct privileges;
/* source = URL: the image into the download cache (download.h), before anything else is set up, so a failed
 * download leaves nothing behind; the transfer runs as qemu's user (pv). 0 for a local source. */
int storage_download(const struct disk_config *disk, bool progress, const struct privileges *pv);
/* The backend's prepare, then filling the disk from its source. */
int storage_prepare(const struct storage_context *ctx, const struct disk_config *disk, struct storage_target *target,
		    struct journal *journal);
void storage_target_free(struct storage_target *t);

/* Pure command vectors, exposed for unit tests. */
void brd_modprobe_argv(unsigned count, unsigned long long max_bytes, struct strv *out);
char *lvm_default_lv_name(const char *vm, const char *disk);
/* tag: "--addtag TAG" (NULL: none), what the lvm-remove undo asks of a volume before removing it. */
void lvm_create_argv(const char *vg, const char *lv, unsigned long long bytes, const char *thin_pool, const char *tag,
		     struct strv *out);
void lvm_create_pool_argv(const char *vg, const char *pool, unsigned long long bytes, const char *tag,
			  struct strv *out);
/* The tag of volumes vmlaunch removes at exit: "vmlaunch=STATE_DIR", one VM's own. */
char *lvm_owner_tag(const char *state_dir);
bool lvm_tag_valid(const char *tag);
/* Whether `lvs --noheadings -o lv_tags` output lists TAG exactly (not as a prefix of another). */
bool lvm_tags_include(const char *lv_tags, const char *tag);
void lvm_readahead_off_argv(const char *vg, const char *lv, struct strv *out);

#endif
