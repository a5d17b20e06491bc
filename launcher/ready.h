/* Readiness by ssh: probes the forward to the guest's port 22 until an SSH banner comes back. */
#ifndef VMLAUNCH_READY_H
#define VMLAUNCH_READY_H

#include <stdbool.h>
#include <stddef.h>

struct ready_probe {
	char host[64];
	unsigned port;
	int fd;               /* the attempt in flight, or -1 */
	long long next_ms;    /* no attempt in flight: when to start one (-1: done) */
	long long deadline_ms; /* an attempt in flight: when to give it up */
	unsigned attempts;
	char banner[16];
	size_t len;
};

void ready_probe_init(struct ready_probe *r, const char *host, unsigned port);
/* What to poll the probe's fd for (0: nothing in flight), and how long the loop may sleep for its sake (-1: ever). */
int ready_probe_events(const struct ready_probe *r);
int ready_probe_timeout_ms(const struct ready_probe *r);
/* Advances the probe (revents: what poll said of its fd); true once an SSH banner has been read. */
bool ready_probe_step(struct ready_probe *r, short revents);
void ready_probe_close(struct ready_probe *r);

#endif
