/* The serial console when no terminal holds it: vmlaunch relays it to console.log, to stdout, and to one attached
 * `vmlaunch --console NAME` on STATE_DIR/console.sock; and that client, which detaches on Ctrl-].
 *
 * Why vmlaunch relays instead of handing qemu a listening socket (`-chardev socket,fd=N,server=on,logfile=...`,
 * which qemu accepts, as for qmp.sock): qemu's chardev then writes to the socket and its log only, so the console
 * would leave stdout, where the demo's output and a systemd unit's journal read it, and qemu has no chardev that
 * copies one serial port to two backends (mux=on joins several frontends to one backend, not the reverse). The relay
 * is a socketpair qemu's chardev sits on (`socket,fd=N`, like the command's ports) and a few reads in the poll loop. */
#define _GNU_SOURCE
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "state_dir.h"
#include "term_filter.h"

#define DETACH_KEY 0x1d /* Ctrl-] as telnet, virsh console and vmspawn use it */

static int unix_address(struct sockaddr_un *addr, const char *path)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr->sun_path))
		return log_errno(ENAMETOOLONG, "%s", path);
	strcpy(addr->sun_path, path);
	return 0;
}

int console_open(struct console *c, const char *socket_path, const char *log_path, bool to_stdout, int *qemu_end)
{
	struct sockaddr_un addr;
	int pair[2], r;

	c->qemu_fd = c->listen_fd = c->client_fd = c->log_fd = -1;
	c->to_stdout = to_stdout;
	r = unix_address(&addr, socket_path);
	if (r < 0)
		return r;
	/* the log is vmlaunch's (qemu never opens it): a console-log = PATH outside the state dir changes no owner */
	c->log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (c->log_fd < 0)
		return log_errno(errno, "cannot create the console log %s", log_path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(c->listen_fd, 2) < 0) {
		r = log_errno(errno, "cannot listen on %s", socket_path);
		console_close(c);
		return r;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
		r = log_errno(errno, "socketpair");
		console_close(c);
		return r;
	}
	c->qemu_fd = pair[0];
	*qemu_end = pair[1];
	return 0;
}

/* OVMF's boot manager names what it starts: 'BdsDxe: starting Boot0002 "EFI Internal Shell" from ...' comes only
 * after every other boot option failed (the shell is its last one). */
static void watch_uefi_shell(struct console *c, const char *buf, size_t n)
{
	for (size_t i = 0; i < n && !c->uefi_shell; i++) {
		if (buf[i] != '\n') {
			if (c->line_len < sizeof(c->line) - 1)
				c->line[c->line_len++] = buf[i];
			continue;
		}
		c->line[c->line_len] = '\0';
		c->uefi_shell = strstr(c->line, "BdsDxe: starting Boot") && strstr(c->line, "\"EFI Internal Shell\"");
		c->line_len = 0;
	}
}

