/* Talks QMP to qemu: one JSON object per line; answers matched to commands by id, events handed to a callback. */
#define _GNU_SOURCE
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "strv.h"

/* qemu's largest answers here (query-block, query-cpus-fast of many vCPUs) are tens of KiB: a line this long is a
 * qemu gone wrong (or not qemu), and must not grow vmlaunch's memory without end. */
#define QMP_MESSAGE_MAX (8u << 20)

/* Appends what the socket has; 0 when something was read or nothing is ready, -EPIPE at EOF, -EMSGSIZE for a line
 * longer than QMP_MESSAGE_MAX. */
static int fill(struct qmp *q)
{
	for (;;) {
		ssize_t n;

		if (q->len >= QMP_MESSAGE_MAX) {
			if (!memchr(q->buf, '\n', q->len))
				return log_errno(EMSGSIZE, "QMP: a message longer than %u MiB; closing the connection",
						 QMP_MESSAGE_MAX >> 20);
			return 0; /* complete lines first: the caller takes them, then reads on */
		}
		if (q->cap - q->len < 4096) {
			q->cap = q->cap ? q->cap * 2 : 8192;
			q->buf = xrealloc(q->buf, q->cap);
		}
		n = read(q->fd, q->buf + q->len, q->cap - q->len - 1);
		if (n > 0) {
			q->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
}

/* Takes one complete line out of the buffer and parses it; NULL when no full line is buffered. */
static struct json_object *next_message(struct qmp *q)
{
	char *nl;

	while (q->len && (nl = memchr(q->buf, '\n', q->len))) {
		struct json_object *o;
		size_t line_len = (size_t)(nl - q->buf) + 1;

		*nl = '\0';
		o = json_tokener_parse(q->buf);
		memmove(q->buf, q->buf + line_len, q->len - line_len);
		q->len -= line_len;
		if (o)
			return o;
	}
	return NULL;
}

/* Events go to the callback; answers are returned to the caller. */
static struct json_object *handle(struct qmp *q, struct json_object *o)
{
	struct json_object *ev, *data = NULL;

	if (json_object_object_get_ex(o, "event", &ev)) {
		json_object_object_get_ex(o, "data", &data);
		if (q->on_event)
			q->on_event(q->user, json_object_get_string(ev), data);
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int wait_readable(struct qmp *q, long long deadline)
{
	struct pollfd p = { q->fd, POLLIN, 0 };
	long long left = deadline - monotonic_ms();
	int r;

	if (left <= 0)
		return -ETIMEDOUT;
	r = poll(&p, 1, (int)left);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int qmp_connect(struct qmp *q, int fd, qmp_event_fn on_event, void *user, int timeout_ms, bool quiet_eof)
{
	long long deadline = monotonic_ms() + timeout_ms;
	struct json_object *o;
	int r;

	memset(q, 0, sizeof(*q));
	q->fd = fd;
	q->on_event = on_event;
	q->user = user;
	q->next_id = 1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (!(o = next_message(q))) {
		r = wait_readable(q, deadline);
		if (r == 0)
			r = fill(q);
		if (r == -EPIPE && quiet_eof)
			return r;
		if (r < 0)
			return log_errno(r, "qemu did not greet on QMP");
	}
	q->greeting = o;
	return qmp_execute(q, "qmp_capabilities", NULL, NULL, timeout_ms);
}

/* The line goes out with `fd` attached (SCM_RIGHTS) when fd >= 0: qemu's getfd takes it from the message. */
static int send_with_fd(struct qmp *q, const char *cmd, struct json_object *args, int fd)
{
	struct json_object *msg = json_object_new_object();
	const char *s;
	char *line;
	int r;

	json_object_object_add(msg, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(msg, "arguments", args);
	json_object_object_add(msg, "id", json_object_new_int((int)q->next_id++));
	s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	line = xasprintf("%s\n", s);
	if (fd >= 0) {
		char control[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { line, strlen(line) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
				      .msg_controllen = sizeof(control) };
		struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
		ssize_t n;

		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
		do
			n = sendmsg(q->fd, &msg, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		r = n < 0 ? -errno : fd_write_all(q->fd, line + n, strlen(line) - (size_t)n);
	} else {
		r = fd_write_all(q->fd, line, strlen(line));
	}
	free(line);
	json_object_put(msg);
	if (r < 0)
		return log_errno(r, "QMP %s: cannot send", cmd);
	return 0;
}

int qmp_send(struct qmp *q, const char *cmd, struct json_object *args)
{
	return send_with_fd(q, cmd, args, -1);
}

int qmp_execute(struct qmp *q, const char *cmd, struct json_object *args, struct json_object **ret, int timeout_ms)
{
	return qmp_execute_fd(q, cmd, args, -1, ret, timeout_ms);
}

int qmp_execute_fd(struct qmp *q, const char *cmd, struct json_object *args, int fd, struct json_object **ret,
		   int timeout_ms)
{
	long long deadline = monotonic_ms() + timeout_ms;
	unsigned id = q->next_id;
	int r;

	if (ret)
		*ret = NULL;
	r = send_with_fd(q, cmd, args, fd);
	if (r < 0)
		return r;
	for (;;) {
		struct json_object *o, *idv, *v;

		while ((o = next_message(q))) {
			o = handle(q, o);
			if (!o)
				continue;
			if (!json_object_object_get_ex(o, "id", &idv) || (unsigned)json_object_get_int(idv) != id) {
				json_object_put(o); /* the late answer to a command sent with qmp_send */
				continue;
			}
			if (json_object_object_get_ex(o, "error", &v)) {
				struct json_object *desc;
				const char *d = json_object_object_get_ex(v, "desc", &desc) ? json_object_get_string(desc)
											  : "unknown error";

				log_error("QMP %s: %s", cmd, d);
				json_object_put(o);
				return -EIO;
			}
			if (ret && json_object_object_get_ex(o, "return", &v))
				*ret = json_object_get(v);
			json_object_put(o);
			return 0;
		}
		r = wait_readable(q, deadline);
		if (r == 0)
			r = fill(q);
		if (r < 0)
			return log_errno(r, "QMP %s: no answer from qemu", cmd);
	}
}

int qmp_dispatch(struct qmp *q)
{
	struct json_object *o;
	int r = fill(q);

	while ((o = next_message(q))) {
		o = handle(q, o);
		if (o)
			json_object_put(o);
	}
	return r;
}

void qmp_close(struct qmp *q)
{
	if (q->greeting)
		json_object_put(q->greeting);
	free(q->buf);
	if (q->fd >= 0)
		close(q->fd);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}
