/* Disk population on real files under /dev/shm and a loop device: contents, holes, zeroing, and refusals. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "command.h"
#include "journal.h"
#include "populate.h"
#include "strv.h"

#define MIB ((uint64_t)1 << 20)
#define SOURCE_SIZE (256 * MIB)
#define TARGET_SIZE (384 * MIB)

/* Where the source holds data: unaligned starts and lengths, an extent longer than one copy buffer, one that
 * crosses a MiB boundary, single bytes, and the image's very last byte. */
static const struct {
	uint64_t off, len;
} source_data[] = {
	{ 0, 4096 },
	{ 1 * MIB + 123, 7777 },
	{ 10 * MIB, 3 * MIB + 17 },
	{ 64 * MIB - 100, 200 },
	{ 100 * MIB + 4095, 1 },
	{ 200 * MIB - 5000, 10000 },
	{ SOURCE_SIZE - 1, 1 },
};

/* Made once for the whole group: the images are read-only inputs of every test. */
static char *dir, *raw_image, *qcow2_image;
/* qemu-nbd's sockets and the helpers' kills go to the test's directory; qemu-img runs as the test's user. */
static struct journal journal = { .fd = -1 };
static struct populate_sandbox sandbox;

/* Per test: the target, the loop device over it, a ramfs mounted for it, and the tuning to restore. */
struct fixture {
	char *target;
	char *loop_device;
	char *ramfs;
	struct populate_tuning saved_tuning;
};

static char *path_in_dir(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	/* xorshift: incompressible, and no run of zeros a sparse-aware copy could mistake for a hole */
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)(x | 1);
	}
}

static void pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n <= 0)
			fail_msg("pwrite: %s", strerror(errno));
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
}

/* A file of `size` bytes: sparse when `fill` is 0, otherwise every byte written as `fill`. */
static void make_file(const char *path, uint64_t size, int fill)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (fill) {
		unsigned char *buf = xmalloc(MIB);

		memset(buf, fill, MIB);
		for (uint64_t off = 0; off < size; off += MIB)
			pwrite_all(fd, buf, size - off < MIB ? size - off : MIB, off);
		free(buf);
	}
	close(fd);
}

/* Compares [0, len) of two files (or devices). */
static void assert_same_contents(const char *a, const char *b, uint64_t len)
{
	unsigned char *ba = xmalloc(MIB), *bb = xmalloc(MIB);
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);

	assert_true(fa >= 0 && fb >= 0);
	for (uint64_t off = 0; off < len; off += MIB) {
		size_t n = len - off < MIB ? len - off : MIB;

		assert_int_equal(pread(fa, ba, n, (off_t)off), n);
		assert_int_equal(pread(fb, bb, n, (off_t)off), n);
		if (memcmp(ba, bb, n)) {
			size_t i = 0;

			while (ba[i] == bb[i])
				i++;
			fail_msg("%s and %s differ at byte %" PRIu64 ": %#x != %#x", a, b, off + i, ba[i], bb[i]);
		}
	}
	close(fa);
	close(fb);
	free(ba);
	free(bb);
}

static void assert_zeros(const char *path, uint64_t off, uint64_t len)
{
	unsigned char *buf = xmalloc(MIB);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	for (uint64_t pos = off; pos < off + len; pos += MIB) {
		size_t n = off + len - pos < MIB ? off + len - pos : MIB;

		assert_int_equal(pread(fd, buf, n, (off_t)pos), n);
		for (size_t i = 0; i < n; i++)
			if (buf[i])
				fail_msg("%s: byte %" PRIu64 " is %#x, expected 0", path, pos + i, buf[i]);
	}
	close(fd);
	free(buf);
}

