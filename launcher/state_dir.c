/* Creating, locking and removing the per-VM state dir; recovers a dir left behind by a run that was killed. */
#define _GNU_SOURCE
#include "state_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "journal.h"
#include "log.h"
#include "strv.h"

static char *lock_path(const char *root, const char *name)
{
	return xasprintf("%s/%s.lock", root, name);
}

bool state_dir_contains(const char *state_dir, const char *path)
{
	size_t n = strlen(state_dir);

	return !strncmp(path, state_dir, n) && path[n] == '/' && path[n + 1] && !strstr(path + n, "/../") &&
	       strcmp(path + strlen(path) - 3, "/..") != 0;
}

/* state_dir_contains, and the directory PATH sits in is really inside the state dir: a journal naming
 * STATE/link/file, where link is a symlink to /etc, would otherwise reach /etc/file (the last component is never
 * followed: unlink, rmdir and UMOUNT_NOFOLLOW do not). */
static bool really_inside(const char *state_dir, const char *path)
{
	char *parent, *real_parent, *real_state, *slash;
	bool ok;

	if (!state_dir_contains(state_dir, path))
		return false;
	parent = xstrdup(path);
	slash = strrchr(parent, '/');
	*slash = '\0';
	real_parent = realpath(parent, NULL);
	real_state = realpath(state_dir, NULL);
	/* a parent that no longer exists holds nothing to undo: the undo then fails with ENOENT, harmlessly */
	ok = !real_parent || (real_state && (!strcmp(real_parent, real_state) ||
					     state_dir_contains(real_state, real_parent)));
	free(parent);
	free(real_parent);
	free(real_state);
	return ok;
}

static int undo_unlink(const char *path, const char *state_dir)
{
	if (!really_inside(state_dir, path))
		return log_errno(EPERM, "journal: refusing to remove %s, outside %s", path, state_dir);
	if (unlink(path) < 0 && errno != ENOENT)
		return log_errno(errno, "cannot remove %s", path);
	return 0;
}
JOURNAL_UNDO_VOLATILE(unlink, "unlink", undo_unlink)

static int undo_rmdir(const char *path, const char *state_dir)
{
	if (!really_inside(state_dir, path))
		return log_errno(EPERM, "journal: refusing to remove %s, outside %s", path, state_dir);
	if (rmdir(path) < 0 && errno != ENOENT)
		return log_errno(errno, "cannot remove directory %s", path);
	return 0;
}
JOURNAL_UNDO_VOLATILE(rmdir, "rmdir", undo_rmdir)

/* Lazy: qemu is gone by now, but a stray open file must not keep a tmpfs's RAM pinned forever. Only a mount point
 * inside the state dir is ever unmounted; EINVAL means nothing was mounted there (the mount never happened, or a
 * replay undid it). */
static int undo_umount(const char *path, const char *state_dir)
{
	if (!really_inside(state_dir, path))
		return log_errno(EPERM, "journal: refusing to unmount %s, outside %s", path, state_dir);
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return log_errno(errno, "cannot unmount %s", path);
	return 0;
}
JOURNAL_UNDO_VOLATILE(umount, "umount", undo_umount)

int state_dir_journal_mount(struct journal *j, const char *path)
{
	return journal_add(j, "umount", path);
}

int state_dir_journal_file(struct journal *j, const char *path)
{
	return journal_add(j, "unlink", path);
}

int state_dir_journal_dir(struct journal *j, const char *path)
{
	return journal_add(j, "rmdir", path);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char *copy = xstrdup(path);
	int r = 0;

	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			r = -errno;
		*p = '/';
	}
	if (!r && mkdir(copy, mode) < 0 && errno != EEXIST)
		r = -errno;
	free(copy);
	return r ? log_errno(r, "cannot create %s", path) : 0;
}

/* A subdirectory, never through a symlink and never across a mount: a bind mount from the same filesystem (a
 * read-only share's view of a host directory) has the same st_dev, and only the kernel's mount check tells it. */
static int open_below(int dfd, const char *name)
{
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS };

	return (int)syscall(SYS_openat2, dfd, name, &how, sizeof(how));
}

/* Empties the directory open as dfd (`path` for messages) and closes dfd: never follows a symlink, never enters
 * another filesystem (a mount still there is EBUSY). Whole trees, not one level: in a state dir that outlived a
 * reboot (/run on disk) are files whose journal records were never made durable (journal.h). */
