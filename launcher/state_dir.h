/* /run/vmlaunch/NAME/: the running VM's state dir, guarded by NAME.lock so one name runs once. */
#ifndef VMLAUNCH_STATE_DIR_H
#define VMLAUNCH_STATE_DIR_H

struct state_dir {
	char *dir;
	char *lock_path;
	int lock_fd;
};

/* Takes the lock, cleans up after an earlier run that died without doing so (replaying its journal), creates the
 * dir (0700) and its pid file. -EBUSY when NAME is running. */
int state_dir_acquire(struct state_dir *s, const char *root, const char *name);
/* Removes the dir (its plain files and empty subdirectories, never crossing into a mount) and the lock. */
int state_dir_release(struct state_dir *s);

#endif
