/* The rbd backend's describe step: an RBD disk's config checked for its own contradictions, then the cluster asked
 * what it holds (the image, its size and other clients, a clone's parent snapshot), before anything is made. */
#define _GNU_SOURCE
#include "rbd_describe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "rbd_lib.h"
#include "strv.h"

void rbd_state_free(void *p)
{
	struct rbd_state *s = p;

	free(s->qemu_conf);
	free(s);
}

static bool valid_rbd_name(const char *s)
{
	return *s && !strpbrk(s, "/@") && strlen(s) < 256;
}

void rbd_disk_spec(const struct vm_config *cfg, const struct disk_config *d, struct rbd_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->conf = xstrdup(d->ceph_conf ? d->ceph_conf : RBD_DEFAULT_CONF);
	s->user = xstrdup(d->ceph_user ? d->ceph_user : RBD_DEFAULT_USER);
	s->keyring = d->keyring ? xstrdup(d->keyring) : NULL;
	s->ms_mode = d->ms_mode;
	s->pool = xstrdup(d->pool);
	s->ns = d->rbd_namespace && *d->rbd_namespace ? xstrdup(d->rbd_namespace) : NULL;
	s->image = d->image ? xstrdup(d->image) : xasprintf("vmlaunch-%s-%s", cfg->name, d->name);
}

/* The config's own contradictions, refused before the cluster is asked anything. */
static int check_config(const struct vm_config *cfg, const struct disk_config *d, const struct rbd_spec *s)
{
	struct rbd_parent parent;

	if (!valid_rbd_name(s->pool))
		return log_error("%s: [disk %s] pool \"%s\": expected a pool name (no / or @)",
				 config_at(cfg, d->pool_line), d->name, s->pool);
	if (!valid_rbd_name(s->image))
		return log_error("%s: [disk %s] image \"%s\": expected an image name (no / or @)",
				 config_at(cfg, d->image_line ? d->image_line : d->line), d->name, s->image);
	if (s->ns && !valid_rbd_name(s->ns))
		return log_error("%s: [disk %s] namespace \"%s\": expected a namespace name (no / or @)",
				 config_at(cfg, d->rbd_namespace_line), d->name, s->ns);
	if (!strncmp(s->user, "client.", 7) || !*s->user || strpbrk(s->user, " \t"))
		return log_error("%s: [disk %s] user \"%s\": expected the cephx id without \"client.\" (user = %s)",
				 config_at(cfg, d->ceph_user_line), d->name, s->user,
				 strncmp(s->user, "client.", 7) ? "ID" : s->user + 7);
	if (d->create && !d->size)
		return log_error("%s: [disk %s]: create = yes needs size = (e.g. size = 10G) for a new image",
				 config_at(cfg, d->create_line), d->name);
	if (d->clone_from && rbd_parent_parse(d->clone_from, &parent) < 0)
		return log_error("%s: [disk %s] clone-from \"%s\": expected POOL/IMAGE@SNAPSHOT or "
				 "POOL/NAMESPACE/IMAGE@SNAPSHOT",
				 config_at(cfg, d->clone_from_line), d->name, d->clone_from);
	if (d->clone_from)
		rbd_parent_free(&parent);
	if (d->ephemeral && !d->create && !d->clone_from)
		return log_error(
			"%s: [disk %s]: an ephemeral rbd disk is an image vmlaunch creates and removes at exit; "
			"expected create = yes or clone-from = (vmlaunch never removes an image it did not create)",
			config_at(cfg, d->ephemeral_line), d->name);
	return 0;
}

