/* Warm start with an ephemeral RBD disk: a frozen copy of the image at the save (protected snapshot), cloned per run. */
#define _GNU_SOURCE
#include "rbd_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "journal.h"
#include "log.h"
#include "rbd_cluster.h"
#include "rbd_describe.h"
#include "rbd_lib.h"
#include "strv.h"

/* rbd_copy4's sparse_size: aligned runs of zeros this long are not written, so the copy stays sparse */
#define SPARSE_SIZE 4096

/* The text of a frozen-image file (what write_spec wrote) and, unless s is NULL, the spec it holds; or -errno. */
static int read_spec(const char *file, struct rbd_spec *s, char **text)
{
	FILE *f = fopen(file, "re");
	char buf[4096];
	size_t n;

	*text = NULL;
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	*text = xstrdup(buf);
	return s && rbd_spec_decode(buf, s) < 0 ? -EBADMSG : 0;
}

/* Connects as the spec says and opens its pool; *c and *io NULL on failure (logged). */
static int connect_pool(const struct rbd_spec *s, rados_t *c, rados_ioctx_t *io)
{
	const char *what;
	int r = rbd_cluster_connect(s, c, &what);

	*io = NULL;
	if (r < 0) {
		*c = NULL;
		return log_errno(r, "%s in %s as client.%s", what, s->conf, s->user);
	}
	r = rbd_open_pool(*c, s->pool, s->ns, io);
	if (r < 0) {
		*io = NULL;
		rbd_lib.rados_shutdown(*c);
		*c = NULL;
		return r; /* the caller says which pool, and whether a missing one matters */
	}
	return 0;
}

/* The frozen image's snapshot unprotected and removed, then the image. Gone already: 0. Still cloned: -EBUSY. */
static int remove_frozen(const struct rbd_spec *s)
{
	char *name = rbd_image_name(s->pool, s->ns, s->image);
	rados_t c;
	rados_ioctx_t io;
	rbd_image_t img;
	int r = connect_pool(s, &c, &io);

	if (r == -ENOENT) { /* the pool is gone, and the image with it */
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	r = rbd_lib.rbd_open(io, s->image, &img, NULL);
	if (r == 0) {
		r = rbd_lib.rbd_snap_unprotect(img, RBD_FROZEN_SNAP);
		/* EINVAL: not protected (a save killed before it protected it); ENOENT: not made */
		if (r == -EINVAL || r == -ENOENT)
			r = 0;
		if (r == 0) {
			r = rbd_lib.rbd_snap_remove(img, RBD_FROZEN_SNAP);
			r = r == -ENOENT ? 0 : r;
		}
		rbd_lib.rbd_close(img);
		if (r == 0)
			r = rbd_lib.rbd_remove(io, s->image);
	}
	if (r == -ENOENT)
		r = 0;
	if (r == -EBUSY)
		log_warn("the frozen RBD image %s@%s is still cloned by a running restore; left in place (rbd children "
			 "%s@%s; remove it with rbd snap unprotect, rbd snap rm and rbd rm when they are done)",
			 name, RBD_FROZEN_SNAP, name, RBD_FROZEN_SNAP);
	else if (r < 0)
		log_errno(r, "cannot remove the frozen RBD image %s", name);
out:
	rbd_disconnect(c, io);
	free(name);
	return r;
}

/* "SPEC\nkeep-if=PATH": kept when PATH holds SPEC (the snapshot that names the image was installed). */
static int undo_frozen(const char *text, const char *state_dir)
{
	const char *keep = strstr(text, "\nkeep-if=");
	struct rbd_spec s;
	char *spec_text, *now = NULL;
	int r;

	(void)state_dir;
	if (!keep || rbd_spec_decode(text, &s) < 0)
		return log_errno(EBADMSG, "journal: rbd-frozen \"%s\": expected an image's spec and keep-if=", text);
	spec_text = xasprintf("%.*s\n", (int)(keep - text), text);
	read_spec(keep + 9, NULL, &now);
	r = now && !strcmp(now, spec_text) ? 0 : remove_frozen(&s);
	free(now);
	free(spec_text);
	rbd_spec_free(&s);
	return r == -EBUSY ? 0 : r;
}
JOURNAL_UNDO(rbd_frozen, "rbd-frozen", undo_frozen)

static int write_spec(const char *file, const struct rbd_spec *s)
{
	char *text = rbd_spec_encode(s), *line = xasprintf("%s\n", text);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), r;

	r = fd < 0 ? -errno : fd_write_all(fd, line, strlen(line));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(text);
	free(line);
	return r < 0 ? log_errno(r, "cannot write %s", file) : 0;
}

