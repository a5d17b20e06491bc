/* A read-only view of one file, owned by another user: how an unprivileged helper reads an image only root can. */
#ifndef VMLAUNCH_SOURCE_VIEW_H
#define VMLAUNCH_SOURCE_VIEW_H

#include <sys/types.h>

/* A detached bind mount of PATH alone, read-only, nosuid, nodev, noexec and idmapped so that PATH's owner and group
 * appear as uid/gid (the user namespace it is mapped through maps them and nothing else): the helper opens
 * /proc/self/fd/N of the returned O_PATH fd with its own rights, and reaches no other file through it. The mount
 * goes with the last fd. Returns the fd, or -errno, quietly: a file system or kernel without idmapped mounts
 * (EINVAL, EPERM, ENOSYS) is the caller's cue to serve the bytes another way. */
int source_view_open(const char *path, uid_t uid, gid_t gid);

#endif
