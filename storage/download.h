/* source = URL: the image downloaded once into a cache keyed by its SHA-256, verified before it gets its name. */
#ifndef VMLAUNCH_DOWNLOAD_H
#define VMLAUNCH_DOWNLOAD_H

#include <stdbool.h>

/* images/ in vmlaunch's cache dir: /var/cache/vmlaunch/images as root (cache_dir.h); NULL without one. */
char *download_cache_dir(void);
/* Where the image with this SHA-256 (64 lowercase hex digits) is kept: DIR/SHA256; NULL without a cache dir. */
char *download_cache_path(const char *sha256);

struct privileges;
/* Makes download_cache_path(sha256) hold URL's content, unless it already does: downloads (http or https, redirects
 * followed within them) into a nameless file in the cache dir (O_TMPFILE: a kill leaves nothing), in a child that
 * runs as `pv` says with no capabilities, hashes what landed and gives it its name only when the SHA-256 matches; a
 * mismatch keeps nothing. `what` starts each message; progress: one line on stderr, redrawn. 0, or -errno after
 * logging once. */
int download_image(const char *url, const char *sha256, const char *what, bool progress, const struct privileges *pv);

#endif
