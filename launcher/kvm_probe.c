/* Runs tiny test guests through the raw KVM API to tell a KVM that works from one that only looks like it does. */
#define _GNU_SOURCE
#include "kvm_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KVM_EXPECTED_API_VERSION 12
#define PROBE_PORT 0xe9
/* Long enough that a guest which never really executes cannot fake it, short enough to cost microseconds. */
#define LONG_MODE_LOOP_COUNT 300000u

/* Guest-physical layout of both test guests. Everything lies in the first 2 MiB, which the long-mode guest maps
 * with one identity-mapped 2 MiB page, so the whole guest is one memory slot and one page-table walk. */
#define GUEST_MEM_SIZE 0x200000u
#define GUEST_PML4 0x1000u
#define GUEST_PDPT 0x2000u
#define GUEST_PD 0x3000u
#define GUEST_GDT 0x4000u
#define GUEST_CODE 0x8000u

#define PTE_PRESENT (1ull << 0)
#define PTE_WRITABLE (1ull << 1)
#define PTE_LARGE (1ull << 7)

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)

#define GDT_SELECTOR_CODE64 0x08
#define GDT_SELECTOR_DATA 0x10

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* mov al,'R'; out 0xe9,al; hlt */
static const uint8_t real_mode_code[] = { 0xb0, 'R', 0xe6, PROBE_PORT, 0xf4 };

/* The loop's result is checked, not just its exit, so a guest that skips or garbles instructions is caught. */
static const uint8_t long_mode_code[] = {
	0x31, 0xc0,                                    /* xor eax,eax */
	0xb9, LONG_MODE_LOOP_COUNT & 0xff, (LONG_MODE_LOOP_COUNT >> 8) & 0xff, (LONG_MODE_LOOP_COUNT >> 16) & 0xff,
	(LONG_MODE_LOOP_COUNT >> 24) & 0xff,          /* mov ecx,LONG_MODE_LOOP_COUNT */
	0xff, 0xc0,                                    /* 1: inc eax */
	0xff, 0xc9,                                    /* dec ecx */
	0x75, 0xfa,                                    /* jnz 1b */
	0xe7, PROBE_PORT,                              /* out 0xe9,eax */
	0xf4,                                          /* hlt */
};

/* Why a test guest failed, for the reason line; internal failures are ours (memory, timers), the rest are KVM's. */
struct probe_failure {
	bool internal;
	char what[200];
};

static const char *errno_text(int err)
{
	const char *text = strerrordesc_np(err);
	return text ? text : "unknown error";
}

static int fail(struct probe_failure *f, bool internal, int err, const char *format, ...)
{
	va_list ap;

	f->internal = internal;
	va_start(ap, format);
	vsnprintf(f->what, sizeof(f->what), format, ap);
	va_end(ap);
	return -err;
}

/* For a failed call: "what: error text". */
static int fail_errno(struct probe_failure *f, bool internal, int err, const char *what)
{
	return fail(f, internal, err, "%s: %s", what, errno_text(err));
}

static const char *exit_reason_text(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "port I/O";
	case KVM_EXIT_HLT: return "hlt";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "shutdown (triple fault)";
	case KVM_EXIT_FAIL_ENTRY: return "VM entry failed";
	case KVM_EXIT_INTERNAL_ERROR: return "KVM internal error";
	case KVM_EXIT_EXCEPTION: return "exception";
	default: return "unexpected exit";
	}
}

/*
 * Bounds KVM_RUN in time. A POSIX timer sends a signal to this thread only; its handler sets immediate_exit, so a
 * signal that lands just before KVM_RUN still makes KVM_RUN return EINTR at once instead of being lost. The probe
 * runs inside a program that later uses signalfd, so the watchdog borrows a real-time signal nobody uses and puts
 * the disposition, the thread's mask and the timer back exactly as they were.
 */
struct watchdog {
	int signal;
	timer_t timer;
	struct sigaction old_action;
	sigset_t old_mask;
};

static _Thread_local struct kvm_run *volatile watchdog_run;
static _Thread_local volatile sig_atomic_t watchdog_fired;

static void watchdog_on_signal(int signal)
{
	struct kvm_run *run = watchdog_run;

	(void) signal;
	watchdog_fired = 1;
	if (run)
		run->immediate_exit = 1;
}

/* A signal with default disposition that this thread neither blocks nor has pending cannot belong to anyone. */
static int watchdog_pick_signal(const sigset_t *mask)
{
	sigset_t pending;

	if (sigpending(&pending) < 0)
		return -errno;
	for (int s = SIGRTMAX; s >= SIGRTMIN; s--) {
		struct sigaction current;

		if (sigaction(s, NULL, &current) < 0)
			return -errno;
		if (current.sa_handler == SIG_DFL && !(current.sa_flags & SA_SIGINFO) && !sigismember(mask, s) &&
		    !sigismember(&pending, s))
			return s;
	}
	return -EBUSY;
}

