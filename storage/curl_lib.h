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

struct curl_lib {
	CURL_LIB_FUNCTIONS(DL_LIB_POINTER)
};

/* Filled by curl_lib_load(); call through it only after that returned 0. */
extern struct curl_lib curl_lib;

/* Loads libcurl, resolves the table and runs curl_global_init, once per process. Returns 0, or -ELIBACC with *why
 * saying what is missing (static text, for the caller's one message). */
int curl_lib_load(const char **why);

#endif
