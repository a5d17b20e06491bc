/* The watchdog that bounds a test guest's KVM_RUN (kvm_watchdog.h). */
#define _GNU_SOURCE
#include "kvm_watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/*
 * Bounds KVM_RUN in time. A POSIX timer sends a signal to this thread only; its handler sets immediate_exit, so a
 * signal that lands just before KVM_RUN still makes KVM_RUN return EINTR at once instead of being lost. The probe
 * runs inside a program that later uses signalfd, so the watchdog borrows a real-time signal nobody uses and puts
 * the disposition, the thread's mask and the timer back exactly as they were.
 */
static _Thread_local struct kvm_run *volatile watchdog_run;
static _Thread_local volatile sig_atomic_t watchdog_fired;

static int failed(const char **failed_call, int err, const char *call)
{
	*failed_call = call;
	return -err;
}

static void watchdog_on_signal(int signal)
{
	struct kvm_run *run = watchdog_run;

	(void) signal;
	watchdog_fired = 1;
	if (run)
		run->immediate_exit = 1;
}

/* A signal with default disposition that this thread neither blocks nor has pending cannot belong to anyone. */
static int watchdog_pick_signal(const sigset_t *mask)
{
	sigset_t pending;

	if (sigpending(&pending) < 0)
		return -errno;
	for (int s = SIGRTMAX; s >= SIGRTMIN; s--) {
		struct sigaction current;

		if (sigaction(s, NULL, &current) < 0)
			return -errno;
		if (current.sa_handler == SIG_DFL && !(current.sa_flags & SA_SIGINFO) && !sigismember(mask, s) &&
		    !sigismember(&pending, s))
			return s;
	}
	return -EBUSY;
}

int kvm_watchdog_arm(struct kvm_watchdog *wd, struct kvm_run *run, unsigned timeout_ms, const char **failed_call)
{
	struct sigaction action = { .sa_handler = watchdog_on_signal };
	struct sigevent event = { .sigev_notify = SIGEV_THREAD_ID };
	struct itimerspec expiry = {
		.it_value = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long) (timeout_ms % 1000) * 1000000 },
	};
	sigset_t only, during;
	int r;

	r = pthread_sigmask(SIG_SETMASK, NULL, &wd->old_mask);
	if (r != 0)
		return failed(failed_call, r, "pthread_sigmask");
	r = watchdog_pick_signal(&wd->old_mask);
	if (r < 0)
		return failed(failed_call, -r, "no free real-time signal for the watchdog");
	wd->signal = r;

	/* Blocked while the handler and timer are swapped in, so it can only arrive where we expect it. */
	sigemptyset(&only);
	sigaddset(&only, wd->signal);
	r = pthread_sigmask(SIG_BLOCK, &only, NULL);
	if (r != 0)
		return failed(failed_call, r, "pthread_sigmask");

	watchdog_fired = 0;
	watchdog_run = run;
	/* No SA_RESTART: KVM_RUN must come back with EINTR rather than be restarted. */
	sigemptyset(&action.sa_mask);
	action.sa_flags = 0;
	if (sigaction(wd->signal, &action, &wd->old_action) < 0) {
		r = failed(failed_call, errno, "sigaction");
		goto restore_mask;
	}

	event.sigev_signo = wd->signal;
	event.sigev_notify_thread_id = gettid();
	if (timer_create(CLOCK_MONOTONIC, &event, &wd->timer) < 0) {
		r = failed(failed_call, errno, "timer_create");
		goto restore_action;
	}
	if (timer_settime(wd->timer, 0, &expiry, NULL) < 0) {
		r = failed(failed_call, errno, "timer_settime");
		timer_delete(wd->timer);
		goto restore_action;
	}

	during = wd->old_mask;
	sigdelset(&during, wd->signal);
	r = pthread_sigmask(SIG_SETMASK, &during, NULL);
	if (r != 0) {
		r = failed(failed_call, r, "pthread_sigmask");
		timer_delete(wd->timer);
		goto restore_action;
	}
	return 0;

restore_action:
	sigaction(wd->signal, &wd->old_action, NULL);
restore_mask:
	pthread_sigmask(SIG_SETMASK, &wd->old_mask, NULL);
	watchdog_run = NULL;
	return r;
}

void kvm_watchdog_disarm(struct kvm_watchdog *wd)
{
	const struct timespec now = { 0 };
	sigset_t only;

	sigemptyset(&only);
	sigaddset(&only, wd->signal);
	pthread_sigmask(SIG_BLOCK, &only, NULL);
	timer_delete(wd->timer);
	/* The timer may have expired after we blocked it; its signal must not outlive the probe. */
	while (sigtimedwait(&only, NULL, &now) == wd->signal)
		;
	sigaction(wd->signal, &wd->old_action, NULL);
	pthread_sigmask(SIG_SETMASK, &wd->old_mask, NULL);
	watchdog_run = NULL;
}

bool kvm_watchdog_fired(void)
{
	return watchdog_fired;
}
