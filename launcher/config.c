/* Config file → struct vm_config: libinih does the INI syntax, this file the schema and the reading, with a file:line
 * for every error; config_values.c turns each value into its field, config_check.c judges the config as a whole
 * once it is read (config_load.c does both). */
#define _GNU_SOURCE
#include "config.h"
#include "config_parse.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpulist.h"
#include "log.h"

static const char *const accel_words[] = { "auto", "kvm", "tcg", NULL };
static const char *const snapshot_memory_words[] = { "shared", "stream", NULL };
static const char *const format_words[] = { "raw", "qcow2", NULL };
static const char *const cache_words[] = { "auto", "safe", "unsafe", NULL };
static const char *const backend_words[] = { "file", "tmpfs", "zram", "brd", "lvm", "rbd", NULL };
static const char *const hugepages_words[] = { "off", "2M", "1G", NULL };
static const char *const allocator_words[] = { "tcmalloc", "system", NULL };
static const char *const tier_words[] = { "dram", "file", NULL };
static const char *const ms_mode_words[] = { "default", "crc", "secure", NULL };
static const char *const net_mode_words[] = { "user", "none", "tap", NULL };
static const char *const firmware_words[] = { "auto", "bios", "uefi", "uefi-secure", NULL };
static const char *const source_backing_words[] = { "refuse", "allow", NULL };

#define VM(field) offsetof(struct vm_config, field), offsetof(struct vm_config, field##_line)
#define DISK(field) offsetof(struct disk_config, field), offsetof(struct disk_config, field##_line)
#define TIER(field) offsetof(struct tier_config, field), offsetof(struct tier_config, field##_line)
#define SHARE(field) offsetof(struct share_config, field), offsetof(struct share_config, field##_line)
#define NET(field) offsetof(struct net_config, field), offsetof(struct net_config, field##_line)

