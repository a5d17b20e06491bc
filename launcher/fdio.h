/* Small I/O helpers shared by the QMP client and the supervisor: whole writes on (non-)blocking fds, a clock. */
#ifndef VMLAUNCH_FDIO_H
#define VMLAUNCH_FDIO_H

#include <stddef.h>

/* Writes all of buf, waiting for POLLOUT on a non-blocking fd. 0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);
/* CLOCK_MONOTONIC in milliseconds. */
long long monotonic_ms(void);

#endif
