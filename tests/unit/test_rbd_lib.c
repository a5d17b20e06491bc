/* librbd and librados stay out of the process until the rbd backend loads them: a config without an RBD disk never
 * pays for their ~30 libraries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"
#include "rbd_lib.h"
#include "storage.h"
#include "test_helpers.h"

static void test_loaded_only_when_used(void **state)
{
	struct host_facts h = { .qemu_path = "/usr/bin/qemu-system-x86_64", .state_root = "/run/vmlaunch" };
	struct storage_target t = { 0 };
	struct vm_config cfg;
	struct plan p;
	char *err;
	const char *why = NULL;
	(void)state;

	h.kvm.verdict = KVM_PVM;
	assert_int_equal(load_text("[boot]\nkernel = vmlinux\ninitrd = initrd\n[disk d]\nbackend = tmpfs\nsize = 64M\n",
				   NULL, &cfg, &err), 0);
	free(err);
	assert_int_equal(storage_describe(&(struct storage_context){ &cfg, "/run/vmlaunch/unit-test", NULL }, &cfg.disks[0], &t), 0);
	assert_int_equal(plan_build(&cfg, &h, &t, &(struct privileges){ 0 }, &(struct run_request){ 0 }, &p), 0);
	assert_false(library_mapped("librbd.so"));
	assert_false(library_mapped("librados.so"));

	/* What the rbd backend does first: without a cluster, loading is all that can be shown. */
	assert_int_equal(rbd_lib_load(&why), 0);
	assert_true(library_mapped("librbd.so"));
	assert_true(library_mapped("librados.so"));
	assert_non_null(rbd_lib.rados_create2);
	assert_non_null(rbd_lib.rbd_watchers_list_cleanup);
	assert_int_equal(rbd_lib_load(&why), 0); /* once */

	plan_free(&p);
	storage_target_free(&t);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loaded_only_when_used),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
