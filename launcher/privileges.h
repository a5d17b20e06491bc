/* What qemu may do: no capabilities at all, no-new-privileges, and optionally another user. */
#ifndef VMLAUNCH_PRIVILEGES_H
#define VMLAUNCH_PRIVILEGES_H

#include <stdbool.h>
#include <sys/types.h>

/* Who qemu runs as when vmlaunch is root and [qemu] user is not set: a system user of its own (make deps creates it),
 * so a guest that breaks out of qemu holds no root, no other service's files and no other VM's. */
#define QEMU_DEFAULT_USER "vmlaunch-qemu"

struct privileges {
	bool switch_user;
	uid_t uid;
	gid_t gid;
	char *user;
	/* the user's supplementary groups, once privileges_resolve_groups ran; until then the child asks NSS itself */
	gid_t *groups;
	int n_groups;
};

/* Resolves [qemu] user before anything is started (never in the child). As root (euid 0): unset means
 * DEFAULT_USER, which must exist; "root" (or any uid 0) keeps qemu root, the one way to ask for it. Not root:
 * qemu runs as vmlaunch's own user unless one is named. */
int privileges_resolve(const char *user, const char *default_user, uid_t euid, struct privileges *out);
/* Looks up the user's supplementary groups (getgrouplist) in the parent, for privileges_drop to set: NSS in a forked
 * child maps libnss_systemd and its libraries page by page into a copy-on-write address space, ~7 ms of the child's
 * CPU here. Only for a launch: --dry-run needs no groups. No-op without a user switch. */
int privileges_resolve_groups(struct privileges *pv);
/* Lets qemu read PATH, a file vmlaunch made in the state dir that qemu opens by name (fw_cfg files, a key): owner
 * root, group qemu's, mode 0640, so qemu's user can read it but neither write nor chmod it. No-op when qemu stays
 * root. Never used on devices or files outside the state dir: those qemu gets as open fds. */
int privileges_give(const struct privileges *pv, const char *path);
/* In a child between (v)fork and exec: switch user (keeping its groups, e.g. kvm), empty every capability set
 * including the bounding set and ambient caps, set no-new-privileges. Returns 0 or -errno. */
int privileges_drop(const struct privileges *pv);
void privileges_free(struct privileges *pv);

#endif
