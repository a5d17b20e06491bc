/* [boot] tpm = yes: swtpm's state directory, its socket and the swtpm process; their undos are this file's, the state
 * dir's and the process's. */
#define _GNU_SOURCE
#include "tpm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "journal.h"
#include "log.h"
#include "privileges.h"
#include "state_dir.h"
#include "strv.h"
#include "test_hook.h"

/* A throwaway state directory and whatever swtpm wrote in it (tpm2-00.permall, its temporary copy, .lock): plain
 * files one level deep, never following a symlink; only inside the state dir. */
static int undo_tpm_state(const char *path, const char *state_dir)
{
	struct dirent *e;
	DIR *d;
	int fd, r = 0;

	if (!state_dir_contains(state_dir, path))
		return log_errno(EPERM, "journal: refusing to remove %s, outside %s", path, state_dir);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : log_errno(errno, "cannot open %s", path);
	d = fdopendir(fd);
	if (!d) {
		r = log_errno(errno, "cannot read %s", path);
		close(fd);
		return r;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && unlinkat(dirfd(d), e->d_name, 0) < 0)
			r = log_errno(errno, "cannot remove %s/%s", path, e->d_name);
	closedir(d);
	if (r == 0 && rmdir(path) < 0 && errno != ENOENT)
		r = log_errno(errno, "cannot remove directory %s", path);
	return r;
}
JOURNAL_UNDO(tpm_state, "tpm-state", undo_tpm_state)

/* The directory swtpm keeps its state in, owned by the user it runs as; opened for the child to enter, so swtpm needs
 * no way through the directories above it (the state dir is root's). A kept one is made at first start and stays. */
static int state_directory(const struct tpm_plan *t, const struct privileges *pv, struct journal *j)
{
	uid_t uid = pv->switch_user ? pv->uid : geteuid();
	gid_t gid = pv->switch_user ? pv->gid : getegid();
	struct stat st;
	int fd, r;

	if (!t->persistent && (r = journal_add(j, "tpm-state", t->state)) < 0)
		return r;
	if (mkdir(t->state, 0700) == 0) {
		if (chown(t->state, uid, gid) < 0)
			return log_errno(errno, "cannot give %s to swtpm's user", t->state);
	} else if (errno != EEXIST || !t->persistent) {
		return log_errno(errno, "cannot create the TPM state directory %s", t->state);
	}
	fd = open(t->state, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "cannot open the TPM state directory %s", t->state);
	if (fstat(fd, &st) < 0) {
		r = log_errno(errno, "cannot check %s", t->state);
		close(fd);
		return r;
	}
	if (st.st_uid != uid) {
		r = log_errno(EPERM, "[boot] tpm-state %s belongs to uid %u, but swtpm runs as uid %u (qemu's user); "
				     "expected a directory of that user's (chown %u %s)",
			      t->state, (unsigned)st.st_uid, (unsigned)uid, (unsigned)uid, t->state);
		close(fd);
		return r;
	}
	return fd;
}

int tpm_start(const struct tpm_plan *t, const char *swtpm, const struct privileges *pv, struct journal *j)
{
	struct strv argv = STRV_INIT;
	int dir_fd, fds[2] = { -1, -1 }, r;
	char *log = xasprintf("%s.log", t->socket);
	pid_t pid;

	dir_fd = r = state_directory(t, pv, j);
	if (r < 0)
		goto out;
	fds[0] = r = state_dir_listen(j, t->socket, "TPM");
	if (r < 0)
		goto out;
	/* its log as an fd of its own: swtpm 0.7 closes its stdio before it opens --log fd= */
	fds[1] = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fds[1] < 0) {
		r = log_errno(errno, "TPM: cannot create %s", log);
		goto out;
	}
	/* --terminate: swtpm exits by itself once qemu closes the control channel; its state is in "." (dir_fd) */
	strv_push_many(&argv, swtpm, "socket", "--tpm2", "--tpmstate", "dir=.,mode=0600", "--ctrl", "type=unixio,fd=3",
		       "--terminate", "--log", "fd=4", NULL);
	pid = command_start_child(argv.v,
				  &(struct command_child){ .fds = fds, .n_fds = 2, .as = pv, .journal = j, .cwd_fd = &dir_fd },
				  log, "TPM");
	r = pid < 0 ? (int)pid : 0;
	if (r == 0) {
		log_info("TPM: swtpm (pid %d) keeps its state in %s", (int)pid, t->state);
		test_hook_stop_at("tpm");
	}
out:
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (dir_fd >= 0)
		close(dir_fd);
	free(log);
	strv_free(&argv);
	return r;
}
