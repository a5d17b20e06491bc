/* Plan → qemu's argv, a pure function: the only place that knows qemu's option syntax. Golden-tested. */
#ifndef VMLAUNCH_QEMU_ARGV_H
#define VMLAUNCH_QEMU_ARGV_H

#include "plan.h"
#include "strv.h"

struct argv_group {
	size_t start, end; /* argv[start..end) */
	char *why;
};

struct qemu_cmdline {
	struct strv argv;
	struct argv_group *groups;
	size_t n_groups;
};

void qemu_argv_build(const struct plan *p, struct qemu_cmdline *out);
void qemu_cmdline_free(struct qemu_cmdline *c);

/* "a,b" → "a,,b": a value inside qemu's key=value,... options. Exposed for tests. */
char *qemu_opt_escape(const char *value);

#endif
