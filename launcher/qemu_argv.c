/* Builds qemu's command line from a plan, in groups that --explain prints with the reason for each. No I/O. */
#define _GNU_SOURCE
#include "qemu_argv.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "guest_protocol.h"
#include "topology.h"

char *qemu_opt_escape(const char *value)
{
	size_t n = 0;
	char *out, *o;

	for (const char *s = value; *s; s++)
		n += *s == ',' ? 2 : 1;
	o = out = xmalloc(n + 1);
	for (const char *s = value; *s; s++) {
		*o++ = *s;
		if (*s == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

static void group_begin(struct qemu_cmdline *c, const char *why)
{
	struct argv_group *g;

	c->groups = xrealloc(c->groups, (c->n_groups + 1) * sizeof(*c->groups));
	g = &c->groups[c->n_groups++];
	g->start = g->end = c->argv.n;
	g->why = xstrdup(why);
}

static void group_end(struct qemu_cmdline *c)
{
	c->groups[c->n_groups - 1].end = c->argv.n;
}

/* ",KEY=VALUE" for each pair the backend gave, values escaped. */
static char *driver_opts(const struct strv *opts)
{
	char *out = xstrdup(""), *tmp, *value;

	for (size_t i = 0; i + 1 < opts->n; i += 2) {
		value = qemu_opt_escape(opts->v[i + 1]);
		tmp = xasprintf("%s,%s=%s", out, opts->v[i], value);
		free(value);
		free(out);
		out = tmp;
	}
	return out;
}

/* Whether qemu gets open fds instead of paths: it runs as another user, who must not need (or get) access to the
 * host's devices and files. */
static bool passes_fds(const struct plan *p)
{
	return p->privileges && p->privileges->switch_user;
}

/* Records PATH for run.c to open with FLAGS; returns the fd number qemu finds it on (after the devices' own). */
static int pass_fd(struct qemu_cmdline *c, const struct plan *p, const char *path, int flags, bool connect)
{
	c->fds = xrealloc(c->fds, (c->n_fds + 1) * sizeof(*c->fds));
	c->fds[c->n_fds] = (struct qemu_fd){ xstrdup(path), flags | O_CLOEXEC, connect };
	return QEMU_FD_EXTRA + (int)p->n_extra_fds + (int)c->n_fds++;
}

/* "-add-fd fd=N,set=N" and the "/dev/fdset/N" qemu opens instead of PATH (its file, host_device and chardev file
 * drivers dup the fd whose access mode matches; O_DIRECT they set on it with fcntl), escaped; or PATH itself. */
static char *file_or_fdset(struct qemu_cmdline *c, const struct plan *p, const char *path, int flags)
{
	int fd;

	if (!passes_fds(p))
		return qemu_opt_escape(path);
	fd = pass_fd(c, p, path, flags, false);
	strv_push(&c->argv, "-add-fd");
	strv_pushf(&c->argv, "fd=%d,set=%d", fd, fd);
	return xasprintf("/dev/fdset/%d", fd);
}

static void push_blockdev(struct qemu_cmdline *c, const struct plan *p, const struct disk_plan *d)
{
	struct strv *argv = &c->argv;
	const struct storage_target *t = d->target;
	const char *driver = storage_driver_name(t->driver);
	char *file = t->driver == DRIVER_RBD ? NULL
					     : file_or_fdset(c, p, t->filename, t->readonly ? O_RDONLY : O_RDWR);
	char *backing = xstrdup("");
	const char *ro = t->readonly ? ",read-only=on" : "";
	const char *reclaim = d->reclaim ? ",discard=unmap,detect-zeroes=unmap" : "";
	const char *direct = d->direct ? "on" : "off", *no_flush = d->no_flush ? "on" : "off";

	if (t->driver == DRIVER_RBD) {
		char *opts = driver_opts(&t->driver_opts);

		strv_push(argv, "-blockdev");
		strv_pushf(argv, "driver=rbd,node-name=%s%s%s%s,cache.direct=on,cache.no-flush=%s%s%s", d->node, opts,
			   t->secret_file ? ",key-secret=secret-" : "", t->secret_file ? d->cfg->name : "", no_flush,
			   d->reclaim ? ",discard=unmap" : "", ro);
		free(opts);
	} else if (t->format == FORMAT_RAW) {
		/* The device sits on the protocol node: no raw layer in between. */
		strv_push(argv, "-blockdev");
		strv_pushf(argv, "driver=%s,node-name=%s,filename=%s,cache.direct=%s,cache.no-flush=%s,aio=%s%s%s", driver,
			   d->node, file, direct, no_flush, d->aio, reclaim, ro);
	} else {
		if (t->backing && passes_fds(p)) {
			/* The overlay's base as nodes of its own, opened by vmlaunch read-only: qemu never follows the path
			 * in the overlay's header as its own user. */
			char *base = file_or_fdset(c, p, t->backing, O_RDONLY);

			strv_push(argv, "-blockdev");
			strv_pushf(argv, "driver=%s,node-name=%s-base%s,filename=%s,cache.direct=%s,cache.no-flush=%s,aio=%s,"
					 "read-only=on",
				   storage_driver_name(t->backing_driver), d->node,
				   t->backing_format == FORMAT_QCOW2 ? "-file" : "", base, direct, no_flush, d->aio);
			if (t->backing_format == FORMAT_QCOW2) {
				strv_push(argv, "-blockdev");
				strv_pushf(argv, "driver=qcow2,node-name=%s-base,file=%s-base-file,read-only=on", d->node,
					   d->node);
			}
			free(backing);
			backing = xasprintf(",backing=%s-base", d->node);
			free(base);
		}
		strv_push(argv, "-blockdev");
		strv_pushf(argv, "driver=%s,node-name=%s-file,filename=%s,cache.direct=%s,cache.no-flush=%s,aio=%s%s%s",
			   driver, d->node, file, direct, no_flush, d->aio, d->reclaim ? ",discard=unmap" : "", ro);
		strv_push(argv, "-blockdev");
		strv_pushf(argv, "driver=qcow2,node-name=%s,file=%s-file%s,cache.direct=%s,cache.no-flush=%s%s%s", d->node,
			   d->node, backing, direct, no_flush, reclaim, ro);
	}
	free(backing);
	free(file);
}

static bool uses_memory_backend(const struct plan *p)
{
	return p->hugepages >= 0 || p->bind_memory || p->cfg->n_tiers || p->shared_memory || p->snapshot_ram;
}

static char *host_nodes(bool bind, unsigned node)
{
	return bind ? xasprintf(",host-nodes=%u,policy=bind", node) : xstrdup("");
}

/* Guest RAM as an explicit backend: hugepages from an anonymous memfd, bound to a node; tiers as extra NUMA nodes. */
static void push_memory(struct qemu_cmdline *c, const struct plan *p)
{
	const struct vm_config *cfg = p->cfg;
	struct strv *a = &c->argv;
	char *bind = host_nodes(p->bind_memory, p->memory_node);

	const char *share = p->shared_memory ? ",share=on" : "";

	strv_push(a, "-object");
	if (p->snapshot_ram)
		/* an fd vmlaunch opened: the file is in a directory qemu's user cannot enter (snapshot.c) */
		strv_pushf(a, "memory-backend-file,id=ram0,size=%lluM,mem-path=/proc/self/fd/%d,share=%s%s",
			   (unsigned long long)(cfg->memory >> 20), pass_fd(c, p, p->snapshot_ram, O_RDWR, false),
			   p->snapshot_ram_share ? "on" : "off", bind);
	else if (p->hugepages >= 0)
		strv_pushf(a, "memory-backend-memfd,id=ram0,size=%lluM,hugetlb=on,hugetlbsize=%s,prealloc=on%s%s",
			   (unsigned long long)(cfg->memory >> 20), hugepage_size_name(p->hugepages), share, bind);
	else if (p->shared_memory)
		/* virtiofsd maps guest RAM: an anonymous memfd it is handed, never a file a crash could leave */
		strv_pushf(a, "memory-backend-memfd,id=ram0,size=%lluM,share=on%s", (unsigned long long)(cfg->memory >> 20),
			   bind);
	else
		strv_pushf(a, "memory-backend-ram,id=ram0,size=%lluM%s", (unsigned long long)(cfg->memory >> 20), bind);
	free(bind);
	if (!cfg->n_tiers)
		return;
	strv_push(a, "-numa");
	strv_pushf(a, "node,nodeid=0,cpus=0-%u,memdev=ram0", cfg->cpus - 1);
	for (size_t i = 0; i < cfg->n_tiers; i++) {
		const struct tier_config *t = &cfg->tiers[i];
		char *tbind = host_nodes(t->host_node_line != 0, t->host_node);

		strv_push(a, "-object");
		if (t->backend == TIER_DRAM) {
			strv_pushf(a, "memory-backend-%s,id=tier-%s,size=%lluM%s%s", p->shared_memory ? "memfd" : "ram",
				   t->name, (unsigned long long)(t->size >> 20), share, tbind);
		} else {
			char *path = qemu_opt_escape(t->path);

			/* a directory: qemu makes its file there and unlinks it at once, so nothing is left behind */
			strv_pushf(a, "memory-backend-file,id=tier-%s,size=%lluM,mem-path=%s,share=on%s%s", t->name,
				   (unsigned long long)(t->size >> 20), path,
				   !strncmp(t->path, "/dev/dax", 8) ? ",align=2M" : "", tbind);
			free(path);
		}
		free(tbind);
		strv_push(a, "-numa");
		strv_pushf(a, "node,nodeid=%zu,memdev=tier-%s", i + 1, t->name);
	}
}

/* The binary, machine, accelerator and size. */
static void push_machine(struct qemu_cmdline *c, const struct plan *p)
{
	const struct vm_config *cfg = p->cfg;
	struct strv *a = &c->argv;
	char *why;

	group_begin(c, "the qemu binary (found in $PATH or [qemu] binary)");
	strv_push(a, p->host->qemu_path);
	group_end(c);

	group_begin(c, p->firmware_why);
	if (p->uefi) {
		/* the store qemu writes: handed open as qemu's user, so a kept nvram = never changes owner */
		char *code = qemu_opt_escape(p->uefi->code), *vars = file_or_fdset(c, p, p->uefi_vars, O_RDWR);

		strv_push(a, "-blockdev");
		strv_pushf(a, "driver=file,node-name=fw-code,filename=%s,read-only=on", code);
		strv_push(a, "-blockdev");
		strv_pushf(a, "driver=file,node-name=fw-vars,filename=%s", vars);
		if (p->uefi->secure_boot)
			strv_push_many(a, "-global", "driver=cfi.pflash01,property=secure,value=on", NULL);
		free(code);
		free(vars);
	} else if (cfg->kernel && !p->snapshot) {
		/* qboot: a minimal firmware that loads the kernel and nothing else; SeaBIOS would also clear the terminal
		 * and turn its autowrap off through the serial console */
		strv_push_many(a, "-bios", "qboot.rom", NULL);
	} else if (p->firmware_log) {
		char *log = file_or_fdset(c, p, p->firmware_log, O_WRONLY | O_NOFOLLOW);

		strv_push(a, "-chardev");
		strv_pushf(a, "file,id=firmware-log,path=%s", log);
		strv_push_many(a, "-device", "isa-debugcon,iobase=0x402,chardev=firmware-log", "-boot", "reboot-timeout=0",
			       NULL);
		free(log);
	}
	group_end(c);

	group_begin(c, p->accel_why);
	/* q35 without the legacy bits nothing here uses: no AHCI, SMBus, USB or vmport to emulate or probe at boot. */
	strv_push(a, "-machine");
	strv_pushf(a, "q35,accel=%s,vmport=off,smbus=off,sata=off,usb=off%s%s%s", p->kvm ? "kvm" : "tcg",
		   uses_memory_backend(p) && !cfg->n_tiers ? ",memory-backend=ram0" : "",
		   p->uefi ? ",pflash0=fw-code,pflash1=fw-vars" : "", p->uefi && p->uefi->secure_boot ? ",smm=on" : "");
	strv_push_many(a, "-cpu", p->kvm ? "host" : "max", NULL);
	group_end(c);

	why = xasprintf("%u vCPUs, %llu MiB of RAM; thread names let vmlaunch find and pin vCPU and iothreads", cfg->cpus,
			(unsigned long long)(p->total_memory >> 20));
	group_begin(c, why);
	free(why);
	strv_push(a, "-name");
	strv_pushf(a, "%s,debug-threads=on", cfg->name);
	strv_push(a, "-m");
	strv_pushf(a, "%lluM", (unsigned long long)(p->total_memory >> 20));
	strv_push(a, "-smp");
	strv_pushf(a, "%u", cfg->cpus);
	group_end(c);

	if (uses_memory_backend(p)) {
		group_begin(c, p->memory_why);
		push_memory(c, p);
		group_end(c);
	}
}

/* Decisions carried out outside the argv (pinning through QMP before cont, the rest in the child before exec): a
 * group with no arguments, so --explain still says them. */
static void push_reason(struct qemu_cmdline *c, const char *why)
{
	group_begin(c, why);
	group_end(c);
}

static void push_process_reasons(struct qemu_cmdline *c, const struct plan *p)
{
	char *why;

	if (p->cpus.why)
		push_reason(c, p->cpus.why);
	push_reason(c, p->allocator_why);
	if (p->ready_why)
		push_reason(c, p->ready_why);
	why = xasprintf("qemu runs with every capability set empty (bounding set too) and no-new-privileges%s%s: it "
			"needs none of the root powers vmlaunch uses for mounts, modules and sysfs",
			p->privileges && p->privileges->switch_user ? ", as user " : "",
			p->privileges && p->privileges->switch_user ? p->privileges->user : "");
	push_reason(c, why);
	free(why);
}

/* No defaults, the monitors, the serial console. */
static void push_control(struct qemu_cmdline *c, const struct plan *p)
{
	struct strv *a = &c->argv;

	group_begin(c, "no default devices, host config files or display: no NIC option ROMs or VGA to initialise, "
		       "a reproducible machine");
	/* -nographic would also tell SeaBIOS (fw_cfg NOGRAPHIC) to draw its screen on the serial console */
	strv_push_many(a, "-nodefaults", "-no-user-config", p->firmware_log ? "-display" : "-nographic", NULL);
	if (p->firmware_log)
		strv_push(a, "none");
	group_end(c);

	group_begin(c, "QMP on a socket vmlaunch holds, and on qmp.sock in the state dir (bound by vmlaunch, fd 7) for other "
		       "tools; -S: the guest starts only after vmlaunch has set up, pinned threads and sent cont");
	strv_push(a, "-chardev");
	strv_pushf(a, "socket,id=qmp,fd=%d", QEMU_FD_QMP);
	strv_push_many(a, "-mon", "chardev=qmp,mode=control", NULL);
	strv_push(a, "-chardev");
	strv_pushf(a, "socket,id=qmp-ext,fd=%d,server=on,wait=off", QEMU_FD_QMP_EXT);
	strv_push_many(a, "-mon", "chardev=qmp-ext,mode=control", "-S", NULL);
	group_end(c);

	if (p->console_socket) {
		char *why = xasprintf("serial console relayed by vmlaunch (fd %d): to %s%s, and to vmlaunch --console %s "
				      "(Ctrl-] detaches)",
				      QEMU_FD_CONSOLE, p->console_log, p->console_to_stdout ? " and stdout" : "",
				      p->cfg->name);

		group_begin(c, why);
		free(why);
		strv_push(a, "-chardev");
		strv_pushf(a, "socket,id=console,fd=%d", QEMU_FD_CONSOLE);
	} else {
		group_begin(c, "serial console on this terminal; Ctrl-C goes to the guest");
		strv_push_many(a, "-chardev", "stdio,id=console,signal=off", NULL);
	}
	strv_push_many(a, "-serial", "chardev:console", NULL);
	group_end(c);
}

/* The kernel, and what ends the VM when the guest panics or reboots. */
static void push_boot(struct qemu_cmdline *c, const struct plan *p)
{
	const struct vm_config *cfg = p->cfg;
	struct strv *a = &c->argv;

	if (cfg->kernel) {
		group_begin(c, p->cmdline_why);
		strv_push_many(a, "-kernel", cfg->kernel, NULL);
		if (cfg->initrd)
			strv_push_many(a, "-initrd", cfg->initrd, NULL);
		strv_push_many(a, "-append", p->cmdline, NULL);
		group_end(c);
	}
	if (p->host->pvpanic_pci) {
		group_begin(c, "a guest kernel panic ends the VM at once with a failure, instead of hanging or rebooting");
		strv_push_many(a, "-device", "pvpanic-pci", "-action",
			       p->command_mode ? "reboot=shutdown,panic=exit-failure" : "panic=exit-failure", NULL);
		group_end(c);
	} else if (p->command_mode) {
		group_begin(c, "a guest reboot (or a panic with panic=-1) ends a throwaway VM");
		strv_push_many(a, "-action", "reboot=shutdown", NULL);
		group_end(c);
	}
}

/* One disk: its secret, its own iothread, the block node and the virtio-blk device on it. */
static void push_disk(struct qemu_cmdline *c, const struct plan *p, size_t i)
{
	const struct disk_plan *d = &p->disks[i];
	struct strv *a = &c->argv;

	group_begin(c, d->why);
	if (d->target->secret_file) {
		/* the key by file: never on qemu's command line, never in /proc/PID/cmdline */
		char *key = qemu_opt_escape(d->target->secret_file);

		strv_push(a, "-object");
		strv_pushf(a, "secret,id=secret-%s,file=%s,format=base64", d->cfg->name, key);
		free(key);
	}
	strv_push(a, "-object");
	strv_pushf(a, "iothread,id=%s", d->iothread);
	push_blockdev(c, p, d);
	strv_push(a, "-device");
	strv_pushf(a, "virtio-blk-pci,id=vblk-%s,drive=%s,iothread=%s,num-queues=%u,packed=on,serial=%s,bootindex=%zu",
		   d->cfg->name, d->node, d->iothread, p->cfg->cpus, d->cfg->name, i + 1);
	group_end(c);
}

/* root = DISK: the bundled kernel's modules, read-only, for the image's udev and modprobe. */
static void push_modules(struct qemu_cmdline *c, const struct plan *p)
{
	struct strv *a = &c->argv;
	char *file;

	group_begin(c, "the bundled kernel's modules for the root image (read-only; its udev and modprobe load from it)");
	file = file_or_fdset(c, p, p->modules_image, O_RDONLY);
	strv_push(a, "-blockdev");
	strv_pushf(a, "driver=file,node-name=modules,filename=%s,read-only=on", file);
	strv_push_many(a, "-device", "virtio-blk-pci,id=vblk-modules,drive=modules,serial=" GUEST_MODULES_SERIAL, NULL);
	group_end(c);
	free(file);
}

static void push_seed(struct qemu_cmdline *c, const struct plan *p)
{
	struct strv *a = &c->argv;
	char *file;

	group_begin(c, p->seed_why);
	file = file_or_fdset(c, p, p->seed, O_RDONLY);
	strv_push(a, "-blockdev");
	strv_pushf(a, "driver=file,node-name=cidata,filename=%s,read-only=on", file);
	strv_push_many(a, "-device", "virtio-blk-pci,id=vblk-cidata,drive=cidata,serial=cidata", NULL);
	group_end(c);
	free(file);
}

/* SMBIOS type 11 credentials for a distro's systemd (firmware boot, or root = DISK: qboot installs the SMBIOS tables
 * too): root's keys and its name without cloud-init. */
static void push_credentials(struct qemu_cmdline *c, const struct plan *p)
{
	struct strv values = STRV_INIT;

	credentials_smbios(p->cfg, &values);
	group_begin(c, "systemd credentials as SMBIOS type 11 strings (systemd 252 and later import them): root's "
		       "authorized_keys from the [cloud-init] keys and the host name, for a systemd guest even without "
		       "cloud-init");
	for (size_t i = 0; i < values.n; i++)
		strv_push_many(&c->argv, "-smbios", values.v[i], NULL);
	group_end(c);
	strv_free(&values);
}

static void push_share(struct qemu_cmdline *c, const struct plan *p, const struct share_plan *s)
{
	struct strv *a = &c->argv;
	char *sock = qemu_opt_escape(s->socket);

	group_begin(c, s->why);
	strv_push(a, "-chardev");
	if (passes_fds(p)) /* vmlaunch connects to virtiofsd; qemu gets the connected socket */
		strv_pushf(a, "socket,id=vfs-%s,fd=%d", s->cfg->name, pass_fd(c, p, s->socket, 0, true));
	else
		strv_pushf(a, "socket,id=vfs-%s,path=%s", s->cfg->name, sock);
	strv_push(a, "-device");
	strv_pushf(a, "vhost-user-fs-pci,id=fs-%s,chardev=vfs-%s,tag=%s", s->cfg->name, s->cfg->name, s->cfg->tag);
	group_end(c);
	free(sock);
}

/* The TPM: qemu's emulator backend on swtpm's control channel (it hands swtpm the data channel over it). */
static void push_tpm(struct qemu_cmdline *c, const struct plan *p)
{
	struct strv *a = &c->argv;
	char *sock = qemu_opt_escape(p->tpm.socket);

	group_begin(c, p->tpm.why);
	strv_push(a, "-chardev");
	if (passes_fds(p)) /* vmlaunch connects to swtpm; qemu gets the connected socket */
		strv_pushf(a, "socket,id=tpm-chr,fd=%d", pass_fd(c, p, p->tpm.socket, 0, true));
	else
		strv_pushf(a, "socket,id=tpm-chr,path=%s", sock);
	strv_push_many(a, "-tpmdev", "emulator,id=tpm0,chardev=tpm-chr", "-device", "tpm-crb,tpmdev=tpm0", NULL);
	group_end(c);
	free(sock);
}

/* A tap's queues (and vhost-net's) as the fds vmlaunch hands over, colon-separated as qemu wants them. */
static char *tap_netdev(const struct net_plan *n)
{
	char *fds = xstrdup(""), *vhost = xstrdup(""), *tmp, *out;

	for (unsigned i = 0; i < n->queues; i++) {
		tmp = xasprintf("%s%s%d", fds, i ? ":" : "", n->fd_base + (int)i);
		free(fds);
		fds = tmp;
		if (!n->vhost)
			continue;
		tmp = xasprintf("%s%s%d", vhost, i ? ":" : "", n->fd_base + (int)(n->queues + i));
		free(vhost);
		vhost = tmp;
	}
	out = n->vhost ? xasprintf("tap,id=net-%s,fds=%s,vhost=on,vhostfds=%s", n->cfg->name, fds, vhost)
		       : xasprintf("tap,id=net-%s,fds=%s", n->cfg->name, fds);
	free(fds);
	free(vhost);
	return out;
}

static void push_net(struct qemu_cmdline *c, const struct net_plan *n)
{
	struct strv *a = &c->argv;
	char *netdev = NULL;

	if (n->cfg->mode == NET_USER)
		netdev = xasprintf("user,id=net-%s%s", n->cfg->name, n->cfg->restricted ? ",restrict=on" : "");
	else if (n->cfg->mode == NET_TAP)
		netdev = tap_netdev(n);

	group_begin(c, n->why);
	for (size_t i = 0; netdev && i < n->n_forwards; i++) {
		const struct net_forward *f = &n->forwards[i];
		char *more = xasprintf("%s,hostfwd=%s:%s:%u-:%u", netdev, f->udp ? "udp" : "tcp", f->addr, f->host, f->guest);

		free(netdev);
		netdev = more;
	}
	if (netdev) {
		strv_push_many(a, "-netdev", netdev, NULL);
		strv_push(a, "-device");
		if (n->queues > 1)
			/* one vector per queue each way, plus config and control */
			strv_pushf(a, "virtio-net-pci,id=nic-%s,netdev=net-%s,mac=%s,mq=on,vectors=%u", n->cfg->name,
				   n->cfg->name, n->mac, 2 * n->queues + 2);
		else
			strv_pushf(a, "virtio-net-pci,id=nic-%s,netdev=net-%s,mac=%s", n->cfg->name, n->cfg->name, n->mac);
	} else {
		strv_push(a, "-device");
		strv_pushf(a, "virtio-net-pci,id=nic-%s,mac=%s", n->cfg->name, n->mac);
	}
	group_end(c);
	free(netdev);
}

/* What the bundled guest reads through fw_cfg: the command's argv, its user and environment, its terminal, the
 * shares. */
static void push_guest_files(struct qemu_cmdline *c, const struct plan *p)
{
	struct strv *a = &c->argv;

	if (!p->n_guest_files)
		return;
	group_begin(c, "what the bundled guest reads at boot over fw_cfg (the command's argv and environment as "
		       "NUL-separated strings: no shell quoting anywhere; its user; its terminal's size and TERM; the "
		       "shares to mount)");
	for (size_t i = 0; i < p->n_guest_files; i++) {
		char *path = qemu_opt_escape(p->guest_files[i].path);

		strv_push(a, "-fw_cfg");
		strv_pushf(a, "name=%s,file=%s", p->guest_files[i].name, path);
		free(path);
	}
	group_end(c);
}

/* rng-builtin: qemu's own getrandom(): the sandboxed qemu opens no file for it, never blocks on the host's pool */
static void push_rng(struct qemu_cmdline *c)
{
	group_begin(c, "a virtio-rng device fed by the host's getrandom() (rng-builtin): the guest kernel's hwrng "
		       "(virtio_rng) has entropy from its first second; restored from a snapshot, the device draws from the "
		       "new qemu (what the guest had buffered at the save, the bundled guest's agent reads past)");
	strv_push_many(&c->argv, "-object", "rng-builtin,id=rng", "-device", "virtio-rng-pci,id=rng0,rng=rng", NULL);
	group_end(c);
}

/* guid=auto: a new ID at each qemu start; an incoming migration's post_load writes it into the guest and raises the
 * ACPI notify (hw/acpi/vmgenid.c), so the restored kernel reseeds its RNG at once (Linux 5.18+: drivers/virt/vmgenid.c) */
static void push_generation_id(struct qemu_cmdline *c)
{
	group_begin(c, "a VM generation ID (vmgenid, guid=auto), new at every restore: the guest kernel's vmgenid driver "
		       "reseeds its random generator the moment the restored VM runs (Linux 5.18 and later), firmware-booted "
		       "guests included, so restored siblings never share their random streams");
	strv_push_many(&c->argv, "-device", "vmgenid,guid=auto", NULL);
	group_end(c);
}

/* -- COMMAND in a firmware-booted guest: qemu-guest-agent's port, on a socket vmlaunch holds. */
static void push_agent_channel(struct qemu_cmdline *c)
{
	struct strv *a = &c->argv;

	group_begin(c, "the command through the guest's qemu-guest-agent (guest-exec with captured output), on its "
		       "virtio-serial port; the guest is powered off when it has finished");
	strv_push_many(a, "-device", "virtio-serial-pci,id=vmlaunch-serial", NULL);
	strv_push(a, "-chardev");
	strv_pushf(a, "socket,id=qga,fd=%d", QEMU_FD_AGENT);
	strv_push_many(a, "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0", NULL);
	group_end(c);
}

/* -- COMMAND: input in, output and status out over virtio-serial. */
static void push_command_channel(struct qemu_cmdline *c, const struct plan *p)
{
	struct strv *a = &c->argv;

	group_begin(c, p->command_tty ? "the command on a pty in the guest (stdin and stdout are a terminal, raw while it "
					"runs): its input and output, and its exit status, over virtio-serial ports vmlaunch "
					"reads and writes"
				      : "the command's stdin, stdout, stderr and exit status over virtio-serial ports vmlaunch "
					"reads and writes");
	strv_push_many(a, "-device", "virtio-serial-pci,id=vmlaunch-serial", NULL);
	strv_push(a, "-chardev");
	strv_pushf(a, "socket,id=guest-stdout,fd=%d", QEMU_FD_STDOUT);
	strv_push_many(a, "-device", "virtserialport,chardev=guest-stdout,name=" GUEST_PORT_STDOUT, NULL);
	strv_push(a, "-chardev");
	strv_pushf(a, "socket,id=guest-stderr,fd=%d", QEMU_FD_STDERR);
	strv_push_many(a, "-device", "virtserialport,chardev=guest-stderr,name=" GUEST_PORT_STDERR, NULL);
	strv_push(a, "-chardev");
	strv_pushf(a, "socket,id=guest-status,fd=%d", QEMU_FD_STATUS);
	strv_push_many(a, "-device", "virtserialport,chardev=guest-status,name=" GUEST_PORT_STATUS, NULL);
	strv_push(a, "-chardev");
	strv_pushf(a, "socket,id=guest-stdin,fd=%d", QEMU_FD_STDIN);
	strv_push_many(a, "-device", "virtserialport,chardev=guest-stdin,name=" GUEST_PORT_STDIN, NULL);
	group_end(c);
}

void qemu_argv_build(const struct plan *p, struct qemu_cmdline *c)
{
	memset(c, 0, sizeof(*c));
	push_machine(c, p);
	push_process_reasons(c, p);
	push_control(c, p);
	push_boot(c, p);
	for (size_t i = 0; i < p->n_disks; i++)
		push_disk(c, p, i);
	if (p->modules_image)
		push_modules(c, p);
	if (p->seed)
		push_seed(c, p);
	if (p->seed && (!p->cfg->kernel || p->cfg->root)) /* a distro's own init: firmware, or root = DISK */
		push_credentials(c, p);
	for (size_t i = 0; i < p->n_shares; i++)
		push_share(c, p, &p->shares[i]);
	for (size_t i = 0; i < p->n_nets; i++)
		push_net(c, &p->nets[i]);
	if (p->tpm.wanted)
		push_tpm(c, p);
	push_rng(c);
	if (p->snapshot)
		push_generation_id(c);
	if (p->agent_mode)
		push_agent_channel(c);
	else if (p->command_mode)
		push_command_channel(c, p);
	push_guest_files(c, p);
	if (p->cfg->qemu_extra.n) {
		group_begin(c, "[qemu] extra from the config, passed through as given");
		strv_extend(&c->argv, &p->cfg->qemu_extra);
		group_end(c);
	}
}

void qemu_cmdline_free(struct qemu_cmdline *c)
{
	strv_free(&c->argv);
	for (size_t i = 0; i < c->n_groups; i++)
		free(c->groups[i].why);
	free(c->groups);
	for (size_t i = 0; i < c->n_fds; i++)
		free(c->fds[i].path);
	free(c->fds);
	memset(c, 0, sizeof(*c));
}
