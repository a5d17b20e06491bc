/* Supervises the running VM in one poll loop: signalfd + pidfd + QMP + the guest command's channels, until qemu
 * exits and its status is vmlaunch's (run.c started it). */
#define _GNU_SOURCE
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "command_input.h"
#include "console.h"
#include "exit_status.h"
#include "guardian.h"
#include "guest_files.h"
#include "ready.h"
#include "term_filter.h"
#include "test_hook.h"
#include "trim.h"
#include "fdio.h"
#include "log.h"
#include "notify.h"
#include "strv.h"

#define QUIT_GRACE_MS 5000

struct supervisor {
	const struct plan *p;
	struct vm_process *vm;
	struct guardian *guardian;
	int stop_signal;     /* the first SIGINT/SIGTERM/SIGHUP received, 0 if none */
	int stop_requests;   /* how many of them */
	int phase;           /* 0 running, 1 powerdown sent, 2 quit sent, 3 SIGKILL sent */
	long long deadline;  /* when to escalate to the next phase */
	bool panicked;
	bool nothing_to_boot; /* SeaBIOS said "No bootable device.", or OVMF started its shell */
	struct term_filter stdout_filter; /* the relayed console on a terminal stdout */
	char *shutdown_reason;
	char status[64];
	size_t status_len;
	unsigned long long received[2]; /* bytes read from the guest's stdout and stderr ports */
	bool acked;                      /* the guest was told it has all of them, and may power off */
	bool ready;                /* READY=1 was sent */
	bool probing;              /* READY_SSH: the probe runs */
	struct ready_probe probe;
	long long waiting_since, next_status; /* STATUS= lines while the guest is not reachable yet */
	struct agent agent; /* agent mode: the command through qemu-guest-agent */
	struct command_input input; /* command mode in the bundled guest: its stdin */
	bool input_running;
	bool agent_running, agent_failed;
	/* command mode in the bundled guest: its agent opened the ports (QMP VSERPORT_CHANGE), or vmlaunch gave up
	 * waiting after [vm] agent-timeout (a boot that hangs would otherwise hold a CI job until its own timeout) */
	bool ports_open, ports_gave_up;
	/* The guest's stdout/stderr, read as soon as qemu passes them on and written out as fd 1/2 can take them:
	 * qemu drops what it still holds when the guest powers off, so vmlaunch must never stop reading because its
	 * own stdout is slow (a pipe to a slow consumer). */
	struct outbuf {
		char *data;
		size_t len, cap;
	} out[2];
};

/* Whether SeaBIOS gave up: its messages (its debug port's log) say "No bootable device." */
static bool firmware_found_nothing(const struct plan *p)
{
	char buf[4096];
	FILE *f = p->firmware_log ? fopen(p->firmware_log, "re") : NULL;
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(buf, sizeof(buf), f))
		found = strstr(buf, "No bootable device.") != NULL;
	fclose(f);
	return found;
}

/* Nothing in the guest would answer a power button: quit qemu. */
static void quit_now(struct supervisor *s)
{
	if (s->phase < 2 && s->vm->qmp.fd >= 0) {
		qmp_send(&s->vm->qmp, "quit", NULL);
		s->phase = 2;
		s->deadline = monotonic_ms() + QUIT_GRACE_MS;
	}
}

/* The firmware found nothing to boot: there is no guest to power off. */
static void stop_nothing_to_boot(struct supervisor *s)
{
	s->nothing_to_boot = true;
	quit_now(s);
}

/* When the bundled guest's agent must have opened its ports: [vm] agent-timeout after the guest started running. */
static long long ports_deadline(const struct supervisor *s)
{
	return s->waiting_since + (long long)s->p->cfg->agent_timeout * 1000;
}

/* The ports are still awaited: not open yet, not given up on, and the VM not being stopped. */
static bool watching_ports(const struct supervisor *s)
{
	return !s->ports_open && !s->ports_gave_up && !s->phase;
}

