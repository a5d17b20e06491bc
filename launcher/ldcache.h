/* The dynamic loader's cache (/etc/ld.so.cache), read the way ld.so reads it: which sonames it resolves. */
#ifndef VMLAUNCH_LDCACHE_H
#define VMLAUNCH_LDCACHE_H

#include <stdbool.h>

#define LDCACHE_FILE "/etc/ld.so.cache"

/* Whether ld.so would find SONAME (e.g. "libtcmalloc_minimal.so.4") for this process's ABI through the cache at
 * `cache_file`; a missing or unreadable cache says false. */
bool ldcache_has(const char *cache_file, const char *soname);

#endif