static const struct key_spec keys[] = {
	{ SEC_VM, "name", T_STRING, VM(name), NULL, 0, 0, 0 },
	{ SEC_VM, "cpus", T_UINT, VM(cpus), NULL, 1, 255, 0 },
	{ SEC_VM, "memory", T_SIZE, VM(memory), NULL, 0, 0, 0 },
	{ SEC_VM, "accel", T_ENUM, VM(accel), accel_words, 0, 0, 0 },
	{ SEC_VM, "machine", T_STRING, VM(machine), NULL, 0, 0, 0 },
	{ SEC_VM, "console-log", T_PATH, VM(console_log), NULL, 0, 0, 0 },
	{ SEC_VM, "snapshot", T_PATH, VM(snapshot), NULL, 0, 0, 0 },
	{ SEC_VM, "snapshot-memory", T_ENUM, VM(snapshot_memory), snapshot_memory_words, 0, 0, 0 },
	{ SEC_VM, "shutdown-timeout", T_UINT, VM(shutdown_timeout), NULL, 1, 3600, 0 },
	{ SEC_BOOT, "kernel", T_PATH, VM(kernel), NULL, 0, 0, 0 },
	{ SEC_BOOT, "initrd", T_PATH, VM(initrd), NULL, 0, 0, 0 },
	{ SEC_BOOT, "append", T_APPEND, VM(append), NULL, 0, 0, 0 },
	{ SEC_BOOT, "root", T_STRING, VM(root), NULL, 0, 0, 0 },
	{ SEC_BOOT, "modules", T_PATH, VM(modules), NULL, 0, 0, 0 },
	{ SEC_VM, "command-user", T_STRING, VM(command_user), NULL, 0, 0, 0 },
	{ SEC_VM, "agent-timeout", T_UINT, VM(agent_timeout), NULL, 1, 3600, 0 },
	{ SEC_BOOT, "firmware", T_ENUM, VM(firmware), firmware_words, 0, 0, 0 },
	{ SEC_BOOT, "nvram", T_PATH, VM(nvram), NULL, 0, 0, 0 },
	{ SEC_BOOT, "tpm", T_BOOL, VM(tpm), NULL, 0, 0, 0 },
	{ SEC_BOOT, "tpm-state", T_PATH, VM(tpm_state), NULL, 0, 0, 0 },
	{ SEC_CLOUD_INIT, "ssh-key", T_PATHS, VM(cloud_keys), NULL, 0, 0, 0 },
	{ SEC_CLOUD_INIT, "user", T_STRING, VM(cloud_user), NULL, 0, 0, 0 },
	{ SEC_CLOUD_INIT, "user-data", T_PATH, VM(cloud_user_data), NULL, 0, 0, 0 },
	{ SEC_CLOUD_INIT, "merge-keys", T_BOOL, VM(cloud_merge_keys), NULL, 0, 0, 0 },
	{ SEC_QEMU, "binary", T_STRING, VM(qemu_binary), NULL, 0, 0, 0 },
	{ SEC_QEMU, "extra", T_WORDS, VM(qemu_extra), NULL, 0, 0, 0 },
	{ SEC_QEMU, "allocator", T_ENUM, VM(allocator), allocator_words, 0, 0, 0 },
	{ SEC_QEMU, "user", T_STRING, VM(qemu_user), NULL, 0, 0, 0 },
	{ SEC_MEMORY, "hugepages", T_ENUM, VM(hugepages), hugepages_words, 0, 0, 0 },
	{ SEC_MEMORY, "host-node", T_NODE, VM(host_node), NULL, 0, 1023, 0 },
	{ SEC_CPU, "pin", T_PIN, VM(pin), NULL, 0, 0, 0 },
	{ SEC_CPU, "iothreads", T_CPULIST, VM(pin_iothreads), NULL, 0, 0, 0 },
	{ SEC_CPU, "emulator", T_CPULIST, VM(pin_emulator), NULL, 0, 0, 0 },
	{ SEC_TIER, "backend", T_ENUM, TIER(backend), tier_words, 0, 0, 0 },
	{ SEC_TIER, "path", T_PATH, TIER(path), NULL, 0, 0, 0 },
	{ SEC_TIER, "size", T_SIZE, TIER(size), NULL, 0, 0, 0 },
	{ SEC_TIER, "host-node", T_UINT, TIER(host_node), NULL, 0, 1023, 0 },
	{ SEC_SHARE, "path", T_PATH, SHARE(path), NULL, 0, 0, 0 },
	{ SEC_SHARE, "readonly", T_BOOL, SHARE(readonly), NULL, 0, 0, 0 },
	{ SEC_SHARE, "mount", T_STRING, SHARE(mount), NULL, 0, 0, 0 },
	{ SEC_SHARE, "tag", T_STRING, SHARE(tag), NULL, 0, 0, 0 },
	{ SEC_NET, "mode", T_ENUM, NET(mode), net_mode_words, 0, 0, 0 },
	{ SEC_NET, "forward", T_WORDS, NET(forwards), NULL, 0, 0, 0 },
	{ SEC_NET, "restrict", T_BOOL, NET(restricted), NULL, 0, 0, 0 },
	{ SEC_NET, "mac", T_STRING, NET(mac), NULL, 0, 0, 0 },
	{ SEC_NET, "bridge", T_STRING, NET(bridge), NULL, 0, 0, 0 },
	{ SEC_NET, "tap", T_STRING, NET(tap), NULL, 0, 0, 0 },
	{ SEC_NET, "address", T_STRING, NET(address), NULL, 0, 0, 0 },
	{ SEC_NET, "gateway", T_STRING, NET(gateway), NULL, 0, 0, 0 },
	{ SEC_DISK, "backend", T_ENUM, DISK(backend), backend_words, 0, 0, B_ALL },
	{ SEC_DISK, "size", T_SIZE, DISK(size), NULL, 0, 0, B_CREATED | B(BACKEND_RBD) | B(BACKEND_FILE) },
	{ SEC_DISK, "path", T_PATH, DISK(path), NULL, 0, 0, B(BACKEND_FILE) },
	{ SEC_DISK, "source", T_SOURCE, DISK(source), NULL, 0, 0, B_CREATED },
	{ SEC_DISK, "source-sha256", T_STRING, DISK(source_sha256), NULL, 0, 0, B_CREATED },
	{ SEC_DISK, "source-format", T_STRING, DISK(source_format), NULL, 0, 0, B_CREATED },
	{ SEC_DISK, "source-backing", T_ENUM, DISK(source_backing), source_backing_words, 0, 0, B_CREATED },
	{ SEC_DISK, "format", T_ENUM, DISK(format), format_words, 0, 0, B(BACKEND_FILE) },
	{ SEC_DISK, "ephemeral", T_BOOL, DISK(ephemeral), NULL, 0, 0, B_ALL },
	{ SEC_DISK, "readonly", T_BOOL, DISK(readonly), NULL, 0, 0, B_ALL },
	{ SEC_DISK, "cache", T_ENUM, DISK(cache), cache_words, 0, 0, B_ALL },
	{ SEC_DISK, "comp-algorithm", T_STRING, DISK(comp_algorithm), NULL, 0, 0, B(BACKEND_ZRAM) },
	{ SEC_DISK, "vg", T_STRING, DISK(vg), NULL, 0, 0, B(BACKEND_LVM) },
	{ SEC_DISK, "lv", T_STRING, DISK(lv), NULL, 0, 0, B(BACKEND_LVM) },
	{ SEC_DISK, "thin-pool", T_STRING, DISK(thin_pool), NULL, 0, 0, B(BACKEND_LVM) },
	{ SEC_DISK, "thin-pool-size", T_SIZE, DISK(thin_pool_size), NULL, 0, 0, B(BACKEND_LVM) },
	{ SEC_DISK, "pool", T_STRING, DISK(pool), NULL, 0, 0, B(BACKEND_RBD) },
	{ SEC_DISK, "image", T_STRING, DISK(image), NULL, 0, 0, B(BACKEND_RBD) },
	{ SEC_DISK, "namespace", T_STRING, DISK(rbd_namespace), NULL, 0, 0, B(BACKEND_RBD) },
	{ SEC_DISK, "conf", T_PATH, DISK(ceph_conf), NULL, 0, 0, B(BACKEND_RBD) },
	{ SEC_DISK, "user", T_STRING, DISK(ceph_user), NULL, 0, 0, B(BACKEND_RBD) },
	{ SEC_DISK, "keyring", T_PATH, DISK(keyring), NULL, 0, 0, B(BACKEND_RBD) },
	{ SEC_DISK, "create", T_BOOL, DISK(create), NULL, 0, 0, B(BACKEND_RBD) },
	{ SEC_DISK, "clone-from", T_STRING, DISK(clone_from), NULL, 0, 0, B(BACKEND_RBD) },
	{ SEC_DISK, "ms-mode", T_ENUM, DISK(ms_mode), ms_mode_words, 0, 0, B(BACKEND_RBD) },
};

