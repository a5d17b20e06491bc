/* What a qemu binary can do, learned once per binary and cached: a probe starts a whole qemu (~30 ms). */
#ifndef VMLAUNCH_QEMU_CAPS_H
#define VMLAUNCH_QEMU_CAPS_H

#include <stdbool.h>

struct qemu_caps {
	bool pvpanic_pci; /* `-device pvpanic-pci,help` succeeds */
	bool liburing;    /* linked with liburing: aio=io_uring exists in this build */
};

/* /var/cache/vmlaunch as root, else $XDG_CACHE_HOME/vmlaunch (default ~/.cache/vmlaunch); NULL when neither can be
 * named. */
char *qemu_caps_cache_dir(void);

/* The capabilities of the qemu at the absolute path `qemu`, from the entry in `cache_dir` when the binary's path,
 * size, mtime, inode and ctime still match it, else probed and the entry (re)written atomically. A cache that cannot
 * be read or written only costs the probe. Returns 0, or -errno when the binary cannot be run (logged). */
int qemu_caps_get(const char *qemu, const char *cache_dir, struct qemu_caps *out);

#endif
