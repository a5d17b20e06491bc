/* One config value → its typed field (config_parse.h's key_spec says which and how): paths resolved against the
 * config's directory or the bundled guest, sizes, numbers, words, CPU lists; a file:line for every mistake. */
#define _GNU_SOURCE
#include "config_values.h"
#include "config_parse.h"
#include "config_types.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpulist.h"
#include "log.h"

int config_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{ "K", 10 }, { "KiB", 10 }, { "M", 20 }, { "MiB", 20 },
		{ "G", 30 }, { "GiB", 30 }, { "T", 40 }, { "TiB", 40 },
	};
	char *end;
	unsigned long long n;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		if (n == 0 || n > (UINT64_MAX >> units[i].shift))
			return -EINVAL;
		*out = (uint64_t)n << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i]))
			return *out = true, 0;
		if (!strcasecmp(s, no[i]))
			return *out = false, 0;
	}
	return -EINVAL;
}

static char *resolve_path(const struct vm_config *cfg, const char *v)
{
	char *joined = v[0] == '/' ? xstrdup(v) : xasprintf("%s/%s", cfg->dir, v);
	char *canonical = realpath(joined, NULL);

	/* Canonical where the file exists (messages and argv read cleanly); as written where it does not yet. */
	if (!canonical)
		return joined;
	free(joined);
	return canonical;
}

/* The bundled guest's files for `kernel = bundled` and the like. */
static const struct {
	const char *key, *file;
} bundled_files[] = { { "kernel", "vmlinux" }, { "initrd", "initramfs.cpio.gz" }, { "modules", "modules.img" } };

/* Found from the binary, not the config, so a config copied to /etc/vmlaunch boots the same guest: beside it in a
 * build tree (build/vmlaunch, build/vmlinux), PREFIX/share/vmlaunch for PREFIX/bin/vmlaunch wherever `make install`
 * put both, or a checkout's configs/ (build/../configs/demo.conf). */
char *config_bundled_file(const char *file, char **looked)
{
	char exe[PATH_MAX], *slash, *candidates[3];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *found = NULL;

	*looked = NULL;
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	candidates[0] = xasprintf("%s/%s", exe, file);
	candidates[1] = xasprintf("%s/../share/vmlaunch/%s", exe, file);
	candidates[2] = xasprintf("%s/../configs/%s", exe, file);
	for (size_t i = 0; i < 3 && !found; i++)
		found = realpath(candidates[i], NULL);
	if (!found)
		*looked = xasprintf("%s, %s or %s", candidates[0], candidates[1], candidates[2]);
	for (size_t i = 0; i < 3; i++)
		free(candidates[i]);
	return found;
}

/* One value being set: where it goes and where it came from, for the messages. */
struct setting {
	struct parse *p;
	const struct key_spec *k;
	void *field;
	const char *section, *value;
	unsigned line;
};

static int set_string(const struct setting *s)
{
	char **field = s->field;

	if (!*s->value)
		return config_fail(s->p, s->line, "[%s] %s: expected a value", s->section, s->k->name);
	free(*field);
	*field = xstrdup(s->value);
	return 0;
}

/* `kernel = bundled` and the like: the bundled guest's file. 1 when the value named one, 0 when it did not. */
static int set_bundled(const struct setting *s, char **field)
{
	for (size_t i = 0; s->k->section == SEC_BOOT && i < sizeof(bundled_files) / sizeof(bundled_files[0]); i++) {
		char *looked;

		if (strcmp(s->value, "bundled") || strcmp(s->k->name, bundled_files[i].key))
			continue;
		*field = config_bundled_file(bundled_files[i].file, &looked);
		if (!*field) {
			config_fail(s->p, s->line, "[%s] %s = bundled: no %s at %s; expected the bundled guest (make guest builds "
						   "it, make install installs it)",
				    s->section, s->k->name, bundled_files[i].file, looked);
			free(looked);
			return -EINVAL;
		}
		return 1;
	}
	return 0;
}

static int set_path(const struct setting *s)
{
	char **field = s->field;
	int r;

	if (!*s->value)
		return config_fail(s->p, s->line, "[%s] %s: expected a path", s->section, s->k->name);
	free(*field);
	*field = NULL;
	r = set_bundled(s, field);
	if (r)
		return r < 0 ? r : 0;
	*field = resolve_path(s->p->cfg, s->value);
	return 0;
}

/* A URL stays as written; anything else is a path. */
static int set_source(const struct setting *s)
{
	if (*s->value && config_is_url(s->value)) {
		free(*(char **)s->field);
		*(char **)s->field = xstrdup(s->value);
		return 0;
	}
	return set_path(s);
}

/* Repeatable: each line adds one. */
static int set_paths(const struct setting *s)
{
	char *path;

	if (!*s->value)
		return config_fail(s->p, s->line, "[%s] %s: expected a path", s->section, s->k->name);
	path = resolve_path(s->p->cfg, s->value);
	strv_push(s->field, path);
	free(path);
	return 0;
}

static int set_size(const struct setting *s)
{
	if (config_parse_size(s->value, s->field) < 0)
		return config_fail(s->p, s->line,
				   "[%s] %s \"%s\": expected a whole number with K, M, G or T suffix (e.g. 512M, 2G)",
				   s->section, s->k->name, s->value);
	return 0;
}

