/* The snapshot manifest: what it accepts as the same machine (another VM name, another state dir) and what not. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_helpers.h"
#include "snapshot_manifest.h"

struct machine {
	struct vm_config cfg;
	struct plan plan;
	struct qemu_cmdline c;
};

/* A machine as qemu_argv would describe it, for VM `name`: its state dir in its argv, as a real one's is. */
static void machine(struct machine *m, const char *dir, const char *name, const char *memory)
{
	memset(m, 0, sizeof(*m));
	m->cfg.name = xstrdup(name);
	m->cfg.kernel = xasprintf("%s/vmlinux", dir);
	m->plan.cfg = &m->cfg;
	m->plan.state_dir = xasprintf("/run/vmlaunch/%s", name);
	strv_push(&m->c.argv, "/bin/sh"); /* stands for qemu: a binary that exists */
	strv_push_many(&m->c.argv, "-name", NULL);
	strv_pushf(&m->c.argv, "%s,debug-threads=on", name);
	strv_push_many(&m->c.argv, "-m", memory, "-fw_cfg", NULL);
	strv_pushf(&m->c.argv, "name=opt/org.vmlaunch/argv,file=/run/vmlaunch/%s/argv", name);
}

static void machine_free(struct machine *m)
{
	free(m->cfg.name);
	free(m->cfg.kernel);
	free(m->plan.state_dir);
	strv_free(&m->c.argv);
}

static char *saved_snapshot(const char *dir, struct machine *m)
{
	char *snap = xasprintf("%s/snap", dir), *state = xasprintf("%s/snap/state", dir);
	int fd;

	assert_int_equal(mkdir(snap, 0700), 0);
	fd = open(state, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "qemu's stream", 13), 13);
	close(fd);
	free(state);
	assert_int_equal(snapshot_manifest_write(snap, &m->plan, &m->c, "7.2.22 (Debian)"), 0);
	return snap;
}

static int check(const char *snap, struct machine *m)
{
	char *version = NULL;
	int r = snapshot_manifest_check(snap, &m->plan, &m->c, &version);

	if (r == 0)
		assert_string_equal(version, "7.2.22 (Debian)");
	free(version);
	return r;
}

static void test_same_machine_under_another_name_matches(void **state)
{
	char *dir = test_dir(), *snap;
	struct machine saved, other;
	(void)state;

	machine(&saved, dir, "ci", "512M");
	snap = saved_snapshot(dir, &saved);
	assert_int_equal(check(snap, &saved), 0);
	machine(&other, dir, "ci-7", "512M"); /* the run's own parts differ: its name and state dir */
	assert_int_equal(check(snap, &other), 0);
	machine_free(&other);
	machine(&other, dir, "ci", "256M");
	assert_int_equal(check(snap, &other), -EINVAL);
	machine_free(&other);
	machine_free(&saved);
	free(snap);
	free(dir);
}

static void test_changed_state_kernel_or_manifest_is_refused(void **state)
{
	char *dir = test_dir(), *snap, *path;
	struct machine m;
	FILE *f;
	(void)state;

	machine(&m, dir, "ci", "512M");
	snap = saved_snapshot(dir, &m);
	/* a flipped byte in the state */
	path = xasprintf("%s/state", snap);
	f = fopen(path, "r+");
	fputc('Q', f);
	fclose(f);
	assert_int_equal(check(snap, &m), -EINVAL);
	f = fopen(path, "r+");
	fputc('q', f);
	fclose(f);
	assert_int_equal(check(snap, &m), 0);
	free(path);
	/* the kernel rewritten (another size) */
	f = fopen(m.cfg.kernel, "a");
	fputs("new", f);
	fclose(f);
	assert_int_equal(check(snap, &m), -EINVAL);
	free(snap);
	machine_free(&m);
	free(dir);
}

