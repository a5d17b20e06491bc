/* Benchmark (not a test): populate_copy against qemu-img convert and cp, sparse and dense raw images into tmpfs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "populate.h"
#include "strv.h"

#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)
#define RUNS 3

static const char *source_dir = "/var/tmp"; /* where base images live: a disk file system, page-cached */
static char *dir;                           /* the tmpfs side, under /dev/shm: removed at exit */
static char *source_tmp;                    /* our directory under source_dir: removed at exit */
static char *loop_devices[2], *zram_id;     /* --sweep's devices: removed at exit */
static uint64_t image_size = 2 * GIB;

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "populate_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Wall time, and CPU time: ours (io_uring's kernel workers are our threads and count too) or our children's. */
struct measurement {
	double wall, cpu;
};

static double cpu_seconds(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static struct measurement measure_start(void)
{
	/* ours and our children's together: a run is either populate_copy or one child, never both */
	return (struct measurement){ now_seconds(), cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN) };
}

static struct measurement measure_since(const struct measurement *start)
{
	return (struct measurement){ now_seconds() - start->wall,
				     cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN) - start->cpu };
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Each of the two medians on its own. */
static struct measurement median(const struct measurement v[RUNS])
{
	double wall[RUNS], cpu[RUNS];

	for (int i = 0; i < RUNS; i++) {
		wall[i] = v[i].wall;
		cpu[i] = v[i].cpu;
	}
	qsort(wall, RUNS, sizeof(double), compare_double);
	qsort(cpu, RUNS, sizeof(double), compare_double);
	return (struct measurement){ wall[RUNS / 2], cpu[RUNS / 2] };
}

/* Incompressible and free of zero runs, so neither the copies nor tmpfs nor zram can take a shortcut. */
static void fill_random(uint64_t *buf, size_t words, uint64_t *state)
{
	uint64_t x = *state;

	for (size_t i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = x | 1;
	}
	*state = x;
}

/* A raw image of image_size bytes with data in `percent` of its 4 MiB slots, picked by a fixed pseudo-random
 * sequence (scattered, and the same on every run); the other slots are holes. */
static char *make_image(const char *in, const char *name, unsigned percent)
{
	char *path = xasprintf("%s/%s", in, name);
	uint64_t *buf = xmalloc(4 * MIB), rng = 0x2545f4914f6cdd1dULL, pick = 12345;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)image_size) < 0)
		die(path);
	for (uint64_t off = 0; off < image_size; off += 4 * MIB) {
		pick = pick * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((pick >> 33) % 100 >= percent)
			continue;
		fill_random(buf, 4 * MIB / 8, &rng);
		if (pwrite(fd, buf, 4 * MIB, (off_t)off) != (ssize_t)(4 * MIB))
			die(path);
	}
	/* Written back now rather than by the flusher in the middle of a measurement; the pages stay cached. */
	if (fdatasync(fd) < 0)
		die(path);
	free(buf);
	close(fd);
	return path;
}

/* A file of `size` bytes with every page allocated. */
static void fill_file(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || fallocate(fd, 0, 0, (off_t)size) < 0)
		die(path);
	close(fd);
}

static uint64_t allocated(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		die(path);
	return (uint64_t)st.st_blocks * 512;
}

/* A fresh sparse file of the image's size: what the tmpfs backend hands to populate_copy. */
static char *fresh_target(void)
{
	char *path = xasprintf("%s/target.raw", dir);
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)image_size) < 0)
		die(path);
	close(fd);
	return path;
}

enum method { POPULATE, QEMU_IMG, QEMU_IMG_TUNED, CP, N_METHODS };

static const char *method_name[] = {
	[POPULATE] = "populate_copy",
	[QEMU_IMG] = "`qemu-img convert -n -O raw`",
	[QEMU_IMG_TUNED] = "`qemu-img convert -n -O raw -W -m 8 --target-is-zero`",
	[CP] = "`cp --sparse=always`",
};

/* One copy of `image` onto `target`; the programs' start-up is part of their time. */
static struct measurement run_once(enum method m, const char *image, const char *target)
{
	struct populate_source src = { (char *)image, "raw", image_size, false };
	struct populate_target dst = { target, image_size, true };
	struct measurement start = measure_start();
	int r;

