/* vmlaunch's command line and top-level flow: parse, probe, plan, then launch (launch.c: acquire → run → undo). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "console.h"
#include "exit_status.h"
#include "fdio.h"
#include "forward.h"
#include "privileges.h"
#include "host.h"
#include "launch.h"
#include "log.h"
#include "plan.h"
#include "qemu_argv.h"
#include "snapshot.h"
#include "snapshot_manifest.h"
#include "tap.h"
#include "status.h"
#include "state_dir.h"
#include "storage.h"
#include "strv.h"

#ifndef VMLAUNCH_VERSION
#define VMLAUNCH_VERSION "0.1"
#endif

#define DEFAULT_CONFIG "demo.conf" /* booted when no CONFIG is given; make install puts it in PREFIX/share/vmlaunch */

static void usage(FILE *out)
{
	fputs("Usage: vmlaunch [OPTIONS] [CONFIG] [-- COMMAND [ARG...]]\n"
	      "\n"
	      "Launch one QEMU virtual machine described by CONFIG: set up its storage, start qemu with a tuned\n"
	      "command line, supervise it, and undo everything at exit. With -- COMMAND, run COMMAND inside the\n"
	      "bundled guest and exit with its exit status; its stdin is vmlaunch's (with a terminal on stdin\n"
	      "and stdout, it runs on a pty in the guest). Without CONFIG, boot the embedded default (demo.conf,\n"
	      "installed in PREFIX/share/vmlaunch).\n"
	      "\n"
	      "Options:\n"
	      "  -n, --dry-run            print qemu's argv, one argument per line, and exit; touches nothing\n"
	      "  -e, --explain            print qemu's argv in groups, each with the reason for it, and exit\n"
	      "  -s, --set SECTION.KEY=VALUE\n"
	      "                           override a config key (repeatable), e.g. --set vm.cpus=4,\n"
	      "                           --set disk.root.size=2G\n"
	      "      --share NAME=DIR[:rw]\n"
	      "                           share host directory DIR with the guest at /mnt/NAME over virtiofs,\n"
	      "                           read-only unless :rw (repeatable; the same as a [share NAME] section)\n"
	      "      --env NAME=VALUE     set NAME in -- COMMAND's environment (repeatable)\n"
	      "      --snapshot           boot the guest to where it waits for a command, save it to\n"
	      "                           [vm] snapshot (default CACHE/snapshots/NAME) and exit; later\n"
	      "                           vmlaunch CONFIG -- COMMAND runs restore it instead of booting\n"
	      "      --cleanup [NAME]     undo what a killed run of NAME (default: every VM) left behind; waits for a\n"
	      "                           running vmlaunch to finish first (up to --wait seconds, default 30)\n"
	      "      --wait SECONDS       how long --cleanup and --stop wait for a running VM\n"
	      "      --stop NAME          power VM NAME off (ACPI power button; qemu's quit if it has not powered\n"
	      "                           off after --wait seconds, default 30) and wait until it is gone\n"
	      "  -l, --list               list running VMs (name, pid, uptime, CPUs, memory, disks)\n"
	      "      --status NAME        NAME's pid, uptime, command and disks, and its run state from qemu\n"
	      "      --json               --list and --status as JSON, for scripts\n"
	      "      --ssh NAME [-- COMMAND]\n"
	      "                           ssh into running VM NAME (its forward to port 22, its [cloud-init] user\n"
	      "                           and key); the exit status is ssh's\n"
	      "      --console NAME       attach this terminal to running VM NAME's serial console; Ctrl-]\n"
	      "                           detaches and leaves the VM running\n"
	      "  -v, --verbose            say what vmlaunch is doing\n"
	      "  -h, --help               show this help and exit\n"
	      "  -V, --version            show the version and exit\n"
	      "\n"
	      "Exit status:\n"
	      "  0        the VM powered off (with -- COMMAND: the command's status, 0-255, exactly)\n"
	      "  1        vmlaunch or qemu failed, or the firmware found nothing to boot; what vmlaunch had set up\n"
	      "           was undone\n"
	      "  2        bad command line or config (a file it names that does not exist included); nothing on\n"
	      "           the host was touched\n"
	      "  125      -- COMMAND: the guest panicked, stopped without reporting the command's status, or did\n"
	      "           not reach its agent within [vm] agent-timeout\n"
	      "  128+N    stopped by signal N before the VM finished (a graceful powerdown after SIGINT/SIGTERM\n"
	      "           without -- COMMAND exits 0)\n"
	      "With -- COMMAND, statuses 1, 2 and 125 can also be the command's own; vmlaunch then says which on stderr.\n",
	      out);
}

