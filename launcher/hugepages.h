/* Reserving hugepages for guest RAM through sysfs, per NUMA node, and giving back exactly what was added. */
#ifndef VMLAUNCH_HUGEPAGES_H
#define VMLAUNCH_HUGEPAGES_H

#include <stdbool.h>
#include <stdint.h>

struct journal;

/* Makes at least `pages` pages of `size` (HP_2M/HP_1G) free on `node` (the global pool when !numa), counting pages
 * already free; marks the state dir with what it adds (ownership.h) and records its intent in the journal before it
 * writes. Not enough memory: an error, and nothing stays reserved. */
int hugepages_reserve(bool numa, unsigned node, int size, uint64_t pages, const char *state_dir, struct journal *j);

#endif
