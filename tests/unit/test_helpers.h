/* Shared by the unit tests: config text in a temp dir, and stderr captured to compare messages. */
#ifndef VMLAUNCH_TEST_HELPERS_H
#define VMLAUNCH_TEST_HELPERS_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "strv.h"

/* A fresh directory per call, holding the config as "test.conf" plus an empty "vmlinux" and "initrd". */
static inline char *test_dir(void)
{
	char tmpl[] = "/tmp/vmlaunch-unit-XXXXXX";
	char *dir = mkdtemp(tmpl), *p;

	if (!dir)
		abort();
	dir = xstrdup(dir);
	p = xasprintf("%s/vmlinux", dir);
	close(open(p, O_WRONLY | O_CREAT, 0644));
	free(p);
	p = xasprintf("%s/initrd", dir);
	close(open(p, O_WRONLY | O_CREAT, 0644));
	free(p);
	return dir;
}

/* Whether a library whose path contains soname is mapped into this process (/proc/self/maps). */
static inline bool library_mapped(const char *soname)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	bool found = false;

	if (!f)
		abort();
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, soname) != NULL;
	fclose(f);
	return found;
}

static inline void write_file_n(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(text, 1, len, f) != len)
		abort();
	fclose(f);
}

/* Runs config_load on `len` bytes of `text`, with `sets` (NULL-terminated, may be NULL); *err gets what it printed
 * on stderr. */
static inline int load_bytes(const char *text, size_t len, const char *const *sets, struct vm_config *cfg, char **err)
{
	char *dir = test_dir(), *path = xasprintf("%s/test.conf", dir), *cmd;
	struct strv s = STRV_INIT;
	char errpath[] = "/tmp/vmlaunch-unit-err-XXXXXX";
	int errfd = mkstemp(errpath), saved = dup(2), r;
	FILE *f;
	char buf[4096] = "";
	size_t n;

	write_file_n(path, text, len);
	for (size_t i = 0; sets && sets[i]; i++)
		strv_push(&s, sets[i]);
	fflush(stderr);
	dup2(errfd, 2);
	if (chdir(dir) < 0)
		abort();
	r = config_load("test.conf", &s, cfg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fopen(errpath, "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	close(errfd);
	unlink(errpath);
	*err = xstrdup(buf);
	for (const char *const *f = (const char *const[]){ "test.conf", "vmlinux", "initrd", NULL }; *f; f++) {
		cmd = xasprintf("%s/%s", dir, *f);
		unlink(cmd);
		free(cmd);
	}
	if (chdir("/") < 0 || rmdir(dir) < 0)
		abort();
	strv_free(&s);
	free(path);
	free(dir);
	return r;
}

static inline int load_text(const char *text, const char *const *sets, struct vm_config *cfg, char **err)
{
	return load_bytes(text, strlen(text), sets, cfg, err);
}

#endif
