/* qemu's argv from configs, compared with golden files (VMLAUNCH_UPDATE_GOLDEN=1 rewrites them after a reviewed change). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "qemu_argv.h"
#include "test_helpers.h"

static const struct privileges nopriv;

static char *repo_root;

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char *replace_all(const char *s, const char *from, const char *to)
{
	char *out = xstrdup(""), *tmp;
	const char *hit;

	while ((hit = strstr(s, from))) {
		tmp = xasprintf("%s%.*s%s", out, (int)(hit - s), s, to);
		free(out);
		out = tmp;
		s = hit + strlen(from);
	}
	tmp = xasprintf("%s%s", out, s);
	free(out);
	return tmp;
}

static struct host_facts fake_host(bool kvm_ok)
{
	struct host_facts h = { 0 };

	h.qemu_path = "/usr/bin/qemu-system-x86_64";
	h.kvm.verdict = kvm_ok ? KVM_USABLE : KVM_PVM;
	snprintf(h.kvm.reason, sizeof(h.kvm.reason), "%s",
		 kvm_ok ? "ok" : "/dev/kvm belongs to kvm_pvm (nested PVM): stock guest kernels hang; using TCG");
	h.pvpanic_pci = true;
	h.state_root = "/run/vmlaunch";
	return h;
}

/* config → describe → plan → argv, one argument per line with the temp dir as @DIR@; compared with the golden file. */
static void check_golden(const char *dir, const char *config, bool kvm_ok, bool command_mode, const char *golden,
			 const struct privileges *pv)
{
	struct host_facts host = fake_host(kvm_ok);
	struct vm_config cfg;
	struct storage_target *targets;
	struct plan plan;
	struct qemu_cmdline c;
	char *text = xstrdup(""), *tmp, *got, *want, *golden_path, *state_dir;

	assert_int_equal(config_load(config, NULL, &cfg), 0);
	state_dir = xasprintf("%s/%s", host.state_root, cfg.name);
	targets = xcalloc(cfg.n_disks, sizeof(*targets));
	for (size_t i = 0; i < cfg.n_disks; i++) {
		assert_int_equal(storage_describe(&(struct storage_context){ &cfg, state_dir, NULL }, &cfg.disks[i], &targets[i]),
				 0);
		/* O_DIRECT support depends on the filesystem under /tmp; the probe is tested elsewhere, the syntax here. */
		targets[i].direct_ok = true;
	}
	assert_int_equal(plan_build(&cfg, &host, targets, pv, &(struct run_request){ .command_mode = command_mode }, &plan), 0);
	qemu_argv_build(&plan, &c);
	for (size_t i = 0; i < c.argv.n; i++) {
		tmp = xasprintf("%s%s\n", text, c.argv.v[i]);
		free(text);
		text = tmp;
	}
	got = replace_all(text, dir, "@DIR@");
	golden_path = xasprintf("%s/tests/unit/golden/%s", repo_root, golden);
	if (getenv("VMLAUNCH_UPDATE_GOLDEN")) {
		write_file_n(golden_path, got, strlen(got));
	}
	want = read_all(golden_path);
	if (!want)
		fail_msg("missing %s (run with VMLAUNCH_UPDATE_GOLDEN=1 once, then review it)", golden_path);
	if (strcmp(got, want))
		fail_msg("argv differs from %s:\n--- got ---\n%s", golden_path, got);

	/* every argument is in exactly one --explain group, in order */
	assert_int_equal(c.groups[0].start, 0);
	for (size_t g = 1; g < c.n_groups; g++)
		assert_int_equal(c.groups[g].start, c.groups[g - 1].end);
	assert_int_equal(c.groups[c.n_groups - 1].end, c.argv.n);

	free(want);
	free(got);
	free(golden_path);
	free(text);
	qemu_cmdline_free(&c);
	plan_free(&plan);
	for (size_t i = 0; i < cfg.n_disks; i++)
		storage_target_free(&targets[i]);
	free(targets);
	free(state_dir);
	config_free(&cfg);
}

static char *make_tree(void)
{
	char tmpl[] = "/tmp/vmlaunch-golden-XXXXXX";
	char *dir = xstrdup(mkdtemp(tmpl)), *p;

	p = xasprintf("%s/configs", dir);
	mkdir(p, 0755);
	free(p);
	p = xasprintf("%s/build", dir);
	mkdir(p, 0755);
	free(p);
	for (const char *const *f = (const char *const[]){ "build/vmlinux", "build/initramfs.cpio.gz", NULL }; *f; f++) {
		p = xasprintf("%s/%s", dir, *f);
		write_file_n(p, "", 0);
		free(p);
	}
	return dir;
}

