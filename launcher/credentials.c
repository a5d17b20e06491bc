/* systemd credentials for the guest as SMBIOS type 11 OEM strings: systemd's PID 1 (252 and later) imports strings
 * "io.systemd.credential:NAME=VALUE" and "io.systemd.credential.binary:NAME=BASE64" (src/core/import-creds.c), and
 * its tmpfiles provision.conf writes ssh.authorized_keys.root to /root/.ssh/authorized_keys when that does not
 * exist: a way in that needs no cloud-init. Pure. */
#define _GNU_SOURCE
#include "credentials.h"

#include <stdlib.h>
#include <string.h>

#include "strv.h"

char *credential_base64(const char *data, size_t len)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	const unsigned char *in = (const unsigned char *)data;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);

		*o++ = digits[v >> 18 & 63];
		*o++ = digits[v >> 12 & 63];
		*o++ = i + 1 < len ? digits[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? digits[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

void credentials_smbios(const struct vm_config *cfg, struct strv *out)
{
	char *keys = xstrdup(""), *tmp, *b64;

	for (size_t i = 0; i < cfg->cloud_key_lines.n; i++) {
		tmp = xasprintf("%s%s\n", keys, cfg->cloud_key_lines.v[i]);
		free(keys);
		keys = tmp;
	}
	if (*keys) {
		/* base64 has no ',' (qemu's option separator) and survives any byte the key's comment holds */
		b64 = credential_base64(keys, strlen(keys));
		strv_pushf(out, "type=11,value=io.systemd.credential.binary:ssh.authorized_keys.root=%s", b64);
		free(b64);
	}
	/* read by newer systemd (not among 252's well-known credentials); a VM name has no ',' (config.c) */
	strv_pushf(out, "type=11,value=io.systemd.credential:system.hostname=%s", cfg->name);
	free(keys);
}
