/* Plan decisions on synthetic hosts and targets: accel choice, per-disk cache/aio, console and command mode. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"
#include "test_helpers.h"

static const struct privileges nopriv;

static struct host_facts host_with(enum kvm_verdict v, bool tty)
{
	struct host_facts h = { 0 };

	h.qemu_path = "/usr/bin/qemu-system-x86_64";
	h.kvm.verdict = v;
	snprintf(h.kvm.reason, sizeof(h.kvm.reason), "%s",
		 v == KVM_PVM ? "/dev/kvm belongs to kvm_pvm (nested PVM): stock guest kernels hang; using TCG" : "ok");
	h.stdin_is_tty = tty;
	h.pvpanic_pci = true;
	h.state_root = "/run/vmlaunch";
	return h;
}

static void load(const char *text, struct vm_config *cfg)
{
	char *err;

	if (load_text(text, NULL, cfg, &err) != 0)
		fail_msg("config did not load: %s", err);
	free(err);
}

#define BOOT "[boot]\nkernel = vmlinux\ninitrd = initrd\n"

static void test_accel(void **state)
{
	struct vm_config cfg;
	struct plan p;
	struct host_facts pvm = host_with(KVM_PVM, false), good = host_with(KVM_USABLE, false);
	(void)state;

	load(BOOT, &cfg);
	assert_int_equal(plan_build(&cfg, &good, NULL, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	assert_true(p.kvm);
	assert_false(p.accel_warning);
	plan_free(&p);

	assert_int_equal(plan_build(&cfg, &pvm, NULL, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	assert_false(p.kvm);
	assert_true(p.accel_warning); /* auto on an unusable KVM: one clear warning */
	assert_non_null(strstr(p.accel_why, "kvm_pvm"));
	plan_free(&p);
	config_free(&cfg);

	load("[vm]\naccel = kvm\n" BOOT, &cfg);
	assert_int_equal(plan_build(&cfg, &pvm, NULL, &nopriv, &(struct run_request){ .command_mode = false }, &p), -ENODEV); /* an error, not a hang */
	plan_free(&p);
	config_free(&cfg);

	load("[vm]\naccel = tcg\n" BOOT, &cfg);
	assert_int_equal(plan_build(&cfg, &good, NULL, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	assert_false(p.kvm);
	assert_false(p.accel_warning);
	plan_free(&p);
	config_free(&cfg);
}

static void test_disk_io(void **state)
{
	struct disk_config d = { .name = "d" };
	struct storage_target ram = { .driver = DRIVER_FILE, .filename = "/x", .direct_ok = true, .ephemeral = true,
				      .ram_backed = true };
	struct storage_target persistent = { .driver = DRIVER_FILE, .filename = "/img", .direct_ok = true };
	struct storage_target zram = { .driver = DRIVER_HOST_DEVICE, .filename = "/dev/zram0", .direct_ok = true,
				       .ephemeral = true, .ram_backed = true };
	struct host_facts host = host_with(KVM_PVM, false), old = host;
	struct disk_plan out = { 0 };
	(void)state;

	host.io_uring = true;
	old.io_uring = false;

	plan_disk_io(&d, &ram, &host, &out);
	assert_true(out.direct);
	assert_string_equal(out.aio, "native");
	assert_true(out.no_flush);
	assert_true(out.reclaim);

	ram.direct_ok = false; /* a kernel before 6.6 refuses O_DIRECT on tmpfs */
	plan_disk_io(&d, &ram, &host, &out);
	assert_false(out.direct);
	assert_string_equal(out.aio, "io_uring"); /* native needs O_DIRECT */

	d.cache = CACHE_SAFE;
	plan_disk_io(&d, &ram, &host, &out);
	assert_false(out.no_flush);
	assert_non_null(strstr(out.why, "cache = safe"));

	d.cache = CACHE_AUTO;
	plan_disk_io(&d, &persistent, &host, &out);
	assert_true(out.direct);
	assert_false(out.no_flush); /* data that outlives the VM gets its flushes */
	assert_false(out.reclaim);

	d.cache = CACHE_UNSAFE;
	plan_disk_io(&d, &persistent, &host, &out);
	assert_true(out.no_flush);

	/* block backends: io_uring where this kernel and qemu offer it, native AIO (needs O_DIRECT) where not */
	d.cache = CACHE_AUTO;
	plan_disk_io(&d, &zram, &host, &out);
	assert_true(out.direct);
	assert_string_equal(out.aio, "io_uring");
	plan_disk_io(&d, &zram, &old, &out);
	assert_string_equal(out.aio, "native");
	ram.direct_ok = false;
	plan_disk_io(&d, &ram, &old, &out);
	assert_string_equal(out.aio, "threads");
	free(out.why);
}

/* Where the console goes with and without a command and a terminal, and when the command gets a pty. */
static void test_console_and_command_mode(void **state)
{
	struct vm_config cfg;
	struct plan p;
	struct host_facts tty = host_with(KVM_PVM, true);
	(void)state;

	load("[vm]\nname = t\n" BOOT "append = quiet\n", &cfg);
	assert_int_equal(plan_build(&cfg, &tty, NULL, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	assert_true(p.interactive);
	assert_null(p.console_log);
	assert_null(p.console_socket); /* the terminal has the console: nothing to attach to */
	assert_int_equal(p.ready, READY_AT_START);
	/* TCG here (PVM): it executes nothing speculatively, so mitigations=off; the user's words come last */
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check vmlaunch.interactive=1 quiet");
	plan_free(&p);

	assert_int_equal(plan_build(&cfg, &tty, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_false(p.interactive); /* the command's output owns stdout */
	assert_string_equal(p.console_log, "/run/vmlaunch/t/console.log");
	assert_string_equal(p.console_socket, "/run/vmlaunch/t/console.sock");
	assert_false(p.console_to_stdout);
	assert_int_equal(p.ready, READY_GUEST_PORT); /* the bundled guest opening its ports */
	assert_string_equal(p.argv_file, "/run/vmlaunch/t/argv");
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check quiet");
	assert_false(p.command_tty); /* stdin is a terminal, stdout is not: input as a stream, output as bytes */
	assert_int_equal(p.n_guest_files, 1);
	plan_free(&p);

	/* a terminal on both sides: the command gets a pty, and the guest its size and TERM through fw_cfg */
	tty.stdout_is_tty = true;
	assert_int_equal(plan_build(&cfg, &tty, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_true(p.command_tty);
	assert_int_equal(p.n_guest_files, 2);
	assert_int_equal(p.guest_files[1].kind, GUEST_FILE_TTY);
	assert_string_equal(p.guest_files[1].name, "opt/org.vmlaunch/tty");
	assert_string_equal(p.guest_files[1].path, "/run/vmlaunch/t/tty");
	plan_free(&p);
	/* ... but not without a command: the demo's shell is on the serial console */
	assert_int_equal(plan_build(&cfg, &tty, NULL, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	assert_false(p.command_tty);
	plan_free(&p);
	config_free(&cfg);
}

/* On KVM the guest's mitigations matter: the kernel command line is the user's. */
static void test_kvm_leaves_the_cmdline_alone(void **state)
{
	struct vm_config cfg;
	struct plan p;
	struct host_facts kvm = host_with(KVM_USABLE, false);
	(void)state;

	load("[vm]\nname = t\n" BOOT "append = quiet\n", &cfg);
	assert_int_equal(plan_build(&cfg, &kvm, NULL, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 quiet");
	/* no terminal, no command (a systemd unit): the console relayed to the log, a socket and stdout */
	assert_string_equal(p.console_socket, "/run/vmlaunch/t/console.sock");
	assert_true(p.console_to_stdout);
	plan_free(&p);
	config_free(&cfg);
}

/* Under TCG the guest trusts its TSC where the host's is steady, unless the user chose a clock. */
static void test_tcg_tsc_reliable(void **state)
{
	struct vm_config cfg;
	struct plan p;
	struct host_facts tsc = host_with(KVM_PVM, false), kvm = host_with(KVM_USABLE, false);
	(void)state;

	/* TCG on a host that keeps time with its TSC: the guest is told its TSC is reliable, not the HPET */
	tsc.tsc_clocksource = kvm.tsc_clocksource = true;
	load("[vm]\nname = t\n" BOOT "append = quiet\n", &cfg);
	assert_int_equal(plan_build(&cfg, &tsc, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check tsc=reliable quiet");
	assert_non_null(strstr(p.cmdline_why, "tsc=reliable"));
	plan_free(&p);
	/* KVM gives the guest kvmclock: left alone */
	assert_int_equal(plan_build(&cfg, &kvm, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 quiet");
	plan_free(&p);
	/* a host keeping time with something else (kvm-clock in a VM) whose CPU says its TSC is invariant: the
	 * guest's TSC (the host's, never going back) ticks at one rate, so it is trusted too */
	tsc.tsc_clocksource = false;
	tsc.tsc_invariant = true;
	assert_int_equal(plan_build(&cfg, &tsc, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check tsc=reliable quiet");
	plan_free(&p);
	/* neither: the guest keeps its own judgement (the HPET) */
	tsc.tsc_invariant = false;
	assert_int_equal(plan_build(&cfg, &tsc, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check quiet");
	plan_free(&p);
	tsc.tsc_clocksource = true;
	config_free(&cfg);
	/* the user's own clock choice wins */
	load("[vm]\nname = t\n" BOOT "append = quiet clocksource=hpet\n", &cfg);
	assert_int_equal(plan_build(&cfg, &tsc, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check quiet clocksource=hpet");
	plan_free(&p);
	config_free(&cfg);
	load("[vm]\nname = t\n" BOOT "append = tsc=unstable\n", &cfg);
	assert_int_equal(plan_build(&cfg, &tsc, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check tsc=unstable");
	plan_free(&p);
	config_free(&cfg);
}

static void test_agent_mode_without_a_kernel(void **state)
{
	struct vm_config cfg;
	struct plan p;
	struct host_facts tty = host_with(KVM_PVM, true);
	(void)state;

	/* without a kernel the command goes through the guest's qemu-guest-agent, with nothing over fw_cfg (a boot
	 * device of its own, or the config would have nothing to boot) */
	load("[vm]\nname = t\n[qemu]\nextra = -cdrom installer.iso\n", &cfg);
	tty.stdout_is_tty = true;
	assert_int_equal(plan_build(&cfg, &tty, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_true(p.agent_mode);
	assert_null(p.argv_file);
	assert_int_equal(p.n_guest_files, 0);
	assert_false(p.command_tty); /* guest-exec has no pty */
	plan_free(&p);
	config_free(&cfg);
}

static void test_iothread_polls_on_any_cpu(void **state)
{
	struct host_facts h = host_with(KVM_USABLE, false);
	struct storage_target t = { .driver = DRIVER_FILE, .filename = "/x", .direct_ok = true, .ephemeral = true };
	struct vm_config cfg;
	struct plan p;
	(void)state;

	h.topo.n_nodes = 1;
	h.topo.nodes = xcalloc(1, sizeof(*h.topo.nodes));
	h.topo.nodes[0].mem_free = 8ULL << 30;
	h.topo.max_cpu = 3;
	h.topo.core_of = xcalloc(4, sizeof(unsigned));
	for (unsigned c = 0; c < 4; c++)
		h.topo.core_of[c] = c;
	assert_int_equal(cpulist_parse("0-3", &h.topo.nodes[0].cpus), 0);

	load("[vm]\ncpus = 1\n" BOOT "[disk d]\nbackend = tmpfs\nsize = 1G\n", &cfg);
	assert_int_equal(plan_build(&cfg, &h, &t, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	/* vCPU on 0, the iothread alone on 1 */
	assert_non_null(strstr(p.disks[0].why, "the iothread busy-polls"));
	plan_free(&p);
	config_free(&cfg);

	load("[vm]\ncpus = 4\n" BOOT "[disk d]\nbackend = tmpfs\nsize = 1G\n", &cfg);
	assert_int_equal(plan_build(&cfg, &h, &t, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	/* every CPU runs a vCPU: qemu's adaptive polling still pays (measured 1.3-1.5x under TCG on 2 shared CPUs) */
	assert_non_null(strstr(p.disks[0].why, "the iothread busy-polls"));
	assert_null(strstr(p.disks[0].why, "poll-max-ns=0"));
	plan_free(&p);
	config_free(&cfg);
	topology_free(&h.topo);
}

static void test_poll_queue_under_tcg(void **state)
{
	struct host_facts tcg = host_with(KVM_PVM, false), kvm = host_with(KVM_USABLE, false);
	struct storage_target t = { .driver = DRIVER_FILE, .filename = "/x", .direct_ok = true, .ephemeral = true };
	struct vm_config cfg;
	struct plan p;
	(void)state;

	/* TCG, 2 vCPUs, a disk: one poll queue per virtio-blk disk, before the user's words */
	load("[vm]\ncpus = 2\n" BOOT "append = quiet\n[disk d]\nbackend = tmpfs\nsize = 1G\n", &cfg);
	assert_int_equal(plan_build(&cfg, &tcg, &t, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check virtio_blk.poll_queues=1 quiet");
	assert_non_null(strstr(p.cmdline_why, "virtio_blk.poll_queues=1: "));
	plan_free(&p);
	/* KVM: interrupts are cheap there; left alone */
	assert_int_equal(plan_build(&cfg, &kvm, &t, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 quiet");
	assert_null(strstr(p.cmdline_why, "poll_queues"));
	plan_free(&p);
	config_free(&cfg);

	/* one vCPU: the guest caps its queues at its CPU count, a poll queue would leave no interrupt queue */
	load("[vm]\ncpus = 1\n" BOOT "append = quiet\n[disk d]\nbackend = tmpfs\nsize = 1G\n", &cfg);
	assert_int_equal(plan_build(&cfg, &tcg, &t, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check quiet");
	plan_free(&p);
	config_free(&cfg);

	/* the user's own poll_queues wins, and is not doubled */
	load("[vm]\ncpus = 2\n" BOOT "append = virtio_blk.poll_queues=0\n[disk d]\nbackend = tmpfs\nsize = 1G\n", &cfg);
	assert_int_equal(plan_build(&cfg, &tcg, &t, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_string_equal(p.cmdline, "console=ttyS0 panic=-1 mitigations=off no_timer_check virtio_blk.poll_queues=0");
	plan_free(&p);
	config_free(&cfg);
}

/* READY=1 waits for what a user gets in by: ssh through its forward first, else the agent or the guest's ports. */
static void test_ready_waits_for_the_way_in(void **state)
{
	struct vm_config cfg;
	struct plan p;
	struct host_facts h = host_with(KVM_PVM, false);
	(void)state;

	load("[vm]\nname = t\n" BOOT "[net n0]\nforward = tcp:2200-:22\nforward = tcp:8080-:80\n", &cfg);
	assert_int_equal(plan_build(&cfg, &h, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_int_equal(p.ready, READY_SSH);
	assert_string_equal(p.ssh_host, "127.0.0.1");
	assert_int_equal(p.ssh_port, 2200);
	assert_non_null(strstr(p.ready_why, "127.0.0.1:2200"));
	plan_free(&p);
	config_free(&cfg);

	load("[vm]\nname = t\n[boot]\nfirmware = bios\n[qemu]\nextra = -cdrom installer.iso\n", &cfg); /* firmware boot: -- COMMAND via the agent */
	assert_int_equal(plan_build(&cfg, &h, NULL, &nopriv, &(struct run_request){ .command_mode = true }, &p), 0);
	assert_int_equal(p.ready, READY_AGENT);
	plan_free(&p);
	assert_int_equal(plan_build(&cfg, &h, NULL, &nopriv, &(struct run_request){ .command_mode = false }, &p), 0);
	assert_int_equal(p.ready, READY_AT_START);
	plan_free(&p);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accel),
		cmocka_unit_test(test_disk_io),
		cmocka_unit_test(test_console_and_command_mode),
		cmocka_unit_test(test_kvm_leaves_the_cmdline_alone),
		cmocka_unit_test(test_tcg_tsc_reliable),
		cmocka_unit_test(test_agent_mode_without_a_kernel),
		cmocka_unit_test(test_iothread_polls_on_any_cpu),
		cmocka_unit_test(test_poll_queue_under_tcg),
		cmocka_unit_test(test_ready_waits_for_the_way_in),
	};
	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
