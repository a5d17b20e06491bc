/* String vectors and the allocation helpers everything else builds on. */
#define _GNU_SOURCE
#include "strv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_oom(void)
{
	fputs("vmlaunch: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die_oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		die_oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die_oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		die_oom();
	return d;
}

char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		die_oom();
	return d;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die_oom();
	va_end(ap);
	return s;
}

static void strv_push_owned(struct strv *s, char *arg)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = arg;
	s->v[s->n] = NULL;
}

void strv_push(struct strv *s, const char *arg)
{
	strv_push_owned(s, xstrdup(arg));
}

void strv_pushf(struct strv *s, const char *fmt, ...)
{
	va_list ap;
	char *arg;

	va_start(ap, fmt);
	if (vasprintf(&arg, fmt, ap) < 0)
		die_oom();
	va_end(ap);
	strv_push_owned(s, arg);
}

void strv_push_many(struct strv *s, ...)
{
	va_list ap;
	const char *arg;

	va_start(ap, s);
	while ((arg = va_arg(ap, const char *)))
		strv_push(s, arg);
	va_end(ap);
}

void strv_extend(struct strv *s, const struct strv *other)
{
	for (size_t i = 0; i < other->n; i++)
		strv_push(s, other->v[i]);
}

void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

bool words_have(const char *list, const char *word, bool prefix)
{
	static const char blanks[] = " \t\n";
	size_t n = strlen(word), len;

	for (const char *w = list; w && *w; w += len) {
		w += strspn(w, blanks);
		len = strcspn(w, blanks);
		if (len >= n && !strncmp(w, word, n) && (prefix || len == n))
			return true;
	}
	return false;
}

char *strv_join(const struct strv *s, const char *sep)
{
	size_t len = 1;
	char *out, *end;

	for (size_t i = 0; i < s->n; i++)
		len += strlen(s->v[i]) + strlen(sep);
	out = end = xmalloc(len);
	*out = '\0';
	for (size_t i = 0; i < s->n; i++)
		end = stpcpy(stpcpy(end, i ? sep : ""), s->v[i]);
	return out;
}
