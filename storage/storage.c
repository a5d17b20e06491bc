/* The table of storage backends, and what all of them share. */
#include "storage.h"

#include <errno.h>
#include <unistd.h>

#include "log.h"
#include "populate.h"
#include "strv.h"
#include "test_hook.h"

#include <stdlib.h>
#include <string.h>

const struct storage_backend *storage_backend_for(enum backend_kind kind)
{
	switch (kind) {
	case BACKEND_FILE:
		return &storage_file;
	case BACKEND_TMPFS:
		return &storage_tmpfs;
	case BACKEND_ZRAM:
		return &storage_zram;
	case BACKEND_BRD:
		return &storage_brd;
	case BACKEND_LVM:
		return &storage_lvm;
	case BACKEND_RBD:
		return &storage_rbd;
	case BACKEND_COUNT:
		break;
	}
	return NULL;
}

int storage_describe(const struct vm_config *cfg, const struct disk_config *d, const struct host_facts *host,
		     const char *state_dir, struct storage_target *t)
{
	struct populate_source *src;
	int r = storage_backend_for(d->backend)->describe(cfg, d, host, state_dir, t);

	if (r < 0 || !d->source)
		return r;
	src = xcalloc(1, sizeof(*src));
	r = populate_probe(d->source, d->source_format, src);
	if (r < 0) {
		free(src);
		/* the message is logged; point at the line it came from */
		log_error("%s:%u: [disk %s] source: expected a readable disk image", cfg->file, d->source_line, d->name);
		return -EINVAL;
	}
	t->source = src;
	if (d->size && src->virtual_size > d->size)
		return log_error("%s:%u: [disk %s] source %s is %llu bytes (%s), larger than size = %llu bytes; expected size "
				 ">= the image's virtual size",
				 cfg->file, d->size_line, d->name, d->source, (unsigned long long)src->virtual_size,
				 src->format, (unsigned long long)d->size);
	return 0;
}

int storage_prepare(const struct vm_config *cfg, const struct disk_config *d, struct storage_target *t,
		    struct journal *j)
{
	struct populate_target dst;
	int r = storage_backend_for(d->backend)->prepare(cfg, d, t, j);

	if (r < 0)
		return r;
	test_hook_stop_at("disk");
	if (!t->source || t->keep_contents)
		return 0;
	dst = (struct populate_target){ .path = t->filename, .size = d->size, .zeroed = t->zeroed };
	log_info("disk \"%s\": filling %s from %s (%s)", d->name, t->filename, t->source->path, t->source->format);
	return populate_copy(t->source, &dst, isatty(2));
}

void storage_target_free(struct storage_target *t)
{
	if (t->source) {
		populate_source_free(t->source);
		free(t->source);
	}
	free(t->filename);
	free(t->overlay_base);
	free(t->volume);
	free(t->rbd_pool);
	free(t->rbd_image);
	free(t->rbd_namespace);
	free(t->rbd_conf);
	free(t->rbd_user);
	free(t->rbd_key_file);
	memset(t, 0, sizeof(*t));
}