struct options {
	const char *config;
	struct strv sets;
	struct strv env;
	struct strv command;
	bool dry_run, explain, cleanup, list, json, snapshot;
	const char *status_name, *ssh_name, *stop_name, *console_name;
	int wait_seconds;
};

/* --share NAME=DIR[:rw|:ro] → the [share NAME] keys, DIR made absolute here (the config's directory is not the
 * caller's). */
static int share_option(const char *arg, struct strv *sets)
{
	const char *eq = strchr(arg, '=');
	char *dir, *abs, *colon;
	bool rw = false;

	if (!eq || eq == arg || !eq[1]) {
		log_error("--share %s: expected NAME=DIR or NAME=DIR:rw", arg);
		return -EINVAL;
	}
	dir = xstrdup(eq + 1);
	colon = strrchr(dir, ':');
	if (colon && (!strcmp(colon, ":rw") || !strcmp(colon, ":ro"))) {
		rw = !strcmp(colon, ":rw");
		*colon = '\0';
	}
	abs = realpath(dir, NULL);
	if (!abs) {
		log_errno(errno, "--share %s: %s", arg, dir);
		free(dir);
		return -EINVAL;
	}
	strv_pushf(sets, "share.%.*s.path=%s", (int)(eq - arg), arg, abs);
	strv_pushf(sets, "share.%.*s.readonly=%s", (int)(eq - arg), arg, rw ? "no" : "yes");
	free(abs);
	free(dir);
	return 0;
}

/* One option getopt found (c); argv and argc for the messages that name it. */
static int take_option(int c, struct options *o, char **argv, int argc)
{
	switch (c) {
	case 'n':
		o->dry_run = true;
		return 0;
	case 'e':
		o->explain = true;
		return 0;
	case 's':
		strv_push(&o->sets, optarg);
		return 0;
	case 'E':
		if (!strchr(optarg, '=') || optarg[0] == '=') {
			log_error("--env %s: expected NAME=VALUE", optarg);
			return -EINVAL;
		}
		strv_push(&o->env, optarg);
		return 0;
	case 'H':
		if (share_option(optarg, &o->sets) < 0)
			return -EINVAL;
		return 0;
	case 'v':
		log_verbose = 1;
		return 0;
	case 'C':
		o->cleanup = true;
		return 0;
	case 'l':
		o->list = true;
		return 0;
	case 'S':
		o->status_name = optarg;
		return 0;
	case 'X':
		o->ssh_name = optarg;
		return 0;
	case 'T':
		o->stop_name = optarg;
		return 0;
	case 'O':
		o->console_name = optarg;
		return 0;
	case 'J':
		o->json = true;
		return 0;
	case 'P':
		o->snapshot = true;
		return 0;
	case 'W': {
		char *end;
		long v = strtol(optarg, &end, 10);

		if (*end || end == optarg || v < 0 || v > 3600) {
			log_error("--wait %s: expected seconds from 0 to 3600", optarg);
			return -EINVAL;
		}
		o->wait_seconds = (int)v;
		return 0;
	}
	case 'h':
		usage(stdout);
		exit(EXIT_VM_OK);
	case 'V':
		printf("vmlaunch %s\n", VMLAUNCH_VERSION);
		exit(EXIT_VM_OK);
	case ':':
		log_error("%s: expected a value (vmlaunch --help)", argv[optind - 1]);
		return -EINVAL;
	default:
		if (optind > 1 && optind - 1 < argc && argv[optind - 1][0] == '-' && optind > 2)
			log_error("unknown option %s; if it is the command's, put -- before the command "
				  "(vmlaunch CONFIG -- COMMAND ARG...)",
				  argv[optind - 1]);
		else
			log_error("unknown option %s (vmlaunch --help)", argv[optind - 1]);
		return -EINVAL;
	}
}