ssize_t console_from_guest(struct console *c, char *buf, size_t size)
{
	ssize_t n = read(c->qemu_fd, buf, size);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return -1;
	if (n <= 0) {
		close(c->qemu_fd);
		c->qemu_fd = -1;
		return 0;
	}
	if (fd_write_all(c->log_fd, buf, (size_t)n) < 0)
		log_warn("cannot write the console log: %s", strerror(errno));
	if (c->watch_uefi_shell)
		watch_uefi_shell(c, buf, (size_t)n);
	/* a client that cannot take it now loses it (the log has it): the guest must never wait for a terminal */
	if (c->client_fd >= 0 && send(c->client_fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    errno != EAGAIN) {
		close(c->client_fd);
		c->client_fd = -1;
	}
	return n;
}

void console_accept(struct console *c)
{
	static const char busy[] = "vmlaunch: another vmlaunch --console is attached to this VM\r\n";
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (c->client_fd >= 0) {
		if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_info("a second console client left at once");
		close(fd);
		return;
	}
	c->client_fd = fd;
	log_info("console client attached");
}

void console_from_client(struct console *c)
{
	char buf[4096];
	ssize_t n = recv(c->client_fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(c->client_fd);
		c->client_fd = -1;
		log_info("console client detached");
		return;
	}
	/* typing is slow and qemu reads its end at once: a blocking write is never long */
	if (c->qemu_fd >= 0 && fd_write_all(c->qemu_fd, buf, (size_t)n) < 0)
		log_warn("cannot pass console input to qemu: %s", strerror(errno));
}

void console_close(struct console *c)
{
	int *fds[] = { &c->qemu_fd, &c->listen_fd, &c->client_fd, &c->log_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

/* The client: the terminal raw (every key to the guest, Ctrl-C included) until Ctrl-], the VM's end, or EOF. */
static int relay_terminal(int sock, const char *name)
{
	struct termios saved, raw;
	bool tty = isatty(0) && tcgetattr(0, &saved) == 0, stdin_open = true, out_tty = isatty(1);
	struct term_filter filter = { 0 };
	int r = 0;

	if (tty) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	fprintf(stderr, "vmlaunch: connected to %s's serial console; Ctrl-] detaches (the VM keeps running)%s", name,
		tty ? "\r\n" : "\n");
	for (;;) {
		struct pollfd fds[2] = { { stdin_open ? 0 : -1, POLLIN, 0 }, { sock, POLLIN, 0 } };
		char buf[4096];
		ssize_t n;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (fds[1].revents) {
			n = read(sock, buf, sizeof(buf));
			if (n <= 0) {
				fprintf(stderr, "%svmlaunch: %s's console closed (the VM stopped)%s", tty ? "\r\n" : "\n",
					name, tty ? "\r\n" : "\n");
				break;
			}
			if (out_tty) {
				char clean[sizeof(buf) + sizeof(filter.held)];

				n = (ssize_t)term_filter(&filter, buf, (size_t)n, clean);
				memcpy(buf, clean, (size_t)n);
			}
			if (fd_write_all(1, buf, (size_t)n) < 0)
				break;
		}
		if (fds[0].revents) {
			char *detach;

			n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				/* input over (a script's pipe): what it typed has gone; leave the VM to itself */
				break;
			}
			detach = memchr(buf, DETACH_KEY, (size_t)n);
			if (fd_write_all(sock, buf, detach ? (size_t)(detach - buf) : (size_t)n) < 0 || detach) {
				fprintf(stderr, "%svmlaunch: detached from %s's console%s", tty ? "\r\n" : "\n", name,
					tty ? "\r\n" : "\n");
				break;
			}
		}
	}
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	return r;
}

int console_terminal_start(struct console *c, const char *name)
{
	int pair[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return log_errno(errno, "socketpair");
	pid = fork();
	if (pid < 0) {
		close(pair[0]);
		close(pair[1]);
		return log_errno(errno, "fork");
	}
	if (pid == 0) {
		struct sigaction ign = { .sa_handler = SIG_IGN };
		sigset_t none;

		/* the terminal is raw, so a signal comes from elsewhere and is vmlaunch's to act on; this child goes when
		 * the console closes, after putting the terminal back */
		for (int sig = SIGHUP; sig <= SIGTERM; sig++)
			if (sig == SIGHUP || sig == SIGINT || sig == SIGQUIT || sig == SIGTERM)
				sigaction(sig, &ign, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* nothing of vmlaunch's but the terminal and the socket: an inherited pipe end would keep a reader of
		 * vmlaunch's (qemu's exec check) waiting */
		if (dup2(pair[1], 3) < 0 || close_range(4, ~0U, 0) < 0)
			_exit(1);
		_exit(relay_terminal(3, name) < 0 ? 1 : 0);
	}
	close(pair[1]);
	fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK);
	c->client_fd = pair[0];
	c->terminal_pid = pid;
	return 0;
}

void console_terminal_wait(struct console *c)
{
	if (c->terminal_pid > 0)
		while (waitpid(c->terminal_pid, NULL, 0) < 0 && errno == EINTR)
			;
	c->terminal_pid = 0;
}

int console_attach(const char *root, const char *name)
{
	char *dir = state_dir_path(root, name), *path = state_file(dir, STATE_CONSOLE_SOCKET);
	struct sockaddr_un addr;
	int fd = -1, r = unix_address(&addr, path);

	if (r < 0)
		goto out;
	if (!state_dir_running(root, name)) {
		r = log_errno(ENOENT, "VM \"%s\" is not running (vmlaunch --list shows the running ones)", name);
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = log_errno(errno, "socket");
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno == ENOENT)
			r = log_errno(ENOENT, "VM \"%s\" has no console socket: its console is on the terminal vmlaunch "
					      "runs on (started interactively)",
				      name);
		else
			r = log_errno(errno, "cannot reach %s", path);
		goto out;
	}
	r = relay_terminal(fd, name);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	free(dir);
	return r;
}
