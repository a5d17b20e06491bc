/* Who qemu runs as: the dedicated user by default as root, root only when written, a clear refusal when missing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "privileges.h"
#include "test_helpers.h"

static void test_root_defaults_to_the_dedicated_user(void **state)
{
	struct privileges pv;
	(void)state;

	/* "nobody" stands in for the default user: it exists everywhere */
	assert_int_equal(privileges_resolve(NULL, "nobody", 0, &pv), 0);
	assert_true(pv.switch_user);
	assert_int_not_equal(pv.uid, 0);
	assert_string_equal(pv.user, "nobody");
	privileges_free(&pv);
}

static void test_missing_default_user_is_refused(void **state)
{
	struct privileges pv;
	(void)state;

	assert_int_equal(privileges_resolve(NULL, "vmlaunch-no-such-user", 0, &pv), -ENOENT);
	assert_false(pv.switch_user);
}

static void test_root_only_when_written(void **state)
{
	struct privileges pv;
	(void)state;

	assert_int_equal(privileges_resolve("root", "vmlaunch-no-such-user", 0, &pv), 0);
	assert_false(pv.switch_user);
	/* not root: qemu runs as vmlaunch's own user unless one is named */
	assert_int_equal(privileges_resolve(NULL, "vmlaunch-no-such-user", 1000, &pv), 0);
	assert_false(pv.switch_user);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_defaults_to_the_dedicated_user),
		cmocka_unit_test(test_missing_default_user_is_refused),
		cmocka_unit_test(test_root_only_when_written),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
