/* Backend "lvm": a logical volume (linear or thin) through the LVM tools, which have no stable C library. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "host.h"
#include "journal.h"
#include "log.h"
#include "storage.h"
#include "strv.h"

/*
 * Seed 001: a raw LV beats a qcow2 file; read-ahead off on the LV (the guest does its own); thin pools with 4 MiB
 * chunks and zeroing off. Volumes vmlaunch creates for an ephemeral disk are removed at exit; a persistent volume is
 * created once (and filled from source = then) and reused, never overwritten, on later runs.
 */

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
void lvm_create_argv(const char *vg, const char *lv, unsigned long long bytes, const char *thin_pool, struct strv *out)
{
	strv_push_many(out, "lvcreate", "--yes", "--wipesignatures", "y", NULL);
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

void lvm_create_pool_argv(const char *vg, const char *pool, unsigned long long bytes, struct strv *out)
{
	/* seed 001: 4 MiB chunks, no zeroing of newly provisioned chunks (the guest's writes cover them) */
	strv_push_many(out, "lvcreate", "--yes", "--type", "thin-pool", "--chunksize", "4M", "--zero", "n", "--size",
		       NULL);
	strv_pushf(out, "%llub", bytes);
	strv_push_many(out, "--name", pool, vg, NULL);
}

void lvm_readahead_off_argv(const char *vg, const char *lv, struct strv *out)
{
	strv_push_many(out, "lvchange", "--readahead", "none", NULL);
	strv_pushf(out, "%s/%s", vg, lv);
}

static int run(struct strv *argv, bool quiet, char **out)
{
	int r = command_run(argv->v, out, quiet);

	strv_free(argv);
	return r;
}

int lvm_remove(const char *vg_slash_lv)
{
	struct strv argv = STRV_INIT;
	int r;

	strv_push_many(&argv, "lvs", vg_slash_lv, NULL);
	if (run(&argv, true, NULL) != 0)
		return 0; /* already gone (a replay) */
	strv_push_many(&argv, "lvremove", "--yes", vg_slash_lv, NULL);
	r = run(&argv, false, NULL);
	return r == 0 ? 0 : log_errno(r < 0 ? r : EIO, "cannot remove logical volume %s", vg_slash_lv);
}

int lvm_deactivate(const char *vg_slash_lv)
{
	struct strv argv = STRV_INIT;
	int r;

	strv_push_many(&argv, "lvchange", "--activate", "n", vg_slash_lv, NULL);
	r = run(&argv, false, NULL);
	return r == 0 ? 0 : log_errno(r < 0 ? r : EIO, "cannot deactivate logical volume %s", vg_slash_lv);
}

/* `lvs` on VG/LV: 1 and its size and active state when it exists, 0 when it does not, negative on failure. */
static int lv_query(const char *vg, const char *lv, unsigned long long *bytes, bool *active)
{
	struct strv argv = STRV_INIT;
	char *out = NULL, attr[32] = "";
	int r;

	strv_push_many(&argv, "lvs", "--noheadings", "--nosuffix", "--units", "b", "-o", "lv_size,lv_attr", NULL);
	strv_pushf(&argv, "%s/%s", vg, lv);
	r = run(&argv, true, &out);
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

static int lvm_describe(const struct vm_config *cfg, const struct disk_config *d, const struct host_facts *host,
			const char *state_dir, struct storage_target *t)
{
	char *lv = d->lv ? xstrdup(d->lv) : lvm_default_lv_name(cfg->name, d->name);
	struct strv argv = STRV_INIT;
	unsigned long long bytes = 0, pool_bytes;
	bool active = false;
	char *tool;
	int r;

	(void)host;
	(void)state_dir;
	t->volume = lv;
	if (!valid_lvm_name(d->vg) || !valid_lvm_name(lv) || (d->thin_pool && !valid_lvm_name(d->thin_pool)))
		return log_error("%s:%u: [disk %s]: expected LVM names of letters, digits and + _ . - (vg \"%s\", lv "
				 "\"%s\")",
				 cfg->file, d->line, d->name, d->vg, lv);
	tool = host_find_program("lvcreate");
	free(tool);
	if (!tool)
		return log_errno(ENOENT, "%s:%u: [disk %s] backend lvm: the LVM tools are not installed (apt-get install "
					 "lvm2)",
				 cfg->file, d->backend_line, d->name);
	strv_push_many(&argv, "vgs", d->vg, NULL);
	if (run(&argv, true, NULL) != 0)
		return log_error("%s:%u: [disk %s] vg \"%s\": no such volume group (see vgs)", cfg->file, d->vg_line,
				 d->name, d->vg);
	r = lv_query(d->vg, lv, &bytes, &active);
	if (r < 0)
		return log_errno(r, "disk \"%s\": cannot read lvs output for %s/%s", d->name, d->vg, lv);
	if (r == 1) {
		if (d->ephemeral)
			return log_error("%s:%u: [disk %s]: logical volume %s/%s exists; an ephemeral disk is created "
					 "fresh and removed at exit, and vmlaunch never removes a volume it did not "
					 "create (expected ephemeral = no to use it, or another lv =)",
					 cfg->file, d->line, d->name, d->vg, lv);
		t->keep_contents = true;
		t->activate = !active;
	} else {
		if (!d->size)
			return log_error("%s:%u: [disk %s]: logical volume %s/%s does not exist; expected size = to create "
					 "it",
					 cfg->file, d->line, d->name, d->vg, lv);
		t->create = true;
		if (d->thin_pool) {
			r = lv_query(d->vg, d->thin_pool, &pool_bytes, &active);
			if (r == 0 && !d->thin_pool_size)
				return log_error("%s:%u: [disk %s] thin-pool \"%s\": no such pool in %s; expected "
						 "thin-pool-size = to create it",
						 cfg->file, d->thin_pool_line, d->name, d->thin_pool, d->vg);
			t->create_pool = r == 0;
		}
	}
	t->driver = "host_device";
	t->filename = xasprintf("/dev/%s/%s", d->vg, lv);
	t->format = FORMAT_RAW;
	t->direct_ok = true;
	t->ephemeral = d->ephemeral;
	t->readonly = d->readonly;
	/* A thin volume reads unprovisioned chunks as zeros; a linear one may hold an older volume's data. */
	t->zeroed = d->thin_pool != NULL;
	return 0;
}

static int lvm_prepare(const struct vm_config *cfg, const struct disk_config *d, struct storage_target *t,
		       struct journal *j)
{
	struct strv argv = STRV_INIT;
	char *name;
	int r;

	(void)cfg;
	if (t->create_pool) {
		lvm_create_pool_argv(d->vg, d->thin_pool, d->thin_pool_size, &argv);
		r = run(&argv, false, NULL);
		if (r != 0)
			return log_errno(r < 0 ? r : EIO, "disk \"%s\": cannot create thin pool %s/%s", d->name, d->vg,
					 d->thin_pool);
		if (d->ephemeral) {
			name = xasprintf("%s/%s", d->vg, d->thin_pool);
			r = journal_add(j, UNDO_LVM_REMOVE, name);
			free(name);
			if (r < 0)
				return r;
		}
	}
	name = xasprintf("%s/%s", d->vg, t->volume);
	if (t->create) {
		lvm_create_argv(d->vg, t->volume, d->size, d->thin_pool, &argv);
		r = run(&argv, false, NULL);
		if (r != 0) {
			free(name);
			return log_errno(r < 0 ? r : EIO, "disk \"%s\": cannot create logical volume", d->name);
		}
		if (d->ephemeral) {
			r = journal_add(j, UNDO_LVM_REMOVE, name);
			if (r < 0)
				goto out;
		}
		lvm_readahead_off_argv(d->vg, t->volume, &argv);
		r = run(&argv, false, NULL);
		if (r != 0) {
			r = log_errno(r < 0 ? r : EIO, "disk \"%s\": cannot turn read-ahead off on %s", d->name, name);
			goto out;
		}
	} else if (t->activate) {
		strv_push_many(&argv, "lvchange", "--activate", "y", name, NULL);
		r = run(&argv, false, NULL);
		if (r != 0) {
			r = log_errno(r < 0 ? r : EIO, "disk \"%s\": cannot activate %s", d->name, name);
			goto out;
		}
		r = journal_add(j, UNDO_LVM_DEACTIVATE, name);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	free(name);
	return r;
}

const struct storage_backend storage_lvm = {
	.name = "lvm",
	.describe = lvm_describe,
	.prepare = lvm_prepare,
};
