/* Loading a library on first use: dlopen once, resolve the caller's table, one message on failure. */
#define _GNU_SOURCE
#include "dl_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

static const char *load_error(const struct dl_lib *lib, const char *what)
{
	static char msg[512];

	snprintf(msg, sizeof(msg), "cannot load %s (apt-get install %s): %s", lib->soname, lib->package, what);
	return msg;
}

int dl_lib_load(struct dl_lib *lib, const char *const *names, void **const *slots, size_t n, const char **why)
{
	if (lib->ready)
		return 0;
	/* RTLD_LOCAL: nothing else in vmlaunch binds to their symbols */
	if (!lib->handle)
		lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib->handle) {
		*why = load_error(lib, dlerror());
		return -ELIBACC;
	}
	for (size_t i = 0; i < n; i++) {
		*slots[i] = dlsym(lib->handle, names[i]);
		if (!*slots[i]) {
			*why = load_error(lib, names[i]);
			return -ELIBACC; /* not ready: nobody calls through a half-filled table */
		}
	}
	lib->ready = true;
	return 0;
}
