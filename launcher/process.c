/* Process identity (pid + start time) and killing by identity: a pid alone may have been reused since it was recorded. */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "strv.h"

int process_start_time(pid_t pid, unsigned long long *out)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and parentheses: fields after it start after the last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	return sscanf(p, " %llu", out) == 1 ? 0 : -EIO;
}

char *process_identity(pid_t pid)
{
	unsigned long long start = 0;

	process_start_time(pid, &start);
	return xasprintf("%d:%llu", (int)pid, start);
}

static int wait_gone(pid_t pid, unsigned long long start, int timeout_ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	unsigned long long now_start;

	if (fd >= 0) {
		struct pollfd p = { fd, POLLIN, 0 };
		int r = poll(&p, 1, timeout_ms);

		close(fd);
		/* A zombie is gone enough: it holds no files. Our own child is reaped by its waitpid elsewhere. */
		return r > 0 ? 0 : -ETIMEDOUT;
	}
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (process_start_time(pid, &now_start) < 0 || now_start != start)
			return 0;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return -ETIMEDOUT;
}

/* Whether PID's environment (as it was at its exec) holds PROCESS_STATE_ENV=STATE_DIR; an exiting process or a
 * zombie has none left (*zombie), and nothing left to kill. */
static bool started_for(pid_t pid, const char *state_dir, bool *zombie)
{
	char path[64], *want = xasprintf(PROCESS_STATE_ENV "=%s", state_dir), *env = NULL;
	size_t len = 0;
	FILE *f;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	f = fopen(path, "re");
	if (f) {
		char chunk[4096];
		size_t n;

		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
			env = xrealloc(env, len + n + 1);
			memcpy(env + len, chunk, n);
			len += n;
		}
		fclose(f);
	}
	for (size_t at = 0; env && at < len; at += strlen(env + at) + 1) {
		env[len] = '\0';
		if (!strcmp(env + at, want))
			found = true;
	}
	*zombie = len == 0;
	free(env);
	free(want);
	return found;
}

int process_kill_identity(const char *identity, const char *state_dir, int timeout_ms)
{
	unsigned long long start, now_start;
	bool group, zombie;
	int pid;

	if (sscanf(identity, "%d:%llu", &pid, &start) != 2 || pid <= 0)
		return log_errno(EBADMSG, "journal: malformed process identity \"%s\"", identity);
	if (process_start_time(pid, &now_start) < 0 || now_start != start)
		return 0; /* gone, or the pid now belongs to someone else */
	/* pid and start time say which process; only its environment says vmlaunch started it for this VM (a forged
	 * or stale record could name any process's pid and start time) */
	if (!started_for(pid, state_dir, &zombie)) {
		/* exiting (PDEATHSIG, already killed): its memory is gone, maybe not yet its files: wait for them */
		if (zombie) {
			if (wait_gone(pid, start, timeout_ms) < 0)
				return log_errno(ETIMEDOUT, "process %d did not exit", pid);
			/* a helper that exited by itself (swtpm once qemu is gone): reap our own child; not ours: ECHILD */
			waitpid(pid, NULL, WNOHANG);
			return 0;
		}
		return log_errno(EPERM, "journal: process %d was not started by vmlaunch for %s; not killing it", pid,
				 state_dir);
	}
	/* A child vmlaunch started in a process group of its own takes the group with it: virtiofsd's sandbox is a
	 * forked child in new namespaces, which must be gone too before its mounts are. */
	group = getpgid(pid) == pid;
	if (kill(group ? -pid : pid, SIGKILL) < 0 && errno != ESRCH)
		return log_errno(errno, "cannot kill process %d", pid);
	if (wait_gone(pid, start, timeout_ms) < 0)
		return log_errno(ETIMEDOUT, "process %d did not exit after SIGKILL", pid);
	/* our own child (a helper daemon): reap it, or its zombie keeps the group alive; not ours: ECHILD */
	waitpid(pid, NULL, WNOHANG);
	for (int waited = 0; group && kill(-pid, 0) == 0; waited += 10) {
		if (waited >= timeout_ms)
			return log_errno(ETIMEDOUT, "the processes of group %d did not exit after SIGKILL", pid);
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return 0;
}

static int undo_kill(const char *identity, const char *state_dir)
{
	return process_kill_identity(identity, state_dir, 10000);
}
JOURNAL_UNDO_VOLATILE(kill, "kill", undo_kill)

int process_journal_kill(struct journal *j, pid_t pid)
{
	char *identity = process_identity(pid);
	int r = journal_add(j, "kill", identity);

	free(identity);
	return r;
}
