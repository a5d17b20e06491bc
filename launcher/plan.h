/* Decisions: config + host facts + prepared-disk descriptions → what qemu runs with, each with a one-line reason. */
#ifndef VMLAUNCH_PLAN_H
#define VMLAUNCH_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "host.h"
#include "plan_cpus.h"
#include "privileges.h"
#include "storage.h"

/* The fds the qemu child finds its channels on (run.c puts them there before exec). */
enum {
	QEMU_FD_QMP = 3,
	QEMU_FD_STDOUT = 4, /* command mode: the guest command's stdout */
	QEMU_FD_STDERR = 5,
	QEMU_FD_STATUS = 6,
	QEMU_FD_QMP_EXT = 7, /* a listening socket vmlaunch bound at STATE_DIR/qmp.sock, for other tools */
	QEMU_FD_COUNT = 5,
};

struct disk_plan {
	const struct disk_config *cfg;
	const struct storage_target *target;
	char node[32];     /* node name of the top block node, which the device sits on */
	char iothread[32]; /* the disk's own iothread */
	bool direct;       /* cache.direct */
	bool no_flush;     /* cache.no-flush */
	const char *aio;   /* "native", "io_uring" or "threads" */
	bool reclaim;      /* discard=unmap + detect-zeroes=unmap: space the guest frees goes back to the host */
	char *why;
};

struct plan {
	const struct vm_config *cfg;
	const struct host_facts *host;
	bool kvm;
	char *accel_why;
	bool accel_warning; /* auto fell back to TCG on a host that has /dev/kvm or wants one: say so once */
	bool command_mode;  /* vmlaunch CONFIG -- COMMAND */
	bool interactive;   /* a terminal on stdin and the console on stdio: the demo guest offers a shell */
	char *console_log;  /* NULL: serial console on stdio */
	char *cmdline;      /* kernel command line */
	char *cmdline_why;
	char *state_dir;
	char *argv_file;    /* command mode: the fw_cfg file with the command's argv */
	struct disk_plan *disks;
	size_t n_disks;

	struct cpu_plan cpus;
	int hugepages;            /* -1: off; else HP_2M or HP_1G */
	uint64_t hugepages_count; /* pages of guest RAM */
	unsigned memory_node;     /* where guest RAM (and its hugepages) lives, when bind_memory */
	bool bind_memory;
	uint64_t total_memory;    /* [vm] memory plus every tier */
	char *memory_why;
	const char *tcmalloc;     /* LD_PRELOAD for qemu, or NULL */
	char *allocator_why;
	const struct privileges *privileges;
};

/* Pure: no I/O. Returns 0, or a negative errno after logging why the config cannot run on this host. */
int plan_build(const struct vm_config *cfg, const struct host_facts *host, const struct storage_target *targets,
	       const struct privileges *privileges, bool command_mode, struct plan *out);
void plan_free(struct plan *p);

/* The per-disk cache/aio decision alone, exposed for unit tests. */
void plan_disk_io(const struct disk_config *d, const struct storage_target *t, const struct host_facts *host,
		  struct disk_plan *out);

#endif
