/* vmlaunch's stdin for the guest command: to its stdin port, the end and the terminal's size told on the status
 * port; or read whole for qemu-guest-agent. */
#define _GNU_SOURCE
#include "command_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "strv.h"

#define INPUT_BUF (64u << 10)

/* A short line on the status port; the guest reads it while the command runs, so a blocking write is brief. */
static void control_line(struct command_input *ci, const char *line)
{
	int r = *ci->control >= 0 ? fd_write_all(*ci->control, line, strlen(line)) : 0;

	if (r < 0)
		log_info("cannot tell the guest \"%.*s\": %s", (int)strcspn(line, "\n"), line, strerror(-r));
}

static void raw_begin(struct command_input *ci)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &ci->saved) < 0) {
		log_warn("cannot read the terminal's modes, leaving them as they are: %s", strerror(errno));
		return;
	}
	raw = ci->saved;
	raw.c_iflag |= IGNPAR;
	raw.c_iflag &= ~(unsigned)(ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXANY | IXOFF | IUCLC);
	raw.c_lflag &= ~(unsigned)(ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHONL | IEXTEN);
	raw.c_oflag &= ~(unsigned)OPOST;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	/* TCSADRAIN: what was typed during the boot stays, and reaches the command */
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0) {
		log_warn("cannot put the terminal in raw mode: %s", strerror(errno));
		return;
	}
	ci->raw = true;
}

static void winch_begin(struct command_input *ci)
{
	sigset_t winch;

	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	if (sigprocmask(SIG_BLOCK, &winch, &ci->saved_mask) < 0)
		return;
	ci->winch = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ci->winch < 0) {
		log_warn("cannot watch the terminal's size: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &ci->saved_mask, NULL);
	}
}

void command_input_begin(struct command_input *ci, int port, const int *control, bool tty)
{
	memset(ci, 0, sizeof(*ci));
	ci->in = STDIN_FILENO;
	ci->port = port;
	ci->control = control;
	ci->winch = -1;
	ci->tty = tty;
	ci->buf = xmalloc(INPUT_BUF);
	if (tty) {
		raw_begin(ci);
		winch_begin(ci);
	}
}

void command_input_collect(struct command_input *ci, size_t max)
{
	memset(ci, 0, sizeof(*ci));
	ci->in = isatty(STDIN_FILENO) ? -1 : STDIN_FILENO;
	ci->port = -1;
	ci->winch = -1;
	ci->collect_max = max;
	if (ci->in < 0)
		log_info("stdin is a terminal: the command gets no input through qemu-guest-agent");
}

static void take_all(struct command_input *ci)
{
	ssize_t n;

	if (ci->cap - ci->len < INPUT_BUF) {
		ci->cap = ci->cap ? ci->cap * 2 : INPUT_BUF * 4;
		ci->buf = xrealloc(ci->buf, ci->cap);
	}
	n = read(ci->in, ci->buf + ci->len, ci->cap - ci->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		ci->in = -1;
		return;
	}
	ci->len += (size_t)n;
	if (ci->len > ci->collect_max) {
		ci->too_big = true;
		ci->in = -1;
	}
}

void command_input_pollfds(const struct command_input *ci, struct pollfd *fds)
{
	if (ci->collect_max) {
		fds[0] = (struct pollfd){ ci->in, POLLIN, 0 };
		fds[1] = fds[2] = (struct pollfd){ -1, 0, 0 };
		return;
	}
	/* One buffer at a time: a command that does not read its stdin holds vmlaunch's stdin back, not its memory. */
	fds[0] = (struct pollfd){ ci->port >= 0 && ci->len == 0 ? ci->in : -1, POLLIN, 0 };
	fds[1] = (struct pollfd){ ci->len > ci->off ? ci->port : -1, POLLOUT, 0 };
	fds[2] = (struct pollfd){ ci->winch, POLLIN, 0 };
}

/* Once all of stdin is in the port, the guest is told how much there was: it closes the command's stdin after it
 * has copied that many bytes (guest_protocol.h). Closing the port itself would disconnect it instead. */
static void eof_maybe(struct command_input *ci)
{
	char line[64];

	if (ci->in >= 0 || ci->len > ci->off || ci->eof_sent || ci->port < 0)
		return;
	snprintf(line, sizeof(line), "eof=%llu\n", ci->sent);
	control_line(ci, line);
	ci->eof_sent = true;
}

static void take_stdin(struct command_input *ci)
{
	ssize_t n = read(ci->in, ci->buf, INPUT_BUF);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* the end, or a stdin that cannot be read (closed, a hung-up terminal): the same for the command */
		if (n < 0)
			log_info("stdin: %s; the command's input ends here", strerror(errno));
		ci->in = -1;
	} else {
		ci->len = (size_t)n;
		ci->off = 0;
	}
}

static void give_port(struct command_input *ci)
{
	while (ci->off < ci->len) {
		ssize_t n = send(ci->port, ci->buf + ci->off, ci->len - ci->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* qemu is gone: there is no one left to give stdin to */
			close(ci->port);
			ci->port = -1;
			ci->in = -1;
			break;
		}
		ci->off += (size_t)n;
		ci->sent += (unsigned long long)n;
	}
	ci->len = ci->off = 0;
}

static void send_winsize(struct command_input *ci)
{
	struct signalfd_siginfo si;
	struct winsize size;
	char line[64];

	while (read(ci->winch, &si, sizeof(si)) == sizeof(si))
		;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) < 0 || !size.ws_row || !size.ws_col)
		return;
	snprintf(line, sizeof(line), "winsize=%u %u\n", size.ws_row, size.ws_col);
	control_line(ci, line);
}

void command_input_handle(struct command_input *ci, const struct pollfd *fds)
{
	if (ci->collect_max) {
		if (fds[0].revents && ci->in >= 0)
			take_all(ci);
		return;
	}
	if (fds[0].revents && ci->in >= 0) {
		take_stdin(ci);
		give_port(ci); /* usually all of it at once: the socket has room */
	}
	if (fds[1].revents)
		give_port(ci);
	if (fds[2].revents)
		send_winsize(ci);
	eof_maybe(ci);
}

void command_input_stop(struct command_input *ci)
{
	ci->in = -1;
	ci->len = ci->off = 0;
	ci->eof_sent = true; /* nobody is listening for it any more */
}

void command_input_end(struct command_input *ci)
{
	if (ci->raw && tcsetattr(STDIN_FILENO, TCSADRAIN, &ci->saved) < 0)
		log_warn("cannot restore the terminal's modes (try `stty sane`): %s", strerror(errno));
	ci->raw = false;
	if (ci->winch >= 0) {
		close(ci->winch);
		sigprocmask(SIG_SETMASK, &ci->saved_mask, NULL);
		ci->winch = -1;
	}
	if (ci->port >= 0)
		close(ci->port);
	ci->port = -1;
	ci->in = -1;
	free(ci->buf);
	ci->buf = NULL;
}
