/* Dropping qemu's privileges with libcap-ng: vmlaunch needs root for mounts, modules and sysfs; qemu needs none of it. */
#define _GNU_SOURCE
#include "privileges.h"

#include <cap-ng.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "strv.h"

int privileges_resolve(const char *user, const char *default_user, uid_t euid, struct privileges *out)
{
	struct passwd *pw;

	memset(out, 0, sizeof(*out));
	if (!user && euid != 0)
		return 0;
	pw = getpwnam(user ? user : default_user);
	if (!pw && !user)
		return log_errno(ENOENT,
				 "qemu runs as the system user %s, which does not exist: create it with `make deps` or "
				 "`useradd --system --no-create-home --shell /usr/sbin/nologin %s`, or write [qemu] user = "
				 "root to run qemu as root",
				 default_user, default_user);
	if (!pw)
		return log_errno(ENOENT, "[qemu] user \"%s\": no such user", user);
	if (pw->pw_uid == 0)
		return 0; /* asked for by name: [qemu] user = root */
	out->switch_user = true;
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	out->user = xstrdup(pw->pw_name);
	return 0;
}

int privileges_resolve_groups(struct privileges *pv)
{
	int n = 16;

	if (!pv->switch_user || pv->groups)
		return 0;
	for (;;) {
		int want = n;

		pv->groups = xrealloc(pv->groups, (size_t)n * sizeof(gid_t));
		if (getgrouplist(pv->user, pv->gid, pv->groups, &n) >= 0)
			break;
		if (n <= want) /* no larger count to retry with */
			n = want * 2;
		if (n > 65536) {
			free(pv->groups);
			pv->groups = NULL;
			return log_errno(E2BIG, "user %s: cannot list its groups", pv->user);
		}
	}
	pv->n_groups = n;
	return 0;
}

int privileges_give(const struct privileges *pv, const char *path)
{
	if (!pv->switch_user || !path)
		return 0;
	if (lchown(path, 0, pv->gid) < 0 || chmod(path, 0640) < 0)
		return log_errno(errno, "cannot let user %s read %s", pv->user, path);
	return 0;
}

int privileges_drop(const struct privileges *pv)
{
	/* vmlaunch is single-threaded when it forks, so libcap-ng's (and, for a helper whose groups were not looked up
	 * first, initgroups') allocations are safe here. qemu's child is vforked: libcap-ng's state is vmlaunch's and
	 * may still name an earlier child, so it is pointed at this one first. */
	capng_setpid((int)syscall(SYS_gettid));
	if (pv->switch_user) {
		/* The bounding set needs CAP_SETPCAP to shrink: do it while still root. Then the user's own groups (kvm
		 * for /dev/kvm) and ids; leaving uid 0 empties the permitted and effective sets by itself. */
		capng_clear(CAPNG_SELECT_BOUNDS);
		if (capng_apply(CAPNG_SELECT_BOUNDS) < 0)
			return -EPERM;
		if ((pv->groups ? setgroups((size_t)pv->n_groups, pv->groups) : initgroups(pv->user, pv->gid)) < 0 ||
		    setresgid(pv->gid, pv->gid, pv->gid) < 0 ||
		    setresuid(pv->uid, pv->uid, pv->uid) < 0)
			return -errno;
	}
	capng_clear(CAPNG_SELECT_ALL);
	/* After a switch the bounding set is empty already, and without CAP_SETPCAP libcap-ng would only say so to
	 * syslog ("dropping bounding set due to not having CAP_SETPCAP") at every launch. */
	if (capng_apply(pv->switch_user ? CAPNG_SELECT_CAPS : CAPNG_SELECT_ALL) < 0)
		return -EPERM;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

void privileges_free(struct privileges *pv)
{
	free(pv->user);
	free(pv->groups);
	memset(pv, 0, sizeof(*pv));
}
