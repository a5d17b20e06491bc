/* vmlaunch --list and --status NAME: what runs, from the state dirs and from qemu itself over QMP. */
#ifndef VMLAUNCH_STATUS_H
#define VMLAUNCH_STATUS_H

#include <stdbool.h>

#include "strv.h"

struct plan;

/* Written once qemu runs: STATE_DIR/info, "key value" lines that --list shows. */
int status_write_info(const struct plan *p, const char *state_dir);
/* Prints one line per running VM (or a JSON array of objects). Returns 0. */
int status_list(const char *root, bool json);
/* NAME's pid, uptime, command and disks by their config names, and its run state and vCPUs from its qemu over
 * qmp.sock (or one JSON object). -ENOENT when NAME is not running. */
int status_show(const char *root, const char *name, bool json);
/* vmlaunch --stop NAME: SIGTERM to NAME's vmlaunch (the power button, then quit after its shutdown-timeout), then
 * waits up to wait_ms for it to finish its teardown; a second SIGTERM (quit) when the guest ignores the button. */
int status_stop(const char *root, const char *name, int wait_ms);
/* vmlaunch --ssh NAME [-- COMMAND]: execs OpenSSH's client to NAME's forwarded ssh port as its cloud-init user, with
 * its key and a known_hosts file in its state dir. Returns only on failure (-errno, logged). */
int status_ssh(const char *root, const char *name, const struct strv *command);

#endif