/* What follows the options: CONFIG (or a by-name verb's NAME) and -- COMMAND. dashdash is where "--" stood (argc
 * when absent), all the whole argv's count. */
static int take_operands(struct options *o, char **argv, int argc, int dashdash, int all)
{
	if (o->list || o->status_name || o->ssh_name || o->stop_name || o->console_name) {
		if (optind < argc) {
			log_error("unexpected \"%s\": --list, --status, --stop, --ssh and --console take no CONFIG",
				  argv[optind]);
			return -EINVAL;
		}
		for (int i = dashdash + 1; o->ssh_name && i < all; i++)
			strv_push(&o->command, argv[i]);
		return 0;
	}
	if (o->cleanup) {
		if (optind + 1 < argc) {
			log_error("--cleanup takes at most one NAME");
			return -EINVAL;
		}
		o->config = optind < argc ? argv[optind] : NULL; /* here: the VM's name */
		return 0;
	}
	o->config = optind < argc ? argv[optind++] : NULL; /* none: the embedded default (main) */
	if (optind < argc) {
		log_error("unexpected \"%s\" after CONFIG: expected -- COMMAND [ARG...]", argv[optind]);
		return -EINVAL;
	}
	if (dashdash < all && dashdash + 1 >= all) {
		log_error("expected a COMMAND after --");
		return -EINVAL;
	}
	for (int i = dashdash + 1; i < all; i++)
		strv_push(&o->command, argv[i]);
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' }, { "explain", no_argument, NULL, 'e' },
		{ "set", required_argument, NULL, 's' }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },    { "version", no_argument, NULL, 'V' },
		{ "cleanup", no_argument, NULL, 'C' }, { "wait", required_argument, NULL, 'W' },
		{ "list", no_argument, NULL, 'l' },    { "status", required_argument, NULL, 'S' },
		{ "env", required_argument, NULL, 'E' }, { "share", required_argument, NULL, 'H' },
		{ "ssh", required_argument, NULL, 'X' },    { "stop", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'J' },    { "console", required_argument, NULL, 'O' },
		{ "snapshot", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	int c, dashdash = 1, all = argc;

	/* Options may come before or after CONFIG; the first "--" ends them, and getopt never sees what follows it, so
	 * COMMAND's own options are never ours. */
	while (dashdash < argc && strcmp(argv[dashdash], "--"))
		dashdash++;
	argc = dashdash;
	opterr = 0; /* our own messages: one prefix, and a hint when a COMMAND's option was taken for ours */
	while ((c = getopt_long(argc, argv, ":nes:vhVl", longopts, NULL)) != -1)
		if (take_option(c, o, argv, argc) < 0)
			return -EINVAL;
	return take_operands(o, argv, argc, dashdash, all);
}

static void print_argv(const struct qemu_cmdline *c)
{
	for (size_t i = 0; i < c->argv.n; i++)
		puts(c->argv.v[i]);
}

/* Each group's reason, then its arguments, one option with its value per line. */
static void print_explained(const struct qemu_cmdline *c)
{
	for (size_t g = 0; g < c->n_groups; g++) {
		printf("# %s\n", c->groups[g].why);
		for (size_t i = c->groups[g].start; i < c->groups[g].end; i++) {
			const char *a = c->argv.v[i];
			bool option = a[0] == '-' && i > 0;

			if (i > c->groups[g].start && option)
				putchar('\n');
			else if (i > c->groups[g].start)
				putchar(' ');
			printf(strpbrk(a, " \t") ? "'%s'" : "%s", a);
		}
		if (c->groups[g].end > c->groups[g].start)
			putchar('\n'); /* a reason with no arguments of its own is its comment line alone */
	}
}

