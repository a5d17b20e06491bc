/* Where vmlaunch keeps what outlives a run: one directory for every cache. */
#define _GNU_SOURCE
#include "cache_dir.h"

#include <stdlib.h>
#include <unistd.h>

#include "strv.h"

char *cache_dir_path(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		return xstrdup("/var/cache/vmlaunch");
	if (xdg && *xdg == '/')
		return xasprintf("%s/vmlaunch", xdg);
	if (home && *home == '/')
		return xasprintf("%s/.cache/vmlaunch", home);
	return NULL;
}