static int watchdog_arm(struct watchdog *wd, struct kvm_run *run, unsigned timeout_ms, struct probe_failure *f)
{
	struct sigaction action = { .sa_handler = watchdog_on_signal };
	struct sigevent event = { .sigev_notify = SIGEV_THREAD_ID };
	struct itimerspec expiry = {
		.it_value = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long) (timeout_ms % 1000) * 1000000 },
	};
	sigset_t only, during;
	int r;

	r = pthread_sigmask(SIG_SETMASK, NULL, &wd->old_mask);
	if (r != 0)
		return fail_errno(f, true, r, "pthread_sigmask");
	r = watchdog_pick_signal(&wd->old_mask);
	if (r < 0)
		return fail_errno(f, true, -r, "no free real-time signal for the watchdog");
	wd->signal = r;

	/* Blocked while the handler and timer are swapped in, so it can only arrive where we expect it. */
	sigemptyset(&only);
	sigaddset(&only, wd->signal);
	r = pthread_sigmask(SIG_BLOCK, &only, NULL);
	if (r != 0)
		return fail_errno(f, true, r, "pthread_sigmask");

	watchdog_fired = 0;
	watchdog_run = run;
	/* No SA_RESTART: KVM_RUN must come back with EINTR rather than be restarted. */
	sigemptyset(&action.sa_mask);
	action.sa_flags = 0;
	if (sigaction(wd->signal, &action, &wd->old_action) < 0) {
		r = fail_errno(f, true, errno, "sigaction");
		goto restore_mask;
	}

	event.sigev_signo = wd->signal;
	event.sigev_notify_thread_id = gettid();
	if (timer_create(CLOCK_MONOTONIC, &event, &wd->timer) < 0) {
		r = fail_errno(f, true, errno, "timer_create");
		goto restore_action;
	}
	if (timer_settime(wd->timer, 0, &expiry, NULL) < 0) {
		r = fail_errno(f, true, errno, "timer_settime");
		timer_delete(wd->timer);
		goto restore_action;
	}

	during = wd->old_mask;
	sigdelset(&during, wd->signal);
	r = pthread_sigmask(SIG_SETMASK, &during, NULL);
	if (r != 0) {
		r = fail_errno(f, true, r, "pthread_sigmask");
		timer_delete(wd->timer);
		goto restore_action;
	}
	return 0;

restore_action:
	sigaction(wd->signal, &wd->old_action, NULL);
restore_mask:
	pthread_sigmask(SIG_SETMASK, &wd->old_mask, NULL);
	watchdog_run = NULL;
	return r;
}

static void watchdog_disarm(struct watchdog *wd)
{
	const struct timespec now = { 0 };
	sigset_t only;

	sigemptyset(&only);
	sigaddset(&only, wd->signal);
	pthread_sigmask(SIG_BLOCK, &only, NULL);
	timer_delete(wd->timer);
	/* The timer may have expired after we blocked it; its signal must not outlive the probe. */
	while (sigtimedwait(&only, NULL, &now) == wd->signal)
		;
	sigaction(wd->signal, &wd->old_action, NULL);
	pthread_sigmask(SIG_SETMASK, &wd->old_mask, NULL);
	watchdog_run = NULL;
}

struct test_vm {
	int vm_fd;
	int vcpu_fd;
	uint8_t *mem;
	struct kvm_run *run;
	size_t run_size;
};

static void test_vm_destroy(struct test_vm *vm)
{
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->mem)
		munmap(vm->mem, GUEST_MEM_SIZE);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	*vm = (struct test_vm) { .vm_fd = -1, .vcpu_fd = -1 };
}

/* One VM with one vCPU and GUEST_MEM_SIZE of zeroed memory holding code at GUEST_CODE. */
static int test_vm_create(int kvm_fd, const uint8_t *code, size_t code_size, struct test_vm *vm,
			  struct probe_failure *f)
{
	struct kvm_userspace_memory_region region;
	void *p;
	int r;

	*vm = (struct test_vm) { .vm_fd = -1, .vcpu_fd = -1 };

