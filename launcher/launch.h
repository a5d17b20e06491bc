/* One launch of a planned VM: everything acquired in journal order, qemu run, everything undone. */
#ifndef VMLAUNCH_LAUNCH_H
#define VMLAUNCH_LAUNCH_H

struct plan;
struct snapshot;
struct storage_target;
struct strv;
struct vm_config;

/* Acquires, runs (or saves the snapshot) and undoes. Returns vmlaunch's exit status. */
int launch(const struct vm_config *cfg, struct plan *plan, struct storage_target *targets,
	   const struct strv *command, struct snapshot *snap);

#endif