static void assert_filled(const char *path, uint64_t len, int fill)
{
	unsigned char *buf = xmalloc(MIB);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, len);
	for (uint64_t pos = 0; pos < len; pos += MIB) {
		size_t n = len - pos < MIB ? len - pos : MIB;

		assert_int_equal(pread(fd, buf, n, (off_t)pos), n);
		for (size_t i = 0; i < n; i++)
			if (buf[i] != fill)
				fail_msg("%s: byte %" PRIu64 " is %#x, expected %#x", path, pos + i, buf[i], fill);
	}
	close(fd);
	free(buf);
}

/* The SEEK_DATA/SEEK_HOLE map of [0, limit) as "start-end," text, for a readable comparison. */
static char *data_map(const char *path, uint64_t limit)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *map = xstrdup("");
	off_t pos = 0;

	assert_true(fd >= 0);
	while ((uint64_t)pos < limit) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;
		char *next;

		if (data < 0 || (uint64_t)data >= limit)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if ((uint64_t)hole > limit)
			hole = (off_t)limit;
		next = xasprintf("%s%jd-%jd,", map, (intmax_t)data, (intmax_t)hole);
		free(map);
		map = next;
		pos = hole;
	}
	close(fd);
	return map;
}

static uint64_t allocated_bytes(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* Runs populate_copy with stderr sent to a file; returns its result and what it printed. */
static int copy_capturing(struct populate_source *src, const struct populate_target *dst, char **err)
{
	char path[] = "/dev/shm/vmlaunch-populate-err-XXXXXX";
	int fd = mkstemp(path), saved = dup(2), r;
	char buf[4096];
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	r = populate_copy(src, dst, &sandbox, false);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	*err = xstrdup(buf);
	return r;
}

static int probe_capturing(const char *path, const char *format, struct populate_source *out, char **err)
{
	char tmp[] = "/dev/shm/vmlaunch-populate-err-XXXXXX";
	int fd = mkstemp(tmp), saved = dup(2), r;
	char buf[4096];
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	r = populate_probe(path, format, false, out);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmp);
	*err = xstrdup(buf);
	return r;
}

static void assert_contains(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("expected a message containing\n  %s\ngot\n  %s", part, text);
}

static int group_setup(void **state)
{
	char tmpl[] = "/dev/shm/vmlaunch-populate-XXXXXX";
	unsigned char *buf;
	int fd;

	(void)state;
	if (!mkdtemp(tmpl))
		return -1;
	dir = xstrdup(tmpl);
	if (journal_create(&journal, dir) < 0)
		return -1;
	sandbox = (struct populate_sandbox){ .dir = dir, .journal = &journal };
	raw_image = path_in_dir("source.raw");
	qcow2_image = path_in_dir("source.qcow2");
	fd = open(raw_image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, SOURCE_SIZE) < 0)
		return -1;
	buf = xmalloc(4 * MIB);
	for (size_t i = 0; i < sizeof(source_data) / sizeof(source_data[0]); i++) {
		fill_pattern(buf, source_data[i].len, i + 1);
		if (pwrite(fd, buf, source_data[i].len, (off_t)source_data[i].off) != (ssize_t)source_data[i].len)
			return -1;
	}
	free(buf);
	close(fd);
	return command_run((char *[]){ "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw_image, qcow2_image,
				       NULL },
			   NULL, "qemu-img convert") == 0
		       ? 0
		       : -1;
}

static int group_teardown(void **state)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	(void)state;
	journal_close(&journal);
	/* Whatever a failed test left behind goes too. */
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
	free(raw_image);
	free(qcow2_image);
	free(dir);
	return 0;
}

static int fixture_setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->target = path_in_dir("target.raw");
	f->saved_tuning = populate_tuning;
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	/* Detached before the backing file goes, also when the test failed half-way. */
	if (f->loop_device)
		command_run((char *[]){ "losetup", "-d", f->loop_device, NULL }, NULL, "losetup -d");
	unlink(f->target);
	if (f->ramfs) {
		umount2(f->ramfs, MNT_DETACH);
		rmdir(f->ramfs);
	}
	populate_tuning = f->saved_tuning;
	free(f->ramfs);
	free(f->loop_device);
	free(f->target);
	free(f);
	return 0;
}

