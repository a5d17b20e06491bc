/* Disk population: probes a base image and copies it onto a prepared disk (io_uring for raw; image_convert.c else). */
#define _GNU_SOURCE
#include "populate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fdio.h"
#include "image_convert.h"
#include "log.h"
#include "progress.h"
#include "strv.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Measured (tests/bench/README.md): O_DIRECT is the large win on block devices (no second copy in the page cache);
 * a queue of 8 keeps a disk-backed device busy where 1 to 4 do not, and buffers from 256 KiB to 4 MiB perform
 * alike, so 1 MiB keeps the pinned memory at 8 MiB. tmpfs gets pread/pwrite: it cannot complete an io_uring request
 * without blocking, so every read and write would be handed to a kernel worker thread, which cost 30-40% more CPU
 * for no gain in time. */
struct populate_tuning populate_tuning = {
	.engine = POPULATE_ENGINE_AUTO,
	.queue_depth = 8,
	.buffer_size = 1 << 20,
	.direct = true,
};

static uint64_t align_down(uint64_t x, uint64_t a)
{
	return x / a * a;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The target, opened for both kinds of write: O_DIRECT where it is taken, buffered for what O_DIRECT cannot do. */
struct target {
	const char *path;
	int fd;  /* buffered; for a block device also the O_EXCL claim */
	int dfd; /* O_DIRECT, or -1 */
	bool blockdev;
	bool tmpfs; /* the page cache is the storage: O_DIRECT has nothing to bypass */
	uint64_t size;  /* the disk's size: nothing at or past it is touched */
	uint64_t align; /* offset and length granule of O_DIRECT writes and of zeroing on a block device */
	struct progress *p;
};

static void target_close(struct target *t)
{
	if (t->dfd >= 0)
		close(t->dfd);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = t->dfd = -1;
}

static int target_open(const struct populate_target *dst, const struct stat *src_st, bool want_direct,
		       struct progress *p, struct target *t)
{
	struct stat st;
	int r;

	*t = (struct target){ .path = dst->path, .fd = -1, .dfd = -1, .size = dst->size, .align = 4096, .p = p };
	if (stat(dst->path, &st) < 0)
		return log_errno(errno, "cannot populate %s", dst->path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return log_error("cannot populate %s: expected a regular file or a block device", dst->path);
	t->blockdev = S_ISBLK(st.st_mode);
	if (t->blockdev ? S_ISBLK(src_st->st_mode) && st.st_rdev == src_st->st_rdev
			: st.st_dev == src_st->st_dev && st.st_ino == src_st->st_ino)
		return log_error("cannot populate %s from itself", dst->path);
	/* O_EXCL on a block device claims it the way a mount does: a mounted or claimed device is refused, and nobody
	 * mounts it while we write. */
	t->fd = open(dst->path, O_WRONLY | O_CLOEXEC | (t->blockdev ? O_EXCL : 0));
	if (t->fd < 0)
		return log_errno(errno, "cannot open %s for writing%s", dst->path,
				 t->blockdev && errno == EBUSY ? " (mounted or in use)" : "");
	if (t->blockdev) {
		uint64_t dev_size;
		int lbs;

		if (ioctl(t->fd, BLKGETSIZE64, &dev_size) < 0 || ioctl(t->fd, BLKSSZGET, &lbs) < 0) {
			r = log_errno(errno, "cannot read the size of %s", dst->path);
			goto fail;
		}
		if (dev_size < dst->size) {
			r = log_error("cannot populate %s: the device has %" PRIu64 " bytes, less than the disk's %" PRIu64,
				      dst->path, dev_size, dst->size);
			goto fail;
		}
		if ((uint64_t)lbs > t->align)
			t->align = (uint64_t)lbs;
	} else {
		struct statfs sfs;

		t->tmpfs = fstatfs(t->fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
		/* The file is the disk: growing it to the disk's size adds a hole, which reads as zeros. */
		if ((uint64_t)st.st_size < dst->size && ftruncate(t->fd, (off_t)dst->size) < 0) {
			r = log_errno(errno, "cannot extend %s to %" PRIu64 " bytes", dst->path, dst->size);
			goto fail;
		}
	}
	/* Opening is the first half of the probe: a file system without O_DIRECT refuses here with EINVAL; one that
	 * accepts the flag but not our writes answers EINVAL to the first write, and the copy falls back then. The
	 * second open is not O_EXCL: the first one holds the claim. */
	if (want_direct && !t->tmpfs)
		t->dfd = open(dst->path, O_WRONLY | O_CLOEXEC | O_DIRECT);
	return 0;
fail:
	target_close(t);
	return r;
}

/* The source's data, as extents aligned outwards to the target's granule and clamped to the target. Whatever
 * lies between them reads as zeros. */
struct extent {
	uint64_t off, len;
};

struct extents {
	struct extent *v;
	size_t n, cap;
	uint64_t bytes;
};

static void extents_add(struct extents *e, uint64_t off, uint64_t end)
{
	if (e->n && off <= e->v[e->n - 1].off + e->v[e->n - 1].len) {
		struct extent *last = &e->v[e->n - 1];

		if (end > last->off + last->len) {
			e->bytes += end - (last->off + last->len);
			last->len = end - last->off;
		}
		return;
	}
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 64;
		e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
	}
	e->v[e->n++] = (struct extent){ off, end - off };
	e->bytes += end - off;
}

static int source_extents(int fd, const char *path, uint64_t vsize, const struct target *t, struct extents *out)
{
	uint64_t pos = 0, limit = min_u64(align_up(vsize, t->align), t->size);

	memset(out, 0, sizeof(*out));
	while (pos < vsize) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break; /* only a hole from pos to the end */
		if (data < 0) {
			/* A file system without SEEK_DATA: everything is data. */
			if (errno != EINVAL && errno != EOPNOTSUPP)
				return log_errno(errno, "cannot map the data of %s", path);
			data = (off_t)pos;
			hole = (off_t)vsize;
		} else {
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0)
				hole = (off_t)vsize;
		}
		if ((uint64_t)data >= vsize)
			break; /* a block device or a longer file: the image ends at its virtual size */
		extents_add(out, align_down((uint64_t)data, t->align), min_u64(align_up((uint64_t)hole, t->align), limit));
		pos = (uint64_t)hole;
	}
	return 0;
}

