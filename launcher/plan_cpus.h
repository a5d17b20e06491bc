/* Choosing the host node and CPUs for vCPUs, iothreads and qemu's other threads: a pure decision over a topology. */
#ifndef VMLAUNCH_PLAN_CPUS_H
#define VMLAUNCH_PLAN_CPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cpulist.h"
#include "topology.h"

struct cpu_plan {
	bool pinned;
	int node;                 /* host node for the vCPUs and guest RAM; -1: none chosen */
	struct cpulist vcpu;      /* vcpu.cpu[i] is the host CPU of vCPU i */
	struct cpulist *iothread; /* the CPUs of each iothread */
	size_t n_iothreads;
	struct cpulist emulator;  /* every other qemu thread (main loop, RCU, workers) */
	char *why;
};

/* pin = auto picks a node with the CPUs and the free memory (or free hugepages) for guest RAM. Returns 0, or -EINVAL
 * after logging a config error (file:line) for an explicit list the host cannot honour. */
int plan_cpus(const struct vm_config *cfg, const struct topology *topo, size_t n_iothreads, struct cpu_plan *out);
void cpu_plan_free(struct cpu_plan *p);

#endif
