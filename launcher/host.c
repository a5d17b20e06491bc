/* Probes the host once, read-only: nothing here creates, mounts or reserves anything. */
#define _GNU_SOURCE
#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "log.h"
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
	char buf[32] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
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

/* qemu offers aio=io_uring only when built with liburing, which then is one of its DT_NEEDED libraries: its name
 * sits in the binary's dynamic string table. The kernel side is a real ring setup. */
static bool probe_io_uring(const char *qemu_path)
{
	struct io_uring ring;
	struct stat st;
	bool linked = false;
	void *map;
	int fd;

	if (io_uring_queue_init(2, &ring, 0) < 0)
		return false;
	io_uring_queue_exit(&ring);
	fd = open(qemu_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map != MAP_FAILED) {
			linked = memmem(map, (size_t)st.st_size, "liburing.so", 11) != NULL;
			munmap(map, (size_t)st.st_size);
		}
	}
	close(fd);
	return linked;
}

/* The dynamic loader's own search result (its cache, `ldconfig -p`), not a hard-coded path. The minimal build is
 * the same allocator without the heap profiler's hooks. */
static char *find_tcmalloc(void)
{
	static const char *const names[] = { "libtcmalloc_minimal.so.4 ", "libtcmalloc.so.4 " };
	char *argv[] = { "/sbin/ldconfig", "-p", NULL }, *out = NULL, *found = NULL;

	if (access(argv[0], X_OK) < 0)
		argv[0] = "ldconfig";
	if (command_run(argv, &out, NULL) != 0) {
		free(out);
		return NULL;
	}
	size_t best = 2;

	for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *arrow = strstr(line, "=> ");

		while (*line == ' ' || *line == '\t')
			line++;
		for (size_t i = 0; i < best; i++)
			if (!strncmp(line, names[i], strlen(names[i])) && strstr(line, "x86-64") && arrow) {
				free(found);
				found = xstrdup(arrow + 3);
				best = i;
			}
	}
	free(out);
	return found;
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
	char *argv[] = { NULL, "-device", "pvpanic-pci,help", NULL };
	int r;

	memset(h, 0, sizeof(*h));
	h->qemu_path = host_find_program(qemu_binary);
	if (!h->qemu_path)
		return log_errno(ENOENT, "qemu binary \"%s\" not found (install qemu-system-x86, or set [qemu] binary =)",
				 qemu_binary);
	/* Doubles as a check that the binary runs at all. */
	argv[0] = h->qemu_path;
	r = command_run(argv, NULL, NULL);
	if (r < 0)
		return log_errno(r, "cannot run %s", h->qemu_path);
	h->pvpanic_pci = r == 0;

	if (want->virtiofsd) {
		h->virtiofsd = find_virtiofsd();
		if (!h->virtiofsd)
			return log_errno(ENOENT, "[share] needs virtiofsd, which is not installed (apt-get install "
						 "qemu-system-common)");
	}
	if (want->kvm) {
		/* An internal failure of the probe still fills in KVM_BROKEN with its cause: fall back, don't abort. */
		kvm_probe("/sys", "/dev/kvm", 50, &h->kvm);
	} else {
		h->kvm.verdict = KVM_ABSENT;
		snprintf(h->kvm.reason, sizeof(h->kvm.reason), "accel = tcg was asked for");
	}
	h->io_uring = probe_io_uring(h->qemu_path);
	h->tsc_clocksource = probe_tsc_clocksource();
	h->tsc_invariant = probe_tsc_invariant();
	h->stdin_is_tty = isatty(0);
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
	topology_free(&h->topo);
	memset(h, 0, sizeof(*h));
}