static bool has_tap(const struct vm_config *cfg)
{
	for (size_t i = 0; i < cfg->n_nets; i++)
		if (cfg->nets[i].mode == NET_TAP)
			return true;
	return false;
}

/* The taps' bridges must exist before anything is made; the plan keeps their indexes for the netlink request. */
static int find_bridges(struct plan *plan)
{
	for (size_t i = 0; i < plan->n_nets; i++) {
		struct net_plan *n = &plan->nets[i];

		if (n->cfg->mode != NET_TAP)
			continue;
		n->bridge_index = tap_bridge_index(n->cfg->bridge);
		if (!n->bridge_index) {
			log_error("%s: [net %s] bridge %s: no such bridge on this host (ip link add %s type bridge)",
				  config_at(plan->cfg, n->cfg->bridge_line), n->cfg->name, n->cfg->bridge,
				  n->cfg->bridge);
			return -ENODEV;
		}
	}
	return 0;
}

/* The verbs that name a VM instead of a config: --list, --status, --stop, --ssh, --console, --cleanup. */
static int by_name(const struct options *o)
{
	const char *name = o->status_name	 ? o->status_name
			   : o->stop_name	 ? o->stop_name
			   : o->ssh_name	 ? o->ssh_name
			   : o->console_name ? o->console_name
			   : o->cleanup	 ? o->config
					 : NULL;
	const char *verb = o->status_name ? "status"
			   : o->stop_name ? "stop"
			   : o->ssh_name  ? "ssh"
			   : o->console_name ? "console"
					     : "cleanup";
	char *root;
	int r;

	/* A NAME from the command line names ROOT/NAME and ROOT/NAME.lock: the config's own check, so '' or '..' can
	 * never make the base directory (or anything beside it) a state dir. */
	if (name && !config_vm_name_valid(name)) {
		log_error("--%s \"%s\": expected a VM name (the [vm] name: letters, digits, '_', '.' or '-'), not a path",
			  verb, name);
		return EXIT_BAD_INPUT;
	}
	root = host_state_root();
	if (o->list)
		r = status_list(root, o->json);
	else if (o->status_name)
		r = status_show(root, o->status_name, o->json);
	else if (o->stop_name)
		r = status_stop(root, o->stop_name, o->wait_seconds * 1000);
	else if (o->ssh_name)
		r = status_ssh(root, o->ssh_name, &o->command); /* returns only when ssh could not be run */
	else if (o->console_name)
		r = console_attach(root, o->console_name);
	else
		r = state_dir_cleanup(root, o->config, o->wait_seconds * 1000);
	free(root);
	return r < 0 ? EXIT_SETUP_FAILED : EXIT_VM_OK;
}

/* Everything main() learns before anything on the host is touched. */
struct setup {
	struct vm_config cfg;
	struct host_facts host;
	struct plan plan;
	struct storage_target *targets;
	struct privileges privileges;
	struct snapshot snap;
	char *state_dir, *default_config;
};

/* CONFIG, or the embedded default when none is given. 0, or -1 after the error (exit 2). */
static int load_config(struct options *o, struct setup *s)
{
	if (!o->config) {
		char *looked;

		/* the demo that came with vmlaunch: what `vmlaunch` alone, or `vmlaunch -- CMD`, boots */
		s->default_config = config_bundled_file(DEFAULT_CONFIG, &looked);
		if (!s->default_config) {
			log_error("expected a CONFIG file (vmlaunch [OPTIONS] CONFIG [-- COMMAND...]); without one vmlaunch boots "
				  "its embedded default, %s, which is not at %s (make builds a checkout's, make install "
				  "installs it)",
				  DEFAULT_CONFIG, looked);
			free(looked);
			return -1;
		}
		fprintf(stderr, "vmlaunch: no CONFIG given: using the embedded default, %s\n", s->default_config);
		o->config = s->default_config;
	}
	if (config_load(o->config, &o->sets, &s->cfg) < 0)
		return -1;
	log_info("config %s: VM \"%s\", %u vCPU(s), %llu MiB, %zu disk(s)%s", s->cfg.file, s->cfg.name, s->cfg.cpus,
		 (unsigned long long)(s->cfg.memory >> 20), s->cfg.n_disks, o->command.n ? ", running a command" : "");
	return 0;
}

