/* Disk population: fills a freshly prepared RAM/LVM/file disk from a base image before the guest boots. */
#ifndef VMLAUNCH_POPULATE_H
#define VMLAUNCH_POPULATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "populate_types.h"

/* Read-only, and no parser runs: a raw image's size is its file's; a qcow2's virtual size and whether it names another
 * file (a backing file, an external data file) are read from its header; other formats are learned by qemu-img info,
 * as qemu's user, before the copy. `format` NULL means qcow2 when the file starts with qcow2's magic, else raw; a
 * qcow2 asked as raw, or a file without the magic asked as qcow2, is refused. An image that names another file is
 * refused unless allow_external. Returns 0 or negative errno after logging. */
int populate_probe(const char *path, const char *format, bool allow_external, struct populate_source *out);
void populate_source_free(struct populate_source *s);

/* Copies source -> target. Refuses (clear error, nothing written) when the source's virtual size exceeds the target,
 * when the target is neither a regular file nor a block device, or when it is the source itself. A block device is
 * opened O_EXCL, so a mounted or otherwise claimed device is refused rather than overwritten.
 * raw: copies the source's data extents only (SEEK_DATA/SEEK_HOLE): through io_uring with O_DIRECT writes where the
 *      target takes them, with pread/pwrite into tmpfs (see populate_tuning); fdatasync at the end.
 * other formats: `qemu-img convert -n -O raw -W -m 8` as sb->as over NBD (image_convert.c); --target-is-zero only
 *      when the target is zeroed.
 * progress: when true (callers pass isatty(2)), one progress line on stderr, updated at most 10 times a second. */
int populate_copy(struct populate_source *src, const struct populate_target *dst, const struct populate_sandbox *sb,
		  bool progress);

/* A raw copy of FROM (a file or a block device) onto TO, byte for byte, without probing FROM's format (a qcow2
 * overlay is copied as the file it is): the same sparse-aware copy as populate_copy's raw path, and on a target that
 * reads as zeros, a block read as all zeros is not written (a block device source has no holes to seek; its unwritten
 * blocks read as zeros). Flags: */
enum {
	POPULATE_RAW_CREATE = 1, /* TO is made anew as a regular file (0600, truncated) of FROM's length */
	POPULATE_RAW_ZEROED = 2, /* TO exists and reads as zeros (a fresh tmpfs file, zram or brd device): holes and
				    zero blocks are skipped; without it, what FROM does not cover is zeroed */
};
int populate_copy_raw(const char *from, const char *to, unsigned flags);

/* How the raw copy runs. The defaults were chosen with tests/bench/populate_bench (numbers in tests/bench/README.md);
 * the benchmark and the tests change them, nothing else should. */
enum populate_engine {
	POPULATE_ENGINE_AUTO,  /* pread/pwrite into tmpfs files, io_uring everywhere else */
	POPULATE_ENGINE_URING, /* io_uring for every target */
	POPULATE_ENGINE_SYNC,  /* pread/pwrite, the path also taken when io_uring is unavailable */
};

struct populate_tuning {
	enum populate_engine engine;
	unsigned queue_depth; /* io_uring: buffers in flight */
	size_t buffer_size;   /* bytes per buffer: a multiple of 4096 */
	bool direct;          /* try O_DIRECT on block devices and on files outside tmpfs */
};
extern struct populate_tuning populate_tuning;

#endif
