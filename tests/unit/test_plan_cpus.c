/* CPU placement on synthetic topologies: one node, two nodes, too few CPUs, SMT siblings, explicit lists. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan_cpus.h"
#include "test_helpers.h"

/* nodes[i] = "first-last" CPU ranges; smt: CPU c and c + n_cpus/2 are siblings (as Linux numbers them on x86) */
static void make_topo(struct topology *t, const char *const *node_cpus, size_t n_nodes, unsigned n_cpus, bool smt,
		      uint64_t mem_free)
{
	memset(t, 0, sizeof(*t));
	t->numa = n_nodes > 1;
	t->n_nodes = n_nodes;
	t->nodes = xcalloc(n_nodes, sizeof(*t->nodes));
	t->max_cpu = n_cpus - 1;
	t->core_of = xcalloc(n_cpus, sizeof(*t->core_of));
	for (unsigned c = 0; c < n_cpus; c++)
		t->core_of[c] = smt && c >= n_cpus / 2 ? c - n_cpus / 2 : c;
	for (size_t i = 0; i < n_nodes; i++) {
		t->nodes[i].id = (unsigned)i;
		assert_int_equal(cpulist_parse(node_cpus[i], &t->nodes[i].cpus), 0);
		t->nodes[i].mem_free = mem_free;
	}
}

/* What config.c makes of [cpu] pin = PIN (auto, off or a list). */
static void set_pin(struct vm_config *c, const char *pin)
{
	cpulist_free(&c->pin_cpus);
	c->pin = !strcmp(pin, "auto") ? PIN_AUTO : !strcmp(pin, "off") ? PIN_OFF : PIN_LIST;
	if (c->pin == PIN_LIST)
		assert_int_equal(cpulist_parse(pin, &c->pin_cpus), 0);
}

/* A list the test sets, or an empty one for NULL. */
static void set_list(struct cpulist *l, const char *cpus)
{
	cpulist_free(l);
	if (cpus)
		assert_int_equal(cpulist_parse(cpus, l), 0);
}

static struct vm_config cfg_with(unsigned cpus, const char *pin)
{
	struct vm_config c = { 0 };

	c.file = "t.conf";
	c.cpus = cpus;
	c.memory = 1ULL << 30;
	c.host_node = HOST_NODE_AUTO;
	set_pin(&c, pin);
	return c;
}

static char *fmt(const struct cpulist *l)
{
	return cpulist_format(l->cpu, l->n);
}

#define ASSERT_LIST(list, want)                                                                                        \
	do {                                                                                                           \
		char *got_ = fmt(list);                                                                                \
		assert_string_equal(got_, want);                                                                      \
		free(got_);                                                                                           \
	} while (0)

static void test_one_node(void **state)
{
	struct topology t;
	struct vm_config c = cfg_with(2, "auto");
	struct cpu_plan p;
	(void)state;

	make_topo(&t, (const char *const[]){ "0-7" }, 1, 8, false, 8ULL << 30);
	assert_int_equal(plan_cpus(&c, &t, 2, &p), 0);
	assert_true(p.pinned);
	assert_int_equal(p.node, 0);
	assert_int_equal(p.vcpu.cpu[0], 0);
	assert_int_equal(p.vcpu.cpu[1], 1);
	ASSERT_LIST(&p.iothread[0], "2"); /* each iothread its own CPU */
	ASSERT_LIST(&p.iothread[1], "3");
	ASSERT_LIST(&p.emulator, "4-7");
	cpu_plan_free(&p);
	topology_free(&t);
}

static void test_two_nodes_picks_one_that_fits(void **state)
{
	struct topology t;
	struct vm_config c = cfg_with(3, "auto");
	struct cpu_plan p;
	(void)state;

	/* node 0 has 2 CPUs, node 1 has 4: three vCPUs fit only on node 1, and never span nodes */
	make_topo(&t, (const char *const[]){ "0-1", "2-5" }, 2, 6, false, 8ULL << 30);
	assert_int_equal(plan_cpus(&c, &t, 1, &p), 0);
	assert_true(p.pinned);
	assert_int_equal(p.node, 1);
	ASSERT_LIST(&p.vcpu, "2-4");
	ASSERT_LIST(&p.iothread[0], "5");
	ASSERT_LIST(&p.emulator, "5"); /* nothing left: shares the iothread's CPU */
	cpu_plan_free(&p);

	/* not enough memory on node 1: node 0 cannot hold 3 vCPUs either, so no pinning */
	t.nodes[1].mem_free = 1ULL << 20;
	assert_int_equal(plan_cpus(&c, &t, 1, &p), 0);
	assert_false(p.pinned);
	assert_non_null(strstr(p.why, "not pinning"));
	cpu_plan_free(&p);
	topology_free(&t);
}

