/* Checks the host probes that parse text: which /proc/cpuinfo says the TSC is invariant. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "host.h"

static bool invariant(const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	bool r;

	assert_non_null(f);
	r = host_cpuinfo_tsc_invariant(f);
	fclose(f);
	return r;
}

static void test_invariant_tsc_needs_both_flags(void **state)
{
	(void)state;
	assert_true(invariant("processor\t: 0\nflags\t\t: fpu tsc constant_tsc rep_good nonstop_tsc cpuid\n"));
	/* constant rate, but it stops in deep C-states */
	assert_false(invariant("processor\t: 0\nflags\t\t: fpu tsc constant_tsc rep_good cpuid\n"));
	assert_false(invariant("processor\t: 0\nflags\t\t: fpu tsc nonstop_tsc\n"));
	/* whole words only, and the last word counts too */
	assert_false(invariant("flags\t\t: xconstant_tsc nonstop_tscx\n"));
	assert_true(invariant("flags\t\t: nonstop_tsc constant_tsc"));
	/* "bugs" or "vmx flags" lines never count, nor a file without flags */
	assert_false(invariant("vmx flags\t: constant_tsc nonstop_tsc\nbugs\t\t: constant_tsc nonstop_tsc\n"));
	assert_false(invariant(""));
}

static void test_only_the_first_cpu_is_read(void **state)
{
	(void)state;
	assert_false(invariant("flags\t\t: fpu tsc\n\nflags\t\t: constant_tsc nonstop_tsc\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invariant_tsc_needs_both_flags),
		cmocka_unit_test(test_only_the_first_cpu_is_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
