/* Runs helper programs (qemu-img, qemu probes, LVM tools) to completion, never through a shell. */
#ifndef VMLAUNCH_COMMAND_H
#define VMLAUNCH_COMMAND_H

#include <stddef.h>
#include <sys/types.h>

/* Runs argv[0] (looked up in $PATH) with stdin from /dev/null. When `out` is non-NULL it receives stdout; stderr is
 * captured too. When `what` is non-NULL, a failure is logged once, with the caller's context:
 * "vmlaunch: WHAT: PROGRAM failed (status N): STDERR" (or "...: cannot run PROGRAM: ERROR"), so callers return
 * without logging again; NULL keeps a probe whose failure is an answer quiet.
 * Returns the exit status (0..255), 128+signal if it was killed, or -errno if it could not be started. */
int command_run(char *const argv[], char **out, const char *what);
/* command_run for a step that must succeed: 0, or -errno (-EIO for a failed program) after the one message. */
int command_must(char *const argv[], const char *what);

struct journal;
/* Starts a helper daemon (virtiofsd, ...) that outlives this call but not vmlaunch: it dies with vmlaunch
 * (PR_SET_PDEATHSIG) and its kill is journaled (pid + start time) before it execs. fds[i] becomes its fd 3 + i;
 * stdin and stdout are /dev/null, stderr goes to `log` (created, 0600) so its chatter stays off the user's
 * terminal. Returns the pid, or -errno after logging `what`. */
pid_t command_start(char *const argv[], const int *fds, size_t n_fds, const char *log, struct journal *j,
		    const char *what);

struct privileges;
/* What a helper daemon runs in beyond command_start's defaults. */
struct command_daemon {
	const struct privileges *privileges; /* non-NULL: dropped as qemu's are (no capabilities; its user, if any) */
	int cwd_fd;                          /* >= 0: its working directory, entered while still root */
};
/* command_start for a daemon that runs as qemu's user in a directory of its own (swtpm). */
pid_t command_start_as(char *const argv[], const int *fds, size_t n_fds, const struct command_daemon *how,
		       const char *log, struct journal *j, const char *what);

#endif