static void check_ports(struct supervisor *s)
{
	if (!watching_ports(s) || monotonic_ms() < ports_deadline(s))
		return;
	log_error("the bundled guest did not open its ports within %u s of starting ([vm] agent-timeout): its boot "
		  "hung, or is far slower than that here; stopping qemu",
		  s->p->cfg->agent_timeout);
	s->ports_gave_up = true;
	quit_now(s);
}

/* systemd hears READY=1 once the guest answers the way the plan chose (plan_ready), with what answered. */
static void mark_ready(struct supervisor *s, const char *what)
{
	char *st;

	if (s->ready)
		return;
	s->ready = true;
	if (s->probing)
		ready_probe_close(&s->probe);
	s->probing = false;
	st = xasprintf("READY=1\nSTATUS=running %s (qemu pid %d): %s", s->p->cfg->name, (int)s->vm->pid, what);
	log_info("ready: %s", what);
	notify_systemd(st);
	free(st);
}

#define STATUS_EVERY_MS 10000

/* Until then, every few seconds: what vmlaunch waits for, and for how long. */
static void say_waiting(struct supervisor *s)
{
	const struct plan *p = s->p;
	long long now = monotonic_ms();
	char *st;

	if (s->ready || now < s->next_status)
		return;
	s->next_status = now + STATUS_EVERY_MS;
	if (p->ready == READY_SSH)
		st = xasprintf("STATUS=%s: waiting for ssh on %s:%u (%lld s)", p->cfg->name, p->ssh_host, p->ssh_port,
			       (now - s->waiting_since) / 1000);
	else
		st = xasprintf("STATUS=%s: waiting for the guest's %s (%lld s)", p->cfg->name,
			       p->ready == READY_AGENT ? "qemu-guest-agent" : "ports", (now - s->waiting_since) / 1000);
	notify_systemd(st);
	free(st);
}

static void on_event(void *user, const char *event, struct json_object *data)
{
	struct supervisor *s = user;
	struct json_object *reason, *open;

	log_info("QMP event %s", event);
	if (!strcmp(event, "VSERPORT_CHANGE") && data && json_object_object_get_ex(data, "open", &open) &&
	    json_object_get_boolean(open)) {
		s->ports_open = true;
		if (s->p->ready == READY_GUEST_PORT)
			mark_ready(s, "the bundled guest opened its ports");
	} else if (!strcmp(event, "GUEST_PANICKED")) {
		s->panicked = true;
	} else if (!strcmp(event, "RESET") && !s->nothing_to_boot && firmware_found_nothing(s->p)) {
		/* reboot-timeout=0: the firmware resets as soon as it has found nothing; it would only find nothing again */
		stop_nothing_to_boot(s);
	} else if (!strcmp(event, "SHUTDOWN") && data && json_object_object_get_ex(data, "reason", &reason)) {
		free(s->shutdown_reason);
		s->shutdown_reason = xstrdup(json_object_get_string(reason));
	}
}

static void escalate(struct supervisor *s)
{
	struct vm_process *vm = s->vm;

	switch (s->phase) {
	case 0:
		log_info("asking the guest to power off (ACPI power button)");
		notify_systemd("STOPPING=1\nSTATUS=asking the guest to power off");
		qmp_send(&vm->qmp, "system_powerdown", NULL);
		s->phase = 1;
		s->deadline = monotonic_ms() + (long long)s->p->cfg->shutdown_timeout * 1000;
		break;
	case 1:
		log_warn("the guest did not power off; stopping qemu");
		if (vm->qmp.fd >= 0)
			qmp_send(&vm->qmp, "quit", NULL);
		s->phase = 2;
		s->deadline = monotonic_ms() + QUIT_GRACE_MS;
		break;
	default:
		log_warn("qemu did not quit; killing it");
		kill(vm->pid, SIGKILL);
		s->phase = 3;
		s->deadline = 0;
		break;
	}
}

/* Moves what a guest channel has to `to` (or into the status buffer when to < 0). Closes *fd at EOF. */
#define OUTBUF_MAX (256u << 20) /* past this, stop reading and let qemu hold the rest (back-pressure) */