	switch (m) {
	case POPULATE:
		r = populate_copy(&src, &dst, &(struct populate_sandbox){ .dir = dir }, false) /* raw: no helper */;
		break;
	case QEMU_IMG:
		r = command_run((char *[]){ "qemu-img", "convert", "-n", "-O", "raw", "-f", "raw", (char *)image,
					    (char *)target, NULL },
				NULL, 0);
		break;
	case QEMU_IMG_TUNED:
		r = command_run((char *[]){ "qemu-img", "convert", "-n", "-O", "raw", "-f", "raw", "-W", "-m", "8",
					    "--target-is-zero", (char *)image, (char *)target, NULL },
				NULL, 0);
		break;
	default:
		r = command_run((char *[]){ "cp", "--sparse=always", (char *)image, (char *)target, NULL }, NULL, 0);
		break;
	}
	if (r != 0) {
		fprintf(stderr, "populate_bench: %s failed\n", method_name[m]);
		exit(1);
	}
	return measure_since(&start);
}

/* Every method must produce the image: a benchmark of a wrong copy is worth nothing. */
static void check_copy(const char *image, const char *target)
{
	int a = open(image, O_RDONLY | O_CLOEXEC), b = open(target, O_RDONLY | O_CLOEXEC);
	char *ma, *mb;

	if (a < 0 || b < 0)
		die("open");
	ma = mmap(NULL, image_size, PROT_READ, MAP_SHARED, a, 0);
	mb = mmap(NULL, image_size, PROT_READ, MAP_SHARED, b, 0);
	if (ma == MAP_FAILED || mb == MAP_FAILED)
		die("mmap");
	if (memcmp(ma, mb, image_size)) {
		fprintf(stderr, "populate_bench: %s is not a copy of %s\n", target, image);
		exit(1);
	}
	munmap(ma, image_size);
	munmap(mb, image_size);
	close(a);
	close(b);
}

/* The host's memcpy bandwidth over 256 MiB, best of 5. A copy through a user buffer moves every byte twice (into
 * the buffer, out of it), and tmpfs must also allocate each page: file copies stay well below this. */
static double memcpy_gib_per_s(void)
{
	const size_t size = 256 * MIB;
	char *a = xmalloc(size), *b = xmalloc(size);
	double best = 0;

	memset(a, 1, size);
	memset(b, 2, size); /* faults the pages in before timing */
	for (int round = 0; round < 5; round++) {
		double start = now_seconds(), rate;

		for (int i = 0; i < 4; i++) {
			memcpy(i % 2 ? a : b, i % 2 ? b : a, size);
			__asm__ volatile("" ::: "memory"); /* keeps the compiler from dropping the copies */
		}
		rate = 4.0 * (double)size / (double)GIB / (now_seconds() - start);
		if (rate > best)
			best = rate;
	}
	free(a);
	free(b);
	return best;
}

static void cleanup(void)
{
	/* The devices first: the loop devices hold their backing files in our directories. */
	for (int i = 0; i < 2; i++)
		if (loop_devices[i])
			command_run((char *[]){ "losetup", "-d", loop_devices[i], NULL }, NULL, 0);
	if (zram_id) {
		char *reset = xasprintf("/sys/block/zram%s/reset", zram_id);
		int fd = open(reset, O_WRONLY | O_CLOEXEC);

		if (fd >= 0 && write(fd, "1", 1) < 0)
			fprintf(stderr, "populate_bench: cannot reset zram%s\n", zram_id);
		if (fd >= 0)
			close(fd);
		fd = open("/sys/class/zram-control/hot_remove", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, zram_id, strlen(zram_id)) < 0)
			fprintf(stderr, "populate_bench: cannot remove zram%s\n", zram_id);
		if (fd >= 0)
			close(fd);
		free(reset);
	}
	if (dir)
		command_run((char *[]){ "rm", "-rf", "--one-file-system", dir, NULL }, NULL, 0);
	if (source_tmp)
		command_run((char *[]){ "rm", "-rf", "--one-file-system", source_tmp, NULL }, NULL, 0);
}

