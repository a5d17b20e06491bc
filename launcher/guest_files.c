/* Writes the fw_cfg files the bundled guest reads (launcher/guest_protocol.h): no quoting anywhere, NUL-separated;
 * a guest restored from a snapshot gets the same over its status port. */
#define _GNU_SOURCE
#include "guest_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "test_hook.h"

static void append(char **buf, size_t *len, const char *data, size_t n)
{
	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, data, n);
	*len += n;
}

/* Each string followed by one NUL. */
static void append_strv(char **buf, size_t *len, const struct strv *v)
{
	for (size_t i = 0; v && i < v->n; i++)
		append(buf, len, v->v[i], strlen(v->v[i]) + 1);
}

static void append_shares(char **buf, size_t *len, const struct plan *p)
{
	for (size_t i = 0; i < p->n_shares; i++) {
		const struct share_config *s = p->shares[i].cfg;
		char *line = xasprintf("%s %s %s\n", s->tag, s->readonly ? "ro" : "rw", s->mount);

		append(buf, len, line, strlen(line));
		free(line);
	}
}

/* "ROWS COLS TERM": the terminal on stdout as it is now (later changes go over the status port), and the TERM that
 * describes it, as ssh passes it; "dumb" when there is none that fits on the line. */
static void append_tty(char **buf, size_t *len)
{
	struct winsize size = { .ws_row = 24, .ws_col = 80 };
	const char *term = getenv("TERM");
	char *line;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) < 0 || !size.ws_row || !size.ws_col)
		size = (struct winsize){ .ws_row = 24, .ws_col = 80 };
	if (!term || !*term || strlen(term) > 63 || strpbrk(term, " \t\n"))
		term = "dumb";
	line = xasprintf("%u %u %s\n", size.ws_row, size.ws_col, term);
	append(buf, len, line, strlen(line));
	free(line);
}

static int write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), r;

	if (fd < 0)
		return log_errno(errno, "cannot create %s", path);
	r = fd_write_all(fd, data, len);
	if (close(fd) < 0 && !r)
		r = -errno;
	return r < 0 ? log_errno(r, "cannot write %s", path) : 0;
}

int guest_files_write(const struct plan *p, const struct strv *command)
{
	int r = 0;

	for (size_t i = 0; i < p->n_guest_files && !r; i++) {
		char *buf = NULL;
		size_t len = 0;

		switch (p->guest_files[i].kind) {
		case GUEST_FILE_ARGV:
			if (!p->snapshot) /* empty: the command comes over the status port (snapshot.c) */
				append_strv(&buf, &len, command);
			break;
		case GUEST_FILE_WAIT:
			append(&buf, &len, "1\n", 2);
			break;
		case GUEST_FILE_ENV:
			append_strv(&buf, &len, p->env);
			break;
		case GUEST_FILE_USER:
			append(&buf, &len, p->cfg->command_user, strlen(p->cfg->command_user));
			break;
		case GUEST_FILE_SHARES:
			append_shares(&buf, &len, p);
			break;
		case GUEST_FILE_TTY:
			append_tty(&buf, &len);
			break;
		}
		r = write_file(p->guest_files[i].path, buf ? buf : "", len);
		free(buf);
	}
	return r;
}

/* "file NAME BYTES\n" and the bytes, which may hold NULs. */
static int send_file(int fd, const char *name, const char *data, size_t len)
{
	char *head = xasprintf("file %s %zu\n", name, len);
	int r = fd_write_all(fd, head, strlen(head));

	free(head);
	return r < 0 ? r : fd_write_all(fd, data, len);
}

/* The files the command needs, each as guest_files_write makes it: NULL data for none to send. */
static int send_files(const struct plan *p, int fd)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	append_strv(&buf, &len, p->command);
	r = send_file(fd, "argv", buf ? buf : "", len);
	if (r == 0 && p->env && p->env->n) {
		len = 0;
		append_strv(&buf, &len, p->env);
		r = send_file(fd, "env", buf, len);
	}
	if (r == 0 && p->cfg->command_user)
		r = send_file(fd, "user", p->cfg->command_user, strlen(p->cfg->command_user));
	if (r == 0 && p->command_tty) {
		len = 0;
		append_tty(&buf, &len);
		r = send_file(fd, "tty", buf, len);
	}
	free(buf);
	return r;
}

int guest_files_send(const struct plan *p, int status_fd)
{
	unsigned char seed[32];
	struct timespec now;
	char *buf, hex[2 * sizeof(seed) + 1];
	int r = send_files(p, status_fd);

	if (r < 0)
		return log_errno(r, "cannot send the command to the restored guest");
	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		return log_errno(errno, "getrandom");
	for (size_t i = 0; i < sizeof(seed); i++)
		sprintf(hex + 2 * i, "%02x", seed[i]);
	/* the seed too, besides vmgenid: it credits entropy, and reaches kernels without the vmgenid driver (< 5.18) */
	if (test_hook_withhold("seed"))
		hex[0] = '\0';
	/* the time last, as late as possible: the guest sets its clock from it */
	clock_gettime(CLOCK_REALTIME, &now);
	buf = xasprintf("%s%s%shostname %s\ntime %lld %ld\nrun\n", hex[0] ? "seed " : "", hex, hex[0] ? "\n" : "",
			p->cfg->name, (long long)now.tv_sec, now.tv_nsec);
	r = fd_write_all(status_fd, buf, strlen(buf));
	free(buf);
	if (r < 0)
		return log_errno(r, "cannot send the command to the restored guest");
	return 0;
}
