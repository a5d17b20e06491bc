/* Signal dispositions for a child about to exec: one read of /proc/self/status in the parent tells which signals
 * need resetting, instead of a sigaction per signal in the child. */
#define _GNU_SOURCE
#include "signals.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int add_mask(sigset_t *set, const char *hex)
{
	char *end;
	uint64_t bits;

	errno = 0;
	bits = strtoull(hex, &end, 16);
	if (errno || end == hex)
		return -EINVAL;
	for (int s = 1; s <= 64 && s < NSIG; s++)
		if (bits & (UINT64_C(1) << (s - 1)))
			sigaddset(set, s);
	return 0;
}

int signals_not_default(sigset_t *out)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	int found = 0;

	sigemptyset(out);
	if (!f) {
		int e = errno;

		sigfillset(out);
		log_warn("/proc/self/status: %s; resetting every signal", strerror(e));
		return -e;
	}
	while (fgets(line, sizeof(line), f))
		if ((!strncmp(line, "SigIgn:", 7) || !strncmp(line, "SigCgt:", 7)) && add_mask(out, line + 7) == 0)
			found++;
	fclose(f);
	if (found != 2) {
		sigfillset(out);
		log_warn("/proc/self/status: no SigIgn/SigCgt masks; resetting every signal");
		return -EINVAL;
	}
	return 0;
}

void signals_reset(const sigset_t *set)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	for (int s = 1; s < NSIG; s++)
		if (sigismember(set, s) == 1)
			sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
