/* User-mode forwards on the host: each port checked free before anything is made; HOSTPORT+ picks the first free. */
#ifndef VMLAUNCH_FORWARD_H
#define VMLAUNCH_FORWARD_H

#include "plan.h"

/* Makes every forward's host port concrete (and the plan's ssh_port with it); -EADDRINUSE after saying which. */
int forward_resolve(struct plan *p);

#endif
