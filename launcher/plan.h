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
	QEMU_FD_AGENT = 8,   /* command mode without a kernel: qemu-guest-agent's port */
	QEMU_FD_STDIN = 9,   /* command mode: the guest command's stdin */
	QEMU_FD_CONSOLE = 10, /* the serial console, relayed by vmlaunch (console.c) when no terminal holds it */
	QEMU_FD_COUNT = 8,
	/* From here: what vmlaunch hands qemu open. First the devices' (tap queues, vhost-net; p->n_extra_fds, numbered
	 * by the plan), then what qemu_argv asks for instead of paths (qemu_cmdline.fds, qemu as another user). */
	QEMU_FD_EXTRA = 11,
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

/* The serial of the read-only disk holding the kernel's modules for root = DISK; ':' is in no [disk] name. */
#define GUEST_MODULES_SERIAL "vmlaunch:modules"

/* A [share]: virtiofsd serves `source` on `socket` (both in the state dir); qemu's vhost-user-fs device connects. */
struct share_plan {
	const struct share_config *cfg;
	char *socket;
	char *source; /* readonly: a read-only bind of the directory in the state dir, so the host enforces it */
	char *why;
};

/* [boot] tpm = yes: a TPM 2.0 that swtpm emulates, on a socket in the state dir; qemu's tpm-crb device talks to it. */
struct tpm_plan {
	bool wanted;
	char *socket; /* swtpm's control channel: vmlaunch listens, swtpm serves, qemu connects */
	char *state;  /* the directory swtpm keeps its state in: [boot] tpm-state, or one in the state dir */
	bool persistent;
	char *why;
};

/* A [net] NIC. */
struct net_plan {
	const struct net_config *cfg;
	char mac[18];
	char tap[16];          /* tap: the interface vmlaunch makes */
	unsigned queues;       /* tap: one per vCPU */
	bool vhost;            /* tap: vhost-net queues too (KVM and /dev/vhost-net) */
	unsigned bridge_index; /* tap: filled at launch, when the bridge is looked up */
	int fd_base;           /* tap: qemu's fd of queue 0; vhost's follow the queues */
	struct net_forward *forwards; /* user mode: each forward, its port made concrete at launch (forward.c) */
	size_t n_forwards;
	char *why;
};

/* What tells systemd (READY=1) that the guest can be reached, not merely that qemu started. */
enum ready_signal {
	READY_AT_START, /* nothing in the guest to ask: when it starts running */
	READY_SSH,      /* an SSH banner through the forward to port 22 */
	READY_AGENT,    /* qemu-guest-agent answers guest-sync (-- COMMAND in a firmware-booted guest) */
	READY_GUEST_PORT, /* the bundled guest opens its virtio-serial ports (QMP VSERPORT_CHANGE) */
};

/* A file the guest reads through fw_cfg: NAME in the guest, PATH in the state dir, written at launch. */
enum guest_file_kind { GUEST_FILE_ARGV, GUEST_FILE_USER, GUEST_FILE_ENV, GUEST_FILE_SHARES, GUEST_FILE_TTY, GUEST_FILE_WAIT };
struct guest_file {
	enum guest_file_kind kind;
	const char *name;
	char *path;
};

struct plan {
	const struct vm_config *cfg;
	const struct host_facts *host;
	bool kvm;
	char *accel_why;
	bool accel_warning; /* auto fell back to TCG on a host that has /dev/kvm or wants one: say so once */
	bool command_mode;  /* vmlaunch CONFIG -- COMMAND */
	bool snapshot;      /* saved or restored (snapshot.c): the command goes over the status port, not fw_cfg */
	const char *snapshot_ram; /* snapshot-memory = shared: guest RAM is this file (set by main.c, owned by it) */
	bool snapshot_ram_share;  /* ... mapped shared while saving, private (copy-on-write) when restored */
	bool agent_mode;    /* ... in a firmware-booted guest, through its qemu-guest-agent */
	bool interactive;   /* a terminal on stdin and the console on stdio: the demo guest offers a shell */
	bool command_tty;   /* command mode in the bundled guest with a terminal on stdin and stdout: a pty there */
	char *console_log;  /* the relayed console's log; NULL: serial console on stdio (interactive) */
	char *console_socket; /* where vmlaunch --console attaches (with console_log), in the state dir */
	bool console_to_stdout; /* the relayed console also goes to stdout (no command, no console-log) */
	bool console_on_terminal; /* UEFI on a terminal: vmlaunch relays the console to it, filtered (term_filter.h) */
	char *cmdline;      /* kernel command line */
	char *cmdline_why;
	char *state_dir;
	char *argv_file;    /* command mode: the fw_cfg file with the command's argv */
	struct disk_plan *disks;
	size_t n_disks;
	struct share_plan *shares;
	size_t n_shares;
	bool shared_memory; /* guest RAM mappable by other processes (virtiofsd) */
	struct net_plan *nets;
	size_t n_nets;
	size_t n_extra_fds; /* QEMU_FD_EXTRA.. that devices hand over */
	const char *modules_image; /* root = DISK: the kernel's modules, a read-only disk */
	const struct firmware *uefi; /* OVMF, or NULL: SeaBIOS */
	char *uefi_vars;             /* its variable store: [boot] nvram, or a copy in the state dir */
	char *firmware_why;
	struct tpm_plan tpm;
	char *firmware_log;           /* SeaBIOS boots from a disk: its messages, where "No bootable device." shows */
	char *seed;                  /* [cloud-init]: the NoCloud seed volume in the state dir */
	char ssh_host[64];           /* the host end of a forward to the guest's port 22 ("" if none): vmlaunch --ssh */
	unsigned ssh_port;
	const struct net_forward *ssh_forward; /* the forward ssh_port comes from (its port may move at launch) */
	enum ready_signal ready;
	char *ready_why;
	char *seed_why;
	struct guest_file guest_files[6]; /* argv, user, env, shares, tty, wait: what exists */
	size_t n_guest_files;
	const struct strv *env; /* --env NAME=VALUE for the command */
	const struct strv *command; /* -- COMMAND */

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

/* What the command line adds to the config for one run. */
struct run_request {
	bool command_mode;      /* vmlaunch CONFIG -- COMMAND */
	const struct strv *env; /* --env NAME=VALUE for the command, or NULL */
	const struct strv *command; /* the COMMAND, or NULL */
	bool snapshot;          /* --snapshot, or a restore: the same machine either way (snapshot.c) */
};

/* Pure: no I/O. Returns 0, or a negative errno after logging why the config cannot run on this host. */
int plan_build(const struct vm_config *cfg, const struct host_facts *host, const struct storage_target *targets,
	       const struct privileges *privileges, const struct run_request *req, struct plan *out);
void plan_free(struct plan *p);

/* The per-disk cache/aio decision alone, exposed for unit tests. */
void plan_disk_io(const struct disk_config *d, const struct storage_target *t, const struct host_facts *host,
		  struct disk_plan *out);

#endif
