/* What this host offers, probed once before any decision: qemu, a usable KVM, CPUs, what tmpfs accepts, the terminal. */
#ifndef VMLAUNCH_HOST_H
#define VMLAUNCH_HOST_H

#include <stdbool.h>
#include <stdio.h>

#include "firmware.h"
#include "kvm_probe.h"
#include "topology.h"

struct host_facts {
	char *qemu_path; /* absolute path of the qemu binary */
	struct kvm_probe_result kvm;
	bool stdin_is_tty;
	bool stdout_is_tty;
	bool pvpanic_pci; /* this qemu has the pvpanic-pci device */
	bool io_uring;    /* the kernel runs io_uring and this qemu is linked with liburing: aio=io_uring works */
	bool tsc_clocksource; /* the host kernel keeps time with the TSC: it found the TSC invariant and in sync */
	bool vhost_net;       /* /dev/vhost-net opens (probed when a tap wants it) */
	bool tsc_invariant;   /* the CPU says its TSC ticks at one rate through P- and C-states (constant_tsc and
			       * nonstop_tsc in /proc/cpuinfo); QEMU/KVM shows that to a guest only with a fixed TSC
			       * frequency or with migration blocked */
	unsigned long long mem_total, mem_available; /* /proc/meminfo, bytes; 0: unknown (no check) */
	char *state_root; /* /run/vmlaunch, or $XDG_RUNTIME_DIR/vmlaunch when not root */
	struct topology topo;
	char *tcmalloc_path; /* the soname libtcmalloc_minimal.so.4 (or libtcmalloc.so.4) when the loader's cache has it */
	char *virtiofsd;     /* when wanted: the virtiofsd binary */
	char *swtpm;         /* when wanted: the swtpm binary */
	struct firmware ovmf; /* when wanted and installed: OVMF (ovmf.uefi false: none) */
};

/* What the probe looks for beyond the basics; each costs something, so only what the config needs. */
struct host_wants {
	bool kvm;       /* false: accel = tcg, no KVM probe */
	bool tcmalloc;
	bool virtiofsd; /* [share]: missing is an error naming the package */
	bool swtpm;     /* [boot] tpm = yes: likewise */
	enum firmware_choice firmware; /* auto: OVMF if installed; uefi and uefi-secure: missing is an error */
	bool vhost_net;                /* a tap: whether /dev/vhost-net opens here (probed, never assumed) */
};

/* Returns 0 or -errno after logging what is missing. */
int host_probe(const char *qemu_binary, const struct host_wants *want, struct host_facts *out);
void host_facts_free(struct host_facts *h);

/* Whether the first "flags" line of a /proc/cpuinfo stream names both constant_tsc and nonstop_tsc. */
bool host_cpuinfo_tsc_invariant(FILE *cpuinfo);

/* /run/vmlaunch, or $XDG_RUNTIME_DIR/vmlaunch when not root. */
char *host_state_root(void);

/* Looks NAME up in $PATH unless it contains a slash. Returns a malloc'ed absolute path or NULL. */
char *host_find_program(const char *name);

#endif
