/* How a config's mistakes are said: FILE:LINE and what was expected, every one of them up to a point, for the reader
 * (config.c), each value (config_values.c) and the whole-config checks (config_check.c) alike. */
#include "config_parse.h"
#include "config_types.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define CONFIG_MAX_ERRORS 20

int config_fail(struct parse *p, unsigned line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	/* Every mistake is reported, not only the first: a config is fixed in one pass, not one run per error. Up to a
	 * point: a binary file named by mistake is not worth a screen per line. */
	p->failed = true;
	if (++p->n_errors > CONFIG_MAX_ERRORS) {
		if (p->n_errors == CONFIG_MAX_ERRORS + 1)
			log_error("%s: more mistakes than these %d; not shown", p->where, CONFIG_MAX_ERRORS);
		return -EINVAL;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line == CONFIG_LINE_SET)
		return log_error("%s: (from --set) %s", p->where, msg);
	if (line)
		return log_error("%s:%u: %s", p->where, line, msg);
	return log_error("%s: %s", p->where, msg);
}

char *config_choices_list(const char *const *choices)
{
	char buf[256] = "";

	for (size_t i = 0; choices[i]; i++) {
		if (i)
			strncat(buf, choices[i + 1] ? ", " : " or ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, choices[i], sizeof(buf) - strlen(buf) - 1);
	}
	return xstrdup(buf);
}
