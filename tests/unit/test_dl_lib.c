/* The libraries vmlaunch loads on first use (dl_lib.h) stay out of the process until what needs them runs: describing
 * and planning a config (all --dry-run does) maps none of them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "curl_lib.h"
#include "dl_lib.h"
#include "mnl_lib.h"
#include "plan.h"
#include "rbd_lib.h"
#include "storage.h"
#include "test_helpers.h"

/* Describes and plans TEXT's one disk as --dry-run does, then asserts SONAME is still not mapped. */
static void plan_maps_nothing(const char *text, const char *soname)
{
	struct host_facts h = { .qemu_path = "/usr/bin/qemu-system-x86_64", .state_root = "/run/vmlaunch" };
	struct storage_target t = { 0 };
	struct vm_config cfg;
	struct plan p;
	char *err;

	h.kvm.verdict = KVM_PVM;
	assert_int_equal(load_text(text, NULL, &cfg, &err), 0);
	free(err);
	assert_int_equal(storage_describe(&(struct storage_context){ &cfg, "/run/vmlaunch/unit-test", NULL },
					  &cfg.disks[0], &t), 0);
	assert_int_equal(plan_build(&cfg, &h, &t, &(struct privileges){ 0 }, &(struct run_request){ 0 }, &p), 0);
	assert_false(library_mapped(soname));
	plan_free(&p);
	storage_target_free(&t);
	config_free(&cfg);
}

#define PLAIN "[boot]\nkernel = vmlinux\ninitrd = initrd\n[disk d]\nbackend = tmpfs\nsize = 64M\n"

static void test_rbd_loaded_only_when_used(void **state)
{
	const char *why = NULL;
	(void)state;

	plan_maps_nothing(PLAIN, "librbd.so");
	assert_false(library_mapped("librados.so"));
	/* what the rbd backend does first: without a cluster, loading is all that can be shown */
	assert_int_equal(rbd_lib_load(&why), 0);
	assert_true(library_mapped("librbd.so"));
	assert_true(library_mapped("librados.so"));
	assert_non_null(rbd_lib.rados_create2);
	assert_non_null(rbd_lib.rbd_snap_remove);
	assert_int_equal(rbd_lib_load(&why), 0); /* once */
}

static void test_curl_loaded_only_when_used(void **state)
{
	const char *why = NULL;
	(void)state;

	/* a URL whose image is not cached: describing and planning load nothing */
	plan_maps_nothing(PLAIN "source = https://example.invalid/image.raw\nsource-sha256 = "
			  "0000000000000000000000000000000000000000000000000000000000000000\n",
			  "libcurl");
	/* what a download does first */
	assert_int_equal(curl_lib_load(&why), 0);
	assert_true(library_mapped("libcurl.so.4"));
	assert_non_null(curl_lib.curl_easy_perform);
	assert_int_equal(curl_lib_load(&why), 0);
}

static void test_mnl_loaded_only_for_a_tap(void **state)
{
	const char *why = NULL;
	(void)state;

	plan_maps_nothing(PLAIN "[net user]\nmode = user\n", "libmnl.so");
	/* what tap_open and the tap-remove undo do first */
	assert_int_equal(mnl_lib_load(&why), 0);
	assert_true(library_mapped("libmnl.so"));
	assert_non_null(mnl_lib.mnl_socket_open);
	assert_non_null(mnl_lib.mnl_cb_run);
	assert_int_equal(mnl_lib_load(&why), 0);
}

/* A library that is not there, or lacks a function: -ELIBACC, a message naming it and its package, and no table
 * marked ready (the next call tries again rather than call through a half-filled one). */
static void test_load_failures_are_said_and_retried(void **state)
{
	struct dl_lib absent = { .soname = "libvmlaunch-absent.so.9", .package = "no-such-package" };
	struct dl_lib libc_ = { .soname = "libc.so.6", .package = "libc6" };
	const char *const names[] = { "getpid", "vmlaunch_no_such_function" };
	void *first = NULL, *second = NULL;
	void **const slots[] = { &first, &second };
	const char *why = NULL;
	(void)state;

	assert_int_equal(dl_lib_load(&absent, names, slots, 1, &why), -ELIBACC);
	assert_non_null(strstr(why, "libvmlaunch-absent.so.9"));
	assert_non_null(strstr(why, "apt-get install no-such-package"));
	assert_false(absent.ready);

	assert_int_equal(dl_lib_load(&libc_, names, slots, 2, &why), -ELIBACC);
	assert_non_null(strstr(why, "vmlaunch_no_such_function"));
	assert_non_null(first); /* getpid resolved before the missing one */
	assert_false(libc_.ready);
	assert_int_equal(dl_lib_load(&libc_, names, slots, 2, &why), -ELIBACC); /* still not ready */
	assert_int_equal(dl_lib_load(&libc_, names, slots, 1, &why), 0);
	assert_true(libc_.ready);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rbd_loaded_only_when_used),
		cmocka_unit_test(test_curl_loaded_only_when_used),
		cmocka_unit_test(test_mnl_loaded_only_for_a_tap),
		cmocka_unit_test(test_load_failures_are_said_and_retried),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
