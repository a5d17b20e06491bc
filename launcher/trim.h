/* Gives back the resident memory a long-lived waiter (the supervisor, the guardian) no longer needs. */
#ifndef VMLAUNCH_TRIM_H
#define VMLAUNCH_TRIM_H

/* Drops this process's page-table entries for the code of its binary and libraries, and returns freed heap to the
 * kernel. Code pages stay in the page cache; what the waiter runs next faults back in from there. */
void trim_resident(void);

#endif