	vm->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return fail_errno(f, false, errno, "KVM_CREATE_VM");
	/* Intel CPUs without unrestricted-guest support need this for real mode; QEMU puts it at the same place. */
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
		r = fail_errno(f, false, errno, "KVM_SET_TSS_ADDR");
		goto fail;
	}

	p = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		r = fail_errno(f, true, errno, "mmap guest memory");
		goto fail;
	}
	vm->mem = p;
	memcpy(vm->mem + GUEST_CODE, code, code_size);

	region = (struct kvm_userspace_memory_region) {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = GUEST_MEM_SIZE,
		.userspace_addr = (uintptr_t) vm->mem,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		r = fail_errno(f, false, errno, "KVM_SET_USER_MEMORY_REGION");
		goto fail;
	}

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0) {
		r = fail_errno(f, false, errno, "KVM_CREATE_VCPU");
		goto fail;
	}

	r = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < 0) {
		r = fail_errno(f, false, errno, "KVM_GET_VCPU_MMAP_SIZE");
		goto fail;
	}
	if ((size_t) r < sizeof(struct kvm_run)) {
		r = fail(f, false, EINVAL, "KVM_GET_VCPU_MMAP_SIZE returned %d", r);
		goto fail;
	}
	vm->run_size = (size_t) r;
	p = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	if (p == MAP_FAILED) {
		r = fail_errno(f, false, errno, "mmap kvm_run");
		goto fail;
	}
	vm->run = p;
	return 0;

fail:
	test_vm_destroy(vm);
	return r;
}

/* Runs until the guest exits for a reason of its own; a caller's unrelated signal merely re-enters the guest. */
static int test_vm_run(struct test_vm *vm, unsigned timeout_ms, struct probe_failure *f)
{
	for (;;) {
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) == 0)
			return 0;
		if (errno != EINTR)
			return fail_errno(f, false, errno, "KVM_RUN");
		if (watchdog_fired)
			return fail(f, false, ETIMEDOUT, "the test guest made no progress in %u ms", timeout_ms);
	}
}

static int test_vm_expect_out(struct test_vm *vm, unsigned size, uint32_t expected, struct probe_failure *f)
{
	const struct kvm_run *run = vm->run;
	uint32_t value = 0;

	if (run->exit_reason != KVM_EXIT_IO)
		return fail(f, false, EIO, "the test guest stopped with KVM exit %u (%s) instead of port I/O",
			    run->exit_reason, exit_reason_text(run->exit_reason));
	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != PROBE_PORT || run->io.size != size ||
	    run->io.count != 1 || run->io.data_offset + size > vm->run_size)
		return fail(f, false, EIO, "the test guest made unexpected port I/O (port 0x%x, size %u)",
			    run->io.port, run->io.size);
	memcpy(&value, (const uint8_t *) run + run->io.data_offset, size);
	if (value != expected)
		return fail(f, false, EIO, "the test guest computed %u instead of %u", value, expected);
	return 0;
}

static int real_mode_test(int kvm_fd, unsigned timeout_ms, struct probe_failure *f)
{
	struct test_vm vm;
	struct watchdog wd;
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = GUEST_CODE, .rflags = 0x2 };
	int r;

	r = test_vm_create(kvm_fd, real_mode_code, sizeof(real_mode_code), &vm, f);
	if (r < 0)
		return r;

	if (ioctl(vm.vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		r = fail_errno(f, false, errno, "KVM_GET_SREGS");
		goto out;
	}
	/* The reset state starts at 0xffff:fff0; run our code from physical GUEST_CODE instead. */
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vm.vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		r = fail_errno(f, false, errno, "KVM_SET_SREGS");
		goto out;
	}
	if (ioctl(vm.vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		r = fail_errno(f, false, errno, "KVM_SET_REGS");
		goto out;
	}

	r = watchdog_arm(&wd, vm.run, timeout_ms, f);
	if (r < 0)
		goto out;
	r = test_vm_run(&vm, timeout_ms, f);
	watchdog_disarm(&wd);
	if (r == 0)
		r = test_vm_expect_out(&vm, 1, 'R', f);
out:
	test_vm_destroy(&vm);
	return r;
}

/* Gives the vCPU the CPUID a real VMM would, so the guest state is checked against the same features as QEMU's. */
static int vcpu_set_supported_cpuid(int kvm_fd, int vcpu_fd, struct probe_failure *f)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
		int r = 0;

		if (!cpuid)
			return fail_errno(f, true, ENOMEM, "allocating CPUID entries");
		cpuid->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
			r = errno;
			free(cpuid);
			if (r == E2BIG)
				continue;
			return fail_errno(f, false, r, "KVM_GET_SUPPORTED_CPUID");
		}
		if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
			r = fail_errno(f, false, errno, "KVM_SET_CPUID2");
		free(cpuid);
		return r;
	}
	return fail_errno(f, false, E2BIG, "KVM_GET_SUPPORTED_CPUID");
}

