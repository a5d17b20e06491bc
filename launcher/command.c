/* One place that spawns short-lived helper programs and collects their output. */
#define _GNU_SOURCE
#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "privileges.h"
#include "process.h"
#include "strv.h"
#include "test_hook.h"

/* Reads both pipes until EOF without deadlocking on either. */
static void collect(int out_fd, int err_fd, char **out, char **err)
{
	struct pollfd pfd[2] = { { out_fd, POLLIN, 0 }, { err_fd, POLLIN, 0 } };
	char *buf[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 };
	int open_fds = 2;

	while (open_fds > 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			char chunk[4096];
			ssize_t n;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			n = read(pfd[i].fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				pfd[i].fd = -1;
				open_fds--;
				continue;
			}
			buf[i] = xrealloc(buf[i], len[i] + (size_t)n + 1);
			memcpy(buf[i] + len[i], chunk, (size_t)n);
			len[i] += (size_t)n;
			buf[i][len[i]] = '\0';
		}
	}
	*out = buf[0] ? buf[0] : xstrdup("");
	*err = buf[1] ? buf[1] : xstrdup("");
}

/* The child's side of both kinds: its user, its death with vmlaunch, its signals, its fds and stdio; then exec. Between
 * fork and exec of a single-threaded parent: libcap-ng's, initgroups' and setenv's allocations are safe here. */
