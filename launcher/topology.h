/* The host's NUMA nodes, their CPUs (online and allowed to us), free memory and hugepage pools, and SMT siblings. */
#ifndef VMLAUNCH_TOPOLOGY_H
#define VMLAUNCH_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpulist.h"

enum { HP_2M, HP_1G, HP_SIZES };

struct topology_node {
	unsigned id;
	struct cpulist cpus; /* online CPUs of the node that vmlaunch may use (its own affinity, e.g. a cgroup cpuset) */
	uint64_t mem_free;
	uint64_t hp_total[HP_SIZES], hp_free[HP_SIZES];
};

struct topology {
	bool numa; /* libnuma is used: nodes are real; otherwise one pseudo-node 0 and the global hugepage pool */
	struct topology_node *nodes;
	size_t n_nodes;
	unsigned *core_of; /* core_of[cpu]: the lowest CPU among its SMT siblings; indexed up to max_cpu */
	unsigned max_cpu;
};

/* libnuma is loaded only where more than one node is online; with one node (or a kernel without NUMA) the host is
 * one pseudo-node 0 with the global hugepage pool, which is that node's. */
int topology_probe(struct topology *t);
/* The same with the choice made by the caller: LIBNUMA asks libnuma even on one node (a test compares both). */
int topology_probe_using(struct topology *t, bool libnuma);
void topology_free(struct topology *t);
const char *hugepage_size_name(int size); /* "2M", "1G" */
unsigned long hugepage_size_kib(int size);

#endif
