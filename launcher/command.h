/* Runs helper programs (qemu-img, qemu probes, LVM tools) to completion, never through a shell. */
#ifndef VMLAUNCH_COMMAND_H
#define VMLAUNCH_COMMAND_H

/* Runs argv[0] (looked up in $PATH) with stdin from /dev/null. When `out` is non-NULL it receives stdout; stderr is
 * captured too. When `what` is non-NULL, a failure is logged once, with the caller's context:
 * "vmlaunch: WHAT: PROGRAM failed (status N): STDERR" (or "...: cannot run PROGRAM: ERROR"), so callers return
 * without logging again; NULL keeps a probe whose failure is an answer quiet.
 * Returns the exit status (0..255), 128+signal if it was killed, or -errno if it could not be started. */
int command_run(char *const argv[], char **out, const char *what);
/* command_run for a step that must succeed: 0, or -errno (-EIO for a failed program) after the one message. */
int command_must(char *const argv[], const char *what);

#endif