static int write_zeros(const struct target *t, uint64_t off, uint64_t len)
{
	static const char zeros[65536];

	while (len) {
		ssize_t n = pwrite(t->fd, zeros, min_u64(len, sizeof(zeros)), (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			progress_interrupt(t->p);
			return log_errno(n < 0 ? errno : EIO, "cannot write zeros to %s at offset %" PRIu64, t->path, off);
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Makes [off, off + len) of the target read as zeros without writing zeros where the target can avoid it. */
static int zero_range(const struct target *t, uint64_t off, uint64_t len)
{
	uint64_t a, b;
	int r;

	if (!t->blockdev) {
		/* A hole is the cheapest zero, and on tmpfs gives the memory back. */
		if (!fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
			return 0;
		if (errno != EOPNOTSUPP) {
			progress_interrupt(t->p);
			return log_errno(errno, "cannot punch a hole into %s at offset %" PRIu64, t->path, off);
		}
		if (!fallocate(t->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
			return 0;
		return write_zeros(t, off, len);
	}
	/* Devices zero whole logical blocks only; the partial blocks at either edge are written. */
	a = align_up(off, t->align);
	b = align_down(off + len, t->align);
	if (a >= b)
		return write_zeros(t, off, len);
	if ((r = write_zeros(t, off, a - off)) < 0 || (r = write_zeros(t, b, off + len - b)) < 0)
		return r;
	/* PUNCH_HOLE on a device is a zeroing that may unmap (thin LVs, zram give the space back) and succeeds only
	 * when the device guarantees zeros afterwards; BLKDISCARD guarantees nothing. BLKZEROOUT always works, writing
	 * zeros itself when the device cannot. Both drop the page cache over the range. */
	if (!fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a, (off_t)(b - a)))
		return 0;
	if (errno == EOPNOTSUPP || errno == EINVAL)
		if (!ioctl(t->fd, BLKZEROOUT, (uint64_t[2]){ a, b - a }))
			return 0;
	progress_interrupt(t->p);
	return log_errno(errno, "cannot zero %s at offset %" PRIu64, t->path, a);
}

/* Zeroes [from, to) except the extents, in pieces so the progress line moves and a slow device-side zeroing
 * (BLKZEROOUT writing zeros itself) does not block in one call for minutes. */
static int zero_gaps(const struct target *t, const struct extents *e, uint64_t from, uint64_t to, struct progress *p)
{
	const uint64_t piece = 256ULL << 20;
	uint64_t total = 0, pos = from;
	int r;

	for (size_t pass = 0; pass < 2; pass++) {
		pos = from;
		for (size_t i = 0; i <= e->n; i++) {
			uint64_t gap_end = i < e->n ? min_u64(e->v[i].off, to) : to;

			for (uint64_t off = pos; off < gap_end; off += piece) {
				uint64_t len = min_u64(piece, gap_end - off);

				if (pass == 0) {
					total += len;
					continue;
				}
				if ((r = zero_range(t, off, len)) < 0)
					return r;
				p->done += len;
				progress_draw(p, false);
			}
			if (i < e->n && e->v[i].off + e->v[i].len > pos)
				pos = e->v[i].off + e->v[i].len;
		}
		if (pass == 0)
			progress_begin(p, "zeroing", total);
	}
	return 0;
}

/* The copy's state, shared by the io_uring and the pread/pwrite loops. */
struct copy {
	const char *src_path;
	int src_fd;
	uint64_t vsize;
	struct target *t;
	const struct extents *e;
	size_t next_ext; /* cursor over the extents: the next chunk starts at next_off within e->v[next_ext] */
	uint64_t next_off;
	size_t buffer_size;
	bool direct_failed; /* the target accepted O_DIRECT at open but refused a write */
	bool skip_zeros;    /* the target reads as zeros: a chunk read as all zeros need not be written */
	struct progress *p;
	int err; /* the first error, already logged */
};

/* A chunk: one buffer's worth of an extent, read from the source at `off` and written to the target at `off`. */
struct slot {
	char *buf;
	uint64_t off;
	size_t len;  /* bytes written */
	size_t rlen; /* bytes read: less than len past the image's end, which is written as zeros */
	size_t done; /* of the current read or write, after short ones */
	bool writing, direct;
};

static bool next_chunk(struct copy *c, struct slot *s)
{
	while (c->next_ext < c->e->n) {
		const struct extent *x = &c->e->v[c->next_ext];

		if (c->next_off < x->off)
			c->next_off = x->off;
		if (c->next_off < x->off + x->len) {
			s->off = c->next_off;
			s->len = min_u64(x->off + x->len - c->next_off, c->buffer_size);
			s->rlen = s->off >= c->vsize ? 0 : min_u64(s->len, c->vsize - s->off);
			s->done = 0;
			s->writing = false;
			c->next_off += s->len;
			return true;
		}
		c->next_ext++;
	}
	return false;
}

/* Which descriptor the rest of a slot's write goes to: O_DIRECT needs the file offset and the length aligned (the
 * buffers are page-aligned, and `done` stays a multiple of the granule on direct writes). */
static int write_fd(struct copy *c, struct slot *s)
{
	s->direct = c->t->dfd >= 0 && !c->direct_failed && (s->off + s->done) % c->t->align == 0 &&
		    (s->len - s->done) % c->t->align == 0;
	return s->direct ? c->t->dfd : c->t->fd;
}

/* A block device has no holes to seek (SEEK_DATA finds it all data): its unwritten blocks read as zeros, and
 * skipping those keeps a fresh target as sparse as the source really is. */
static bool all_zeros(const char *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && !memcmp(buf, buf + 1, len - 1));
}

/* On a target that reads as zeros, the zero blocks at either end of a chunk need not be written either: the write
 * covers [done, len), both multiples of the target's granule (what O_DIRECT asks of an offset). */
static void trim_zero_edges(const struct copy *c, struct slot *s)
{
	size_t block = c->t->align, start = 0, end = s->len;

	while (start + block <= end && all_zeros(s->buf + start, block))
		start += block;
	while (end % block == 0 && end >= start + block && all_zeros(s->buf + end - block, block))
		end -= block;
	s->done = start;
	s->len = end;
}

/* After a chunk's read, on a target that reads as zeros: true when the whole chunk is zeros (counted as done, nothing
 * to write), else its zero edges trimmed from the write. */
static bool skip_zero_chunk(struct copy *c, struct slot *s)
{
	if (!c->skip_zeros)
		return false;
	if (all_zeros(s->buf, s->len)) {
		c->p->done += s->len;
		return true;
	}
	trim_zero_edges(c, s);
	return false;
}

/* Called when a read reached its end (or the source's end of file): pads with zeros and turns to writing. */
static void read_finished(struct slot *s)
{
	if (s->done < s->len)
		memset(s->buf + s->done, 0, s->len - s->done);
	s->done = 0;
	s->writing = true;
}

/* Handles a completed read or write of `res` bytes (or -errno). Returns true when the slot has more to do. */
static bool slot_advance(struct copy *c, struct slot *s, int res)
{
	if (res == -EAGAIN || res == -EINTR)
		return true;
	if (res == -EINVAL && s->writing && s->direct) {
		if (!c->direct_failed)
			log_info("%s takes O_DIRECT opens but not O_DIRECT writes; writing through the page cache",
				 c->t->path);
		c->direct_failed = true;
		return true;
	}
	if (res < 0 || (res == 0 && s->writing)) {
		progress_interrupt(c->p);
		if (!c->err)
			c->err = s->writing ? log_errno(res ? res : EIO, "cannot write %s at offset %" PRIu64, c->t->path,
							s->off + s->done)
					    : log_errno(res, "cannot read %s at offset %" PRIu64, c->src_path,
							s->off + s->done);
		return false;
	}
	if (!s->writing) {
		s->done += (size_t)res;
		if (res == 0 || s->done >= s->rlen) { /* 0: the file is shorter than its extents said */
			read_finished(s);
			if (skip_zero_chunk(c, s))
				return next_chunk(c, s);
		}
		return true;
	}
	s->done += (size_t)res;
	if (s->done < s->len)
		return true;
	c->p->done += s->len;
	progress_draw(c->p, false);
	return !c->err && next_chunk(c, s);
}

static void slot_prep(struct copy *c, struct io_uring *ring, struct slot *s, unsigned index, bool fixed)
{
	struct io_uring_sqe *sqe;

	if (!s->writing && s->rlen == 0)
		read_finished(s); /* entirely past the image's end: only zeros to write */
	/* Never NULL: each slot has at most one operation in flight and the ring has an entry per slot. */
	sqe = io_uring_get_sqe(ring);
	if (s->writing) {
		int fd = write_fd(c, s);

		if (fixed)
			io_uring_prep_write_fixed(sqe, fd, s->buf + s->done, s->len - s->done, s->off + s->done, index);
		else
			io_uring_prep_write(sqe, fd, s->buf + s->done, s->len - s->done, s->off + s->done);
	} else if (fixed) {
		io_uring_prep_read_fixed(sqe, c->src_fd, s->buf + s->done, s->rlen - s->done, s->off + s->done, index);
	} else {
		io_uring_prep_read(sqe, c->src_fd, s->buf + s->done, s->rlen - s->done, s->off + s->done);
	}
	io_uring_sqe_set_data64(sqe, index);
}

/* Every slot reads a chunk and writes it back out; with several slots in flight the reads of some overlap the
 * writes of others, and the kernel sees a queue of large requests instead of one at a time. */
static int copy_uring(struct copy *c, struct slot *slots, unsigned depth, size_t buffer_size, bool *no_ring)
{
	struct io_uring ring;
	struct iovec *iov = xcalloc(depth, sizeof(*iov));
	unsigned inflight = 0;
	bool fixed;
	int r;

	/* One thread submits and reaps: completions can wait until we ask for them instead of interrupting us
	 * (kernel 6.1+; older ones refuse the flags with EINVAL and get the plain ring). */
	r = io_uring_queue_init(depth, &ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (r == -EINVAL)
		r = io_uring_queue_init(depth, &ring, 0);
	if (r < 0) {
		/* seccomp (containers), io_uring_disabled, or an old kernel: the caller copies with pread/pwrite */
		log_info("io_uring is not available (%s); copying with pread/pwrite", strerror(-r));
		*no_ring = true;
		free(iov);
		return 0;
	}
	/* Registered buffers spare the kernel pinning the pages on every request. Pinned memory counts against
	 * RLIMIT_MEMLOCK for unprivileged users, so a refusal only costs that saving. */
	for (unsigned i = 0; i < depth; i++)
		iov[i] = (struct iovec){ slots[i].buf, buffer_size };
	fixed = io_uring_register_buffers(&ring, iov, depth) == 0;
	for (unsigned i = 0; i < depth; i++)
		if (next_chunk(c, &slots[i])) {
			slot_prep(c, &ring, &slots[i], i, fixed);
			inflight++;
		}
	while (inflight) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		r = io_uring_submit_and_wait(&ring, 1);
		if (r < 0 && r != -EINTR) {
			progress_interrupt(c->p);
			c->err = log_errno(r, "io_uring");
			break;
		}
		io_uring_for_each_cqe(&ring, head, cqe) {
			unsigned i = (unsigned)io_uring_cqe_get_data64(cqe);

			seen++;
			if (!c->err && slot_advance(c, &slots[i], cqe->res))
				slot_prep(c, &ring, &slots[i], i, fixed);
			else
				inflight--;
		}
		io_uring_cq_advance(&ring, seen);
	}
	/* Only after an io_uring_enter failure can requests still be in flight: exiting cancels them. */
	io_uring_queue_exit(&ring);
	free(iov);
	return c->err;
}

/* The same copy one request at a time: into tmpfs (see populate_tuning), and where io_uring is unavailable. */
static int copy_sync(struct copy *c, struct slot *s)
{
	while (next_chunk(c, s)) {
		while (s->done < s->rlen) {
			ssize_t n = pread(c->src_fd, s->buf + s->done, s->rlen - s->done, (off_t)(s->off + s->done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				progress_interrupt(c->p);
				return log_errno(errno, "cannot read %s at offset %" PRIu64, c->src_path, s->off + s->done);
			}
			if (n == 0)
				break; /* the file is shorter than its extents said: the rest reads as zeros */
			s->done += (size_t)n;
		}
		read_finished(s);
		if (skip_zero_chunk(c, s))
			continue;
		while (s->done < s->len) {
			ssize_t n = pwrite(write_fd(c, s), s->buf + s->done, s->len - s->done, (off_t)(s->off + s->done));

			if (n < 0 && (errno == EINTR || (errno == EINVAL && s->direct))) {
				c->direct_failed = c->direct_failed || errno == EINVAL;
				continue;
			}
			if (n <= 0) {
				progress_interrupt(c->p);
				return log_errno(n < 0 ? errno : EIO, "cannot write %s at offset %" PRIu64, c->t->path,
						 s->off + s->done);
			}
			s->done += (size_t)n;
		}
		c->p->done += s->len;
		progress_draw(c->p, false);
	}
	return 0;
}

static int copy_raw(const struct populate_source *src, struct target *t, int src_fd, struct extents *e,
		    bool skip_zeros, struct progress *p)
{
	unsigned depth = populate_tuning.queue_depth ? populate_tuning.queue_depth : 1;
	size_t buffer_size = align_up(populate_tuning.buffer_size ? populate_tuning.buffer_size : 1 << 20, 4096);
	struct copy c = {
		.src_path = src->path, .src_fd = src_fd, .vsize = src->virtual_size, .t = t, .e = e,
		.buffer_size = buffer_size, .skip_zeros = skip_zeros, .p = p,
	};
	bool uring = populate_tuning.engine == POPULATE_ENGINE_URING ||
		     (populate_tuning.engine == POPULATE_ENGINE_AUTO && !t->tmpfs);
	bool no_ring = !uring;
	struct slot *slots;
	char *mem;
	int r = 0;

	mem = mmap(NULL, depth * buffer_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return log_errno(errno, "cannot allocate %u copy buffers of %zu bytes", depth, buffer_size);
	slots = xcalloc(depth, sizeof(*slots));
	for (unsigned i = 0; i < depth; i++)
		slots[i].buf = mem + i * buffer_size;
	progress_begin(p, "copying", e->bytes);
	if (uring)
		r = copy_uring(&c, slots, depth, buffer_size, &no_ring);
	if (no_ring)
		r = copy_sync(&c, &slots[0]);
	free(slots);
	munmap(mem, depth * buffer_size);
	if (r < 0)
		return r;
	/* For a block device this is what makes the writes durable: it flushes the device's page cache and its
	 * volatile write cache. */
	if (fdatasync(t->fd) < 0)
		return log_errno(errno, "cannot flush %s", t->path);
	return 0;
}

static int populate_raw(const struct populate_source *src, const struct populate_target *dst, int src_fd,
			struct target *t, struct progress *p)
{
	struct extents e;
	int r;

	/* Readahead sized for a streaming read rather than for random access. */
	posix_fadvise(src_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	r = source_extents(src_fd, src->path, src->virtual_size, t, &e);
	if (r < 0)
		return r;
	if (!dst->zeroed)
		r = zero_gaps(t, &e, 0, t->size, p);
	if (r >= 0)
		r = copy_raw(src, t, src_fd, &e, dst->zeroed, p);
	if (r >= 0)
		progress_end(p);
	free(e.v);
	return r;
}

static int populate_convert(struct populate_source *src, const struct populate_target *dst, struct target *t,
			    struct progress *p, const struct populate_sandbox *sb)
{
	struct convert_target ct = { .dst = dst, .blockdev = t->blockdev, .direct = t->dfd >= 0 };
	long long start = monotonic_ms();
	int r;

	/* qemu-img zeroes the holes inside the image itself (no --target-is-zero); the disk past the image is ours. The
	 * size of an image in neither raw nor qcow2 is known only later (qemu-img info): the whole disk is zeroed. */
	if (!dst->zeroed && src->virtual_size < t->size) {
		struct extents image = { 0 };

		if (src->virtual_size)
			extents_add(&image, 0, src->virtual_size);
		r = zero_gaps(t, &image, 0, t->size, p);
		free(image.v);
		if (r < 0)
			return r;
		progress_end(p);
		/* qemu-nbd may open with O_DIRECT: the zeros written through the page cache must be on the device. */
		if (fdatasync(t->fd) < 0)
			return log_errno(errno, "cannot flush %s", t->path);
	}
	/* qemu-img's own progress goes to a pipe we read only at its end: say what is happening, then how it went. */
	if (p->enabled)
		fprintf(stderr, "vmlaunch: %s: converting the %s image %s with qemu-img...", dst->path, src->format,
			src->path);
	/* qemu-nbd opens the device itself. */
	target_close(t);
	r = image_convert(src, &ct, sb);
	if (p->enabled && !r)
		fprintf(stderr, " %.2f GiB in %.1f s\n", (double)src->virtual_size / GIB, (double)(monotonic_ms() - start) / 1000.0);
	else if (p->enabled)
		fputc('\n', stderr);
	return r;
}

int populate_copy(struct populate_source *src, const struct populate_target *dst, const struct populate_sandbox *sb,
		  bool progress)
{
	bool raw = !strcmp(src->format, "raw");
	struct progress p = { .enabled = progress, .target = dst->path };
	struct target t = { .fd = -1, .dfd = -1 };
	struct stat src_st;
	int src_fd, r;

	if (src->virtual_size > dst->size)
		return log_error("cannot populate %s from %s: the image's virtual size (%" PRIu64 " bytes) is larger "
				 "than the disk (%" PRIu64 " bytes); make the disk at least as large as the image",
				 dst->path, src->path, src->virtual_size, dst->size);
	src_fd = open(src->path, O_RDONLY | O_CLOEXEC);
	if (src_fd < 0)
		return log_errno(errno, "cannot open the base image %s", src->path);
	if (fstat(src_fd, &src_st) < 0) {
		r = log_errno(errno, "cannot stat %s", src->path);
		goto out;
	}
	/* For qemu-img the O_DIRECT open is only a probe: it decides qemu-nbd's cache mode. */
	r = target_open(dst, &src_st, raw ? populate_tuning.direct : true, &p, &t);
	if (r < 0)
		goto out;
	r = raw ? populate_raw(src, dst, src_fd, &t, &p) : populate_convert(src, dst, &t, &p, sb);
out:
	progress_interrupt(&p);
	target_close(&t);
	close(src_fd);
	return r;
}

int populate_copy_raw(const char *from, const char *to, unsigned flags)
{
	struct populate_source src = { .path = (char *)from, .format = (char *)"raw" };
	struct populate_target dst = { .path = to, .zeroed = flags & (POPULATE_RAW_CREATE | POPULATE_RAW_ZEROED) };
	struct stat st;
	int fd = open(from, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return log_errno(errno, "cannot open %s", from);
	if (fstat(fd, &st) < 0)
		r = log_errno(errno, "cannot stat %s", from);
	else if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &src.virtual_size) < 0)
		r = log_errno(errno, "cannot read the size of %s", from);
	else if (!S_ISBLK(st.st_mode))
		src.virtual_size = (uint64_t)st.st_size;
	close(fd);
	if (r < 0)
		return r;
	dst.size = src.virtual_size;
	if (flags & POPULATE_RAW_CREATE) {
		/* truncated: the copy is exactly the source's length, holes where the source has them or reads zeros */
		fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return log_errno(errno, "cannot create %s", to);
		close(fd);
	}
	return populate_copy(&src, &dst, &(struct populate_sandbox){ 0 }, false);
}
