/* Config file → struct vm_config: libinih does the INI syntax, this file the schema, with a file:line for every error. */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpulist.h"
#include "log.h"

enum section_kind {
	SEC_VM, SEC_BOOT, SEC_QEMU, SEC_DISK, SEC_MEMORY, SEC_CPU, SEC_TIER, SEC_SHARE, SEC_NET, SEC_CLOUD_INIT, SEC_COUNT
};
enum value_type { T_STRING, T_PATH, T_PATHS, T_SIZE, T_UINT, T_BOOL, T_ENUM, T_WORDS, T_APPEND, T_CPULIST, T_PIN, T_NODE };

struct key_spec {
	enum section_kind section;
	const char *name;
	enum value_type type;
	size_t offset;      /* of the value in vm_config or disk_config */
	size_t line_offset; /* of its `unsigned line` */
	const char *const *choices; /* T_ENUM: the accepted words, in enum order */
	unsigned min, max;          /* T_UINT bounds */
	unsigned backends;          /* [disk] keys: the backends that use it (B_ALL: every one) */
};

#define B(kind) (1u << (kind))
#define B_ALL (~0u)
#define B_BLOCK (B(BACKEND_ZRAM) | B(BACKEND_BRD) | B(BACKEND_LVM))
#define B_CREATED (B(BACKEND_TMPFS) | B_BLOCK) /* vmlaunch creates the disk: it has a size and can be filled */

static const char *const accel_words[] = { "auto", "kvm", "tcg", NULL };
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
	{ SEC_DISK, "backend", T_ENUM, DISK(backend), backend_words, 0, 0, B_ALL },
	{ SEC_DISK, "size", T_SIZE, DISK(size), NULL, 0, 0, B_CREATED | B(BACKEND_RBD) | B(BACKEND_FILE) },
	{ SEC_DISK, "path", T_PATH, DISK(path), NULL, 0, 0, B(BACKEND_FILE) },
	{ SEC_DISK, "source", T_PATH, DISK(source), NULL, 0, 0, B_CREATED },
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

/* Parser state shared by the line reader and the libinih handler. */
struct parse {
	struct vm_config *cfg;
	FILE *f;
	const char *where; /* "FILE" while reading the file, "--set ARG" afterwards */
	char *set_where;
	unsigned line;     /* of the line libinih is working on: the reader counts them */
	bool key_in_section; /* mirrors libinih's rule for continuation lines */
	bool failed;
	char *line_buf;
	size_t line_cap;
	/* every section header seen, to catch duplicates and empty sections */
	struct seen_section {
		char *name;
		unsigned line;
	} *sections;
	size_t n_sections;
	/* keys set in the current file, to refuse a key given twice */
	struct seen_key {
		char *section, *key;
		unsigned line;
	} *seen;
	size_t n_seen;
};

static int fail(struct parse *p, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parse *p, unsigned line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (p->failed)
		return -EINVAL;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line == CONFIG_LINE_SET)
		return log_error("%s: (from --set) %s", p->where, msg);
	if (line)
		return log_error("%s:%u: %s", p->where, line, msg);
	return log_error("%s: %s", p->where, msg);
}

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

