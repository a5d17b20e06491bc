/* Runs helper programs (qemu-img, qemu probes, LVM tools) to completion, never through a shell. */
#ifndef VMLAUNCH_COMMAND_H
#define VMLAUNCH_COMMAND_H

/* Runs argv[0] (looked up in $PATH) with stdin from /dev/null. When `out` is non-NULL it receives stdout; stderr is
 * captured too and, when the program fails, printed once as "vmlaunch: PROGRAM failed (status N): STDERR".
 * `quiet` suppresses that message (for probes whose failure is an answer).
 * Returns the exit status (0..255), 128+signal if it was killed, or -errno if it could not be started. */
int command_run(char *const argv[], char **out, int quiet);

#endif