/* The parent snapshot of clone-from =: it must exist and be protected. Returns its size in *bytes. */
static int check_parent(const struct vm_config *cfg, const struct disk_config *d, rados_t c, uint64_t *bytes)
{
	struct rbd_parent p;
	rados_ioctx_t io = NULL;
	rbd_image_t img = NULL;
	char *name;
	int prot = 0, r;

	rbd_parent_parse(d->clone_from, &p); /* checked by check_config */
	name = rbd_image_name(p.pool, p.ns, p.image);
	r = rbd_open_pool(c, p.pool, p.ns, &io);
	if (r < 0) {
		r = log_errno(r, "%s: [disk %s] clone-from: cannot open pool \"%s\"",
			      config_at(cfg, d->clone_from_line), d->name, p.pool);
		goto out;
	}
	r = rbd_lib.rbd_open_read_only(io, p.image, &img, NULL);
	if (r < 0) {
		r = log_errno(r, "%s: [disk %s] clone-from: cannot open image %s", config_at(cfg, d->clone_from_line),
			      d->name, name);
		goto out;
	}
	r = rbd_lib.rbd_snap_is_protected(img, p.snap, &prot);
	if (r < 0) {
		r = log_errno(r, "%s: [disk %s] clone-from: no snapshot \"%s\" of %s",
			      config_at(cfg, d->clone_from_line), d->name, p.snap, name);
		goto out;
	}
	if (!prot) {
		r = log_error("%s: [disk %s] clone-from: snapshot %s@%s is not protected; a clone needs its parent to "
			      "stay (rbd snap protect %s@%s)",
			      config_at(cfg, d->clone_from_line), d->name, name, p.snap, name, p.snap);
		goto out;
	}
	r = rbd_lib.rbd_snap_set(img, p.snap);
	if (r >= 0)
		r = rbd_lib.rbd_get_size(img, bytes);
	if (r < 0)
		r = log_errno(r, "%s: [disk %s] clone-from: cannot read the size of %s@%s",
			      config_at(cfg, d->clone_from_line), d->name, name, p.snap);
out:
	if (img)
		rbd_lib.rbd_close(img);
	rbd_disconnect(NULL, io);
	free(name);
	rbd_parent_free(&p);
	return r;
}

/* Whether `image` exists (1, with its size and how many clients have it open), is missing (0), or -errno. */
static int probe_image(rados_ioctx_t io, const char *image, uint64_t *bytes, size_t *watchers)
{
	rbd_image_watcher_t list[8];
	size_t n = sizeof(list) / sizeof(list[0]);
	rbd_image_t img;
	int r = rbd_lib.rbd_open_read_only(io, image, &img, NULL);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = rbd_lib.rbd_get_size(img, bytes);
	/* a read-only open registers no watch: every watcher is another client */
	*watchers = 0;
	if (r >= 0) {
		int w = rbd_lib.rbd_watchers_list(img, list, &n);

		if (w >= 0) {
			*watchers = n;
			rbd_lib.rbd_watchers_list_cleanup(list, n);
		} else if (w == -ERANGE) {
			*watchers = n;
		}
	}
	rbd_lib.rbd_close(img);
	return r < 0 ? r : 1;
}

/* What qemu gets: the rbd node's options, and the conf it reads when ms-mode needs one of vmlaunch's own. */
static void describe_target(const struct storage_context *ctx, const struct disk_config *d, const struct rbd_spec *s,
			    const char *name, struct storage_target *t)
{
	struct rbd_state *st = t->priv;

	t->driver = DRIVER_RBD;
	t->filename = xasprintf("rbd:%s", name);
	t->format = FORMAT_RAW;
	t->direct_ok = true; /* cache.direct=on is what turns librbd's cache off */
	t->ephemeral = d->ephemeral;
	t->readonly = d->readonly;
	/* qemu reads a copy in the state dir: its user may not read the original, and -blockdev rbd has no option for
	 * the msgr2 mode, which the copy then says */
	st->qemu_conf = xasprintf("%s/%s.ceph.conf", ctx->state_dir, d->name);
	strv_push(&t->qemu_opens, st->qemu_conf);
	strv_push_many(&t->driver_opts, "pool", s->pool, NULL);
	if (s->ns)
		strv_push_many(&t->driver_opts, "namespace", s->ns, NULL);
	strv_push_many(&t->driver_opts, "image", s->image, "conf", st->qemu_conf, "user", s->user, NULL);
}

/* Connects as the config says, with the key qemu will be handed (its file named in the target), and opens the
 * pool. Each failure names the config line it comes from. */
