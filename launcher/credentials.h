/* systemd credentials for the guest as SMBIOS type 11 strings: root's ssh keys and the host name, no cloud-init. */
#ifndef VMLAUNCH_CREDENTIALS_H
#define VMLAUNCH_CREDENTIALS_H

#include <stddef.h>

#include "config.h"

/* Standard base64 (RFC 4648, padded). */
char *credential_base64(const char *data, size_t len);
/* The -smbios values: ssh.authorized_keys.root (the [cloud-init] keys) and system.hostname (the VM's name). */
void credentials_smbios(const struct vm_config *cfg, struct strv *out);

#endif