static void test_too_few_cpus_never_doubles_vcpus(void **state)
{
	struct topology t;
	struct vm_config c = cfg_with(4, "auto");
	struct cpu_plan p;
	(void)state;

	make_topo(&t, (const char *const[]){ "0-1" }, 1, 2, false, 8ULL << 30);
	assert_int_equal(plan_cpus(&c, &t, 1, &p), 0);
	assert_false(p.pinned);
	cpu_plan_free(&p);

	/* exactly enough for the vCPUs: iothreads and emulator float over the node */
	c = cfg_with(2, "auto");
	assert_int_equal(plan_cpus(&c, &t, 2, &p), 0);
	assert_true(p.pinned);
	ASSERT_LIST(&p.vcpu, "0-1");
	ASSERT_LIST(&p.iothread[0], "0-1");
	ASSERT_LIST(&p.emulator, "0-1");
	cpu_plan_free(&p);

	/* one CPU left for three iothreads: they share it */
	topology_free(&t);
	make_topo(&t, (const char *const[]){ "0-2" }, 1, 3, false, 8ULL << 30);
	assert_int_equal(plan_cpus(&c, &t, 3, &p), 0);
	ASSERT_LIST(&p.iothread[0], "2");
	ASSERT_LIST(&p.iothread[2], "2");
	ASSERT_LIST(&p.emulator, "2");
	cpu_plan_free(&p);
	topology_free(&t);
}

static void test_smt_siblings_last(void **state)
{
	struct topology t;
	struct vm_config c = cfg_with(4, "auto");
	struct cpu_plan p;
	(void)state;

	/* 4 cores × 2 threads: CPUs 0-3 are first threads, 4-7 their siblings; 4 vCPUs get 4 whole cores */
	make_topo(&t, (const char *const[]){ "0-7" }, 1, 8, true, 8ULL << 30);
	assert_int_equal(plan_cpus(&c, &t, 1, &p), 0);
	ASSERT_LIST(&p.vcpu, "0-3");
	ASSERT_LIST(&p.iothread[0], "4");
	ASSERT_LIST(&p.emulator, "5-7");
	cpu_plan_free(&p);
	topology_free(&t);
}

static void test_explicit_lists(void **state)
{
	struct topology t;
	struct vm_config c = cfg_with(2, "3,1");
	struct cpu_plan p;
	(void)state;

	make_topo(&t, (const char *const[]){ "0-3" }, 1, 4, false, 8ULL << 30);
	assert_int_equal(plan_cpus(&c, &t, 2, &p), 0);
	assert_int_equal(p.vcpu.cpu[0], 3); /* order kept: vCPU 0 on CPU 3 */
	assert_int_equal(p.vcpu.cpu[1], 1);
	ASSERT_LIST(&p.emulator, "0,2");
	cpu_plan_free(&p);

	set_list(&c.pin_iothreads, "2");
	set_list(&c.pin_emulator, "0");
	assert_int_equal(plan_cpus(&c, &t, 2, &p), 0);
	ASSERT_LIST(&p.iothread[0], "2");
	ASSERT_LIST(&p.iothread[1], "2");
	ASSERT_LIST(&p.emulator, "0");
	cpu_plan_free(&p);

	set_pin(&c, "3,9"); /* not on this host */
	set_list(&c.pin_iothreads, NULL);
	set_list(&c.pin_emulator, NULL);
	assert_int_equal(plan_cpus(&c, &t, 2, &p), -EINVAL);
	cpu_plan_free(&p);

	set_pin(&c, "off");
	assert_int_equal(plan_cpus(&c, &t, 2, &p), 0);
	assert_false(p.pinned);
	cpu_plan_free(&p);
	cpulist_free(&c.pin_cpus);
	topology_free(&t);
}

static void test_cpulist(void **state)
{
	struct cpulist l;
	char *s;
	(void)state;

	assert_int_equal(cpulist_parse("0-3,6,8-9", &l), 0);
	assert_int_equal(l.n, 7);
	s = cpulist_format(l.cpu, l.n);
	assert_string_equal(s, "0-3,6,8-9");
	free(s);
	cpulist_free(&l);
	const char *bad[] = { "", "3-1", "a", "1,", "1--2", "99999", NULL };
	for (const char **b = bad; *b; b++)
		assert_int_equal(cpulist_parse(*b, &l), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_node),	   cmocka_unit_test(test_two_nodes_picks_one_that_fits),
		cmocka_unit_test(test_too_few_cpus_never_doubles_vcpus), cmocka_unit_test(test_smt_siblings_last),
		cmocka_unit_test(test_explicit_lists),  cmocka_unit_test(test_cpulist),
	};
	return cmocka_run_group_tests_name("plan_cpus", tests, NULL, NULL);
}