/* Default mode: the comparison table. Targets are fresh sparse files, as the tmpfs backend makes them. */
static void compare_methods(void)
{
	const char *names[2] = { "sparse, 10% data", "dense, random" };
	char *images[2];
	uint64_t data[2];
	struct measurement m[2][N_METHODS][RUNS];

	images[0] = make_image(source_tmp, "sparse.raw", 10);
	images[1] = make_image(source_tmp, "dense.raw", 100);
	for (int i = 0; i < 2; i++)
		data[i] = allocated(images[i]);
	/* Interleaved, so a noisy neighbour on the shared host hurts every method alike rather than one. */
	for (int run = 0; run < RUNS; run++)
		for (int i = 0; i < 2; i++)
			for (int k = 0; k < N_METHODS; k++) {
				char *target = fresh_target();

				m[i][k][run] = run_once(k, images[i], target);
				if (run == 0)
					check_copy(images[i], target);
				unlink(target);
				free(target);
			}
	printf("%.2f GiB raw images in %s (page-cached) copied to fresh sparse files in /dev/shm; median of %d "
	       "interleaved runs\n\n",
	       (double)image_size / GIB, source_dir, RUNS);
	printf("| image | method | median s | GiB/s of virtual size | GiB/s of data | CPU s |\n");
	printf("|---|---|---:|---:|---:|---:|\n");
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < N_METHODS; k++) {
			struct measurement med = median(m[i][k]);

			printf("| %s (%.2f GiB) | %s | %.3f | %.2f | %.2f | %.2f |\n", names[i], (double)data[i] / GIB,
			       method_name[k], med.wall, (double)image_size / GIB / med.wall,
			       (double)data[i] / GIB / med.wall, med.cpu);
		}
	printf("| | host memcpy, 256 MiB buffer (the limit) | | %.2f | | |\n", memcpy_gib_per_s());
	for (int i = 0; i < 2; i++) {
		unlink(images[i]);
		free(images[i]);
	}
}

/* --sweep targets. The tmpfs file is preallocated (every page already there), so its column shows what the copy
 * engine costs rather than the host's page allocation. The loop device over a tmpfs file and zram are RAM block
 * devices, where O_DIRECT decides whether the page cache holds a second copy; the loop device over a file on disk
 * (with direct-io, so the disk sees our requests) is a stand-in for an LV, where the queue depth matters. */
enum sweep_target { SWEEP_FILE, SWEEP_LOOP_TMPFS, SWEEP_ZRAM, SWEEP_LOOP_DISK, N_SWEEP_TARGETS };

static char *attach_loop(const char *backing, bool direct_io, int slot)
{
	char *argv[] = { "losetup", "--find", "--show", direct_io ? "--direct-io=on" : "--direct-io=off",
			 (char *)backing, NULL };

	if (command_run(argv, &loop_devices[slot], "losetup") != 0) {
		free(loop_devices[slot]);
		loop_devices[slot] = NULL;
		fprintf(stderr, "populate_bench: cannot attach a loop device to %s (not root?)\n", backing);
		return NULL;
	}
	loop_devices[slot][strcspn(loop_devices[slot], "\n")] = '\0';
	return xstrdup(loop_devices[slot]);
}

static bool write_sysfs(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value);

	if (fd >= 0)
		close(fd);
	return ok;
}

/* A zram device of our own (hot_add), lz4 where offered: removed at exit. */
static char *add_zram(void)
{
	char id[32] = "", *path, size[32];
	int fd = open("/sys/class/zram-control/hot_add", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, id, sizeof(id) - 1) : -1;
	bool ok;

	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		fprintf(stderr, "populate_bench: no zram (not root, or no zram module)\n");
		return NULL;
	}
	id[strcspn(id, "\n")] = '\0';
	zram_id = xstrdup(id);
	path = xasprintf("/sys/block/zram%s/comp_algorithm", id);
	write_sysfs(path, "lz4");
	free(path);
	path = xasprintf("/sys/block/zram%s/disksize", id);
	snprintf(size, sizeof(size), "%" PRIu64, image_size);
	ok = write_sysfs(path, size);
	free(path);
	if (!ok) {
		fprintf(stderr, "populate_bench: cannot size zram%s\n", id);
		return NULL;
	}
	return xasprintf("/dev/zram%s", id);
}

