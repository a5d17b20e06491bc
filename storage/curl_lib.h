/* libcurl, loaded only when a disk's source is a URL: its TLS, HTTP/2, SSH and LDAP libraries (~30 of them) would
 * otherwise cost every launch their relocations and resident memory. */
#ifndef VMLAUNCH_CURL_LIB_H
#define VMLAUNCH_CURL_LIB_H

/* curl.h's type-checking macros would expand curl_lib.curl_easy_setopt(...) too: called through a pointer here. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "dl_lib.h"

/* Every libcurl function vmlaunch calls; the header still gives their types. */
#define CURL_LIB_FUNCTIONS(X)                                                                                          \
	X(curl_global_init) X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_perform) X(curl_easy_getinfo)           \
	X(curl_easy_cleanup) X(curl_easy_strerror)

/* curl_lib_load runs curl_global_init too, once. */
DL_LIB_DECLARE(curl, CURL_LIB_FUNCTIONS)

#endif