static void probe_ok(const char *path, const char *format, struct populate_source *src)
{
	assert_int_equal(populate_probe(path, format, false, src), 0);
	assert_int_equal(src->virtual_size, SOURCE_SIZE);
}

static void test_probe_detects_format_and_size(void **state)
{
	struct populate_source src;

	(void)state;
	probe_ok(raw_image, NULL, &src);
	assert_string_equal(src.format, "raw");
	assert_string_equal(src.path, raw_image);
	populate_source_free(&src);
	probe_ok(qcow2_image, NULL, &src);
	assert_string_equal(src.format, "qcow2");
	populate_source_free(&src);
	probe_ok(qcow2_image, "qcow2", &src);
	populate_source_free(&src);
	probe_ok(raw_image, "raw", &src);
	populate_source_free(&src);
}

static void test_probe_missing_file_names_the_path(void **state)
{
	struct populate_source src;
	char *missing = path_in_dir("no-such-image.raw"), *err;

	(void)state;
	assert_int_equal(probe_capturing(missing, NULL, &src, &err), -ENOENT);
	assert_contains(err, missing);
	assert_contains(err, "No such file or directory");
	assert_true(!strncmp(err, "vmlaunch: ", 10));
	assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1); /* one line */
	free(err);
	free(missing);
}

static void test_probe_refuses_qcow2_declared_raw(void **state)
{
	struct populate_source src;
	char *err;

	(void)state;
	assert_int_equal(probe_capturing(qcow2_image, "raw", &src, &err), -EINVAL);
	assert_contains(err, qcow2_image);
	assert_contains(err, "is a qcow2 image, not raw");
	free(err);
	assert_int_equal(probe_capturing(raw_image, "qcow2", &src, &err), -EINVAL);
	assert_contains(err, "format = qcow2, but it has no qcow2 header");
	free(err);
}

/* qemu-img create -b SECRET: filling a disk from it would read SECRET as root. Refused unless allowed; a qcow2 header
 * with a backing file written into a file declared raw is refused as a qcow2, never followed. */
