/* A snapshot's manifest: what the saved state is valid for (qemu, argv, the files it reads) and the state's digest. */
#ifndef VMLAUNCH_SNAPSHOT_MANIFEST_H
#define VMLAUNCH_SNAPSHOT_MANIFEST_H

#include <json-c/json.h>

#include "plan.h"
#include "qemu_argv.h"

#define SNAPSHOT_MANIFEST "manifest"
#define SNAPSHOT_STATE "state" /* qemu's migration stream */
/* A UEFI guest's variable store as it was at the save: each restore writes to its own copy at the path the command
 * line names (qemu also writes the saved flash back there when the restored VM runs: hw/block/pflash_cfi01.c) */
#define SNAPSHOT_UEFI_VARS "uefi-vars.fd"

/* Writes DIR/manifest for the machine `c` (qemu_version from its QMP greeting; the state file DIR/state complete
 * and synced), fsynced. 0 or -errno (logged). */
int snapshot_manifest_write(const char *dir, const struct plan *p, const struct qemu_cmdline *c,
			    const char *qemu_version);

/* Checks DIR/manifest against this run's machine `c` (built without -incoming), the files it reads and the state
 * file's size and SHA-256. 0; -EINVAL when the snapshot is not for this machine, incomplete or corrupt (logged with
 * the reason: exit 2); another -errno when it cannot be read. *qemu_version gets the version it was made by. */
int snapshot_manifest_check(const char *dir, const struct plan *p, const struct qemu_cmdline *c, char **qemu_version);

/* An ephemeral file disk: its overlay at the ready point is kept as DIR/disk-NAME.qcow2, and each restored run
 * writes to a copy of it (same path, same chain, so the command line and the device state stay the same). A tmpfs
 * disk: its whole image, DIR/disk-NAME.raw, copied onto the run's fresh one. */
bool snapshot_disk_frozen(const struct disk_config *d);
/* Where DIR keeps that disk's frozen image (allocated). */
char *snapshot_frozen_path(const char *dir, const struct disk_config *d);

/* "7.2.22 (Debian 1:7.2+dfsg-7)" from a QMP greeting; NULL when it has none. */
char *snapshot_qemu_version(struct json_object *greeting);

#endif