static void long_mode_build_tables(uint8_t *mem)
{
	uint64_t *pml4 = (uint64_t *) (mem + GUEST_PML4);
	uint64_t *pdpt = (uint64_t *) (mem + GUEST_PDPT);
	uint64_t *pd = (uint64_t *) (mem + GUEST_PD);
	uint64_t *gdt = (uint64_t *) (mem + GUEST_GDT);

	pml4[0] = GUEST_PDPT | PTE_PRESENT | PTE_WRITABLE;
	pdpt[0] = GUEST_PD | PTE_PRESENT | PTE_WRITABLE;
	pd[0] = 0 | PTE_PRESENT | PTE_WRITABLE | PTE_LARGE;

	/* The GDT in memory matches the cached segments below, so anything that reloads them sees the same. */
	gdt[0] = 0;
	gdt[GDT_SELECTOR_CODE64 / 8] = 0x00af9b000000ffffull; /* present, DPL 0, execute/read, L=1, G=1 */
	gdt[GDT_SELECTOR_DATA / 8] = 0x00cf93000000ffffull;   /* present, DPL 0, read/write, D/B=1, G=1 */
}

static void long_mode_set_sregs(struct kvm_sregs *sregs)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = GDT_SELECTOR_CODE64,
		.type = 0xb, .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = GDT_SELECTOR_DATA,
		.type = 0x3, .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};

	/* Everything else (TR, LDTR, IDT) stays as KVM reset it, which VM entry accepts in long mode. */
	sregs->gdt.base = GUEST_GDT;
	sregs->gdt.limit = 3 * 8 - 1;
	sregs->cs = code;
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->cr3 = GUEST_PML4;
	sregs->cr4 = X86_CR4_PAE;
	sregs->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	sregs->efer = X86_EFER_LME | X86_EFER_LMA;
}

static int long_mode_test(int kvm_fd, unsigned timeout_ms, struct probe_failure *f)
{
	struct test_vm vm;
	struct watchdog wd;
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = GUEST_CODE, .rsp = GUEST_MEM_SIZE, .rflags = 0x2 };
	int r;

	r = test_vm_create(kvm_fd, long_mode_code, sizeof(long_mode_code), &vm, f);
	if (r < 0)
		return r;
	long_mode_build_tables(vm.mem);

	r = vcpu_set_supported_cpuid(kvm_fd, vm.vcpu_fd, f);
	if (r < 0)
		goto out;
	if (ioctl(vm.vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		r = fail_errno(f, false, errno, "KVM_GET_SREGS");
		goto out;
	}
	long_mode_set_sregs(&sregs);
	if (ioctl(vm.vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		r = fail_errno(f, false, errno, "KVM_SET_SREGS (long mode)");
		goto out;
	}
	if (ioctl(vm.vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		r = fail_errno(f, false, errno, "KVM_SET_REGS");
		goto out;
	}

	/* One watchdog bounds both runs: the loop up to its out, then the hlt. */
	r = watchdog_arm(&wd, vm.run, timeout_ms, f);
	if (r < 0)
		goto out;
	r = test_vm_run(&vm, timeout_ms, f);
	if (r == 0)
		r = test_vm_expect_out(&vm, 4, LONG_MODE_LOOP_COUNT, f);
	if (r == 0)
		r = test_vm_run(&vm, timeout_ms, f);
	if (r == 0 && vm.run->exit_reason != KVM_EXIT_HLT)
		r = fail(f, false, EIO, "the test guest stopped with KVM exit %u (%s) instead of hlt",
			 vm.run->exit_reason, exit_reason_text(vm.run->exit_reason));
	watchdog_disarm(&wd);
out:
	test_vm_destroy(&vm);
	return r;
}

typedef int (*guest_test)(int kvm_fd, unsigned timeout_ms, struct probe_failure *f);

static int run_guest_test(const char *dev_path, unsigned timeout_ms, guest_test test)
{
	struct probe_failure f = { 0 };
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
	return run_guest_test(dev_path, timeout_ms, long_mode_test);
}

int kvm_probe_real_mode(const char *dev_path, unsigned timeout_ms)
{
	return run_guest_test(dev_path, timeout_ms, real_mode_test);
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
	struct probe_failure f = { 0 };
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

	r = long_mode_test(kvm_fd, timeout_ms, &f);
	close(kvm_fd);
	if (r == 0) {
		verdict(out, KVM_USABLE, "%s runs a 64-bit test guest; using KVM", dev_path);
		return 0;
	}
	verdict(out, KVM_BROKEN, "%s cannot run a 64-bit guest: %s; using TCG", dev_path, f.what);
	return f.internal ? r : 0;
}
