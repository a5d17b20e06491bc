/* Guarantees teardown when vmlaunch itself is killed: a forked watcher replays the journal when vmlaunch's pipe closes. */
#define _GNU_SOURCE
#include "guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "strv.h"
#include "test_hook.h"
#include "trim.h"

#define GUARDIAN_DONE 'D'
#define GUARDIAN_QEMU_STARTED 'S'

static void guardian_main(const struct state_dir *state, int pipe_fd, pid_t owner, const struct termios *tty)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	char c;
	ssize_t n;
	int null;

	setsid(); /* out of vmlaunch's process group: a Ctrl-C or a kill of the group does not reach it */
	test_hook_disable();
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		/* a terminal on stdin stays, to be restored; anything else (a pipe) must not be held open by us */
		if (!tty)
			dup2(null, 0);
		dup2(null, 1);
	}
	/* Keep only stderr (to say what happened), the pipe and the lock: close_range over the gaps between them, not a
	 * close() per possible fd, which the launch waits for on a busy 2-CPU host. */
	{
		unsigned lo = (unsigned)(pipe_fd < state->lock_fd ? pipe_fd : state->lock_fd);
		unsigned hi = (unsigned)(pipe_fd < state->lock_fd ? state->lock_fd : pipe_fd);

		if (lo > 3)
			syscall(SYS_close_range, 3U, lo - 1, 0U);
		if (hi > lo + 1)
			syscall(SYS_close_range, lo + 1, hi - 1, 0U);
		syscall(SYS_close_range, hi + 1, ~0U, 0U);
	}
	for (;;) {
		n = read(pipe_fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		/* It may wait for days: what it needs in the meantime is one read(). Trimmed once qemu runs, not
		 * before: the launch is waiting for the CPU this takes. */
		if (n == 1 && c == GUARDIAN_QEMU_STARTED) {
			trim_resident();
			continue;
		}
		break;
	}
	if (n == 1 && c == GUARDIAN_DONE)
		_exit(0);

	/* first, so that the user can read what follows: vmlaunch may have died with the terminal raw */
	if (tty)
		tcsetattr(0, TCSADRAIN, tty);
	log_warn("vmlaunch (pid %d) ended without cleaning up; undoing what it set up for %s", (int)owner, state->dir);
	journal_replay(state->dir);
	state_dir_remove(state);
	_exit(0);
}

int guardian_start(struct guardian *g, const struct state_dir *state)
{
	int fds[2];
	pid_t owner = getpid();

	g->state = state;
	if (!g->tty_saved && isatty(0) && tcgetattr(0, &g->tty) == 0)
		g->tty_saved = true;
	g->pid = -1;
	g->pidfd = g->pipe_fd = -1;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return log_errno(errno, "pipe");
	fflush(stderr);
	g->pid = fork();
	if (g->pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return log_errno(errno, "cannot fork the guardian");
	}
	if (g->pid == 0) {
		close(fds[1]);
		guardian_main(state, fds[0], owner, g->tty_saved ? &g->tty : NULL);
	}
	close(fds[0]);
	g->pipe_fd = fds[1];
	g->pidfd = (int)syscall(SYS_pidfd_open, g->pid, 0);
	if (g->pidfd < 0)
		return log_errno(errno, "pidfd_open");
	fcntl(g->pidfd, F_SETFD, FD_CLOEXEC);
	return 0;
}

void guardian_qemu_started(struct guardian *g)
{
	char c = GUARDIAN_QEMU_STARTED;

	g->qemu_started = true;
	/* a guardian that cannot be told only keeps its start-up pages */
	if (g->pipe_fd >= 0 && write(g->pipe_fd, &c, 1) != 1)
		log_warn("cannot tell the guardian that qemu runs: %s", strerror(errno));
}

void guardian_dismiss(struct guardian *g)
{
	char c = GUARDIAN_DONE;

	if (g->pipe_fd >= 0) {
		if (write(g->pipe_fd, &c, 1) != 1)
			log_warn("cannot dismiss the guardian: %s", strerror(errno));
		close(g->pipe_fd);
		g->pipe_fd = -1;
	}
	if (g->pid > 0)
		while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
			;
	if (g->pidfd >= 0)
		close(g->pidfd);
	g->pid = g->pidfd = -1;
}

int guardian_restart(struct guardian *g)
{
	int r;

	if (g->pid > 0)
		waitpid(g->pid, NULL, 0);
	if (g->pidfd >= 0)
		close(g->pidfd);
	if (g->pipe_fd >= 0)
		close(g->pipe_fd);
	log_warn("the guardian (pid %d) died; starting another", (int)g->pid);
	r = guardian_start(g, g->state);
	if (r == 0 && g->qemu_started)
		guardian_qemu_started(g);
	return r;
}
