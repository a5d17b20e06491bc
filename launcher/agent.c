/* The qemu-guest-agent protocol (qemu's qga/qapi-schema.json): JSON commands on a virtio-serial port. A fresh agent
 * may hold a half-read request from before we connected, so talking starts with guest-sync-delimited, whose answer
 * follows a 0xFF byte that resets the stream. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"

#define AGENT_SYNC_EVERY_MS 1000
#define AGENT_STATUS_EVERY_MS 200
/* a restored guest's agent is already up, and its command's time is what a warm start is for: ask more often */
#define AGENT_RESTORED_EVERY_MS 50
#define AGENT_BUF_MAX (64u << 20) /* guest-exec output is at most 16 MiB per stream, base64 */

long agent_base64_decode(const char *in, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned bits = 0, n = 0;
	long len = 0;

	for (; *in && *in != '='; in++) {
		const char *p = strchr(alphabet, *in);

		if (!p || !*in)
			return -1;
		bits = bits << 6 | (unsigned)(p - alphabet);
		if ((n += 6) >= 8) {
			n -= 8;
			out[len++] = (char)(bits >> n);
			bits &= (1u << n) - 1;
		}
	}
	return len;
}

char *agent_base64_encode(const char *in, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)in;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;

	for (size_t i = 0; i < len; i += 3) {
		unsigned bits = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
				(i + 2 < len ? p[i + 2] : 0);

		*o++ = alphabet[bits >> 18];
		*o++ = alphabet[bits >> 12 & 63];
		*o++ = i + 1 < len ? alphabet[bits >> 6 & 63] : '=';
		*o++ = i + 2 < len ? alphabet[bits & 63] : '=';
	}
	*o = '\0';
	return out;
}

static void send_json(struct agent *a, struct json_object *msg, bool delimited)
{
	const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	char *line = xasprintf("%s%s\n", delimited ? "\xff" : "", s);

	/* A sync never blocks: until the guest's agent opens its port qemu reads nothing from the socket, which fills
	 * after a few minutes of syncs; a blocked vmlaunch would stop relaying the console, and qemu's serial output
	 * would then stall the guest. The syncs already queued do as well (a torn one is cut off by the next 0xFF). */
	if (delimited)
		(void)!send(a->fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
	else if (fd_write_all(a->fd, line, strlen(line)) < 0)
		a->state = AGENT_FAILED, a->failure = xstrdup("the guest agent's port closed");
	free(line);
	json_object_put(msg);
}

static struct json_object *command(const char *name, struct json_object *args)
{
	struct json_object *msg = json_object_new_object();

	json_object_object_add(msg, "execute", json_object_new_string(name));
	if (args)
		json_object_object_add(msg, "arguments", args);
	return msg;
}

static struct json_object *strings(const struct strv *v, size_t from)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = from; i < v->n; i++)
		json_object_array_add(arr, json_object_new_string(v->v[i]));
	return arr;
}

static long long status_every(const struct agent *a)
{
	return a->set_clock ? AGENT_RESTORED_EVERY_MS : AGENT_STATUS_EVERY_MS;
}

/* A restored guest's fix-ups, by agent.fixup: what each sets, the program that does it, and how messages name it. */
static const struct {
	const char *what, *program, *shown;
} FIXUPS[] = { { "clock", "date", "date -s" }, { "hostname", "hostname", "hostname" } };

static void send_due(struct agent *a)
{
	struct json_object *args = json_object_new_object();

	switch (a->state) {
	case AGENT_SYNC:
		json_object_object_add(args, "id", json_object_new_int64(++a->sync_id));
		send_json(a, command("guest-sync-delimited", args), true);
		a->next_ms = monotonic_ms() + (a->set_clock ? AGENT_RESTORED_EVERY_MS * 4 : AGENT_SYNC_EVERY_MS);
		break;
	case AGENT_CLOCK: {
		/* `date -s`, not guest-set-time: qemu-guest-agent's guest-set-time also waits for `hwclock -w`, which
		 * syncs the RTC to a second boundary (qga/commands-posix.c): seconds per restore under TCG here. Then
		 * the run's own hostname, which the saved guest would otherwise share with every sibling. */
		struct timespec now;
		struct strv cmd = STRV_INIT;

		if (a->fixup == 0) {
			clock_gettime(CLOCK_REALTIME, &now);
			strv_push_many(&cmd, "-u", "-s", NULL);
			strv_pushf(&cmd, "@%lld.%09ld", (long long)now.tv_sec, now.tv_nsec);
		} else {
			strv_push(&cmd, a->hostname);
		}
		json_object_object_add(args, "path", json_object_new_string(FIXUPS[a->fixup].program));
		json_object_object_add(args, "arg", strings(&cmd, 0));
		json_object_object_add(args, "capture-output", json_object_new_boolean(1));
		strv_free(&cmd);
		send_json(a, command("guest-exec", args), false);
		a->next_ms = -1; /* until it answers */
		break;
	}
	case AGENT_EXEC:
		if (a->input_pending) {
			a->next_ms = -1; /* agent_set_input sends it */
			json_object_put(args);
			break;
		}
		json_object_object_add(args, "path", json_object_new_string(a->argv.v[0]));
		json_object_object_add(args, "arg", strings(&a->argv, 1));
		if (a->env.n)
			json_object_object_add(args, "env", strings(&a->env, 0));
		json_object_object_add(args, "capture-output", json_object_new_boolean(1));
		if (a->input)
			json_object_object_add(args, "input-data", json_object_new_string(a->input));
		send_json(a, command("guest-exec", args), false);
		a->next_ms = -1; /* until it answers */
		break;
	case AGENT_CLOCK_WAIT:
	case AGENT_STATUS:
		json_object_object_add(args, "pid", json_object_new_int64(a->pid));
		send_json(a, command("guest-exec-status", args), false);
		a->next_ms = -1;
		break;
	default:
		json_object_put(args);
		break;
	}
}

