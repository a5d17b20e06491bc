/* Decides whether this host's KVM can really run a 64-bit guest, so vmlaunch falls back to TCG where it cannot. */
#ifndef VMLAUNCH_KVM_PROBE_H
#define VMLAUNCH_KVM_PROBE_H

enum kvm_verdict {
	KVM_USABLE,    /* a 64-bit test guest ran to completion: use KVM */
	KVM_ABSENT,    /* no KVM device: use TCG */
	KVM_NO_ACCESS, /* the device exists but this user may not open it: use TCG */
	KVM_PVM,       /* the device belongs to kvm_pvm (nested PVM), where stock guest kernels hang: use TCG */
	KVM_BROKEN,    /* the device answers but cannot run a 64-bit guest: use TCG */
};

struct kvm_probe_result {
	enum kvm_verdict verdict;
	/* One line a user understands, e.g. "/dev/kvm belongs to kvm_pvm (nested PVM): stock guest kernels hang;
	 * using TCG". Always NUL-terminated. */
	char reason[256];
};

/*
 * Decides whether KVM can run a 64-bit guest here. sysfs_root and dev_path are parameters so tests can point
 * elsewhere (normally "/sys" and "/dev/kvm"). In order: SYSFS_ROOT/module/kvm_pvm present -> KVM_PVM without
 * touching the device; no device -> KVM_ABSENT; EACCES/EPERM -> KVM_NO_ACCESS; KVM_GET_API_VERSION != 12 ->
 * KVM_BROKEN; then a 64-bit guest is run and must finish within timeout_ms (else KVM_BROKEN). Never hangs.
 * Prints nothing. Returns 0 with *out filled, or negative errno on an unexpected internal failure (bad arguments,
 * out of memory, cannot set up the watchdog timer); *out is then still filled, with KVM_BROKEN and the cause, so a
 * caller may fall back to TCG after reporting it.
 */
int kvm_probe(const char *sysfs_root, const char *dev_path, unsigned timeout_ms, struct kvm_probe_result *out);

/*
 * The raw long-mode test alone, exposed for tests: 0 when a 64-bit guest loop completes with the right result,
 * -ETIMEDOUT when it makes no progress within timeout_ms, -EIO when the guest stops anywhere else, other -errno on
 * failure (-EINVAL for timeout_ms == 0).
 */
int kvm_probe_long_mode(const char *dev_path, unsigned timeout_ms);

/* The 16-bit real-mode test (mov al,'R'; out 0xe9,al; hlt): 0 when it exits with the expected KVM_EXIT_IO; errors
 * as for kvm_probe_long_mode(). */
int kvm_probe_real_mode(const char *dev_path, unsigned timeout_ms);

#endif
