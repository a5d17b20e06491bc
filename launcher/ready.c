/* Whether the guest's ssh answers through its forward: slirp accepts on the host at once, before the guest listens,
 * so a connect proves nothing; an "SSH-" banner read back does. Non-blocking, driven by the supervisor's loop. */
#define _GNU_SOURCE
#include "ready.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"

#define RETRY_MS 1000
#define ATTEMPT_MS 5000 /* a guest that accepted and says nothing: try again rather than wait on it */

void ready_probe_init(struct ready_probe *r, const char *host, unsigned port)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	snprintf(r->host, sizeof(r->host), "%s", host);
	r->port = port;
	r->next_ms = monotonic_ms();
}

static void give_up_attempt(struct ready_probe *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->len = 0;
	r->next_ms = monotonic_ms() + RETRY_MS;
}

static void start_attempt(struct ready_probe *r)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)r->port) };

	if (inet_pton(AF_INET, r->host, &addr.sin_addr) != 1) {
		r->next_ms = -1; /* the plan only names IPv4 addresses; never reached */
		return;
	}
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (r->fd < 0 || (connect(r->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS)) {
		give_up_attempt(r);
		return;
	}
	r->attempts++;
	r->deadline_ms = monotonic_ms() + ATTEMPT_MS;
}

int ready_probe_events(const struct ready_probe *r)
{
	return r->fd >= 0 ? POLLIN : 0;
}

int ready_probe_timeout_ms(const struct ready_probe *r)
{
	long long at = r->fd >= 0 ? r->deadline_ms : r->next_ms, left = at - monotonic_ms();

	if (r->next_ms < 0 && r->fd < 0)
		return -1;
	return left > 0 ? (int)left : 0;
}

bool ready_probe_step(struct ready_probe *r, short revents)
{
	if (r->fd < 0) {
		if (r->next_ms >= 0 && monotonic_ms() >= r->next_ms)
			start_attempt(r);
		return false;
	}
	if (revents) {
		ssize_t n = read(r->fd, r->banner + r->len, sizeof(r->banner) - 1 - r->len);

		if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
			give_up_attempt(r); /* refused or closed: the guest's sshd is not up yet */
			return false;
		}
		if (n > 0)
			r->len += (size_t)n;
		if (r->len >= 4) {
			bool ssh = !memcmp(r->banner, "SSH-", 4);

			if (ssh) {
				close(r->fd);
				r->fd = -1;
				r->next_ms = -1;
				return true;
			}
			give_up_attempt(r);
			return false;
		}
	}
	if (monotonic_ms() >= r->deadline_ms)
		give_up_attempt(r);
	return false;
}

void ready_probe_close(struct ready_probe *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->next_ms = -1;
}
