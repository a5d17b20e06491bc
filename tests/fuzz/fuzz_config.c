/* libFuzzer target: arbitrary bytes as a config file → config_load → plan_build → qemu_argv_build, under ASan/UBSan. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "host.h"
#include "plan.h"
#include "privileges.h"
#include "qemu_argv.h"
#include "storage.h"
#include "strv.h"
#include "topology.h"

/* Lines starting with this are comments to the INI parser and --set arguments to the harness, so one input also
 * reaches apply_set and the "(from --set)" checks in finish. */
#define SET_PREFIX "#--set "
#define MAX_SETS 8

static char dir[64], config_path[96];

static void write_or_die(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) < 0) {
		fprintf(stderr, "fuzz_config: cannot write %s: %s\n", path, strerror(errno));
		abort();
	}
}

static void remove_dir(void)
{
	static const char *const names[] = { "fuzz.conf", "vmlinux", "initrd" };
	char path[sizeof(dir) + 16];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* The directory must outlive every input and vanish however the process ends (a crash ends it with _Exit, which skips
 * atexit): a child holds the read end of a pipe and removes the directory when the fuzzer's write end closes. */
static void guard_dir(void)
{
	int fds[2];
	char c;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		close(fds[1]);
		/* nor hold the fuzzer's stdout or stderr open: `make fuzz | tee` would wait for it */
		for (int fd = 0; fd <= 2; fd++)
			dup2(null, fd);
		/* Ctrl-C or a kill of the whole group reaches this child too: outlive the fuzzer to clean up after it */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		while (read(fds[0], &c, 1) < 0 && errno == EINTR)
			;
		remove_dir();
		_exit(0);
	}
	close(fds[0]); /* the write end stays open, unused, until this process is gone */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* /dev/shm: one small file rewritten per input, in RAM rather than on a disk shared with other workers. */
	snprintf(dir, sizeof(dir), "/dev/shm/vmlaunch-fuzz-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(config_path, sizeof(config_path), "%s/fuzz.conf", dir);
	/* [boot] kernel = vmlinux and initrd = initrd must exist for config_load to accept them and go on to finish. */
	for (const char *const *f = (const char *const[]){ "vmlinux", "initrd", NULL }; *f; f++) {
		char path[sizeof(dir) + 16];

		snprintf(path, sizeof(path), "%s/%s", dir, *f);
		write_or_die(path, "", 0);
	}
	guard_dir();
	/* Config errors are the expected outcome for most inputs. vmlaunch prints only through stdio's stderr; pointing
	 * that stream (not fd 2) at /dev/null keeps libFuzzer's progress lines and the sanitizers' reports, which write
	 * to fd 2 directly. VMLAUNCH_FUZZ_VERBOSE=1 shows the messages when replaying one input. */
	if (!getenv("VMLAUNCH_FUZZ_VERBOSE")) {
		FILE *null = fopen("/dev/null", "we");

		if (!null)
			abort();
		stderr = null;
	}
	return 0;
}

static void collect_sets(const uint8_t *data, size_t size, struct strv *sets)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end && sets->n < MAX_SETS) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end;
		size_t n = (size_t)(eol - p);

		if (n >= strlen(SET_PREFIX) && !memcmp(p, SET_PREFIX, strlen(SET_PREFIX))) {
			/* strndup stops at a NUL byte, as a real argv string would */
			char *arg = strndup(p + strlen(SET_PREFIX), n - strlen(SET_PREFIX));

			if (!arg)
				abort();
			strv_push(sets, arg);
			free(arg);
		}
		p = eol + 1;
	}
}

/* Variant true: two NUMA nodes of four CPUs in SMT pairs, KVM, a terminal, pvpanic, tcmalloc, qemu as another user.
 * Variant false: no NUMA, one node of two CPUs, TCG, none of the extras. plan_cpus and plan_memory see both. */
static unsigned node0_cpus[] = { 0, 1, 2, 3 }, node1_cpus[] = { 4, 5, 6, 7 }, small_cpus[] = { 0, 1 };
static unsigned smt_core_of[] = { 0, 0, 2, 2, 4, 4, 6, 6 }, small_core_of[] = { 0, 1 };
static struct topology_node big_nodes[] = {
	{ .id = 0, .cpus = { node0_cpus, 4 }, .mem_free = 8ULL << 30, .hp_total = { 1024, 2 }, .hp_free = { 512, 1 } },
	{ .id = 1, .cpus = { node1_cpus, 4 }, .mem_free = 2ULL << 30 },
};
static struct topology_node small_nodes[] = {
	{ .id = 0, .cpus = { small_cpus, 2 }, .mem_free = 1ULL << 30 },
};
static const struct privileges as_nobody = { .switch_user = true, .uid = 65534, .gid = 65534, .user = "nobody" };
static const struct privileges as_root;

static struct host_facts fake_host(bool variant)
{
	struct host_facts h = { 0 };

