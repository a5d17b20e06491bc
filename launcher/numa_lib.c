/* The one owner of libnuma: loaded on first use (dl_lib.h), its functions resolved into struct numa_lib. */
#include "numa_lib.h"

DL_LIB_DEFINE(numa, "libnuma.so.1", "libnuma1", NUMA_LIB_FUNCTIONS)