/* Moves what a guest channel has into its buffer (stdout/stderr: `which` 0/1) or the status (-1). EOF closes *fd. */
static void relay(struct supervisor *s, int *fd, int which)
{
	char buf[65536];
	ssize_t n;

	if (which >= 0 && s->out[which].len >= OUTBUF_MAX)
		return;
	n = read(*fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	if (which >= 0) {
		struct outbuf *o = &s->out[which];

		if (o->len + (size_t)n > o->cap) {
			o->cap = (o->len + (size_t)n) * 2;
			o->data = xrealloc(o->data, o->cap);
		}
		memcpy(o->data + o->len, buf, (size_t)n);
		o->len += (size_t)n;
		s->received[which] += (unsigned long long)n;
		return;
	}
	n = n < (ssize_t)(sizeof(s->status) - 1 - s->status_len) ? n
								   : (ssize_t)(sizeof(s->status) - 1 - s->status_len);
	memcpy(s->status + s->status_len, buf, (size_t)n);
	s->status_len += (size_t)n;
	s->status[s->status_len] = '\0';
}

/* The guest's status line says how many bytes it handed to each port; once they are all here, "ok" lets it power
 * off. Until then qemu may still hold some, and would drop them with the VM. */
static void acknowledge(struct supervisor *s)
{
	unsigned long long out, err;
	int code;

	if (s->acked || s->vm->status_fd < 0 ||
	    sscanf(s->status, "exit=%d out=%llu err=%llu", &code, &out, &err) != 3 || s->received[0] < out ||
	    s->received[1] < err)
		return;
	s->acked = true;
	if (s->input_running)
		command_input_stop(&s->input); /* the command is over: the rest of stdin is not its */
	if (write(s->vm->status_fd, "ok\n", 3) != 3)
		log_warn("cannot acknowledge the guest's output: %s", strerror(errno));
	/* restored: its disks are ephemeral or read-only and its RAM a private copy, so the guest's sync and power-off
	 * would save nothing; quit at once (measured: tests/bench/results.md section 7) */
	if (s->p->snapshot && !s->phase && s->vm->qmp.fd >= 0) {
		qmp_send(&s->vm->qmp, "quit", NULL);
		s->phase = 2;
		s->deadline = monotonic_ms() + QUIT_GRACE_MS;
	}
}

/* One write of what fd 1+which can take now (called on POLLOUT; PIPE_BUF keeps a pipe write from blocking). A
 * closed stdout (vmlaunch ... | head) drops the rest instead of stopping supervision. */
static void flush_some(struct supervisor *s, int which)
{
	struct outbuf *o = &s->out[which];
	ssize_t n = write(1 + which, o->data, o->len < 4096 ? o->len : 4096);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		o->len = 0;
		return;
	}
	memmove(o->data, o->data + n, o->len - (size_t)n);
	o->len -= (size_t)n;
}

static void outbuf_append(struct outbuf *o, const char *data, size_t n)
{
	if (!n)
		return; /* nothing captured: o->data may still be NULL, which memcpy must not get */
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		o->data = xrealloc(o->data, o->cap);
	}
	memcpy(o->data + o->len, data, n);
	o->len += n;
}

/* The relayed console: the log and a client get it in console.c; stdout through the buffer, which drops rather
 * than stalls the guest when stdout is slow (the log keeps everything). */
#define CONSOLE_STDOUT_MAX (4u << 20)

static void console_relay(struct supervisor *s)
{
	char buf[16384];
	char clean[sizeof(buf) + sizeof(s->stdout_filter.held)];
	ssize_t n = console_from_guest(&s->vm->console, buf, sizeof(buf));

	if (n > 0 && s->vm->console.to_stdout && s->out[0].len + (size_t)n <= CONSOLE_STDOUT_MAX) {
		if (s->p->host->stdout_is_tty)
			outbuf_append(&s->out[0], clean, term_filter(&s->stdout_filter, buf, (size_t)n, clean));
		else
			outbuf_append(&s->out[0], buf, (size_t)n);
	}
	if (s->vm->console.uefi_shell && !s->nothing_to_boot)
		stop_nothing_to_boot(s);
}

