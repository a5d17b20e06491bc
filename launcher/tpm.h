/* [boot] tpm = yes: a TPM 2.0 emulated by swtpm, a helper daemon that runs as qemu's user and dies with vmlaunch. */
#ifndef VMLAUNCH_TPM_H
#define VMLAUNCH_TPM_H

#include "plan.h"

struct journal;

/* Makes (or, with tpm-state =, reuses) swtpm's state directory, listens on its socket and starts swtpm on it; each
 * step is journaled before it acts (a kept state directory is the user's and stays). 0 or -errno after logging. */
int tpm_start(const struct tpm_plan *t, const char *swtpm, const struct privileges *pv, struct journal *j);

#endif
