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

/* For a table's X-macro list of function names: their names, and the table's fields (a typed pointer each). */
#define DL_LIB_NAME(name) #name,
#define DL_LIB_POINTER(name) __typeof__(name) *name;

/* Declares a library's table: struct NAME_lib, a typed pointer per function of LIST (the library's header still
 * gives their types); the table NAME_lib, to call through only after NAME_lib_load returned 0; and
 * NAME_lib_load(why), which loads the library and resolves the table once per process: 0, or -ELIBACC with *why
 * saying what is missing (static text, for the caller's one message). */
#define DL_LIB_DECLARE(name, LIST)                                                                                     \
	struct name##_lib {                                                                                            \
		LIST(DL_LIB_POINTER)                                                                                   \
	};                                                                                                             \
	extern struct name##_lib name##_lib;                                                                           \
	int name##_lib_load(const char **why);

/* For the same list: the address of each field of the table a local `dl_lib_table` points at, for dl_lib_load. */
#define DL_LIB_SLOT(name) (void **)&dl_lib_table->name,

/* Defines what DL_LIB_DECLARE declared, for a library that needs nothing but its table loaded: SONAME is dlopened,
 * PACKAGE named when it is missing. libcurl (an init call after loading) and Ceph's (two libraries, in order) write
 * their own NAME_lib_load with dl_lib_load and DL_LIB_SLOT. */
#define DL_LIB_DEFINE(name, soname_, package_, LIST)                                                                   \
	struct name##_lib name##_lib;                                                                                  \
	int name##_lib_load(const char **why)                                                                          \
	{                                                                                                              \
		static struct dl_lib lib = { .soname = soname_, .package = package_ };                                 \
		static const char *const names[] = { LIST(DL_LIB_NAME) };                                              \
		struct name##_lib *const dl_lib_table = &name##_lib;                                                   \
		void **const slots[] = { LIST(DL_LIB_SLOT) };                                                          \
		return dl_lib_load(&lib, names, slots, sizeof(names) / sizeof(*names), why);                           \
	}

/* dlopens lib (once; RTLD_NOW, so a broken install fails here and not in the middle of an acquisition; the handle
 * stays open until exit) and stores names[i]'s address in *slots[i], a field of the caller's table (dlsym(3)'s own
 * idiom for function pointers). 0, or -ELIBACC with *why saying what is missing (static text, for the caller's one
 * message); a failed load is tried again on the next call. */
int dl_lib_load(struct dl_lib *lib, const char *const *names, void **const *slots, size_t n, const char **why);

#endif