/* After qemu exited: everything left in the sockets, then everything buffered, blocking as long as it takes. */
static void drain(struct supervisor *s)
{
	struct vm_process *vm = s->vm;
	int *fds[3] = { &vm->out_fd, &vm->err_fd, &vm->status_fd }, which[3] = { 0, 1, -1 };

	for (int i = 0; i < 3; i++) {
		if (*fds[i] < 0)
			continue;
		fcntl(*fds[i], F_SETFL, fcntl(*fds[i], F_GETFL) | O_NONBLOCK);
		while (*fds[i] >= 0) {
			struct pollfd p = { *fds[i], POLLIN, 0 };

			/* qemu has exited, so EOF is near: whatever is left is in our socket buffer. */
			if (poll(&p, 1, 1000) <= 0)
				break;
			if (which[i] >= 0 && s->out[which[i]].len >= OUTBUF_MAX) {
				fd_write_all(1 + which[i], s->out[which[i]].data, s->out[which[i]].len);
				s->out[which[i]].len = 0;
			}
			relay(s, fds[i], which[i]);
		}
	}
	if (vm->console.qemu_fd >= 0) {
		fcntl(vm->console.qemu_fd, F_SETFL, fcntl(vm->console.qemu_fd, F_GETFL) | O_NONBLOCK);
		for (struct pollfd p = { vm->console.qemu_fd, POLLIN, 0 }; vm->console.qemu_fd >= 0 && poll(&p, 1, 1000) > 0;
		     p.fd = vm->console.qemu_fd)
			console_relay(s);
	}
	for (int i = 0; i < 2; i++) {
		if (s->out[i].len)
			fd_write_all(1 + i, s->out[i].data, s->out[i].len);
		free(s->out[i].data);
		s->out[i].data = NULL;
		s->out[i].len = 0;
	}
}

static void print_console_tail(const char *path)
{
	char line[512], ring[20][512];
	FILE *f = fopen(path, "re");
	unsigned n = 0;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		snprintf(ring[n++ % 20], sizeof(ring[0]), "%s", line);
	fclose(f);
	fprintf(stderr, "vmlaunch: the guest console's last lines (%s):\n", path);
	for (unsigned i = n > 20 ? n - 20 : 0; i < n; i++)
		fprintf(stderr, "  | %s", ring[i % 20]);
}

/* Agent mode: guest-exec waits for all of stdin; too much of it ends the run before the command starts. */
static void feed_agent_input(struct supervisor *s)
{
	if (!s->agent.input_pending || s->input.in >= 0)
		return;
	if (!s->input.too_big) {
		agent_set_input(&s->agent, s->input.buf, s->input.len);
		return;
	}
	log_error("stdin is larger than %u MiB, the most vmlaunch passes through qemu-guest-agent (guest-exec takes "
		  "a command's input all at once); give the guest large data through a [share] instead",
		  AGENT_INPUT_MAX >> 20);
	s->agent.input_pending = false;
	s->agent_running = false;
	s->agent_failed = true;
	if (s->phase < 2) {
		s->phase = 1;
		escalate(s); /* quit: the command never started */
	}
}

/* Agent mode: what the agent finished brings the VM down, with the command's status or the reason it has none. */
static void drive_agent(struct supervisor *s, bool readable)
{
	struct agent *a = &s->agent;

	agent_tick(a, readable);
	if (a->state == AGENT_EXEC || a->state == AGENT_STATUS || a->state == AGENT_DONE)
		mark_ready(s, "qemu-guest-agent answered");
	if (a->state == AGENT_DONE) {
		outbuf_append(&s->out[0], a->out ? a->out : "", a->out_len);
		outbuf_append(&s->out[1], a->err ? a->err : "", a->err_len);
		s->status_len = (size_t)snprintf(s->status, sizeof(s->status), "exit=%d", a->exit_code);
		s->agent_running = false;
		/* a restored snapshot's disks are ephemeral or read-only and its RAM a private copy: nothing to shut
		 * down cleanly for, and a guest saved mid-boot may not even heed the power button yet */
		if (!s->phase && s->p->snapshot && s->vm->qmp.fd >= 0) {
			qmp_send(&s->vm->qmp, "quit", NULL);
			s->phase = 2;
			s->deadline = monotonic_ms() + QUIT_GRACE_MS;
		} else if (!s->phase) {
			escalate(s); /* the ACPI power button: the guest shuts down cleanly */
		}
	} else if (a->state == AGENT_FAILED) {
		log_error("%s", a->failure);
		if (s->p->console_log)
			print_console_tail(s->p->console_log);
		s->agent_running = false;
		s->agent_failed = true;
		if (s->phase < 2) {
			s->phase = 1;
			escalate(s); /* quit: nothing to shut down cleanly for */
		}
	}
}

