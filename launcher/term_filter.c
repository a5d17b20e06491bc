/* Strips the terminal mode changes firmware sends over the serial console (term_filter.h). Screen clears, cursor
 * moves and colours pass: a boot loader's menu needs them, and they leave no mode behind. */
#include "term_filter.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "strv.h"

#define ESC '\033'

/* The length of a sequence to drop at s, 0 when s does not start one, -1 when s is a strict start of one. */
static ssize_t dropped_at(const char *s, size_t len)
{
	static const char *const fixed[] = { "\033c", "\033[?7l" };
	bool partial = false;
	size_t i;

	for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++) {
		size_t flen = strlen(fixed[k]);

		if (len >= flen && !memcmp(s, fixed[k], flen))
			return (ssize_t)flen;
		if (len < flen && !memcmp(s, fixed[k], len))
			partial = true;
	}
	/* ESC [ = digits h: the ANSI.SYS mode set OVMF sends (=3h: 80x25 colour text) */
	if (len < 3)
		return partial || !memcmp(s, "\033[=", len) ? -1 : 0;
	if (memcmp(s, "\033[=", 3))
		return partial ? -1 : 0;
	for (i = 3; i < len && i < 6 && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == len)
		return i < 6 ? -1 : 0;
	return i > 3 && s[i] == 'h' ? (ssize_t)(i + 1) : 0;
}

size_t term_filter(struct term_filter *f, const char *in, size_t n, char *out)
{
	size_t total = f->n_held + n, o = 0, i = 0;
	char *all = xmalloc(total ? total : 1);

	memcpy(all, f->held, f->n_held);
	memcpy(all + f->n_held, in, n);
	f->n_held = 0;
	while (i < total) {
		ssize_t d = all[i] == ESC ? dropped_at(all + i, total - i) : 0;

		if (d < 0 && total - i <= sizeof(f->held)) {
			memcpy(f->held, all + i, total - i);
			f->n_held = total - i;
			break;
		}
		if (d > 0) {
			i += (size_t)d;
			continue;
		}
		out[o++] = all[i++];
	}
	free(all);
	return o;
}
