/* The guardian: a small process in its own session that undoes the journal if vmlaunch dies without doing so. */
#ifndef VMLAUNCH_GUARDIAN_H
#define VMLAUNCH_GUARDIAN_H

#include <stdbool.h>
#include <sys/types.h>
#include <termios.h>

#include "state_dir.h"

struct guardian {
	pid_t pid;
	int pidfd;   /* readable when the guardian died: vmlaunch starts another */
	int pipe_fd; /* our end; EOF on the guardian's end without the "done" byte means vmlaunch died */
	const struct state_dir *state;
	/* The terminal on stdin as it was when the first guardian started: a vmlaunch killed while the terminal was
	 * raw (the command's pty, qemu's stdio console) leaves it so, and the guardian puts it back. */
	struct termios tty;
	bool tty_saved;
	bool qemu_started; /* guardian_qemu_started was called: a restarted guardian is told at once */
};

/* Forks the guardian (the first time, it notes the terminal's modes: see tty). It shares the state dir's lock (the same open file description), so no other vmlaunch can take
 * the name while it cleans up. Returns 0 or -errno. */
int guardian_start(struct guardian *g, const struct state_dir *state);
/* qemu runs: the guardian may now drop its start-up pages (trim.c). Until then it only waits, leaving the CPUs to
 * vmlaunch and qemu's child on the way to qemu's exec. */
void guardian_qemu_started(struct guardian *g);
/* vmlaunch finished its own teardown: the guardian exits without acting. */
void guardian_dismiss(struct guardian *g);
/* Reaps a guardian that died (its pidfd was readable) and starts a new one. */
int guardian_restart(struct guardian *g);

#endif
