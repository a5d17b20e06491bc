/* Tiny test guests run through the raw KVM API: the evidence behind kvm_probe's verdict. */
#ifndef VMLAUNCH_KVM_TEST_GUEST_H
#define VMLAUNCH_KVM_TEST_GUEST_H

#include <stdbool.h>

/* Why a test guest failed, for the reason line; internal failures are ours (memory, timers), the rest are KVM's. */
struct kvm_test_failure {
	bool internal;
	char what[200];
};

/* The 16-bit real-mode guest (mov al,'R'; out 0xe9,al; hlt) on an open /dev/kvm: 0 when it exits with the expected
 * port I/O; -ETIMEDOUT when it makes no progress within timeout_ms, -EIO when it stops anywhere else, other -errno
 * on failure; *f says why. */
int kvm_test_real_mode(int kvm_fd, unsigned timeout_ms, struct kvm_test_failure *f);
/* The 64-bit guest: a counting loop whose result must come out of port 0xe9, then hlt. Errors as above. */
int kvm_test_long_mode(int kvm_fd, unsigned timeout_ms, struct kvm_test_failure *f);

#endif