static void test_probe_refuses_images_that_name_other_files(void **state)
{
	struct populate_source src;
	char *secret = path_in_dir("secret"), *evil = path_in_dir("evil.qcow2"), *err;

	(void)state;
	{
		FILE *f = fopen(secret, "w");

		assert_non_null(f);
		fputs("host secret\n", f);
		fclose(f);
	}
	assert_int_equal(command_run((char *[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw",
						 evil, "1M", NULL },
				     NULL, "qemu-img create"),
			 0);
	assert_int_equal(probe_capturing(evil, NULL, &src, &err), -EINVAL);
	assert_contains(err, evil);
	assert_contains(err, secret);
	assert_contains(err, "source-backing = allow");
	free(err);
	assert_int_equal(probe_capturing(evil, "qcow2", &src, &err), -EINVAL);
	free(err);
	assert_int_equal(probe_capturing(evil, "raw", &src, &err), -EINVAL);
	assert_contains(err, "is a qcow2 image, not raw");
	free(err);
	assert_int_equal(populate_probe(evil, "qcow2", true, &src), 0);
	assert_string_equal(src.format, "qcow2");
	populate_source_free(&src);
	unlink(evil);
	unlink(secret);
	free(evil);
	free(secret);
}

/* The raw copy into a fresh sparse file: same bytes, zeros past the image, and the holes stay holes. */
static void check_sparse_raw_copy(struct fixture *f)
{
	struct populate_source src;
	struct populate_target dst = { .path = f->target, .size = TARGET_SIZE, .zeroed = true };
	char *src_map, *dst_map;

	make_file(f->target, TARGET_SIZE, 0);
	probe_ok(raw_image, "raw", &src);
	assert_int_equal(populate_copy(&src, &dst, &sandbox, false), 0);
	assert_same_contents(raw_image, f->target, SOURCE_SIZE);
	assert_zeros(f->target, SOURCE_SIZE, TARGET_SIZE - SOURCE_SIZE);
	src_map = data_map(raw_image, SOURCE_SIZE);
	dst_map = data_map(f->target, TARGET_SIZE);
	assert_string_equal(dst_map, src_map);
	assert_int_equal(allocated_bytes(f->target), allocated_bytes(raw_image));
	print_message("data map: %s (%" PRIu64 " KiB of %" PRIu64 " MiB allocated)\n", dst_map,
		      allocated_bytes(f->target) >> 10, (uint64_t)TARGET_SIZE / MIB);
	free(src_map);
	free(dst_map);
	populate_source_free(&src);
}

/* The defaults: into a tmpfs file that is pread/pwrite (also the path for hosts without io_uring). */
static void test_raw_sparse_into_fresh_file(void **state)
{
	check_sparse_raw_copy(*state);
}

static void test_raw_sparse_io_uring(void **state)
{
	populate_tuning.engine = POPULATE_ENGINE_URING;
	check_sparse_raw_copy(*state);
}

/* Small buffers and an odd queue depth: extents span many chunks, and chunks complete out of order. */
static void test_raw_sparse_io_uring_small_buffers(void **state)
{
	populate_tuning.engine = POPULATE_ENGINE_URING;
	populate_tuning.queue_depth = 3;
	populate_tuning.buffer_size = 64 << 10;
	check_sparse_raw_copy(*state);
}

static void test_qcow2_into_fresh_file(void **state)
{
	struct fixture *f = *state;
	struct populate_source src;
	struct populate_target dst = { .path = f->target, .size = TARGET_SIZE, .zeroed = true };

	make_file(f->target, TARGET_SIZE, 0);
	probe_ok(qcow2_image, NULL, &src);
	assert_int_equal(populate_copy(&src, &dst, &sandbox, false), 0);
	assert_same_contents(raw_image, f->target, SOURCE_SIZE);
	assert_zeros(f->target, SOURCE_SIZE, TARGET_SIZE - SOURCE_SIZE);
	/* --target-is-zero: qemu-img skips the image's holes too (it works in 4 KiB granules, hence the slack) */
	assert_true(allocated_bytes(f->target) <= allocated_bytes(raw_image) + MIB);
	populate_source_free(&src);
}

/* A target holding another volume's data: none of it may survive, in the image's holes or past its end. */
static void check_not_zeroed(struct fixture *f, const char *image)
{
	struct populate_source src;
	struct populate_target dst = { .path = f->target, .size = TARGET_SIZE, .zeroed = false };

	make_file(f->target, TARGET_SIZE, 0xaa);
	probe_ok(image, NULL, &src);
	assert_int_equal(populate_copy(&src, &dst, &sandbox, false), 0);
	assert_same_contents(raw_image, f->target, SOURCE_SIZE);
	assert_zeros(f->target, SOURCE_SIZE, TARGET_SIZE - SOURCE_SIZE);
	populate_source_free(&src);
}

static void test_raw_into_dirty_file(void **state)
{
	check_not_zeroed(*state, raw_image);
	populate_tuning.engine = POPULATE_ENGINE_URING;
	check_not_zeroed(*state, raw_image);
}

static void test_qcow2_into_dirty_file(void **state)
{
	check_not_zeroed(*state, qcow2_image);
}

/* An image whose size is not a multiple of 4 KiB (qemu-img rounds it up to 512) into a disk of an odd size: the
 * unaligned last chunk goes through the page cache, and the zeroing covers partial blocks. */
static void test_unaligned_sizes(void **state)
{
	struct fixture *f = *state;
	char *image = path_in_dir("odd.raw");
	const uint64_t image_size = 5 * MIB + 777, disk_size = 8 * MIB + 5;
	struct populate_source src;
	struct populate_target dst = { .path = f->target, .size = disk_size, .zeroed = false };
	unsigned char *buf = xmalloc(image_size);
	int fd;

	/* One small buffer, reused: padding past the image's end must not show the previous chunk's bytes. */
	populate_tuning.queue_depth = 1;
	populate_tuning.buffer_size = 64 << 10;
	fill_pattern(buf, image_size, 99);
	memset(buf + MIB, 0, 2 * MIB); /* punched below: a hole in the middle */
	fd = open(image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	pwrite_all(fd, buf, image_size, 0);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MIB, 2 * MIB), 0);
	close(fd);
	assert_int_equal(populate_probe(image, "raw", false, &src), 0);
	assert_int_equal(src.virtual_size, 5 * MIB + 1024); /* rounded up to 512 by qemu-img */
	for (int engine = POPULATE_ENGINE_URING; engine <= POPULATE_ENGINE_SYNC; engine++) {
		populate_tuning.engine = engine;
		make_file(f->target, disk_size, 0xaa);
		assert_int_equal(populate_copy(&src, &dst, &sandbox, false), 0);
		assert_same_contents(image, f->target, image_size);
		assert_zeros(f->target, image_size, disk_size - image_size);
	}
	populate_source_free(&src);
	unlink(image);
	free(image);
	free(buf);
}

