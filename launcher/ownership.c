/* Marks on the state dir (trusted xattrs, root-only) that prove what vmlaunch made for a VM, for the undos to check. */
#define _GNU_SOURCE
#include "ownership.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "log.h"
#include "strv.h"

static char *attr_name(const char *key)
{
	return xasprintf("trusted.vmlaunch.%s", key);
}

int ownership_mark(const char *state_dir, const char *key, const char *value)
{
	char *name = attr_name(key);
	int r = 0;

	if (setxattr(state_dir, name, value, strlen(value), 0) < 0)
		r = log_errno(errno, "cannot mark %s with %s (vmlaunch proves what it made for a VM with trusted "
				     "extended attributes: the file system of %s must support them)",
			      state_dir, name, state_dir);
	free(name);
	return r;
}

int ownership_get(const char *state_dir, const char *key, char *buf, size_t size)
{
	char *name = attr_name(key);
	ssize_t n = getxattr(state_dir, name, buf, size - 1);
	int r;

	if (n >= 0) {
		buf[n] = '\0';
		r = 1;
	} else if (errno == ENODATA || errno == ENOENT || errno == EOPNOTSUPP) {
		buf[0] = '\0';
		r = 0;
	} else {
		r = log_errno(errno, "cannot read %s of %s", name, state_dir);
	}
	free(name);
	return r;
}

int ownership_check(const char *state_dir, const char *key, const char *value)
{
	char buf[256];
	int r = ownership_get(state_dir, key, buf, sizeof(buf));

	return r <= 0 ? r : !strcmp(buf, value);
}

void ownership_clear(const char *state_dir, const char *key)
{
	char *name = attr_name(key);

	removexattr(state_dir, name);
	free(name);
}
