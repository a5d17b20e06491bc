/* The QMP reader: a peer that never ends its line cannot grow vmlaunch's buffer without end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "qmp.h"

static void test_endless_line_is_refused(void **state)
{
	struct qmp q = { .fd = -1 };
	int sv[2], r = 0;
	pid_t pid;
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	if (pid == 0) {
		static char junk[1 << 16];

		close(sv[0]);
		memset(junk, 'x', sizeof(junk));
		for (int i = 0; i < 32 * 16; i++) /* 32 MiB, no newline */
			if (write(sv[1], junk, sizeof(junk)) < 0)
				_exit(0);
		_exit(0);
	}
	close(sv[1]);
	q.fd = sv[0];
	fcntl(q.fd, F_SETFL, O_NONBLOCK);
	while (r == 0) {
		struct pollfd p = { q.fd, POLLIN, 0 };

		poll(&p, 1, 5000);
		r = qmp_dispatch(&q);
	}
	assert_int_equal(r, -EMSGSIZE);
	assert_true(q.cap <= (16u << 20));
	qmp_close(&q);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endless_line_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