static int describe_connect(const struct storage_context *ctx, const struct disk_config *d, const struct rbd_spec *s,
			    struct storage_target *t, rados_t *c, rados_ioctx_t *io)
{
	const struct vm_config *cfg = ctx->cfg;
	unsigned conf_line = d->ceph_conf_line ? d->ceph_conf_line : d->line;
	const char *what;
	char *key = NULL, *why = NULL;
	int r;

	/* A file the config names (or its default) that is not there is a config mistake (exit 2), not a host failure */
	if (access(s->conf, R_OK) < 0 || (s->keyring && access(s->keyring, R_OK) < 0)) {
		bool conf = access(s->conf, R_OK) < 0;
		unsigned line = conf ? conf_line : d->keyring_line;

		return log_error("%s: [disk %s] %s %s: %s; expected %s", config_at(cfg, line), d->name,
				 conf ? "conf" : "keyring", conf ? s->conf : s->keyring, strerror(errno),
				 conf ? "the Ceph cluster's configuration file (conf = PATH; default " RBD_DEFAULT_CONF
					")"
				      : "a readable keyring file (keyring = PATH)");
	}
	r = rbd_cluster_configure(s, c, &what);
	if (r < 0)
		return log_errno(r, "%s: [disk %s] conf %s: %s", config_at(cfg, conf_line), d->name, s->conf, what);
	r = rbd_find_key(*c, s->user, &key, &why);
	if (r < 0) {
		r = log_errno(r, "%s: [disk %s]: no cephx key for client.%s: %s",
			      config_at(cfg, d->keyring_line	 ? d->keyring_line
					     : d->ceph_user_line ? d->ceph_user_line
								 : conf_line),
			      d->name, s->user, why);
		free(why);
		return r;
	}
	if (key) {
		t->secret_file = xasprintf("%s/%s.rbd-key", ctx->state_dir, d->name);
		strv_push(&t->qemu_opens, t->secret_file);
		explicit_bzero(key, strlen(key));
		free(key);
	}
	r = rbd_lib.rados_connect(*c);
	if (r < 0) {
		/* EACCES: the cluster refused the key; point at where the key came from when the config says */
		unsigned line = r == -EACCES && d->keyring_line ? d->keyring_line
				: d->ceph_user_line			? d->ceph_user_line
									: conf_line;

		return log_errno(r, "%s: [disk %s]: cannot connect to the Ceph cluster in %s as client.%s%s%s",
				 config_at(cfg, line), d->name, s->conf, s->user,
				 s->ms_mode != MS_MODE_DEFAULT ? " with ms-mode = " : "",
				 s->ms_mode != MS_MODE_DEFAULT ? rbd_ms_mode_word(s->ms_mode) : "");
	}
	r = rbd_open_pool(*c, s->pool, s->ns, io);
	if (r < 0)
		return log_errno(r, "%s: [disk %s] pool \"%s\": cannot open the pool in the Ceph cluster of %s",
				 config_at(cfg, d->pool_line), d->name, s->pool, s->conf);
	return 0;
}

