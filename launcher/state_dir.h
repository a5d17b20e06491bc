/* /run/vmlaunch/NAME/: the running VM's state dir, guarded by NAME.lock so one name runs once. */
#ifndef VMLAUNCH_STATE_DIR_H
#define VMLAUNCH_STATE_DIR_H

#include <stdbool.h>

#include "strv.h"

struct journal;

/* What a state dir holds besides the journal (journal.c names its own file) and what backends put there. */
#define STATE_PID "pid"           /* vmlaunch's pid */
#define STATE_INFO "info"         /* what --list shows */
#define STATE_QMP "qmp.sock"      /* QMP for other tools */
#define STATE_CONSOLE "console.log"
#define STATE_FIRMWARE_LOG "firmware.log" /* SeaBIOS's messages (its debug port) */
#define STATE_CONSOLE_SOCKET "console.sock" /* vmlaunch --console attaches here */
#define STATE_ARGV "argv"         /* -- COMMAND's argv for the guest */

struct state_dir {
	char *dir;
	char *lock_path;
	int lock_fd;
	bool owned; /* the dir is ours to remove: we made it, or took it over from a dead run */
};

/* ROOT/NAME, and a file in a state dir (inline: the pure planning code names files without linking the rest). */
static inline char *state_dir_path(const char *root, const char *name)
{
	return xasprintf("%s/%s", root, name);
}

static inline char *state_file(const char *state_dir, const char *leaf)
{
	return xasprintf("%s/%s", state_dir, leaf);
}
/* Whether the VM (vmlaunch or its guardian) holds NAME's lock. */
bool state_dir_running(const char *root, const char *name);

/* Records the removal of PATH, a file or an empty directory inside the state dir, before it is made. */
int state_dir_journal_file(struct journal *j, const char *path);
/* A listening unix socket at PATH in the state dir, its removal journaled first: vmlaunch listens, so the socket
 * exists before qemu connects, and the helper (virtiofsd, swtpm) is handed the fd. Returns the fd, or negative errno
 * after logging with `what`. */
int state_dir_listen(struct journal *j, const char *path, const char *what);
int state_dir_journal_dir(struct journal *j, const char *path);
/* Records the unmount of a mount point inside the state dir, before mounting there. */
int state_dir_journal_mount(struct journal *j, const char *path);
/* Whether PATH lies inside STATE_DIR (no "..", no escape): what an undo may touch. */
bool state_dir_contains(const char *state_dir, const char *path);

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
