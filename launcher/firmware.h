/* Which firmware boots the guest: SeaBIOS, or OVMF found through qemu's firmware descriptors (as libvirt and vmspawn
 * do), with its variable store. */
#ifndef VMLAUNCH_FIRMWARE_H
#define VMLAUNCH_FIRMWARE_H

#include <stdbool.h>

#include "config.h"

struct firmware {
	bool uefi;
	char *code;          /* the read-only executable */
	char *vars_template; /* the variable store's template */
	bool secure_boot;    /* needs SMM and a secure flash */
	char *description;
};

/* Reads /etc/qemu/firmware and /usr/share/qemu/firmware (a name in the first hides the same name in the second;
 * by name order, as the descriptors' spec says) for an x86_64 q35 UEFI flash firmware, with Secure Boot or without.
 * 0 and *out; -ENOENT when none is installed (logged by the caller, which knows whether it was asked for). */
int firmware_find(const char *const *dirs, bool secure_boot, struct firmware *out);
void firmware_free(struct firmware *f);


struct journal;
/* The variable store at PATH, copied from the template when it does not exist yet; a copy in the state dir is
 * journaled (a persistent nvram = is the user's and stays). */
int firmware_vars_prepare(const char *template, const char *path, bool in_state_dir, struct journal *j);

#endif
