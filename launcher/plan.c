/* Every decision vmlaunch makes about how qemu runs, each with the reason --explain prints. No I/O happens here. */
#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "guest_protocol.h"
#include "log.h"
#include "state_dir.h"
#include "strv.h"

void plan_disk_io(const struct disk_config *d, const struct storage_target *t, const struct host_facts *host,
		  struct disk_plan *out)
{
	bool block = t->driver == DRIVER_HOST_DEVICE, rbd = t->driver == DRIVER_RBD;
	const char *flush_why;

	/* O_DIRECT skips the host page cache: for a RAM-backed target that cache would hold a second copy of the data,
	 * for a persistent one it would hide flushes' cost until writeback. aio=native needs O_DIRECT and is the fastest
	 * with it on files (tests/bench); without O_DIRECT io_uring beats the thread pool. */
	out->direct = t->direct_ok;
	if (rbd)
		out->aio = NULL; /* librbd does its own I/O; cache.direct=on is what turns librbd's cache off */
	else if (block && host->io_uring)
		out->aio = "io_uring"; /* block devices: the submission path without the AIO context's limits */
	else if (out->direct)
		out->aio = "native";
	else
		out->aio = host->io_uring ? "io_uring" : "threads";
	/* Flushes protect data that outlives the VM; an ephemeral disk is thrown away, so flushing only costs time. */
	out->no_flush = t->ephemeral && d->cache != CACHE_SAFE;
	if (d->cache == CACHE_UNSAFE)
		out->no_flush = true;
	if (d->cache == CACHE_SAFE)
		flush_why = "flushes honoured (cache = safe)";
	else if (d->cache == CACHE_UNSAFE)
		flush_why = "flushes ignored (cache = unsafe)";
	else if (out->no_flush)
		flush_why = "flushes ignored: the disk is thrown away at exit";
	else
		flush_why = "flushes honoured: the data outlives the VM";
	/* Where freed blocks return memory or space to the host, let the guest's discards and zero writes do so. */
	out->reclaim = (t->ram_backed || t->ephemeral) && !t->readonly;
	/* Every iothread busy-polls at qemu's adaptive default (the window grows while work arrives within it and drops to
	 * nothing when it does not): while it polls, a request needs no guest kick (tests/bench/README.md). */
	free(out->why);
	out->why = xasprintf("disk \"%s\": %s%s %s on %s; %s; aio=%s; %s%s; own iothread, virtio-blk-pci; packed virtqueue "
			     "(fewer guest cycles per request); the iothread busy-polls (qemu's adaptive default, up to 32 us "
			     "after each event): no guest kick while it polls", d->name,
			     t->ephemeral ? "ephemeral" : "persistent", t->format == FORMAT_QCOW2 ? " qcow2" : "",
			     storage_driver_name(t->driver), t->filename,
			     rbd ? "cache.direct=on: turns librbd's own cache off, which qemu would otherwise enable whatever "
				   "the cluster says; the device sits on the rbd node, no raw layer"
			     : out->direct ? "cache.direct=on (O_DIRECT works there: no second copy in the host page cache)"
					   : "cache.direct=off (the target refuses O_DIRECT)",
			     out->aio ? out->aio : "librbd's", flush_why,
			     out->reclaim ? "; discard+detect-zeroes=unmap give freed space back" : "");
}

static int plan_accel(const struct vm_config *cfg, const struct host_facts *host, struct plan *p)
{
	bool usable = host->kvm.verdict == KVM_USABLE;

	switch (cfg->accel) {
	case ACCEL_TCG:
		p->kvm = false;
		p->accel_why = xstrdup("TCG: accel = tcg in the config");
		return 0;
	case ACCEL_KVM:
		if (!usable)
			return log_errno(ENODEV, "%s: [vm] accel = kvm, but KVM cannot run guests here: %s",
					 config_at(cfg, cfg->accel_line), host->kvm.reason);
		p->kvm = true;
		p->accel_why = xstrdup("KVM: accel = kvm and /dev/kvm runs a 64-bit guest");
		return 0;
	case ACCEL_AUTO:
		p->kvm = usable;
		if (usable) {
			p->accel_why = xstrdup("KVM: /dev/kvm runs a 64-bit guest (probed)");
		} else {
			p->accel_why = xasprintf("TCG (software emulation, much slower): %s", host->kvm.reason);
			p->accel_warning = true;
		}
		return 0;
	}
	return -EINVAL;
}

