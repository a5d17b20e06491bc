/* The command vectors the brd and LVM backends run, checked here because this host's kernel has neither. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage.h"
#include "test_helpers.h"

static char *joined(struct strv *v)
{
	char *s = xstrdup(""), *t;

	for (size_t i = 0; i < v->n; i++) {
		t = xasprintf("%s%s%s", s, i ? "|" : "", v->v[i]);
		free(s);
		s = t;
	}
	strv_free(v);
	return s;
}

static void test_lvm_vectors(void **state)
{
	struct strv v = STRV_INIT;
	char *s;
	(void)state;

	lvm_create_argv("vg0", "vmlaunch-web-root", 1ULL << 30, NULL, &v);
	s = joined(&v);
	assert_string_equal(s, "lvcreate|--yes|--wipesignatures|y|--size|1073741824b|--name|vmlaunch-web-root|vg0");
	free(s);

	lvm_create_argv("vg0", "thin1", 20ULL << 30, "pool", &v);
	s = joined(&v);
	assert_string_equal(s, "lvcreate|--yes|--wipesignatures|y|--virtualsize|21474836480b|--thin|--name|thin1|vg0/pool");
	free(s);

	/* seed 001: 4 MiB chunks, zeroing off */
	lvm_create_pool_argv("vg0", "pool", 100ULL << 30, &v);
	s = joined(&v);
	assert_string_equal(s, "lvcreate|--yes|--type|thin-pool|--chunksize|4M|--zero|n|--size|107374182400b|--name|pool|vg0");
	free(s);

	lvm_readahead_off_argv("vg0", "lv", &v);
	s = joined(&v);
	assert_string_equal(s, "lvchange|--readahead|none|vg0/lv");
	free(s);

	s = lvm_default_lv_name("web", "root");
	assert_string_equal(s, "vmlaunch-web-root");
	free(s);
}

static void test_brd_vector(void **state)
{
	struct strv v = STRV_INIT;
	char *s;
	(void)state;

	/* rd_size is in KiB, rounded up; one device per brd disk, sized for the largest */
	brd_modprobe_argv(2, (1ULL << 30) + 1, &v);
	s = joined(&v);
	assert_string_equal(s, "modprobe|brd|rd_nr=2|rd_size=1048577|max_part=0");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lvm_vectors),
		cmocka_unit_test(test_brd_vector),
	};
	return cmocka_run_group_tests_name("storage_commands", tests, NULL, NULL);
}