static int empty_dir(int dfd, const char *path, dev_t dev, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	int r = 0;

	if (!d) {
		close(dfd);
		return log_errno(errno, "cannot read %s", path);
	}
	while ((e = readdir(d))) {
		struct stat st;
		char *sub;
		int fd = -1, one = 0;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(dirfd(d), e->d_name, 0) < 0)
				r = log_errno(errno, "cannot remove %s/%s", path, e->d_name);
			continue;
		}
		sub = xasprintf("%s/%s", path, e->d_name);
		if (st.st_dev != dev)
			one = log_errno(EBUSY, "cannot remove %s", sub); /* a mount point */
		else if (depth >= 16)
			one = log_errno(ELOOP, "cannot remove %s", sub);
		else if ((fd = open_below(dirfd(d), e->d_name)) < 0)
			one = log_errno(errno == EXDEV ? EBUSY : errno, "cannot remove %s", sub);
		if (one == 0) {
			one = empty_dir(fd, sub, dev, depth + 1);
			if (one == 0 && unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0)
				one = log_errno(errno, "cannot remove %s", sub);
		}
		if (one < 0)
			r = one;
		free(sub);
	}
	closedir(d);
	return r;
}

/* Empties `dir` (whole, without following symlinks or entering mounts), then removes it. */
static int remove_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;
	struct stat top;

	if (fd < 0)
		return errno == ENOENT ? 0 : log_errno(errno, "cannot open %s", dir);
	if (fstat(fd, &top) < 0) {
		r = log_errno(errno, "cannot check %s", dir);
		close(fd);
		return r;
	}
	r = empty_dir(fd, dir, top.st_dev, 0);
	if (!r && rmdir(dir) < 0 && errno != ENOENT)
		r = log_errno(errno, "cannot remove %s", dir);
	return r;
}

/* A directory vmlaunch reads journals from and creates files in: ours, not a symlink, not writable by others. */
static int check_trusted_dir(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return log_errno(errno, "cannot check %s", path);
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return log_errno(EPERM, "%s is not a directory of this user's that only it can write (a symlink, or "
					"changed by someone else?); refusing to use it",
				 path);
	return 0;
}