/* --snapshot saves; a command run restores when a snapshot exists (snapshot.c). 0, or -1 after the error (exit 2). */
static int choose_snapshot(const struct options *o, struct setup *s)
{
	if (o->snapshot && o->command.n) {
		log_error("--snapshot saves the VM before any command: expected no -- COMMAND");
		return -1;
	}
	if (!o->snapshot && (!o->command.n || o->dry_run || o->explain))
		return 0;
	s->snap.dir = snapshot_dir(&s->cfg);
	if (o->snapshot && !s->snap.dir) {
		log_error("%s: no place for the snapshot: set [vm] snapshot = PATH (there is no HOME for the default cache)",
			  s->cfg.file);
		return -1;
	}
	snapshot_paths(&s->snap, &s->cfg, o->snapshot, !o->snapshot && snapshot_exists(s->snap.dir));
	return (s->snap.save || s->snap.restore) && snapshot_supported(&s->cfg) < 0 ? -1 : 0;
}

/* The host's facts, qemu's user, downloads, each disk described and the plan: 0, or the exit status to end with. */
static int prepare(const struct options *o, struct setup *s)
{
	const struct vm_config *cfg = &s->cfg;
	bool run = !o->dry_run && !o->explain;
	int r;

	if (host_probe(cfg->qemu_binary,
		       &(struct host_wants){ .kvm = cfg->accel != ACCEL_TCG,
					     .tcmalloc = cfg->allocator == ALLOCATOR_TCMALLOC,
					     .virtiofsd = cfg->n_shares > 0,
					     .swtpm = cfg->tpm,
					     .firmware = cfg->kernel ? FIRMWARE_BIOS : cfg->firmware,
					     .vhost_net = has_tap(cfg) },
		       &s->host) < 0)
		return EXIT_SETUP_FAILED;
	if (privileges_resolve(cfg->qemu_user, QEMU_DEFAULT_USER, geteuid(), &s->privileges) < 0)
		return EXIT_BAD_INPUT;
	/* images by URL, before anything is set up (a failed download leaves nothing); never for a --dry-run */
	for (size_t i = 0; run && i < cfg->n_disks; i++)
		if (storage_download(&cfg->disks[i], isatty(2), &s->privileges) < 0)
			return EXIT_SETUP_FAILED;
	s->targets = xcalloc(cfg->n_disks, sizeof(*s->targets));
	s->state_dir = state_dir_path(s->host.state_root, cfg->name);
	log_info("host: qemu %s, state in %s", s->host.qemu_path, s->state_dir);
	for (size_t i = 0; i < cfg->n_disks; i++) {
		log_info("storage: describing disk \"%s\" (%s); nothing is made yet", cfg->disks[i].name,
			 backend_kind_name(cfg->disks[i].backend));
		/* restored from a snapshot: made from its frozen image, so neither source = nor clone-from = is read */
		s->targets[i].filled_elsewhere = s->snap.restore && snapshot_disk_frozen(&cfg->disks[i]);
		r = storage_describe(&(struct storage_context){ cfg, s->state_dir, NULL }, &cfg->disks[i], &s->targets[i]);
		if (r < 0)
			return r == -EINVAL ? EXIT_BAD_INPUT : EXIT_SETUP_FAILED;
	}
	r = plan_build(cfg, &s->host, s->targets, &s->privileges,
		       &(struct run_request){ o->command.n > 0 || s->snap.save, &o->env, &o->command,
					      s->snap.save || s->snap.restore },
		       &s->plan);
	if (r < 0)
		return r == -EINVAL ? EXIT_BAD_INPUT : EXIT_SETUP_FAILED;
	snapshot_plan(&s->snap, &s->plan);
	log_info("accelerator: %s", s->plan.accel_why);
	log_info("firmware: %s", s->plan.firmware_why);
	if (s->plan.memory_why)
		log_info("memory: %s", s->plan.memory_why);
	if (s->plan.cpus.why)
		log_info("CPUs: %s", s->plan.cpus.why);
	/* a host fact for the run: --dry-run shows the command line wherever the bridge is */
	if (run && (find_bridges(&s->plan) < 0 || forward_resolve(&s->plan) < 0))
		return EXIT_SETUP_FAILED;
	/* said where it matters: a run, not a --dry-run or an --explain, which shows the reason itself */
	if (s->plan.accel_warning && run)
		log_warn("%s", s->plan.accel_why);
	if (cfg->allocator == ALLOCATOR_TCMALLOC && !s->plan.tcmalloc)
		log_warn("tcmalloc not found in the dynamic loader's cache (install libgoogle-perftools4); qemu uses glibc "
			 "malloc");
	return EXIT_VM_OK;
}

