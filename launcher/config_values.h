/* What one config value means, for the reader and for the launcher alike (config_values.c): a size, a URL or a path,
 * the bundled guest's files. */
#ifndef VMLAUNCH_CONFIG_VALUES_H
#define VMLAUNCH_CONFIG_VALUES_H

#include <stdbool.h>
#include <stdint.h>

/* source = http://... or https://...: an image vmlaunch downloads (and verifies) rather than a path. */
static inline bool config_is_url(const char *s)
{
	return s && (!__builtin_strncmp(s, "http://", 7) || !__builtin_strncmp(s, "https://", 8));
}

/* "512M", "2G", "1T", "64K", also "512MiB": bytes. Returns 0 or -EINVAL. Exposed for tests. */
int config_parse_size(const char *s, uint64_t *out);

/* The bundled guest's FILE (vmlinux, initramfs.cpio.gz, modules.img) or the embedded default demo.conf, found from
 * vmlaunch's own binary (a build tree, or PREFIX/share/vmlaunch). NULL, with the places looked at in *looked (to
 * free), when it is not there. */
char *config_bundled_file(const char *file, char **looked);

#endif