static void remove_tree(const char *dir)
{
	char *cmd[] = { "rm", "-rf", (char *)dir, NULL };
	pid_t pid = fork();

	if (pid == 0) {
		execvp(cmd[0], cmd);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

static void test_demo_conf(void **state)
{
	char *dir = make_tree(), *src = xasprintf("%s/configs/demo.conf", repo_root), *text = read_all(src);
	char *dst = xasprintf("%s/configs/demo.conf", dir), *tmp;
	(void)state;

	assert_non_null(text);
	/* `bundled` is found from the binary (tested by the install test); here the tree's own fake guest stands in */
	tmp = replace_all(text, "kernel = bundled", "kernel = ../build/vmlinux");
	free(text);
	text = replace_all(tmp, "initrd = bundled", "initrd = ../build/initramfs.cpio.gz");
	free(tmp);
	write_file_n(dst, text, strlen(text));
	check_golden(dir, dst, false, false, "demo.argv", &nopriv);
	remove_tree(dir);
	free(text);
	free(src);
	free(dst);
	free(dir);
}

static void test_two_disks_and_ephemeral_file(void **state)
{
	static const char qcow2_head[] = "QFI\xfb";
	char *dir = make_tree(), *p;
	(void)state;

	p = xasprintf("%s/base,image.qcow2", dir); /* a comma must reach qemu as ",," */
	write_file_n(p, qcow2_head, 4);
	free(p);
	p = xasprintf("%s/data,1.raw", dir);
	write_file_n(p, "\0\0\0\0", 4);
	free(p);
	p = xasprintf("%s/configs/multi.conf", dir);
	write_file_n(p,
		     "[vm]\nname = multi\ncpus = 4\nmemory = 1G\n"
		     "[boot]\nkernel = ../build/vmlinux\ninitrd = ../build/initramfs.cpio.gz\nappend = quiet\n"
		     "[disk root]\nbackend = file\npath = ../base,image.qcow2\nformat = qcow2\nephemeral = yes\n"
		     "[disk data]\nbackend = file\npath = ../data,1.raw\n"
		     "[disk scratch]\nbackend = tmpfs\nsize = 2G\ncache = safe\n"
		     "[qemu]\nextra = -device virtio-rng-pci\n",
		     strlen("[vm]\nname = multi\ncpus = 4\nmemory = 1G\n"
			    "[boot]\nkernel = ../build/vmlinux\ninitrd = ../build/initramfs.cpio.gz\nappend = quiet\n"
			    "[disk root]\nbackend = file\npath = ../base,image.qcow2\nformat = qcow2\nephemeral = yes\n"
			    "[disk data]\nbackend = file\npath = ../data,1.raw\n"
			    "[disk scratch]\nbackend = tmpfs\nsize = 2G\ncache = safe\n"
			    "[qemu]\nextra = -device virtio-rng-pci\n"));
	check_golden(dir, p, true, true, "multi-command.argv", &nopriv);
	/* qemu as another user: every disk (the overlay's base too) and the console log are fds vmlaunch opens, with
	 * the access mode qemu's fdset matches; no path of the host's reaches qemu's command line */
	check_golden(dir, p, true, true, "multi-command-as-user.argv",
		     &(struct privileges){ .switch_user = true, .uid = 999, .gid = 999, .user = "vmlaunch-qemu" });
	free(p);
	remove_tree(dir);
	free(dir);
}

/* [boot] tpm: qemu as root connects to swtpm's socket by its path; as another user it gets the connection vmlaunch
 * made, so it needs no access to the state dir. */
static void test_tpm(void **state)
{
	static const char conf[] = "[vm]\nname = tpmvm\n"
				   "[boot]\nkernel = ../build/vmlinux\ninitrd = ../build/initramfs.cpio.gz\ntpm = yes\n";
	char *dir = make_tree(), *p = xasprintf("%s/configs/tpm.conf", dir);
	(void)state;

	write_file_n(p, conf, strlen(conf));
	check_golden(dir, p, true, false, "tpm.argv", &nopriv);
	check_golden(dir, p, true, false, "tpm-as-user.argv",
		     &(struct privileges){ .switch_user = true, .uid = 999, .gid = 999, .user = "vmlaunch-qemu" });
	free(p);
	remove_tree(dir);
	free(dir);
}

static void test_escape(void **state)
{
	char *e = qemu_opt_escape("a,b,,c");
	(void)state;

	assert_string_equal(e, "a,,b,,,,c");
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_conf),
		cmocka_unit_test(test_two_disks_and_ephemeral_file),
		cmocka_unit_test(test_tpm),
		cmocka_unit_test(test_escape),
	};

	repo_root = getcwd(NULL, 0);
	return cmocka_run_group_tests_name("qemu_argv", tests, NULL, NULL);
}
