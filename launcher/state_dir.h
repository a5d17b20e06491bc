/* /run/vmlaunch/NAME/: the running VM's state dir, guarded by NAME.lock so one name runs once. */
#ifndef VMLAUNCH_STATE_DIR_H
#define VMLAUNCH_STATE_DIR_H

#include <stdbool.h>

struct state_dir {
	char *dir;
	char *lock_path;
	int lock_fd;
	bool owned; /* the dir is ours to remove: we made it, or took it over from a dead run */
};

/* Takes the lock, cleans up after an earlier run that died without doing so (replaying its journal), creates the
 * dir (0700) and its pid file. -EBUSY when NAME is running. */
int state_dir_acquire(struct state_dir *s, const char *root, const char *name);
/* Removes the dir (its plain files and empty subdirectories, never crossing into a mount) and the lock file, and
 * closes the lock. */
int state_dir_release(struct state_dir *s);
/* The removal alone, keeping the lock held (the guardian's last step). */
int state_dir_remove(const struct state_dir *s);
/* vmlaunch --cleanup: for NAME (or every name under root when NAME is NULL), waits up to wait_ms for a running
 * vmlaunch or guardian to finish, then replays a leftover journal and removes the dir. Returns 0, -EBUSY if a VM is
 * still running, or another -errno. */
int state_dir_cleanup(const char *root, const char *name, int wait_ms);

#endif