static int exit_status(struct supervisor *s, int wstatus)
{
	const struct plan *p = s->p;
	int qemu_status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
	int forced = s->phase >= 2;

	if (WIFSIGNALED(wstatus) && s->phase < 3)
		log_error("qemu was killed by signal %d (%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
	if (s->nothing_to_boot || firmware_found_nothing(p)) {
		log_error("the firmware found nothing to boot (%s): no disk holds a boot loader; expected a disk image "
			  "with an operating system (path = or source =), or [boot] kernel = bundled",
			  p->uefi ? "OVMF: every boot option failed, it started its UEFI shell" :
				    "SeaBIOS: \"No bootable device.\"");
		return EXIT_SETUP_FAILED;
	}
	if (s->panicked) {
		log_error("the guest kernel panicked");
		if (p->console_log)
			print_console_tail(p->console_log);
		return EXIT_NO_STATUS;
	}
	if (p->command_mode) {
		unsigned code;

		if (sscanf(s->status, "exit=%u", &code) == 1 && code <= 255)
			return (int)code;
		if (s->stop_signal)
			return 128 + s->stop_signal;
		if (s->agent_failed)
			return EXIT_NO_STATUS; /* said when it failed */
		if (s->ports_gave_up) {
			print_console_tail(p->console_log);
			return EXIT_NO_STATUS;
		}
		if (s->shutdown_reason)
			log_error("the guest stopped without reporting the command's exit status (shutdown reason: %s)",
				  s->shutdown_reason);
		else
			log_error("the guest stopped without reporting the command's exit status");
		print_console_tail(p->console_log);
		return EXIT_NO_STATUS;
	}
	if (s->stop_signal)
		return forced || qemu_status != 0 ? 128 + s->stop_signal : EXIT_VM_OK;
	if (qemu_status < 0)
		return 128 + WTERMSIG(wstatus);
	if (qemu_status != 0)
		log_error("qemu exited with status %d", qemu_status);
	return qemu_status;
}

/* cont, then what runs beside the guest: READY=1's watch, the restored guest's command, the agent, the stdin. */
static void start_guest(struct supervisor *s)
{
	const struct plan *p = s->p;
	struct vm_process *vm = s->vm;

	/* a restored guest's ports were open at the save: no VSERPORT_CHANGE comes */
	s->ports_open = !p->command_mode || p->agent_mode || p->snapshot;
	if (qmp_execute(&vm->qmp, "cont", NULL, NULL, QMP_TIMEOUT_MS) < 0) {
		escalate(s), escalate(s); /* could not start the guest: quit qemu */
		return;
	}
	s->waiting_since = monotonic_ms();
	if (p->ready == READY_AT_START)
		mark_ready(s, "the guest runs");
	else
		say_waiting(s);
	if (p->ready == READY_SSH) {
		ready_probe_init(&s->probe, p->ssh_host, p->ssh_port);
		s->probing = true;
	}
	test_hook_stop_at("running");
	/* restored from a snapshot (main.c): the guest waits for its command on the status port */
	if (p->snapshot && !p->agent_mode && guest_files_send(p, vm->status_fd) < 0)
		escalate(s), escalate(s);
	if (p->agent_mode) {
		agent_begin(&s->agent, vm->agent_fd, p->command, p->env, p->cfg->command_user, p->cfg->agent_timeout);
		vm->agent_fd = -1; /* the agent's now */
		s->agent.set_clock = p->snapshot; /* restored: the saved clock is stale */
		s->agent.hostname = p->snapshot ? p->cfg->name : NULL; /* and its hostname every sibling's */
		s->agent_running = true;
		s->agent.input_pending = true;
		command_input_collect(&s->input, AGENT_INPUT_MAX);
		s->input_running = true;
	}
	if (vm->in_fd >= 0) {
		command_input_begin(&s->input, vm->in_fd, &vm->status_fd, p->command_tty);
		vm->in_fd = -1; /* the input's now */
		s->input_running = true;
	}
}

/* Milliseconds until `when` on the monotonic clock, 0 once it has passed. */
static int ms_until(long long when)
{
	long long left = when - monotonic_ms();

	return left > 0 ? (int)left : 0;
}

/* The nearer of two poll timeouts, -1 meaning none. */
static int nearer(int timeout, int ms)
{
	return ms >= 0 && (timeout < 0 || ms < timeout) ? ms : timeout;
}

/* The nearest of the escalation deadline, the agent's and the ssh probe's timeouts, the next STATUS= line and the
 * bundled guest's ports deadline. */
static int poll_timeout(const struct supervisor *s)
{
	int timeout = s->deadline ? ms_until(s->deadline) : -1;

	if (s->agent_running)
		timeout = nearer(timeout, agent_timeout_ms(&s->agent));
	if (s->probing)
		timeout = nearer(timeout, ready_probe_timeout_ms(&s->probe));
	if (!s->ready && !s->phase)
		timeout = nearer(timeout, ms_until(s->next_status));
	if (watching_ports(s))
		timeout = nearer(timeout, ms_until(ports_deadline(s)));
	return timeout;
}

#define SUPERVISOR_POLLFDS 14

static void fill_pollfds(struct supervisor *s, int sigfd, struct pollfd fds[SUPERVISOR_POLLFDS + COMMAND_INPUT_POLLFDS])
{
	struct vm_process *vm = s->vm;
	const struct pollfd fixed[SUPERVISOR_POLLFDS] = {
		{ sigfd, POLLIN, 0 },	      { vm->pidfd, POLLIN, 0 },	 { vm->qmp.fd, POLLIN, 0 },
		{ vm->out_fd, POLLIN, 0 },    { vm->err_fd, POLLIN, 0 }, { vm->status_fd, POLLIN, 0 },
		{ s->guardian->pidfd, POLLIN, 0 },
		{ s->out[0].len ? 1 : -1, POLLOUT, 0 }, { s->out[1].len ? 2 : -1, POLLOUT, 0 },
		{ s->agent_running ? s->agent.fd : -1, POLLIN, 0 },
		{ vm->console.qemu_fd, POLLIN, 0 }, { vm->console.listen_fd, POLLIN, 0 },
		{ vm->console.client_fd, POLLIN, 0 },
		{ s->probing ? s->probe.fd : -1, (short)ready_probe_events(&s->probe), 0 },
	};

	memcpy(fds, fixed, sizeof(fixed));
	for (int i = SUPERVISOR_POLLFDS; i < SUPERVISOR_POLLFDS + COMMAND_INPUT_POLLFDS; i++)
		fds[i] = (struct pollfd){ .fd = -1 };
	if (s->input_running)
		command_input_pollfds(&s->input, &fds[SUPERVISOR_POLLFDS]);
}

static void on_signal(struct supervisor *s, int sigfd)
{
	struct signalfd_siginfo si;

	if (read(sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (!s->stop_signal)
		s->stop_signal = (int)si.ssi_signo;
	s->stop_requests++;
	log_info("received %s", strsignal((int)si.ssi_signo));
	escalate(s);
}

/* One round of what poll found, in fill_pollfds' order of meaning. True once qemu has exited (*wstatus). */
static bool handle_events(struct supervisor *s, int sigfd, struct pollfd *fds, int *wstatus)
{
	const struct plan *p = s->p;
	struct vm_process *vm = s->vm;

	if (s->deadline && monotonic_ms() >= s->deadline)
		escalate(s);
	if (fds[0].revents)
		on_signal(s, sigfd);
	if (fds[2].revents && qmp_dispatch(&vm->qmp) < 0) {
		close(vm->qmp.fd);
		vm->qmp.fd = -1; /* qemu closed QMP: it is exiting; the pidfd tells when */
	}
	if (s->probing && !s->phase && ready_probe_step(&s->probe, fds[13].revents)) {
		char *what = xasprintf("ssh answered on %s:%u", p->ssh_host, p->ssh_port);

		mark_ready(s, what);
		free(what);
	}
	if (!s->phase)
		say_waiting(s);
	check_ports(s);
	if (fds[10].revents)
		console_relay(s);
	if (fds[11].revents)
		console_accept(&vm->console);
	if (fds[12].revents)
		console_from_client(&vm->console);
	if (fds[3].revents)
		relay(s, &vm->out_fd, 0);
	if (fds[4].revents)
		relay(s, &vm->err_fd, 1);
	if (fds[7].revents)
		flush_some(s, 0);
	if (fds[8].revents)
		flush_some(s, 1);
	if (fds[5].revents)
		relay(s, &vm->status_fd, -1);
	if (fds[3].revents || fds[4].revents || fds[5].revents)
		acknowledge(s);
	if (s->input_running)
		command_input_handle(&s->input, &fds[SUPERVISOR_POLLFDS]);
	if (s->agent_running) {
		feed_agent_input(s);
		drive_agent(s, fds[9].revents != 0);
	}
	if (fds[6].revents && guardian_restart(s->guardian) < 0)
		log_warn("running without a guardian: if vmlaunch is killed now, run vmlaunch --cleanup %s", p->cfg->name);
	if (!fds[1].revents)
		return false;
	while (waitpid(vm->pid, wstatus, 0) < 0 && errno == EINTR)
		;
	vm->pid = -1;
	return true;
}

/* qemu is gone (or killed now): its last words read, the terminal given back, the exit status decided. */
static int finish(struct supervisor *s, int wstatus, bool exited)
{
	struct vm_process *vm = s->vm;
	int r;

	if (!exited) {
		kill(vm->pid, SIGKILL);
		waitpid(vm->pid, &wstatus, 0);
		vm->pid = -1;
	}
	if (vm->qmp.fd >= 0)
		qmp_dispatch(&vm->qmp); /* a last SHUTDOWN or GUEST_PANICKED event */
	drain(s);
	if (s->input_running)
		command_input_end(&s->input); /* the terminal as it was, before any message below */
	if (vm->console.terminal_pid > 0) {
		console_close(&vm->console); /* its relay puts the terminal back as it goes */
		console_terminal_wait(&vm->console);
	}
	r = exit_status(s, wstatus);
	free(s->shutdown_reason);
	if (s->probing)
		ready_probe_close(&s->probe);
	if (s->p->agent_mode)
		agent_free(&s->agent);
	return r;
}

int run_supervise(const struct plan *p, struct vm_process *vm, int sigfd, struct guardian *guardian)
{
	struct supervisor s = { .p = p, .vm = vm, .guardian = guardian };
	int wstatus = 0;
	bool exited = false;

	vm->qmp.on_event = on_event;
	vm->qmp.user = &s;
	start_guest(&s);
	/* Set-up is over: the poll loop below is all vmlaunch runs until the guest stops. */
	trim_resident();
	while (!exited) {
		struct pollfd fds[SUPERVISOR_POLLFDS + COMMAND_INPUT_POLLFDS];

		fill_pollfds(&s, sigfd, fds);
		if (poll(fds, SUPERVISOR_POLLFDS + COMMAND_INPUT_POLLFDS, poll_timeout(&s)) < 0) {
			if (errno == EINTR)
				continue;
			log_errno(errno, "poll");
			break;
		}
		exited = handle_events(&s, sigfd, fds, &wstatus);
	}
	return finish(&s, wstatus, exited);
}