#define GUEST_MEMORY_MAX (1ULL << 52)

/* q35's root bus has 32 slots; with -nodefaults the host bridge holds 00 and the LPC bridge 1f: 30 are free. Every
 * device vmlaunch adds is a PCI function on one of them (no bridges): past 30, qemu refused to start with a message
 * about a bus, after the disks were made. [qemu] extra devices are not counted: their cost is the user's. */
#define Q35_FREE_PCI_SLOTS 30

/* RAM-backed disks (tmpfs, zram, brd: incompressible data costs zram its full size) and guest RAM all live in host
 * memory: more than MemTotal can never fit, and the host would swap or OOM-kill on the way. Hugepages are taken
 * from what is available now; the reserve itself gives back what the kernel could not find. */
static int plan_host_memory(const struct vm_config *cfg, const struct host_facts *host, const struct plan *p)
{
	unsigned long long disks = 0, ram = 0, need;

	if (!host->mem_total)
		return 0;
	for (size_t i = 0; i < cfg->n_disks; i++) {
		enum backend_kind b = cfg->disks[i].backend;

		if ((b == BACKEND_TMPFS || b == BACKEND_ZRAM || b == BACKEND_BRD) &&
		    __builtin_add_overflow(disks, cfg->disks[i].size, &disks))
			disks = ULLONG_MAX;
	}
	ram = cfg->memory;
	for (size_t i = 0; i < cfg->n_tiers; i++)
		if (cfg->tiers[i].backend == TIER_DRAM && __builtin_add_overflow(ram, cfg->tiers[i].size, &ram))
			ram = ULLONG_MAX;
	if (__builtin_add_overflow(disks, ram, &need))
		need = ULLONG_MAX;
	if (need > host->mem_total)
		return log_error("%s: the VM needs %llu MiB of host RAM (%llu MiB of RAM disks: tmpfs, zram, brd; %llu MiB "
				 "of guest RAM), but this host has %llu MiB (MemTotal; MemAvailable %llu MiB); expected "
				 "smaller disks or less memory",
				 cfg->file, need >> 20, disks >> 20, ram >> 20, host->mem_total >> 20,
				 host->mem_available >> 20);
	if (p->hugepages >= 0 && host->mem_available &&
	    p->hugepages_count * (uint64_t)hugepage_size_kib(p->hugepages) * 1024 > host->mem_available)
		return log_error(
			"%s: [memory] hugepages = %s: %llu pages (%llu MiB) for guest RAM, but only %llu MiB "
			"of the host's %llu MiB are available (MemAvailable, MemTotal); expected less memory or "
			"hugepages = off",
			config_at(cfg, cfg->hugepages_line), hugepage_size_name(p->hugepages),
			(unsigned long long)p->hugepages_count, (unsigned long long)(cfg->memory >> 20),
			host->mem_available >> 20, host->mem_total >> 20);
	return 0;
}

static int plan_pci_slots(const struct vm_config *cfg, const struct host_facts *host, const struct plan *p)
{
	size_t devices = cfg->n_disks + (p->modules_image ? 1 : 0) + (p->seed ? 1 : 0) + cfg->n_shares + cfg->n_nets +
			 (p->command_mode ? 1 : 0) + (host->pvpanic_pci ? 1 : 0) + 1 /* virtio-rng */;

	if (devices > Q35_FREE_PCI_SLOTS)
		return log_error("%s: %zu PCI devices (%zu disks%s, %zu shares, %zu NICs%s%s, virtio-rng), but q35's root "
				 "bus has %d free slots; expected fewer disks, shares or NICs",
				 cfg->file, devices, cfg->n_disks,
				 p->modules_image ? " + the modules disk" : p->seed ? " + the cloud-init seed" : "",
				 cfg->n_shares, cfg->n_nets, p->command_mode ? ", the command's virtio-serial" : "",
				 host->pvpanic_pci ? ", pvpanic" : "", Q35_FREE_PCI_SLOTS);
	return 0;
}