static char *choices_list(const char *const *choices)
{
	char buf[256] = "";

	for (size_t i = 0; choices[i]; i++) {
		if (i)
			strncat(buf, choices[i + 1] ? ", " : " or ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, choices[i], sizeof(buf) - strlen(buf) - 1);
	}
	return xstrdup(buf);
}

static bool valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

bool config_vm_name_valid(const char *name)
{
	size_t n = strlen(name);

	/* NAME.lock sits beside the state dir NAME: "x.lock" would be another VM's lock */
	return valid_name(name, VM_NAME_MAX) && !(n >= 5 && !strcmp(name + n - 5, ".lock"));
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
		if (!valid_name(name, DISK_NAME_MAX))
			return fail(p, line, "section [%s]: name \"%s\": expected 1 to %d letters, digits, '_', '.' or '-'",
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
	return fail(p, line,
		    "unknown section [%s]: expected [vm], [boot], [memory], [cpu], [qemu], [disk NAME], [share NAME], [net "
		    "NAME] or [memory tier NAME]",
		    section);
}

static int set_value(struct parse *p, const struct key_spec *k, void *base, const char *section, const char *value,
		     unsigned line)
{
	void *field = (char *)base + k->offset;
	const char *what = k->name;
	char *list;

	*(unsigned *)((char *)base + k->line_offset) = line ? line : CONFIG_LINE_SET;
	/* Values reach file names, journal records and qemu's arguments: no line breaks or other control characters
	 * (--set can carry them; the file cannot). */
	for (const char *c = value; *c; c++)
		if ((unsigned char)*c < ' ' && *c != '\t')
			return fail(p, line, "[%s] %s: contains a control character (0x%02x); expected text", section, what,
				    (unsigned char)*c);
	switch (k->type) {
	case T_STRING:
		if (!*value)
			return fail(p, line, "[%s] %s: expected a value", section, what);
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case T_PATH:
		if (!*value)
			return fail(p, line, "[%s] %s: expected a path", section, what);
		free(*(char **)field);
		*(char **)field = resolve_path(p->cfg, value);
		return 0;
	case T_PATHS: {
		/* repeatable: each line adds one */
		char *path;

		if (!*value)
			return fail(p, line, "[%s] %s: expected a path", section, what);
		path = resolve_path(p->cfg, value);
		strv_push((struct strv *)field, path);
		free(path);
		return 0;
	}
	case T_SIZE:
		if (config_parse_size(value, (uint64_t *)field) < 0)
			return fail(p, line,
				    "[%s] %s \"%s\": expected a whole number with K, M, G or T suffix (e.g. 512M, 2G)",
				    section, what, value);
		return 0;
	case T_UINT: {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(value, &end, 10);
		if (!isdigit((unsigned char)*value) || *end || errno || n < k->min || n > k->max)
			return fail(p, line, "[%s] %s \"%s\": expected a whole number from %u to %u", section, what,
				    value, k->min, k->max);
		*(unsigned *)field = (unsigned)n;
		return 0;
	}
	case T_BOOL:
		if (parse_bool(value, (bool *)field) < 0)
			return fail(p, line, "[%s] %s \"%s\": expected yes or no", section, what, value);
		return 0;
	case T_ENUM:
		for (size_t i = 0; k->choices[i]; i++)
			if (!strcmp(value, k->choices[i])) {
				*(int *)field = (int)i;
				return 0;
			}
		list = choices_list(k->choices);
		fail(p, line, "[%s] %s \"%s\": expected %s", section, what, value, list);
		free(list);
		return -EINVAL;
	case T_WORDS: {
		/* Split on blanks, no quoting: the words go to qemu as separate arguments, never through a shell. */
		char *copy = xstrdup(value), *save = NULL;

		for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
			strv_push((struct strv *)field, w);
		free(copy);
		return 0;
	}
	case T_CPULIST:
	case T_PIN: {
		struct cpulist *l = k->type == T_PIN ? &p->cfg->pin_cpus : field;

		if (k->type == T_PIN && (!strcmp(value, "auto") || !strcmp(value, "off"))) {
			*(enum pin_choice *)field = !strcmp(value, "auto") ? PIN_AUTO : PIN_OFF;
			cpulist_free(l);
			return 0;
		}
		cpulist_free(l);
		if (cpulist_parse(value, l) < 0)
			return fail(p, line, "[%s] %s \"%s\": expected %shost CPUs like 2-5 or 2,3,4,5", section, what, value,
				    k->type == T_PIN ? "auto, off, or " : "");
		if (k->type == T_PIN)
			*(enum pin_choice *)field = PIN_LIST;
		for (size_t i = 0; k->type == T_PIN && i < l->n; i++)
			for (size_t j = 0; j < i; j++)
				if (l->cpu[i] == l->cpu[j])
					return fail(p, line, "[%s] %s \"%s\": names host CPU %u twice; expected one CPU per "
							     "vCPU (vCPUs sharing a CPU stall each other)",
						    section, what, value, l->cpu[i]);
		return 0;
	}
	case T_NODE: {
		char *end;
		unsigned long n;

		if (!strcmp(value, "auto")) {
			*(int *)field = HOST_NODE_AUTO;
			return 0;
		}
		errno = 0;
		n = strtoul(value, &end, 10);
		if (!isdigit((unsigned char)*value) || *end || errno || n > k->max)
			return fail(p, line, "[%s] %s \"%s\": expected auto or a node number from 0 to %u", section, what,
				    value, k->max);
		*(int *)field = (int)n;
		return 0;
	}
	case T_APPEND: {
		/* Repeated or continued lines add words: long kernel command lines can be split over lines. */
		char **s = field;
		char *joined = *s ? xasprintf("%s %s", *s, value) : xstrdup(value);

		free(*s);
		*s = joined;
		return 0;
	}
	}
	return -EINVAL;
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
		list = known_keys_of(kind);
		fail(p, line, "[%s]: unknown key \"%s\": expected one of %s", section, name, list);
		free(list);
		return -EINVAL;
	}
	if (from_file && k->type != T_WORDS && k->type != T_APPEND && k->type != T_PATHS) {
		char *canonical = canonical_section(section);

		for (size_t i = 0; i < p->n_seen; i++)
			if (!strcmp(p->seen[i].section, canonical) && !strcmp(p->seen[i].key, name)) {
				free(canonical);
				return fail(p, line, "[%s] %s: set twice (first on line %u); expected it once", section,
					    name, p->seen[i].line);
			}
		p->seen = xrealloc(p->seen, (p->n_seen + 1) * sizeof(*p->seen));
		p->seen[p->n_seen++] = (struct seen_key){ canonical, xstrdup(name), line };
	}
	base = disk_name ? named_for(p, kind, disk_name, line) : p->cfg;
	return set_value(p, k, base, section, value, line);
}

static int config_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	if (p->failed)
		return 1; /* report only the first error; libinih keeps going */
	p->key_in_section = true;
	if (!*section) {
		fail(p, p->line, "\"%s\" is outside any section: expected a section header such as [vm] first",
		     name);
		return 0;
	}
	return apply(p, section, name, value, p->line, true) < 0 ? 0 : 1;
}