static void test_refuses_image_larger_than_disk(void **state)
{
	struct fixture *f = *state;
	struct populate_source src;
	struct populate_target dst = { .path = f->target, .size = 128 * MIB, .zeroed = false };
	char *err;

	make_file(f->target, 128 * MIB, 0xaa);
	probe_ok(raw_image, NULL, &src);
	assert_int_equal(copy_capturing(&src, &dst, &err), -EINVAL);
	assert_contains(err, f->target);
	assert_contains(err, "larger than the disk");
	assert_filled(f->target, 128 * MIB, 0xaa);
	free(err);
	populate_source_free(&src);
}

/* A disk that fills up half-way (here a 1 MiB tmpfs under a sparse file as large as the image): a clear error with
 * the target's name and the kernel's reason, never a silent short copy. */
static void test_disk_full_while_populating(void **state)
{
	struct fixture *f = *state;
	struct populate_source src;
	struct populate_target dst;
	char *err, *target;
	int r;

	f->ramfs = path_in_dir("full");
	assert_int_equal(mkdir(f->ramfs, 0700), 0);
	if (mount("vmlaunch-test", f->ramfs, "tmpfs", 0, "size=1M") < 0) {
		rmdir(f->ramfs);
		free(f->ramfs);
		f->ramfs = NULL;
		skip(); /* not root: cannot mount */
	}
	target = xasprintf("%s/disk.raw", f->ramfs);
	make_file(target, SOURCE_SIZE, 0);
	dst = (struct populate_target){ .path = target, .size = SOURCE_SIZE, .zeroed = true };
	probe_ok(raw_image, NULL, &src);
	r = copy_capturing(&src, &dst, &err);
	assert_int_equal(r, -ENOSPC);
	assert_contains(err, target);
	assert_contains(err, "No space left on device");
	unlink(target);
	free(target);
	free(err);
	populate_source_free(&src);
}

static void test_refuses_copy_onto_itself(void **state)
{
	struct populate_source src;
	struct populate_target dst = { .path = raw_image, .size = SOURCE_SIZE, .zeroed = true };
	char *err;

	(void)state;
	probe_ok(raw_image, NULL, &src);
	assert_int_equal(copy_capturing(&src, &dst, &err), -EINVAL);
	assert_contains(err, "from itself");
	free(err);
	populate_source_free(&src);
}

/* Block devices: O_EXCL, O_DIRECT with the device's block size, and zeroing by the device. A loop device stands in
 * for an LV holding old data; f->target is its backing file. */
