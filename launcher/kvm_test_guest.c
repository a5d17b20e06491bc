/* Runs tiny test guests through the raw KVM API to tell a KVM that works from one that only looks like it does. */
#define _GNU_SOURCE
#include "kvm_test_guest.h"

#include "kvm_watchdog.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

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

static int fail(struct kvm_test_failure *f, bool internal, int err, const char *format, ...)
{
	va_list ap;

	f->internal = internal;
	va_start(ap, format);
	vsnprintf(f->what, sizeof(f->what), format, ap);
	va_end(ap);
	return -err;
}

/* For a failed call: "what: error text". */
static int fail_errno(struct kvm_test_failure *f, bool internal, int err, const char *what)
{
	const char *text = strerrordesc_np(err);

	return fail(f, internal, err, "%s: %s", what, text ? text : "unknown error");
}

static int arm_watchdog(struct kvm_watchdog *wd, struct kvm_run *run, unsigned timeout_ms, struct kvm_test_failure *f)
{
	const char *call = NULL;
	int r = kvm_watchdog_arm(wd, run, timeout_ms, &call);

	return r < 0 ? fail_errno(f, true, -r, call) : 0;
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
			  struct kvm_test_failure *f)
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
static int test_vm_run(struct test_vm *vm, unsigned timeout_ms, struct kvm_test_failure *f)
{
	for (;;) {
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) == 0)
			return 0;
		if (errno != EINTR)
			return fail_errno(f, false, errno, "KVM_RUN");
		if (kvm_watchdog_fired())
			return fail(f, false, ETIMEDOUT, "the test guest made no progress in %u ms", timeout_ms);
	}
}

static int test_vm_expect_out(struct test_vm *vm, unsigned size, uint32_t expected, struct kvm_test_failure *f)
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

int kvm_test_real_mode(int kvm_fd, unsigned timeout_ms, struct kvm_test_failure *f)
{
	struct test_vm vm;
	struct kvm_watchdog wd;
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

	r = arm_watchdog(&wd, vm.run, timeout_ms, f);
	if (r < 0)
		goto out;
	r = test_vm_run(&vm, timeout_ms, f);
	kvm_watchdog_disarm(&wd);
	if (r == 0)
		r = test_vm_expect_out(&vm, 1, 'R', f);
out:
	test_vm_destroy(&vm);
	return r;
}

/* Gives the vCPU the CPUID a real VMM would, so the guest state is checked against the same features as QEMU's. */
static int vcpu_set_supported_cpuid(int kvm_fd, int vcpu_fd, struct kvm_test_failure *f)
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

int kvm_test_long_mode(int kvm_fd, unsigned timeout_ms, struct kvm_test_failure *f)
{
	struct test_vm vm;
	struct kvm_watchdog wd;
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
	r = arm_watchdog(&wd, vm.run, timeout_ms, f);
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
	kvm_watchdog_disarm(&wd);
out:
	test_vm_destroy(&vm);
	return r;
}