/* --dry-run and --explain: qemu's argv, with nothing on the host touched. */
static void show_argv(const struct options *o, struct setup *s)
{
	struct qemu_cmdline cmdline = { 0 };

	log_info("%s: nothing on the host is touched; qemu's argv follows on stdout", o->dry_run ? "--dry-run" : "--explain");
	/* Devices that exist only once made (/dev/zramN) show as "?": the real name is known at launch. */
	qemu_argv_build(&s->plan, &cmdline);
	if (o->explain)
		print_explained(&cmdline);
	else
		print_argv(&cmdline);
	qemu_cmdline_free(&cmdline);
}

/* Before anything is made: a snapshot for another machine, or a damaged one, is refused (exit 2). */
static int verify_snapshot(struct setup *s)
{
	struct qemu_cmdline cmdline = { 0 };
	int r;

	qemu_argv_build(&s->plan, &cmdline);
	r = snapshot_verify(&s->snap, &s->plan, &cmdline);
	qemu_cmdline_free(&cmdline);
	return r == 0 ? EXIT_VM_OK : r == -EINVAL ? EXIT_BAD_INPUT : EXIT_SETUP_FAILED;
}

static void setup_free(struct setup *s)
{
	plan_free(&s->plan);
	for (size_t i = 0; s->targets && i < s->cfg.n_disks; i++)
		storage_target_free(&s->targets[i]);
	free(s->targets);
	free(s->state_dir);
	free(s->default_config);
	snapshot_free(&s->snap);
	host_facts_free(&s->host);
	privileges_free(&s->privileges);
	config_free(&s->cfg);
}

int main(int argc, char **argv)
{
	struct options o = { .sets = STRV_INIT, .env = STRV_INIT, .command = STRV_INIT, .wait_seconds = 30 };
	struct setup s = { 0 };
	int status = EXIT_BAD_INPUT;

	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill vmlaunch before it has cleaned up */
	stdio_keep_open();
	if (parse_options(argc, argv, &o) < 0)
		goto out;
	if (o.list || o.status_name || o.stop_name || o.ssh_name || o.console_name || o.cleanup) {
		status = by_name(&o);
		goto out;
	}
	if (load_config(&o, &s) < 0 || choose_snapshot(&o, &s) < 0)
		goto out;
	status = prepare(&o, &s);
	if (status != EXIT_VM_OK)
		goto out;
	if (o.dry_run || o.explain) {
		show_argv(&o, &s);
		goto out;
	}
	if (s.snap.restore) {
		status = verify_snapshot(&s);
		if (status != EXIT_VM_OK)
			goto out;
	}
	status = EXIT_SETUP_FAILED;
	if (privileges_resolve_groups(&s.privileges) < 0)
		goto out;
	status = launch(&s.cfg, &s.plan, s.targets, &o.command, &s.snap);
out:
	setup_free(&s);
	strv_free(&o.sets);
	strv_free(&o.env);
	strv_free(&o.command);
	return status;
}
