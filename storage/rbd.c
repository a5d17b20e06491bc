/* Backend "rbd": a Ceph RBD image created, cloned, grown and removed through librados/librbd (rbd_describe.c checks
 * the config and the cluster first). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "rbd_cluster.h"
#include "rbd_describe.h"
#include "rbd_lib.h"
#include "state_dir.h"
#include "storage.h"
#include "strv.h"

/*
 * qemu opens the image with its own rbd driver (no raw layer) and cache.direct=on, which is what turns
 * librbd's cache off. vmlaunch talks to the cluster only to check, create, clone, grow and remove images; qemu
 * authenticates with the cephx key read from a 0600 file (-object secret), so the key is on no command line.
 * vmlaunch removes only the images it created or cloned for an ephemeral disk, and never shrinks an image.
 */

/* The watch of a client that died without closing the image lasts osd_client_watch_timeout (30 s). */
#define RBD_REMOVE_BUSY_SECONDS 45

/* Creates PATH (0600, never through a symlink or over an existing file) holding `len` bytes of `data`. */
static int write_private_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), r = 0;

	if (fd < 0)
		return -errno;
	while (len && !r) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno != EINTR)
			r = -errno;
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
	}
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

/* The user's conf, then a [client.USER] section with the msgr2 mode. Ceph merges a section given twice, the later
 * line winning, and [client.USER] outranks [client] and [global]: the mode holds whatever the user's conf says. */
static int write_qemu_conf(const struct rbd_spec *s, const char *path)
{
	FILE *f = fopen(s->conf, "re");
	char *text = NULL, *out;
	size_t len = 0;
	int r;

	if (!f)
		return -errno;
	{
		FILE *m = open_memstream(&text, &len);
		char buf[8192];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, m);
		r = ferror(f) ? -EIO : 0;
		fclose(m);
	}
	fclose(f);
	if (r < 0) {
		free(text);
		return r;
	}
	if (s->ms_mode == MS_MODE_DEFAULT)
		out = xasprintf("%s", text ? text : "");
	else
		out = xasprintf("%s%s\n# vmlaunch: ms-mode = %s for this disk (qemu's -blockdev rbd has no option for it)\n"
				"[client.%s]\nms_client_mode = %s\nms_mon_client_mode = %s\n",
				text, len && text[len - 1] != '\n' ? "\n" : "", rbd_ms_mode_word(s->ms_mode), s->user,
				rbd_ms_mode_word(s->ms_mode), rbd_ms_mode_word(s->ms_mode));
	r = write_private_file(path, out, strlen(out));
	free(out);
	free(text);
	return r;
}

/* Creates or clones the image; an ephemeral one's removal is recorded first (describe found no image of that name, and
 * removing one that never came is a no-op). */
static int create_image(const struct disk_config *d, const struct rbd_spec *s, rados_t c, rados_ioctx_t io,
			struct journal *j)
{
	rbd_image_options_t opts;
	char *name = rbd_image_name(s->pool, s->ns, s->image);
	int r;

	if (d->ephemeral) {
		char *undo = rbd_spec_encode(s);

		r = journal_add(j, "rbd-remove", undo);
		free(undo);
		if (r < 0) {
			free(name);
			return r;
		}
	}
	if (d->clone_from) {
		struct rbd_parent p;

		rbd_parent_parse(d->clone_from, &p);
		r = rbd_clone_parent(c, &p, io, s->image);
		rbd_parent_free(&p);
		if (r < 0)
			r = log_errno(r, "disk \"%s\": cannot clone %s into %s", d->name, d->clone_from, name);
	} else {
		rbd_lib.rbd_image_options_create(&opts);
		rbd_lib.rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, RBD_FEATURES);
		r = rbd_lib.rbd_create4(io, s->image, d->size, opts);
		rbd_lib.rbd_image_options_destroy(opts);
		if (r < 0)
			r = log_errno(r, "disk \"%s\": cannot create image %s (%llu bytes)", d->name, name,
				      (unsigned long long)d->size);
	}
	free(name);
	return r;
}

/* Grows the image to `bytes` when it is smaller; never shrinks it. */
static int grow_image(const struct disk_config *d, const struct rbd_spec *s, rados_ioctx_t io, uint64_t bytes)
{
	char *name = rbd_image_name(s->pool, s->ns, s->image);
	uint64_t now = 0;
	rbd_image_t img;
	int r = rbd_lib.rbd_open_read_only(io, s->image, &img, NULL);

	if (r >= 0) {
		r = rbd_lib.rbd_get_size(img, &now);
		rbd_lib.rbd_close(img);
	}
	if (r >= 0 && now < bytes) {
		log_info("disk \"%s\": growing %s from %llu to %llu bytes", d->name, name, (unsigned long long)now,
			 (unsigned long long)bytes);
		r = rbd_lib.rbd_open(io, s->image, &img, NULL);
		if (r >= 0) {
			r = rbd_lib.rbd_resize2(img, bytes, false, NULL, NULL);
			rbd_lib.rbd_close(img);
		}
	}
	if (r < 0)
		r = log_errno(r, "disk \"%s\": cannot grow image %s to %llu bytes", d->name, name, (unsigned long long)bytes);
	free(name);
	return r;
}