/* A decimal number within [0, max]: 0 and *n, or -EINVAL without a message (the caller says what it expects). */
static int parse_number(const char *value, unsigned long max, unsigned long *n)
{
	char *end;

	errno = 0;
	*n = strtoul(value, &end, 10);
	if (!isdigit((unsigned char)*value) || *end || errno || *n > max)
		return -EINVAL;
	return 0;
}

static int set_uint(const struct setting *s)
{
	unsigned long n;

	if (parse_number(s->value, s->k->max, &n) < 0 || n < s->k->min)
		return config_fail(s->p, s->line, "[%s] %s \"%s\": expected a whole number from %u to %u", s->section,
				   s->k->name, s->value, s->k->min, s->k->max);
	*(unsigned *)s->field = (unsigned)n;
	return 0;
}

static int set_bool(const struct setting *s)
{
	if (parse_bool(s->value, s->field) < 0)
		return config_fail(s->p, s->line, "[%s] %s \"%s\": expected yes or no", s->section, s->k->name, s->value);
	return 0;
}

static int set_enum(const struct setting *s)
{
	char *list;

	for (size_t i = 0; s->k->choices[i]; i++)
		if (!strcmp(s->value, s->k->choices[i])) {
			*(int *)s->field = (int)i;
			return 0;
		}
	list = config_choices_list(s->k->choices);
	config_fail(s->p, s->line, "[%s] %s \"%s\": expected %s", s->section, s->k->name, s->value, list);
	free(list);
	return -EINVAL;
}

/* Split on blanks, no quoting: the words go to qemu as separate arguments, never through a shell. */
static int set_words(const struct setting *s)
{
	char *copy = xstrdup(s->value), *save = NULL;

	for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
		strv_push(s->field, w);
	free(copy);
	return 0;
}

/* Repeated or continued lines add words: long kernel command lines can be split over lines. */
static int set_append(const struct setting *s)
{
	char **field = s->field;
	char *joined = *field ? xasprintf("%s %s", *field, s->value) : xstrdup(s->value);

	free(*field);
	*field = joined;
	return 0;
}

static int set_cpulist(const struct setting *s)
{
	struct cpulist *l = s->field;

	cpulist_free(l);
	if (cpulist_parse(s->value, l) < 0)
		return config_fail(s->p, s->line, "[%s] %s \"%s\": expected host CPUs like 2-5 or 2,3,4,5", s->section,
				   s->k->name, s->value);
	return 0;
}

/* [cpu] pin: auto, off, or one host CPU per vCPU (kept in cfg->pin_cpus). */
static int set_pin(const struct setting *s)
{
	enum pin_choice *choice = s->field;
	struct cpulist *l = &s->p->cfg->pin_cpus;

	cpulist_free(l);
	if (!strcmp(s->value, "auto") || !strcmp(s->value, "off")) {
		*choice = !strcmp(s->value, "auto") ? PIN_AUTO : PIN_OFF;
		return 0;
	}
	if (cpulist_parse(s->value, l) < 0)
		return config_fail(s->p, s->line, "[%s] %s \"%s\": expected auto, off, or host CPUs like 2-5 or 2,3,4,5",
				   s->section, s->k->name, s->value);
	*choice = PIN_LIST;
	for (size_t i = 0; i < l->n; i++)
		for (size_t j = 0; j < i; j++)
			if (l->cpu[i] == l->cpu[j])
				return config_fail(s->p, s->line, "[%s] %s \"%s\": names host CPU %u twice; expected one CPU per "
								  "vCPU (vCPUs sharing a CPU stall each other)",
						   s->section, s->k->name, s->value, l->cpu[i]);
	return 0;
}

static int set_node(const struct setting *s)
{
	unsigned long n;

	if (!strcmp(s->value, "auto")) {
		*(int *)s->field = HOST_NODE_AUTO;
		return 0;
	}
	if (parse_number(s->value, s->k->max, &n) < 0)
		return config_fail(s->p, s->line, "[%s] %s \"%s\": expected auto or a node number from 0 to %u", s->section,
				   s->k->name, s->value, s->k->max);
	*(int *)s->field = (int)n;
	return 0;
}

/* How each value_type is read. */
static int (*const setters[])(const struct setting *) = {
	[T_STRING] = set_string, [T_PATH] = set_path, [T_SOURCE] = set_source, [T_PATHS] = set_paths,
	[T_SIZE] = set_size, [T_UINT] = set_uint, [T_BOOL] = set_bool, [T_ENUM] = set_enum, [T_WORDS] = set_words,
	[T_APPEND] = set_append, [T_CPULIST] = set_cpulist, [T_PIN] = set_pin, [T_NODE] = set_node,
};

int config_set_value(struct parse *p, const struct key_spec *k, void *base, const char *section, const char *value,
		     unsigned line)
{
	const struct setting s = { p, k, (char *)base + k->offset, section, value, line };

	*(unsigned *)((char *)base + k->line_offset) = line ? line : CONFIG_LINE_SET;
	/* Values reach file names, journal records and qemu's arguments: no line breaks or other control characters
	 * (--set can carry them; the file cannot). */
	for (const char *c = value; *c; c++)
		if ((unsigned char)*c < ' ' && *c != '\t')
			return config_fail(p, line, "[%s] %s: contains a control character (0x%02x); expected text", section,
					   k->name, (unsigned char)*c);
	return setters[k->type](&s);
}
