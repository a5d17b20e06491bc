/* Backend "lvm": a logical volume (linear or thin) through the LVM tools, which have no stable C library. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "journal.h"
#include "log.h"
#include "storage.h"
#include "strv.h"

/*
 * A raw LV beats a qcow2 file; read-ahead off on the LV (the guest does its own); thin pools with 4 MiB chunks and
 * zeroing off. Volumes vmlaunch creates for an ephemeral disk are removed at exit; a persistent volume is created once
 * (and filled from source = then) and reused, never overwritten, on later runs.
 */

/* What describe found, for prepare. */
struct lvm_state {
	char *volume;     /* the LV's name */
	bool create;      /* missing: prepare creates it */
	bool create_pool; /* ... and its thin pool */
	bool activate;    /* an existing, inactive volume to activate (and deactivate at exit) */
};

static void lvm_state_free(void *p)
{
	struct lvm_state *s = p;

	free(s->volume);
	free(s);
}

static bool valid_lvm_name(const char *s)
{
	if (!*s || *s == '-' || strlen(s) > 127)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("+_.-", *s))
			return false;
	return true;
}

char *lvm_default_lv_name(const char *vm, const char *disk)
{
	return xasprintf("vmlaunch-%s-%s", vm, disk);
}

/* The command vectors, pure, exposed for unit tests. */
char *lvm_owner_tag(const char *state_dir)
{
	return xasprintf("vmlaunch=%s", state_dir);
}

bool lvm_tag_valid(const char *tag)
{
	/* lvm2's validate_tag (lib/misc/lvm-string.c): A-Za-z0-9._-+/=!:&# */
	if (!*tag)
		return false;
	for (; *tag; tag++)
		if (!isalnum((unsigned char)*tag) && !strchr("._-+/=!:&#", *tag))
			return false;
	return true;
}

bool lvm_tags_include(const char *lv_tags, const char *tag)
{
	size_t n = strlen(tag);

	/* `lvs -o lv_tags`: the tags joined by commas on one line, padded with blanks (tags never hold one) */
	for (const char *p = lv_tags; *p;) {
		size_t len;

		p += strspn(p, ", \t\n");
		len = strcspn(p, ", \t\n");
		if (len && len == n && !strncmp(p, tag, n))
			return true;
		p += len;
	}
	return false;
}

/* --addtag TAG when the volume is vmlaunch's to remove: the lvm-remove undo removes only what carries it. */
static void push_tag(struct strv *out, const char *tag)
{
	if (tag)
		strv_push_many(out, "--addtag", tag, NULL);
}

void lvm_create_argv(const char *vg, const char *lv, unsigned long long bytes, const char *thin_pool, const char *tag,
		     struct strv *out)
{
	strv_push_many(out, "lvcreate", "--yes", "--wipesignatures", "y", NULL);
	push_tag(out, tag);
	if (thin_pool) {
		strv_push(out, "--virtualsize");
		strv_pushf(out, "%llub", bytes);
		strv_push_many(out, "--thin", "--name", lv, NULL);
		strv_pushf(out, "%s/%s", vg, thin_pool);
	} else {
		strv_push(out, "--size");
		strv_pushf(out, "%llub", bytes);
		strv_push_many(out, "--name", lv, vg, NULL);
	}
}

void lvm_create_pool_argv(const char *vg, const char *pool, unsigned long long bytes, const char *tag,
			  struct strv *out)
{
	/* 4 MiB chunks, no zeroing of newly provisioned chunks (the guest's writes cover them) */
	strv_push_many(out, "lvcreate", "--yes", NULL);
	push_tag(out, tag);
	strv_push_many(out, "--type", "thin-pool", "--chunksize", "4M", "--zero", "n", "--size", NULL);
	strv_pushf(out, "%llub", bytes);
	strv_push_many(out, "--name", pool, vg, NULL);
}

void lvm_readahead_off_argv(const char *vg, const char *lv, struct strv *out)
{
	strv_push_many(out, "lvchange", "--readahead", "none", NULL);
	strv_pushf(out, "%s/%s", vg, lv);
}

/* Runs and frees argv. `what` NULL: a probe (its status is the answer); else a step, logged once on failure (-EIO). */
static int run(struct strv *argv, const char *what, char **out)
{
	int r = command_run(argv->v, out, what);

	strv_free(argv);
	return what && r > 0 ? -EIO : r;
}

static bool valid_vg_slash_lv(const char *s)
{
	const char *slash = strchr(s, '/');
	char *vg;
	bool ok;

	if (!slash || strchr(slash + 1, '/'))
		return false;
	vg = xstrndup(s, (size_t)(slash - s));
	ok = valid_lvm_name(vg) && valid_lvm_name(slash + 1);
	free(vg);
	return ok;
}

