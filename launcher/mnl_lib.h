/* libmnl, loaded only when a VM has a tap (or one is removed): every other start would pay its loader lookup, mmaps
 * and relocations for nothing; Debian ships it as a shared library only. */
#ifndef VMLAUNCH_MNL_LIB_H
#define VMLAUNCH_MNL_LIB_H

#include <libmnl/libmnl.h>

#include "dl_lib.h"

/* Every libmnl function vmlaunch calls; the header still gives their types. */
#define MNL_LIB_FUNCTIONS(X)                                                                                           \
	X(mnl_socket_open) X(mnl_socket_bind) X(mnl_socket_get_portid) X(mnl_socket_sendto) X(mnl_socket_recvfrom)    \
	X(mnl_socket_close) X(mnl_nlmsg_put_header) X(mnl_nlmsg_put_extra_header) X(mnl_attr_put_strz)               \
	X(mnl_attr_put_u32) X(mnl_cb_run)

DL_LIB_DECLARE(mnl, MNL_LIB_FUNCTIONS)

#endif