	h.qemu_path = "/usr/bin/qemu-system-x86_64";
	h.kvm.verdict = variant ? KVM_USABLE : KVM_PVM;
	snprintf(h.kvm.reason, sizeof(h.kvm.reason), "%s", variant ? "ok" : "/dev/kvm belongs to kvm_pvm");
	h.stdin_is_tty = variant;
	h.pvpanic_pci = variant;
	h.io_uring = !variant;
	h.state_root = "/run/vmlaunch";
	h.topo = variant ? (struct topology){ true, big_nodes, 2, smt_core_of, 7 }
			 : (struct topology){ false, small_nodes, 1, small_core_of, 1 };
	h.tcmalloc_path = variant ? "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4" : NULL;
	return h;
}

/* What storage_describe would say, without its probes: the harness does no I/O beyond the config file. */
static void fake_target(const struct disk_config *d, const char *state_dir, struct storage_target *t)
{
	memset(t, 0, sizeof(*t));
	t->readonly = d->readonly;
	t->ephemeral = d->ephemeral;
	t->direct_ok = d->cache != CACHE_UNSAFE; /* either answer, depending on the input */
	switch (d->backend) {
	case BACKEND_FILE:
		t->driver = DRIVER_FILE;
		if (d->ephemeral) {
			t->filename = xasprintf("%s/%s.overlay.qcow2", state_dir, d->name);
			t->format = FORMAT_QCOW2;
		} else {
			t->filename = xstrdup(d->path);
			t->format = d->format;
		}
		break;
	case BACKEND_TMPFS:
		t->driver = DRIVER_FILE;
		t->filename = xasprintf("%s/%s.raw", state_dir, d->name);
		t->ram_backed = true;
		break;
	case BACKEND_ZRAM:
	case BACKEND_BRD:
		t->driver = DRIVER_HOST_DEVICE;
		t->filename = xasprintf("/dev/%s-%s", backend_kind_name(d->backend), d->name);
		t->ram_backed = true;
		break;
	case BACKEND_RBD:
		/* qemu's rbd driver opens the image itself from these; filename only names it in --explain */
		t->driver = DRIVER_RBD;
		t->filename = xasprintf("rbd:%s/%s", d->pool ? d->pool : "rbd", d->image ? d->image : d->name);
		strv_push_many(&t->driver_opts, "pool", d->pool ? d->pool : "rbd", NULL);
		if (d->rbd_namespace)
			strv_push_many(&t->driver_opts, "namespace", d->rbd_namespace, NULL);
		strv_push_many(&t->driver_opts, "image", d->image ? d->image : d->name, "conf",
			       d->ceph_conf ? d->ceph_conf : "/etc/ceph/ceph.conf", "user", d->ceph_user ? d->ceph_user : "admin",
			       NULL);
		t->secret_file = d->keyring ? xasprintf("%s/%s.rbd-key", state_dir, d->name) : NULL;
		break;
	default: /* lvm, and any block backend added later */
		t->driver = DRIVER_HOST_DEVICE;
		t->filename = xasprintf("/dev/%s/%s", d->vg ? d->vg : "vg", d->lv ? d->lv : d->name);
		break;
	}
}

static bool valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n >= 1 && n <= max && s[0] != '.' && s[0] != '-' && strspn(s, "abcdefghijklmnopqrstuvwxyz"
								   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* What config.h promises of a config that loaded: everything later code takes for granted without checking again. */
static void check_config(const struct vm_config *cfg)
{
	if (!valid_name(cfg->name, VM_NAME_MAX) || cfg->cpus < 1 || cfg->cpus > 255 || cfg->memory < (16ULL << 20) ||
	    !cfg->machine || strcmp(cfg->machine, "q35") || !cfg->qemu_binary || (cfg->initrd && !cfg->kernel) ||
	    (cfg->append && !cfg->kernel))
		abort();
	for (size_t i = 0; i < cfg->n_disks; i++) {
		const struct disk_config *d = &cfg->disks[i];

		/* the name becomes the virtio serial (20 bytes) and part of qemu ids: it must be valid and unique */
		if (!valid_name(d->name, DISK_NAME_MAX) || d->backend >= BACKEND_COUNT)
			abort();
		for (size_t k = 0; k < i; k++)
			if (!strcmp(cfg->disks[k].name, d->name))
				abort();
		if (d->backend == BACKEND_FILE && !d->path)
			abort();
		if (d->readonly && d->ephemeral && d->backend == BACKEND_FILE)
			abort();
	}
	for (size_t i = 0; i < cfg->n_tiers; i++) {
		if (!valid_name(cfg->tiers[i].name, DISK_NAME_MAX) || !cfg->tiers[i].size)
			abort();
		for (size_t k = 0; k < i; k++)
			if (!strcmp(cfg->tiers[k].name, cfg->tiers[i].name))
				abort();
	}
}

/* A named section: [disk NAME] or [memory tier NAME], either with ' ' or '.' before the name, as config.c reads them. */
struct header {
	bool tier;
	const char *name;
	size_t len;
};

static bool parse_named(const char *section, size_t len, struct header *out)
{
	static const struct {
		const char *prefix;
		bool tier;
	} kinds[] = { { "disk", false }, { "memory tier", true } };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (len > n + 1 && !memcmp(section, kinds[i].prefix, n) && (section[n] == ' ' || section[n] == '.')) {
			*out = (struct header){ kinds[i].tier, section + n + 1, len - n - 1 };
			return true;
		}
	}
	return false;
}

