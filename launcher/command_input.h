/* The guest command's stdin. In the bundled guest: vmlaunch's stdin copied to the command's stdin port, its end and
 * the terminal's size told on the status port (guest_protocol.h); with a pty, the terminal raw while it runs.
 * Through qemu-guest-agent: all of it read first, since guest-exec takes it at once. */
#ifndef VMLAUNCH_COMMAND_INPUT_H
#define VMLAUNCH_COMMAND_INPUT_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <termios.h>

#define COMMAND_INPUT_POLLFDS 3

struct command_input {
	int in;             /* vmlaunch's stdin (fd 0, never closed here); -1 once it ended or is no longer read */
	int port;           /* our end of the stdin port's socket; -1 when there is none or qemu has gone */
	const int *control; /* our end of the status port (the supervisor's: it becomes -1 when the guest closes it) */
	int winch;          /* signalfd for SIGWINCH with a pty, else -1 */
	bool tty, raw, eof_sent;
	struct termios saved;
	sigset_t saved_mask;
	char *buf;
	size_t len, off;
	size_t collect_max; /* collecting (qemu-guest-agent) up to this much, or 0 when relaying */
	size_t cap;
	bool too_big;
	unsigned long long sent; /* bytes written to the stdin port */
};

/* Starts relaying: port is taken over (closed by command_input_end), control borrowed. With tty, the terminal on
 * stdin goes raw (as ssh makes it: no echo, no line editing, no signals from keys, no output processing: the
 * guest's pty does all that) and SIGWINCH is watched. Failing to make the terminal raw is a warning, not fatal. */
void command_input_begin(struct command_input *ci, int port, const int *control, bool tty);
/* Reads all of stdin into buf/len, up to max bytes (more: too_big, and no more is read); a terminal is not read
 * (the command gets no input: a person cannot type into guest-exec). Done when in < 0. */
void command_input_collect(struct command_input *ci, size_t max);
/* Fills COMMAND_INPUT_POLLFDS entries (fd -1 where nothing is awaited). */
void command_input_pollfds(const struct command_input *ci, struct pollfd *fds);
/* Acts on what those entries returned. */
void command_input_handle(struct command_input *ci, const struct pollfd *fds);
/* The command has ended: read no more of vmlaunch's stdin (what is left is the caller's shell's). */
void command_input_stop(struct command_input *ci);
/* Restores the terminal exactly as it was and the signal mask, closes the port. Safe to call twice. */
void command_input_end(struct command_input *ci);

#endif
