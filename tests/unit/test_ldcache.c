/* The dynamic loader's cache is read as ld.so reads it: exact sonames of this process's ABI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ldcache.h"

static void test_ldcache(void **state)
{
	(void)state;
	assert_true(ldcache_has(LDCACHE_FILE, "libc.so.6"));
	assert_false(ldcache_has(LDCACHE_FILE, "libc.so"));      /* a prefix is not a match */
	assert_false(ldcache_has(LDCACHE_FILE, "libvmlaunch-none.so.1"));
	assert_false(ldcache_has("/nonexistent/ld.so.cache", "libc.so.6"));
	assert_false(ldcache_has("/etc/hostname", "libc.so.6")); /* not a cache */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ldcache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
