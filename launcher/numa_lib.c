/* The one owner of libnuma: loaded on first use (dl_lib.h), its functions resolved into struct numa_lib. */
#include "numa_lib.h"

#include "dl_lib.h"

struct numa_lib numa_lib;

int numa_lib_load(const char **why)
{
	static struct dl_lib lib = { .soname = "libnuma.so.1", .package = "libnuma1" };
	static const char *const names[] = { NUMA_LIB_FUNCTIONS(DL_LIB_NAME) };
#define NUMA_LIB_SLOT(name) (void **)&numa_lib.name,
	static void **const slots[] = { NUMA_LIB_FUNCTIONS(NUMA_LIB_SLOT) };

	return dl_lib_load(&lib, names, slots, sizeof(names) / sizeof(*names), why);
}