static int read_pid(const char *dir)
{
	char *path = state_file(dir, STATE_PID);
	FILE *f = fopen(path, "re");
	int pid = 0;

	free(path);
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

/* flock()ed lock files can be unlinked by their holder at exit; a waiter that opened the old inode must notice.
 * Waits up to wait_ms for a holder to finish. */
static int lock(struct state_dir *s, const char *name, int wait_ms, bool for_cleanup)
{
	int waited_ms = wait_ms;

	for (;;) {
		struct stat a, b;

		s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (s->lock_fd < 0)
			return log_errno(errno, "cannot open %s", s->lock_path);
		if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			int r = errno, pid;

			close(s->lock_fd);
			s->lock_fd = -1;
			if (r != EWOULDBLOCK)
				return log_errno(r, "cannot lock %s", s->lock_path);
			if (wait_ms > 0) {
				usleep(50 * 1000);
				wait_ms -= 50;
				continue;
			}
			pid = read_pid(s->dir);
			if (for_cleanup) {
				char who[32] = "";

				if (pid > 0)
					snprintf(who, sizeof(who), " (vmlaunch pid %d)", pid);
				/* a running VM has nothing to clean up: its own vmlaunch undoes everything when it stops */
				log_error("VM \"%s\" is running%s%s; --cleanup is for what a killed run left behind: stop it "
					  "with vmlaunch --stop %s (it cleans up after itself)",
					  name, who, waited_ms > 0 ? " and did not stop while --cleanup waited" : "", name);
			} else if (pid > 0)
				log_error("VM \"%s\" is already running (vmlaunch pid %d); stop it (vmlaunch --stop %s) or choose "
					  "another [vm] name",
					  name, pid, name);
			else
				log_error("VM \"%s\" is already running; stop it (vmlaunch --stop %s) or choose another [vm] name",
					  name, name);
			return -EBUSY;
		}
		if (fstat(s->lock_fd, &a) == 0 && stat(s->lock_path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			return 0;
		close(s->lock_fd);
		s->lock_fd = -1;
	}
}

/* With the lock held: whoever made the dir is gone without cleaning up. Its journal is replayed as root, so only a
 * real directory of ours is trusted (never a symlink planted there). */
static int undo_leftover(struct state_dir *s, const char *name, bool launching)
{
	struct stat st;
	int r;

	if (lstat(s->dir, &st) < 0)
		return 0;
	r = check_trusted_dir(s->dir);
	if (r < 0)
		return r;
	s->owned = true;
	if (launching)
		log_warn("cleaning up after an earlier run of \"%s\" that did not finish", name);
	else
		log_warn("cleaning up after \"%s\", which did not finish", name);
	journal_replay(s->dir);
	return 0;
}

/* Every name that becomes ROOT/NAME passes the config's check, here too: an empty name or ".." would make the base
 * directory (whose plain files are every VM's locks) or its parent a state dir to replay and empty. */
static int check_name(const char *name)
{
	if (!config_vm_name_valid(name))
		return log_errno(EINVAL, "\"%s\" is not a VM name; refusing to use it as a state dir", name);
	return 0;
}

int state_dir_acquire(struct state_dir *s, const char *root, const char *name)
{
	char *path;
	FILE *f;
	int r, fd;

	r = check_name(name);
	if (r < 0)
		return r;
	s->dir = state_dir_path(root, name);
	s->lock_path = lock_path(root, name);
	s->lock_fd = -1;
	r = mkdir_p(root, 0755);
	if (r < 0)
		return r;
	r = check_trusted_dir(root);
	if (r < 0)
		return r;
	r = lock(s, name, 0, false);
	if (r < 0)
		return r;
	r = undo_leftover(s, name, true);
	if (r == 0 && s->owned)
		r = remove_dir(s->dir);
	if (r < 0)
		return r;
	if (mkdir(s->dir, 0700) < 0)
		return log_errno(errno, "cannot create %s", s->dir);
	s->owned = true;
	path = state_file(s->dir, STATE_PID);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	free(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return log_errno(errno, "cannot write the pid file in %s", s->dir);
	}
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0)
		return log_errno(errno, "cannot write the pid file in %s", s->dir);
	return 0;
}

int state_dir_remove(const struct state_dir *s)
{
	int r = remove_dir(s->dir);

	if (!r)
		unlink(s->lock_path);
	return r;
}

int state_dir_release(struct state_dir *s)
{
	int r = 0;

	if (s->dir && s->lock_fd >= 0 && s->owned)
		r = state_dir_remove(s);
	else if (s->lock_fd >= 0)
		unlink(s->lock_path); /* we hold it, and made nothing under it */
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
	free(s->dir);
	free(s->lock_path);
	s->dir = s->lock_path = NULL;
	return r;
}

static int cleanup_one(const char *root, const char *name, int wait_ms)
{
	struct state_dir s = { .lock_fd = -1 };
	int r = check_name(name);

	if (r < 0)
		return r;
	s.dir = state_dir_path(root, name);
	s.lock_path = lock_path(root, name);
	r = lock(&s, name, wait_ms, true);
	if (r == 0)
		r = undo_leftover(&s, name, false);
	if (r == 0)
		return state_dir_release(&s);
	state_dir_release(&s);
	return r;
}

bool state_dir_running(const char *root, const char *name)
{
	char *lock = lock_path(root, name);
	int fd = open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	bool held = false;

	free(lock);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		held = errno == EWOULDBLOCK;
	close(fd);
	return held;
}

int state_dir_cleanup(const char *root, const char *name, int wait_ms)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (name)
		return cleanup_one(root, name, wait_ms);
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : log_errno(errno, "cannot open %s", root);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char *vm;
		int one;

		/* every VM leaves NAME.lock while running; a dir without one is a leftover too */
		if (e->d_name[0] == '.')
			continue;
		if (n > 5 && !strcmp(e->d_name + n - 5, ".lock"))
			vm = xstrndup(e->d_name, n - 5);
		else if (e->d_type == DT_DIR)
			vm = xstrdup(e->d_name);
		else
			continue;
		if (!config_vm_name_valid(vm)) {
			free(vm); /* not something vmlaunch made: leave it */
			continue;
		}
		one = cleanup_one(root, vm, wait_ms);
		if (one < 0 && !r)
			r = one;
		free(vm);
	}
	closedir(d);
	return r;
}

int state_dir_listen(struct journal *j, const char *path, const char *what)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(addr.sun_path))
		return log_errno(ENAMETOOLONG, "%s: socket path %s", what, path);
	r = state_dir_journal_file(j, path);
	if (r < 0)
		return r;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_errno(errno, "%s: socket", what);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
		r = log_errno(errno, "%s: cannot listen on %s", what, path);
		close(fd);
		return r;
	}
	return fd;
}
