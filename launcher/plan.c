/* Every decision vmlaunch makes about how qemu runs, each with the reason --explain prints. No I/O happens here. */
#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <stdio.h>
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
			return log_errno(ENODEV, "%s:%u: [vm] accel = kvm, but KVM cannot run guests here: %s",
					 cfg->file, cfg->accel_line, host->kvm.reason);
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

/* Guest RAM: hugepages, its node, the guest NUMA nodes for memory tiers. */
static int plan_memory(const struct vm_config *cfg, const struct host_facts *host, struct plan *p)
{
	uint64_t page;

	p->hugepages = cfg->hugepages == HUGEPAGES_OFF ? -1 : cfg->hugepages == HUGEPAGES_1G ? HP_1G : HP_2M;
	p->total_memory = cfg->memory;
	for (size_t i = 0; i < cfg->n_tiers; i++)
		p->total_memory += cfg->tiers[i].size;
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
		return log_error("%s:%u: [memory] hugepages = %s: [vm] memory must be a multiple of %s", cfg->file,
				 cfg->hugepages_line, hugepage_size_name(p->hugepages), hugepage_size_name(p->hugepages));
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

int plan_build(const struct vm_config *cfg, const struct host_facts *host, const struct storage_target *targets,
	       const struct privileges *privileges, bool command_mode, struct plan *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->host = host;
	p->command_mode = command_mode;
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
	if (command_mode && !cfg->kernel)
		return log_error("%s: vmlaunch CONFIG -- COMMAND runs the command in the bundled guest: the config needs "
				 "[boot] kernel = and initrd = (see configs/demo.conf)",
				 cfg->file);
	if (cfg->memory % (1ULL << 20))
		return log_error("%s:%u: [vm] memory: expected a multiple of 1M", cfg->file, cfg->memory_line);

	p->state_dir = state_dir_path(host->state_root, cfg->name);
	if (cfg->console_log)
		p->console_log = xstrdup(cfg->console_log);
	else if (command_mode)
		/* The command's own output owns stdout; the kernel's goes to a log shown if the guest fails. */
		p->console_log = state_file(p->state_dir, STATE_CONSOLE);
	p->interactive = host->stdin_is_tty && !p->console_log;
	if (command_mode)
		p->argv_file = state_file(p->state_dir, STATE_ARGV);
	if (cfg->kernel) {
		/* TCG executes nothing speculatively, so the guest's Spectre/Meltdown mitigations protect nothing and cost
		 * much of its I/O rate; the user's own append comes after and can say otherwise. */
		bool tsc = !p->kvm && (host->tsc_clocksource || host->tsc_invariant) &&
			   !words_have(cfg->append, "tsc=", true) && !words_have(cfg->append, "clocksource=", true);
		/* Under TCG a completion interrupt is relayed iothread -> main loop -> MSI, and a vCPU spends itself
		 * taking it: one poll queue lets polled I/O skip it and leaves one interrupt queue (see cmdline_why). */
		bool poll_queue = !p->kvm && cfg->cpus >= 2 && cfg->n_disks > 0 &&
				  !words_have(cfg->append, "virtio_blk.poll_queues=", true);

		p->cmdline = xasprintf("console=ttyS0 panic=-1%s%s%s%s%s%s", p->kvm ? "" : " mitigations=off",
				       tsc ? " tsc=reliable" : "", poll_queue ? " virtio_blk.poll_queues=1" : "",
				       p->interactive ? " " GUEST_CMDLINE_INTERACTIVE "=1" : "", cfg->append ? " " : "",
				       cfg->append ? cfg->append : "");
		p->cmdline_why = xasprintf(
			"%s%s%s",
			p->kvm ? "direct kernel boot ([boot]); an uncompressed vmlinux enters through PVH, skipping the emulated "
				 "decompression"
			       : "direct kernel boot ([boot]) through PVH for an uncompressed vmlinux; mitigations=off: TCG "
				 "executes nothing speculatively, so the guest's Spectre/Meltdown mitigations protect nothing "
				 "and cost much of its I/O rate",
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
	return 0;
}

void plan_free(struct plan *p)
{
	cpu_plan_free(&p->cpus);
	free(p->memory_why);
	free(p->allocator_why);
	free(p->accel_why);
	free(p->console_log);
	free(p->cmdline);
	free(p->cmdline_why);
	free(p->state_dir);
	free(p->argv_file);
	for (size_t i = 0; i < p->n_disks; i++)
		free(p->disks[i].why);
	free(p->disks);
	memset(p, 0, sizeof(*p));
}
