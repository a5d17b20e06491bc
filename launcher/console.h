/* The serial console without a terminal: relayed by vmlaunch to its log, stdout and `vmlaunch --console NAME`. */
#ifndef VMLAUNCH_CONSOLE_H
#define VMLAUNCH_CONSOLE_H

#include <stdbool.h>
#include <sys/types.h>

struct console {
	int qemu_fd;   /* vmlaunch's end of the socketpair qemu's serial chardev sits on */
	int listen_fd; /* STATE_DIR/console.sock */
	int client_fd; /* the attached vmlaunch --console, or -1 */
	int log_fd;    /* the console log, written whether or not anyone is attached */
	bool to_stdout; /* the caller also copies the guest's output to stdout */
	/* OVMF with nothing to boot starts its UEFI shell, and would wait at its prompt for ever */
	bool watch_uefi_shell;
	bool uefi_shell; /* its boot manager said it is starting the shell */
	char line[160];  /* the start of the line being read, for the watch */
	size_t line_len;
	pid_t terminal_pid; /* the child relaying this terminal (console_terminal_start), or 0 */
};

#define CONSOLE_INIT { .qemu_fd = -1, .listen_fd = -1, .client_fd = -1, .log_fd = -1 }

/* Creates the log (truncated), listens on socket_path, and makes the pair: *qemu_end is qemu's, to hand over. */
int console_open(struct console *c, const char *socket_path, const char *log_path, bool to_stdout, int *qemu_end);
/* Relays this terminal to the console through a child, as vmlaunch --console does: for a firmware whose serial
 * output must be filtered before it reaches the terminal (term_filter.h). 0 or a negative errno. */
int console_terminal_start(struct console *c, const char *name);
/* Waits for that child, which ends when the console closes (and restores the terminal). */
void console_terminal_wait(struct console *c);
/* Reads what the guest wrote into buf, writes it to the log and the client: >0 bytes, 0 at EOF (closed), -1 none. */
ssize_t console_from_guest(struct console *c, char *buf, size_t size);
/* A new client on the socket: attached, or told that another one is. */
void console_accept(struct console *c);
/* The client's keys to the guest; its EOF detaches it. */
void console_from_client(struct console *c);
void console_close(struct console *c);

/* vmlaunch --console NAME: attaches this terminal until Ctrl-], EOF on stdin, or the VM's end. */
int console_attach(const char *root, const char *name);

#endif
