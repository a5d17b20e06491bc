/* One launch: acquire (state dir, journal, guardian, hugepages, disks, devices), run qemu, then undo in journal
 * order; a stop signal at any step ends it there. */
#define _GNU_SOURCE
#include "launch.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "console.h"
#include "exit_status.h"
#include "guardian.h"
#include "cloud_init.h"
#include "firmware.h"
#include "guest_files.h"
#include "hugepages.h"
#include "pin.h"
#include "privileges.h"
#include "journal.h"
#include "log.h"
#include "plan.h"
#include "process.h"
#include "qemu_argv.h"
#include "notify.h"
#include "run.h"
#include "share.h"
#include "snapshot.h"
#include "tap.h"
#include "tpm.h"
#include "status.h"
#include "state_dir.h"
#include "storage.h"
#include "strv.h"
#include "test_hook.h"

/* Signals are read through a signalfd from the moment anything is acquired: a Ctrl-C then means "stop the VM and
 * undo", never "die with a half-made setup". */
static int block_signals(sigset_t *set)
{
	int fd;

	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, set, NULL) < 0)
		return log_errno(errno, "sigprocmask");
	fd = signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return log_errno(errno, "signalfd");
	return fd;
}

static bool stop_requested(int sigfd)
{
	struct signalfd_siginfo si;

	if (read(sigfd, &si, sizeof(si)) != sizeof(si))
		return false;
	log_error("interrupted by %s before the VM started", strsignal((int)si.ssi_signo));
	return true;
}

/* qemu as another user gets its disks, console log and sockets as open fds (qemu_argv.c, run.c): nothing on the host
 * changes owner. What it still opens by name are files vmlaunch wrote in the state dir (fw_cfg files, a key, a ceph
 * conf): those become root:QEMU-GROUP 0640, and the state dir searchable (0711) but neither listable nor writable,
 * so the journal and everything else in it stay root's. */
static int hand_over(const struct plan *plan, const struct storage_target *targets, const struct state_dir *state)
{
	const struct privileges *pv = plan->privileges;
	int r = 0;

	if (!pv->switch_user)
		return 0;
	if (chmod(state->dir, 0711) < 0)
		return log_errno(errno, "cannot open %s to user %s", state->dir, pv->user);
	for (size_t i = 0; !r && i < plan->n_guest_files; i++)
		r = privileges_give(pv, plan->guest_files[i].path);
	for (size_t i = 0; !r && i < plan->n_disks; i++)
		for (size_t k = 0; !r && k < targets[i].qemu_opens.n; k++)
			r = privileges_give(pv, targets[i].qemu_opens.v[k]);
	return r;
}

/* One launch's acquisitions, in the order they are made and undone. */
struct launch_run {
	const struct vm_config *cfg;
	struct plan *plan;
	struct storage_target *targets;
	struct snapshot *snap;
	struct state_dir state;
	struct journal journal;
	struct guardian guardian;
	struct vm_process vm;
	struct qemu_cmdline cmdline;
	int sigfd;
	int *extra; /* fds handed to qemu besides the fixed ones (tap queues), -1 where none */
	bool stopped;      /* a stop signal came before qemu started */
	bool bad_snapshot; /* the running qemu is not the one the snapshot was made by: exit 2 */
};

/* The state dir, its journal, and the guardian that undoes the journal if vmlaunch is killed. */
static int begin_run(struct launch_run *l)
{
	int r = state_dir_acquire(&l->state, l->plan->host->state_root, l->cfg->name);

	if (r < 0)
		return r;
	log_info("state: %s (locked); every step below is journaled before it acts", l->state.dir);
	/* inherited by every program started from here on: how an undo knows a pid is this VM's (process.c) */
	if (setenv(PROCESS_STATE_ENV, l->state.dir, 1) < 0)
		return log_errno(errno, "setenv");
	r = journal_create(&l->journal, l->state.dir);
	if (r < 0)
		return r;
	r = guardian_start(&l->guardian, &l->state);
	if (r == 0)
		test_hook_stop_at("state");
	return r;
}