static int rbd_prepare(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t,
		       struct journal *j)
{
	const struct vm_config *cfg = ctx->cfg;
	struct rbd_state *st = t->priv;
	struct rbd_spec s;
	rados_t c = NULL;
	rados_ioctx_t io = NULL;
	const char *what;
	char *key = NULL, *why = NULL;
	int r;

	rbd_disk_spec(cfg, d, &s);
	if (t->secret_file) {
		/* Found again rather than kept since describe: the key lives in vmlaunch's memory only this long. */
		r = rbd_cluster_configure(&s, &c, &what);
		if (r < 0) {
			r = log_errno(r, "disk \"%s\": %s %s", d->name, what, s.conf);
			goto out;
		}
		r = rbd_find_key(c, s.user, &key, &why);
		rbd_lib.rados_shutdown(c);
		c = NULL;
		if (r < 0 || !key) {
			r = log_errno(r < 0 ? r : ENOKEY, "disk \"%s\": no cephx key for client.%s: %s", d->name, s.user,
				      why ? why : "the cluster no longer asks for one");
			goto out;
		}
		/* Recorded first: removing a file that was never written is a no-op. */
		r = state_dir_journal_file(j, t->secret_file);
		if (r < 0)
			goto out;
		r = write_private_file(t->secret_file, key, strlen(key));
		if (r < 0) {
			r = log_errno(r, "disk \"%s\": cannot write the cephx key to %s", d->name, t->secret_file);
			goto out;
		}
	}
	r = state_dir_journal_file(j, st->qemu_conf);
	if (r < 0)
		goto out;
	r = write_qemu_conf(&s, st->qemu_conf);
	if (r < 0) {
		r = log_errno(r, "disk \"%s\": cannot write %s (qemu's copy of the Ceph configuration %s)", d->name,
			      st->qemu_conf, s.conf);
		goto out;
	}
	if ((!st->create && !d->size) || t->filled_elsewhere) {
		/* an existing image, used as it is: qemu needs nothing more; or a restored snapshot's disk, which
		 * snapshot.c clones from the frozen image instead (rbd_snapshot_clone) */
		r = 0;
		goto out;
	}
	r = rbd_cluster_connect(&s, &c, &what);
	if (r < 0) {
		r = log_errno(r, "disk \"%s\": %s in %s as client.%s", d->name, what, s.conf, s.user);
		goto out;
	}
	r = rbd_open_pool(c, s.pool, s.ns, &io);
	if (r < 0) {
		r = log_errno(r, "disk \"%s\": cannot open pool \"%s\"", d->name, s.pool);
		goto out;
	}
	if (st->create) {
		r = create_image(d, &s, c, io, j);
		if (r < 0)
			goto out;
	}
	if (d->size)
		r = grow_image(d, &s, io, d->size);
out:
	rbd_disconnect(c, io);
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	free(why);
	rbd_spec_free(&s);
	return r;
}

static int rbd_remove_undo(const char *text, const char *state_dir)
{
	struct rbd_spec s;
	rados_t c = NULL;
	rados_ioctx_t io = NULL;
	const char *what;
	char *name;
	int r;

	(void)state_dir;
	if (rbd_spec_decode(text, &s) < 0)
		return log_errno(EBADMSG, "journal: rbd-remove \"%s\": expected pool=, image=, conf= and user= lines", text);
	name = rbd_image_name(s.pool, s.ns, s.image);
	r = rbd_cluster_connect(&s, &c, &what);
	if (r < 0) {
		r = log_errno(r, "cannot remove RBD image %s: %s in %s as client.%s", name, what, s.conf, s.user);
		goto out;
	}
	r = rbd_open_pool(c, s.pool, s.ns, &io);
	if (r == -ENOENT) {
		r = 0; /* the pool is gone, and the image with it */
		goto out;
	}
	for (time_t deadline = time(NULL) + RBD_REMOVE_BUSY_SECONDS; r >= 0;) {
		r = rbd_lib.rbd_remove(io, s.image);
		if (r == -ENOENT)
			r = 0; /* already gone: a replay */
		/* still watched: a qemu that was killed keeps its watch until the OSD times it out */
		if (r != -EBUSY || time(NULL) >= deadline)
			break;
		nanosleep(&(struct timespec){ 1, 0 }, NULL);
		r = 0;
	}
	if (r < 0)
		r = log_errno(r, "cannot remove RBD image %s", name);
out:
	rbd_disconnect(c, io);
	free(name);
	rbd_spec_free(&s);
	return r;
}

JOURNAL_UNDO(rbd_remove, "rbd-remove", rbd_remove_undo)

const struct storage_backend storage_rbd = {
	.describe = rbd_describe,
	.prepare = rbd_prepare,
	.free_priv = rbd_state_free,
};
