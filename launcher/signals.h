/* Which signals a child must reset before its exec, found with one read instead of a syscall per signal. */
#ifndef VMLAUNCH_SIGNALS_H
#define VMLAUNCH_SIGNALS_H

#include <signal.h>

/* The signals whose disposition is not SIG_DFL in this process (SigIgn | SigCgt of /proc/self/status): an exec
 * resets caught ones by itself but keeps ignored ones. Read before a (v)fork. 0, or -errno after a warning: then
 * *out holds every signal, the safe answer, and the caller goes on. */
int signals_not_default(sigset_t *out);
/* In a child between fork and exec (async-signal-safe): each signal of `set` back to SIG_DFL, then none blocked. */
void signals_reset(const sigset_t *set);

#endif
