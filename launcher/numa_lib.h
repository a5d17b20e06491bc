/* libnuma, loaded only on a host with more than one NUMA node: on one node it tells nothing that sysfs and
 * sched_getaffinity do not, and its constructor's /proc and sysfs reads cost every start (--dry-run too) ~0.5 ms. */
#ifndef VMLAUNCH_NUMA_LIB_H
#define VMLAUNCH_NUMA_LIB_H

#include <numa.h>

#include "dl_lib.h"

/* Every libnuma function vmlaunch calls; the header still gives their types. numa_free_cpumask is an inline
 * wrapper of numa_bitmask_free in numa.h, so the table has the latter. */
#define NUMA_LIB_FUNCTIONS(X)                                                                                          \
	X(numa_available) X(numa_max_node) X(numa_allocate_cpumask) X(numa_bitmask_free) X(numa_node_to_cpus)         \
	X(numa_node_size64) X(numa_bitmask_isbitset)

DL_LIB_DECLARE(numa, NUMA_LIB_FUNCTIONS)

#endif