const struct key_spec *const config_keys = keys;
const size_t config_n_keys = sizeof(keys) / sizeof(keys[0]);
const char *const *const config_backend_words = backend_words;

static const char *const section_names[SEC_COUNT] = {
	[SEC_VM] = "vm",	 [SEC_BOOT] = "boot", [SEC_QEMU] = "qemu",	 [SEC_DISK] = "disk",
	[SEC_MEMORY] = "memory", [SEC_CPU] = "cpu",   [SEC_TIER] = "memory tier", [SEC_SHARE] = "share",
	[SEC_NET] = "net",	 [SEC_CLOUD_INIT] = "cloud-init",
};

/* The named sections: where their array and count live in vm_config. Each element starts with struct named_section. */
static const struct named_kind {
	enum section_kind kind;
	size_t array, count, size;
} named_kinds[] = {
	{ SEC_DISK, offsetof(struct vm_config, disks), offsetof(struct vm_config, n_disks), sizeof(struct disk_config) },
	{ SEC_TIER, offsetof(struct vm_config, tiers), offsetof(struct vm_config, n_tiers), sizeof(struct tier_config) },
	{ SEC_SHARE, offsetof(struct vm_config, shares), offsetof(struct vm_config, n_shares), sizeof(struct share_config) },
	{ SEC_NET, offsetof(struct vm_config, nets), offsetof(struct vm_config, n_nets), sizeof(struct net_config) },
};