/* Guest RAM: hugepages, its node, the guest NUMA nodes for memory tiers. */
static int plan_memory(const struct vm_config *cfg, const struct host_facts *host, struct plan *p)
{
	uint64_t page;

	p->hugepages = cfg->hugepages == HUGEPAGES_OFF ? -1 : cfg->hugepages == HUGEPAGES_1G ? HP_1G : HP_2M;
	p->total_memory = cfg->memory;
	for (size_t i = 0; i < cfg->n_tiers; i++)
		if (__builtin_add_overflow(p->total_memory, cfg->tiers[i].size, &p->total_memory))
			p->total_memory = UINT64_MAX;
	/* x86-64 guests address at most 52 bits (4 PiB); a larger sum wrapped around to "-m 0M" before */
	if (p->total_memory > GUEST_MEMORY_MAX)
		return log_errno(EINVAL,
				 "%s: guest memory ([vm] memory plus every tier) is more than 4 PiB, what an x86-64 guest can "
				 "address; expected less",
				 cfg->file);
	p->bind_memory = host->topo.numa && host->topo.n_nodes > 1 && p->cpus.node >= 0; /* one node: nothing to choose */
	p->memory_node = p->cpus.node >= 0 ? (unsigned)p->cpus.node : 0;
	if (p->hugepages < 0) {
		if (p->bind_memory)
			p->memory_why = xasprintf("guest RAM %llu MiB, bound to host node %u, next to its vCPUs",
						  (unsigned long long)(cfg->memory >> 20), p->memory_node);
		else
			p->memory_why = xasprintf("guest RAM %llu MiB", (unsigned long long)(cfg->memory >> 20));
		return 0;
	}
	page = (uint64_t)hugepage_size_kib(p->hugepages) * 1024;
	if (cfg->memory % page)
		return log_error("%s: [memory] hugepages = %s: [vm] memory must be a multiple of %s",
				 config_at(cfg, cfg->hugepages_line), hugepage_size_name(p->hugepages),
				 hugepage_size_name(p->hugepages));
	p->hugepages_count = cfg->memory / page;
	p->memory_why = xasprintf("guest RAM on %llu %s hugepages (fewer TLB misses) from an anonymous memfd "
				  "(nothing on a hugetlbfs a crash could leave behind), preallocated%s",
				  (unsigned long long)p->hugepages_count, hugepage_size_name(p->hugepages),
				  p->bind_memory ? " and bound to the vCPUs' host node" : "");
	return 0;
}

static void plan_allocator(const struct vm_config *cfg, const struct host_facts *host, struct plan *p)
{
	if (cfg->allocator == ALLOCATOR_SYSTEM) {
		p->allocator_why = xstrdup("glibc malloc in qemu ([qemu] allocator = system)");
	} else if (host->tcmalloc_path) {
		p->tcmalloc = host->tcmalloc_path;
		bool rbd = false;

		for (size_t i = 0; i < cfg->n_disks; i++)
			rbd |= cfg->disks[i].backend == BACKEND_RBD;
		p->allocator_why = xasprintf("LD_PRELOAD=%s for qemu only: %s", host->tcmalloc_path,
					     rbd ? "librbd's many small allocations run much faster on tcmalloc"
						 : "tcmalloc's per-thread caches for qemu's allocations (librbd's above all; "
						   "[qemu] allocator = system turns it off)");
	} else {
		p->allocator_why = xstrdup("glibc malloc in qemu: tcmalloc is not installed (libgoogle-perftools4)");
	}
}

