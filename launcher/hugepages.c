/* Hugepage pools in sysfs: grow a node's pool by what the VM lacks, shrink it by the same amount at exit. */
#define _GNU_SOURCE
#include "hugepages.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "ownership.h"
#include "strv.h"
#include "topology.h"

static char *pool_file(bool numa, unsigned node, unsigned long kib, const char *file)
{
	if (numa)
		return xasprintf("/sys/devices/system/node/node%u/hugepages/hugepages-%lukB/%s", node, kib, file);
	return xasprintf("/sys/kernel/mm/hugepages/hugepages-%lukB/%s", kib, file);
}

static int read_count(const char *path, uint64_t *out)
{
	unsigned long long v;
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f)
		return log_errno(errno, "cannot read %s", path);
	if (fscanf(f, "%llu", &v) != 1)
		r = log_errno(EIO, "cannot parse %s", path);
	fclose(f);
	*out = v;
	return r;
}

static int write_count(const char *path, uint64_t v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return log_errno(errno, "cannot open %s", path);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	if (write(fd, buf, strlen(buf)) < 0)
		r = log_errno(errno, "cannot write %s", path);
	close(fd);
	return r;
}

static bool compact_memory(void)
{
	int fd = open("/proc/sys/vm/compact_memory", O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, "1", 1) == 1;
	close(fd);
	return ok;
}

/* The state dir's mark for one pool ("hugepages.SCOPE.NODE.KIB") and its value ("BEFORE:ADD"). */
static char *mark_key(const char *scope, unsigned node, unsigned long kib)
{
	return xasprintf("hugepages.%s.%u.%lu", scope, node, kib);
}

static char *mark_value(unsigned long long before, unsigned long long add)
{
	return xasprintf("%llu:%llu", before, add);
}

int hugepages_reserve(bool numa, unsigned node, int size, uint64_t pages, const char *state_dir, struct journal *j)
{
	unsigned long kib = hugepage_size_kib(size);
	char *nr_path = pool_file(numa, node, kib, "nr_hugepages"), *free_path = pool_file(numa, node, kib, "free_hugepages");
	uint64_t free_pages, before, after, add;
	char *record = NULL, *key = NULL, *value = NULL;
	int r;

	r = read_count(free_path, &free_pages);
	if (r < 0)
		goto out;
	if (free_pages >= pages) {
		log_info("hugepages: %llu free %s pages on node %u already cover %llu", (unsigned long long)free_pages,
			 hugepage_size_name(size), node, (unsigned long long)pages);
		goto out;
	}
	add = pages - free_pages;
	r = read_count(nr_path, &before);
	if (r < 0)
		goto out;
	/* The intent first: its undo never takes the pool below `before`, so it is harmless if the write never happens.
	 * The mark before the record: the undo gives back only what the state dir's mark says this VM added. */
	record = xasprintf("%s:%u:%lu:%llu:%llu", numa ? "numa" : "global", node, kib, (unsigned long long)before,
			   (unsigned long long)add);
	key = mark_key(numa ? "numa" : "global", node, kib);
	value = mark_value(before, add);
	r = ownership_mark(state_dir, key, value);
	if (r == 0)
		r = journal_add(j, "hugepages", record);
	if (r < 0)
		goto out;
	r = write_count(nr_path, before + add);
	if (r < 0)
		goto out;
	r = read_count(nr_path, &after);
	if (r == 0 && after < before + add && compact_memory()) {
		/* Fragmented memory: let the kernel compact it once and ask again before giving up. */
		r = write_count(nr_path, before + add);
		if (r == 0)
			r = read_count(nr_path, &after);
	}
	if (r < 0 || after < before + add)
		write_count(nr_path, before); /* give back what the kernel did find */
	if (r == 0 && after < before + add)
		r = log_errno(ENOMEM,
			      "hugepages: node %u could reserve only %llu of the %llu more %s pages guest RAM needs; nothing "
			      "stays reserved (free memory, reserve at boot, or hugepages = off)",
			      node, (unsigned long long)(after > before ? after - before : 0), (unsigned long long)add,
			      hugepage_size_name(size));
	else if (r == 0)
		log_info("hugepages: reserved %llu %s pages on node %u", (unsigned long long)add, hugepage_size_name(size),
			 node);
out:
	free(record);
	free(key);
	free(value);
	free(nr_path);
	free(free_path);
	return r;
}

/* "numa|global:NODE:KIB:BEFORE:ADD": the pool shrinks by ADD, never below BEFORE (what it had before vmlaunch), and
 * only when the state dir's mark says this VM added exactly that: a forged record gives back nothing. */
static int hugepages_release_undo(const char *arg, const char *state_dir)
{
	char scope[16], *key, *value, *path;
	unsigned node;
	unsigned long kib;
	unsigned long long before, add;
	uint64_t now;
	int r;

	if (sscanf(arg, "%15[a-z]:%u:%lu:%llu:%llu", scope, &node, &kib, &before, &add) != 5 ||
	    (strcmp(scope, "numa") && strcmp(scope, "global")) || (kib != 2048 && kib != 1048576))
		return log_errno(EBADMSG, "journal: malformed hugepages record \"%s\"", arg);
	key = mark_key(scope, node, kib);
	value = mark_value(before, add);
	r = ownership_check(state_dir, key, value);
	if (r == 0)
		r = log_errno(EPERM, "journal: refusing to give back hugepages \"%s\": vmlaunch did not reserve them for %s",
			      arg, state_dir);
	if (r > 0) {
		path = pool_file(!strcmp(scope, "numa"), node, kib, "nr_hugepages");
		r = read_count(path, &now);
		if (r == 0 && now > before)
			r = write_count(path, now - add > before && now > add ? now - add : before);
		free(path);
		if (r == 0)
			ownership_clear(state_dir, key); /* a second replay gives back nothing more */
	}
	free(key);
	free(value);
	return r;
}
JOURNAL_UNDO_VOLATILE(hugepages, "hugepages", hugepages_release_undo)
