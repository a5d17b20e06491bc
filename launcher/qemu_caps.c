/* The qemu capability cache: one small text file per qemu binary, keyed by the binary's identity. */
#define _GNU_SOURCE
#include "qemu_caps.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_dir.h"
#include "command.h"
#include "log.h"
#include "strv.h"

/* Bumped when the entry's meaning changes, so an old vmlaunch's entry is probed again rather than misread. */
#define CAPS_VERSION 1

char *qemu_caps_cache_dir(void)
{
	return cache_dir_path();
}

/* The identity line: a rebuilt, upgraded or replaced binary changes at least one of these. */
static char *identity(const char *qemu, const struct stat *st)
{
	return xasprintf("v%d %s size=%lld mtime=%lld.%09ld ino=%llu ctime=%lld.%09ld", CAPS_VERSION, qemu,
			 (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
			 (unsigned long long)st->st_ino, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

/* One entry per binary path: FNV-1a of the path names the file, the identity line inside proves it is this one. */
static char *entry_path(const char *cache_dir, const char *qemu)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const char *p = qemu; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return xasprintf("%s/qemu-%016" PRIx64 ".caps", cache_dir, h);
}

/* 0 when the entry exists, is whole and matches `id`; anything else (absent, stale, corrupt) is a miss. */
static int entry_read(const char *path, const char *id, struct qemu_caps *caps)
{
	char buf[4096], *nl;
	int fd = open(path, O_RDONLY | O_CLOEXEC), pvpanic, liburing;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENODATA;
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	if (!nl || (size_t)(nl - buf) != strlen(id) || memcmp(buf, id, strlen(id)))
		return -ESTALE;
	if (sscanf(nl + 1, "pvpanic-pci=%d\nliburing=%d\n", &pvpanic, &liburing) != 2 || (pvpanic | liburing) > 1 ||
	    pvpanic < 0 || liburing < 0)
		return -EBADMSG;
	caps->pvpanic_pci = pvpanic;
	caps->liburing = liburing;
	return 0;
}

static int mkdir_parents(const char *dir)
{
	char *copy = xstrdup(dir);
	int r = 0;

	for (char *p = copy + 1; r == 0; p++) {
		bool end = *p == '\0';

		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			r = -errno;
		if (end)
			break;
		*p = '/';
	}
	free(copy);
	return r;
}

/* Temp file + rename: a reader sees the old entry or the new one, never half of one. Failure only costs the next
 * run another probe, so it is said with -v alone. */
static void entry_write(const char *cache_dir, const char *path, const char *id, const struct qemu_caps *caps)
{
	char *tmp = xasprintf("%s.XXXXXX", path), *text;
	int fd;
	bool ok;

	int r = mkdir_parents(cache_dir);

	if (r < 0) {
		log_info("cannot create %s: %s; qemu's capabilities are probed again next time", cache_dir, strerror(-r));
		free(tmp);
		return;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		log_info("cannot write to %s: %s; qemu's capabilities are probed again next time", cache_dir, strerror(errno));
		free(tmp);
		return;
	}
	text = xasprintf("%s\npvpanic-pci=%d\nliburing=%d\n", id, caps->pvpanic_pci, caps->liburing);
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fchmod(fd, 0644) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		log_info("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(text);
	free(tmp);
}

/* qemu offers aio=io_uring only when built with liburing, which then is one of its DT_NEEDED libraries: its name
 * sits in the binary's dynamic string table. */
static bool linked_with_liburing(const char *qemu)
{
	struct stat st;
	bool linked = false;
	void *map;
	int fd = open(qemu, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map != MAP_FAILED) {
			linked = memmem(map, (size_t)st.st_size, "liburing.so", 11) != NULL;
			munmap(map, (size_t)st.st_size);
		}
	}
	close(fd);
	return linked;
}

static int probe(const char *qemu, struct qemu_caps *caps)
{
	char *argv[] = { (char *)qemu, "-device", "pvpanic-pci,help", NULL };
	int r = command_run(argv, NULL, NULL);

	/* Doubles as a check that the binary runs at all. */
	if (r < 0)
		return log_errno(-r, "cannot run %s", qemu);
	caps->pvpanic_pci = r == 0;
	caps->liburing = linked_with_liburing(qemu);
	return 0;
}

int qemu_caps_get(const char *qemu, const char *cache_dir, struct qemu_caps *out)
{
	struct stat st;
	char *id, *path;
	int r;

	memset(out, 0, sizeof(*out));
	if (stat(qemu, &st) < 0)
		return log_errno(errno, "cannot run %s", qemu);
	if (!cache_dir)
		return probe(qemu, out);
	id = identity(qemu, &st);
	path = entry_path(cache_dir, qemu);
	r = entry_read(path, id, out);
	if (r < 0) {
		log_info("probing %s's capabilities (cache %s: %s)", qemu, path, r == -ENOENT ? "none yet" : "stale or unreadable");
		r = probe(qemu, out);
		if (r == 0)
			entry_write(cache_dir, path, id, out);
	}
	free(path);
	free(id);
	return r;
}
