/* Decides whether this host's KVM can run a 64-bit guest (kvm_probe.h), from facts and a test guest's run. */
#define _GNU_SOURCE
#include "kvm_probe.h"

#include "kvm_test_guest.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define KVM_EXPECTED_API_VERSION 12

static const char *errno_text(int err)
{
	const char *text = strerrordesc_np(err);
	return text ? text : "unknown error";
}

typedef int (*guest_test)(int kvm_fd, unsigned timeout_ms, struct kvm_test_failure *f);

static int run_guest_test(const char *dev_path, unsigned timeout_ms, guest_test test)
{
	struct kvm_test_failure f = { 0 };
	int kvm_fd, r;

	if (!dev_path || timeout_ms == 0)
		return -EINVAL;
	kvm_fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		return -errno;
	r = test(kvm_fd, timeout_ms, &f);
	close(kvm_fd);
	return r;
}

int kvm_probe_long_mode(const char *dev_path, unsigned timeout_ms)
{
	return run_guest_test(dev_path, timeout_ms, kvm_test_long_mode);
}

int kvm_probe_real_mode(const char *dev_path, unsigned timeout_ms)
{
	return run_guest_test(dev_path, timeout_ms, kvm_test_real_mode);
}

static void verdict(struct kvm_probe_result *out, enum kvm_verdict v, const char *format, ...)
{
	va_list ap;

	out->verdict = v;
	va_start(ap, format);
	vsnprintf(out->reason, sizeof(out->reason), format, ap);
	va_end(ap);
}

/* Names the device's group, so the user knows which group to join. */
static void no_access_verdict(struct kvm_probe_result *out, const char *dev_path, int fd_errno)
{
	struct group group, *found = NULL;
	char buffer[1024];
	struct stat st;

	if (stat(dev_path, &st) == 0 && getgrgid_r(st.st_gid, &group, buffer, sizeof(buffer), &found) == 0 && found)
		verdict(out, KVM_NO_ACCESS, "cannot open %s: %s (add the user to group \"%s\"); using TCG", dev_path,
			errno_text(fd_errno), found->gr_name);
	else
		verdict(out, KVM_NO_ACCESS, "cannot open %s: %s; using TCG", dev_path, errno_text(fd_errno));
}

int kvm_probe(const char *sysfs_root, const char *dev_path, unsigned timeout_ms, struct kvm_probe_result *out)
{
	struct kvm_test_failure f = { 0 };
	char pvm_path[PATH_MAX];
	struct stat st;
	int kvm_fd, api, r, n;

	if (!out)
		return -EINVAL;
	if (!sysfs_root || !dev_path || timeout_ms == 0) {
		verdict(out, KVM_BROKEN, "KVM probe called with invalid arguments; using TCG");
		return -EINVAL;
	}

	/* First and without any ioctl: PVM answers everything and even runs real mode, then hangs real kernels. */
	n = snprintf(pvm_path, sizeof(pvm_path), "%s/module/kvm_pvm", sysfs_root);
	if (n < 0 || (size_t) n >= sizeof(pvm_path)) {
		verdict(out, KVM_BROKEN, "sysfs path \"%s\" is too long; using TCG", sysfs_root);
		return -ENAMETOOLONG;
	}
	if (stat(pvm_path, &st) == 0) {
		verdict(out, KVM_PVM, "%s belongs to kvm_pvm (nested PVM): stock guest kernels hang; using TCG",
			dev_path);
		return 0;
	}
	if (errno != ENOENT && errno != ENOTDIR) {
		r = errno;
		verdict(out, KVM_BROKEN, "cannot check %s: %s; using TCG", pvm_path, errno_text(r));
		return -r;
	}

	kvm_fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		r = errno;
		if (r == ENOENT || r == ENODEV || r == ENXIO || r == ENOTDIR)
			verdict(out, KVM_ABSENT,
				"%s: %s (no KVM on this host, or the kvm module is not loaded); using TCG", dev_path,
				errno_text(r));
		else if (r == EACCES || r == EPERM || r == EROFS)
			no_access_verdict(out, dev_path, r);
		else
			verdict(out, KVM_BROKEN, "cannot open %s: %s; using TCG", dev_path, errno_text(r));
		return 0;
	}

	api = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	if (api < 0) {
		verdict(out, KVM_BROKEN, "%s does not answer KVM_GET_API_VERSION: %s; using TCG", dev_path,
			errno_text(errno));
		close(kvm_fd);
		return 0;
	}
	if (api != KVM_EXPECTED_API_VERSION) {
		verdict(out, KVM_BROKEN, "%s speaks KVM API version %d, expected %d; using TCG", dev_path, api,
			KVM_EXPECTED_API_VERSION);
		close(kvm_fd);
		return 0;
	}

	r = kvm_test_long_mode(kvm_fd, timeout_ms, &f);
	close(kvm_fd);
	if (r == 0) {
		verdict(out, KVM_USABLE, "%s runs a 64-bit test guest; using KVM", dev_path);
		return 0;
	}
	verdict(out, KVM_BROKEN, "%s cannot run a 64-bit guest: %s; using TCG", dev_path, f.what);
	return f.internal ? r : 0;
}
