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

	lvm_create_argv("vg0", "vmlaunch-web-root", 1ULL << 30, NULL, NULL, &v);
	s = joined(&v);
	assert_string_equal(s, "lvcreate|--yes|--wipesignatures|y|--size|1073741824b|--name|vmlaunch-web-root|vg0");
	free(s);

	lvm_create_argv("vg0", "thin1", 20ULL << 30, "pool", NULL, &v);
	s = joined(&v);
	assert_string_equal(s, "lvcreate|--yes|--wipesignatures|y|--virtualsize|21474836480b|--thin|--name|thin1|vg0/pool");
	free(s);

	/* seed 001: 4 MiB chunks, zeroing off */
	lvm_create_pool_argv("vg0", "pool", 100ULL << 30, NULL, &v);
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

/* An ephemeral volume carries its VM's tag from lvcreate on; the lvm-remove undo removes only a volume that lists
 * it exactly, so a forged record naming the host's volumes or another VM's does nothing. */
static void test_lvm_owner_tag(void **state)
{
	struct strv v = STRV_INIT;
	char *tag = lvm_owner_tag("/run/vmlaunch/web"), *s;
	(void)state;

	assert_string_equal(tag, "vmlaunch=/run/vmlaunch/web");
	assert_true(lvm_tag_valid(tag));
	assert_false(lvm_tag_valid("vmlaunch=/tmp/a b"));
	assert_false(lvm_tag_valid(""));
	lvm_create_argv("vg0", "vmlaunch-web-root", 1ULL << 30, NULL, tag, &v);
	s = joined(&v);
	assert_string_equal(s, "lvcreate|--yes|--wipesignatures|y|--addtag|vmlaunch=/run/vmlaunch/web|--size|1073741824b|"
			       "--name|vmlaunch-web-root|vg0");
	free(s);
	lvm_create_pool_argv("vg0", "pool", 1ULL << 30, tag, &v);
	s = joined(&v);
	assert_string_equal(s, "lvcreate|--yes|--addtag|vmlaunch=/run/vmlaunch/web|--type|thin-pool|--chunksize|4M|"
			       "--zero|n|--size|1073741824b|--name|pool|vg0");
	free(s);

	assert_true(lvm_tags_include("  vmlaunch=/run/vmlaunch/web\n", tag));
	assert_true(lvm_tags_include("  backup,vmlaunch=/run/vmlaunch/web,x  \n", tag));
	/* no tags, another VM's, a longer or shorter one, and one across a line break are not this VM's */
	assert_false(lvm_tags_include("  \n", tag));
	assert_false(lvm_tags_include("", tag));
	assert_false(lvm_tags_include("  vmlaunch=/run/vmlaunch/webserver\n", tag));
	assert_false(lvm_tags_include("  vmlaunch=/run/vmlaunch/we\n", tag));
	assert_false(lvm_tags_include("  vmlaunch=/run/vmlaunch/other,web\n", tag));
	assert_false(lvm_tags_include("  vmlaunch=/run/vm\nlaunch/web\n", tag));
	free(tag);
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
		cmocka_unit_test(test_lvm_owner_tag),
		cmocka_unit_test(test_brd_vector),
	};
	return cmocka_run_group_tests_name("storage_commands", tests, NULL, NULL);
}
