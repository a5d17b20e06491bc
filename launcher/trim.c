/* Start-up code (config parsing, planning, the probes) stays mapped after use and counts in RSS for the VM's whole
 * life: a waiter drops those mappings' pages once and keeps only what its loop touches again. */
#define _GNU_SOURCE
#include "trim.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

void trim_resident(void)
{
	struct { unsigned long start, end; } code[64];
	size_t n = 0;
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];

	if (!f)
		return;
	while (n < sizeof(code) / sizeof(code[0]) && fgets(line, sizeof(line), f)) {
		char perms[5], path[2];

		/* Only read-only, executable, file-backed mappings: their pages are the file's, never written (no text
		 * relocations), so dropping them loses nothing. Writable or relocated (RELRO) pages hold this process's
		 * own data and are left alone. */
		if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %1s", &code[n].start, &code[n].end, perms, path) == 4 &&
		    !strcmp(perms, "r-xp") && path[0] == '/')
			n++;
	}
	fclose(f);
	malloc_trim(0);
	/* Last, in one go: anything called after this faults its code back in. */
	for (size_t i = 0; i < n; i++)
		madvise((void *)code[i].start, code[i].end - code[i].start, MADV_DONTNEED);
}
