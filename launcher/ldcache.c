/* Reads glibc's ld.so.cache ("glibc-ld.so.cache1.1", <dl-cache.h>) instead of running `ldconfig -p` at every launch. */
#define _GNU_SOURCE
#include "ldcache.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "glibc-ld.so.cache1.1"

/* <dl-cache.h>'s struct cache_file_new and file_entry_new. */
struct cache_header {
	char magic[20]; /* "glibc-ld.so.cache" and the version "1.1" */
	uint32_t nlibs, len_strings;
	uint8_t flags, padding[3];
	uint32_t extension_offset, unused[3];
};
struct cache_entry {
	int32_t flags;
	uint32_t key, value; /* string offsets from the header */
	uint32_t osversion;
	uint64_t hwcap;
};

/* FLAG_ELF_LIBC6, and on x86-64 FLAG_X8664_LIB64: a 32-bit library of the same name must not count. */
#define FLAG_ELF_LIBC6 0x0003
#define FLAG_X8664_LIB64 0x0300
#if defined(__x86_64__) && !defined(__ILP32__)
#define ABI_FLAGS (FLAG_ELF_LIBC6 | FLAG_X8664_LIB64)
#define ABI_MASK 0xffff
#else
#define ABI_FLAGS FLAG_ELF_LIBC6
#define ABI_MASK 0x00ff
#endif

static bool find(const char *map, size_t size, const char *soname)
{
	/* A cache in the old format carries the new one after it, with offsets relative to the new header. */
	const char *base = memmem(map, size, CACHE_MAGIC, strlen(CACHE_MAGIC));
	size_t avail, want = strlen(soname) + 1;
	const struct cache_header *h;

	if (!base || (size_t)(map + size - base) < sizeof(*h))
		return false;
	avail = (size_t)(map + size - base);
	h = (const struct cache_header *)base;
	if (h->nlibs > (avail - sizeof(*h)) / sizeof(struct cache_entry))
		return false;
	for (uint32_t i = 0; i < h->nlibs; i++) {
		struct cache_entry e;

		memcpy(&e, base + sizeof(*h) + (size_t)i * sizeof(e), sizeof(e));
		if ((e.flags & ABI_MASK) != ABI_FLAGS || e.key >= avail || avail - e.key < want)
			continue;
		if (!memcmp(base + e.key, soname, want))
			return true;
	}
	return false;
}

bool ldcache_has(const char *cache_file, const char *soname)
{
	struct stat st;
	bool found = false;
	void *map;
	int fd = open(cache_file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map != MAP_FAILED) {
			found = find(map, (size_t)st.st_size, soname);
			munmap(map, (size_t)st.st_size);
		}
	}
	close(fd);
	return found;
}