int rbd_snapshot_freeze(const struct vm_config *cfg, const struct disk_config *d, const char *file,
			const char *keep_if, struct journal *j)
{
	struct rbd_spec run, frozen;
	char *enc, *record, *name, *from;
	rados_t c = NULL;
	rados_ioctx_t io = NULL;
	rbd_image_t img;
	rbd_image_options_t opts;
	struct timespec now;
	int r;

	rbd_disk_spec(cfg, d, &run);
	rbd_disk_spec(cfg, d, &frozen);
	clock_gettime(CLOCK_REALTIME, &now);
	free(frozen.image);
	/* a new name per save: a rebuild must not touch the image that restores of the old snapshot still clone */
	frozen.image = xasprintf("vmlaunch-frozen-%s-%s-%llx%lx", cfg->name, d->name, (unsigned long long)now.tv_sec,
				 (unsigned long)now.tv_nsec);
	name = rbd_image_name(frozen.pool, frozen.ns, frozen.image);
	from = rbd_image_name(run.pool, run.ns, run.image);
	enc = rbd_spec_encode(&frozen);
	record = xasprintf("%s\nkeep-if=%s", enc, keep_if);
	r = journal_add(j, "rbd-frozen", record);
	if (r == 0) {
		r = connect_pool(&run, &c, &io);
		if (r < 0)
			log_errno(r, "disk \"%s\": cannot open pool \"%s\"", d->name, run.pool);
	}
	if (r < 0)
		goto out;
	r = rbd_lib.rbd_open_read_only(io, run.image, &img, NULL);
	if (r == 0) {
		rbd_lib.rbd_image_options_create(&opts);
		rbd_lib.rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, RBD_FEATURES);
		r = rbd_lib.rbd_copy4(img, io, frozen.image, opts, SPARSE_SIZE);
		rbd_lib.rbd_image_options_destroy(opts);
		rbd_lib.rbd_close(img);
	}
	if (r < 0) {
		r = log_errno(r, "disk \"%s\": cannot copy %s to %s", d->name, from, name);
		goto out;
	}
	r = rbd_lib.rbd_open(io, frozen.image, &img, NULL);
	if (r == 0) {
		r = rbd_lib.rbd_snap_create(img, RBD_FROZEN_SNAP);
		if (r == 0)
			r = rbd_lib.rbd_snap_protect(img, RBD_FROZEN_SNAP);
		rbd_lib.rbd_close(img);
	}
	if (r < 0) {
		r = log_errno(r, "disk \"%s\": cannot make the protected snapshot %s@%s", d->name, name, RBD_FROZEN_SNAP);
		goto out;
	}
	r = write_spec(file, &frozen);
	if (r == 0)
		log_info("disk \"%s\": %s frozen as %s@%s", d->name, from, name, RBD_FROZEN_SNAP);
out:
	rbd_disconnect(c, io);
	free(enc);
	free(record);
	free(name);
	free(from);
	rbd_spec_free(&run);
	rbd_spec_free(&frozen);
	return r;
}

int rbd_snapshot_check(const char *file, const char *disk)
{
	struct rbd_spec s;
	char *text, *name;
	rados_t c;
	rados_ioctx_t io;
	rbd_image_t img;
	int prot = 0, r = read_spec(file, &s, &text);

	free(text);
	if (r < 0)
		return log_errno(r, "cannot read %s (disk \"%s\"'s frozen RBD image)", file, disk);
	name = rbd_image_name(s.pool, s.ns, s.image);
	r = connect_pool(&s, &c, &io);
	if (r == 0) {
		r = rbd_lib.rbd_open_read_only(io, s.image, &img, NULL);
		if (r == 0) {
			r = rbd_lib.rbd_snap_is_protected(img, RBD_FROZEN_SNAP, &prot);
			rbd_lib.rbd_close(img);
		}
	}
	if (r == -ENOENT || (r == 0 && !prot))
		r = log_error("disk \"%s\": the snapshot's frozen RBD image %s@%s is gone from the cluster (or no longer "
			      "protected): this snapshot cannot be restored (rebuild it with vmlaunch --snapshot CONF)",
			      disk, name, RBD_FROZEN_SNAP);
	else if (r < 0)
		r = log_errno(r, "disk \"%s\": cannot check the snapshot's frozen RBD image %s", disk, name);
	rbd_disconnect(c, io);
	free(name);
	rbd_spec_free(&s);
	return r;
}

int rbd_snapshot_clone(const struct vm_config *cfg, const struct disk_config *d, const char *file, struct journal *j)
{
	struct rbd_spec run, frozen;
	char *text, *undo, *name = NULL, *parent = NULL;
	rados_t c = NULL;
	rados_ioctx_t io = NULL;
	int r = read_spec(file, &frozen, &text);

	free(text);
	if (r < 0)
		return log_errno(r, "cannot read %s (disk \"%s\"'s frozen RBD image)", file, d->name);
	rbd_disk_spec(cfg, d, &run);
	name = rbd_image_name(run.pool, run.ns, run.image);
	parent = rbd_image_name(frozen.pool, frozen.ns, frozen.image);
	/* the run's image is removed at exit: recorded before the clone (removing one never made is a no-op) */
	undo = rbd_spec_encode(&run);
	r = journal_add(j, "rbd-remove", undo);
	free(undo);
	if (r == 0 && (r = connect_pool(&run, &c, &io)) < 0)
		log_errno(r, "disk \"%s\": cannot open pool \"%s\"", d->name, run.pool);
	if (r == 0) {
		struct rbd_parent p = { frozen.pool, frozen.ns, frozen.image, (char *)RBD_FROZEN_SNAP };

		r = rbd_clone_parent(c, &p, io, run.image);
		if (r < 0)
			log_errno(r, "disk \"%s\": cannot clone the snapshot's frozen image %s@%s into %s", d->name, parent,
				  RBD_FROZEN_SNAP, name);
		else
			log_info("disk \"%s\": %s cloned from %s@%s", d->name, name, parent, RBD_FROZEN_SNAP);
	}
	rbd_disconnect(c, io);
	free(name);
	free(parent);
	rbd_spec_free(&run);
	rbd_spec_free(&frozen);
	return r;
}

int rbd_snapshot_drop(const char *file)
{
	struct rbd_spec s;
	char *text;
	int r = read_spec(file, &s, &text);

	free(text);
	if (r < 0)
		return r == -ENOENT ? 0 : log_errno(r, "cannot read %s", file);
	r = remove_frozen(&s);
	rbd_spec_free(&s);
	return r;
}
