/* The types of disk population (a source image, a target disk, where helpers run), apart from its functions: what
 * image_convert.c needs of them without depending on populate.c, which calls it. */
#ifndef VMLAUNCH_POPULATE_TYPES_H
#define VMLAUNCH_POPULATE_TYPES_H

#include <stdbool.h>
#include <stdint.h>

struct populate_source {
	char *path;
	char *format;          /* "raw", "qcow2", ... as qemu-img names it */
	uint64_t virtual_size; /* bytes the guest sees; 0 until qemu-img info for formats other than raw and qcow2 */
	bool allow_external;   /* source-backing = allow: qemu-img (as qemu's user) may open the files it names */
};

struct populate_target {
	const char *path; /* a regular file (e.g. on tmpfs) or a block device (zram, brd, LVM LV) */
	uint64_t size;    /* the disk's size */
	bool zeroed;      /* freshly created and reads as zeros (tmpfs file, new zram/brd): holes can be skipped.
	                     false (e.g. a new LV that may hold an old volume's data): holes and the tail beyond the
	                     source are zeroed, so no other volume's data stays visible to the guest */
};

struct journal;
struct privileges;
/* Where filling from a non-raw image runs its helpers (image_convert.c): qemu-nbd's sockets in `dir` (root's: the
 * state dir), every helper's kill and file recorded in `journal`, qemu-img as `as` (qemu's user; NULL: vmlaunch's). */
struct populate_sandbox {
	const char *dir;
	struct journal *journal;
	const struct privileges *as;
};

#endif