/* FNV-1a: a stable MAC per VM and NIC, the same every run, different between VMs. */
static void default_mac(const char *vm, const char *nic, char out[18])
{
	uint32_t h = 2166136261u;

	for (const char *s = vm; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *s = nic; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	/* 52:54:00 is qemu's locally administered, unicast prefix */
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

/* The NICs: user-mode networking through qemu's slirp, forwards bound to loopback unless an address is written. */
static void plan_nets(const struct vm_config *cfg, const struct host_facts *host, struct plan *p)
{
	p->n_nets = cfg->n_nets;
	p->nets = xcalloc(cfg->n_nets, sizeof(*p->nets));
	for (size_t i = 0; i < cfg->n_nets; i++) {
		const struct net_config *n = &cfg->nets[i];
		struct net_plan *np = &p->nets[i];

		np->cfg = n;
		if (n->mac)
			snprintf(np->mac, sizeof(np->mac), "%s", n->mac);
		else
			default_mac(cfg->name, n->name, np->mac);
		/* qemu's hostfwd binds every address when none is given: a forward is for this host unless it says so */
		np->n_forwards = n->forwards.n;
		np->forwards = xcalloc(n->forwards.n + 1, sizeof(*np->forwards));
		for (size_t k = 0; k < n->forwards.n; k++) {
			struct net_forward *f = &np->forwards[k];

			config_forward_parse(n->forwards.v[k], f); /* validated by config.c */
			/* the first forward to the guest's ssh port is where vmlaunch --ssh connects */
			if (!p->ssh_port && !f->udp && f->guest == 22) {
				snprintf(p->ssh_host, sizeof(p->ssh_host), "%s",
					 strcmp(f->addr, "0.0.0.0") ? f->addr : "127.0.0.1");
				p->ssh_port = f->host;
				p->ssh_forward = f;
			}
		}
		if (n->mode == NET_TAP) {
			uint32_t h = 2166136261u;

			for (const char *s = cfg->name; *s; s++)
				h = (h ^ (unsigned char)*s) * 16777619u;
			for (const char *s = n->name; *s; s++)
				h = (h ^ (unsigned char)*s) * 16777619u;
			if (n->tap)
				snprintf(np->tap, sizeof(np->tap), "%s", n->tap);
			else
				snprintf(np->tap, sizeof(np->tap), "vml%08x", h);
			np->queues = cfg->cpus;
			np->vhost = p->kvm && host->vhost_net;
			np->fd_base = QEMU_FD_EXTRA + (int)p->n_extra_fds;
			p->n_extra_fds += np->queues * (np->vhost ? 2 : 1);
			np->why = xasprintf("net \"%s\": tap %s on bridge %s, made by vmlaunch and handed to qemu as open fds "
					    "(qemu has no privileges): %u queue(s), one per vCPU, multi-queue virtio-net%s; "
					    "mac %s%s%s%s",
					    n->name, np->tap, n->bridge, np->queues,
					    np->vhost ? " with vhost-net (the kernel moves the packets)"
						      : p->kvm ? " (no /dev/vhost-net here: qemu moves the packets)"
							       : " (vhost-net needs KVM)",
					    np->mac, n->address ? "; the guest takes " : "", n->address ? n->address : "",
					    n->address ? " from the seed's network-config (vmlaunch --ssh connects there)" : "");
			/* no forward to port 22: vmlaunch --ssh (and READY=1) go to the static address, from the bridge's side */
			if (!p->ssh_port && n->address) {
				snprintf(p->ssh_host, sizeof(p->ssh_host), "%.*s", (int)strcspn(n->address, "/"), n->address);
				p->ssh_port = 22;
			}
		} else if (n->mode == NET_NONE)
			np->why = xasprintf("net \"%s\": a virtio NIC with no backend: the guest sees a link that never comes up",
					    n->name);
		else
			np->why = xasprintf(
				"net \"%s\": user-mode networking (qemu's slirp: no privileges, no host device, no helper "
				"process; chosen over passt by measurement: passt was slower into the guest and on small "
				"request/answer round trips, faster only out of it; the guest reaches the host as "
				"10.0.2.2)%s%s; virtio-net-pci, mac %s",
				n->name,
				n->restricted ? ", restrict=on: the guest reaches nothing beyond the forwards" : "",
				np->n_forwards ? ", forwards on the host's loopback unless an address is written" : "", np->mac);
	}
}

/* The shares: one virtiofsd each, on a socket in the state dir; guest RAM must be mappable by it. */
static void plan_shares(const struct vm_config *cfg, struct plan *p)
{
	p->n_shares = cfg->n_shares;
	p->shares = xcalloc(cfg->n_shares, sizeof(*p->shares));
	p->shared_memory = cfg->n_shares > 0;
	for (size_t i = 0; i < cfg->n_shares; i++) {
		const struct share_config *s = &cfg->shares[i];
		struct share_plan *sp = &p->shares[i];
		char *leaf = xasprintf("virtiofs-%s.sock", s->name);

		sp->cfg = s;
		sp->socket = state_file(p->state_dir, leaf);
		free(leaf);
		if (s->readonly) {
			leaf = xasprintf("share-%s", s->name);
			sp->source = state_file(p->state_dir, leaf);
			free(leaf);
		} else {
			sp->source = xstrdup(s->path);
		}
		sp->why = xasprintf("share \"%s\": %s at %s in the guest (tag %s) over virtiofs: virtiofsd serves it on a "
				    "socket vmlaunch listens on and hands over, and dies with vmlaunch%s",
				    s->name, s->path, s->mount, s->tag,
				    s->readonly ? "; read-only on the host too: virtiofsd sees a read-only bind mount" : "");
	}
}

/* SeaBIOS, or OVMF from qemu's firmware descriptors with a variable store of this VM's own. */
static void plan_firmware(const struct vm_config *cfg, const struct host_facts *host, struct plan *p)
{
	if (!cfg->kernel && cfg->firmware != FIRMWARE_BIOS && host->ovmf.uefi) {
		p->uefi = &host->ovmf;
		p->uefi_vars = cfg->nvram ? xstrdup(cfg->nvram) : state_file(p->state_dir, "uefi-vars.fd");
		p->firmware_why = xasprintf("UEFI: %s (%s); variables in %s%s", host->ovmf.description, host->ovmf.code,
					    p->uefi_vars, cfg->nvram ? ", kept across runs" : ", a fresh copy per run");
	} else if (cfg->kernel && p->snapshot) {
		p->firmware_why = xstrdup("SeaBIOS, not qboot: the snapshot's vmgenid device needs firmware that tells qemu "
					  "where the generation ID lives (the ACPI table loader's WRITE_POINTER, which qboot "
					  "lacks); a restore runs no firmware, so only the save pays for it");
	} else if (cfg->kernel) {
		p->firmware_why = xstrdup("qboot, which loads the kernel and nothing else; SeaBIOS would also clear the "
					  "terminal and turn its autowrap off through the serial console");
	} else {
		p->firmware_log = state_file(p->state_dir, STATE_FIRMWARE_LOG);
		p->firmware_why = xasprintf(
			"SeaBIOS (no OVMF installed, or firmware = bios); its messages go to its debug port, %s, not to the "
			"serial console (-display none, not -nographic: told there is no display, it would draw its screen "
			"there with terminal control sequences); reboot-timeout=0: with nothing to boot it resets at once, and "
			"vmlaunch reads \"No bootable device.\" there and stops the VM",
			p->firmware_log);
	}
}

/* swtpm runs as qemu's user and dies with vmlaunch; its state is thrown away unless tpm-state = keeps it. */
static void plan_tpm(const struct vm_config *cfg, struct plan *p)
{
	struct tpm_plan *t = &p->tpm;

	if (!cfg->tpm)
		return;
	t->wanted = true;
	t->socket = state_file(p->state_dir, "swtpm.sock");
	t->persistent = cfg->tpm_state != NULL;
	t->state = t->persistent ? xstrdup(cfg->tpm_state) : state_file(p->state_dir, "tpm");
	/* CRB is TPM 2.0's own interface (the PTP spec's); TIS is the older one, kept for TPM 1.2 */
	t->why = xasprintf("TPM 2.0 emulated by swtpm (a helper that dies with vmlaunch, running as qemu's user) on a "
			   "socket vmlaunch listens on; CRB interface, described to the guest by ACPI; state in %s%s",
			   t->state, t->persistent ? ", kept across runs" : ", thrown away at exit");
}

/* When the guest counts as reachable, for systemd's READY=1: the way in it offers, in the order a user would try. */
static void plan_ready(struct plan *p)
{
	if (p->ssh_port) {
		p->ready = READY_SSH;
		p->ready_why = xasprintf("READY=1 for systemd once ssh answers on %s:%u (an SSH banner read back), "
					 "not when qemu starts; STATUS= says what it waits for",
					 p->ssh_host, p->ssh_port);
	} else if (p->agent_mode) {
		p->ready = READY_AGENT;
		p->ready_why = xstrdup("READY=1 for systemd once the guest's qemu-guest-agent answers, not when qemu starts");
	} else if (p->command_mode) {
		p->ready = READY_GUEST_PORT;
		p->ready_why = xstrdup("READY=1 for systemd once the bundled guest opens its ports (QMP VSERPORT_CHANGE), "
				       "not when qemu starts");
	} else {
		p->ready = READY_AT_START;
		p->ready_why = xstrdup("READY=1 for systemd when the guest starts running: it offers no ssh forward or "
				       "agent to wait for");
	}
}

/* The files the bundled guest reads through fw_cfg (guest_protocol.h). */
static void plan_guest_files(const struct vm_config *cfg, const struct run_request *req, struct plan *p)
{
	const struct {
		bool wanted;
		enum guest_file_kind kind;
		const char *name, *leaf;
	} files[] = {
		{ p->command_mode && cfg->kernel, GUEST_FILE_ARGV, GUEST_FWCFG_ARGV, STATE_ARGV },
		{ p->command_mode && cfg->kernel && cfg->command_user && !req->snapshot, GUEST_FILE_USER, GUEST_FWCFG_USER,
		  "user" },
		{ p->command_mode && cfg->kernel && req->env && req->env->n && !req->snapshot, GUEST_FILE_ENV,
		  GUEST_FWCFG_ENV, "env" },
		{ cfg->kernel && cfg->n_shares > 0, GUEST_FILE_SHARES, GUEST_FWCFG_SHARES, "shares" },
		{ p->command_tty && !req->snapshot, GUEST_FILE_TTY, GUEST_FWCFG_TTY, "tty" },
		/* a saved machine must not depend on one run's command: it comes over the status port instead */
		{ p->command_mode && cfg->kernel && req->snapshot, GUEST_FILE_WAIT, GUEST_FWCFG_WAIT, "wait" },
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i].wanted)
			p->guest_files[p->n_guest_files++] = (struct guest_file){
				files[i].kind, files[i].name, state_file(p->state_dir, files[i].leaf)
			};
	p->argv_file = p->command_mode && cfg->kernel ? xstrdup(p->guest_files[0].path) : NULL;
	p->env = req->env;
	p->command = req->command;
}

/* A terminal on stdin keeps the console (the demo's shell); otherwise vmlaunch relays it to a log, to vmlaunch
 * --console, and to stdout unless the command's own output owns stdout or console-log says where. OVMF's serial
 * output resets the terminal and switches its mode: on a terminal vmlaunch relays that console too, filtered. */
static void plan_console(const struct vm_config *cfg, const struct host_facts *host, bool command_mode, struct plan *p)
{
	bool terminal = host->stdin_is_tty && !cfg->console_log && !command_mode;

	p->console_on_terminal = terminal && p->uefi;
	p->interactive = terminal && !p->console_on_terminal;
	if (p->interactive)
		return;
	p->console_log = cfg->console_log ? xstrdup(cfg->console_log) : state_file(p->state_dir, STATE_CONSOLE);
	p->console_socket = state_file(p->state_dir, STATE_CONSOLE_SOCKET);
	p->console_to_stdout = !command_mode && !cfg->console_log && !p->console_on_terminal;
}

/* The cloud-init NoCloud seed, made at launch when the config has a [cloud-init] section. */
static void plan_seed(const struct vm_config *cfg, struct plan *p)
{
	if (!cfg->cloud_init_line)
		return;
	p->seed = state_file(p->state_dir, "cidata.img");
	p->seed_why = xasprintf("cloud-init NoCloud seed (label CIDATA, read-only): hostname %s, user %s with %zu ssh "
				"key(s)%s",
				cfg->name, cfg->cloud_user, cfg->cloud_keys.n,
				cfg->cloud_user_data ? ", user-data as written" : "");
}

/* The kernel command line of a direct kernel boot, and why each word is there. */
static void plan_cmdline(const struct vm_config *cfg, const struct host_facts *host, struct plan *p)
{
	/* TCG executes nothing speculatively, so the guest's Spectre/Meltdown mitigations protect nothing and cost
	 * much of its I/O rate; the user's own append comes after and can say otherwise. */
	bool tsc = !p->kvm && (host->tsc_clocksource || host->tsc_invariant) &&
		   !words_have(cfg->append, "tsc=", true) && !words_have(cfg->append, "clocksource=", true);
	/* Under TCG a completion interrupt is relayed iothread -> main loop -> MSI, and a vCPU spends itself
	 * taking it: one poll queue lets polled I/O skip it and leaves one interrupt queue (see cmdline_why). */
	bool poll_queue = !p->kvm && cfg->cpus >= 2 && cfg->n_disks > 0 &&
			  !words_have(cfg->append, "virtio_blk.poll_queues=", true);
	bool dhcp = false;
	char *root = cfg->root ? xasprintf(" " GUEST_CMDLINE_ROOT "=%s " GUEST_CMDLINE_MODULES "=" GUEST_MODULES_SERIAL,
					   cfg->root)
			       : xstrdup("");

	for (size_t i = 0; i < cfg->n_nets; i++)
		dhcp |= cfg->nets[i].mode == NET_USER;
	/* no_timer_check: under TCG on a loaded host the kernel's early IO-APIC timer check can miss its ticks
	 * and panic ("IO-APIC + timer doesn't work!"), as in other VMs whose vCPUs are descheduled */
	p->cmdline = xasprintf("console=ttyS0 panic=-1%s%s%s%s%s%s%s%s",
			       p->kvm ? "" : " mitigations=off no_timer_check",
			       tsc ? " tsc=reliable" : "", poll_queue ? " virtio_blk.poll_queues=1" : "",
			       p->interactive ? " " GUEST_CMDLINE_INTERACTIVE "=1" : "", root,
			       dhcp ? " " GUEST_CMDLINE_NET "=" GUEST_CMDLINE_NET_DHCP : "", cfg->append ? " " : "",
			       cfg->append ? cfg->append : "");
	free(root);
	p->cmdline_why = xasprintf(
		"%s%s%s",
		p->kvm ? "direct kernel boot ([boot]); an uncompressed vmlinux enters through PVH, skipping the emulated "
			 "decompression"
		       : "direct kernel boot ([boot]) through PVH for an uncompressed vmlinux; mitigations=off: TCG "
			 "executes nothing speculatively, so the guest's Spectre/Meltdown mitigations protect nothing "
			 "and cost much of its I/O rate; no_timer_check: the early IO-APIC timer check fails when the "
			 "host deschedules an emulated vCPU, and panics the guest",
		tsc ? "; tsc=reliable: under TCG the guest's TSC is qemu's tick counter, the host's TSC plus an "
		      "offset, never going back across vCPUs, and ticking at one rate where the host's TSC does "
		      "(invariant: constant_tsc and nonstop_tsc, or the host keeps time with it); without an "
		      "invariant-TSC CPUID bit the guest kernel would distrust it and read the emulated HPET, where "
		      "each clock read is an MMIO exit under qemu's big lock"
		    : "",
		poll_queue ? "; virtio_blk.poll_queues=1: one virtqueue of each disk serves polled I/O (io_uring "
			     "IOPOLL, fio --hipri), which completes with no interrupt, where under TCG each one is "
			     "relayed iothread -> main loop -> MSI and taken by an emulated vCPU; the other I/O shares "
			     "one interrupt queue whose vCPU is often not the submitter's, so the two vCPUs split the "
			     "work"
			   : "");
}

static void plan_disks(const struct vm_config *cfg, const struct host_facts *host, const struct storage_target *targets,
		       struct plan *p)
{
	p->n_disks = cfg->n_disks;
	p->disks = xcalloc(cfg->n_disks, sizeof(*p->disks));
	for (size_t i = 0; i < cfg->n_disks; i++) {
		struct disk_plan *d = &p->disks[i];

		d->cfg = &cfg->disks[i];
		d->target = &targets[i];
		snprintf(d->node, sizeof(d->node), "disk-%s", cfg->disks[i].name);
		snprintf(d->iothread, sizeof(d->iothread), "io-%s", cfg->disks[i].name);
		plan_disk_io(d->cfg, d->target, host, d);
	}
}

int plan_build(const struct vm_config *cfg, const struct host_facts *host, const struct storage_target *targets,
	       const struct privileges *privileges, const struct run_request *req, struct plan *p)
{
	bool command_mode = req->command_mode;
	int r;

	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->host = host;
	p->command_mode = command_mode;
	p->snapshot = req->snapshot;
	p->privileges = privileges;
	r = plan_cpus(cfg, &host->topo, cfg->n_disks, &p->cpus);
	if (r < 0)
		return r;
	r = plan_memory(cfg, host, p);
	if (r < 0)
		return r;
	plan_allocator(cfg, host, p);
	r = plan_accel(cfg, host, p);
	if (r < 0)
		return r;
	/* the bundled guest takes the command over fw_cfg; a firmware-booted distro through its qemu-guest-agent */
	p->agent_mode = command_mode && !cfg->kernel;
	if (cfg->memory % (1ULL << 20))
		return log_error("%s: [vm] memory: expected a multiple of 1M", config_at(cfg, cfg->memory_line));

	p->state_dir = state_dir_path(host->state_root, cfg->name);
	/* a terminal on both sides is a person at it, who wants a shell that behaves like one; with stdout a pipe or a
	 * file the output stays the command's own bytes (a pty would turn \n into \r\n) */
	p->command_tty = command_mode && cfg->kernel && host->stdin_is_tty && host->stdout_is_tty;
	plan_guest_files(cfg, req, p);
	plan_shares(cfg, p);
	plan_nets(cfg, host, p);
	p->modules_image = cfg->root ? cfg->modules : NULL;
	plan_firmware(cfg, host, p);
	plan_console(cfg, host, command_mode, p);
	plan_tpm(cfg, p);
	plan_seed(cfg, p);
	plan_ready(p);
	r = plan_pci_slots(cfg, host, p);
	if (r < 0)
		return r;
	r = plan_host_memory(cfg, host, p);
	if (r < 0)
		return r;
	if (cfg->kernel)
		plan_cmdline(cfg, host, p);
	plan_disks(cfg, host, targets, p);
	return 0;
}

void plan_free(struct plan *p)
{
	cpu_plan_free(&p->cpus);
	free(p->memory_why);
	free(p->allocator_why);
	free(p->accel_why);
	free(p->console_log);
	free(p->firmware_log);
	free(p->console_socket);
	free(p->ready_why);
	free(p->cmdline);
	free(p->cmdline_why);
	free(p->state_dir);
	free(p->argv_file);
	for (size_t i = 0; i < p->n_disks; i++)
		free(p->disks[i].why);
	free(p->disks);
	for (size_t i = 0; i < p->n_shares; i++) {
		free(p->shares[i].socket);
		free(p->shares[i].source);
		free(p->shares[i].why);
	}
	free(p->shares);
	for (size_t i = 0; i < p->n_nets; i++) {
		free(p->nets[i].forwards);
		free(p->nets[i].why);
	}
	free(p->nets);
	for (size_t i = 0; i < p->n_guest_files; i++)
		free(p->guest_files[i].path);
	free(p->uefi_vars);
	free(p->firmware_why);
	free(p->tpm.socket);
	free(p->tpm.state);
	free(p->tpm.why);
	free(p->seed);
	free(p->seed_why);
	memset(p, 0, sizeof(*p));
}
