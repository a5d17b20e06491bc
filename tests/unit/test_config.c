/* Config parsing: values, defaults, --set, and every class of error message with its file:line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_helpers.h"

#define BOOT "[boot]\nkernel = vmlinux\ninitrd = initrd\n"

static void expect_error(const char *text, const char *const *sets, const char *message)
{
	struct vm_config cfg;
	char *err;
	int r = load_text(text, sets, &cfg, &err);

	if (!strstr(err, message))
		fail_msg("expected a message containing\n  %s\ngot\n  %s", message, err);
	assert_int_equal(r, -EINVAL);
	/* one line, prefixed like every vmlaunch message */
	assert_true(!strncmp(err, "vmlaunch: ", 10));
	if (strchr(err, '\n') != err + strlen(err) - 1)
		fail_msg("expected one line, got\n%s", err);
	config_free(&cfg);
	free(err);
}

/* Every mistake of a config in one run, each with its line, near misses named; a bad header is said once. */
static void test_every_mistake_at_once(void **state)
{
	struct vm_config cfg;
	char *err;
	(void)state;

	assert_int_equal(load_text("[vm]\ncpu = 2\nmemory = 1.5G\n" BOOT "[disks root]\nbackend = tmpfs\nsize = 1G\n"
				   "[disk a]\nbackend = tmpfs\nsizee = 1G\nkernel = x\n",
				   (const char *const[]){ "vm.acel=kvm", NULL }, &cfg, &err),
			 -EINVAL);
	assert_non_null(strstr(err, "vmlaunch: test.conf:2: [vm]: unknown key \"cpu\" (did you mean \"cpus\"?)"));
	assert_non_null(strstr(err, "vmlaunch: test.conf:3: [vm] memory \"1.5G\": expected a whole number"));
	assert_non_null(strstr(err, "vmlaunch: test.conf:7: unknown section [disks root] (did you mean [disk root]?)"));
	assert_non_null(strstr(err, "vmlaunch: test.conf:12: [disk a]: unknown key \"sizee\" (did you mean \"size\"?)"));
	assert_non_null(strstr(err, "vmlaunch: test.conf:13: [disk a]: unknown key \"kernel\" (it goes in [boot])"));
	assert_non_null(strstr(err, "vmlaunch: --set vm.acel=kvm: [vm]: unknown key \"acel\" (did you mean "
				    "\"accel\"?)"));
	/* the keys under the bad header are not judged again */
	assert_null(strstr(err, "test.conf:8"));
	assert_null(strstr(err, "test.conf:9"));
	config_free(&cfg);
	free(err);

	/* a file that is no config at all (a binary named by mistake): twenty, then a line saying there are more */
	{
		char text[1024] = "[vm]\n";
		size_t lines = 0;

		for (int i = 0; i < 30; i++)
			snprintf(text + strlen(text), sizeof(text) - strlen(text), "junk%d = 1\n", i);
		assert_int_equal(load_text(text, NULL, &cfg, &err), -EINVAL);
		for (const char *c = err; *c; c++)
			lines += *c == '\n';
		assert_int_equal(lines, 21);
		assert_non_null(strstr(err, "vmlaunch: test.conf:21: [vm]: unknown key \"junk19\""));
		assert_non_null(strstr(err, "vmlaunch: test.conf: more mistakes than these 20; not shown\n"));
		config_free(&cfg);
		free(err);
	}
}

static void test_full_config(void **state)
{
	struct vm_config cfg;
	char *err;
	(void)state;

	assert_int_equal(load_text("# comment\n[vm]\nname = web-1\ncpus = 4\nmemory = 2G\naccel = tcg\n" BOOT
				   "append = quiet\n  console=ttyS0\n"
				   "[qemu]\nextra = -device  virtio-rng-pci\nextra = -msg timestamp=on\n"
				   "[disk root]\nbackend = tmpfs\nsize = 1G\ncache = safe\n"
				   "[disk data]\nbackend = file\npath = vmlinux\nreadonly = yes\n",
				   NULL, &cfg, &err),
			 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.name, "web-1");
	assert_int_equal(cfg.cpus, 4);
	assert_int_equal(cfg.memory, 2ULL << 30);
	assert_int_equal(cfg.accel, ACCEL_TCG);
	assert_string_equal(cfg.machine, "q35");
	assert_true(cfg.kernel[0] == '/');
	assert_non_null(strstr(cfg.kernel, "/vmlinux"));
	/* a continuation line adds words to append */
	assert_string_equal(cfg.append, "quiet console=ttyS0");
	assert_int_equal(cfg.qemu_extra.n, 4);
	assert_string_equal(cfg.qemu_extra.v[1], "virtio-rng-pci");
	assert_string_equal(cfg.qemu_extra.v[3], "timestamp=on");
	assert_int_equal(cfg.n_disks, 2);
	assert_string_equal(cfg.disks[0].name, "root");
	assert_int_equal(cfg.disks[0].backend, BACKEND_TMPFS);
	assert_int_equal(cfg.disks[0].size, 1ULL << 30);
	assert_true(cfg.disks[0].ephemeral); /* tmpfs is always ephemeral */
	assert_int_equal(cfg.disks[0].cache, CACHE_SAFE);
	assert_int_equal(cfg.disks[0].line, 15);
	assert_int_equal(cfg.disks[1].backend, BACKEND_FILE);
	assert_true(cfg.disks[1].readonly);
	assert_false(cfg.disks[1].ephemeral);
	config_free(&cfg);
	free(err);
}

