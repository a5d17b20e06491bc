/* Backend "brd": /dev/ramN from the brd module, loaded by vmlaunch with the sizes it needs and unloaded at exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "journal.h"
#include "log.h"
#include "storage.h"
#include "strv.h"

/*
 * brd's devices all have one size, fixed when the module loads, and keep their data while nobody holds them open, so
 * a brd that someone else loaded may hold their data in a device that looks free. vmlaunch therefore only uses brd
 * when it loads the module itself (rd_nr = the VM's brd disks, rd_size = the largest), and unloads it at exit. A
 * brd built into the kernel cannot be reloaded: it is used only when its fixed size is large enough, each device is
 * claimed with O_EXCL, zeroed before use and discarded (its RAM freed) at exit.
 */

static bool loaded_by_us; /* one module load serves every brd disk of the VM */

static bool brd_builtin(void)
{
	/* A built-in module has a /sys/module entry but no initstate. */
	return access("/sys/module/brd", F_OK) == 0 && access("/sys/module/brd/initstate", F_OK) < 0;
}

static unsigned long long brd_builtin_bytes(void)
{
	FILE *f = fopen("/sys/module/brd/parameters/rd_size", "re");
	unsigned long long kib = 0;

	if (f) {
		if (fscanf(f, "%llu", &kib) != 1)
			kib = 0;
		fclose(f);
	}
	return kib * 1024;
}

/* The modprobe vector, pure, exposed for unit tests: rd_size is in KiB; max_part=0: the VM partitions its disk. */
void brd_modprobe_argv(unsigned count, unsigned long long max_bytes, struct strv *out)
{
	strv_push_many(out, "modprobe", "brd", NULL);
	strv_pushf(out, "rd_nr=%u", count);
	strv_pushf(out, "rd_size=%llu", (max_bytes + 1023) / 1024);
	strv_push(out, "max_part=0");
}

static int brd_unload(const char *unused, const char *state_dir)
{
	char *argv[] = { "rmmod", "brd", NULL };

	(void)unused;
	(void)state_dir;
	if (access("/sys/module/brd", F_OK) < 0)
		return 0; /* already unloaded (a replay), or the load never happened */
	return command_must(argv, "cannot unload brd: its RAM stays allocated until `rmmod brd` succeeds");
}
JOURNAL_UNDO(brd_unload, "brd-unload", brd_unload)

/* Discard frees brd's RAM where the kernel's brd supports it; where it does not, `zero` falls back to writing zeros
 * so an earlier user's data is never visible. */
static int brd_discard(const char *dev, bool zero)
{
	int fd = open(dev, O_WRONLY | O_CLOEXEC);
	uint64_t range[2] = { 0, 0 };
	int r = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : log_errno(errno, "cannot open %s", dev);
	if (ioctl(fd, BLKGETSIZE64, &range[1]) < 0)
		r = log_errno(errno, "cannot size %s", dev);
	else if (ioctl(fd, BLKDISCARD, range) < 0 && (!zero || ioctl(fd, BLKZEROOUT, range) < 0))
		r = zero ? log_errno(errno, "cannot zero %s", dev) : 0;
	close(fd);
	return r;
}

static int brd_discard_undo(const char *dev, const char *state_dir)
{
	unsigned n;
	char tail;

	(void)state_dir;
	if (sscanf(dev, "/dev/ram%u%c", &n, &tail) != 1)
		return log_errno(EBADMSG, "journal: brd-discard of \"%s\": expected /dev/ramN", dev);
	return brd_discard(dev, false);
}
JOURNAL_UNDO(brd_discard, "brd-discard", brd_discard_undo)

static int brd_describe(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t)
{
	const struct vm_config *cfg = ctx->cfg;
	unsigned index = 0;

	for (size_t i = 0; i < cfg->n_disks && &cfg->disks[i] != d; i++)
		index += cfg->disks[i].backend == BACKEND_BRD;
	if (brd_builtin()) {
		if (brd_builtin_bytes() < d->size)
			return log_errno(ENOSPC,
					 "%s: [disk %s] brd is built into this kernel with %llu-byte devices, smaller "
					 "than size = %llu; expected a smaller size, or backend = zram",
					 config_at(cfg, d->size_line), d->name, brd_builtin_bytes(),
					 (unsigned long long)d->size);
	} else if (access("/sys/module/brd", F_OK) == 0) {
		return log_errno(EBUSY,
				 "%s: [disk %s] brd is already loaded by someone else; vmlaunch uses brd only when it "
				 "loads it (rmmod brd, or use backend = zram)",
				 config_at(cfg, d->backend_line), d->name);
	}
	t->driver = DRIVER_HOST_DEVICE;
	t->filename = xasprintf("/dev/ram%u", index);
	t->format = FORMAT_RAW;
	t->direct_ok = true;
	t->ephemeral = true;
	t->ram_backed = true;
	t->readonly = d->readonly;
	t->zeroed = !brd_builtin();
	return 0;
}

static int load_module(const struct vm_config *cfg, struct journal *j)
{
	struct strv argv = STRV_INIT;
	unsigned long long max = 0;
	unsigned count = 0;
	int r;

	for (size_t i = 0; i < cfg->n_disks; i++)
		if (cfg->disks[i].backend == BACKEND_BRD) {
			count++;
			if (cfg->disks[i].size > max)
				max = cfg->disks[i].size;
		}
	/* The intent first: the undo unloads brd only if it is loaded, and describe refused a brd someone else loaded. */
	r = journal_add(j, "brd-unload", "brd");
	if (r < 0)
		return r;
	brd_modprobe_argv(count, max, &argv);
	r = command_must(argv.v, "brd is not available on this kernel (use backend = zram)");
	strv_free(&argv);
	if (r < 0)
		return r;
	loaded_by_us = true;
	return 0;
}

static int brd_prepare(const struct storage_context *ctx, const struct disk_config *d, struct storage_target *t,
		       struct journal *j)
{
	int r, fd;

	if (!loaded_by_us && !brd_builtin()) {
		r = load_module(ctx->cfg, j);
		if (r < 0)
			return r;
	}
	for (int i = 0; i < 200 && access(t->filename, F_OK) < 0; i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	/* O_EXCL on a block device claims it: fails with EBUSY if anything else holds it. */
	fd = open(t->filename, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "disk \"%s\": cannot claim %s", d->name, t->filename);
	close(fd);
	if (brd_builtin()) {
		/* Someone's old data may be there: discard it now (brd reads discarded sectors as zeros), and again at exit
		 * so the RAM goes back. */
		r = journal_add(j, "brd-discard", t->filename);
		if (r < 0)
			return r;
		r = brd_discard(t->filename, true);
		if (r < 0)
			return r;
		t->zeroed = true;
	}
	return 0;
}

const struct storage_backend storage_brd = {
	.describe = brd_describe,
	.prepare = brd_prepare,
};