static const struct named_kind *named_kind_of(enum section_kind kind)
{
	for (size_t i = 0; i < sizeof(named_kinds) / sizeof(named_kinds[0]); i++)
		if (named_kinds[i].kind == kind)
			return &named_kinds[i];
	return NULL;
}

const char *const *config_known_keys(void)
{
	static const char *list[sizeof(keys) / sizeof(keys[0]) + 1];

	if (!list[0])
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			list[i] = xasprintf("%s.%s", section_names[keys[i].section], keys[i].name);
	return list;
}


bool config_valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/* Levenshtein distance, for "did you mean": words here are short, so one row of the table is enough. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* A near miss: close enough to be a typo (a third of the word, at least one edit), and the closest. */
static bool near_miss(const char *typed, const char *candidate, size_t *best)
{
	size_t d = edit_distance(typed, candidate), allowed = strlen(candidate) / 3;

	if (d > (allowed ? allowed : 1) || d >= *best)
		return false;
	*best = d;
	return true;
}

bool config_vm_name_valid(const char *name)
{
	size_t n = strlen(name);

	/* NAME.lock sits beside the state dir NAME: "x.lock" would be another VM's lock */
	return config_valid_name(name, VM_NAME_MAX) && !(n >= 5 && !strcmp(name + n - 5, ".lock"));
}

/* Section "KIND NAME" → its element, created on first sight. Messages about it as a whole point at its header. */
static void *named_for(struct parse *p, enum section_kind kind, const char *name, unsigned line)
{
	const struct named_kind *k = named_kind_of(kind);
	char **array = (char **)((char *)p->cfg + k->array);
	size_t *count = (size_t *)((char *)p->cfg + k->count);
	const char *prefix = section_names[kind];
	size_t n = strlen(prefix);
	struct named_section *e;

	for (size_t i = 0; i < *count; i++) {
		e = (struct named_section *)(*array + i * k->size);
		if (!strcmp(e->name, name))
			return e;
	}
	*array = xrealloc(*array, (*count + 1) * k->size);
	e = (struct named_section *)(*array + (*count)++ * k->size);
	memset(e, 0, k->size);
	e->name = xstrdup(name);
	e->line = line ? line : CONFIG_LINE_SET;
	for (size_t i = 0; i < p->n_sections; i++) {
		const char *s = p->sections[i].name;

		if (!strncmp(s, prefix, n) && s[n] == ' ' && !strcmp(s + n + 1, name))
			e->line = p->sections[i].line;
	}
	return e;
}

/* "disk.a" and "disk a" name the same section: one spelling for duplicate checks. */
static char *canonical_section(const char *section)
{
	char *c = xstrdup(section);

	for (size_t i = 0; i < sizeof(named_kinds) / sizeof(named_kinds[0]); i++) {
		size_t n = strlen(section_names[named_kinds[i].kind]);

		if (!strncmp(c, section_names[named_kinds[i].kind], n) && c[n] == '.')
			c[n] = ' ';
	}
	return c;
}

