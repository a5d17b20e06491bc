/* Bounds a thread's KVM_RUN in time without disturbing the signals the rest of the program uses. */
#ifndef VMLAUNCH_KVM_WATCHDOG_H
#define VMLAUNCH_KVM_WATCHDOG_H

#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

struct kvm_watchdog {
	int signal;
	timer_t timer;
	struct sigaction old_action;
	sigset_t old_mask;
};

/*
 * Arms a one-shot timer of timeout_ms for the calling thread: when it fires, run->immediate_exit is set, so KVM_RUN
 * returns EINTR. Returns 0, or negative errno with *failed_call naming the call that failed (nothing is left armed).
 */
int kvm_watchdog_arm(struct kvm_watchdog *wd, struct kvm_run *run, unsigned timeout_ms, const char **failed_call);
/* Puts the signal's disposition, the thread's mask and the timer back exactly as they were before arming. */
void kvm_watchdog_disarm(struct kvm_watchdog *wd);
/* True once the armed timer fired in this thread. */
bool kvm_watchdog_fired(void);

#endif
