/* Starting qemu and supervising it: QMP, signals, the guest command's output, and the VM's exit status. */
#ifndef VMLAUNCH_RUN_H
#define VMLAUNCH_RUN_H

#include <stdbool.h>
#include <sys/types.h>

#include "console.h"
#include "plan.h"
#include "qemu_argv.h"
#include "qmp.h"

struct journal;
struct guardian;

/* How long QMP may take to answer: while qemu starts (run.c) and for `cont` (supervise.c). */
#define QMP_TIMEOUT_MS 30000

struct vm_process {
	pid_t pid;
	int pidfd;
	struct qmp qmp;
	int out_fd, err_fd, status_fd; /* command mode: our ends of the guest's stdout/stderr/status channels */
	int in_fd;                     /* command mode: our end of the guest command's stdin channel */
	int agent_fd;                  /* agent mode: our end of qemu-guest-agent's port */
	struct console console;        /* the relayed serial console (plan->console_socket) */
};

/* fork+exec qemu (never through a shell) with its channels on the fds qemu_argv.c named; qemu dies with vmlaunch
 * (PR_SET_PDEATHSIG) and, unless it owns the terminal, sits in its own process group so a Ctrl-C reaches vmlaunch
 * only, which turns it into a graceful powerdown. Connects QMP. Returns 0 or -errno (qemu is reaped on failure). */
int run_start(const struct plan *p, const struct qemu_cmdline *c, const int *extra_fds, struct journal *journal,
	      struct vm_process *vm);

/* Lets the guest run (`cont`), relays its output, turns SIGINT/SIGTERM/SIGHUP (read from sigfd) into
 * system_powerdown → quit → SIGKILL, restarts the guardian if it dies, and returns vmlaunch's exit status once qemu
 * has exited. */
int run_supervise(const struct plan *p, struct vm_process *vm, int sigfd, struct guardian *guardian);

void run_cleanup(struct vm_process *vm);

#endif
