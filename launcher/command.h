/* Runs helper programs (qemu-img, qemu probes, LVM tools) to completion, never through a shell. */
#ifndef VMLAUNCH_COMMAND_H
#define VMLAUNCH_COMMAND_H

#include <stdbool.h>
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
struct privileges;

/* How a helper is started, beyond its argv. */
struct command_child {
	const int *fds;                /* become its fds 3, 4, ... (at most 8) */
	size_t n_fds;
	bool socket_activation;        /* fds are listening sockets, told by LISTEN_FDS and LISTEN_PID (qemu-nbd) */
	const struct privileges *as;   /* dropped to before it execs (privileges_drop); NULL: vmlaunch's own */
	struct journal *journal;       /* its kill (pid + start time) is recorded before it execs; NULL: none */
	const int *cwd_fd;             /* non-NULL: its working directory, entered by fd before the user changes (the
	                                * path may cross directories its user cannot search) */
};
/* command_run for a helper described by `c` (NULL: as command_run). It dies with vmlaunch (PR_SET_PDEATHSIG, set
 * after any change of user). */
int command_run_child(char *const argv[], const struct command_child *c, char **out, const char *what);

/* Starts a helper daemon (virtiofsd, ...) that outlives this call but not vmlaunch: it dies with vmlaunch
 * (PR_SET_PDEATHSIG) and its kill is journaled (pid + start time) before it execs. fds[i] becomes its fd 3 + i;
 * stdin and stdout are /dev/null, stderr goes to `log` (created, 0600) so its chatter stays off the user's
 * terminal. Returns the pid, or -errno after logging `what`. */
pid_t command_start(char *const argv[], const int *fds, size_t n_fds, const char *log, struct journal *j,
		    const char *what);
/* command_start for a daemon described by `c` (its journal must be set). */
pid_t command_start_child(char *const argv[], const struct command_child *c, const char *log, const char *what);

#endif
