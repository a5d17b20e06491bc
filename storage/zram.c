/* Backend "zram": a compressed RAM block device made with /sys/class/zram-control/hot_add, removed with hot_remove. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "ownership.h"
#include "storage.h"
#include "strv.h"
#include "test_hook.h"

#define ZRAM_CONTROL "/sys/class/zram-control"

static int write_sysfs(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	if (n < 0)
		r = -errno;
	else if ((size_t)n != strlen(value))
		r = -EIO;
	close(fd);
	return r;
}

static bool valid_id(const char *id)
{
	return *id && strlen(id) < 10 && strspn(id, "0123456789") == strlen(id);
}

static int zram_remove(const char *id)
{
	int r = write_sysfs(ZRAM_CONTROL "/hot_remove", id);

	/* ENODEV: already gone (a replay after the device was removed). */
	if (r < 0 && r != -ENODEV && r != -ENOENT)
		return log_errno(r, "cannot remove /dev/zram%s", id);
	return 0;
}

/* Reads a small sysfs attribute of /dev/zramID as a number; -1 when it cannot be read. */
static long long zram_attr(const char *id, const char *attr)
{
	char *path = xasprintf("/sys/block/zram%s/%s", id, attr);
	FILE *f = fopen(path, "re");
	long long v = -1;

	if (f && fscanf(f, "%lld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	free(path);
	return v;
}

/* The device's disk sequence number: unique for the boot, never reused, so a number another device took after ours
 * was removed is not mistaken for ours. "0" on kernels before 5.15, which have none. */
static void zram_diskseq(const char *id, char *buf, size_t size)
{
	long long seq = zram_attr(id, "diskseq");

	snprintf(buf, size, "%lld", seq < 0 ? 0 : seq);
}

static bool zram_exists(const char *id)
{
	char *path = xasprintf("/sys/block/zram%s", id);
	bool r = access(path, F_OK) == 0;

	free(path);
	return r;
}

/* Removes /dev/zramID only if the state dir's mark says vmlaunch made that very device (its diskseq) for this VM: a
 * journal record alone, which a forger can write, never removes another VM's or the host's zram device. */
static int zram_remove_undo(const char *id, const char *state_dir)
{
	char key[48], want[32], seq[32];
	int r;

	if (!valid_id(id))
		return log_errno(EBADMSG, "journal: malformed zram device \"%s\"", id);
	snprintf(key, sizeof(key), "zram.%s", id);
	r = ownership_get(state_dir, key, want, sizeof(want));
	if (r < 0)
		return r;
	if (r == 0)
		return log_errno(EPERM, "journal: refusing to remove /dev/zram%s: vmlaunch did not make it for %s", id,
				 state_dir);
	if (!zram_exists(id)) {
		ownership_clear(state_dir, key); /* already gone: a replay */
		return 0;
	}
	zram_diskseq(id, seq, sizeof(seq));
	if (strcmp(seq, want))
		return log_errno(EPERM, "journal: refusing to remove /dev/zram%s: it is another device (diskseq %s) than "
					"the one made for %s (diskseq %s)",
				 id, seq, state_dir, want);
	r = zram_remove(id);
	if (r == 0)
		ownership_clear(state_dir, key);
	return r;
}
JOURNAL_UNDO(zram, "zram-remove", zram_remove_undo)

/* The highest disk sequence number of the block devices now present: every device made afterwards has a higher one
 * (the kernel's counter only grows). 0 when the kernel has no diskseq (before 5.15). */
static unsigned long long diskseq_floor(void)
{
	unsigned long long floor = 0;
	DIR *d = opendir("/sys/block");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char *path = xasprintf("/sys/block/%s/diskseq", e->d_name);
		FILE *f = fopen(path, "re");
		unsigned long long v;

		if (f && fscanf(f, "%llu", &v) == 1 && v > floor)
			floor = v;
		if (f)
			fclose(f);
		free(path);
	}
	if (d)
		closedir(d);
	return floor;
}

/* Whether another VM's state dir (a sibling of ours) vouches for /dev/zramID with diskseq SEQ: it carries the
 * device's own mark, or a pending hot_add that may have made it (its floor below SEQ). */
static bool claimed_elsewhere(const char *state_dir, const char *id, unsigned long long seq)
{
	char *copy = xstrdup(state_dir), *root = dirname(copy), *base, key[48], value[32];
	DIR *d = opendir(root);
	struct dirent *e;
	bool claimed = false;

	base = strrchr(state_dir, '/');
	base = base ? base + 1 : (char *)state_dir;
	snprintf(key, sizeof(key), "zram.%s", id);
	while (d && !claimed && (e = readdir(d))) {
		char *other;

		if (e->d_type != DT_DIR || e->d_name[0] == '.' || !strcmp(e->d_name, base))
			continue;
		other = xasprintf("%s/%s", root, e->d_name);
		if (ownership_get(other, key, value, sizeof(value)) > 0)
			claimed = true;
		else if (ownership_get(other, "zram.pending", value, sizeof(value)) > 0 && strtoull(value, NULL, 10) < seq)
			claimed = true;
		free(other);
	}
	if (d)
		closedir(d);
	free(copy);
	return claimed;
}

/* Undo of a hot_add interrupted before its device's mark: the device is the one made after the recorded floor that
 * is still unsized (vmlaunch sizes it right after the mark) and that no other VM's state dir vouches for. An open
 * device cannot be removed (hot_remove answers EBUSY), so a device in use is never taken. */
static int zram_pending_undo(const char *arg, const char *state_dir)
{
	char floor_s[32];
	unsigned long long floor;
	DIR *d;
	struct dirent *e;
	int r;

	(void)arg; /* the floor is read from the mark, which a forger cannot write */
	r = ownership_get(state_dir, "zram.pending", floor_s, sizeof(floor_s));
	if (r <= 0)
		return r; /* no mark: the hot_add finished and its own record undoes it, or never ran */
	floor = strtoull(floor_s, NULL, 10);
	d = opendir("/sys/block");
	while (floor && d && (e = readdir(d))) {
		const char *id = e->d_name + 4;
		long long seq;

		if (strncmp(e->d_name, "zram", 4) || !valid_id(id))
			continue;
		seq = zram_attr(id, "diskseq");
		if (seq <= (long long)floor || zram_attr(id, "disksize") != 0 ||
		    claimed_elsewhere(state_dir, id, (unsigned long long)seq))
			continue;
		log_info("journal: removing /dev/zram%s, made by a hot_add interrupted before its record", id);
		zram_remove(id);
	}
	if (d)
		closedir(d);
	ownership_clear(state_dir, "zram.pending");
	return 0;
}
JOURNAL_UNDO(zram_pending, "zram-pending", zram_pending_undo)

static int zram_describe(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t)
{
	const struct vm_config *cfg = ctx->cfg;

	if (access(ZRAM_CONTROL "/hot_add", R_OK) < 0)
		return log_errno(ENODEV,
				 "%s: [disk %s] backend zram: %s is missing (load the zram module: modprobe zram)",
				 config_at(cfg, d->backend_line), d->name, ZRAM_CONTROL);
	if (d->comp_algorithm)
		for (const char *c = d->comp_algorithm; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '-')
				return log_error(
					"%s: [disk %s] comp-algorithm \"%s\": expected a name such as lz4, zstd or lzo-rle",
					config_at(cfg, d->comp_algorithm_line), d->name, d->comp_algorithm);
	/* The device number is known only once hot_add has answered. */
	t->driver = DRIVER_HOST_DEVICE;
	t->filename = xstrdup("/dev/zram?");
	t->format = FORMAT_RAW;
	t->direct_ok = true;
	t->ephemeral = true;
	t->ram_backed = true;
	t->readonly = d->readonly;
	t->zeroed = true;
	return 0;
}

static int wait_for_node(const char *path)
{
	/* devtmpfs creates the node as the disk is added; give a slow udev a moment to settle permissions. */
	for (int i = 0; i < 200; i++) {
		struct stat st;

		if (stat(path, &st) == 0 && S_ISBLK(st.st_mode))
			return 0;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return -ENOENT;
}

static int zram_prepare(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t,
			struct journal *j)
{
	char id[32] = "", size[32], seq[32], key[48], *path;
	ssize_t n;
	int fd, r;

	fd = open(ZRAM_CONTROL "/hot_add", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "disk \"%s\": cannot open %s/hot_add", d->name, ZRAM_CONTROL);
	/* hot_add makes the device before it tells its number: the intent is the diskseq floor, so that an undo after a
	 * kill in between can still find the device (the one above the floor, unsized, that nobody else claims). */
	snprintf(seq, sizeof(seq), "%llu", diskseq_floor());
	r = ownership_mark(ctx->state_dir, "zram.pending", seq);
	if (r == 0)
		r = journal_add(j, "zram-pending", seq);
	if (r < 0) {
		close(fd);
		return r;
	}
	n = read(fd, id, sizeof(id) - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0) {
		ownership_clear(ctx->state_dir, "zram.pending"); /* nothing was made */
		return log_errno(r, "disk \"%s\": zram hot_add failed", d->name);
	}
	id[n > 0 ? n : 0] = '\0';
	id[strcspn(id, "\n")] = '\0';
	if (!valid_id(id))
		return log_errno(EIO, "disk \"%s\": zram hot_add answered \"%s\"", d->name, id);
	test_hook_stop_at("zram-added");
	/* The device's own mark comes first (a record without it does nothing), then the pending one goes. */
	zram_diskseq(id, seq, sizeof(seq));
	snprintf(key, sizeof(key), "zram.%s", id);
	r = ownership_mark(ctx->state_dir, key, seq);
	if (r == 0)
		r = journal_add(j, "zram-remove", id);
	if (r < 0) {
		zram_remove(id);
		return r;
	}
	ownership_clear(ctx->state_dir, "zram.pending");
	free(t->filename);
	t->filename = xasprintf("/dev/zram%s", id);

	if (d->comp_algorithm) {
		path = xasprintf("/sys/block/zram%s/comp_algorithm", id);
		r = write_sysfs(path, d->comp_algorithm);
		free(path);
		if (r < 0)
			return log_errno(r, "disk \"%s\": zram does not offer comp-algorithm \"%s\" (see "
					    "/sys/block/zram%s/comp_algorithm)",
					 d->name, d->comp_algorithm, id);
	}
	snprintf(size, sizeof(size), "%llu", (unsigned long long)d->size);
	path = xasprintf("/sys/block/zram%s/disksize", id);
	r = write_sysfs(path, size);
	free(path);
	if (r < 0)
		return log_errno(r, "disk \"%s\": cannot size /dev/zram%s", d->name, id);
	/* The compressed store's host RAM is bounded, whatever the guest writes, at twice the disk's size: zram allocates
	 * an overwrite's new object before it frees the old one, and its pool fragments between compactions, so a limit
	 * of the size itself refused every overwrite of a disk full of incompressible data (I/O errors in the guest). */
	snprintf(size, sizeof(size), "%llu", (unsigned long long)d->size * 2);
	path = xasprintf("/sys/block/zram%s/mem_limit", id);
	r = write_sysfs(path, size);
	free(path);
	if (r < 0)
		return log_errno(r, "disk \"%s\": cannot limit /dev/zram%s's memory", d->name, id);
	r = wait_for_node(t->filename);
	if (r < 0)
		return log_errno(r, "disk \"%s\": %s did not appear", d->name, t->filename);
	return 0;
}

const struct storage_backend storage_zram = {
	.describe = zram_describe,
	.prepare = zram_prepare,
};
