/* A QMP client (json-c) on a connected socket: synchronous commands, asynchronous events. */
#ifndef VMLAUNCH_QMP_H
#define VMLAUNCH_QMP_H

#include <json-c/json.h>
#include <stdbool.h>

typedef void (*qmp_event_fn)(void *user, const char *event, struct json_object *data);

struct qmp {
	int fd;
	char *buf;
	size_t len, cap;
	unsigned next_id;
	qmp_event_fn on_event;
	void *user;
	struct json_object *greeting;
};

/* Reads the greeting and negotiates capabilities. The fd becomes non-blocking. `quiet_eof`: a peer that closes
 * instead of greeting (qemu refused its command line and said why itself) is not reported again. */
int qmp_connect(struct qmp *q, int fd, qmp_event_fn on_event, void *user, int timeout_ms, bool quiet_eof);
/* Runs CMD (args may be NULL; ownership taken) and waits for its answer, dispatching events meanwhile.
 * On success *ret (if non-NULL) holds the "return" value (caller puts it). QMP errors are logged: -EIO. */
int qmp_execute(struct qmp *q, const char *cmd, struct json_object *args, struct json_object **ret, int timeout_ms);
/* qmp_execute with `fd` passed along (SCM_RIGHTS), for getfd. */
int qmp_execute_fd(struct qmp *q, const char *cmd, struct json_object *args, int fd, struct json_object **ret,
		   int timeout_ms);
/* Sends CMD without waiting: its answer is read and dropped later by qmp_dispatch. */
int qmp_send(struct qmp *q, const char *cmd, struct json_object *args);
/* Reads what is available and dispatches events. -EPIPE once qemu has closed the socket. */
int qmp_dispatch(struct qmp *q);
void qmp_close(struct qmp *q);

#endif
