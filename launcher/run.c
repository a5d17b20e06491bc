/* Spawns qemu: its fds, channels and environment, fork and exec, QMP connected; supervise.c runs the VM from there. */
#define _GNU_SOURCE
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privileges.h"
#include "signals.h"
#include "state_dir.h"
#include "process.h"
#include "log.h"
#include "strv.h"

extern char **environ;

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* In the child between vfork and exec, in vmlaunch's memory (vmlaunch waits meanwhile): it never returns, and writes
 * nothing of vmlaunch's but libcap-ng's state and the heap (freed again) of its /proc reads. Otherwise only
 * async-signal-safe calls. `handed` (n_handed of them: the devices' fds,
 * then what qemu_argv passes instead of paths) land on QEMU_FD_EXTRA.., `moved` is scratch space for all of them
 * and the channels, allocated by the parent; `reset`, the signals not at their default. */
static void child_exec(const struct plan *p, const struct qemu_cmdline *c, char **envp, const int src[QEMU_FD_COUNT],
		       const int *handed, size_t n_handed, int *moved, int errpipe, pid_t parent, const sigset_t *reset)
{
	static const int target[QEMU_FD_COUNT] = { QEMU_FD_QMP,	   QEMU_FD_STDOUT, QEMU_FD_STDERR, QEMU_FD_STATUS,
						  QEMU_FD_QMP_EXT, QEMU_FD_AGENT,  QEMU_FD_STDIN, QEMU_FD_CONSOLE };
	size_t n = QEMU_FD_COUNT + n_handed;
	int e;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		goto fail; /* the parent died before we could tie ourselves to it */
	if (!p->interactive)
		setpgid(0, 0);
	signals_reset(reset);
	if (p->command_mode) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0)
			goto fail;
		if (null != 0)
			close(null);
	}
	/* Move everything out of the way first so no dup2 overwrites a source still to be moved. */
	for (size_t i = 0; i < n; i++) {
		int from = i < QEMU_FD_COUNT ? src[i] : handed[i - QEMU_FD_COUNT];

		moved[i] = from < 0 ? -1 : fcntl(from, F_DUPFD_CLOEXEC, 64 + (int)n);
		if (from >= 0 && moved[i] < 0)
			goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if (moved[i] >= 0 &&
		    dup2(moved[i], i < QEMU_FD_COUNT ? target[i] : QEMU_FD_EXTRA + (int)(i - QEMU_FD_COUNT)) < 0)
			goto fail;
	/* Everything else vmlaunch holds (locks, journal, signalfd) stays out of qemu. */
	syscall(SYS_close_range, QEMU_FD_EXTRA + n_handed, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	if (p->privileges && privileges_drop(p->privileges) < 0)
		goto fail;
	/* A change of uid clears the death signal: set it again as the new user, and make sure the parent did not die
	 * in between (then we belong to init, and nothing would ever stop us). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		goto fail;
	execve(c->argv.v[0], c->argv.v, envp);
fail:
	e = errno;
	if (write(errpipe, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* STATE_DIR/qmp.sock, bound by vmlaunch so qemu needs no write access to the state dir (it may run as another
 * user); qemu accepts on it. Removed with the state dir. */
static int listen_qmp(const struct plan *p)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/" STATE_QMP, p->state_dir) >= sizeof(addr.sun_path))
		return log_errno(ENAMETOOLONG, "%s/" STATE_QMP, p->state_dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_errno(errno, "socket");
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 4) < 0) {
		int r = log_errno(errno, "cannot listen on %s", addr.sun_path);

		close(fd);
		return r;
	}
	return fd;
}

/* Opens what qemu is handed instead of paths (qemu_cmdline.fds), as vmlaunch: a file with its flags, or a connection
 * to a unix socket (virtiofsd's). Fills fds[] (-1 where nothing was opened yet); 0 or -errno after logging. */
static int open_passed(const struct qemu_cmdline *c, int *fds)
{
	for (size_t i = 0; i < c->n_fds; i++)
		fds[i] = -1;
	for (size_t i = 0; i < c->n_fds; i++) {
		const struct qemu_fd *f = &c->fds[i];

		if (f->connect) {
			struct sockaddr_un addr = { .sun_family = AF_UNIX };

			if (strlen(f->path) >= sizeof(addr.sun_path))
				return log_errno(ENAMETOOLONG, "%s", f->path);
			strcpy(addr.sun_path, f->path);
			fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&addr, sizeof(addr)) < 0)
				return log_errno(errno, "cannot connect to %s", f->path);
		} else {
			/* created 0600 when it does not exist (a console log): qemu writes through the fd, never the path */
			fds[i] = open(f->path, f->flags | ((f->flags & O_ACCMODE) == O_WRONLY ? O_CREAT : 0), 0600);
			if (fds[i] < 0)
				return log_errno(errno, "cannot open %s for qemu", f->path);
		}
	}
	return 0;
}

