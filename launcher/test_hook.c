/* VMLAUNCH_STOP_AT: lets the kill tests freeze vmlaunch at a named phase (documented in vmlaunch(1) as test-only). */
#include "test_hook.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int disabled;

void test_hook_disable(void)
{
	disabled = 1;
}

void test_hook_stop_at(const char *phase)
{
	const char *want = getenv("VMLAUNCH_STOP_AT");

	if (disabled || !want || strcmp(want, phase))
		return;
	log_warn("VMLAUNCH_STOP_AT=%s: stopping (SIGCONT resumes)", phase);
	disabled = 1; /* once: a phase met again (the next disk) must not stop the run a second time */
	raise(SIGSTOP);
}

void test_hook_stop_helper(char *const argv[])
{
	const char *want = getenv("VMLAUNCH_STOP_AT");
	char phase[64];

	if (disabled || !want || strncmp(want, "helper-", 7))
		return;
	snprintf(phase, sizeof(phase), "helper-%s-%s", argv[0], argv[1] ? argv[1] : "");
	if (!strcmp(want, phase))
		raise(SIGSTOP);
}

bool test_hook_withhold(const char *what)
{
	const char *want = getenv("VMLAUNCH_TEST_WITHHOLD");

	return want && !strcmp(want, what);
}