static bool has_named(const struct vm_config *cfg, const struct header *h)
{
	size_t n = h->tier ? cfg->n_tiers : cfg->n_disks;

	for (size_t i = 0; i < n; i++) {
		const char *name = h->tier ? cfg->tiers[i].name : cfg->disks[i].name;

		if (strlen(name) == h->len && !memcmp(name, h->name, h->len))
			return true;
	}
	return false;
}

/* The section headers of an input that loaded, found as libinih 55 finds them (ini.c's ini_parse_stream with Debian's
 * defaults: BOM skipped on line 1, isspace() skipped before the line, ';' and '#' comments, an indented line after a
 * key continues it, an inline ';' after a blank ends the header, names cut to 49 bytes), against what config.c
 * promises of them: an empty [disk NAME] is refused ("a mistake, not nothing"), and each section appears once —
 * [disk.x] and [disk x] being one section. Only called for an input that loaded: no NUL, no overlong line, no key
 * without a name. */
static void check_headers(const struct vm_config *cfg, const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct header *seen = NULL;
	size_t n_seen = 0;
	bool after_key = false;

	for (unsigned lineno = 1; p < end; lineno++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end, *s = p, *close;
		struct header h;

		if (lineno == 1 && eol - s >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
			s += 3;
		while (s < eol && isspace((unsigned char)*s))
			s++;
		if (s == eol || *s == ';' || *s == '#') {
			/* blank or comment: changes nothing */
		} else if (after_key && s > p) {
			/* continuation of the previous key's value */
		} else if (*s == '[') {
			for (close = s + 1; close < eol && *close != ']'; close++)
				if (*close == ';' && isspace((unsigned char)close[-1]))
					break;
			if (close < eol && *close == ']') {
				size_t len = (size_t)(close - s - 1);

				if (parse_named(s + 1, len > 49 ? 49 : len, &h)) {
					if (!has_named(cfg, &h))
						abort(); /* an empty [disk NAME] or [memory tier NAME] was not seen */
					for (size_t i = 0; i < n_seen; i++)
						if (seen[i].tier == h.tier && seen[i].len == h.len &&
						    !memcmp(seen[i].name, h.name, h.len))
							abort(); /* the same section twice */
					seen = xrealloc(seen, (n_seen + 1) * sizeof(*seen));
					seen[n_seen++] = h;
				}
				after_key = false;
			}
		} else {
			after_key = true;
		}
		p = eol + 1;
	}
	free(seen);
}

/* Invariants of a built command line that --explain and run.c rely on. */
static void check_cmdline(const struct qemu_cmdline *c)
{
	if (!c->argv.n || c->argv.v[c->argv.n] || !c->n_groups || c->groups[0].start != 0 ||
	    c->groups[c->n_groups - 1].end != c->argv.n)
		abort();
	for (size_t i = 0; i < c->argv.n; i++)
		if (!c->argv.v[i])
			abort();
	for (size_t g = 0; g < c->n_groups; g++)
		if (!c->groups[g].why || c->groups[g].end < c->groups[g].start ||
		    (g && c->groups[g].start != c->groups[g - 1].end))
			abort();
}

static void plan_and_argv(const struct vm_config *cfg, bool variant)
{
	struct host_facts host = fake_host(variant);
	char *state_dir = xasprintf("%s/%s", host.state_root, cfg->name);
	struct storage_target *targets = xcalloc(cfg->n_disks, sizeof(*targets));
	struct plan plan;
	struct qemu_cmdline c;

	for (size_t i = 0; i < cfg->n_disks; i++)
		fake_target(&cfg->disks[i], state_dir, &targets[i]);
	if (plan_build(cfg, &host, targets, variant ? &as_nobody : &as_root, &(struct run_request){ .command_mode = !variant }, &plan) == 0) {
		qemu_argv_build(&plan, &c);
		check_cmdline(&c);
		qemu_cmdline_free(&c);
	}
	plan_free(&plan);
	for (size_t i = 0; i < cfg->n_disks; i++) {
		/* storage_target_free would link every backend; these are the only fields fake_target fills */
		free(targets[i].filename);
		free(targets[i].secret_file);
		strv_free(&targets[i].driver_opts);
	}
	free(targets);
	free(state_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strv sets = STRV_INIT;
	struct vm_config cfg;

	write_or_die(config_path, data, size);
	collect_sets(data, size, &sets);
	if (config_load(config_path, &sets, &cfg) == 0) {
		check_config(&cfg);
		check_headers(&cfg, data, size);
		/* Two hosts: KVM, a terminal and pvpanic, interactive; and TCG without them, in command mode. */
		plan_and_argv(&cfg, true);
		plan_and_argv(&cfg, false);
	}
	config_free(&cfg);
	strv_free(&sets);
	return 0;
}