static void test_defaults(void **state)
{
	struct vm_config cfg;
	char *err;
	(void)state;

	assert_int_equal(load_text(BOOT, NULL, &cfg, &err), 0);
	assert_string_equal(cfg.name, "test"); /* from test.conf */
	assert_int_equal(cfg.cpus, 1);
	assert_int_equal(cfg.memory, 512ULL << 20);
	assert_int_equal(cfg.accel, ACCEL_AUTO);
	assert_string_equal(cfg.qemu_binary, "qemu-system-x86_64");
	assert_int_equal(cfg.shutdown_timeout, 60);
	assert_int_equal(cfg.n_disks, 0);
	config_free(&cfg);
	free(err);
}

static void test_set_overrides(void **state)
{
	const char *sets[] = { "vm.cpus=8", "disk.root.size=2G", "disk new.backend=tmpfs", "disk.new.size=64M", NULL };
	struct vm_config cfg;
	char *err;
	(void)state;

	assert_int_equal(load_text("[vm]\ncpus = 2\n" BOOT "[disk root]\nbackend = tmpfs\nsize = 1G\n", sets, &cfg, &err),
			 0);
	assert_int_equal(cfg.cpus, 8);
	assert_int_equal(cfg.disks[0].size, 2ULL << 30);
	assert_int_equal(cfg.n_disks, 2);
	assert_string_equal(cfg.disks[1].name, "new");
	assert_int_equal(cfg.disks[1].size, 64ULL << 20);
	config_free(&cfg);
	free(err);
}

