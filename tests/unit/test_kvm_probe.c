/* Checks the KVM probe against fake sysfs roots and against this host's real /dev/kvm. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvm_probe.h"

#define REAL_SYSFS "/sys"
#define REAL_KVM "/dev/kvm"
#define NO_SUCH_DEVICE "/nonexistent-vmlaunch-test/kvm"
/* Short, because on a host where the loop hangs this is what the test pays; a working KVM needs microseconds. */
#define TIMEOUT_MS 100u

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static bool host_is_pvm(void)
{
	return path_exists(REAL_SYSFS "/module/kvm_pvm");
}

/* Skips unless this host's /dev/kvm can be opened; says why, so a skip is never silent. */
static void require_kvm_device(void)
{
	int fd = open(REAL_KVM, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		print_message("skipping: cannot open %s: %s\n", REAL_KVM, strerror(errno));
		skip();
	}
	close(fd);
}

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

struct fake_sysfs {
	char root[64];
	bool with_pvm;
};

static int fake_sysfs_setup(void **state, bool with_pvm)
{
	struct fake_sysfs *fs = calloc(1, sizeof(*fs));
	char path[128];

	if (!fs)
		return -1;
	strcpy(fs->root, "/tmp/test_kvm_probe.XXXXXX");
	if (!mkdtemp(fs->root))
		return -1;
	snprintf(path, sizeof(path), "%s/module", fs->root);
	if (mkdir(path, 0755) < 0)
		return -1;
	if (with_pvm) {
		snprintf(path, sizeof(path), "%s/module/kvm_pvm", fs->root);
		if (mkdir(path, 0755) < 0)
			return -1;
	}
	fs->with_pvm = with_pvm;
	*state = fs;
	return 0;
}

static int fake_sysfs_with_pvm(void **state)
{
	return fake_sysfs_setup(state, true);
}

static int fake_sysfs_without_pvm(void **state)
{
	return fake_sysfs_setup(state, false);
}

static int fake_sysfs_teardown(void **state)
{
	struct fake_sysfs *fs = *state;
	char path[128];

	if (fs->with_pvm) {
		snprintf(path, sizeof(path), "%s/module/kvm_pvm", fs->root);
		rmdir(path);
	}
	snprintf(path, sizeof(path), "%s/module", fs->root);
	rmdir(path);
	rmdir(fs->root);
	free(fs);
	return 0;
}

/* The device path does not exist: had the probe looked at it, the verdict would be KVM_ABSENT. */
static void test_pvm_module_decides_without_touching_the_device(void **state)
{
	struct fake_sysfs *fs = *state;
	struct kvm_probe_result result;
	double start = now_ms();

	assert_int_equal(kvm_probe(fs->root, NO_SUCH_DEVICE, TIMEOUT_MS, &result), 0);
	assert_int_equal(result.verdict, KVM_PVM);
	assert_non_null(strstr(result.reason, "kvm_pvm"));
	assert_non_null(strstr(result.reason, "TCG"));
	assert_true(now_ms() - start < 10);
	print_message("reason: %s\n", result.reason);
}

static void test_missing_device_is_absent(void **state)
{
	struct fake_sysfs *fs = *state;
	struct kvm_probe_result result;

	assert_int_equal(kvm_probe(fs->root, NO_SUCH_DEVICE, TIMEOUT_MS, &result), 0);
	assert_int_equal(result.verdict, KVM_ABSENT);
	assert_non_null(strstr(result.reason, NO_SUCH_DEVICE));
	print_message("reason: %s\n", result.reason);
}

/* A file that opens but is no KVM device must not be mistaken for one. */
static void test_non_kvm_device_is_broken(void **state)
{
	struct fake_sysfs *fs = *state;
	struct kvm_probe_result result;

	assert_int_equal(kvm_probe(fs->root, "/dev/null", TIMEOUT_MS, &result), 0);
	assert_int_equal(result.verdict, KVM_BROKEN);
	assert_non_null(strstr(result.reason, "KVM_GET_API_VERSION"));
	print_message("reason: %s\n", result.reason);
}

static void test_invalid_arguments(void **state)
{
	struct kvm_probe_result result;

	(void) state;
	assert_int_equal(kvm_probe(NULL, REAL_KVM, TIMEOUT_MS, &result), -EINVAL);
	assert_int_equal(result.verdict, KVM_BROKEN);
	assert_int_equal(kvm_probe(REAL_SYSFS, REAL_KVM, 0, &result), -EINVAL);
	assert_int_equal(kvm_probe(REAL_SYSFS, REAL_KVM, TIMEOUT_MS, NULL), -EINVAL);
	assert_int_equal(kvm_probe_long_mode(REAL_KVM, 0), -EINVAL);
	assert_int_equal(kvm_probe_real_mode(NO_SUCH_DEVICE, TIMEOUT_MS), -ENOENT);
}

static void test_real_mode_guest_runs(void **state)
{
	double start, elapsed;

	(void) state;
	require_kvm_device();
	start = now_ms();
	assert_int_equal(kvm_probe_real_mode(REAL_KVM, TIMEOUT_MS), 0);
	elapsed = now_ms() - start;
	print_message("real-mode probe: %.3f ms\n", elapsed);
	/* Only the run is bounded by the timeout; creating the VM is not, and is slow under emulation. */
	assert_true(elapsed < 2 * TIMEOUT_MS + 200);
}

