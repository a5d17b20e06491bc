/* Every key the parser accepts is documented in vmlaunch.conf(5), under its section. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_helpers.h"

static char *read_page(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = xmalloc(1 << 20);
	size_t n;

	if (!f)
		fail_msg("cannot read %s", path);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* roff writes '-' as '\-' */
static char *roff(const char *s)
{
	char *out = xmalloc(strlen(s) * 2 + 1), *o = out;

	for (; *s; s++) {
		if (*s == '-')
			*o++ = '\\';
		*o++ = *s;
	}
	*o = '\0';
	return out;
}

static void test_every_key_documented(void **state)
{
	char *page = read_page("launcher/man/vmlaunch.conf.5");
	(void)state;

	for (const char *const *k = config_known_keys(); *k; k++) {
		const char *dot = strrchr(*k, '.');
		char *section = strndup(*k, (size_t)(dot - *k)), *heading, *key = roff(dot + 1), *entry, *start, *end;

		/* named sections ([disk NAME], [share NAME], ...) are headed with their NAME */
		bool named = !strcmp(section, "disk") || !strcmp(section, "memory tier") || !strcmp(section, "share") ||
			     !strcmp(section, "net");

		heading = named ? xasprintf(".SH [%s NAME]", section) : xasprintf(".SH [%s]", section);
		start = strstr(page, heading);
		if (!start)
			fail_msg("vmlaunch.conf.5 has no section %s (for %s)", heading, *k);
		end = strstr(start + 1, "\n.SH ");
		entry = xasprintf("\n.B %s\n", key);
		start = strstr(start, entry);
		if (!start || (end && start > end))
			fail_msg("vmlaunch.conf.5 does not document %s under %s", *k, heading);
		free(section);
		free(heading);
		free(key);
		free(entry);
	}
	free(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_every_key_documented) };

	return cmocka_run_group_tests_name("docs", tests, NULL, NULL);
}