static bool decode_into(struct json_object *ret, const char *key, char **data, size_t *len)
{
	struct json_object *v;
	long n;

	if (!json_object_object_get_ex(ret, key, &v))
		return true;
	*data = xmalloc(strlen(json_object_get_string(v)) + 1);
	n = agent_base64_decode(json_object_get_string(v), *data);
	*len = n > 0 ? (size_t)n : 0;
	return n >= 0;
}

/* A restored guest's next fix-up (date -s, then hostname when there is one), or the command. */
static void next_fixup(struct agent *a)
{
	a->fixup++;
	a->state = a->fixup == 1 && a->hostname ? AGENT_CLOCK : AGENT_EXEC;
	a->next_ms = 0;
}

/* One answer. Anything not for the current step (a late sync answer) is ignored. */
static void handle(struct agent *a, struct json_object *msg)
{
	struct json_object *ret, *err, *v;

	if (json_object_object_get_ex(msg, "error", &err)) {
		struct json_object *desc;
		const char *d = json_object_object_get_ex(err, "desc", &desc) ? json_object_get_string(desc) : "?";

		/* the command could not start: a shell's statuses, so scripts read them the same as the bundled guest's */
		if (a->state == AGENT_EXEC && (strstr(d, "No such file") || strstr(d, "Permission denied"))) {
			a->exit_code = strstr(d, "No such file") ? 127 : 126;
			a->err = xasprintf("vmlaunch: %s\n", d);
			a->err_len = strlen(a->err);
			a->state = AGENT_DONE;
			return;
		}
		if (a->state == AGENT_SYNC)
			return; /* an answer to a half request from before we connected */
		if (a->state == AGENT_CLOCK || a->state == AGENT_CLOCK_WAIT) { /* the command runs all the same */
			log_warn("the restored guest's %s stays as saved: qemu-guest-agent's guest-exec of %s: %s",
				 FIXUPS[a->fixup].what, FIXUPS[a->fixup].shown, d);
			next_fixup(a);
			return;
		}
		a->state = AGENT_FAILED;
		a->failure = xasprintf("the guest agent refused the command: %s", d);
		return;
	}
	if (!json_object_object_get_ex(msg, "return", &ret))
		return;
	switch (a->state) {
	case AGENT_SYNC:
		if (json_object_is_type(ret, json_type_int) && (unsigned)json_object_get_int64(ret) == a->sync_id) {
			log_info("qemu-guest-agent answered; running the command");
			a->state = a->set_clock ? AGENT_CLOCK : AGENT_EXEC;
			a->next_ms = 0;
		}
		break;
	case AGENT_CLOCK:
		if (json_object_object_get_ex(ret, "pid", &v)) {
			a->pid = json_object_get_int64(v);
			a->state = AGENT_CLOCK_WAIT;
			a->next_ms = monotonic_ms() + AGENT_RESTORED_EVERY_MS;
		}
		break;
	case AGENT_CLOCK_WAIT:
		if (!json_object_object_get_ex(ret, "exited", &v) || !json_object_get_boolean(v)) {
			a->next_ms = monotonic_ms() + AGENT_RESTORED_EVERY_MS;
			break;
		}
		if (!json_object_object_get_ex(ret, "exitcode", &v) || json_object_get_int(v) != 0)
			log_warn("the restored guest's %s stays as saved: %s failed in the guest", FIXUPS[a->fixup].what,
				 FIXUPS[a->fixup].shown);
		next_fixup(a);
		break;
	case AGENT_EXEC:
		if (json_object_object_get_ex(ret, "pid", &v)) {
			a->pid = json_object_get_int64(v);
			a->state = AGENT_STATUS;
			a->next_ms = monotonic_ms() + status_every(a);
		}
		break;
	case AGENT_STATUS:
		if (!json_object_object_get_ex(ret, "exited", &v) || !json_object_get_boolean(v)) {
			a->next_ms = monotonic_ms() + status_every(a);
			break;
		}
		if (json_object_object_get_ex(ret, "exitcode", &v))
			a->exit_code = json_object_get_int(v) & 0xff;
		else if (json_object_object_get_ex(ret, "signal", &v))
			a->exit_code = 128 + json_object_get_int(v);
		if (!decode_into(ret, "out-data", &a->out, &a->out_len) || !decode_into(ret, "err-data", &a->err, &a->err_len)) {
			a->state = AGENT_FAILED;
			a->failure = xstrdup("the guest agent sent output that is not base64");
			break;
		}
		a->state = AGENT_DONE;
		break;
	default:
		break;
	}
}

