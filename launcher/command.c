/* One place that spawns short-lived helper programs and collects their output. */
#define _GNU_SOURCE
#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "strv.h"

extern char **environ;

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

int command_run(char *const argv[], char **out, int quiet)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int out_pipe[2], err_pipe[2], status, r;
	char *captured_out, *captured_err;
	pid_t pid;

	if (pipe2(out_pipe, O_CLOEXEC) < 0)
		return log_errno(errno, "pipe");
	if (pipe2(err_pipe, O_CLOEXEC) < 0) {
		r = log_errno(errno, "pipe");
		close(out_pipe[0]);
		close(out_pipe[1]);
		return r;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
	/* vmlaunch blocks the signals it reads through signalfd; children must start with a clean slate. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(out_pipe[1]);
	close(err_pipe[1]);
	if (r) {
		close(out_pipe[0]);
		close(err_pipe[0]);
		if (quiet)
			return -r;
		return log_errno(r, "cannot run %s", argv[0]);
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
	if (r && !quiet) {
		size_t n = strlen(captured_err);

		while (n && (captured_err[n - 1] == '\n' || captured_err[n - 1] == ' '))
			captured_err[--n] = '\0';
		log_error("%s failed (status %d)%s%s", argv[0], r, n ? ": " : "", captured_err);
	}
	free(captured_err);
	if (out)
		*out = captured_out;
	else
		free(captured_out);
	return r;
}
