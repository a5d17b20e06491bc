/* The one owner of librados and librbd: loaded on first use (dl_lib.h), their functions resolved into struct
 * rbd_lib. */
#include "rbd_lib.h"

#include "dl_lib.h"

struct rbd_lib rbd_lib;

int rbd_lib_load(const char **why)
{
	/* librados first: librbd needs it. Handles are never closed: librados keeps threads until exit. */
	static struct dl_lib rados = { .soname = "librados.so.2", .package = "librados2" },
			     rbd = { .soname = "librbd.so.1", .package = "librbd1" };
	static const char *const rados_names[] = { RBD_LIB_RADOS_FUNCTIONS(DL_LIB_NAME) },
				 *const rbd_names[] = { RBD_LIB_RBD_FUNCTIONS(DL_LIB_NAME) };
	struct rbd_lib *const dl_lib_table = &rbd_lib;
	void **const rados_slots[] = { RBD_LIB_RADOS_FUNCTIONS(DL_LIB_SLOT) },
	     **const rbd_slots[] = { RBD_LIB_RBD_FUNCTIONS(DL_LIB_SLOT) };
	int r = dl_lib_load(&rados, rados_names, rados_slots, sizeof(rados_names) / sizeof(*rados_names), why);

	return r < 0 ? r : dl_lib_load(&rbd, rbd_names, rbd_slots, sizeof(rbd_names) / sizeof(*rbd_names), why);
}