void agent_begin(struct agent *a, int fd, const struct strv *argv, const struct strv *env, const char *user,
		 unsigned timeout_s)
{
	memset(a, 0, sizeof(*a));
	a->fd = fd;
	a->timeout_s = timeout_s;
	a->deadline_ms = monotonic_ms() + (long long)timeout_s * 1000;
	/* guest-exec has no user: runuser (util-linux, in every distro) switches before the command's own exec */
	if (user)
		strv_push_many(&a->argv, "runuser", "-u", user, "--", NULL);
	strv_extend(&a->argv, argv);
	if (env)
		strv_extend(&a->env, env);
	a->state = AGENT_SYNC;
}

void agent_set_input(struct agent *a, const char *data, size_t len)
{
	a->input = len ? agent_base64_encode(data, len) : NULL;
	a->input_pending = false;
	if (a->state == AGENT_EXEC)
		a->next_ms = 0;
}

int agent_timeout_ms(const struct agent *a)
{
	long long now = monotonic_ms(), next = a->next_ms;

	if (a->state == AGENT_DONE || a->state == AGENT_FAILED)
		return -1;
	if (a->state == AGENT_SYNC && (next < 0 || a->deadline_ms < next))
		next = a->deadline_ms;
	if (next < 0)
		return -1;
	return next > now ? (int)(next - now) : 0;
}

void agent_tick(struct agent *a, bool readable)
{
	if (readable) {
		ssize_t n;

		if (a->cap - a->len < 65536) {
			a->cap = a->cap ? a->cap * 2 : 65536 * 2;
			a->buf = xrealloc(a->buf, a->cap);
		}
		n = read(a->fd, a->buf + a->len, a->cap - a->len - 1);
		if (n > 0)
			a->len += (size_t)n;
		if (a->len > AGENT_BUF_MAX) {
			a->state = AGENT_FAILED;
			a->failure = xstrdup("the guest agent's answer is larger than vmlaunch accepts");
		}
		for (char *nl; a->state != AGENT_FAILED && (nl = memchr(a->buf, '\n', a->len));) {
			size_t line = (size_t)(nl - a->buf) + 1;
			char *start = a->buf;
			struct json_object *msg;

			*nl = '\0';
			/* the 0xFF that precedes a delimited sync answer resets the stream: start after it */
			for (char *ff; (ff = memchr(start, 0xff, (size_t)(nl - start)));)
				start = ff + 1;
			msg = json_tokener_parse(start);
			memmove(a->buf, a->buf + line, a->len - line);
			a->len -= line;
			if (msg) {
				handle(a, msg);
				json_object_put(msg);
			}
		}
	}
	if (a->state == AGENT_SYNC && monotonic_ms() >= a->deadline_ms) {
		a->state = AGENT_FAILED;
		a->failure = xasprintf("no qemu-guest-agent answered in %u s ([vm] agent-timeout)", a->timeout_s);
		return;
	}
	if ((a->state == AGENT_SYNC || a->state == AGENT_CLOCK || a->state == AGENT_CLOCK_WAIT || a->state == AGENT_EXEC ||
	     a->state == AGENT_STATUS) &&
	    a->next_ms >= 0 &&
	    monotonic_ms() >= a->next_ms)
		send_due(a);
}

void agent_free(struct agent *a)
{
	if (a->fd >= 0)
		close(a->fd);
	free(a->buf);
	strv_free(&a->argv);
	strv_free(&a->env);
	free(a->input);
	free(a->out);
	free(a->err);
	free(a->failure);
	memset(a, 0, sizeof(*a));
	a->fd = -1;
}