static void close_passed(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* vmlaunch's environment, plus tcmalloc preloaded into qemu alone, never into vmlaunch's other children. */
static void qemu_environment(const struct plan *p, struct strv *env)
{
	const char *old = getenv("LD_PRELOAD");

	for (char **e = environ; *e; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11))
			strv_push(env, *e);
	if (p->tcmalloc)
		strv_pushf(env, "LD_PRELOAD=%s%s%s", p->tcmalloc, old && *old ? " " : "", old && *old ? old : "");
	else if (old)
		strv_pushf(env, "LD_PRELOAD=%s", old);
}

/* The channels between vmlaunch and qemu while it starts: vmlaunch's ends stay, qemu's go with its exec. */
struct channels {
	/* 0 QMP, 1-3 the bundled guest's stdout, stderr and status, 4 qemu-guest-agent, 5 the bundled guest's stdin */
	int pairs[6][2];
	int child_ends[QEMU_FD_COUNT]; /* what qemu gets, in QEMU_FD_* order */
	int listen_fd;                 /* qmp.sock */
	int errpipe[2];                /* the child's errno when its exec fails; closed by a good exec */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Every pair, the QMP listener, the console and the exec check, each only when this plan uses it. */
static int open_channels(const struct plan *p, struct vm_process *vm, struct channels *ch)
{
	int r;

	for (int i = 0; i < 6; i++)
		if ((i == 0 || (i != 4 && p->command_mode && !p->agent_mode) || (i == 4 && p->agent_mode)) &&
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch->pairs[i]) < 0)
			return log_errno(errno, "socketpair");
	if (pipe2(ch->errpipe, O_CLOEXEC) < 0)
		return log_errno(errno, "pipe");
	if (p->console_socket) {
		r = console_open(&vm->console, p->console_socket, p->console_log, p->console_to_stdout,
				 &ch->child_ends[7]);
		vm->console.watch_uefi_shell = p->uefi != NULL;
		if (r == 0 && p->console_on_terminal)
			r = console_terminal_start(&vm->console, p->cfg->name);
		if (r < 0)
			return r;
	}
	ch->listen_fd = listen_qmp(p);
	if (ch->listen_fd < 0)
		return ch->listen_fd;
	for (int i = 0; i < 4; i++)
		ch->child_ends[i] = ch->pairs[i][1];
	ch->child_ends[4] = ch->listen_fd;
	ch->child_ends[5] = ch->pairs[4][1];
	ch->child_ends[6] = ch->pairs[5][1];
	return 0;
}

static void close_channels(struct channels *ch)
{
	for (int i = 0; i < 6; i++)
		for (int k = 0; k < 2; k++)
			close_fd(&ch->pairs[i][k]);
	close_fd(&ch->listen_fd);
	close_fd(&ch->child_ends[7]);
	close_fd(&ch->errpipe[0]);
	close_fd(&ch->errpipe[1]);
}

