/* libnuma stays out of the process on a host with one NUMA node, and what sysfs and sched_getaffinity give there is
 * what libnuma gives. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test_helpers.h"
#include "topology.h"

/* The host's own answer, read here independently of topology.c: "0" is one node; no file, a kernel without NUMA. */
static bool host_one_node(void)
{
	char buf[64] = "";
	FILE *f = fopen("/sys/devices/system/node/online", "re");

	if (!f)
		return true;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strcmp(buf, "0\n") == 0;
}

static void test_libnuma_loaded_only_with_several_nodes(void **state)
{
	struct topology t;
	(void)state;

	assert_false(library_mapped("libnuma.so"));
	assert_int_equal(topology_probe(&t), 0);
	if (host_one_node()) {
		assert_false(t.numa);
		assert_false(library_mapped("libnuma.so"));
		assert_int_equal(t.n_nodes, 1);
	} else {
		assert_true(t.numa);
		assert_true(library_mapped("libnuma.so"));
	}
	assert_true(t.nodes[0].cpus.n > 0);
	topology_free(&t);
}

static uint64_t diff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* Forced through libnuma, the host's nodes together hold exactly the CPUs and the hugepages of the one pseudo-node. */
static void test_libnuma_and_sysfs_agree(void **state)
{
	struct topology plain, numa;
	uint64_t mem = 0, hp[HP_SIZES] = { 0 };
	size_t cpus = 0;
	char *seen;
	(void)state;

	if (access("/sys/devices/system/node/node0", F_OK) < 0)
		skip(); /* a kernel without NUMA: libnuma has nothing to say */
	assert_int_equal(topology_probe_using(&plain, false), 0);
	assert_int_equal(topology_probe_using(&numa, true), 0);
	assert_true(library_mapped("libnuma.so"));
	assert_true(numa.numa);
	assert_false(plain.numa);
	assert_int_equal(plain.n_nodes, 1);
	assert_int_equal(plain.max_cpu, numa.max_cpu);
	assert_memory_equal(plain.core_of, numa.core_of, (plain.max_cpu + 1) * sizeof(*plain.core_of));
	/* as sets: several nodes may interleave their CPU numbers (node 0: 0,2,..., node 1: 1,3,...) */
	seen = calloc(plain.max_cpu + 1, 1);
	for (size_t c = 0; c < plain.nodes[0].cpus.n; c++)
		seen[plain.nodes[0].cpus.cpu[c]] = 1;
	for (size_t i = 0; i < numa.n_nodes; i++) {
		for (size_t c = 0; c < numa.nodes[i].cpus.n; c++) {
			assert_int_equal(seen[numa.nodes[i].cpus.cpu[c]], 1); /* the pseudo-node's, and not seen twice */
			seen[numa.nodes[i].cpus.cpu[c]] = 2;
		}
		cpus += numa.nodes[i].cpus.n;
		mem += numa.nodes[i].mem_free;
		for (int s = 0; s < HP_SIZES; s++)
			hp[s] += numa.nodes[i].hp_total[s];
	}
	assert_int_equal(cpus, plain.nodes[0].cpus.n);
	for (int s = 0; s < HP_SIZES; s++)
		assert_int_equal(hp[s], plain.nodes[0].hp_total[s]);
	/* both are MemFree, read a moment apart */
	assert_true(diff(mem, plain.nodes[0].mem_free) < plain.nodes[0].mem_free / 10);
	free(seen);
	topology_free(&plain);
	topology_free(&numa);
}

int main(void)
{
	/* in this order: the first asks whether libnuma was loaded, the second loads it */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libnuma_loaded_only_with_several_nodes),
		cmocka_unit_test(test_libnuma_and_sysfs_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