/* Hugepages and disks, in that order; -EINTR when a stop signal came in between. */
static int make_memory_and_disks(struct launch_run *l)
{
	const struct vm_config *cfg = l->cfg;
	struct plan *plan = l->plan;
	int r = 0;

	if (plan->hugepages >= 0) {
		log_info("hugepages: %llu pages for guest RAM", (unsigned long long)plan->hugepages_count);
		r = hugepages_reserve(plan->host->topo.numa, plan->memory_node, plan->hugepages, plan->hugepages_count,
				      l->state.dir, &l->journal);
		if (r < 0)
			return r;
		test_hook_stop_at("hugepages");
	}
	for (size_t i = 0; i < cfg->n_disks && r >= 0; i++) {
		if (stop_requested(l->sigfd)) {
			l->stopped = true;
			return -EINTR;
		}
		log_info("preparing disk \"%s\" (%s)", cfg->disks[i].name, backend_kind_name(cfg->disks[i].backend));
		r = storage_prepare(&(struct storage_context){ cfg, l->state.dir, plan->privileges }, &cfg->disks[i],
				    &l->targets[i], &l->journal);
	}
	return r;
}

/* What the guest sees besides its disks: the bundled guest's files, shares, TPM, firmware variables, the seed,
 * and the taps (whose queue fds go to qemu as extra fds). */
static int make_guest_devices(struct launch_run *l, const struct strv *command)
{
	struct plan *plan = l->plan;
	int r = guest_files_write(plan, command);

	for (size_t i = 0; i < plan->n_shares && r >= 0; i++)
		r = share_start(&plan->shares[i], plan->host->virtiofsd, &l->journal);
	if (r == 0 && plan->n_shares)
		test_hook_stop_at("share");
	if (r == 0 && plan->tpm.wanted)
		r = tpm_start(&plan->tpm, plan->host->swtpm, plan->privileges, &l->journal);
	if (r == 0 && plan->uefi)
		r = firmware_vars_prepare(plan->uefi->vars_template, plan->uefi_vars, !l->cfg->nvram, &l->journal);
	if (r == 0 && plan->seed)
		r = cloud_init_make_seed(plan, &l->journal);
	if (r < 0)
		return r;
	l->extra = xcalloc(plan->n_extra_fds + 1, sizeof(*l->extra));
	for (size_t i = 0; i <= plan->n_extra_fds; i++)
		l->extra[i] = -1;
	for (size_t i = 0; i < plan->n_nets && r >= 0; i++) {
		const struct net_plan *n = &plan->nets[i];

		if (n->cfg->mode == NET_TAP)
			r = tap_open(n, &l->journal, &l->extra[n->fd_base - QEMU_FD_EXTRA],
				     &l->extra[n->fd_base - QEMU_FD_EXTRA + n->queues]);
	}
	if (r == 0 && plan->n_nets)
		test_hook_stop_at("network");
	return r;
}

static void close_extra_fds(struct launch_run *l)
{
	for (size_t i = 0; l->extra && i < l->plan->n_extra_fds; i++)
		if (l->extra[i] >= 0)
			close(l->extra[i]);
	free(l->extra);
	l->extra = NULL;
}

/* The command line, built now that the disks exist (some learn their device only when made: /dev/zramN), and
 * qemu started on it, paused; with a snapshot to restore, its state loaded. */