/* Splits "KIND NAME" into kind and name; NULL name for the plain sections. */
static int classify_section(struct parse *p, const char *section, unsigned line, enum section_kind *kind,
			    const char **disk_name)
{
	*disk_name = NULL;
	for (size_t i = 0; i < sizeof(named_kinds) / sizeof(named_kinds[0]); i++) {
		const char *prefix = section_names[named_kinds[i].kind], *name;
		size_t n = strlen(prefix);

		if (strncmp(section, prefix, n) || (section[n] != ' ' && section[n] != '.'))
			continue;
		name = section + n + 1;
		if (!config_valid_name(name, DISK_NAME_MAX))
			return config_fail(p, line, "section [%s]: name \"%s\": expected 1 to %d letters, digits, '_', '.' or '-'",
				    section, name, DISK_NAME_MAX);
		*kind = named_kinds[i].kind;
		*disk_name = name;
		return 0;
	}
	for (size_t i = 0; i < SEC_COUNT; i++)
		if (!named_kind_of((enum section_kind)i) && !strcmp(section, section_names[i])) {
			*kind = (enum section_kind)i;
			return 0;
		}
	{
		/* "[disks root]" → [disk root]: the kind word is compared, the name kept */
		const char *space = strchr(section, ' ');
		char *first = xstrndup(section, space ? (size_t)(space - section) : strlen(section)), *suggestion = NULL;
		size_t best = SIZE_MAX;

		for (size_t i = 0; i < SEC_COUNT; i++) {
			bool named = named_kind_of((enum section_kind)i) != NULL;

			if (i == SEC_TIER || named != (space != NULL) || !near_miss(named ? first : section, section_names[i], &best))
				continue;
			free(suggestion);
			suggestion = named ? xasprintf("%s%s", section_names[i], space) : xstrdup(section_names[i]);
		}
		config_fail(p, line,
		     "unknown section [%s]%s%s%s: expected [vm], [boot], [memory], [cpu], [qemu], [cloud-init], [disk NAME], "
		     "[share NAME], [net NAME] or [memory tier NAME]",
		     section, suggestion ? " (did you mean [" : "", suggestion ? suggestion : "", suggestion ? "]?)" : "");
		free(first);
		free(suggestion);
		return -EINVAL;
	}
}

static const struct key_spec *find_key(enum section_kind kind, const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].section == kind && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static char *known_keys_of(enum section_kind kind)
{
	char buf[512] = "";

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].section != kind)
			continue;
		if (*buf)
			strncat(buf, ", ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, keys[i].name, sizeof(buf) - strlen(buf) - 1);
	}
	return xstrdup(buf);
}

/* " (did you mean \"size\"?)" for a near miss in the same section, " (it goes in [boot])" for another section's key,
 * or "". */
static char *did_you_mean_key(enum section_kind kind, const char *name)
{
	const char *suggestion = NULL;
	const struct key_spec *elsewhere = NULL;
	size_t best = SIZE_MAX, n_elsewhere = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].section != kind && !strcmp(keys[i].name, name))
			elsewhere = &keys[i], n_elsewhere++;
	if (n_elsewhere == 1) /* a key of several sections (path, size) names no one place */
		return xasprintf(" (it goes in [%s%s])", section_names[elsewhere->section],
				 named_kind_of(elsewhere->section) ? " NAME" : "");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].section == kind && near_miss(name, keys[i].name, &best))
			suggestion = keys[i].name;
	return suggestion ? xasprintf(" (did you mean \"%s\"?)", suggestion) : xstrdup("");
}