static void note_section(struct parse *p, const char *line)
{
	const char *end = strchr(line, ']');
	char *name;

	if (!end) {
		fail(p, p->line, "expected [section], key = value, or a comment (no ']' closes the section name)");
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
			fail(p, p->line, "section [%s] appears twice (first on line %u); expected each section once", name,
			     p->sections[i].line);
			free(name);
			return;
		}
	{
		/* Judge the header where it stands, not at its first key. */
		enum section_kind kind;
		const char *disk_name;

		classify_section(p, name, p->line, &kind, &disk_name);
	}
	p->sections = xrealloc(p->sections, (p->n_sections + 1) * sizeof(*p->sections));
	p->sections[p->n_sections++] = (struct seen_section){ name, p->line };
	p->key_in_section = false;
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
		fail(p, p->line, "contains a NUL byte: expected text");
	else if (len > num - 1)
		fail(p, p->line, "line is longer than %d characters: split long values over continuation lines",
		     num - 2);
	if (p->failed) {
		str[0] = '\0';
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

static const char *unused_key_hint(const char *key, enum backend_kind b)
{
	if (b == BACKEND_FILE && !strcmp(key, "source"))
		return " (path = is the image itself)";
	if (b != BACKEND_FILE && !strcmp(key, "path"))
		return " (vmlaunch creates the disk; use source = to fill it)";
	if (b != BACKEND_FILE && !strcmp(key, "format"))
		return " (the disk vmlaunch creates is raw; source-format = describes the source image)";
	return "";
}

static int finish_disk(struct parse *p, struct disk_config *d)
{
	bool in_ram = d->backend == BACKEND_TMPFS || d->backend == BACKEND_ZRAM || d->backend == BACKEND_BRD;
	const char *b;
	char *list;

	if (!d->backend_line) {
		list = choices_list(backend_words);
		if (d->line == CONFIG_LINE_SET)
			fail(p, d->line, "no disk is named \"%s\" in %s; to add one, also give --set disk.%s.backend=%s",
			     d->name, p->cfg->file, d->name, list);
		else
			fail(p, d->line, "[disk %s]: missing key \"backend\": expected backend = %s", d->name, list);
		free(list);
		return -EINVAL;
	}
	b = backend_kind_name(d->backend);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key_spec *k = &keys[i];
		unsigned line;

		if (k->section != SEC_DISK)
			continue;
		line = *(const unsigned *)((const char *)d + k->line_offset);
		if (line && !(k->backends & B(d->backend)))
			return fail(p, line, "[disk %s] %s: not used by backend %s%s", d->name, k->name, b,
				    unused_key_hint(k->name, d->backend));
	}
	if (d->backend == BACKEND_FILE && !d->path_line)
		return fail(p, d->line, "[disk %s]: backend file needs path = IMAGE (a raw or qcow2 file)", d->name);
	if (in_ram && !d->size_line)
		return fail(p, d->line, "[disk %s]: backend %s needs size = (e.g. size = 1G)", d->name, b);
	if (d->backend == BACKEND_RBD && !d->pool_line)
		return fail(p, d->line, "[disk %s]: backend rbd needs pool = POOL", d->name);
	if (d->create_line && d->create && d->clone_from_line)
		return fail(p, d->clone_from_line, "[disk %s] clone-from: expected either create = yes or clone-from =, not both",
			    d->name);
	if (d->clone_from && (!strchr(d->clone_from, '/') || !strchr(d->clone_from, '@')))
		return fail(p, d->clone_from_line, "[disk %s] clone-from \"%s\": expected POOL/IMAGE@SNAPSHOT", d->name,
			    d->clone_from);
	if (d->backend == BACKEND_LVM && !d->vg_line)
		return fail(p, d->line, "[disk %s]: backend lvm needs vg = VOLUME_GROUP", d->name);
	if (d->thin_pool_size_line && !d->thin_pool_line)
		return fail(p, d->thin_pool_size_line, "[disk %s] thin-pool-size: needs thin-pool = NAME as well", d->name);
	if (in_ram) {
		if (d->ephemeral_line && !d->ephemeral)
			return fail(p, d->ephemeral_line,
				    "[disk %s] ephemeral: a %s disk lives in RAM and is always ephemeral; expected yes",
				    d->name, b);
		d->ephemeral = true;
	}
	if (d->source_format_line && !d->source_line)
		return fail(p, d->source_format_line, "[disk %s] source-format: needs source = IMAGE as well", d->name);
	if (d->source_backing_line && !d->source_line)
		return fail(p, d->source_backing_line, "[disk %s] source-backing: needs source = IMAGE as well", d->name);
	/* with a chain allowed, a guessed format could follow a header a guest wrote into a raw image */
	if (d->source_backing == SOURCE_BACKING_ALLOW && !d->source_format)
		return fail(p, d->source_backing_line, "[disk %s] source-backing = allow: needs source-format as well",
			    d->name);
	if (d->readonly && d->ephemeral && d->backend == BACKEND_FILE)
		return fail(p, d->readonly_line,
			    "[disk %s] readonly: an ephemeral overlay exists to take writes; expected either readonly or ephemeral",
			    d->name);
	return 0;
}

/* A path inside the guest: absolute, no whitespace or control characters (the guest protocol is line based). */
static bool valid_guest_path(const char *s)
{
	if (s[0] != '/' || strlen(s) > 255 || strstr(s, "/../") || !strcmp(s, "/"))
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

/* [boot] root =, modules = and [vm] command-user = go with the bundled guest. */
static int finish_boot(struct parse *p)
{
	struct vm_config *cfg = p->cfg;
	bool found = false;

	if (cfg->root) {
		for (size_t i = 0; i < cfg->n_disks; i++)
			found |= !strcmp(cfg->disks[i].name, cfg->root);
		if (!found)
			return fail(p, cfg->root_line, "[boot] root \"%s\": no [disk %s]; expected the name of a [disk] section",
				    cfg->root, cfg->root);
		if (!cfg->kernel)
			return fail(p, cfg->root_line, "[boot] root: needs kernel = and initrd = (the bundled guest mounts the "
						       "disk and runs its userland)");
		if (!cfg->modules) {
			/* the bundled guest's build puts the kernel's modules image beside the kernel */
			char *dir = xstrdup(cfg->kernel), *slash = strrchr(dir, '/');

			if (slash)
				*slash = '\0';
			cfg->modules = xasprintf("%s/modules.img", slash ? dir : ".");
			free(dir);
		}
		if (access(cfg->modules, R_OK) < 0)
			return fail(p, cfg->modules_line ? cfg->modules_line : cfg->root_line,
				    "[boot] modules %s: %s; expected the kernel's modules image (make guest builds "
				    "modules.img beside the bundled vmlinux)",
				    cfg->modules, strerror(errno));
	} else if (cfg->modules_line) {
		return fail(p, cfg->modules_line, "[boot] modules: goes with root = DISK");
	}
	if (cfg->kernel && (cfg->firmware == FIRMWARE_UEFI || cfg->firmware == FIRMWARE_UEFI_SECURE))
		return fail(p, cfg->firmware_line, "[boot] firmware = uefi: the kernel boots directly (PVH), without "
						   "firmware; expected firmware = bios with kernel =");
	if (cfg->nvram && cfg->firmware != FIRMWARE_UEFI && cfg->firmware != FIRMWARE_UEFI_SECURE &&
	    (cfg->firmware != FIRMWARE_AUTO || cfg->kernel))
		return fail(p, cfg->nvram_line, "[boot] nvram: UEFI's variable store; expected firmware = uefi");
	if (cfg->command_user && (!valid_name(cfg->command_user, 32) || cfg->command_user[0] == '.'))
		return fail(p, cfg->command_user_line, "[vm] command-user \"%s\": expected a user name", cfg->command_user);
	return 0;
}

/* The invoking user: the one behind sudo, else this one; root alone has no login of its own in a guest. */
static struct passwd *invoking_user(void)
{
	const char *sudo = getenv("SUDO_USER");
	struct passwd *pw = sudo && *sudo ? getpwnam(sudo) : NULL;

	return pw ? pw : getpwuid(getuid());
}

/* A key file is read now, as the seed will read it (root reads a mode-000 file, but not a directory or a private
 * key pasted by mistake): its first line must be an OpenSSH public key. */
static int check_public_key(struct parse *p, const char *path)
{
	unsigned line = p->cfg->cloud_keys_line;
	char buf[16384] = ""; /* a public key is one line; an RSA-16384 one is under 3 KiB */
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(p, line, "[cloud-init] ssh-key %s: %s; expected a readable public key file (ssh-keygen makes "
				     "one: ~/.ssh/id_ed25519.pub)",
			    path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		int e = errno;

		close(fd);
		return fail(p, line, "[cloud-init] ssh-key %s: %s; expected a readable public key file", path, strerror(e));
	}
	close(fd);
	buf[n] = '\0';
	if (strncmp(buf, "ssh-", 4) && strncmp(buf, "ecdsa-", 6) && strncmp(buf, "sk-", 3))
		return fail(p, line, "[cloud-init] ssh-key %s: expected an OpenSSH public key (a line such as "
				     "\"ssh-ed25519 AAAA... you@host\", the .pub file)%s",
			    path, strstr(buf, "PRIVATE KEY") ? "; this is a private key" : "");
	buf[strcspn(buf, "\r\n")] = '\0';
	strv_push(&p->cfg->cloud_key_lines, buf);
	return 0;
}

/* [cloud-init]: a NoCloud seed for cloud images; keys readable now, so a bad one is a config error. */
static int finish_cloud_init(struct parse *p)
{
	struct vm_config *cfg = p->cfg;
	struct passwd *pw;

	for (size_t i = 0; i < p->n_sections; i++)
		if (!strcmp(p->sections[i].name, "cloud-init"))
			cfg->cloud_init_line = p->sections[i].line;
	if (!cfg->cloud_init_line && (cfg->cloud_keys.n || cfg->cloud_user || cfg->cloud_user_data))
		cfg->cloud_init_line = CONFIG_LINE_SET; /* made by --set alone */
	if (!cfg->cloud_init_line)
		return 0;
	pw = invoking_user();
	if (!cfg->cloud_keys.n && pw) {
		static const char *const kinds[] = { "ed25519", "ecdsa", "rsa" };

		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			char *key = xasprintf("%s/.ssh/id_%s.pub", pw->pw_dir, kinds[i]);

			if (access(key, R_OK) == 0)
				strv_push(&cfg->cloud_keys, key);
			free(key);
		}
	}
	for (size_t i = 0; i < cfg->cloud_keys.n; i++) {
		int r = check_public_key(p, cfg->cloud_keys.v[i]);

		if (r < 0)
			return r;
	}
	if (cfg->cloud_user_data && access(cfg->cloud_user_data, R_OK) < 0)
		return fail(p, cfg->cloud_user_data_line, "[cloud-init] user-data %s: %s", cfg->cloud_user_data,
			    strerror(errno));
	if (!cfg->cloud_merge_keys_line)
		cfg->cloud_merge_keys = true;
	if (!cfg->cloud_user)
		cfg->cloud_user = xstrdup(pw && pw->pw_uid != 0 ? pw->pw_name : "vmlaunch");
	if (!valid_name(cfg->cloud_user, 32) || cfg->cloud_user[0] == '.' || !strcmp(cfg->cloud_user, "root"))
		return fail(p, cfg->cloud_user_line, "[cloud-init] user \"%s\": expected a user name other than root",
			    cfg->cloud_user);
	return 0;
}

static int finish_share(struct parse *p, struct share_config *s)
{
	struct stat st;

	if (!s->path_line)
		return fail(p, s->line, "[share %s]: missing key \"path\": expected path = HOST_DIRECTORY", s->name);
	if (stat(s->path, &st) < 0)
		return fail(p, s->path_line, "[share %s] path %s: %s; expected an existing directory", s->name, s->path,
			    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(p, s->path_line, "[share %s] path %s: expected a directory", s->name, s->path);
	if (!s->readonly_line)
		s->readonly = true;
	if (!s->tag)
		s->tag = xstrdup(s->name);
	if (strlen(s->tag) > 36 || !valid_name(s->tag, 36))
		return fail(p, s->tag_line, "[share %s] tag \"%s\": expected 1 to 36 letters, digits, '_', '.' or '-'",
			    s->name, s->tag);
	if (!s->mount)
		s->mount = xasprintf("/mnt/%s", s->name);
	if (!valid_guest_path(s->mount))
		return fail(p, s->mount_line, "[share %s] mount \"%s\": expected an absolute guest path without blanks",
			    s->name, s->mount);
	for (struct share_config *o = p->cfg->shares; o < s; o++)
		if (!strcmp(o->tag, s->tag) || !strcmp(o->mount, s->mount))
			return fail(p, s->line, "[share %s]: same %s as [share %s]; expected each share its own", s->name,
				    strcmp(o->tag, s->tag) ? "mount" : "tag", o->name);
	return 0;
}

/* forward = tcp:[HOSTADDR:]HOSTPORT[+]-:GUESTPORT: qemu's hostfwd spelling, plus '+' for "or the first free port
 * after it". HOSTADDR defaults to 127.0.0.1: a forward is for this host unless it says otherwise. */
bool config_forward_parse(const char *f, struct net_forward *out)
{
	unsigned a = 127, b = 0, c = 0, d = 1, host, guest;
	const char *port;
	char *end;

	memset(out, 0, sizeof(*out));
	if (strncmp(f, "tcp:", 4) && strncmp(f, "udp:", 4))
		return false;
	out->udp = f[0] == 'u';
	f += 4;
	port = strchr(f, ':');
	if (port && port > f && port[-1] != '-') { /* an address before the port ("-:" separates the guest's) */
		int n = 0;

		if (sscanf(f, "%3u.%3u.%3u.%3u:%n", &a, &b, &c, &d, &n) != 4 || f + n != port + 1 || a > 255 || b > 255 ||
		    c > 255 || d > 255)
			return false;
		port++;
	} else {
		port = f;
	}
	if (port[0] < '0' || port[0] > '9')
		return false;
	host = (unsigned)strtoul(port, &end, 10);
	if (*end == '+') {
		out->first_free = true;
		end++;
	}
	if (strncmp(end, "-:", 2) || end[2] < '0' || end[2] > '9')
		return false;
	guest = (unsigned)strtoul(end + 2, &end, 10);
	if (*end || !host || host > 65535 || !guest || guest > 65535)
		return false;
	snprintf(out->addr, sizeof(out->addr), "%u.%u.%u.%u", a, b, c, d);
	out->host = host;
	out->guest = guest;
	return true;
}

static bool valid_forward(const char *f)
{
	struct net_forward parsed;

	return config_forward_parse(f, &parsed);
}

static int finish_net(struct parse *p, struct net_config *n)
{
	for (size_t i = 0; i < n->forwards.n; i++)
		if (!valid_forward(n->forwards.v[i]))
			return fail(p, n->forwards_line,
				    "[net %s] forward \"%s\": expected tcp:[HOSTADDR:]HOSTPORT[+]-:GUESTPORT (e.g. "
				    "tcp:2222-:22, tcp:2222+-:22 for the first free port from 2222, or tcp:127.0.0.1:8080-:80)",
				    n->name, n->forwards.v[i]);
	if (n->mode != NET_USER && (n->forwards.n || n->restricted_line))
		return fail(p, n->forwards.n ? n->forwards_line : n->restricted_line,
			    "[net %s]: forward and restrict go with mode = user (a tap is on its bridge's network)", n->name);
	if (n->mode == NET_TAP && !n->bridge)
		return fail(p, n->line, "[net %s]: mode = tap needs bridge = BRIDGE (an existing bridge: ip link add BR type "
					"bridge)",
			    n->name);
	if (n->mode != NET_TAP && (n->bridge_line || n->tap_line))
		return fail(p, n->bridge_line ? n->bridge_line : n->tap_line, "[net %s]: bridge and tap go with mode = tap",
			    n->name);
	if ((n->bridge && (strlen(n->bridge) >= 16 || !valid_name(n->bridge, 15))) ||
	    (n->tap && (strlen(n->tap) >= 16 || !valid_name(n->tap, 15))))
		return fail(p, n->bridge && (strlen(n->bridge) >= 16 || !valid_name(n->bridge, 15)) ? n->bridge_line
												      : n->tap_line,
			    "[net %s]: expected an interface name of up to 15 letters, digits, '_', '.' or '-'", n->name);
	if (n->mac) {
		unsigned m[6];
		char tail;

		if (sscanf(n->mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &tail) != 6 ||
		    strlen(n->mac) != 17 || (m[0] & 1))
			return fail(p, n->mac_line, "[net %s] mac \"%s\": expected a unicast address like 52:54:00:12:34:56",
				    n->name, n->mac);
	}
	return 0;
}

static int finish_tuning(struct parse *p)
{
	struct vm_config *cfg = p->cfg;

	if (cfg->pin == PIN_LIST && cfg->pin_cpus.n != cfg->cpus) {
		char *l = cpulist_format(cfg->pin_cpus.cpu, cfg->pin_cpus.n);

		fail(p, cfg->pin_line, "[cpu] pin \"%s\": names %zu host CPUs; expected one per vCPU (%u)", l,
		     cfg->pin_cpus.n, cfg->cpus);
		free(l);
		return -EINVAL;
	}
	if (cfg->pin != PIN_LIST && (cfg->pin_iothreads_line || cfg->pin_emulator_line))
		return fail(p, cfg->pin_iothreads_line ? cfg->pin_iothreads_line : cfg->pin_emulator_line,
			    "[cpu] iothreads and emulator go with pin = LIST; expected pin = host CPUs for the vCPUs");
	if (cfg->qemu_user && !getpwnam(cfg->qemu_user))
		return fail(p, cfg->qemu_user_line, "[qemu] user \"%s\": no such user", cfg->qemu_user);
	for (size_t i = 0; i < cfg->n_tiers; i++) {
		struct tier_config *t = &cfg->tiers[i];

		if (!t->backend_line)
			return fail(p, t->line, "[memory tier %s]: missing key \"backend\": expected backend = dram or file",
				    t->name);
		if (!t->size_line)
			return fail(p, t->line, "[memory tier %s]: missing key \"size\" (e.g. size = 1G)", t->name);
		if (t->size % (2ULL << 20))
			return fail(p, t->size_line, "[memory tier %s] size: expected a multiple of 2M", t->name);
		if (t->backend == TIER_FILE && !t->path_line)
			return fail(p, t->line, "[memory tier %s]: backend file needs path = (a DAX device, file or directory)",
				    t->name);
		if (t->backend == TIER_DRAM && t->path_line)
			return fail(p, t->path_line, "[memory tier %s] path: not used by backend dram", t->name);
	}
	return 0;
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
	if (!config_vm_name_valid(cfg->name))
		return fail(p, cfg->name_line,
			    "[vm] name \"%s\": expected 1 to %d letters, digits, '_', '.' or '-', not ending in .lock (it names "
			    "/run/vmlaunch/NAME)",
			    cfg->name, VM_NAME_MAX);
	if (cfg->memory < (16ULL << 20))
		return fail(p, cfg->memory_line, "[vm] memory: expected at least 16M");
	if (!cfg->machine)
		cfg->machine = xstrdup("q35");
	if (strcmp(cfg->machine, "q35"))
		return fail(p, cfg->machine_line, "[vm] machine \"%s\": expected q35 (the only machine vmlaunch tunes for)",
			    cfg->machine);
	if (cfg->kernel && access(cfg->kernel, R_OK) < 0)
		return fail(p, cfg->kernel_line, "[boot] kernel %s: %s", cfg->kernel, strerror(errno));
	if (cfg->initrd && access(cfg->initrd, R_OK) < 0)
		return fail(p, cfg->initrd_line, "[boot] initrd %s: %s", cfg->initrd, strerror(errno));
	if (!cfg->kernel && cfg->initrd_line)
		return fail(p, cfg->initrd_line, "[boot] initrd: needs kernel = as well");
	if (!cfg->kernel && cfg->append_line)
		return fail(p, cfg->append_line, "[boot] append: needs kernel = as well (firmware boot has no command line)");
	if (!cfg->qemu_binary)
		cfg->qemu_binary = xstrdup("qemu-system-x86_64");
	for (size_t i = 0; i < cfg->n_disks; i++)
		if (finish_disk(p, &cfg->disks[i]) < 0)
			return -EINVAL;
	if (finish_boot(p) < 0 || finish_cloud_init(p) < 0)
		return -EINVAL;
	for (size_t i = 0; i < cfg->n_shares; i++)
		if (finish_share(p, &cfg->shares[i]) < 0)
			return -EINVAL;
	for (size_t i = 0; i < cfg->n_nets; i++)
		if (finish_net(p, &cfg->nets[i]) < 0)
			return -EINVAL;
	return finish_tuning(p);
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
		return fail(p, 0, "expected --set SECTION.KEY=VALUE (e.g. --set vm.cpus=4 or --set disk.root.size=2G)");
	lhs = xstrndup(arg, (size_t)(eq - arg));
	dot = strrchr(lhs, '.');
	if (!dot || dot == lhs || !dot[1]) {
		free(lhs);
		return fail(p, 0, "expected --set SECTION.KEY=VALUE (e.g. --set vm.cpus=4 or --set disk.root.size=2G)");
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

int config_load(const char *file, const struct strv *sets, struct vm_config *cfg)
{
	struct parse p = { .cfg = cfg, .where = file };
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

	p.f = fopen(file, "re");
	if (!p.f)
		return log_errno(errno, "cannot read config %s", file);
	{
		struct stat st;

		if (fstat(fileno(p.f), &st) == 0 && !S_ISREG(st.st_mode)) {
			fclose(p.f);
			return fail(&p, 0, "not a regular file; expected a config file such as configs/demo.conf");
		}
	}
	if (!config_trusted(fileno(p.f))) {
		fclose(p.f);
		return fail(&p, 0,
			    "writable by a user other than root: vmlaunch runs as root and does what the config says; expected "
			    "owner root and no group/other write permission (chown root; chmod go-w)");
	}
	r = ini_parse_stream(config_ini_reader, &p, config_ini_handler, &p);
	fclose(p.f);
	if (r < 0 && !p.failed)
		fail(&p, 0, "cannot parse: out of memory");
	else if (r > 0 && !p.failed)
		fail(&p, (unsigned)r, "expected [section], key = value, or a comment");
	for (size_t i = 0; !p.failed && sets && i < sets->n; i++)
		apply_set(&p, sets->v[i]);
	p.where = file;
	if (!p.failed)
		finish(&p);

	free(p.line_buf);
	free(p.set_where);
	for (size_t i = 0; i < p.n_sections; i++)
		free(p.sections[i].name);
	free(p.sections);
	for (size_t i = 0; i < p.n_seen; i++) {
		free(p.seen[i].section);
		free(p.seen[i].key);
	}
	free(p.seen);
	return p.failed ? -EINVAL : 0;
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
	}
	free(cfg->nets);
	free(cfg->root);
	free(cfg->modules);
	free(cfg->command_user);
	free(cfg->nvram);
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
