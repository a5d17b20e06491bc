/* Host CPU lists in the kernel's syntax ("0-3,6"): parsing (order kept: pin = 3,1 puts vCPU 0 on CPU 3) and printing. */
#ifndef VMLAUNCH_CPULIST_H
#define VMLAUNCH_CPULIST_H

#include <stddef.h>

#define CPULIST_MAX_CPU 4095

struct cpulist {
	unsigned *cpu;
	size_t n;
};

/* Returns 0 or -EINVAL (empty, malformed, a reversed range, a CPU above CPULIST_MAX_CPU). */
int cpulist_parse(const char *s, struct cpulist *out);
/* Sorted and compressed: {3,0,1,2,6} → "0-3,6". */
char *cpulist_format(const unsigned *cpus, size_t n);
void cpulist_free(struct cpulist *l);

#endif
