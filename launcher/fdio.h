/* Small I/O helpers: whole writes on (non-)blocking fds, the one monotonic clock (timeouts, progress lines), and the
 * first line of a small /proc or sysfs file. */
#ifndef VMLAUNCH_FDIO_H
#define VMLAUNCH_FDIO_H

#include <stdbool.h>
#include <stddef.h>

/* Writes all of buf, waiting for POLLOUT on a non-blocking fd. 0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);
/* /dev/null on whichever of fds 0, 1 and 2 is closed, so that nothing vmlaunch opens lands there and is taken
 * for its stdin or stdout (the guest command's stdin is read from fd 0). */
void stdio_keep_open(void);
/* CLOCK_MONOTONIC in milliseconds. */
long long monotonic_ms(void);
/* The first line of PATH into buf, its newline kept (as fgets keeps it); false, with buf "", when the file cannot be
 * opened or is empty. */
bool read_first_line(const char *path, char *buf, size_t size);

#endif
