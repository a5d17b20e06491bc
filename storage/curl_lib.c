/* The one owner of libcurl: dlopened on first use, its functions resolved into struct curl_lib. */
#define _GNU_SOURCE
#include "curl_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

struct curl_lib curl_lib;

static const char *load_error(const char *what)
{
	static char msg[512];

	snprintf(msg, sizeof(msg), "cannot load libcurl (apt-get install libcurl4): %s", what);
	return msg;
}

int curl_lib_load(const char **why)
{
	static void *curl;
	static int ready;
	const char *missing = NULL;

	if (ready)
		return 0;
	/* RTLD_NOW: a broken install fails here, once; the handle stays open until exit. */
	if (!curl)
		curl = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!curl) {
		*why = load_error(dlerror());
		return -ELIBACC;
	}
#define CURL_LIB_RESOLVE(name)                                                                                         \
	if (!missing && !(curl_lib.name = (__typeof__(name) *)dlsym(curl, #name)))                                    \
		missing = #name;
	CURL_LIB_FUNCTIONS(CURL_LIB_RESOLVE)
	if (missing) {
		*why = load_error(missing);
		return -ELIBACC;
	}
	/* no SSL global init flags beyond the default: vmlaunch is single-threaded while it downloads */
	if (curl_lib.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*why = load_error("curl_global_init failed");
		return -ELIBACC;
	}
	ready = 1;
	return 0;
}
