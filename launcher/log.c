/* The one place that writes vmlaunch's own messages to stderr. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int log_verbose;

static void vlog(const char *prefix, int err, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err)
		fprintf(stderr, "vmlaunch: %s%s: %s\n", prefix, msg, strerror(err));
	else
		fprintf(stderr, "vmlaunch: %s%s\n", prefix, msg);
}

int log_errno(int err, const char *fmt, ...)
{
	va_list ap;

	if (err < 0)
		err = -err;
	if (!err)
		err = EIO;
	va_start(ap, fmt);
	vlog("", err, fmt, ap);
	va_end(ap);
	return -err;
}

int log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", 0, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", 0, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog("", 0, fmt, ap);
	va_end(ap);
}