/* One key = value. `from_file` distinguishes the file (duplicates refused) from --set (overrides allowed). */
static int apply(struct parse *p, const char *section, const char *name, const char *value, unsigned line,
		 bool from_file)
{
	enum section_kind kind;
	const char *disk_name;
	const struct key_spec *k;
	void *base;
	char *list;

	if (classify_section(p, section, line, &kind, &disk_name) < 0)
		return -EINVAL;
	k = find_key(kind, name);
	if (!k) {
		char *hint = did_you_mean_key(kind, name);

		list = known_keys_of(kind);
		config_fail(p, line, "[%s]: unknown key \"%s\"%s: expected one of %s", section, name, hint, list);
		free(list);
		free(hint);
		return -EINVAL;
	}
	if (from_file && k->type != T_WORDS && k->type != T_APPEND && k->type != T_PATHS) {
		char *canonical = canonical_section(section);

		for (size_t i = 0; i < p->n_seen; i++)
			if (!strcmp(p->seen[i].section, canonical) && !strcmp(p->seen[i].key, name)) {
				free(canonical);
				return config_fail(p, line, "[%s] %s: set twice (first on line %u); expected it once", section,
					    name, p->seen[i].line);
			}
		p->seen = xrealloc(p->seen, (p->n_seen + 1) * sizeof(*p->seen));
		p->seen[p->n_seen++] = (struct seen_key){ canonical, xstrdup(name), line };
	}
	base = disk_name ? named_for(p, kind, disk_name, line) : p->cfg;
	return config_set_value(p, k, base, section, value, line);
}

static int config_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	p->key_in_section = true;
	if (p->section_bad)
		return 1; /* its header's mistake is said once, not once per key */
	if (!*section) {
		config_fail(p, p->line, "\"%s\" is outside any section: expected a section header such as [vm] first",
		     name);
		return 1;
	}
	apply(p, section, name, value, p->line, true);
	return 1; /* reported by apply: libinih's own return then means a syntax error alone */
}

static void note_section(struct parse *p, const char *line)
{
	const char *end = strchr(line, ']');
	char *name;

	p->key_in_section = false;
	p->section_bad = true;
	if (!end) {
		p->unclosed_line = p->line;
		config_fail(p, p->line, "expected [section], key = value, or a comment (no ']' closes the section name)");
		return;
	}
	{
		char *raw = strndup(line + 1, (size_t)(end - line - 1));

		if (!raw)
			abort();
		name = canonical_section(raw);
		free(raw);
	}
	for (size_t i = 0; i < p->n_sections; i++)
		if (!strcmp(p->sections[i].name, name)) {
			config_fail(p, p->line, "section [%s] appears twice (first on line %u); expected each section once", name,
			     p->sections[i].line);
			free(name);
			return;
		}
	{
		/* Judge the header where it stands, not at its first key. */
		enum section_kind kind;
		const char *disk_name;

		if (classify_section(p, name, p->line, &kind, &disk_name) < 0) {
			free(name);
			return;
		}
	}
	p->sections = xrealloc(p->sections, (p->n_sections + 1) * sizeof(*p->sections));
	p->sections[p->n_sections++] = (struct seen_section){ name, p->line };
	p->section_bad = false;
}

/* libinih's line reader, wrapped to count lines (libinih does not pass them to the handler), to refuse what it would
 * silently mangle (overlong lines, NUL bytes), and to see section headers even when a section is empty. */
static char *config_ini_reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	ssize_t len = getline(&p->line_buf, &p->line_cap, p->f);
	const char *s;

	if (len < 0)
		return NULL;
	p->line++;
	if ((size_t)len != strlen(p->line_buf))
		config_fail(p, p->line, "contains a NUL byte: expected text");
	else if (len > num - 1)
		config_fail(p, p->line, "line is longer than %d characters: split long values over continuation lines",
		     num - 2);
	if ((size_t)len != strlen(p->line_buf) || len > num - 1) {
		str[0] = '\0'; /* reported: the rest of the file is still read, so every mistake is said at once */
		return str;
	}
	memcpy(str, p->line_buf, (size_t)len + 1);
	/* Skip what libinih skips before a header (a BOM on line 1, any isspace()), or "\f[disk x]" escapes every check. */
	s = str;
	if (p->line == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '[' && (s == str || !p->key_in_section))
		note_section(p, s);
	return str;
}

