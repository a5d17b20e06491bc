/* Parsing and printing CPU lists, the syntax of /sys/devices/system/node/nodeN/cpulist and Cpus_allowed_list. */
#define _GNU_SOURCE
#include "cpulist.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"

static int parse_number(const char **s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)**s))
		return -EINVAL;
	v = strtoul(*s, &end, 10);
	if (v > CPULIST_MAX_CPU)
		return -EINVAL;
	*out = (unsigned)v;
	*s = end;
	return 0;
}

int cpulist_parse(const char *s, struct cpulist *out)
{
	out->cpu = NULL;
	out->n = 0;
	while (*s == ' ')
		s++;
	for (;;) {
		unsigned a, b;

		if (parse_number(&s, &a) < 0)
			goto bad;
		b = a;
		if (*s == '-') {
			s++;
			if (parse_number(&s, &b) < 0 || b < a)
				goto bad;
		}
		out->cpu = xrealloc(out->cpu, (out->n + (b - a) + 1) * sizeof(*out->cpu));
		for (unsigned c = a; c <= b; c++)
			out->cpu[out->n++] = c;
		if (*s == ',') {
			s++;
			continue;
		}
		while (*s == ' ' || *s == '\n')
			s++;
		if (*s)
			goto bad;
		return 0;
	}
bad:
	cpulist_free(out);
	return -EINVAL;
}

static int cmp_unsigned(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

char *cpulist_format(const unsigned *cpus, size_t n)
{
	unsigned *sorted = xmalloc((n ? n : 1) * sizeof(*sorted));
	char *out = xstrdup(""), *tmp;

	memcpy(sorted, cpus, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_unsigned);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && sorted[j + 1] <= sorted[j] + 1)
			j++;
		if (sorted[j] == sorted[i])
			tmp = xasprintf("%s%s%u", out, *out ? "," : "", sorted[i]);
		else
			tmp = xasprintf("%s%s%u-%u", out, *out ? "," : "", sorted[i], sorted[j]);
		free(out);
		out = tmp;
		i = j + 1;
	}
	free(sorted);
	return out;
}

void cpulist_free(struct cpulist *l)
{
	free(l->cpu);
	l->cpu = NULL;
	l->n = 0;
}
