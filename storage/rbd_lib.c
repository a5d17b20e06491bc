/* The one owner of librados and librbd: dlopened on first use, their functions resolved into struct rbd_lib. */
#define _GNU_SOURCE
#include "rbd_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

struct rbd_lib rbd_lib;

static const char *load_error(const char *what)
{
	static char msg[512];

	snprintf(msg, sizeof(msg), "cannot load Ceph's client libraries (apt-get install librbd1): %s", what);
	return msg;
}

int rbd_lib_load(const char **why)
{
	static void *rados, *rbd;
	const char *missing = NULL;

	if (rados && rbd)
		return 0;
	/* RTLD_LOCAL: nothing else in vmlaunch binds to their symbols; RTLD_NOW: a broken install fails here, once,
	 * not in the middle of an acquisition. Handles are never closed: librados keeps threads until exit. */
	if (!rados)
		rados = dlopen("librados.so.2", RTLD_NOW | RTLD_LOCAL);
	if (rados && !rbd)
		rbd = dlopen("librbd.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!rados || !rbd) {
		*why = load_error(dlerror());
		return -ELIBACC;
	}
#define RBD_LIB_RESOLVE(handle, name)                                                                                  \
	if (!missing && !(rbd_lib.name = (__typeof__(name) *)dlsym(handle, #name)))                                  \
		missing = #name;
#define RBD_LIB_RESOLVE_RADOS(name) RBD_LIB_RESOLVE(rados, name)
#define RBD_LIB_RESOLVE_RBD(name) RBD_LIB_RESOLVE(rbd, name)
	RBD_LIB_RADOS_FUNCTIONS(RBD_LIB_RESOLVE_RADOS)
	RBD_LIB_RBD_FUNCTIONS(RBD_LIB_RESOLVE_RBD)
	if (missing) {
		*why = load_error(missing);
		rbd = NULL; /* try again next time rather than call through a half-filled table */
		return -ELIBACC;
	}
	return 0;
}
