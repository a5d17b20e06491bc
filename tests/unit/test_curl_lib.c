/* libcurl stays out of the process until a source = URL needs it: a config with local images (or a --dry-run of one
 * with a URL) never pays for its libraries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "curl_lib.h"
#include "plan.h"
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
	/* a URL whose image is not cached: describing and planning (what --dry-run does) load nothing */
	assert_int_equal(load_text("[boot]\nkernel = vmlinux\ninitrd = initrd\n[disk d]\nbackend = tmpfs\nsize = 64M\n"
				   "source = https://example.invalid/image.raw\nsource-sha256 = "
				   "0000000000000000000000000000000000000000000000000000000000000000\n",
				   NULL, &cfg, &err), 0);
	free(err);
	assert_int_equal(storage_describe(&(struct storage_context){ &cfg, "/run/vmlaunch/unit-test", NULL },
					  &cfg.disks[0], &t), 0);
	assert_null(t.source);
	assert_int_equal(plan_build(&cfg, &h, &t, &(struct privileges){ 0 }, &(struct run_request){ 0 }, &p), 0);
	assert_false(library_mapped("libcurl"));

	/* what a download does first */
	assert_int_equal(curl_lib_load(&why), 0);
	assert_true(library_mapped("libcurl.so.4"));
	assert_non_null(curl_lib.curl_easy_perform);
	assert_int_equal(curl_lib_load(&why), 0); /* once */

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
