/* Plan → qemu's argv, a pure function: the only place that knows qemu's option syntax. Golden-tested. */
#ifndef VMLAUNCH_QEMU_ARGV_H
#define VMLAUNCH_QEMU_ARGV_H

#include "plan.h"
#include "strv.h"

struct argv_group {
	size_t start, end; /* argv[start..end) */
	char *why;
};

/* What vmlaunch opens for qemu when qemu runs as another user: it never gets a path to open itself, so no host device
 * or file changes owner. run.c opens each (as root) and puts it on fd QEMU_FD_EXTRA + p->n_extra_fds + its
 * index. */
struct qemu_fd {
	char *path;
	int flags;    /* open(2) flags: the access mode is what qemu's fdset matches (O_RDONLY for read-only disks) */
	bool connect; /* a unix socket to connect to (virtiofsd's), not a file to open */
};

struct qemu_cmdline {
	struct strv argv;
	struct argv_group *groups;
	size_t n_groups;
	struct qemu_fd *fds;
	size_t n_fds;
};

void qemu_argv_build(const struct plan *p, struct qemu_cmdline *out);
void qemu_cmdline_free(struct qemu_cmdline *c);

/* "a,b" → "a,,b": a value inside qemu's key=value,... options. Exposed for tests. */
char *qemu_opt_escape(const char *value);

#endif
