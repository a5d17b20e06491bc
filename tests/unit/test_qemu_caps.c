/* The qemu capability cache answers for the binary it probed, and only for it: a changed binary is probed again. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "qemu_caps.h"
#include "test_helpers.h"

/* A stand-in qemu: `-device pvpanic-pci,help` exits with `status`; it counts its runs in DIR/runs. Replaced through
 * a new file and rename, as a package upgrade does. */
static void fake_qemu(const char *dir, const char *path, int status, bool liburing)
{
	char *tmp = xasprintf("%s.new", path);
	char *text = xasprintf("#!/bin/sh\n# %s\necho x >> %s/runs\nexit %d\n", liburing ? "liburing.so.2" : "plain", dir,
			       status);

	write_file_n(tmp, text, strlen(text));
	assert_int_equal(chmod(tmp, 0755), 0);
	assert_int_equal(rename(tmp, path), 0);
	free(text);
	free(tmp);
}

static int runs(const char *dir)
{
	char *p = xasprintf("%s/runs", dir), line[16];
	FILE *f = fopen(p, "r");
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	free(p);
	return n;
}

static char *only_entry(const char *cache)
{
	char *cmd = xasprintf("ls %s/qemu-*.caps", cache), path[4096] = "";
	FILE *f = popen(cmd, "r");

	assert_non_null(fgets(path, sizeof(path), f));
	pclose(f);
	free(cmd);
	path[strcspn(path, "\n")] = '\0';
	return xstrdup(path);
}

static void test_cache_follows_the_binary(void **state)
{
	char tmpl[] = "/tmp/vmlaunch-caps-XXXXXX", *dir = mkdtemp(tmpl);
	char *qemu = xasprintf("%s/qemu", dir), *cache = xasprintf("%s/cache/vmlaunch", dir), *entry, *cmd;
	struct qemu_caps caps;
	(void)state;

	fake_qemu(dir, qemu, 0, true);
	assert_int_equal(qemu_caps_get(qemu, cache, &caps), 0);
	assert_true(caps.pvpanic_pci);
	assert_true(caps.liburing);
	assert_int_equal(runs(dir), 1);
	assert_int_equal(qemu_caps_get(qemu, cache, &caps), 0); /* from the cache: qemu not run */
	assert_true(caps.pvpanic_pci);
	assert_int_equal(runs(dir), 1);

	fake_qemu(dir, qemu, 1, false); /* another binary at the same path */
	assert_int_equal(qemu_caps_get(qemu, cache, &caps), 0);
	assert_false(caps.pvpanic_pci);
	assert_false(caps.liburing);
	assert_int_equal(runs(dir), 2);
	assert_int_equal(qemu_caps_get(qemu, cache, &caps), 0);
	assert_false(caps.pvpanic_pci);
	assert_int_equal(runs(dir), 2);

	/* A corrupt entry is a miss: probed again and rewritten. */
	entry = only_entry(cache);
	write_file_n(entry, "v1 garbage\n", 11);
	assert_int_equal(qemu_caps_get(qemu, cache, &caps), 0);
	assert_false(caps.pvpanic_pci);
	assert_int_equal(runs(dir), 3);
	assert_int_equal(qemu_caps_get(qemu, cache, &caps), 0);
	assert_int_equal(runs(dir), 3);

	/* Without a usable cache dir the answer is the same, probed each time. */
	assert_int_equal(qemu_caps_get(qemu, "/proc/vmlaunch-no-cache", &caps), 0);
	assert_false(caps.pvpanic_pci);
	assert_int_equal(runs(dir), 4);

	cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(entry);
	free(cache);
	free(qemu);
}

static void test_cache_dir(void **state)
{
	char *d;
	(void)state;

	d = qemu_caps_cache_dir();
	assert_non_null(d);
	if (geteuid() == 0)
		assert_string_equal(d, "/var/cache/vmlaunch");
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_follows_the_binary),
		cmocka_unit_test(test_cache_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