static void check_loop_device(struct fixture *f, uint64_t size)
{
	struct populate_source src;
	struct populate_target dst = { .size = size, .zeroed = false };
	unsigned char *buf;
	char *out = NULL, *err;
	int fd;

	if (access("/dev/loop-control", W_OK) < 0) {
		print_message("skipping: loop devices are unavailable: /dev/loop-control: %s\n", strerror(errno));
		skip();
	}
	make_file(f->target, size, 0xaa);
	if (command_run((char *[]){ "losetup", "--find", "--show", f->target, NULL }, &out, NULL) != 0) {
		free(out);
		print_message("skipping: losetup could not attach a loop device (not permitted here?)\n");
		skip();
	}
	out[strcspn(out, "\n")] = '\0';
	f->loop_device = out;
	dst.path = f->loop_device;

	probe_ok(raw_image, "raw", &src);
	assert_int_equal(populate_copy(&src, &dst, &sandbox, false), 0);
	assert_same_contents(raw_image, f->loop_device, SOURCE_SIZE);
	assert_zeros(f->loop_device, SOURCE_SIZE, size - SOURCE_SIZE);
	populate_source_free(&src);

	/* The old data again, written through the device, then the qcow2 path (qemu-img with -t none). */
	fd = open(f->loop_device, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	buf = xmalloc(MIB);
	memset(buf, 0xaa, MIB);
	for (uint64_t off = 0; off < size; off += MIB)
		pwrite_all(fd, buf, MIB, off);
	assert_int_equal(fsync(fd), 0);
	close(fd);
	free(buf);
	probe_ok(qcow2_image, "qcow2", &src);
	assert_int_equal(populate_copy(&src, &dst, &sandbox, false), 0);
	assert_same_contents(raw_image, f->loop_device, SOURCE_SIZE);
	assert_zeros(f->loop_device, SOURCE_SIZE, size - SOURCE_SIZE);
	populate_source_free(&src);

	/* A device someone holds (here our own exclusive open, as a mount would) is refused. */
	fd = open(f->loop_device, O_RDONLY | O_EXCL | O_CLOEXEC);
	assert_true(fd >= 0);
	probe_ok(raw_image, "raw", &src);
	assert_int_equal(copy_capturing(&src, &dst, &err), -EBUSY);
	assert_contains(err, "in use");
	free(err);
	populate_source_free(&src);
	close(fd);
}

/* Over a tmpfs file the loop device zeroes by punching holes into it: fallocate(PUNCH_HOLE) on the device works. */
static void test_loop_device_with_write_zeroes(void **state)
{
	check_loop_device(*state, TARGET_SIZE);
}

/* Over a ramfs file (no fallocate) the device cannot zero by itself: the BLKZEROOUT fallback, in which the kernel
 * writes the zeros. */
static void test_loop_device_without_write_zeroes(void **state)
{
	struct fixture *f = *state;
	char *sysfs;
	FILE *limit;
	unsigned long long max = 1;

	f->ramfs = path_in_dir("ramfs");
	assert_int_equal(mkdir(f->ramfs, 0700), 0);
	if (mount("ramfs", f->ramfs, "ramfs", MS_NOSUID | MS_NODEV, NULL) < 0) {
		print_message("skipping: cannot mount a ramfs: %s\n", strerror(errno));
		rmdir(f->ramfs);
		free(f->ramfs);
		f->ramfs = NULL;
		skip();
	}
	free(f->target);
	f->target = xasprintf("%s/backing", f->ramfs);
	check_loop_device(f, SOURCE_SIZE + 16 * MIB);
	/* Still attached: confirm the device really had no write-zeroes, so BLKZEROOUT is what did the work. */
	sysfs = xasprintf("/sys/block/%s/queue/write_zeroes_max_bytes", strrchr(f->loop_device, '/') + 1);
	limit = fopen(sysfs, "r");
	assert_non_null(limit);
	assert_int_equal(fscanf(limit, "%llu", &max), 1);
	fclose(limit);
	assert_int_equal(max, 0);
	free(sysfs);
}

/* populate_copy_raw from a block device (a loop device over the sparse image stands in for zram at a snapshot's
 * save): SEEK_DATA finds the device all data, yet the copy stays sparse (zero blocks are not written) and is the
 * device's length; then back onto a fresh file that reads as zeros. A qcow2 file is copied as the bytes it is. */
static void check_copy_raw_from_a_block_device(struct fixture *f)
{
	char *out = NULL, *back = path_in_dir("back.raw");
	struct stat st;

	if (access("/dev/loop-control", W_OK) < 0 ||
	    command_run((char *[]){ "losetup", "--find", "--show", "--read-only", raw_image, NULL }, &out, NULL) != 0) {
		free(out);
		free(back);
		print_message("skipping: no loop device could be attached here\n");
		skip();
	}
	out[strcspn(out, "\n")] = '\0';
	f->loop_device = out;
	assert_int_equal(populate_copy_raw(f->loop_device, f->target, POPULATE_RAW_CREATE), 0);
	assert_int_equal(stat(f->target, &st), 0);
	assert_int_equal((uint64_t)st.st_size, SOURCE_SIZE);
	assert_same_contents(raw_image, f->target, SOURCE_SIZE);
	/* as sparse as the image: only the 4 KiB blocks that hold data are written (not their whole 1 MiB chunks) */
	assert_true(allocated_bytes(f->target) <= allocated_bytes(raw_image));
	print_message("from %s: %" PRIu64 " KiB allocated of %" PRIu64 " MiB\n", f->loop_device,
		      allocated_bytes(f->target) >> 10, SOURCE_SIZE / MIB);
	make_file(back, SOURCE_SIZE, 0);
	assert_int_equal(populate_copy_raw(f->target, back, POPULATE_RAW_ZEROED), 0);
	assert_same_contents(raw_image, back, SOURCE_SIZE);
	assert_true(allocated_bytes(back) <= allocated_bytes(f->target));
	/* no probe: a qcow2 overlay is copied byte for byte, truncated to its length over a longer old file */
	make_file(back, SOURCE_SIZE, 0xaa);
	assert_int_equal(populate_copy_raw(qcow2_image, back, POPULATE_RAW_CREATE), 0);
	assert_int_equal(stat(qcow2_image, &st), 0);
	assert_same_contents(qcow2_image, back, (uint64_t)st.st_size);
	{
		struct stat bst;

		assert_int_equal(stat(back, &bst), 0);
		assert_int_equal(bst.st_size, st.st_size);
	}
	unlink(back);
	free(back);
}

static void test_copy_raw_from_a_block_device_stays_sparse(void **state)
{
	check_copy_raw_from_a_block_device(*state);
}

/* The same through io_uring, whose slots write the trimmed chunks. */
static void test_copy_raw_from_a_block_device_io_uring(void **state)
{
	populate_tuning.engine = POPULATE_ENGINE_URING;
	check_copy_raw_from_a_block_device(*state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_detects_format_and_size),
		cmocka_unit_test(test_probe_missing_file_names_the_path),
		cmocka_unit_test(test_probe_refuses_qcow2_declared_raw),
		cmocka_unit_test(test_probe_refuses_images_that_name_other_files),
		cmocka_unit_test_setup_teardown(test_raw_sparse_into_fresh_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_raw_sparse_io_uring, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_raw_sparse_io_uring_small_buffers, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_qcow2_into_fresh_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_raw_into_dirty_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_qcow2_into_dirty_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_unaligned_sizes, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_image_larger_than_disk, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_copy_onto_itself, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_while_populating, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_loop_device_with_write_zeroes, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_loop_device_without_write_zeroes, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_copy_raw_from_a_block_device_stays_sparse, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_copy_raw_from_a_block_device_io_uring, fixture_setup,
						fixture_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
