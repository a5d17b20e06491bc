/* The journal syncs only records whose acquisition outlives a host crash; a leftover state dir is emptied whole. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "journal.h"
#include "state_dir.h"
#include "strv.h"

/* Interposes libc's: the journal's calls land here, counted, and still sync. */
static int syncs;
int fdatasync(int fd)
{
	syncs++;
	return (int)syscall(SYS_fdatasync, fd);
}

static char *temp_dir(void)
{
	char tmpl[] = "/tmp/vmlaunch-unit-XXXXXX";

	if (!mkdtemp(tmpl))
		abort();
	return xstrdup(tmpl);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = xcalloc(4096, 1);

	assert_non_null(f);
	assert_true(fread(buf, 1, 4095, f) > 0);
	fclose(f);
	return buf;
}

static void test_only_durable_records_are_synced(void **state)
{
	char *dir = temp_dir(), *text, *cmd;
	struct journal j = { .fd = -1 };

	(void)state;
	assert_int_equal(journal_create(&j, dir), 0);
	syncs = 0;
	/* gone with the host: a process, a mount, files in the state dir */
	assert_int_equal(journal_add(&j, "kill", "1:2"), 0);
	assert_int_equal(journal_add(&j, "umount", "/x/tmpfs-d"), 0);
	assert_int_equal(journal_add(&j, "rmdir", "/x/tmpfs-d"), 0);
	assert_int_equal(journal_add(&j, "unlink", "/x/argv"), 0);
	assert_int_equal(syncs, 0);
	/* outlives it: an LVM volume; and a verb nobody registered is treated as durable */
	assert_int_equal(journal_add(&j, "lvm-remove", "vg/lv"), 0);
	assert_int_equal(syncs, 1);
	assert_int_equal(journal_add(&j, "no-such-verb", "x"), 0);
	assert_int_equal(syncs, 2);
	/* every record is in the file, in order, synced or not */
	text = slurp(j.path);
	assert_string_equal(text, "kill 1:2\numount /x/tmpfs-d\nrmdir /x/tmpfs-d\nunlink /x/argv\nlvm-remove vg/lv\n"
				  "no-such-verb x\n");
	journal_close(&j);
	free(text);
	cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
}

static void put(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_true(fd >= 0);
	close(fd);
}

/* DIR/LEAF made as a directory (dir = 1) or an empty file. */
static void make_in(const char *dir, const char *leaf, int is_dir)
{
	char *p = xasprintf("%s/%s", dir, leaf);

	if (is_dir)
		assert_int_equal(mkdir(p, 0700), 0);
	else
		put(p);
	free(p);
}

/* /run on disk after a power loss: a state dir with nested files and no journal lines for them. The next run
 * removes the tree, never what a symlink in it points to. */
static void test_leftover_state_dir_is_emptied_whole(void **state)
{
	char *root = temp_dir(), *outside = temp_dir(), *p, *cmd;
	struct state_dir s = { .lock_fd = -1 };
	struct stat st;

	(void)state;
	make_in(root, "vm", 1);
	make_in(root, "vm/share", 1);
	make_in(root, "vm/share/deeper", 1);
	make_in(root, "vm/share/deeper/file", 0);
	make_in(outside, "keep", 0);
	p = xasprintf("%s/vm/share/link", root);
	assert_int_equal(symlink(outside, p), 0);
	free(p);

	assert_int_equal(state_dir_acquire(&s, root, "vm"), 0);
	p = xasprintf("%s/vm/share", root);
	assert_int_equal(lstat(p, &st), -1); /* gone, with what was in it */
	free(p);
	p = xasprintf("%s/keep", outside);
	assert_int_equal(lstat(p, &st), 0); /* the symlink went, not its target's files */
	free(p);
	assert_int_equal(state_dir_release(&s), 0);
	cmd = xasprintf("rm -rf %s %s", root, outside);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(root);
	free(outside);
}

/* A mount still in a leftover state dir is never entered, even a bind mount from the same filesystem (same
 * st_dev): the run refuses, and what the mount shows is untouched. */
static void test_leftover_state_dir_is_not_emptied_through_a_bind_mount(void **state)
{
	char *root = temp_dir(), *outside = temp_dir(), *p, *mnt, *cmd;
	struct state_dir s = { .lock_fd = -1 };
	struct stat st;

	(void)state;
	make_in(root, "vm", 1);
	make_in(root, "vm/share", 1);
	mnt = xasprintf("%s/vm/share", root);
	make_in(outside, "keep", 0);
	if (mount(outside, mnt, NULL, MS_BIND, NULL) < 0) {
		free(mnt);
		skip(); /* not root */
	}
	assert_true(state_dir_acquire(&s, root, "vm") < 0);
	p = xasprintf("%s/keep", outside);
	assert_int_equal(lstat(p, &st), 0);
	free(p);
	state_dir_release(&s);
	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
	cmd = xasprintf("rm -rf %s %s", root, outside);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(mnt);
	free(root);
	free(outside);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_only_durable_records_are_synced),
		cmocka_unit_test(test_leftover_state_dir_is_emptied_whole),
		cmocka_unit_test(test_leftover_state_dir_is_not_emptied_through_a_bind_mount),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
