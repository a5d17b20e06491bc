/* The one owner of libmnl: loaded on first use (dl_lib.h), its functions resolved into struct mnl_lib. */
#include "mnl_lib.h"

#include "dl_lib.h"

struct mnl_lib mnl_lib;

int mnl_lib_load(const char **why)
{
	static struct dl_lib lib = { .soname = "libmnl.so.0", .package = "libmnl0" };
	static const char *const names[] = { MNL_LIB_FUNCTIONS(DL_LIB_NAME) };
#define MNL_LIB_SLOT(name) (void **)&mnl_lib.name,
	static void **const slots[] = { MNL_LIB_FUNCTIONS(MNL_LIB_SLOT) };

	return dl_lib_load(&lib, names, slots, sizeof(names) / sizeof(*names), why);
}
