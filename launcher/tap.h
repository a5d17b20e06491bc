/* [net] mode = tap: vmlaunch (not qemu, which has no capabilities) makes a multi-queue tap, attaches it to a bridge
 * and brings it up through rtnetlink, and hands qemu the queues' fds (and vhost-net's, where it exists). */
#ifndef VMLAUNCH_TAP_H
#define VMLAUNCH_TAP_H

#include "plan.h"

struct journal;

/* Opens the tap's queues into fds[0..queues) and, when vhost is on, /dev/vhost-net once per queue into
 * vhost_fds[0..queues) (not touched otherwise); the tap's removal is journaled before it exists. Every fd is
 * vmlaunch's to close after qemu's fork. */
int tap_open(const struct net_plan *n, struct journal *j, int *fds, int *vhost_fds);
/* The ifindex of BRIDGE if it is a bridge, else 0. */
unsigned tap_bridge_index(const char *bridge);

#endif
