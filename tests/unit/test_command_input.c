/* The host side of the guest command's stdin, with fd 0 swapped for a pipe or a pty: what reaches the stdin port, the
 * eof= line, collecting for qemu-guest-agent, and a terminal made raw and restored exactly. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>
#include <cmocka.h>

#include "command_input.h"

/* Runs the relay until nothing is left to do (or 200 idle rounds). */
static void pump(struct command_input *ci)
{
	for (int idle = 0; idle < 200;) {
		struct pollfd fds[COMMAND_INPUT_POLLFDS];

		command_input_pollfds(ci, fds);
		if (poll(fds, COMMAND_INPUT_POLLFDS, 10) <= 0) {
			idle++;
			continue;
		}
		command_input_handle(ci, fds);
	}
}

static size_t read_available(int fd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;

	while (len < size && (n = recv(fd, buf + len, size - len, MSG_DONTWAIT)) > 0)
		len += (size_t)n;
	return len;
}

static void test_stdin_then_eof_line(void **state)
{
	int saved = dup(0), in[2], port[2], control[2];
	struct command_input ci;
	char got[256];
	(void)state;

	assert_int_equal(pipe(in), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, port), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, control), 0);
	dup2(in[0], 0);
	close(in[0]);
	command_input_begin(&ci, port[0], &control[0], false);
	assert_int_equal(write(in[1], "hello\n", 6), 6);
	pump(&ci);
	/* stdin has not ended: the data is there, no eof= yet */
	assert_int_equal(read_available(port[1], got, sizeof(got)), 6);
	assert_memory_equal(got, "hello\n", 6);
	assert_int_equal(read_available(control[1], got, sizeof(got)), 0);
	assert_int_equal(write(in[1], "world", 5), 5);
	close(in[1]);
	pump(&ci);
	assert_int_equal(read_available(port[1], got, sizeof(got)), 5);
	assert_int_equal(read_available(control[1], got, sizeof(got)), 7);
	assert_memory_equal(got, "eof=11\n", 7);
	command_input_end(&ci);
	/* the port is closed once the relay ends, never to say EOF */
	assert_int_equal(recv(port[1], got, sizeof(got), MSG_DONTWAIT), 0);
	dup2(saved, 0);
	close(saved);
	close(port[1]);
	close(control[0]);
	close(control[1]);
}

static void test_empty_stdin_is_eof_0(void **state)
{
	int saved = dup(0), null = open("/dev/null", O_RDONLY), port[2], control[2];
	struct command_input ci;
	char got[64];
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, port), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, control), 0);
	dup2(null, 0);
	close(null);
	command_input_begin(&ci, port[0], &control[0], false);
	pump(&ci);
	assert_int_equal(read_available(control[1], got, sizeof(got)), 6);
	assert_memory_equal(got, "eof=0\n", 6);
	command_input_end(&ci);
	dup2(saved, 0);
	close(saved);
	close(port[1]);
	close(control[0]);
	close(control[1]);
}

static void test_collect_for_the_agent_and_its_bound(void **state)
{
	int saved = dup(0), in[2];
	struct command_input ci;
	(void)state;

	assert_int_equal(pipe(in), 0);
	dup2(in[0], 0);
	close(in[0]);
	command_input_collect(&ci, 10);
	assert_int_equal(write(in[1], "0123456789", 10), 10);
	close(in[1]);
	pump(&ci);
	assert_int_equal(ci.in, -1);
	assert_false(ci.too_big); /* exactly the bound is fine */
	assert_int_equal(ci.len, 10);
	assert_memory_equal(ci.buf, "0123456789", 10);
	command_input_end(&ci);

	assert_int_equal(pipe(in), 0);
	dup2(in[0], 0);
	close(in[0]);
	command_input_collect(&ci, 10);
	assert_int_equal(write(in[1], "0123456789a", 11), 11);
	pump(&ci); /* the writer is still open: over the bound ends it all the same */
	assert_int_equal(ci.in, -1);
	assert_true(ci.too_big);
	command_input_end(&ci);
	close(in[1]);
	dup2(saved, 0);
	close(saved);
}

static void test_terminal_raw_while_running_then_exactly_restored(void **state)
{
	int saved_in = dup(0), saved_out = dup(1), master = posix_openpt(O_RDWR | O_NOCTTY), terminal, port[2],
	    control[2];
	struct termios before, during, after;
	struct command_input ci;
	(void)state;

	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	terminal = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(terminal >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, port), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, control), 0);
	/* zeroed so that memcmp sees only what tcgetattr fills in, not padding */
	memset(&before, 0, sizeof(before));
	memset(&during, 0, sizeof(during));
	memset(&after, 0, sizeof(after));
	/* an unusual mode the restore must keep: no IXON */
	tcgetattr(terminal, &before);
	before.c_iflag &= ~(tcflag_t)IXON;
	tcsetattr(terminal, TCSANOW, &before);
	tcgetattr(terminal, &before);
	fflush(stdout);
	dup2(terminal, 0);
	dup2(terminal, 1);
	command_input_begin(&ci, port[0], &control[0], true);
	tcgetattr(terminal, &during);
	command_input_end(&ci);
	tcgetattr(terminal, &after);
	dup2(saved_in, 0);
	dup2(saved_out, 1);
	close(saved_in);
	close(saved_out);
	assert_false(during.c_lflag & (ICANON | ECHO | ISIG | IEXTEN));
	assert_false(during.c_iflag & (ICRNL | IXON));
	assert_false(during.c_oflag & OPOST);
	assert_memory_equal(&after, &before, sizeof(before));
	close(terminal);
	close(master);
	close(port[1]);
	close(control[0]);
	close(control[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdin_then_eof_line),
		cmocka_unit_test(test_empty_stdin_is_eof_0),
		cmocka_unit_test(test_collect_for_the_agent_and_its_bound),
		cmocka_unit_test(test_terminal_raw_while_running_then_exactly_restored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
