/* The rbd backend's describe step (rbd_describe.c): the disk's config checked, then the cluster asked what it holds,
 * before anything is made; what it decides, for prepare (rbd.c). */
#ifndef VMLAUNCH_RBD_DESCRIBE_H
#define VMLAUNCH_RBD_DESCRIBE_H

#include <stdbool.h>

#include "rbd_cluster.h"
#include "storage.h"

/* What describe decided, for prepare. */
struct rbd_state {
	bool create;      /* create or clone the image */
	char *qemu_conf;  /* the copy of the Ceph conf qemu reads, in the state dir (qemu's user may not read the original) */
};

void rbd_state_free(void *p);

/* The spec of a [disk] with backend = rbd: the config's values, or the defaults (conf, user, image
 * vmlaunch-VMNAME-DISK). */
void rbd_disk_spec(const struct vm_config *cfg, const struct disk_config *d, struct rbd_spec *s);


/* storage_backend.describe: the config's own contradictions refused, then the cluster reached with the key qemu
 * will be handed and the image looked at (its size, other clients, a clone's parent), nothing made. */
int rbd_describe(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t);

#endif
