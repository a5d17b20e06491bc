/* Probes the host once, read-only: nothing here creates, mounts or reserves anything. */
#define _GNU_SOURCE
#include "host.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"
#include "ldcache.h"
#include "log.h"
#include "qemu_caps.h"
#include "strv.h"

char *host_find_program(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *found = NULL;

	if (strchr(name, '/')) {
		char *abs = realpath(name, NULL);

		if (abs && access(abs, X_OK) == 0)
			return abs;
		free(abs);
		return NULL;
	}
	copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		char *candidate = xasprintf("%s/%s", *dir ? dir : ".", name);
		struct stat st;

		if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
			found = realpath(candidate, NULL);
		free(candidate);
	}
	free(copy);
	return found;
}

/* The host kernel switches away from the TSC when it finds it unstable or out of sync between CPUs. */
static bool probe_tsc_clocksource(void)
{
	char buf[32];

	read_first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource", buf, sizeof(buf));
	return !strcmp(buf, "tsc\n");
}

bool host_cpuinfo_tsc_invariant(FILE *cpuinfo)
{
	char *line = NULL;
	size_t cap = 0;
	bool invariant = false;

	while (getline(&line, &cap, cpuinfo) > 0) {
		if (strncmp(line, "flags", 5) != 0 || !strchr(line, ':'))
			continue;
		invariant = words_have(line, "constant_tsc", false) && words_have(line, "nonstop_tsc", false);
		break; /* every CPU lists the same flags */
	}
	free(line);
	return invariant;
}

static bool probe_tsc_invariant(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	bool r;

	if (!f)
		return false;
	r = host_cpuinfo_tsc_invariant(f);
	fclose(f);
	return r;
}

/* The kernel side of aio=io_uring (qemu's side is in its capabilities): a real ring setup. */
static bool probe_io_uring_kernel(void)
{
	struct io_uring ring;

	if (io_uring_queue_init(2, &ring, 0) < 0)
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

/* LD_PRELOAD takes a bare soname, which ld.so resolves through its cache like any DT_NEEDED library (ld.so(8)): the
 * cache that answers here is the one qemu's loader reads. The minimal build is the same allocator without the heap
 * profiler's hooks. */
static char *find_tcmalloc(void)
{
	static const char *const sonames[] = { "libtcmalloc_minimal.so.4", "libtcmalloc.so.4" };

	for (size_t i = 0; i < sizeof(sonames) / sizeof(sonames[0]); i++)
		if (ldcache_has(LDCACHE_FILE, sonames[i]))
			return xstrdup(sonames[i]);
	return NULL;
}

/* MemTotal and MemAvailable in bytes; left 0 when /proc/meminfo cannot be read. */
static void probe_meminfo(unsigned long long *total, unsigned long long *available)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long kib;

	*total = *available = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			*total = kib << 10;
		else if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			*available = kib << 10;
	}
	fclose(f);
}

char *host_state_root(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (geteuid() == 0 || !xdg || !*xdg)
		return xstrdup("/run/vmlaunch");
	return xasprintf("%s/vmlaunch", xdg);
}

/* Debian ships qemu 7.2's C virtiofsd in qemu-system-common; newer distributions the Rust one in libexec. */
static char *find_virtiofsd(void)
{
	static const char *const known[] = { "/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd", "/usr/lib/virtiofsd" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (access(known[i], X_OK) == 0)
			return xstrdup(known[i]);
	return host_find_program("virtiofsd");
}

int host_probe(const char *qemu_binary, const struct host_wants *want, struct host_facts *h)
{
	struct qemu_caps caps;
	char *cache_dir;
	int r;

	memset(h, 0, sizeof(*h));
	h->qemu_path = host_find_program(qemu_binary);
	if (!h->qemu_path)
		return log_errno(ENOENT, "qemu binary \"%s\" not found (install qemu-system-x86, or set [qemu] binary =)",
				 qemu_binary);
	cache_dir = qemu_caps_cache_dir();
	r = qemu_caps_get(h->qemu_path, cache_dir, &caps);
	free(cache_dir);
	if (r < 0)
		return r;
	h->pvpanic_pci = caps.pvpanic_pci;

	if (want->virtiofsd) {
		h->virtiofsd = find_virtiofsd();
		if (!h->virtiofsd)
			return log_errno(ENOENT, "[share] needs virtiofsd, which is not installed (apt-get install "
						 "qemu-system-common)");
	}
	if (want->swtpm) {
		h->swtpm = host_find_program("swtpm");
		if (!h->swtpm)
			return log_errno(ENOENT, "[boot] tpm = yes needs swtpm, which is not installed (apt-get install swtpm)");
	}
	if (want->vhost_net) {
		int fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);

		h->vhost_net = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	if (want->firmware != FIRMWARE_BIOS) {
		/* VMLAUNCH_FIRMWARE_DIR (test only, vmlaunch(1)): one directory instead, so a test can show a host
		 * without OVMF on a host that has it */
		const char *test_dir = getenv("VMLAUNCH_FIRMWARE_DIR");
		const char *const dirs[] = { test_dir ? test_dir : "/etc/qemu/firmware",
					     test_dir ? test_dir : "/usr/share/qemu/firmware", NULL };
		bool secure = want->firmware == FIRMWARE_UEFI_SECURE;

		if (firmware_find(dirs, secure, &h->ovmf) < 0 && want->firmware != FIRMWARE_AUTO)
			return log_errno(ENOENT, "[boot] firmware = %s: no %sOVMF firmware is installed (apt-get install "
						 "ovmf; qemu's firmware descriptors are read from %s and %s)",
					 secure ? "uefi-secure" : "uefi", secure ? "Secure Boot " : "", dirs[0], dirs[1]);
	}
	if (want->kvm) {
		/* An internal failure of the probe still fills in KVM_BROKEN with its cause: fall back, don't abort. */
		kvm_probe("/sys", "/dev/kvm", 50, &h->kvm);
	} else {
		h->kvm.verdict = KVM_ABSENT;
		snprintf(h->kvm.reason, sizeof(h->kvm.reason), "accel = tcg was asked for");
	}
	h->io_uring = caps.liburing && probe_io_uring_kernel();
	h->tsc_clocksource = probe_tsc_clocksource();
	h->tsc_invariant = probe_tsc_invariant();
	h->stdin_is_tty = isatty(0);
	h->stdout_is_tty = isatty(1);
	probe_meminfo(&h->mem_total, &h->mem_available);
	h->state_root = host_state_root();
	h->tcmalloc_path = want->tcmalloc ? find_tcmalloc() : NULL;
	return topology_probe(&h->topo);
}

void host_facts_free(struct host_facts *h)
{
	free(h->qemu_path);
	free(h->state_root);
	free(h->tcmalloc_path);
	free(h->virtiofsd);
	free(h->swtpm);
	firmware_free(&h->ovmf);
	topology_free(&h->topo);
	memset(h, 0, sizeof(*h));
}
