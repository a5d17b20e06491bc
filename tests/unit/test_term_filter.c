/* The firmware's terminal mode changes are dropped, whole or split across reads; everything else passes unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "term_filter.h"

/* Feeds `in` to one filter in chunks of `step` bytes; returns all it let through (a static buffer). */
static const char *filtered(const char *in, size_t step)
{
	static char result[4096];
	struct term_filter f = { 0 };
	size_t len = strlen(in), r = 0;

	for (size_t i = 0; i < len; i += step) {
		char out[64 + sizeof(f.held)];
		size_t n = len - i < step ? len - i : step;

		size_t o = term_filter(&f, in + i, n, out);

		memcpy(result + r, out, o);
		r += o;
	}
	result[r] = '\0';
	return result;
}

/* OVMF's start (as its console log shows it), SeaBIOS's, and a guest's own screen handling. */
static const char ovmf[] = "\033[2J\033[01;01H\033[=3h\033[2J\033[01;01HBdsDxe: loading Boot0001\r\n";
static const char seabios[] = "\033c\033[?7l\033[2J\033[0mSeaBIOS (version 1.16.2)\r\n";
static const char guest[] = "\033[1m\033[33mMapping\033[0m \033[?7h\033[=x \033[?25l\033[H\033[2J$ \033";

static void test_whole_and_split(void **state)
{
	(void)state;
	for (size_t step = 1; step <= 64; step++) {
		assert_string_equal(filtered(ovmf, step), "\033[2J\033[01;01H\033[2J\033[01;01HBdsDxe: loading Boot0001\r\n");
		assert_string_equal(filtered(seabios, step), "\033[2J\033[0mSeaBIOS (version 1.16.2)\r\n");
	}
}

/* Autowrap on, cursor, colours, a clear: all pass, and so does an ESC that starts nothing dropped. A lone ESC at the
 * very end is held for the next read (it could start ESC c). */
static void test_everything_else_passes(void **state)
{
	(void)state;
	for (size_t step = 1; step <= 64; step++)
		assert_string_equal(filtered(guest, step), "\033[1m\033[33mMapping\033[0m \033[?7h\033[=x \033[?25l\033[H\033[2J$ ");
	assert_string_equal(filtered("\033[=123456h", 3), "\033[=123456h");
	assert_string_equal(filtered("a\033[?7lb\033cc", 5), "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_and_split),
		cmocka_unit_test(test_everything_else_passes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