static void sweep(void)
{
	static const struct {
		enum populate_engine engine;
		unsigned depth;
		size_t buffer;
		bool direct;
	} configs[] = {
		{ POPULATE_ENGINE_URING, 1, 1 << 20, true },	{ POPULATE_ENGINE_URING, 4, 1 << 20, true },
		{ POPULATE_ENGINE_URING, 8, 1 << 20, true },	{ POPULATE_ENGINE_URING, 16, 1 << 20, true },
		{ POPULATE_ENGINE_URING, 8, 256 << 10, true },	{ POPULATE_ENGINE_URING, 4, 4 << 20, true },
		{ POPULATE_ENGINE_URING, 8, 1 << 20, false },	{ POPULATE_ENGINE_SYNC, 1, 1 << 20, true },
		{ POPULATE_ENGINE_SYNC, 1, 1 << 20, false },
	};
	enum { N = sizeof(configs) / sizeof(configs[0]) };
	const char *column[N_SWEEP_TARGETS] = { "tmpfs file", "loop on tmpfs", "zram (lz4)", "loop on disk" };
	char *image = make_image(source_tmp, "dense.raw", 100);
	char *tmpfs_backing = xasprintf("%s/backing.raw", dir), *disk_backing = xasprintf("%s/backing.raw", source_tmp);
	char *targets[N_SWEEP_TARGETS];
	struct measurement m[N_SWEEP_TARGETS][N][RUNS];
	struct populate_tuning saved = populate_tuning;

	targets[SWEEP_FILE] = xasprintf("%s/target.raw", dir);
	fill_file(targets[SWEEP_FILE], image_size);
	fill_file(tmpfs_backing, image_size);
	fill_file(disk_backing, image_size);
	targets[SWEEP_LOOP_TMPFS] = attach_loop(tmpfs_backing, false, 0);
	targets[SWEEP_ZRAM] = add_zram();
	targets[SWEEP_LOOP_DISK] = attach_loop(disk_backing, true, 1);
	for (int run = 0; run < RUNS; run++)
		for (size_t c = 0; c < N; c++)
			for (int k = 0; k < N_SWEEP_TARGETS; k++) {
				struct populate_source src = { image, "raw", image_size, false };
				struct populate_target dst = { targets[k], image_size, true };
				struct measurement start;

				if (!targets[k])
					continue;
				populate_tuning = (struct populate_tuning){ configs[c].engine, configs[c].depth,
									    configs[c].buffer, configs[c].direct };
				start = measure_start();
				if (populate_copy(&src, &dst, &(struct populate_sandbox){ .dir = dir }, false) /* raw: no helper */ < 0)
					exit(1);
				m[k][c][run] = measure_since(&start);
			}
	populate_tuning = saved;
	printf("%.2f GiB dense raw image in %s (page-cached); GiB/s and CPU seconds, median of %d interleaved runs\n\n",
	       (double)image_size / GIB, source_dir, RUNS);
	printf("| engine | queue | buffer | O_DIRECT |");
	for (int k = 0; k < N_SWEEP_TARGETS; k++)
		printf(" %s GiB/s | CPU s |", column[k]);
	printf("\n|---|---:|---:|---|");
	for (int k = 0; k < N_SWEEP_TARGETS; k++)
		printf("---:|---:|");
	printf("\n");
	for (size_t c = 0; c < N; c++) {
		bool uring = configs[c].engine == POPULATE_ENGINE_URING;

		printf("| %s | %u | %zu KiB | %s |", uring ? "io_uring" : "pread/pwrite", uring ? configs[c].depth : 1,
		       configs[c].buffer >> 10, configs[c].direct ? "tried" : "off");
		for (int k = 0; k < N_SWEEP_TARGETS; k++) {
			struct measurement med;

			if (!targets[k]) {
				printf(" - | - |");
				continue;
			}
			med = median(m[k][c]);
			printf(" %.2f | %.2f |", (double)image_size / GIB / med.wall, med.cpu);
		}
		printf("\n");
	}
	for (int k = 0; k < N_SWEEP_TARGETS; k++)
		free(targets[k]);
	free(tmpfs_backing);
	free(disk_backing);
	unlink(image);
	free(image);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/dev/shm/vmlaunch-bench-XXXXXX";
	bool do_sweep = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sweep"))
			do_sweep = true;
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			image_size = strtoull(argv[++i], NULL, 10) * MIB;
		else if (!strcmp(argv[i], "--source-dir") && i + 1 < argc)
			source_dir = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--sweep] [--size MiB] [--source-dir DIR]\n", argv[0]);
			return 2;
		}
	}
	if (!image_size || image_size % (4 * MIB)) {
		fprintf(stderr, "populate_bench: --size must be a multiple of 4 (MiB)\n");
		return 2;
	}
	if (!mkdtemp(tmpl))
		die("mkdtemp");
	dir = xstrdup(tmpl);
	source_tmp = xasprintf("%s/vmlaunch-bench-XXXXXX", source_dir);
	atexit(cleanup);
	if (!mkdtemp(source_tmp)) {
		free(source_tmp);
		source_tmp = NULL;
		die(source_dir);
	}
	if (do_sweep)
		sweep();
	else
		compare_methods();
	return 0;
}
