/* What qemu may do: no capabilities at all, no-new-privileges, and optionally another user. */
#ifndef VMLAUNCH_PRIVILEGES_H
#define VMLAUNCH_PRIVILEGES_H

#include <stdbool.h>
#include <sys/types.h>

struct privileges {
	bool switch_user;
	uid_t uid;
	gid_t gid;
	char *user;
};

/* Resolves [qemu] user before anything is started (never in the child). */
int privileges_resolve(const char *user, struct privileges *out);
/* Hands PATH to the qemu user (a device node, a disk file, a log): no-op when qemu stays root. */
int privileges_give(const struct privileges *pv, const char *path);
/* In the child between fork and exec: switch user (keeping its groups, e.g. kvm), empty every capability set
 * including the bounding set and ambient caps, set no-new-privileges. Returns 0 or -errno. */
int privileges_drop(const struct privileges *pv);
void privileges_free(struct privileges *pv);

#endif