static int start_qemu(struct launch_run *l)
{
	struct snapshot *snap = l->snap;
	int r = 0;

	if (snap->save || snap->restore)
		r = snap->save ? snapshot_prepare(snap, l->plan, &l->journal)
			       : snapshot_restore_disks(snap, l->plan, &l->journal);
	if (r == 0 && snap->restore)
		r = snapshot_restore_varstore(snap, l->plan);
	if (r < 0)
		return r;
	qemu_argv_build(l->plan, &l->cmdline);
	if (snap->restore)
		snapshot_restore_argv(snap, l->plan, &l->cmdline);
	if (log_verbose) {
		char *joined = strv_join(&l->cmdline.argv, " ");

		log_info("starting qemu: %s", joined);
		free(joined);
	}
	r = run_start(l->plan, &l->cmdline, l->extra, &l->journal, &l->vm);
	close_extra_fds(l); /* qemu holds them now: a tap lives as long as its last queue fd */
	if (r < 0)
		return r;
	guardian_qemu_started(&l->guardian);
	if (!snap->restore)
		return 0;
	test_hook_stop_at("snapshot-restore");
	r = snapshot_check_qemu(snap, &l->vm.qmp);
	l->bad_snapshot = r < 0;
	return r < 0 ? r : snapshot_load(snap, &l->vm.qmp);
}

/* Undoes everything, newest first; the exit status, made a failure when an undo failed after a good run. */
static int end_run(struct launch_run *l, int status, const struct termios *saved_tty)
{
	close_extra_fds(l);
	run_cleanup(&l->vm);
	qemu_cmdline_free(&l->cmdline);
	if (saved_tty)
		tcsetattr(0, TCSANOW, saved_tty); /* qemu's stdio chardev leaves a raw terminal if it is killed */
	if (l->journal.path) {
		journal_close(&l->journal);
		if (journal_replay(l->state.dir) < 0 && status == EXIT_VM_OK)
			status = EXIT_SETUP_FAILED;
	}
	if (state_dir_release(&l->state) < 0 && status == EXIT_VM_OK)
		status = EXIT_SETUP_FAILED;
	guardian_dismiss(&l->guardian);
	notify_systemd("STATUS=stopped");
	return status;
}

int launch(const struct vm_config *cfg, struct plan *plan, struct storage_target *targets,
	   const struct strv *command, struct snapshot *snap)
{
	struct launch_run l = {
		.cfg = cfg, .plan = plan, .targets = targets, .snap = snap,
		.state = { .lock_fd = -1 }, .journal = { .fd = -1 },
		.guardian = { .pid = -1, .pidfd = -1, .pipe_fd = -1 },
		.vm = { .pid = -1, .pidfd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1, .agent_fd = -1, .in_fd = -1,
			.console = CONSOLE_INIT },
	};
	struct termios saved_tty;
	bool tty_saved = plan->interactive && tcgetattr(0, &saved_tty) == 0;
	int status = EXIT_SETUP_FAILED, r;
	sigset_t set;

	l.sigfd = block_signals(&set);
	if (l.sigfd < 0)
		return EXIT_SETUP_FAILED;
	r = begin_run(&l);
	if (r == 0)
		r = make_memory_and_disks(&l);
	if (r == 0)
		r = make_guest_devices(&l, command);
	if (r == 0)
		r = hand_over(plan, targets, &l.state);
	if (r == 0 && stop_requested(l.sigfd)) {
		l.stopped = true;
		r = -EINTR;
	}
	if (r == 0)
		r = start_qemu(&l);
	if (r == 0)
		r = pin_threads(&l.vm.qmp, l.vm.pid, plan);
	if (r == 0)
		r = status_write_info(plan, l.state.dir);
	if (r == 0) {
		test_hook_stop_at("qemu");
		log_info("supervising qemu (pid %d): signals, QMP events%s", (int)l.vm.pid,
			 plan->command_mode ? ", the command's output and status" : "");
		status = snap->save ? snapshot_save(snap, plan, &l.cmdline, &l.vm, l.sigfd, &l.journal)
				    : run_supervise(plan, &l.vm, l.sigfd, &l.guardian);
		log_info("the VM stopped (exit status %d); undoing what was set up, newest first", status);
	} else if (l.stopped) {
		status = 128 + SIGINT;
	} else if (l.bad_snapshot) {
		status = EXIT_BAD_INPUT;
	}
	status = end_run(&l, status, tty_saved ? &saved_tty : NULL);
	close(l.sigfd);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	return status;
}