/* An image that exists: used as it is (grown, never shrunk), unless the config's intent forbids it. */
static int describe_existing(const struct storage_context *ctx, const struct disk_config *d, const char *name,
			     uint64_t bytes, size_t watchers, struct storage_target *t)
{
	const struct vm_config *cfg = ctx->cfg;

	if (d->ephemeral) {
		/* describe runs before the state dir's leftovers are undone: say how to undo them */
		bool leftover = journal_exists(ctx->state_dir);

		return log_error(
			"%s: [disk %s]: image %s exists; an ephemeral disk is created fresh and removed at exit, "
			"and vmlaunch never removes an image it did not create (expected ephemeral = no to use "
			"it, or another image =%s%s)",
			config_at(cfg, d->ephemeral_line), d->name, name,
			leftover ? "; a run of this VM that did not finish may have left it: vmlaunch --cleanup " : "",
			leftover ? cfg->name : "");
	}
	if (watchers && !d->readonly)
		return log_errno(EBUSY,
				 "%s: [disk %s]: image %s is open by %zu other client(s) (rbd status %s); two "
				 "writers would corrupt it",
				 config_at(cfg, d->image_line ? d->image_line : d->line), d->name, name, watchers,
				 name);
	if (d->size > bytes && d->readonly)
		return log_error("%s: [disk %s]: image %s is %llu bytes, smaller than size = %llu, and readonly = yes "
				 "forbids growing it",
				 config_at(cfg, d->size_line), d->name, name, (unsigned long long)bytes,
				 (unsigned long long)d->size);
	if (d->size && d->size < bytes)
		log_warn(
			"%s: [disk %s]: image %s is %llu bytes, larger than size = %llu; vmlaunch never shrinks an image "
			"(the guest's data would be cut off), so it stays at %llu bytes",
			config_at(cfg, d->size_line), d->name, name, (unsigned long long)bytes,
			(unsigned long long)d->size, (unsigned long long)bytes);
	t->keep_contents = true;
	log_info("disk \"%s\": using %s (%llu bytes%s)", d->name, t->filename, (unsigned long long)bytes,
		 d->size > bytes ? ", grown to size = at launch" : "");
	return 0;
}

/* An image to make at launch: a clone of a protected snapshot, or a new one. */
static int describe_new(const struct storage_context *ctx, const struct disk_config *d, const struct rbd_spec *s,
			const char *name, rados_t c, struct storage_target *t)
{
	const struct vm_config *cfg = ctx->cfg;
	uint64_t parent_bytes = 0;
	int r;

	if (t->filled_elsewhere) {
		/* a snapshot restore clones the snapshot's frozen image instead (rbd_snapshot.c) */
	} else if (d->clone_from) {
		r = check_parent(cfg, d, c, &parent_bytes);
		if (r < 0)
			return r;
		if (d->size && d->size < parent_bytes)
			log_warn(
				"%s: [disk %s]: the parent %s is %llu bytes, larger than size = %llu; a clone is never "
				"smaller than its parent, so it stays at %llu bytes",
				config_at(cfg, d->size_line), d->name, d->clone_from, (unsigned long long)parent_bytes,
				(unsigned long long)d->size, (unsigned long long)parent_bytes);
	} else if (!d->create) {
		return log_errno(ENOENT,
				 "%s: [disk %s]: no image %s in the Ceph cluster of %s (expected create = yes "
				 "with size =, or clone-from =)",
				 config_at(cfg, d->image_line ? d->image_line : d->line), d->name, name, s->conf);
	}
	((struct rbd_state *)t->priv)->create = true;
	t->zeroed = !d->clone_from;
	log_info("disk \"%s\": %s %s at launch", d->name, d->clone_from ? "cloning" : "creating", t->filename);
	return 0;
}

int rbd_describe(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t)
{
	const struct vm_config *cfg = ctx->cfg;
	struct rbd_spec s;
	rados_t c = NULL;
	rados_ioctx_t io = NULL;
	uint64_t bytes = 0;
	size_t watchers = 0;
	char *name;
	int r;

	t->priv = xcalloc(1, sizeof(struct rbd_state));
	rbd_disk_spec(cfg, d, &s);
	name = rbd_image_name(s.pool, s.ns, s.image);
	describe_target(ctx, d, &s, name, t);
	r = check_config(cfg, d, &s);
	if (r == 0)
		r = describe_connect(ctx, d, &s, t, &c, &io);
	if (r == 0) {
		r = probe_image(io, s.image, &bytes, &watchers);
		if (r < 0)
			r = log_errno(r, "%s: [disk %s]: cannot open image %s as client.%s",
				      config_at(cfg, d->image_line ? d->image_line : d->line), d->name, name, s.user);
		else if (r == 1)
			r = describe_existing(ctx, d, name, bytes, watchers, t);
		else
			r = describe_new(ctx, d, &s, name, c, t);
	}
	rbd_disconnect(c, io);
	free(name);
	rbd_spec_free(&s);
	return r;
}
