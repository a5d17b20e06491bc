/* The undo journal: one fsynced line per acquisition in STATE_DIR/journal; teardown replays it backwards. */
#ifndef VMLAUNCH_JOURNAL_H
#define VMLAUNCH_JOURNAL_H

struct journal {
	int fd;
	char *path;
};

/* Undo verbs. Each undo is idempotent: replaying a journal twice, or one whose last step never happened, is harmless.
 * An undo may be recorded just before its acquisition when undoing something that does not exist yet is a no-op
 * (unlink, rmdir, umount of our own mount point); otherwise right after it. */
#define UNDO_UNLINK "unlink" /* PATH */
#define UNDO_RMDIR "rmdir"   /* PATH */
#define UNDO_UMOUNT "umount" /* PATH: lazy unmount of a mount vmlaunch made */
#define UNDO_KILL "kill"       /* PID:STARTTIME: qemu, killed and waited for if still that process */
#define UNDO_HUGEPAGES "hugepages" /* numa|global:NODE:KIB:COUNT: the pool shrinks by what vmlaunch added */
#define UNDO_ZRAM_REMOVE "zram-remove"   /* N: hot_remove /dev/zramN */
#define UNDO_BRD_UNLOAD "brd-unload"     /* brd: rmmod brd (recorded only when vmlaunch loaded it) */
#define UNDO_BRD_DISCARD "brd-discard"   /* /dev/ramN of a built-in brd: give its RAM back */
#define UNDO_LVM_REMOVE "lvm-remove"     /* VG/LV: lvremove (recorded only for volumes vmlaunch created) */
#define UNDO_RBD_REMOVE "rbd-remove"     /* an image vmlaunch created or cloned for an ephemeral disk (storage/rbd.c) */
#define UNDO_LVM_DEACTIVATE "lvm-deactivate" /* VG/LV: lvchange -an (a volume vmlaunch activated) */

/* Creates STATE_DIR/journal (0600, refusing to follow a symlink). */
int journal_create(struct journal *j, const char *state_dir);
/* Appends "VERB ARG" and fsyncs before returning, so a crash right after still finds the record. */
int journal_add(struct journal *j, const char *verb, const char *arg);
/* Runs every undo in reverse order; returns 0 or the first error (all undos are attempted regardless). */
int journal_replay(const char *path);
void journal_close(struct journal *j);

/* Percent-encoding of journal arguments, exposed for tests. */
char *journal_encode(const char *arg);
char *journal_decode(const char *enc);

#endif