static void test_manifest_without_its_end_is_incomplete(void **state)
{
	char *dir = test_dir(), *snap, *path;
	struct machine m;
	struct stat st;
	(void)state;

	machine(&m, dir, "ci", "512M");
	snap = saved_snapshot(dir, &m);
	path = xasprintf("%s/manifest", snap);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 4), 0); /* "end\n" cut off */
	assert_int_equal(check(snap, &m), -EINVAL);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(check(snap, &m), -EINVAL);
	free(path);
	free(snap);
	machine_free(&m);
	free(dir);
}

/* A machine with a zram disk and an ephemeral RBD disk, as qemu_argv gives them when qemu opens them itself (qemu as
 * root): the device and the image are each run's own (/dev/zramN; vmlaunch-NAME-DISK). */
struct disks {
	struct disk_config disk[2];
	struct storage_target target[2];
	struct disk_plan plan[2];
};

static void with_disks(struct machine *m, struct disks *d, const char *zram, const char *image)
{
	memset(d, 0, sizeof(*d));
	d->disk[0] = (struct disk_config){ .name = "scratch", .backend = BACKEND_ZRAM };
	d->disk[1] = (struct disk_config){ .name = "d", .backend = BACKEND_RBD, .ephemeral = true };
	d->target[0] = (struct storage_target){ .driver = DRIVER_HOST_DEVICE, .filename = (char *)zram };
	d->target[1].driver = DRIVER_RBD;
	strv_push_many(&d->target[1].driver_opts, "pool", "rbd", "image", image, NULL);
	for (int i = 0; i < 2; i++) {
		d->plan[i].cfg = &d->disk[i];
		d->plan[i].target = &d->target[i];
		snprintf(d->plan[i].node, sizeof(d->plan[i].node), "disk-%s", d->disk[i].name);
	}
	m->cfg.disks = d->disk;
	m->cfg.n_disks = 2;
	m->plan.disks = d->plan;
	m->plan.n_disks = 2;
	strv_push(&m->c.argv, "-blockdev");
	strv_pushf(&m->c.argv, "driver=host_device,node-name=disk-scratch,filename=%s,cache.direct=on", zram);
	strv_push(&m->c.argv, "-blockdev");
	strv_pushf(&m->c.argv, "driver=rbd,node-name=disk-d,pool=rbd,image=%s,cache.direct=on", image);
}

static void test_a_run_s_own_device_and_image_match(void **state)
{
	char *dir = test_dir(), *snap;
	struct machine saved, other;
	struct disks ds, dother;
	(void)state;

	machine(&saved, dir, "ci", "512M");
	with_disks(&saved, &ds, "/dev/zram3", "vmlaunch-ci-d");
	snap = saved_snapshot(dir, &saved);
	/* checked before the disks are made: zram's number is not known yet */
	machine(&other, dir, "ci-7", "512M");
	with_disks(&other, &dother, "/dev/zram?", "vmlaunch-ci-7-d");
	assert_int_equal(check(snap, &other), 0);
	strv_free(&dother.target[1].driver_opts);
	machine_free(&other);
	/* another image the config names is another disk */
	machine(&other, dir, "ci", "512M");
	with_disks(&other, &dother, "/dev/zram?", "vmlaunch-ci-d");
	free(other.c.argv.v[other.c.argv.n - 1]);
	other.c.argv.v[other.c.argv.n - 1] = xstrdup("driver=rbd,node-name=disk-d,pool=rbd,image=other,cache.direct=on");
	assert_int_equal(check(snap, &other), -EINVAL);
	strv_free(&dother.target[1].driver_opts);
	machine_free(&other);
	strv_free(&ds.target[1].driver_opts);
	machine_free(&saved);
	free(snap);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_machine_under_another_name_matches),
		cmocka_unit_test(test_changed_state_kernel_or_manifest_is_refused),
		cmocka_unit_test(test_manifest_without_its_end_is_incomplete),
		cmocka_unit_test(test_a_run_s_own_device_and_image_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
