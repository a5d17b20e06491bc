/* vmlaunch's exit statuses (documented in README.md and vmlaunch --help). */
#ifndef VMLAUNCH_EXIT_STATUS_H
#define VMLAUNCH_EXIT_STATUS_H

#define EXIT_VM_OK 0        /* the VM powered off (or the command exited 0) */
#define EXIT_SETUP_FAILED 1 /* vmlaunch or qemu failed; everything vmlaunch set up was undone */
#define EXIT_BAD_INPUT 2    /* bad command line or config: nothing on the host was touched */
#define EXIT_NO_STATUS 125  /* -- COMMAND: the guest panicked or stopped without reporting the command's status */
/* 128+N: vmlaunch was stopped by signal N and had to stop the VM before the command finished */

#endif
