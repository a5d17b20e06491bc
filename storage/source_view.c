/* Idmapped, read-only, detached bind mounts of single files (open_tree + mount_setattr, Linux 5.12+). */
#define _GNU_SOURCE
#include "source_view.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n != (ssize_t)strlen(text))
		r = n < 0 ? -errno : -EIO;
	close(fd);
	return r;
}

/* A user namespace mapping file_uid to uid and file_gid to gid, nothing else: made by a child that unshares and
 * waits while vmlaunch writes its maps and takes the namespace's fd; the child then exits. */
static int user_namespace(uid_t file_uid, uid_t uid, gid_t file_gid, gid_t gid)
{
	char path[64], map[64];
	int go[2], fd = -1, r;
	pid_t pid;
	char c;

	if (pipe2(go, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(unshare(CLONE_NEWUSER) < 0 || read(go[0], &c, 1) < 0 ? 1 : 0);
	}
	close(go[0]);
	if (pid < 0) {
		close(go[1]);
		return -errno;
	}
	/* the child has unshared once its namespace differs from ours */
	for (int i = 0; i < 500; i++) {
		struct stat mine, its;

		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		if (stat("/proc/self/ns/user", &mine) == 0 && stat(path, &its) == 0 && mine.st_ino != its.st_ino)
			break;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			pid = 0;
			break;
		}
		usleep(1000);
	}
	r = pid ? 0 : -EPERM;
	if (r == 0) {
		snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
		snprintf(map, sizeof(map), "%u %u 1", (unsigned)file_uid, (unsigned)uid);
		r = write_file(path, map);
	}
	if (r == 0) {
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		r = write_file(path, "deny");
	}
	if (r == 0) {
		snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
		snprintf(map, sizeof(map), "%u %u 1", (unsigned)file_gid, (unsigned)gid);
		r = write_file(path, map);
	}
	if (r == 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		r = fd < 0 ? -errno : 0;
	}
	close(go[1]); /* the child reads EOF and exits */
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	return r < 0 ? r : fd;
}

int source_view_open(const char *path, uid_t uid, gid_t gid)
{
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
			    MOUNT_ATTR_NOEXEC,
	};
	struct stat st = { 0 };
	int userns, fd, r;

	/* the mount first, then its file's owner: what is mapped is what is mounted, even if PATH changes meanwhile */
	fd = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		/* a device's node lives on devtmpfs: qemu-nbd serves it instead */
		r = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(fd);
		return r;
	}
	userns = user_namespace(st.st_uid, uid, st.st_gid, gid);
	if (userns < 0) {
		close(fd);
		return userns;
	}
	attr.userns_fd = (unsigned)userns;
	r = syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0 ? -errno : 0;
	close(userns);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}
