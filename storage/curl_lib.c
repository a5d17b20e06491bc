/* The one owner of libcurl: loaded on first use (dl_lib.h), its functions resolved into struct curl_lib. */
#include "curl_lib.h"

#include <errno.h>

#include "dl_lib.h"

struct curl_lib curl_lib;

int curl_lib_load(const char **why)
{
	static struct dl_lib lib = { .soname = "libcurl.so.4", .package = "libcurl4" };
	static const char *const names[] = { CURL_LIB_FUNCTIONS(DL_LIB_NAME) };
	struct curl_lib *const dl_lib_table = &curl_lib;
	void **const slots[] = { CURL_LIB_FUNCTIONS(DL_LIB_SLOT) };
	static int ready;
	int r;

	if (ready)
		return 0;
	r = dl_lib_load(&lib, names, slots, sizeof(names) / sizeof(*names), why);
	if (r < 0)
		return r;
	/* no SSL global init flags beyond the default: vmlaunch is single-threaded while it downloads */
	if (curl_lib.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*why = "cannot load libcurl: curl_global_init failed";
		return -ELIBACC;
	}
	ready = 1;
	return 0;
}
