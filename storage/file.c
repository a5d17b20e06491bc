/* Backend "file": an existing raw or qcow2 image (or block device); ephemeral = yes writes to a qcow2 overlay instead. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "log.h"
#include "state_dir.h"
#include "storage.h"
#include "strv.h"

/* ephemeral = yes: the image a qcow2 overlay in the state dir stands on; or a persistent image made at first start. */
struct file_state {
	char *base;
	enum disk_format base_format;
	bool create; /* path does not exist yet: a sparse raw image of size = is made, and kept */
};

static void file_state_free(void *p)
{
	struct file_state *s = p;

	free(s->base);
	free(s);
}

static const unsigned char qcow2_magic[4] = { 'Q', 'F', 'I', 0xfb };

/* O_TMPFILE leaves nothing behind: the probe creates no visible file even if we die right here. */
static bool dir_takes_direct_io(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* The directory a path is in: "/" for a file at the top or a bare name. */
static char *parent_dir(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');

	if (!slash || slash == dir) {
		free(dir);
		return xstrdup("/");
	}
	*slash = '\0';
	return dir;
}

/* An appliance's data disk on its first start: made sparse at launch, kept from then on. */
static int describe_new_image(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t)
{
	char *parent = parent_dir(d->path);
	struct file_state *fs;
	struct stat pst;

	/* its directory is named by the config too: not there is the config's mistake (2), said before anything */
	if (stat(parent, &pst) < 0 || !S_ISDIR(pst.st_mode)) {
		log_error("%s: [disk %s] path %s: no directory %s to make it in; expected an existing directory "
			  "(mkdir -p %s)",
			  config_at(ctx->cfg, d->path_line), d->name, d->path, parent, parent);
		free(parent);
		return -EINVAL;
	}
	fs = xcalloc(1, sizeof(*fs));
	fs->create = true;
	t->priv = fs;
	t->driver = DRIVER_FILE;
	t->filename = xstrdup(d->path);
	t->format = FORMAT_RAW;
	t->direct_ok = dir_takes_direct_io(parent);
	t->zeroed = true;
	free(parent);
	return 0;
}

/* An existing image or block device, as the config says it is: stat'ed into *st. */
static int check_image(const struct vm_config *cfg, const struct disk_config *d, struct stat *st)
{
	unsigned char head[4] = { 0 };
	bool is_qcow2;
	int fd;

	if (stat(d->path, st) < 0)
		return log_error(
			"%s: [disk %s] path %s: %s%s", config_at(cfg, d->path_line), d->name, d->path, strerror(errno),
			errno == ENOENT ? "; with size = (and format raw), vmlaunch makes it at first start" : "");
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return log_error("%s: [disk %s] path %s: expected a disk image file or a block device",
				 config_at(cfg, d->path_line), d->name, d->path);
	fd = open(d->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_error("%s: [disk %s] path %s: %s", config_at(cfg, d->path_line), d->name, d->path,
				 strerror(errno));
	if (pread(fd, head, sizeof(head), 0) < 0)
		head[0] = 0;
	close(fd);
	is_qcow2 = !memcmp(head, qcow2_magic, sizeof(head));
	/* Never guess a format from the contents: a guest can write a qcow2 header onto its raw disk. Only refuse the
	 * combination that is certainly a mistake. */
	if (is_qcow2 && d->format == FORMAT_RAW)
		return log_error("%s: [disk %s] path %s starts with a qcow2 header; expected format = qcow2 (vmlaunch "
				 "never guesses formats)",
				 config_at(cfg, d->format_line ? d->format_line : d->line), d->name, d->path);
	if (!is_qcow2 && d->format == FORMAT_QCOW2)
		return log_error("%s: [disk %s] format = qcow2, but %s is not a qcow2 image",
				 config_at(cfg, d->format_line), d->name, d->path);
	if (!d->readonly && !d->ephemeral && access(d->path, W_OK) < 0)
		return log_error("%s: [disk %s] path %s is not writable; expected readonly = yes or ephemeral = yes",
				 config_at(cfg, d->path_line), d->name, d->path);
	return 0;
}

/* ephemeral = yes: the image is never written; a qcow2 overlay in the state dir takes the writes and vanishes at
 * exit. The overlay's backing file is opened with the overlay's cache mode, so both must take O_DIRECT. */
static void describe_overlay(const struct storage_context *ctx, const struct disk_config *d, const struct stat *st,
			     struct storage_target *t)
{
	struct file_state *fs = xcalloc(1, sizeof(*fs));
	char *parent = xstrdup(ctx->state_dir), *slash = strrchr(parent, '/');

	/* the state dir is made at launch: probe the nearest directory of it that exists */
	if (slash && slash != parent)
		*slash = '\0';
	while (access(parent, F_OK) < 0 && (slash = strrchr(parent, '/')) && slash != parent)
		*slash = '\0';
	t->direct_ok = t->direct_ok && dir_takes_direct_io(parent);
	free(parent);
	t->driver = DRIVER_FILE;
	t->filename = xasprintf("%s/%s.overlay.qcow2", ctx->state_dir, d->name);
	t->format = FORMAT_QCOW2;
	fs->base = xstrdup(d->path);
	fs->base_format = d->format;
	t->priv = fs;
	t->backing = xstrdup(d->path);
	t->backing_format = d->format;
	t->backing_driver = S_ISBLK(st->st_mode) ? DRIVER_HOST_DEVICE : DRIVER_FILE;
}

static int file_describe(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t)
{
	struct stat st;
	int fd, r;

	if (stat(d->path, &st) < 0 && errno == ENOENT && d->size && !d->ephemeral && !d->readonly &&
	    d->format == FORMAT_RAW)
		return describe_new_image(ctx, d, t);
	r = check_image(ctx->cfg, d, &st);
	if (r < 0)
		return r;
	t->driver = S_ISBLK(st.st_mode) ? DRIVER_HOST_DEVICE : DRIVER_FILE;
	t->readonly = d->readonly;
	t->ephemeral = d->ephemeral;
	fd = open(d->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	t->direct_ok = fd >= 0;
	if (fd >= 0)
		close(fd);
	if (d->ephemeral) {
		describe_overlay(ctx, d, &st, t);
	} else {
		/* a persistent image is the user's data: its owner decides who may open it, vmlaunch does not chown it */
		t->filename = xstrdup(d->path);
		t->format = d->format;
	}
	return 0;
}

static int file_prepare(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t,
			struct journal *j)
{
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", NULL, "-b", NULL, NULL, NULL };
	struct file_state *fs = t->priv;
	char *what;
	int r;

	(void)ctx;
	if (fs && fs->create) {
		int fd = open(t->filename, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd < 0)
			return log_errno(errno, "disk \"%s\": cannot create %s", d->name, t->filename);
		if (ftruncate(fd, (off_t)d->size) < 0) {
			r = log_errno(errno, "disk \"%s\": cannot size %s", d->name, t->filename);
			close(fd);
			unlink(t->filename); /* never leave a half-made image behind */
			return r;
		}
		close(fd);
		log_info("disk \"%s\": made %s (%llu bytes, sparse)", d->name, t->filename, (unsigned long long)d->size);
		return 0;
	}
	if (!fs)
		return 0;
	/* Recorded first: removing an overlay that was never created is a no-op. */
	r = state_dir_journal_file(j, t->filename);
	if (r < 0)
		return r;
	argv[6] = fs->base_format == FORMAT_QCOW2 ? "qcow2" : "raw";
	argv[8] = fs->base;
	argv[9] = t->filename;
	what = xasprintf("disk \"%s\": cannot create the overlay %s", d->name, t->filename);
	r = command_must(argv, what);
	free(what);
	return r;
}

const struct storage_backend storage_file = {
	.describe = file_describe,
	.prepare = file_prepare,
	.free_priv = file_state_free,
};
