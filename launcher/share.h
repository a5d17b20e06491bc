/* [share]: a host directory in the guest over virtiofs, served by a virtiofsd per share that dies with vmlaunch. */
#ifndef VMLAUNCH_SHARE_H
#define VMLAUNCH_SHARE_H

#include "plan.h"

struct journal;

/* Makes the share's read-only bind (when readonly), listens on its socket and starts virtiofsd on it; each step is
 * journaled before it acts. A qemu under another user is handed a connection to the socket (run.c), never its path. */
int share_start(const struct share_plan *s, const char *virtiofsd, struct journal *j);

#endif
