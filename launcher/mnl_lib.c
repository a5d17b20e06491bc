/* The one owner of libmnl: loaded on first use (dl_lib.h), its functions resolved into struct mnl_lib. */
#include "mnl_lib.h"

DL_LIB_DEFINE(mnl, "libmnl.so.0", "libmnl0", MNL_LIB_FUNCTIONS)
