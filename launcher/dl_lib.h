/* A shared library vmlaunch loads on first use (libnuma, libmnl, libcurl, librados, librbd): opened once, its
 * functions resolved by name into the caller's table of typed pointers. What needs none of them never maps them. */
#ifndef VMLAUNCH_DL_LIB_H
#define VMLAUNCH_DL_LIB_H

#include <stdbool.h>
#include <stddef.h>

struct dl_lib {
	const char *soname;  /* "libnuma.so.1" */
	const char *package; /* the Debian package that ships it, for the message */
	void *handle;
	bool ready;
};

/* For a table's X-macro list of function names: their names, and pointers to the table's fields. */
#define DL_LIB_NAME(name) #name,
#define DL_LIB_POINTER(name) __typeof__(name) *name;

/* dlopens lib (once; RTLD_NOW, so a broken install fails here and not in the middle of an acquisition; the handle
 * stays open until exit) and stores names[i]'s address in *slots[i], a field of the caller's table (dlsym(3)'s own
 * idiom for function pointers). 0, or -ELIBACC with *why saying what is missing (static text, for the caller's one
 * message); a failed load is tried again on the next call. */
int dl_lib_load(struct dl_lib *lib, const char *const *names, void **const *slots, size_t n, const char **why);

#endif
