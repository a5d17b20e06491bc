/* Small I/O helpers shared by the QMP client and the supervisor: whole writes on (non-)blocking fds, and the one
 * monotonic clock (timeouts, progress lines). */
#ifndef VMLAUNCH_FDIO_H
#define VMLAUNCH_FDIO_H

#include <stddef.h>

/* Writes all of buf, waiting for POLLOUT on a non-blocking fd. 0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);
/* /dev/null on whichever of fds 0, 1 and 2 is closed, so that nothing vmlaunch opens lands there and is taken
 * for its stdin or stdout (the guest command's stdin is read from fd 0). */
void stdio_keep_open(void);
/* CLOCK_MONOTONIC in milliseconds. */
long long monotonic_ms(void);

#endif
