/* Reads the host's CPU and memory topology through sysfs, and libnuma where there is more than one node; read-only. */
#define _GNU_SOURCE
#include "topology.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "numa_lib.h"
#include "strv.h"

const char *hugepage_size_name(int size)
{
	return size == HP_1G ? "1G" : "2M";
}

unsigned long hugepage_size_kib(int size)
{
	return size == HP_1G ? 1048576UL : 2048UL;
}

static uint64_t read_u64(const char *path)
{
	unsigned long long v = 0;
	FILE *f = fopen(path, "re");

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void read_hugepages(struct topology_node *n, bool numa)
{
	for (int s = 0; s < HP_SIZES; s++) {
		char *base = numa ? xasprintf("/sys/devices/system/node/node%u/hugepages/hugepages-%lukB", n->id,
					       hugepage_size_kib(s))
				  : xasprintf("/sys/kernel/mm/hugepages/hugepages-%lukB", hugepage_size_kib(s));
		char *total = xasprintf("%s/nr_hugepages", base), *free_ = xasprintf("%s/free_hugepages", base);

		n->hp_total[s] = read_u64(total);
		n->hp_free[s] = read_u64(free_);
		free(base);
		free(total);
		free(free_);
	}
}

static unsigned sibling_core(unsigned cpu)
{
	char *path = xasprintf("/sys/devices/system/cpu/cpu%u/topology/thread_siblings_list", cpu);
	char buf[256];
	struct cpulist l;
	unsigned core = cpu;

	if (read_first_line(path, buf, sizeof(buf)) && cpulist_parse(buf, &l) == 0) {
		for (size_t i = 0; i < l.n; i++)
			if (l.cpu[i] < core)
				core = l.cpu[i];
		cpulist_free(&l);
	}
	free(path);
	return core;
}

/* More than one node online. A kernel without NUMA has no such file; one node reads "0". */
static bool several_nodes(void)
{
	char buf[64];

	return read_first_line("/sys/devices/system/node/online", buf, sizeof(buf)) && strcmp(buf, "0\n") != 0;
}

/* libnuma works (loaded, and the kernel answers its calls); a host that should have it and cannot load it is said. */
static bool libnuma_usable(void)
{
	const char *why;

	if (numa_lib_load(&why) < 0) {
		log_warn("%s; CPUs and memory are placed as if the host had one NUMA node", why);
		return false;
	}
	return numa_lib.numa_available() >= 0;
}

int topology_probe(struct topology *t)
{
	return topology_probe_using(t, several_nodes());
}

int topology_probe_using(struct topology *t, bool libnuma)
{
	cpu_set_t allowed;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	int max_node;

	memset(t, 0, sizeof(*t));
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return log_errno(errno, "sched_getaffinity");
	t->max_cpu = ncpu > 0 ? (unsigned)ncpu - 1 : 0;
	t->core_of = xcalloc(t->max_cpu + 1, sizeof(*t->core_of));
	for (unsigned c = 0; c <= t->max_cpu; c++)
		t->core_of[c] = sibling_core(c);

	t->numa = libnuma && libnuma_usable();
	max_node = t->numa ? numa_lib.numa_max_node() : 0;
	t->nodes = xcalloc((size_t)max_node + 1, sizeof(*t->nodes));
	for (int node = 0; node <= max_node; node++) {
		struct topology_node *n = &t->nodes[t->n_nodes];
		struct bitmask *mask = t->numa ? numa_lib.numa_allocate_cpumask() : NULL;
		long long free_bytes = 0;

		n->id = (unsigned)node;
		if (t->numa && (numa_lib.numa_node_to_cpus(node, mask) < 0 ||
				numa_lib.numa_node_size64(node, &free_bytes) < 0)) {
			numa_lib.numa_bitmask_free(mask);
			continue; /* a hole in the node numbering */
		}
		n->mem_free = free_bytes > 0 ? (uint64_t)free_bytes : 0;
		if (!t->numa) {
			long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);

			n->mem_free = pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
		}
		for (unsigned c = 0; c <= t->max_cpu && c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &allowed) && (!mask || numa_lib.numa_bitmask_isbitset(mask, c))) {
				n->cpus.cpu = xrealloc(n->cpus.cpu, (n->cpus.n + 1) * sizeof(unsigned));
				n->cpus.cpu[n->cpus.n++] = c;
			}
		if (mask)
			numa_lib.numa_bitmask_free(mask);
		read_hugepages(n, t->numa);
		t->n_nodes++;
	}
	return 0;
}

void topology_free(struct topology *t)
{
	for (size_t i = 0; i < t->n_nodes; i++)
		cpulist_free(&t->nodes[i].cpus);
	free(t->nodes);
	free(t->core_of);
	memset(t, 0, sizeof(*t));
}