/* After the fork: the kill recorded first, then whether the exec worked (the pipe closes on a good one). */
static int check_exec(const struct qemu_cmdline *c, struct journal *journal, struct vm_process *vm, struct channels *ch)
{
	int child_errno = 0, r;
	ssize_t n;

	close_fd(&ch->errpipe[1]);
	/* Recorded before anything else: if vmlaunch dies from here on, the replay kills this qemu (pid + start time,
	 * never a reused pid) and waits for it to let go of the disks before removing them. */
	r = process_journal_kill(journal, vm->pid);
	if (r < 0)
		return r;
	do
		n = read(ch->errpipe[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close_fd(&ch->errpipe[0]);
	if (n > 0) {
		waitpid(vm->pid, NULL, 0);
		vm->pid = -1;
		return log_errno(child_errno, "cannot start %s", c->argv.v[0]);
	}
	return 0;
}

/* qemu has its ends: vmlaunch keeps its own in vm, and talks QMP. */
static int take_channels(struct vm_process *vm, struct channels *ch)
{
	int r;

	for (int i = 0; i < 6; i++)
		close_fd(&ch->pairs[i][1]);
	close_fd(&ch->listen_fd);
	close_fd(&ch->child_ends[7]);
	vm->pidfd = pidfd_open_(vm->pid);
	if (vm->pidfd < 0)
		return log_errno(errno, "pidfd_open");
	vm->out_fd = ch->pairs[1][0];
	vm->err_fd = ch->pairs[2][0];
	vm->status_fd = ch->pairs[3][0];
	vm->agent_fd = ch->pairs[4][0];
	vm->in_fd = ch->pairs[5][0];
	ch->pairs[1][0] = ch->pairs[2][0] = ch->pairs[3][0] = ch->pairs[4][0] = ch->pairs[5][0] = -1;
	r = qmp_connect(&vm->qmp, ch->pairs[0][0], NULL, NULL, QMP_TIMEOUT_MS, true);
	ch->pairs[0][0] = -1; /* owned by vm->qmp now */
	return r;
}

int run_start(const struct plan *p, const struct qemu_cmdline *c, const int *extra_fds, struct journal *journal,
	      struct vm_process *vm)
{
	struct strv env = STRV_INIT;
	struct channels ch = { .listen_fd = -1, .errpipe = { -1, -1 } };
	/* the devices' fds (the caller's), then what qemu_argv passes instead of paths (ours to open and close) */
	size_t n_handed = p->n_extra_fds + c->n_fds;
	int *handed = xcalloc(n_handed + 1, sizeof(int)), *passed = handed + p->n_extra_fds;
	int *moved = xcalloc(QEMU_FD_COUNT + n_handed, sizeof(int));
	pid_t parent = getpid();
	sigset_t reset;
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->pid = -1;
	vm->pidfd = vm->qmp.fd = vm->out_fd = vm->err_fd = vm->status_fd = vm->agent_fd = vm->in_fd = -1;
	vm->console = (struct console)CONSOLE_INIT;
	memset(ch.pairs, -1, sizeof(ch.pairs));
	ch.child_ends[7] = -1;
	for (size_t i = 0; i < c->n_fds; i++)
		passed[i] = -1; /* nothing to close on an early failure */
	for (size_t i = 0; i < p->n_extra_fds; i++)
		handed[i] = extra_fds[i];
	r = open_passed(c, passed);
	if (r == 0)
		r = open_channels(p, vm, &ch);
	if (r < 0)
		goto fail;
	qemu_environment(p, &env);
	(void)signals_not_default(&reset); /* on failure: all of them */
	/* vfork: no copy of vmlaunch's page tables and no copy-on-write faults before the exec (fork cost the child
	 * more than half of its time to the exec here); vmlaunch is single-threaded and waits until the exec. */
	vm->pid = vfork();
	if (vm->pid < 0) {
		r = log_errno(errno, "cannot fork");
		goto fail;
	}
	if (vm->pid == 0)
		child_exec(p, c, env.v, ch.child_ends, handed, n_handed, moved, ch.errpipe[1], parent, &reset);
	strv_free(&env);
	close_passed(passed, c->n_fds); /* qemu has its copies; a path vmlaunch opened is never reopened by it */
	free(handed);
	handed = passed = NULL;
	free(moved);
	moved = NULL;
	r = check_exec(c, journal, vm, &ch);
	if (r == 0)
		r = take_channels(vm, &ch);
	if (r == 0)
		return 0;
fail:
	strv_free(&env);
	if (handed)
		close_passed(passed, c->n_fds);
	free(handed);
	free(moved);
	close_channels(&ch);
	if (vm->pid > 0) {
		int status;

		/* qemu that started but did not talk QMP: its own message is already on stderr. */
		kill(vm->pid, SIGKILL);
		waitpid(vm->pid, &status, 0);
		vm->pid = -1;
		if (WIFEXITED(status))
			log_error("qemu exited with status %d before the VM started (its message is above)",
				  WEXITSTATUS(status));
	}
	run_cleanup(vm);
	return r;
}

void run_cleanup(struct vm_process *vm)
{
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		waitpid(vm->pid, NULL, 0);
		vm->pid = -1;
	}
	qmp_close(&vm->qmp);
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	if (vm->out_fd >= 0)
		close(vm->out_fd);
	if (vm->err_fd >= 0)
		close(vm->err_fd);
	if (vm->status_fd >= 0)
		close(vm->status_fd);
	if (vm->agent_fd >= 0)
		close(vm->agent_fd);
	if (vm->in_fd >= 0)
		close(vm->in_fd);
	vm->pidfd = vm->out_fd = vm->err_fd = vm->status_fd = vm->agent_fd = vm->in_fd = -1;
	console_close(&vm->console);
	console_terminal_wait(&vm->console);
}
