/* What vmlaunch tells the bundled guest before it boots: the fw_cfg files of guest_protocol.h, in the state dir. */
#ifndef VMLAUNCH_GUEST_FILES_H
#define VMLAUNCH_GUEST_FILES_H

#include "plan.h"
#include "strv.h"

/* Writes every file plan->guest_files names (0600, never over an existing file): the command's argv and its
 * environment as NUL-terminated strings, its user, the shares as "TAG MODE MOUNTPOINT" lines. */
int guest_files_write(const struct plan *p, const struct strv *command);
/* A guest restored from a snapshot (it waits on its status port): the same files as "file NAME BYTES" records, then
 * a fresh random seed and the host's time for it to take before the command runs, and "run". */
int guest_files_send(const struct plan *p, int status_fd);

#endif
