/* [cloud-init]: a NoCloud seed volume (meta-data, user-data) so a cloud image boots with the user's key and name. */
#ifndef VMLAUNCH_CLOUD_INIT_H
#define VMLAUNCH_CLOUD_INIT_H

#include "plan.h"

struct journal;

/* The user-data vmlaunch writes when none is given: #cloud-config with the user, its keys and the shares' mounts.
 * Pure (keys are their files' contents); exposed for tests. */
char *cloud_init_user_data(const struct vm_config *cfg, const struct strv *keys);
/* user-data = FILE: a #cloud-config FILE with keys to add becomes a MIME multipart (cloud-init's own format for
 * several parts): FILE as written, then a cloud-config part giving the default user the keys, merged by cloud-init
 * so that lists append (the file's own keys stay). NULL: FILE is used as written (not #cloud-config, no keys, or
 * merge-keys = no). Pure; exposed for tests. */
char *cloud_init_merge_user_data(const char *file_text, const struct strv *keys);
/* network-config (version 2) when a tap NIC has a static address: that NIC gets its address (and default route),
 * every other NIC with a backend DHCP, each matched by its MAC (a seed's network-config replaces cloud-init's own
 * DHCP fallback, so the others must be named too). NULL when no NIC has an address. Pure; exposed for tests. */
char *cloud_init_network_config(const struct plan *p);
/* Writes the seed's files and builds plan->seed (a vfat volume labelled CIDATA, with mkfs.vfat and mcopy), each
 * journaled before it is made. */
int cloud_init_make_seed(const struct plan *p, struct journal *j);

#endif
