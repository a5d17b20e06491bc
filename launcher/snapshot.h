/* Warm start: save a booted bundled guest at its ready point (vmlaunch --snapshot), restore it for each command. */
#ifndef VMLAUNCH_SNAPSHOT_H
#define VMLAUNCH_SNAPSHOT_H

#include <stdbool.h>

#include "config.h"
#include "journal.h"
#include "plan.h"
#include "qemu_argv.h"
#include "run.h"

struct snapshot {
	char *dir;          /* [vm] snapshot, or CACHE/snapshots/NAME */
	bool save;          /* --snapshot: boot, save here, exit */
	bool restore;       /* a command run with a snapshot in dir */
	char *qemu_version; /* restore: the version the manifest names, checked against qemu's greeting */
	int state_fd;       /* restore: the fd number qemu finds the state file on */
	char *tmp;          /* save: DIR.tmp-PID, renamed to dir when complete */
	bool shared;        /* snapshot-memory = shared: guest RAM in the file `ram`, left out of the stream */
	char *ram;          /* ... that file: tmp/ram while saving, dir/ram when restoring */
};

/* Where CFG's snapshot lives; NULL when there is no cache directory to default to. */
char *snapshot_dir(const struct vm_config *cfg);
/* Whether DIR holds a snapshot (complete or not: an incomplete one is refused, never booted over silently). */
bool snapshot_exists(const char *dir);
/* What a snapshot cannot hold yet, refused with the reason before anything is touched: -EINVAL. */
int snapshot_supported(const struct vm_config *cfg);
/* Fills in where a save or a restore keeps its files (tmp, ram) for the plan. */
void snapshot_paths(struct snapshot *s, const struct vm_config *cfg, bool save, bool restore);
/* What the plan takes from the snapshot: the RAM file (shared memory), and the reason --explain gives for it. */
void snapshot_plan(const struct snapshot *s, struct plan *p);
/* Save: the temporary directory (journaled first) and, with shared memory, the RAM file qemu maps; before qemu. */
int snapshot_prepare(const struct snapshot *s, const struct plan *p, struct journal *journal);
/* Restore: every ephemeral file disk's fresh overlay becomes a copy of its frozen one, every RAM disk or LV is filled
 * from its frozen image, every ephemeral RBD disk is made as a clone of its frozen image (journaled). 0 or -errno. */
int snapshot_restore_disks(const struct snapshot *s, const struct plan *p, struct journal *journal);
/* Restore: a UEFI guest's fresh variable store becomes a copy of the one saved. 0 or -errno. */
int snapshot_restore_varstore(const struct snapshot *s, const struct plan *p);
/* Restore: checks the manifest against the machine `c` would start and the state's digest (-EINVAL: exit 2). */
int snapshot_verify(struct snapshot *s, const struct plan *p, const struct qemu_cmdline *c);
/* Restore: qemu waits for the saved state (-incoming defer), which snapshot_load hands it on an inherited fd. */
void snapshot_restore_argv(struct snapshot *s, const struct plan *p, struct qemu_cmdline *c);
/* Restore: the running qemu is the version the snapshot was made by (-EINVAL otherwise). */
int snapshot_check_qemu(const struct snapshot *s, struct qmp *q);
/* Restore: migrate-incoming from the state file's fd, and waits until qemu has loaded it. The VM was stopped when saved, so it stays paused after the
 * load whatever -S says (qemu restores the saved run state): run_supervise's cont starts it. 0 or -errno. */
int snapshot_load(const struct snapshot *s, struct qmp *q);
/* Save: lets the guest boot to "ready", stops it, streams its state into a temporary directory, writes the manifest
 * and renames the directory into place. Returns vmlaunch's exit status. */
int snapshot_save(const struct snapshot *s, const struct plan *p, const struct qemu_cmdline *c, struct vm_process *vm,
		  int sigfd, struct journal *journal);
void snapshot_free(struct snapshot *s);

#endif
