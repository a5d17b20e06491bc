/* Backend "tmpfs": a raw file in a tmpfs of the disk's size mounted under the state dir; unmounted at exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "state_dir.h"
#include "storage.h"
#include "strv.h"

/* Kernels >= 6.6 accept O_DIRECT on tmpfs, older ones refuse it. O_TMPFILE leaves nothing behind even if we are killed
 * right here. */
static bool tmpfs_takes_direct_io(void)
{
	int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static char *mount_point(const char *state_dir, const char *disk)
{
	return xasprintf("%s/tmpfs-%s", state_dir, disk);
}

static int tmpfs_describe(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t)
{
	char *mnt = mount_point(ctx->state_dir, d->name);

	t->driver = DRIVER_FILE;
	t->filename = xasprintf("%s/disk.raw", mnt);
	t->format = FORMAT_RAW;
	t->direct_ok = tmpfs_takes_direct_io();
	t->ephemeral = true;
	t->ram_backed = true;
	t->readonly = d->readonly;
	t->zeroed = true; /* a new sparse file */
	free(mnt);
	return 0;
}

static int tmpfs_prepare(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t,
			 struct journal *j)
{
	char *mnt = mount_point(ctx->state_dir, d->name), *opts = NULL;
	int fd = -1, r;

	/* The undos are recorded before the steps: rmdir/umount of something that does not exist yet is a no-op. */
	r = state_dir_journal_dir(j, mnt);
	if (r < 0)
		goto out;
	if (mkdir(mnt, 0700) < 0) {
		r = log_errno(errno, "disk \"%s\": cannot create %s", d->name, mnt);
		goto out;
	}
	r = state_dir_journal_mount(j, mnt);
	if (r < 0)
		goto out;
	/* The disk's size plus room for tmpfs's own bookkeeping: the guest can fill its disk, never the host's RAM. */
	opts = xasprintf("size=%llu,mode=0700,nr_inodes=16", (unsigned long long)(d->size + (1ULL << 20)));
	if (mount("vmlaunch", mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
		r = log_errno(errno, "disk \"%s\": cannot mount a tmpfs on %s", d->name, mnt);
		goto out;
	}
	fd = open(t->filename, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = log_errno(errno, "disk \"%s\": cannot create %s", d->name, t->filename);
		goto out;
	}
	/* Sparse: tmpfs spends RAM only on what the guest writes. */
	if (ftruncate(fd, (off_t)d->size) < 0)
		r = log_errno(errno, "disk \"%s\": cannot size %s", d->name, t->filename);
out:
	if (fd >= 0)
		close(fd);
	free(opts);
	free(mnt);
	return r;
}

const struct storage_backend storage_tmpfs = {
	.describe = tmpfs_describe,
	.prepare = tmpfs_prepare,
};