/* Removes VG/LV only when it carries this VM's tag, which vmlaunch gave it at lvcreate: a forged record naming another
 * volume (the host's root, another VM's disk) does nothing. */
static int lvm_remove(const char *vg_slash_lv, const char *state_dir)
{
	struct strv argv = STRV_INIT;
	char *what, *tags = NULL, *tag;
	int r;

	if (!valid_vg_slash_lv(vg_slash_lv))
		return log_errno(EBADMSG, "journal: lvm-remove of \"%s\": expected VG/LV", vg_slash_lv);
	strv_push_many(&argv, "lvs", "--noheadings", "-o", "lv_tags", vg_slash_lv, NULL);
	if (run(&argv, NULL, &tags) != 0) {
		free(tags);
		return 0; /* gone (a replay), or never created */
	}
	tag = lvm_owner_tag(state_dir);
	r = lvm_tags_include(tags, tag) ? 0
					: log_errno(EPERM, "journal: refusing to remove logical volume %s: it has no tag %s "
							   "(vmlaunch did not make it for this VM)",
						    vg_slash_lv, tag);
	free(tag);
	free(tags);
	if (r < 0)
		return r;
	what = xasprintf("cannot remove logical volume %s", vg_slash_lv);
	strv_push_many(&argv, "lvremove", "--yes", vg_slash_lv, NULL);
	r = run(&argv, what, NULL);
	free(what);
	return r;
}
JOURNAL_UNDO(lvm_remove, "lvm-remove", lvm_remove)

static int lvm_deactivate(const char *vg_slash_lv, const char *state_dir)
{
	struct strv argv = STRV_INIT;
	char *what;
	int r;

	(void)state_dir;
	if (!valid_vg_slash_lv(vg_slash_lv))
		return log_errno(EBADMSG, "journal: lvm-deactivate of \"%s\": expected VG/LV", vg_slash_lv);
	what = xasprintf("cannot deactivate logical volume %s", vg_slash_lv);
	strv_push_many(&argv, "lvchange", "--activate", "n", vg_slash_lv, NULL);
	r = run(&argv, what, NULL);
	free(what);
	return r;
}
JOURNAL_UNDO(lvm_deactivate, "lvm-deactivate", lvm_deactivate)

