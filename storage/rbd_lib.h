/* librados and librbd, loaded only when a config has an RBD disk: their ~30 libraries (libstdc++, boost, OpenSSL)
 * would otherwise cost every launch ~40 ms of relocations and ~15 MiB of resident memory. */
#ifndef VMLAUNCH_RBD_LIB_H
#define VMLAUNCH_RBD_LIB_H

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "dl_lib.h"

/* Every librados/librbd function vmlaunch calls; the headers still give their types. */
#define RBD_LIB_RADOS_FUNCTIONS(X)                                                                                     \
	X(rados_create2) X(rados_conf_read_file) X(rados_conf_set) X(rados_conf_get) X(rados_connect)                 \
	X(rados_shutdown) X(rados_ioctx_create) X(rados_ioctx_destroy) X(rados_ioctx_set_namespace)
#define RBD_LIB_RBD_FUNCTIONS(X)                                                                                       \
	X(rbd_open) X(rbd_open_read_only) X(rbd_close) X(rbd_get_size) X(rbd_resize2) X(rbd_create4) X(rbd_clone3)   \
	X(rbd_remove) X(rbd_snap_set) X(rbd_snap_is_protected) X(rbd_image_options_create)                          \
	X(rbd_image_options_destroy) X(rbd_image_options_set_uint64) X(rbd_watchers_list)                           \
	X(rbd_watchers_list_cleanup) X(rbd_copy4) X(rbd_snap_create) X(rbd_snap_protect) X(rbd_snap_unprotect)      \
	X(rbd_snap_remove)

#define RBD_LIB_FUNCTIONS(X) RBD_LIB_RADOS_FUNCTIONS(X) RBD_LIB_RBD_FUNCTIONS(X)

/* rbd_lib_load loads both, librados first. */
DL_LIB_DECLARE(rbd, RBD_LIB_FUNCTIONS)

#endif