static void test_sizes(void **state)
{
	uint64_t v;
	(void)state;

	assert_int_equal(config_parse_size("512M", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(config_parse_size("3GiB", &v), 0);
	assert_int_equal(v, 3ULL << 30);
	assert_int_equal(config_parse_size("1T", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(config_parse_size("64K", &v), 0);
	assert_int_equal(v, 64ULL << 10);
	const char *bad[] = { "", "20X", "512", "M", "-1G", "1.5G", "0G", "99999999999999T", " 1G", "1G ", "1g", NULL };
	for (const char **b = bad; *b; b++)
		if (config_parse_size(*b, &v) != -EINVAL)
			fail_msg("size \"%s\" was accepted", *b);
}

static void test_error_messages(void **state)
{
	(void)state;
	expect_error("[vm]\ncpu = 2\n", NULL,
		     "test.conf:2: [vm]: unknown key \"cpu\" (did you mean \"cpus\"?): expected one of name, cpus, memory, accel");
	expect_error("[vm]\nname = a\n[vmm]\nx = 1\n", NULL,
		     "test.conf:3: unknown section [vmm] (did you mean [vm]?): expected [vm], [boot], [memory], [cpu], [qemu], "
		     "[cloud-init], [disk NAME], [share NAME], [net NAME] or [memory tier NAME]");
	expect_error(BOOT "[disk root]\nbackend = tmpfs\nsize = 20X\n", NULL,
		     "test.conf:6: [disk root] size \"20X\": expected a whole number with K, M, G or T suffix");
	expect_error(BOOT "\n[disk root]\nsize = 1G\n", NULL,
		     "test.conf:5: [disk root]: missing key \"backend\": expected backend = file, tmpfs, zram, brd, lvm or rbd");
	expect_error(BOOT "[disk root]\n", NULL, "test.conf:4: [disk root]: missing key \"backend\"");
	expect_error(BOOT "[disk a]\nbackend = tmpfs\nsize = 1G\n[disk a]\nsize = 2G\n", NULL,
		     "test.conf:7: section [disk a] appears twice (first on line 4)");
	expect_error("[vm]\ncpus = 2\ncpus = 3\n", NULL, "test.conf:3: [vm] cpus: set twice (first on line 2)");
	expect_error("cpus = 2\n", NULL, "test.conf:1: \"cpus\" is outside any section");
	expect_error("[vm]\ncpus 2\n", NULL, "test.conf:2: expected [section], key = value, or a comment");
	expect_error("[vm\ncpus = 2\n", NULL, "test.conf:1: expected [section], key = value, or a comment");
	expect_error("[vm]\ncpus = 0\n", NULL, "test.conf:2: [vm] cpus \"0\": expected a whole number from 1 to 255");
	expect_error("[vm]\ncpus = 2x\n", NULL, "[vm] cpus \"2x\": expected a whole number from 1 to 255");
	expect_error("[vm]\naccel = xen\n", NULL, "test.conf:2: [vm] accel \"xen\": expected auto, kvm or tcg");
	expect_error(BOOT "[disk d]\nbackend = nfs\n", NULL, "[disk d] backend \"nfs\": expected file, tmpfs, zram, brd, lvm or rbd");
	expect_error(BOOT "[disk d]\nbackend = file\npath = vmlinux\nreadonly = maybe\n", NULL,
		     "test.conf:7: [disk d] readonly \"maybe\": expected yes or no");
	expect_error(BOOT "[disk d]\nbackend = tmpfs\n", NULL,
		     "test.conf:4: [disk d]: backend tmpfs needs size = (e.g. size = 1G)");
	expect_error(BOOT "[disk d]\nbackend = tmpfs\nsize = 1G\npath = x\n", NULL,
		     "test.conf:7: [disk d] path: not used by backend tmpfs");
	expect_error(BOOT "[disk d]\nbackend = tmpfs\nsize = 1G\nephemeral = no\n", NULL,
		     "test.conf:7: [disk d] ephemeral: a tmpfs disk lives in RAM and is always ephemeral");
	expect_error(BOOT "[disk d]\nbackend = file\n", NULL, "test.conf:4: [disk d]: backend file needs path = IMAGE");
	expect_error(BOOT "[disk d]\nbackend = file\npath = vmlinux\ncomp-algorithm = lz4\n", NULL,
		     "test.conf:7: [disk d] comp-algorithm: not used by backend file");
	expect_error(BOOT "[disk d]\nbackend = file\npath = vmlinux\nreadonly = yes\nephemeral = yes\n", NULL,
		     "test.conf:7: [disk d] readonly: an ephemeral overlay exists to take writes");
	expect_error("[boot]\nkernel = missing-vmlinux\n", NULL,
		     "/missing-vmlinux: No such file or directory");
	expect_error("[boot]\nkernel = missing-vmlinux\n", NULL, "test.conf:2: [boot] kernel /");
	expect_error("[boot]\ninitrd = initrd\n", NULL, "test.conf:2: [boot] initrd: needs kernel = as well");
	expect_error("[vm]\nname = ../etc\n", NULL, "test.conf:2: [vm] name \"../etc\": expected 1 to 64 letters");
	expect_error(BOOT "[disk this-name-is-too-long-for-serial]\nbackend = tmpfs\n", NULL,
		     "test.conf:4: section [disk this-name-is-too-long-for-serial]: name \"this-name-is-too-long-for-serial\": expected 1 to 20");
	expect_error("[vm]\nmemory = 8M\n", NULL, "test.conf:2: [vm] memory: expected at least 16M");
	expect_error("[vm]\nmachine = pc\n", NULL, "test.conf:2: [vm] machine \"pc\": expected q35");
	expect_error("[vm]\nname =\n", NULL, "test.conf:2: [vm] name: expected a value");
	expect_error(BOOT "[disk d]\nbackend = zram\nsize = 1G\nvg = x\n", NULL,
		     "test.conf:7: [disk d] vg: not used by backend zram");
	expect_error(BOOT "[disk d]\nbackend = lvm\nsize = 1G\n", NULL, "test.conf:4: [disk d]: backend lvm needs vg =");
	expect_error(BOOT "[disk d]\nbackend = brd\n", NULL, "test.conf:4: [disk d]: backend brd needs size =");
	expect_error(BOOT "[disk d]\nbackend = zram\nsize = 1G\nformat = qcow2\n", NULL,
		     "test.conf:7: [disk d] format: not used by backend zram (the disk vmlaunch creates is raw");
	expect_error(BOOT "[disk d]\nbackend = zram\nsize = 1G\nsource-format = qcow2\n", NULL,
		     "test.conf:7: [disk d] source-format: needs source = IMAGE as well");
	expect_error(BOOT "[disk a]\nbackend = tmpfs\nsize = 1G\n[disk.a]\nsize = 2G\n", NULL,
		     "test.conf:7: section [disk a] appears twice (first on line 4)");
	expect_error("[memory]\nhost-node = 4294967296\n", NULL,
		     "test.conf:2: [memory] host-node \"4294967296\": expected auto or a node number from 0 to 1023");
	expect_error("[cpu]\npin = 1-\n", NULL, "test.conf:2: [cpu] pin \"1-\": expected auto, off, or host CPUs like 2-5");
	expect_error("[vm]\ncpus = 2\n[cpu]\npin = 3\n", NULL,
		     "test.conf:4: [cpu] pin \"3\": names 1 host CPUs; expected one per vCPU (2)");
	expect_error("[cpu]\niothreads = 1\n", NULL, "test.conf:2: [cpu] iothreads and emulator go with pin = LIST");
	expect_error("[memory]\nhugepages = 4M\n", NULL, "test.conf:2: [memory] hugepages \"4M\": expected off, 2M or 1G");
	expect_error("[memory tier slow]\nsize = 1G\n", NULL, "test.conf:1: [memory tier slow]: missing key \"backend\"");
	expect_error("[memory tier slow]\nbackend = file\nsize = 1G\n", NULL,
		     "test.conf:1: [memory tier slow]: backend file needs path =");
	expect_error("[memory tier slow]\nbackend = dram\nsize = 3M\n", NULL,
		     "test.conf:3: [memory tier slow] size: expected a multiple of 2M");
	expect_error("[qemu]\nuser = no-such-user-here\n", NULL, "test.conf:2: [qemu] user \"no-such-user-here\": no such user");
	expect_error(BOOT "[disk d]\nbackend = rbd\n", NULL, "test.conf:4: [disk d]: backend rbd needs pool = POOL");
	expect_error(BOOT "[disk d]\nbackend = rbd\npool = p\nclone-from = img\n", NULL,
		     "test.conf:7: [disk d] clone-from \"img\": expected POOL/IMAGE@SNAPSHOT");
	expect_error(BOOT "[disk d]\nbackend = lvm\nvg = v\nthin-pool-size = 1G\n", NULL,
		     "test.conf:7: [disk d] thin-pool-size: needs thin-pool = NAME as well");
}

static void test_hostile_lines(void **state)
{
	char long_line[400];
	char *text;
	(void)state;

	memset(long_line, 'a', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	text = xasprintf("[boot]\nappend = %s\n", long_line);
	expect_error(text, NULL, "test.conf:2: line is longer than");
	free(text);
	{
		static const char nul[] = "[vm]\nname = a\0b\n";
		struct vm_config cfg;
		char *err;

		assert_int_equal(load_bytes(nul, sizeof(nul) - 1, NULL, &cfg, &err), -EINVAL);
		assert_non_null(strstr(err, "test.conf:2: contains a NUL byte: expected text"));
		config_free(&cfg);
		free(err);
	}
}

static void test_set_errors(void **state)
{
	(void)state;
	expect_error(BOOT, (const char *const[]){ "vm.cpus", NULL },
		     "--set vm.cpus: expected --set SECTION.KEY=VALUE");
	expect_error(BOOT, (const char *const[]){ "cpus=2", NULL }, "--set cpus=2: expected --set SECTION.KEY=VALUE");
	expect_error(BOOT, (const char *const[]){ "vm.cpu=2", NULL }, "--set vm.cpu=2: [vm]: unknown key \"cpu\"");
	expect_error(BOOT, (const char *const[]){ "vm.cpus=many", NULL },
		     "--set vm.cpus=many: [vm] cpus \"many\": expected a whole number");
	/* a cross-key problem created by --set names --set as its origin */
	expect_error(BOOT "[disk d]\nbackend = tmpfs\nsize = 1G\n", (const char *const[]){ "disk.d.path=x", NULL },
		     "test.conf: (from --set) [disk d] path: not used by backend tmpfs");
}

/* [share] and [net] as read, and the mistakes in them. */
static void test_shares_and_nets(void **state)
{
	struct vm_config cfg;
	char *err;

	(void)state;
	assert_int_equal(load_text(BOOT "[share src]\npath = /tmp\n[share out]\npath = /\nreadonly = no\nmount = /out\n"
				   "tag = artifacts\n[net n0]\nforward = tcp:2222-:22\nforward = tcp:0.0.0.0:8080-:80\n"
				   "restrict = yes\n",
				   NULL, &cfg, &err),
			 0);
	assert_int_equal(cfg.n_shares, 2);
	assert_true(cfg.shares[0].readonly); /* the default */
	assert_string_equal(cfg.shares[0].mount, "/mnt/src");
	assert_string_equal(cfg.shares[0].tag, "src");
	assert_false(cfg.shares[1].readonly);
	assert_string_equal(cfg.shares[1].tag, "artifacts");
	assert_int_equal(cfg.n_nets, 1);
	assert_int_equal(cfg.nets[0].mode, NET_USER);
	assert_int_equal(cfg.nets[0].forwards.n, 2);
	assert_true(cfg.nets[0].restricted);
	config_free(&cfg);
	free(err);

	expect_error(BOOT "[share s]\nreadonly = no\n", NULL, "test.conf:4: [share s]: missing key \"path\"");
	expect_error(BOOT "[share s]\npath = /nonexistent-dir\n", NULL,
		     "test.conf:5: [share s] path /nonexistent-dir: No such file or directory; expected an existing directory");
	expect_error(BOOT "[share s]\npath = /tmp\nmount = relative\n", NULL,
		     "test.conf:6: [share s] mount \"relative\": expected an absolute guest path without blanks");
	expect_error(BOOT "[share a]\npath = /tmp\n[share b]\npath = /tmp\ntag = a\n", NULL,
		     "[share b]: same tag as [share a]");
}

/* source = URL needs its SHA-256, which is kept in lower case. */
static void test_source_url_and_sha256(void **state)
{
	struct vm_config cfg;
	char *err;

	(void)state;
	expect_error(BOOT "[disk d]\nbackend = tmpfs\nsize = 8M\nsource = https://example.org/x.qcow2\n", NULL,
		     "test.conf:7: [disk d] source https://example.org/x.qcow2: a URL needs source-sha256 =");
	expect_error(BOOT "[disk d]\nbackend = tmpfs\nsize = 8M\nsource = /tmp\nsource-sha256 = ab\n", NULL,
		     "test.conf:8: [disk d] source-sha256: goes with source = URL");
	expect_error(BOOT "[disk d]\nbackend = tmpfs\nsize = 8M\nsource = http://h/x\nsource-sha256 = xyz\n", NULL,
		     "test.conf:8: [disk d] source-sha256 \"xyz\": expected the image's SHA-256, 64 hex digits");
	assert_int_equal(load_text(BOOT "[disk d]\nbackend = tmpfs\nsize = 8M\nsource = http://h/x.raw\nsource-sha256 = "
				   "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\n",
				   NULL, &cfg, &err),
			 0);
	assert_string_equal(cfg.disks[0].source, "http://h/x.raw"); /* as written, not made a path */
	assert_string_equal(cfg.disks[0].source_sha256,
			    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	config_free(&cfg);
	free(err);
}

/* [boot] tpm and tpm-state. */
static void test_tpm_keys(void **state)
{
	(void)state;
	expect_error(BOOT "tpm-state = /tmp\n", NULL,
		     "test.conf:4: [boot] tpm-state: the TPM's kept state; expected tpm = yes as well");
	expect_error(BOOT "tpm = yes\ntpm-state = /dev/null\n", NULL,
		     "test.conf:5: [boot] tpm-state /dev/null: expected a directory");
	expect_error(BOOT "tpm = maybe\n", NULL, "test.conf:4: [boot] tpm \"maybe\": expected yes or no");
}

/* [net] forwards, MAC and static addresses. */
static void test_net_forwards_and_addresses(void **state)
{
	(void)state;
	expect_error(BOOT "[net n]\nforward = 2222:22\n", NULL,
		     "test.conf:5: [net n] forward \"2222:22\": expected tcp:[HOSTADDR:]HOSTPORT[+]-:GUESTPORT");
	expect_error(BOOT "[net n]\nforward = tcp:99999-:22\n", NULL, "[net n] forward \"tcp:99999-:22\"");
	expect_error(BOOT "[net n]\nforward = tcp:2222++-:22\n", NULL, "[net n] forward \"tcp:2222++-:22\"");
	expect_error(BOOT "[net n]\nforward = tcp:1.2.3:2222-:22\n", NULL, "[net n] forward \"tcp:1.2.3:2222-:22\"");
	expect_error(BOOT "[net n]\nforward = tcp:2222-:22x\n", NULL, "[net n] forward \"tcp:2222-:22x\"");
	expect_error(BOOT "[net n]\nforward = tcp:256.0.0.1:2222-:22\n", NULL, "[net n] forward \"tcp:256.0.0.1");
	{
		struct net_forward f;

		/* HOSTPORT+: the first free port from there, on loopback unless an address is written */
		assert_true(config_forward_parse("tcp:2222+-:22", &f));
		assert_true(f.first_free && !f.udp && f.host == 2222 && f.guest == 22);
		assert_string_equal(f.addr, "127.0.0.1");
		assert_true(config_forward_parse("udp:0.0.0.0:53-:5353", &f));
		assert_true(!f.first_free && f.udp && f.host == 53 && f.guest == 5353);
		assert_string_equal(f.addr, "0.0.0.0");
	}
	expect_error(BOOT "[net n]\nmac = 01:00:00:00:00:01\n", NULL, "[net n] mac \"01:00:00:00:00:01\": expected a unicast");
	/* a static address: a tap's, set by cloud-init, written as A.B.C.D/PREFIX */
	expect_error(BOOT "[net n]\naddress = 10.0.0.2/24\n[cloud-init]\nuser = u\n", NULL,
		     "[net n] address: goes with mode = tap");
	expect_error(BOOT "[net n]\nmode = tap\nbridge = br0\naddress = 10.0.0.2/24\n", NULL,
		     "[net n] address: needs a [cloud-init] section");
	expect_error(BOOT "[net n]\nmode = tap\nbridge = br0\naddress = 10.0.0.2\n[cloud-init]\nuser = u\n", NULL,
		     "[net n] address \"10.0.0.2\": expected A.B.C.D/PREFIX");
	expect_error(BOOT "[net n]\nmode = tap\nbridge = br0\naddress = 10.0.0.300/24\n[cloud-init]\nuser = u\n", NULL,
		     "[net n] address \"10.0.0.300/24\": expected A.B.C.D/PREFIX");
	expect_error(BOOT "[net n]\nmode = tap\nbridge = br0\naddress = 10.0.0.2/33\n[cloud-init]\nuser = u\n", NULL,
		     "[net n] address \"10.0.0.2/33\"");
	expect_error(BOOT "[net n]\nmode = tap\nbridge = br0\ngateway = 10.0.0.1\n", NULL,
		     "[net n] gateway: needs address = as well");
	expect_error(BOOT "[net n]\nmode = tap\nbridge = br0\naddress = 10.0.0.2/24\ngateway = x\n[cloud-init]\nuser = u\n",
		     NULL, "[net n] gateway \"x\": expected an IPv4 address");
}

/* [boot] root, and the values that reach the guest protocol or the journal. */
static void test_root_and_values_that_reach_the_guest(void **state)
{
	(void)state;
	expect_error(BOOT "[boot]\n", NULL, "section [boot] appears twice");
	expect_error("[boot]\nkernel = vmlinux\ninitrd = initrd\nroot = nodisk\n", NULL,
		     "test.conf:4: [boot] root \"nodisk\": no [disk nodisk]");
	expect_error(BOOT "[vm]\nname = x.lock\n", NULL, "[vm] name \"x.lock\"");
	/* control characters never reach file names, journal records or qemu's arguments */
	expect_error(BOOT, (const char *const[]){ "vm.name=a\nb", NULL }, "[vm] name: contains a control character (0x0a)");
	expect_error(BOOT "[cpu]\npin = 0,0\n", NULL, "[cpu] pin \"0,0\": names host CPU 0 twice");
	/* a disk that only --set names says so */
	expect_error(BOOT, (const char *const[]){ "disk.nope.size=1G", NULL },
		     "test.conf: (from --set) no disk is named \"nope\" in");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config), cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set_overrides), cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_every_mistake_at_once), cmocka_unit_test(test_hostile_lines),
		cmocka_unit_test(test_set_errors), cmocka_unit_test(test_shares_and_nets),
		cmocka_unit_test(test_source_url_and_sha256), cmocka_unit_test(test_tpm_keys),
		cmocka_unit_test(test_net_forwards_and_addresses), cmocka_unit_test(test_root_and_values_that_reach_the_guest),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