static void test_long_mode_guest_finishes_or_times_out_in_time(void **state)
{
	double start, elapsed;
	int r;

	(void) state;
	require_kvm_device();
	start = now_ms();
	r = kvm_probe_long_mode(REAL_KVM, TIMEOUT_MS);
	elapsed = now_ms() - start;
	print_message("long-mode probe: %s after %.3f ms (timeout %u ms)\n", r == 0 ? "completed" : strerror(-r),
		      elapsed, TIMEOUT_MS);
	assert_true(r == 0 || r == -ETIMEDOUT);
	/* Measured on this kvm_pvm host: the 64-bit guest never makes progress. */
	if (host_is_pvm())
		assert_int_equal(r, -ETIMEDOUT);
	if (r == -ETIMEDOUT)
		assert_true(elapsed >= TIMEOUT_MS);
	assert_true(elapsed < 2 * TIMEOUT_MS + 200);
}

/* The probe runs inside a program that later uses signalfd: it must leave signals and fds as it found them. */
static void test_probe_leaves_no_signal_state_or_fds(void **state)
{
	sigset_t mask_before, mask_after, pending;
	struct sigaction before[NSIG], after;
	int fds_before;

	(void) state;
	require_kvm_device();
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
		assert_int_equal(sigaction(s, NULL, &before[s]), 0);
	assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &mask_before), 0);
	fds_before = count_open_fds();

	assert_int_equal(kvm_probe_real_mode(REAL_KVM, TIMEOUT_MS), 0);
	assert_true(kvm_probe_long_mode(REAL_KVM, TIMEOUT_MS) <= 0);

	assert_int_equal(count_open_fds(), fds_before);
	assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &mask_after), 0);
	for (int s = 1; s < NSIG; s++)
		assert_int_equal(sigismember(&mask_before, s), sigismember(&mask_after, s));
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++) {
		assert_int_equal(sigaction(s, NULL, &after), 0);
		assert_ptr_equal(after.sa_handler, before[s].sa_handler);
		assert_int_equal(after.sa_flags, before[s].sa_flags);
	}
	assert_int_equal(sigpending(&pending), 0);
	for (int s = 1; s < NSIG; s++)
		assert_false(sigismember(&pending, s));
}

/* A caller that blocks and waits for SIGRTMAX itself (as with signalfd) keeps it: the probe picks another signal. */
static void test_probe_avoids_a_signal_the_caller_blocks(void **state)
{
	sigset_t only, old, pending;
	const struct timespec zero = { 0 };
	int r;

	(void) state;
	require_kvm_device();
	sigemptyset(&only);
	sigaddset(&only, SIGRTMAX);
	assert_int_equal(sigprocmask(SIG_BLOCK, &only, &old), 0);
	assert_int_equal(raise(SIGRTMAX), 0);

	r = kvm_probe_long_mode(REAL_KVM, TIMEOUT_MS);
	assert_true(r == 0 || r == -ETIMEDOUT);

	assert_int_equal(sigpending(&pending), 0);
	assert_true(sigismember(&pending, SIGRTMAX));
	assert_int_equal(sigtimedwait(&only, NULL, &zero), SIGRTMAX);
	assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}

/* The full path past the kvm_pvm check (fake sysfs without it) against the real device. */
static void test_full_probe_past_the_module_check(void **state)
{
	struct fake_sysfs *fs = *state;
	struct kvm_probe_result result;
	double start, elapsed;

	require_kvm_device();
	start = now_ms();
	assert_int_equal(kvm_probe(fs->root, REAL_KVM, TIMEOUT_MS, &result), 0);
	elapsed = now_ms() - start;
	print_message("full probe: verdict %d after %.3f ms: %s\n", result.verdict, elapsed, result.reason);
	assert_true(result.verdict == KVM_USABLE || result.verdict == KVM_BROKEN);
	if (host_is_pvm()) {
		assert_int_equal(result.verdict, KVM_BROKEN);
		assert_non_null(strstr(result.reason, "no progress"));
	}
	assert_true(elapsed < 2 * TIMEOUT_MS + 200);
}

static void test_real_host_verdict(void **state)
{
	struct kvm_probe_result result;

	(void) state;
	assert_int_equal(kvm_probe(REAL_SYSFS, REAL_KVM, TIMEOUT_MS, &result), 0);
	print_message("this host: verdict %d: %s\n", result.verdict, result.reason);
	if (host_is_pvm())
		assert_int_equal(result.verdict, KVM_PVM);
	else if (!path_exists(REAL_KVM))
		assert_int_equal(result.verdict, KVM_ABSENT);
	else
		assert_int_not_equal(result.verdict, KVM_PVM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pvm_module_decides_without_touching_the_device,
						fake_sysfs_with_pvm, fake_sysfs_teardown),
		cmocka_unit_test_setup_teardown(test_missing_device_is_absent, fake_sysfs_without_pvm,
						fake_sysfs_teardown),
		cmocka_unit_test_setup_teardown(test_non_kvm_device_is_broken, fake_sysfs_without_pvm,
						fake_sysfs_teardown),
		cmocka_unit_test(test_invalid_arguments),
		cmocka_unit_test(test_real_mode_guest_runs),
		cmocka_unit_test(test_long_mode_guest_finishes_or_times_out_in_time),
		cmocka_unit_test(test_probe_leaves_no_signal_state_or_fds),
		cmocka_unit_test(test_probe_avoids_a_signal_the_caller_blocks),
		cmocka_unit_test_setup_teardown(test_full_probe_past_the_module_check, fake_sysfs_without_pvm,
						fake_sysfs_teardown),
		cmocka_unit_test(test_real_host_verdict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
