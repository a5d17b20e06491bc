/* -- COMMAND in a firmware-booted guest, through qemu-guest-agent: sync, guest-exec with captured output, poll its
 * status. A state machine the supervisor's poll loop drives, so signals and QMP go on meanwhile. */
#ifndef VMLAUNCH_AGENT_H
#define VMLAUNCH_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include "strv.h"

/* The most of vmlaunch's stdin passed as guest-exec's input-data: it is held in memory twice (raw and base64) and
 * sent in one JSON request, which qemu-guest-agent's parser caps at 64 MiB. */
#define AGENT_INPUT_MAX (16u << 20)

enum agent_state { AGENT_SYNC, AGENT_CLOCK, AGENT_CLOCK_WAIT, AGENT_EXEC, AGENT_STATUS, AGENT_DONE, AGENT_FAILED };

struct agent {
	int fd; /* the org.qemu.guest_agent.0 port's socket */
	enum agent_state state;
	char *buf;
	size_t len, cap;
	unsigned sync_id;
	long long pid;             /* the guest's pid of the command (AGENT_CLOCK_WAIT: of the fix-up running now) */
	long long next_ms;         /* when to send the next request */
	long long deadline_ms;     /* AGENT_SYNC: when to give up */
	unsigned timeout_s;
	struct strv argv, env;
	bool input_pending;        /* guest-exec waits for agent_set_input */
	bool set_clock;            /* a restored snapshot: the clock set to the host's now before the command */
	const char *hostname;      /* ... and then its hostname (the run's [vm] name), or NULL */
	int fixup;                 /* AGENT_CLOCK*: which of those runs now (0: date -s, 1: hostname) */
	char *input;               /* the command's stdin, base64, or NULL for none (/dev/null in the guest) */
	int exit_code;             /* AGENT_DONE: the command's status (128+N for a signal) */
	char *out, *err;           /* AGENT_DONE: its captured output, decoded */
	size_t out_len, err_len;
	char *failure;             /* AGENT_FAILED: why */
};

/* Starts talking on fd (taken over). env: NAME=VALUE entries; user: run through runuser, or NULL for root. */
void agent_begin(struct agent *a, int fd, const struct strv *argv, const struct strv *env, const char *user,
		 unsigned timeout_s);
/* The command's whole stdin, once vmlaunch has read it (guest-exec takes it all at once, as input-data). Called
 * only when input_pending was set before the agent could send guest-exec; len 0 sends none. */
void agent_set_input(struct agent *a, const char *data, size_t len);
/* Milliseconds until agent_tick wants to run, or -1. */
int agent_timeout_ms(const struct agent *a);
/* Reads what the agent sent (when its fd is readable) and sends what is due. */
void agent_tick(struct agent *a, bool readable);
void agent_free(struct agent *a);

/* Standard base64 (RFC 4648) → bytes; -1 on a malformed string. Exposed for tests. */
long agent_base64_decode(const char *in, char *out);
/* Bytes → standard base64 with padding, NUL-terminated, malloc'ed. Exposed for tests. */
char *agent_base64_encode(const char *in, size_t len);

#endif
