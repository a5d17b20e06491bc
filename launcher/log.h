/* Messages to the user: one line each, prefixed "vmlaunch: ", logged once where a failure happens. */
#ifndef VMLAUNCH_LOG_H
#define VMLAUNCH_LOG_H

extern int log_verbose;

/* Prints "vmlaunch: MSG: strerror(err)" and returns -err, so callers can `return log_errno(errno, ...)`. */
int log_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "vmlaunch: MSG" and returns -EINVAL (a problem with what the user asked for). */
int log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only with --verbose. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
