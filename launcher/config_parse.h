/* What config.c (reading the INI file), config_values.c (each value), config_report.c (the mistakes),
 * config_check.c (judging the whole config) and config_load.c (reading, then judging) share: the schema's types and
 * the parser's state. Internal to those files. */
#ifndef VMLAUNCH_CONFIG_PARSE_H
#define VMLAUNCH_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* config_types.h and strv.h define these; this header names them only. */
struct strv;
struct vm_config;

enum section_kind {
	SEC_VM, SEC_BOOT, SEC_QEMU, SEC_DISK, SEC_MEMORY, SEC_CPU, SEC_TIER, SEC_SHARE, SEC_NET, SEC_CLOUD_INIT, SEC_COUNT
};
enum value_type { T_STRING, T_PATH, T_SOURCE, T_PATHS, T_SIZE, T_UINT, T_BOOL, T_ENUM, T_WORDS, T_APPEND, T_CPULIST, T_PIN, T_NODE };

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

/* The schema (config.c): every key of every section, and the [disk] backend words in enum order. */
extern const struct key_spec *const config_keys;
extern const size_t config_n_keys;
extern const char *const *const config_backend_words;

/* Parser state shared by the line reader and the libinih handler. */
struct parse {
	struct vm_config *cfg;
	FILE *f;
	const char *where; /* "FILE" while reading the file, "--set ARG" afterwards */
	char *set_where;
	unsigned line;     /* of the line libinih is working on: the reader counts them */
	bool key_in_section; /* mirrors libinih's rule for continuation lines */
	bool section_bad;    /* the current header was reported: its keys are not judged again */
	unsigned unclosed_line; /* a "[name" line already reported, which libinih reports too */
	bool failed;
	unsigned n_errors;
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

/* Reports one mistake (FILE:LINE: MSG, or "(from --set)") and goes on: every mistake is said in one run
 * (config_report.c). Returns -EINVAL. */
int config_fail(struct parse *p, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "a, b or c" (allocated). */
char *config_choices_list(const char *const *choices);
/* 1 to max letters, digits, '_', '.' or '-', not starting with '.' or '-'. */
bool config_valid_name(const char *s, size_t max);

/* Reads FILE into p->cfg (defaults first) and applies each --set of `sets` on top; every mistake reported. 0, -EINVAL
 * after a mistake, or the negative errno of a file that cannot be read. */
int config_read(struct parse *p, const char *file, const struct strv *sets);
void config_parse_free(struct parse *p);

/* Sets the value of key K in the section's struct at BASE from VALUE (config_values.c); 0, or -EINVAL once the
 * mistake is reported with its line. */
int config_set_value(struct parse *p, const struct key_spec *k, void *base, const char *section, const char *value,
		     unsigned line);

/* Every check on the config as a whole, once all of it was read (config_check.c): each mistake reported. */
void config_check(struct parse *p);

#endif
