/* Warm start with an ephemeral RBD disk: the save's frozen copy of the image on the cluster, a clone of it per run. */
#ifndef VMLAUNCH_RBD_SNAPSHOT_H
#define VMLAUNCH_RBD_SNAPSHOT_H

#include "config.h"

struct journal;

/* The snapshot of a frozen image: IMAGE@frozen, protected, so that clones can stand on it. */
#define RBD_FROZEN_SNAP "frozen"

/* Save, qemu gone: copies the save run's image to a new image in its pool (sparse), snapshots and protects it, and
 * writes its spec to FILE (in the snapshot's temporary directory). The copy's removal is journaled first; it does
 * nothing once KEEP_IF (FILE's name after the snapshot is installed) holds the same spec. 0 or -errno (logged). */
int rbd_snapshot_freeze(const struct vm_config *cfg, const struct disk_config *d, const char *file,
			const char *keep_if, struct journal *j);
/* Restore, before qemu: whether the frozen image FILE names is still there with its protected snapshot. 0;
 * -EINVAL when it is gone (logged: the snapshot cannot be restored); another -errno when the cluster cannot say. */
int rbd_snapshot_check(const char *file, const char *disk);
/* Restore: the run's image (this VM's name for the disk, its removal journaled first) as a clone of FILE's frozen
 * image. 0 or -errno (logged). */
int rbd_snapshot_clone(const struct vm_config *cfg, const struct disk_config *d, const char *file, struct journal *j);
/* Removes the frozen image FILE names (its snapshot unprotected first): a replaced or unfinished snapshot's. One
 * that restored runs still clone from stays, with a warning. 0 or -errno. */
int rbd_snapshot_drop(const char *file);

#endif
