/* The table of storage backends, and what all of them share: the source image's probe and the fill after prepare. */
#include "storage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "download.h"
#include "log.h"
#include "populate.h"
#include "strv.h"
#include "test_hook.h"

extern const struct storage_backend storage_file, storage_tmpfs, storage_zram, storage_brd, storage_lvm, storage_rbd;

/* One row per backend: a new backend is one file in storage/ and one row here (and its word in config.c). */
static const struct storage_backend *const backends[BACKEND_COUNT] = {
	[BACKEND_FILE] = &storage_file, [BACKEND_TMPFS] = &storage_tmpfs, [BACKEND_ZRAM] = &storage_zram,
	[BACKEND_BRD] = &storage_brd,	[BACKEND_LVM] = &storage_lvm,	  [BACKEND_RBD] = &storage_rbd,
};

int storage_describe(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t)
{
	const struct vm_config *cfg = ctx->cfg;
	struct populate_source *src;
	char *cached = NULL;
	int r;

	t->backend = backends[d->backend];
	r = t->backend->describe(ctx, d, t);
	if (r < 0 || !d->source || t->filled_elsewhere)
		return r;
	if (config_is_url(d->source)) {
		/* the cached download (storage_download ran first); not there yet only for --dry-run, which never
		 * downloads: the command line does not depend on the image */
		cached = download_cache_path(d->source_sha256);
		if (!cached || access(cached, F_OK) < 0) {
			free(cached);
			return 0;
		}
	}
	src = xcalloc(1, sizeof(*src));
	r = populate_probe(cached ? cached : d->source, d->source_format, d->source_backing == SOURCE_BACKING_ALLOW, src);
	free(cached);
	if (r < 0) {
		free(src);
		/* the message is logged; point at the line it came from */
		log_error(
			"%s: [disk %s] source: expected a readable disk image%s", config_at(cfg, d->source_line),
			d->name,
			r == -ENOENT
				? " (a cloud image: download one, e.g. Fedora-Cloud-Base-Generic, Debian's genericcloud "
				  "or an Ubuntu cloud image, and point source = at it)"
				: "");
		return -EINVAL;
	}
	t->source = src;
	if (d->size && src->virtual_size > d->size)
		return log_error(
			"%s: [disk %s] source %s is %llu bytes (%s), larger than size = %llu bytes; expected size "
			">= the image's virtual size",
			config_at(cfg, d->size_line), d->name, d->source, (unsigned long long)src->virtual_size,
			src->format, (unsigned long long)d->size);
	return 0;
}

int storage_download(const struct disk_config *d, bool progress, const struct privileges *pv)
{
	char *what;
	int r;

	if (!config_is_url(d->source))
		return 0;
	what = xasprintf("disk \"%s\"", d->name);
	r = download_image(d->source, d->source_sha256, what, progress, pv);
	free(what);
	return r;
}

int storage_prepare(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t,
		    struct journal *j)
{
	struct populate_target dst;
	int r = t->backend->prepare(ctx, d, t, j);

	if (r < 0)
		return r;
	test_hook_stop_at("disk");
	if (!t->source || t->keep_contents || t->filled_elsewhere)
		return 0;
	dst = (struct populate_target){ .path = t->filename, .size = d->size, .zeroed = t->zeroed };
	log_info("disk \"%s\": filling %s from %s (%s)", d->name, t->filename, t->source->path, t->source->format);
	return populate_copy(t->source, &dst,
			     &(struct populate_sandbox){ .dir = ctx->state_dir, .journal = j, .as = ctx->helper_user },
			     isatty(2));
}

void storage_target_free(struct storage_target *t)
{
	if (t->source) {
		populate_source_free(t->source);
		free(t->source);
	}
	if (t->priv) {
		if (t->backend && t->backend->free_priv)
			t->backend->free_priv(t->priv);
		else
			free(t->priv);
	}
	free(t->filename);
	free(t->secret_file);
	strv_free(&t->driver_opts);
	strv_free(&t->qemu_opens);
	free(t->backing);
	memset(t, 0, sizeof(*t));
}
