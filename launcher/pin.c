/* Thread ids from query-cpus-fast and query-iothreads, everything else in /proc/PID/task → sched_setaffinity. */
#define _GNU_SOURCE
#include "pin.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strv.h"

static int set_affinity(pid_t tid, const struct cpulist *l, const char *what)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (size_t i = 0; i < l->n; i++)
		if (l->cpu[i] < CPU_SETSIZE)
			CPU_SET(l->cpu[i], &set);
	if (sched_setaffinity(tid, sizeof(set), &set) < 0) {
		if (errno == ESRCH)
			return 0; /* a short-lived worker thread that already ended */
		return log_errno(errno, "cannot pin %s (thread %d)", what, (int)tid);
	}
	if (log_verbose) {
		char *cpus = cpulist_format(l->cpu, l->n);

		log_info("pinning: %s (thread %d) on host CPUs %s", what, (int)tid, cpus);
		free(cpus);
	}
	return 0;
}

int pin_threads(struct qmp *q, pid_t qemu, const struct plan *p)
{
	const struct cpu_plan *cp = &p->cpus;
	struct json_object *cpus = NULL, *iothreads = NULL;
	char *task_dir;
	DIR *d;
	struct dirent *e;
	int r;

	if (!cp->pinned)
		return 0;
	/* Everything first goes to the emulator set, so threads qemu starts later inherit it from their creator. */
	task_dir = xasprintf("/proc/%d/task", (int)qemu);
	d = opendir(task_dir);
	free(task_dir);
	if (!d)
		return log_errno(errno, "cannot list qemu's threads");
	r = 0;
	while ((e = readdir(d)) && r == 0)
		if (e->d_name[0] != '.')
			r = set_affinity((pid_t)atoi(e->d_name), &cp->emulator, "an emulator thread");
	closedir(d);
	if (r < 0)
		return r;

	r = qmp_execute(q, "query-cpus-fast", NULL, &cpus, 10000);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < json_object_array_length(cpus); i++) {
		struct json_object *c = json_object_array_get_idx(cpus, i), *idx, *tid;
		int index;

		if (!json_object_object_get_ex(c, "cpu-index", &idx) || !json_object_object_get_ex(c, "thread-id", &tid))
			continue;
		index = json_object_get_int(idx);
		if (index < 0 || (size_t)index >= cp->vcpu.n)
			continue;
		r = set_affinity(json_object_get_int(tid), &(struct cpulist){ &cp->vcpu.cpu[index], 1 }, "a vCPU");
	}
	json_object_put(cpus);
	if (r < 0)
		return r;

	r = qmp_execute(q, "query-iothreads", NULL, &iothreads, 10000);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < json_object_array_length(iothreads); i++) {
		struct json_object *t = json_object_array_get_idx(iothreads, i), *id, *tid;

		if (!json_object_object_get_ex(t, "id", &id) || !json_object_object_get_ex(t, "thread-id", &tid))
			continue;
		for (size_t k = 0; k < p->n_disks && k < cp->n_iothreads; k++)
			if (!strcmp(p->disks[k].iothread, json_object_get_string(id)))
				r = set_affinity(json_object_get_int(tid), &cp->iothread[k], "an iothread");
	}
	json_object_put(iothreads);
	return r;
}
