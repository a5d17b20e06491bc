/* A growable, NULL-terminated vector of strings: how every command line in vmlaunch is built. */
#ifndef VMLAUNCH_STRV_H
#define VMLAUNCH_STRV_H

#include <stdbool.h>
#include <stddef.h>

struct strv {
	char **v; /* always NULL-terminated once anything was pushed */
	size_t n, cap;
};

#define STRV_INIT { NULL, 0, 0 }

/* Allocation failure aborts (as git's xmalloc does): a launcher that cannot allocate a few bytes cannot recover. */
void strv_push(struct strv *s, const char *arg);
void strv_pushf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Pushes each argument up to a NULL sentinel. */
void strv_push_many(struct strv *s, ...) __attribute__((sentinel));
void strv_extend(struct strv *s, const struct strv *other);
void strv_free(struct strv *s);
/* The words joined by SEP, for messages (-v shows qemu's argv); never run through a shell. */
char *strv_join(const struct strv *s, const char *sep);

/* xmalloc-style helpers shared by the whole program. */
/* Whether the blank-separated words of `list` (NULL: none) include `word` itself, or with `prefix` one starting with
 * it: a kernel command line's "tsc=...", a /proc/cpuinfo flags line's "constant_tsc". */
bool words_have(const char *list, const char *word, bool prefix);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
