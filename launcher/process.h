/* Identifying and ending a process safely by pid + start time, so a reused pid is never killed by mistake. */
#ifndef VMLAUNCH_PROCESS_H
#define VMLAUNCH_PROCESS_H

#include <sys/types.h>

/* Field 22 of /proc/PID/stat (clock ticks since boot). -ESRCH when there is no such process. */
int process_start_time(pid_t pid, unsigned long long *out);
/* "PID:STARTTIME" for the journal. */
char *process_identity(pid_t pid);
/* Every program vmlaunch starts for a VM carries this in its environment (set once the state dir exists), with the
 * state dir as its value: what proves, in /proc/PID/environ, that a journal's pid is one vmlaunch started for it. */
#define PROCESS_STATE_ENV "VMLAUNCH_STATE_DIR"
/* SIGKILLs the process named by "PID:STARTTIME" if it is still that process and was started for STATE_DIR (its
 * PROCESS_STATE_ENV), and waits (up to timeout_ms) until it is gone, so what it held open (a zram device, a tmpfs
 * file) is free. 0 when it is gone or was never there; -EPERM for a process that is not the VM's. */
int process_kill_identity(const char *identity, const char *state_dir, int timeout_ms);
/* Records that `pid` (a child vmlaunch just forked: qemu, a helper daemon) is to be killed at teardown, by identity. */
struct journal;
int process_journal_kill(struct journal *j, pid_t pid);

#endif