/* `lvs` on VG/LV: 1 and its size and active state when it exists, 0 when it does not, negative on failure. */
static int lv_query(const char *vg, const char *lv, unsigned long long *bytes, bool *active)
{
	struct strv argv = STRV_INIT;
	char *out = NULL, attr[32] = "";
	int r;

	strv_push_many(&argv, "lvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "lv_size,lv_attr", NULL);
	strv_pushf(&argv, "%s/%s", vg, lv);
	r = run(&argv, NULL, &out);
	if (r != 0) {
		free(out);
		return 0;
	}
	r = sscanf(out, " %llu %31s", bytes, attr) == 2 ? 1 : -EIO;
	/* lv_attr's fifth character is 'a' for an active volume */
	*active = strlen(attr) >= 5 && attr[4] == 'a';
	free(out);
	return r;
}

static int lvm_describe(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t)
{
	const struct vm_config *cfg = ctx->cfg;
	struct lvm_state *st = xcalloc(1, sizeof(*st));
	struct strv argv = STRV_INIT;
	unsigned long long bytes = 0, pool_bytes;
	bool active = false;
	int r;

	t->priv = st;
	st->volume = d->lv ? xstrdup(d->lv) : lvm_default_lv_name(cfg->name, d->name);
	if (!valid_lvm_name(d->vg) || !valid_lvm_name(st->volume) || (d->thin_pool && !valid_lvm_name(d->thin_pool)))
		return log_error("%s: [disk %s]: expected LVM names of letters, digits and + _ . - (vg \"%s\", lv "
				 "\"%s\")",
				 config_at(cfg, d->line), d->name, d->vg, st->volume);
	strv_push_many(&argv, "vgs", d->vg, NULL);
	r = run(&argv, NULL, NULL);
	if (r == -ENOENT)
		return log_errno(ENOENT,
				 "%s: [disk %s] backend lvm: the LVM tools are not installed (apt-get install "
				 "lvm2)",
				 config_at(cfg, d->backend_line), d->name);
	if (r != 0)
		return log_error("%s: [disk %s] vg \"%s\": no such volume group (see vgs)", config_at(cfg, d->vg_line),
				 d->name, d->vg);
	r = lv_query(d->vg, st->volume, &bytes, &active);
	if (r < 0)
		return log_errno(r, "disk \"%s\": cannot read lvs output for %s/%s", d->name, d->vg, st->volume);
	if (r == 1) {
		if (d->ephemeral)
			return log_error("%s: [disk %s]: logical volume %s/%s exists; an ephemeral disk is created "
					 "fresh and removed at exit, and vmlaunch never removes a volume it did not "
					 "create (expected ephemeral = no to use it, or another lv =)",
					 config_at(cfg, d->line), d->name, d->vg, st->volume);
		t->keep_contents = true;
		st->activate = !active;
	} else {
		if (!d->size)
			return log_error(
				"%s: [disk %s]: logical volume %s/%s does not exist; expected size = to create "
				"it",
				config_at(cfg, d->line), d->name, d->vg, st->volume);
		st->create = true;
		if (d->thin_pool) {
			r = lv_query(d->vg, d->thin_pool, &pool_bytes, &active);
			if (r == 0 && !d->thin_pool_size)
				return log_error("%s: [disk %s] thin-pool \"%s\": no such pool in %s; expected "
						 "thin-pool-size = to create it",
						 config_at(cfg, d->thin_pool_line), d->name, d->thin_pool, d->vg);
			st->create_pool = r == 0;
		}
	}
	t->driver = DRIVER_HOST_DEVICE;
	t->filename = xasprintf("/dev/%s/%s", d->vg, st->volume);
	t->format = FORMAT_RAW;
	t->direct_ok = true;
	t->ephemeral = d->ephemeral;
	t->readonly = d->readonly;
	/* A thin volume reads unprovisioned chunks as zeros; a linear one may hold an older volume's data. */
	t->zeroed = d->thin_pool != NULL;
	return 0;
}

/* Creates VG/NAME with argv; an ephemeral volume's removal is recorded first (lvs finds nothing if it never came). */
static int create_volume(const struct disk_config *d, const char *name, struct strv *argv, struct journal *j,
			 const char *what)
{
	char *vg_name = xasprintf("%s/%s", d->vg, name);
	int r = d->ephemeral ? journal_add(j, "lvm-remove", vg_name) : 0;

	if (r == 0)
		r = run(argv, what, NULL);
	strv_free(argv);
	free(vg_name);
	return r;
}

static int lvm_prepare(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t,
		       struct journal *j)
{
	struct lvm_state *st = t->priv;
	struct strv argv = STRV_INIT;
	char *name = xasprintf("%s/%s", d->vg, st->volume), *what = NULL;
	/* only what is removed at exit is tagged: the proof its undo asks for */
	char *tag = d->ephemeral ? lvm_owner_tag(ctx->state_dir) : NULL;
	int r = 0;

	if (tag && !lvm_tag_valid(tag))
		r = log_errno(EINVAL, "disk \"%s\": state dir %s makes no LVM tag (letters, digits and ._-+/=!:&#)",
			      d->name, ctx->state_dir);
	if (r == 0 && st->create_pool) {
		what = xasprintf("disk \"%s\": cannot create thin pool %s/%s", d->name, d->vg, d->thin_pool);
		lvm_create_pool_argv(d->vg, d->thin_pool, d->thin_pool_size, tag, &argv);
		r = create_volume(d, d->thin_pool, &argv, j, what);
		free(what);
		what = NULL;
	}
	if (r == 0 && st->create) {
		what = xasprintf("disk \"%s\": cannot create logical volume %s", d->name, name);
		lvm_create_argv(d->vg, st->volume, d->size, d->thin_pool, tag, &argv);
		r = create_volume(d, st->volume, &argv, j, what);
		free(what);
		what = NULL;
		if (r == 0) {
			what = xasprintf("disk \"%s\": cannot turn read-ahead off on %s", d->name, name);
			lvm_readahead_off_argv(d->vg, st->volume, &argv);
			r = run(&argv, what, NULL);
		}
	} else if (r == 0 && st->activate) {
		r = journal_add(j, "lvm-deactivate", name);
		what = xasprintf("disk \"%s\": cannot activate %s", d->name, name);
		strv_push_many(&argv, "lvchange", "--activate", "y", name, NULL);
		if (r == 0)
			r = run(&argv, what, NULL);
		strv_free(&argv);
	}
	free(what);
	free(name);
	free(tag);
	return r;
}

const struct storage_backend storage_lvm = {
	.describe = lvm_describe,
	.prepare = lvm_prepare,
	.free_priv = lvm_state_free,
};
