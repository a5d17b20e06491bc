/* Pinning qemu's real threads (ids from QMP) to the planned host CPUs while the guest is still stopped (-S). */
#ifndef VMLAUNCH_PIN_H
#define VMLAUNCH_PIN_H

#include <sys/types.h>

#include "plan.h"
#include "qmp.h"

int pin_threads(struct qmp *q, pid_t qemu, const struct plan *p);

#endif
