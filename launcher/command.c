/* One place that spawns short-lived helper programs and collects their output. */
#define _GNU_SOURCE
#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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

/* In the child: only async-signal-safe calls. The helper dies with vmlaunch (a kill mid-`qemu-img convert` must not
 * leave it writing into a disk the guardian is about to remove). */
static void child_exec(char *const argv[], int out_fd, int err_fd, int exec_fd, pid_t parent)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	/* vmlaunch blocks the signals it reads through signalfd; children must start with a clean slate. */
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	test_hook_stop_helper(argv);
	execvp(argv[0], argv);
	{
		int e = errno;

		if (write(exec_fd, &e, sizeof(e)) < 0)
			_exit(127);
	}
	_exit(127);
}

int command_run(char *const argv[], char **out, const char *what)
{
	int out_pipe[2], err_pipe[2], exec_pipe[2], status, r, exec_errno = 0;
	char *captured_out, *captured_err;
	pid_t pid, parent = getpid();

	if (pipe2(out_pipe, O_CLOEXEC) < 0)
		return log_errno(errno, "pipe");
	if (pipe2(err_pipe, O_CLOEXEC) < 0 || pipe2(exec_pipe, O_CLOEXEC) < 0) {
		r = log_errno(errno, "pipe");
		close(out_pipe[0]);
		close(out_pipe[1]);
		return r;
	}
	pid = fork();
	if (pid == 0)
		child_exec(argv, out_pipe[1], err_pipe[1], exec_pipe[1], parent);
	r = pid < 0 ? errno : 0;
	close(out_pipe[1]);
	close(err_pipe[1]);
	close(exec_pipe[1]);
	/* EOF at exec, or the child's errno when exec failed */
	if (!r && read(exec_pipe[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno))
		r = exec_errno;
	close(exec_pipe[0]);
	if (r) {
		if (pid > 0)
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		close(out_pipe[0]);
		close(err_pipe[0]);
		if (!what)
			return -r;
		return log_errno(r, "%s: cannot run %s", what, argv[0]);
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

int command_must(char *const argv[], const char *what)
{
	int r = command_run(argv, NULL, what);

	return r > 0 ? -EIO : r;
}

/* The daemon's side of command_start: waits for the journal record, moves its fds to 3.., enters its directory and
 * drops to its user (as asked), execs. */
static void daemon_exec(char *const argv[], const int *fds, size_t n_fds, const struct command_daemon *how, int log_fd,
			int go_fd, int exec_fd, pid_t parent)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int moved[8], null = open("/dev/null", O_RDWR | O_CLOEXEC);
	sigset_t none;
	char go;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || n_fds > 8)
		_exit(127);
	if (read(go_fd, &go, 1) != 1)
		_exit(127); /* vmlaunch could not record us: never run unrecorded */
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0); /* a Ctrl-C on the terminal is vmlaunch's to handle */
	if (how && how->cwd_fd >= 0 && fchdir(how->cwd_fd) < 0)
		_exit(127);
	for (size_t i = 0; i < n_fds; i++)
		if ((moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
			_exit(127);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(log_fd, 2) < 0)
		_exit(127);
	for (size_t i = 0; i < n_fds; i++)
		if (dup2(moved[i], 3 + (int)i) < 0)
			_exit(127);
	syscall(SYS_close_range, 3 + n_fds, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	if (how && how->privileges) {
		int r = privileges_drop(how->privileges);

		if (r < 0) {
			r = -r;
			if (write(exec_fd, &r, sizeof(r)) < 0)
				_exit(127);
			_exit(127);
		}
	}
	execvp(argv[0], argv);
	{
		int e = errno;

		if (write(exec_fd, &e, sizeof(e)) < 0)
			_exit(127);
	}
	_exit(127);
}

pid_t command_start(char *const argv[], const int *fds, size_t n_fds, const char *log, struct journal *j,
		    const char *what)
{
	return command_start_as(argv, fds, n_fds, NULL, log, j, what);
}

pid_t command_start_as(char *const argv[], const int *fds, size_t n_fds, const struct command_daemon *how,
		       const char *log, struct journal *j, const char *what)
{
	int go[2], exec_pipe[2], exec_errno, log_fd, r;
	pid_t pid, parent = getpid();

	log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (log_fd < 0)
		return log_errno(errno, "%s: cannot create %s", what, log);
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(log_fd);
		return log_errno(errno, "%s: pipe", what);
	}
	if (pipe2(exec_pipe, O_CLOEXEC) < 0) {
		r = log_errno(errno, "%s: pipe", what);
		close(go[0]);
		close(go[1]);
		close(log_fd);
		return r;
	}
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(exec_pipe[0]);
		daemon_exec(argv, fds, n_fds, how, log_fd, go[0], exec_pipe[1], parent);
	}
	close(log_fd);
	close(go[0]);
	close(exec_pipe[1]);
	if (pid < 0) {
		close(go[1]);
		close(exec_pipe[0]);
		return log_errno(errno, "%s: cannot fork", what);
	}
	r = process_journal_kill(j, pid);
	if (r == 0 && write(go[1], "g", 1) != 1)
		r = log_errno(errno, "%s: cannot start %s", what, argv[0]);
	close(go[1]);
	/* EOF at exec, or the child's errno when exec failed */
	if (r == 0 && read(exec_pipe[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno))
		r = log_errno(exec_errno, "%s: cannot run %s", what, argv[0]);
	close(exec_pipe[0]);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return r;
	}
	return pid;
}