static int finish(struct parse *p)
{
	struct vm_config *cfg = p->cfg;

	/* A section that appeared with no keys still declares something: an empty [disk x] is a mistake, not nothing. */
	for (size_t i = 0; i < p->n_sections; i++) {
		enum section_kind kind;
		const char *disk_name;

		if (classify_section(p, p->sections[i].name, p->sections[i].line, &kind, &disk_name) < 0)
			return -EINVAL;
		if (disk_name)
			named_for(p, kind, disk_name, p->sections[i].line);
	}
	if (!cfg->name) {
		char *copy = xstrdup(cfg->file), *base = basename(copy), *dot = strrchr(base, '.');

		if (dot && dot != base)
			*dot = '\0';
		cfg->name = xstrdup(base);
		free(copy);
	}
	return p->failed ? -EINVAL : 0;
}

static int apply_set(struct parse *p, const char *arg)
{
	const char *eq = strchr(arg, '='), *dot;
	char *lhs, *section, *key, *end;
	int r;

	free(p->set_where);
	/* shown in messages: control characters as \xNN, so one message stays one line */
	p->set_where = xmalloc(strlen(arg) * 4 + 7);
	strcpy(p->set_where, "--set ");
	end = p->set_where + 6;
	for (const char *c = arg; *c; c++)
		end += sprintf(end, (unsigned char)*c < ' ' ? "\\x%02x" : "%c", (unsigned char)*c);
	p->where = p->set_where;
	if (!eq)
		return config_fail(p, 0, "expected --set SECTION.KEY=VALUE (e.g. --set vm.cpus=4 or --set disk.root.size=2G)");
	lhs = xstrndup(arg, (size_t)(eq - arg));
	dot = strrchr(lhs, '.');
	if (!dot || dot == lhs || !dot[1]) {
		free(lhs);
		return config_fail(p, 0, "expected --set SECTION.KEY=VALUE (e.g. --set vm.cpus=4 or --set disk.root.size=2G)");
	}
	/* "disk.root" and "disk root" both name [disk root] */
	section = xstrndup(lhs, (size_t)(dot - lhs));
	key = xstrdup(dot + 1);
	r = apply(p, section, key, eq + 1, 0, false);
	free(section);
	free(key);
	free(lhs);
	return r;
}

/* As root, a config anyone else can change is a way to run anything as root (extra =, kernel =). */
static bool config_trusted(int fd)
{
	struct stat st;

	if (geteuid() != 0)
		return true;
	if (fstat(fd, &st) < 0)
		return false;
	return st.st_uid == 0 && !(st.st_mode & S_IWOTH) && (!(st.st_mode & S_IWGRP) || st.st_gid == 0);
}

int config_read(struct parse *p, const char *file, const struct strv *sets)
{
	struct vm_config *cfg = p->cfg;
	char *copy, *dir;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->file = xstrdup(file);
	copy = xstrdup(file);
	/* Absolute, so paths in the config mean the same whatever the caller's working directory. */
	dir = dirname(copy);
	cfg->dir = realpath(dir, NULL);
	if (!cfg->dir)
		cfg->dir = xstrdup(dir);
	free(copy);
	cfg->cpus = 1;
	cfg->memory = 512ULL << 20;
	cfg->host_node = HOST_NODE_AUTO;
	cfg->agent_timeout = 120;
	cfg->shutdown_timeout = 60;

	p->f = fopen(file, "re");
	if (!p->f)
		return log_errno(errno, "cannot read config %s", file);
	{
		struct stat st;

		if (fstat(fileno(p->f), &st) == 0 && !S_ISREG(st.st_mode)) {
			fclose(p->f);
			return config_fail(p, 0, "not a regular file; expected a config file such as configs/demo.conf");
		}
	}
	if (!config_trusted(fileno(p->f))) {
		fclose(p->f);
		return config_fail(p, 0,
			    "writable by a user other than root: vmlaunch runs as root and does what the config says; expected "
			    "owner root and no group/other write permission (chown root; chmod go-w)");
	}
	r = ini_parse_stream(config_ini_reader, p, config_ini_handler, p);
	fclose(p->f);
	if (r < 0)
		config_fail(p, 0, "cannot parse: out of memory");
	else if (r > 0 && (unsigned)r != p->unclosed_line)
		config_fail(p, (unsigned)r, "expected [section], key = value, or a comment");
	for (size_t i = 0; sets && i < sets->n; i++)
		apply_set(p, sets->v[i]);
	p->where = file;
	if (!p->failed)
		finish(p);
	return p->failed ? -EINVAL : 0;
}