static void child_exec(char *const argv[], const struct command_child *c, int in_fd, int out_fd, int err_fd, int go_fd,
		       int exec_fd, pid_t parent, bool own_group)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int moved[8];
	sigset_t none;
	char go, pid[24];

	if (c->n_fds > 8)
		_exit(127);
	if (c->cwd_fd && fchdir(*c->cwd_fd) < 0)
		_exit(127);
	/* The user first: the kernel clears the death signal at a change of uid, so it is set after. */
	if (c->as && privileges_drop(c->as) < 0)
		_exit(126);
	/* The helper dies with vmlaunch (a kill mid-`qemu-img convert` must not leave it writing into a disk the
	 * guardian is about to remove); a parent gone already, before the signal was armed, ends it too. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	if (go_fd >= 0 && read(go_fd, &go, 1) != 1)
		_exit(127); /* vmlaunch could not record us: never run unrecorded */
	/* vmlaunch blocks the signals it reads through signalfd; children must start with a clean slate. */
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (own_group)
		setpgid(0, 0); /* a Ctrl-C on the terminal is vmlaunch's to handle */
	for (size_t i = 0; i < c->n_fds; i++)
		if ((moved[i] = fcntl(c->fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
			_exit(127);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	for (size_t i = 0; i < c->n_fds; i++)
		if (dup2(moved[i], 3 + (int)i) < 0)
			_exit(127);
	if (c->n_fds)
		syscall(SYS_close_range, 3 + c->n_fds, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	if (c->socket_activation) {
		/* sd_listen_fds(3)'s protocol: the listening sockets from fd 3 on, for this very pid */
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (setenv("LISTEN_PID", pid, 1) < 0 || setenv("LISTEN_FDS", c->n_fds == 1 ? "1" : "2", 1) < 0)
			_exit(127);
	}
	test_hook_stop_helper(argv);
	execvp(argv[0], argv);
	{
		int e = errno;

		if (write(exec_fd, &e, sizeof(e)) < 0)
			_exit(127);
	}
	_exit(127);
}

/* In the parent after fork: records the child's kill when asked, lets it go on, and reads whether exec worked.
 * 0, or -errno after logging (the child is then killed and reaped). */
static int child_started(char *const argv[], const struct command_child *c, pid_t pid, int go_fd, int exec_fd,
			 const char *what)
{
	int exec_errno, r = 0;

	if (c->journal)
		r = process_journal_kill(c->journal, pid);
	if (r == 0 && go_fd >= 0 && write(go_fd, "g", 1) != 1)
		r = log_errno(errno, "%s: cannot start %s", what ? what : "helper", argv[0]);
	if (go_fd >= 0)
		close(go_fd);
	/* EOF at exec, or the child's errno when exec failed */
	if (r == 0 && read(exec_fd, &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno))
		r = what ? log_errno(exec_errno, "%s: cannot run %s", what, argv[0]) : -exec_errno;
	close(exec_fd);
	if (r < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return r;
}

int command_run_child(char *const argv[], const struct command_child *c, char **out, const char *what)
{
	static const struct command_child plain;
	int out_pipe[2], err_pipe[2], exec_pipe[2], go[2] = { -1, -1 }, status, r, null;
	char *captured_out, *captured_err;
	pid_t pid, parent = getpid();

	if (!c)
		c = &plain;
	if (pipe2(out_pipe, O_CLOEXEC) < 0)
		return log_errno(errno, "pipe");
	if (pipe2(err_pipe, O_CLOEXEC) < 0 || pipe2(exec_pipe, O_CLOEXEC) < 0 || (c->journal && pipe2(go, O_CLOEXEC) < 0)) {
		r = log_errno(errno, "pipe");
		close(out_pipe[0]);
		close(out_pipe[1]);
		return r;
	}
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid = fork();
	if (pid == 0) {
		if (go[1] >= 0)
			close(go[1]);
		child_exec(argv, c, null, out_pipe[1], err_pipe[1], go[0], exec_pipe[1], parent, false);
	}
	if (null >= 0)
		close(null);
	close(out_pipe[1]);
	close(err_pipe[1]);
	close(exec_pipe[1]);
	if (go[0] >= 0)
		close(go[0]);
	r = pid < 0 ? -errno : child_started(argv, c, pid, go[1], exec_pipe[0], what);
	if (pid < 0) {
		if (go[1] >= 0)
			close(go[1]);
		close(exec_pipe[0]);
	}
	if (r < 0) {
		close(out_pipe[0]);
		close(err_pipe[0]);
		if (pid < 0 && what)
			return log_errno(-r, "%s: cannot run %s", what, argv[0]);
		return r;
	}
	collect(out_pipe[0], err_pipe[0], &captured_out, &captured_err);
	close(out_pipe[0]);
	close(err_pipe[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = 0x7f00; /* cannot happen for our own child; report as failure */
			break;
		}
	r = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (r && what) {
		size_t n = strlen(captured_err);

		while (n && (captured_err[n - 1] == '\n' || captured_err[n - 1] == ' '))
			captured_err[--n] = '\0';
		log_error("%s: %s failed (status %d)%s%s", what, argv[0], r, n ? ": " : "", captured_err);
	}
	free(captured_err);
	if (out)
		*out = captured_out;
	else
		free(captured_out);
	return r;
}

int command_run(char *const argv[], char **out, const char *what)
{
	return command_run_child(argv, NULL, out, what);
}

int command_must(char *const argv[], const char *what)
{
	int r = command_run(argv, NULL, what);

	return r > 0 ? -EIO : r;
}

pid_t command_start_child(char *const argv[], const struct command_child *c, const char *log, const char *what)
{
	int go[2], exec_pipe[2], log_fd, null, r;
	pid_t pid, parent = getpid();

	log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (log_fd < 0)
		return log_errno(errno, "%s: cannot create %s", what, log);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || pipe2(go, O_CLOEXEC) < 0) {
		r = log_errno(errno, "%s: pipe", what);
		close(log_fd);
		if (null >= 0)
			close(null);
		return r;
	}
	if (pipe2(exec_pipe, O_CLOEXEC) < 0) {
		r = log_errno(errno, "%s: pipe", what);
		close(go[0]);
		close(go[1]);
		close(log_fd);
		close(null);
		return r;
	}
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(exec_pipe[0]);
		child_exec(argv, c, null, null, log_fd, go[0], exec_pipe[1], parent, true);
	}
	close(log_fd);
	close(null);
	close(go[0]);
	close(exec_pipe[1]);
	if (pid < 0) {
		close(go[1]);
		close(exec_pipe[0]);
		return log_errno(errno, "%s: cannot fork", what);
	}
	r = child_started(argv, c, pid, go[1], exec_pipe[0], what);
	return r < 0 ? r : pid;
}

pid_t command_start(char *const argv[], const int *fds, size_t n_fds, const char *log, struct journal *j,
		    const char *what)
{
	return command_start_child(argv, &(struct command_child){ .fds = fds, .n_fds = n_fds, .journal = j }, log, what);
}
