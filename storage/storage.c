/* The table of storage backends, and what all of them share. */
#include "storage.h"

#include <stdlib.h>
#include <string.h>

const struct storage_backend *storage_backend_for(enum backend_kind kind)
{
	switch (kind) {
	case BACKEND_FILE:
		return &storage_file;
	case BACKEND_TMPFS:
		return &storage_tmpfs;
	}
	return NULL;
}

void storage_target_free(struct storage_target *t)
{
	free(t->filename);
	free(t->overlay_base);
	memset(t, 0, sizeof(*t));
}
