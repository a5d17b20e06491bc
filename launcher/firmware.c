/* qemu's firmware descriptors (docs/interop/firmware.json): the installed OVMF builds, their variable templates and
 * features, read instead of guessing file names. */
#define _GNU_SOURCE
#include "firmware.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "state_dir.h"
#include "strv.h"

static bool has_string(struct json_object *array, const char *want)
{
	for (size_t i = 0; array && i < json_object_array_length(array); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(array, i)), want))
			return true;
	return false;
}

/* Targets x86_64 on a q35 machine type ("pc-q35-*" patterns). */
static bool targets_q35(struct json_object *targets)
{
	for (size_t i = 0; targets && i < json_object_array_length(targets); i++) {
		struct json_object *t = json_object_array_get_idx(targets, i), *arch, *machines;

		if (!json_object_object_get_ex(t, "architecture", &arch) || strcmp(json_object_get_string(arch), "x86_64") ||
		    !json_object_object_get_ex(t, "machines", &machines))
			continue;
		for (size_t k = 0; k < json_object_array_length(machines); k++)
			if (!fnmatch(json_object_get_string(json_object_array_get_idx(machines, k)), "pc-q35-7.2", 0))
				return true;
	}
	return false;
}

static const char *mapping_file(struct json_object *mapping, const char *key)
{
	struct json_object *o, *name, *format;

	if (!json_object_object_get_ex(mapping, key, &o) || !json_object_object_get_ex(o, "filename", &name) ||
	    (json_object_object_get_ex(o, "format", &format) && strcmp(json_object_get_string(format), "raw")))
		return NULL;
	return json_object_get_string(name);
}

/* One descriptor: 1 and *out when it is the wanted kind of flash UEFI for q35, 0 when not. */
static int consider(const char *path, bool secure_boot, struct firmware *out)
{
	struct json_object *d = json_object_from_file(path), *types, *mapping, *device, *targets, *features, *desc;
	const char *code, *vars;
	int r = 0;

	if (!d)
		return 0;
	if (!json_object_object_get_ex(d, "interface-types", &types) || !has_string(types, "uefi") ||
	    !json_object_object_get_ex(d, "mapping", &mapping) || !json_object_object_get_ex(mapping, "device", &device) ||
	    strcmp(json_object_get_string(device), "flash") || !json_object_object_get_ex(d, "targets", &targets) ||
	    !targets_q35(targets))
		goto out;
	json_object_object_get_ex(d, "features", &features);
	/* Secure Boot wanted: with keys enrolled (else it boots anything); not wanted: no SMM requirement either */
	if (secure_boot ? !has_string(features, "secure-boot") || !has_string(features, "enrolled-keys")
			: has_string(features, "secure-boot") || has_string(features, "requires-smm"))
		goto out;
	code = mapping_file(mapping, "executable");
	vars = mapping_file(mapping, "nvram-template");
	if (!code || !vars)
		goto out;
	out->uefi = true;
	out->code = xstrdup(code);
	out->vars_template = xstrdup(vars);
	out->secure_boot = secure_boot;
	out->description = xstrdup(json_object_object_get_ex(d, "description", &desc) ? json_object_get_string(desc)
										       : path);
	r = 1;
out:
	json_object_put(d);
	return r;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int firmware_find(const char *const *dirs, bool secure_boot, struct firmware *out)
{
	struct strv names = STRV_INIT, paths = STRV_INIT;
	int r = -ENOENT;

	memset(out, 0, sizeof(*out));
	/* every descriptor name once, from the first directory that has it */
	for (const char *const *dir = dirs; *dir; dir++) {
		struct dirent **list;
		int n = scandir(*dir, &list, NULL, by_name);

		for (int i = 0; i < n; i++) {
			size_t len = strlen(list[i]->d_name);
			bool seen = false;

			for (size_t k = 0; k < names.n; k++)
				seen |= !strcmp(names.v[k], list[i]->d_name);
			if (!seen && len > 5 && !strcmp(list[i]->d_name + len - 5, ".json")) {
				strv_push(&names, list[i]->d_name);
				strv_pushf(&paths, "%s/%s", *dir, list[i]->d_name);
			}
			free(list[i]);
		}
		if (n >= 0)
			free(list);
	}
	/* the spec orders them by file name across all directories */
	for (size_t i = 0; i < names.n; i++)
		for (size_t k = i + 1; k < names.n; k++)
			if (strcmp(names.v[k], names.v[i]) < 0) {
				char *t = names.v[i];

				names.v[i] = names.v[k];
				names.v[k] = t;
				t = paths.v[i];
				paths.v[i] = paths.v[k];
				paths.v[k] = t;
			}
	for (size_t i = 0; i < paths.n && r < 0; i++)
		if (consider(paths.v[i], secure_boot, out) == 1)
			r = 0;
	strv_free(&names);
	strv_free(&paths);
	return r;
}

void firmware_free(struct firmware *f)
{
	free(f->code);
	free(f->vars_template);
	free(f->description);
	memset(f, 0, sizeof(*f));
}

int firmware_vars_prepare(const char *template, const char *path, bool in_state_dir, struct journal *j)
{
	int in, out, r = 0;
	char buf[65536];
	ssize_t n;

	if (access(path, F_OK) == 0)
		return 0; /* a kept store: its variables (boot order, enrolled keys) are the point */
	if (in_state_dir && (r = state_dir_journal_file(j, path)) < 0)
		return r;
	in = open(template, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return log_errno(errno, "cannot read the UEFI variable template %s", template);
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		r = log_errno(errno, "cannot create the UEFI variable store %s", path);
		close(in);
		return r;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (fd_write_all(out, buf, (size_t)n) < 0) {
			n = -1;
			break;
		}
	if (n < 0 || close(out) < 0)
		r = log_errno(errno ? errno : EIO, "cannot write the UEFI variable store %s", path);
	close(in);
	if (r < 0 && !in_state_dir)
		unlink(path); /* never leave a half-written persistent store */
	return r;
}