void config_parse_free(struct parse *p)
{
	free(p->line_buf);
	free(p->set_where);
	for (size_t i = 0; i < p->n_sections; i++)
		free(p->sections[i].name);
	free(p->sections);
	for (size_t i = 0; i < p->n_seen; i++) {
		free(p->seen[i].section);
		free(p->seen[i].key);
	}
	free(p->seen);
}

const char *backend_kind_name(enum backend_kind b)
{
	return backend_words[b];
}

void config_free(struct vm_config *cfg)
{
	free(cfg->file);
	free(cfg->dir);
	free(cfg->name);
	free(cfg->machine);
	free(cfg->console_log);
	free(cfg->snapshot);
	free(cfg->kernel);
	free(cfg->initrd);
	free(cfg->append);
	free(cfg->qemu_binary);
	strv_free(&cfg->qemu_extra);
	for (size_t i = 0; i < cfg->n_disks; i++) {
		free(cfg->disks[i].name);
		free(cfg->disks[i].path);
		free(cfg->disks[i].source);
		free(cfg->disks[i].source_format);
		free(cfg->disks[i].source_sha256);
		free(cfg->disks[i].comp_algorithm);
		free(cfg->disks[i].vg);
		free(cfg->disks[i].lv);
		free(cfg->disks[i].thin_pool);
		free(cfg->disks[i].pool);
		free(cfg->disks[i].image);
		free(cfg->disks[i].rbd_namespace);
		free(cfg->disks[i].ceph_conf);
		free(cfg->disks[i].ceph_user);
		free(cfg->disks[i].keyring);
		free(cfg->disks[i].clone_from);
	}
	free(cfg->disks);
	for (size_t i = 0; i < cfg->n_tiers; i++) {
		free(cfg->tiers[i].name);
		free(cfg->tiers[i].path);
	}
	free(cfg->tiers);
	for (size_t i = 0; i < cfg->n_shares; i++) {
		free(cfg->shares[i].name);
		free(cfg->shares[i].path);
		free(cfg->shares[i].mount);
		free(cfg->shares[i].tag);
	}
	free(cfg->shares);
	for (size_t i = 0; i < cfg->n_nets; i++) {
		free(cfg->nets[i].name);
		strv_free(&cfg->nets[i].forwards);
		free(cfg->nets[i].mac);
		free(cfg->nets[i].bridge);
		free(cfg->nets[i].tap);
		free(cfg->nets[i].address);
		free(cfg->nets[i].gateway);
	}
	free(cfg->nets);
	free(cfg->root);
	free(cfg->modules);
	free(cfg->command_user);
	free(cfg->nvram);
	free(cfg->tpm_state);
	strv_free(&cfg->cloud_keys);
	strv_free(&cfg->cloud_key_lines);
	free(cfg->cloud_user);
	free(cfg->cloud_user_data);
	cpulist_free(&cfg->pin_cpus);
	cpulist_free(&cfg->pin_iothreads);
	cpulist_free(&cfg->pin_emulator);
	free(cfg->qemu_user);
	memset(cfg, 0, sizeof(*cfg));
}

const char *config_at(const struct vm_config *cfg, unsigned line)
{
	static char ring[4][PATH_MAX + 32];
	static unsigned next;
	char *buf = ring[next++ % 4];

	if (line == CONFIG_LINE_SET)
		snprintf(buf, sizeof(ring[0]), "%s (from --set)", cfg->file);
	else
		snprintf(buf, sizeof(ring[0]), "%s:%u", cfg->file, line);
	return buf;
}
