/* Judges a config as a whole once all of it was read: each disk, share, NIC and the boot, every mistake reported
 * with its file:line (config_parse.h). */
#define _GNU_SOURCE
#include "config.h"
#include "config_parse.h"

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static const char *unused_key_hint(const char *key, enum backend_kind b)
{
	if (b == BACKEND_FILE && !strcmp(key, "source"))
		return " (path = is the image itself)";
	if (b != BACKEND_FILE && !strcmp(key, "path"))
		return " (vmlaunch creates the disk; use source = to fill it)";
	if (b != BACKEND_FILE && !strcmp(key, "format"))
		return " (the disk vmlaunch creates is raw; source-format = describes the source image)";
	return "";
}

/* [disk] backend = is given, and no key is there that the backend does not use. */
static int check_disk_keys(struct parse *p, const struct disk_config *d)
{
	char *list;

	if (!d->backend_line) {
		list = config_choices_list(config_backend_words);
		if (d->line == CONFIG_LINE_SET)
			config_fail(p, d->line, "no disk is named \"%s\" in %s; to add one, also give --set disk.%s.backend=%s",
			     d->name, p->cfg->file, d->name, list);
		else
			config_fail(p, d->line, "[disk %s]: missing key \"backend\": expected backend = %s", d->name, list);
		free(list);
		return -EINVAL;
	}
	for (size_t i = 0; i < config_n_keys; i++) {
		const struct key_spec *k = &config_keys[i];
		unsigned line;

		if (k->section != SEC_DISK)
			continue;
		line = *(const unsigned *)((const char *)d + k->line_offset);
		if (line && !(k->backends & B(d->backend)))
			return config_fail(p, line, "[disk %s] %s: not used by backend %s%s", d->name, k->name,
					   backend_kind_name(d->backend), unused_key_hint(k->name, d->backend));
	}
	return 0;
}

/* What each backend needs besides its keys (a file's path, a RAM disk's size, an rbd pool, an lvm vg); a RAM disk
 * is always ephemeral. */
static int check_disk_needs(struct parse *p, struct disk_config *d)
{
	bool in_ram = d->backend == BACKEND_TMPFS || d->backend == BACKEND_ZRAM || d->backend == BACKEND_BRD;
	const char *b = backend_kind_name(d->backend);

	if (d->backend == BACKEND_FILE && !d->path_line)
		return config_fail(p, d->line, "[disk %s]: backend file needs path = IMAGE (a raw or qcow2 file)", d->name);
	if (in_ram && !d->size_line)
		return config_fail(p, d->line, "[disk %s]: backend %s needs size = (e.g. size = 1G)", d->name, b);
	if (d->backend == BACKEND_RBD && !d->pool_line)
		return config_fail(p, d->line, "[disk %s]: backend rbd needs pool = POOL", d->name);
	if (d->create_line && d->create && d->clone_from_line)
		return config_fail(p, d->clone_from_line, "[disk %s] clone-from: expected either create = yes or clone-from =, not both",
			    d->name);
	if (d->clone_from && (!strchr(d->clone_from, '/') || !strchr(d->clone_from, '@')))
		return config_fail(p, d->clone_from_line, "[disk %s] clone-from \"%s\": expected POOL/IMAGE@SNAPSHOT", d->name,
			    d->clone_from);
	if (d->backend == BACKEND_LVM && !d->vg_line)
		return config_fail(p, d->line, "[disk %s]: backend lvm needs vg = VOLUME_GROUP", d->name);
	if (d->thin_pool_size_line && !d->thin_pool_line)
		return config_fail(p, d->thin_pool_size_line, "[disk %s] thin-pool-size: needs thin-pool = NAME as well", d->name);
	if (in_ram) {
		if (d->ephemeral_line && !d->ephemeral)
			return config_fail(p, d->ephemeral_line,
				    "[disk %s] ephemeral: a %s disk lives in RAM and is always ephemeral; expected yes",
				    d->name, b);
		d->ephemeral = true;
	}
	return 0;
}

/* source = and the keys that go with it: source-format, source-sha256 (for a URL, lower-cased), source-backing. */
static int check_disk_source(struct parse *p, struct disk_config *d)
{
	if (d->source_format_line && !d->source_line)
		return config_fail(p, d->source_format_line, "[disk %s] source-format: needs source = IMAGE as well", d->name);
	if (d->source_sha256_line && !d->source_line)
		return config_fail(p, d->source_sha256_line, "[disk %s] source-sha256: needs source = URL as well", d->name);
	if (d->source_sha256 && !config_is_url(d->source))
		return config_fail(p, d->source_sha256_line, "[disk %s] source-sha256: goes with source = URL (http:// or https://); "
				"a local image is used as it is", d->name);
	if (d->source_sha256) {
		size_t n = strspn(d->source_sha256, "0123456789abcdefABCDEF");

		if (n != 64 || d->source_sha256[n])
			return config_fail(p, d->source_sha256_line,
				    "[disk %s] source-sha256 \"%s\": expected the image's SHA-256, 64 hex digits (what "
				    "sha256sum prints)", d->name, d->source_sha256);
		for (char *c = d->source_sha256; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	if (config_is_url(d->source) && !d->source_sha256)
		return config_fail(p, d->source_line,
			    "[disk %s] source %s: a URL needs source-sha256 = the image's SHA-256 (64 hex digits, published "
			    "beside the image), which vmlaunch checks before it uses the download", d->name, d->source);
	if (d->source_backing_line && !d->source_line)
		return config_fail(p, d->source_backing_line, "[disk %s] source-backing: needs source = IMAGE as well", d->name);
	/* with a chain allowed, a guessed format could follow a header a guest wrote into a raw image */
	if (d->source_backing == SOURCE_BACKING_ALLOW && !d->source_format)
		return config_fail(p, d->source_backing_line, "[disk %s] source-backing = allow: needs source-format as well",
			    d->name);
	return 0;
}

static int finish_disk(struct parse *p, struct disk_config *d)
{
	int r;

	r = check_disk_keys(p, d);
	if (r < 0)
		return r;
	r = check_disk_needs(p, d);
	if (r < 0)
		return r;
	r = check_disk_source(p, d);
	if (r < 0)
		return r;
	if (d->readonly && d->ephemeral && d->backend == BACKEND_FILE)
		return config_fail(p, d->readonly_line,
			    "[disk %s] readonly: an ephemeral overlay exists to take writes; expected either readonly or ephemeral",
			    d->name);
	return 0;
}


/* A path inside the guest: absolute, no whitespace or control characters (the guest protocol is line based). */
static bool valid_guest_path(const char *s)
{
	if (s[0] != '/' || strlen(s) > 255 || strstr(s, "/../") || !strcmp(s, "/"))
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

/* [boot] root =, modules = and [vm] command-user = go with the bundled guest. */
static int finish_boot(struct parse *p)
{
	struct vm_config *cfg = p->cfg;
	bool found = false;

	if (cfg->root) {
		for (size_t i = 0; i < cfg->n_disks; i++)
			found |= !strcmp(cfg->disks[i].name, cfg->root);
		if (!found)
			return config_fail(p, cfg->root_line, "[boot] root \"%s\": no [disk %s]; expected the name of a [disk] section",
				    cfg->root, cfg->root);
		if (!cfg->kernel)
			return config_fail(p, cfg->root_line, "[boot] root: needs kernel = and initrd = (the bundled guest mounts the "
						       "disk and runs its userland)");
		if (!cfg->modules) {
			/* the bundled guest's build puts the kernel's modules image beside the kernel */
			char *dir = xstrdup(cfg->kernel), *slash = strrchr(dir, '/');

			if (slash)
				*slash = '\0';
			cfg->modules = xasprintf("%s/modules.img", slash ? dir : ".");
			free(dir);
		}
		if (access(cfg->modules, R_OK) < 0)
			return config_fail(p, cfg->modules_line ? cfg->modules_line : cfg->root_line,
				    "[boot] modules %s: %s; expected the kernel's modules image (make guest builds "
				    "modules.img beside the bundled vmlinux)",
				    cfg->modules, strerror(errno));
	} else if (cfg->modules_line) {
		return config_fail(p, cfg->modules_line, "[boot] modules: goes with root = DISK");
	}
	if (cfg->kernel && (cfg->firmware == FIRMWARE_UEFI || cfg->firmware == FIRMWARE_UEFI_SECURE))
		return config_fail(p, cfg->firmware_line, "[boot] firmware = uefi: the kernel boots directly (PVH), without "
						   "firmware; expected firmware = bios with kernel =");
	if (cfg->nvram && cfg->firmware != FIRMWARE_UEFI && cfg->firmware != FIRMWARE_UEFI_SECURE &&
	    (cfg->firmware != FIRMWARE_AUTO || cfg->kernel))
		return config_fail(p, cfg->nvram_line, "[boot] nvram: UEFI's variable store; expected firmware = uefi");
	if (cfg->tpm_state && !cfg->tpm)
		return config_fail(p, cfg->tpm_state_line, "[boot] tpm-state: the TPM's kept state; expected tpm = yes as well");
	if (cfg->tpm_state) {
		struct stat st;

		/* made at first start (like nvram =); what is there already must be a directory */
		if (stat(cfg->tpm_state, &st) == 0 && !S_ISDIR(st.st_mode))
			return config_fail(p, cfg->tpm_state_line, "[boot] tpm-state %s: expected a directory (swtpm keeps its "
							    "files there)",
				    cfg->tpm_state);
	}
	if (cfg->command_user && (!config_valid_name(cfg->command_user, 32) || cfg->command_user[0] == '.'))
		return config_fail(p, cfg->command_user_line, "[vm] command-user \"%s\": expected a user name", cfg->command_user);
	return 0;
}

/* The invoking user: the one behind sudo, else this one; root alone has no login of its own in a guest. */
static struct passwd *invoking_user(void)
{
	const char *sudo = getenv("SUDO_USER");
	struct passwd *pw = sudo && *sudo ? getpwnam(sudo) : NULL;

	return pw ? pw : getpwuid(getuid());
}

/* A key file is read now, as the seed will read it (root reads a mode-000 file, but not a directory or a private
 * key pasted by mistake): its first line must be an OpenSSH public key. */
static int check_public_key(struct parse *p, const char *path)
{
	unsigned line = p->cfg->cloud_keys_line;
	char buf[16384] = ""; /* a public key is one line; an RSA-16384 one is under 3 KiB */
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return config_fail(p, line, "[cloud-init] ssh-key %s: %s; expected a readable public key file (ssh-keygen "
					    "makes one: ~/.ssh/id_ed25519.pub)",
				   path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		int e = errno;

		close(fd);
		return config_fail(p, line, "[cloud-init] ssh-key %s: %s; expected a readable public key file", path,
				   strerror(e));
	}
	close(fd);
	buf[n] = '\0';
	if (strncmp(buf, "ssh-", 4) && strncmp(buf, "ecdsa-", 6) && strncmp(buf, "sk-", 3))
		return config_fail(p, line, "[cloud-init] ssh-key %s: expected an OpenSSH public key (a line such as "
					    "\"ssh-ed25519 AAAA... you@host\", the .pub file)%s",
				   path, strstr(buf, "PRIVATE KEY") ? "; this is a private key" : "");
	buf[strcspn(buf, "\r\n")] = '\0';
	strv_push(&p->cfg->cloud_key_lines, buf);
	return 0;
}

/* [cloud-init]: a NoCloud seed for cloud images; keys readable now, so a bad one is a config error. */
static int finish_cloud_init(struct parse *p)
{
	struct vm_config *cfg = p->cfg;
	struct passwd *pw;

	for (size_t i = 0; i < p->n_sections; i++)
		if (!strcmp(p->sections[i].name, "cloud-init"))
			cfg->cloud_init_line = p->sections[i].line;
	if (!cfg->cloud_init_line && (cfg->cloud_keys.n || cfg->cloud_user || cfg->cloud_user_data))
		cfg->cloud_init_line = CONFIG_LINE_SET; /* made by --set alone */
	if (!cfg->cloud_init_line)
		return 0;
	pw = invoking_user();
	if (!cfg->cloud_keys.n && pw) {
		static const char *const kinds[] = { "ed25519", "ecdsa", "rsa" };

		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			char *key = xasprintf("%s/.ssh/id_%s.pub", pw->pw_dir, kinds[i]);

			if (access(key, R_OK) == 0)
				strv_push(&cfg->cloud_keys, key);
			free(key);
		}
	}
	for (size_t i = 0; i < cfg->cloud_keys.n; i++) {
		int r = check_public_key(p, cfg->cloud_keys.v[i]);

		if (r < 0)
			return r;
	}
	if (cfg->cloud_user_data && access(cfg->cloud_user_data, R_OK) < 0)
		return config_fail(p, cfg->cloud_user_data_line, "[cloud-init] user-data %s: %s", cfg->cloud_user_data,
				   strerror(errno));
	if (!cfg->cloud_merge_keys_line)
		cfg->cloud_merge_keys = true;
	if (!cfg->cloud_user)
		cfg->cloud_user = xstrdup(pw && pw->pw_uid != 0 ? pw->pw_name : "vmlaunch");
	if (!config_valid_name(cfg->cloud_user, 32) || cfg->cloud_user[0] == '.' || !strcmp(cfg->cloud_user, "root"))
		return config_fail(p, cfg->cloud_user_line, "[cloud-init] user \"%s\": expected a user name other than root",
			    cfg->cloud_user);
	return 0;
}

static int finish_share(struct parse *p, struct share_config *s)
{
	struct stat st;

	if (!s->path_line)
		return config_fail(p, s->line, "[share %s]: missing key \"path\": expected path = HOST_DIRECTORY", s->name);
	if (stat(s->path, &st) < 0)
		return config_fail(p, s->path_line, "[share %s] path %s: %s; expected an existing directory", s->name, s->path,
			    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return config_fail(p, s->path_line, "[share %s] path %s: expected a directory", s->name, s->path);
	if (!s->readonly_line)
		s->readonly = true;
	if (!s->tag)
		s->tag = xstrdup(s->name);
	if (strlen(s->tag) > 36 || !config_valid_name(s->tag, 36))
		return config_fail(p, s->tag_line, "[share %s] tag \"%s\": expected 1 to 36 letters, digits, '_', '.' or '-'",
			    s->name, s->tag);
	if (!s->mount)
		s->mount = xasprintf("/mnt/%s", s->name);
	if (!valid_guest_path(s->mount))
		return config_fail(p, s->mount_line, "[share %s] mount \"%s\": expected an absolute guest path without blanks",
			    s->name, s->mount);
	for (struct share_config *o = p->cfg->shares; o < s; o++)
		if (!strcmp(o->tag, s->tag) || !strcmp(o->mount, s->mount))
			return config_fail(p, s->line, "[share %s]: same %s as [share %s]; expected each share its own", s->name,
				    strcmp(o->tag, s->tag) ? "mount" : "tag", o->name);
	return 0;
}

/* forward = tcp:[HOSTADDR:]HOSTPORT[+]-:GUESTPORT: qemu's hostfwd spelling, plus '+' for "or the first free port
 * after it". HOSTADDR defaults to 127.0.0.1: a forward is for this host unless it says otherwise. */
bool config_forward_parse(const char *f, struct net_forward *out)
{
	unsigned a = 127, b = 0, c = 0, d = 1, host, guest;
	const char *port;
	char *end;

	memset(out, 0, sizeof(*out));
	if (strncmp(f, "tcp:", 4) && strncmp(f, "udp:", 4))
		return false;
	out->udp = f[0] == 'u';
	f += 4;
	port = strchr(f, ':');
	if (port && port > f && port[-1] != '-') { /* an address before the port ("-:" separates the guest's) */
		int n = 0;

		if (sscanf(f, "%3u.%3u.%3u.%3u:%n", &a, &b, &c, &d, &n) != 4 || f + n != port + 1 || a > 255 || b > 255 ||
		    c > 255 || d > 255)
			return false;
		port++;
	} else {
		port = f;
	}
	if (port[0] < '0' || port[0] > '9')
		return false;
	host = (unsigned)strtoul(port, &end, 10);
	if (*end == '+') {
		out->first_free = true;
		end++;
	}
	if (strncmp(end, "-:", 2) || end[2] < '0' || end[2] > '9')
		return false;
	guest = (unsigned)strtoul(end + 2, &end, 10);
	if (*end || !host || host > 65535 || !guest || guest > 65535)
		return false;
	snprintf(out->addr, sizeof(out->addr), "%u.%u.%u.%u", a, b, c, d);
	out->host = host;
	out->guest = guest;
	return true;
}

static bool valid_forward(const char *f)
{
	struct net_forward parsed;

	return config_forward_parse(f, &parsed);
}

/* address = A.B.C.D/N (and gateway = A.B.C.D): the guest's side of a tap, which only the guest can set, through the
 * seed's network-config. */
static int check_static_address(struct parse *p, struct net_config *n)
{
	struct in_addr a;
	char ip[INET_ADDRSTRLEN];
	const char *slash = n->address ? strchr(n->address, '/') : NULL;
	char *end = NULL;
	unsigned long prefix;
	size_t len;

	if (n->gateway && !n->address)
		return config_fail(p, n->gateway_line, "[net %s] gateway: needs address = as well", n->name);
	if (!n->address)
		return 0;
	if (n->mode != NET_TAP)
		return config_fail(p, n->address_line,
				   "[net %s] address: goes with mode = tap (user mode's guest address is slirp's, by DHCP)",
				   n->name);
	if (!p->cfg->cloud_init_line)
		return config_fail(p, n->address_line,
				   "[net %s] address: needs a [cloud-init] section (the guest sets it from the seed's "
				   "network-config)",
				   n->name);
	prefix = slash ? strtoul(slash + 1, &end, 10) : 0;
	len = slash ? (size_t)(slash - n->address) : 0;
	if (len && len < sizeof(ip)) {
		memcpy(ip, n->address, len);
		ip[len] = '\0';
	}
	if (!len || len >= sizeof(ip) || !slash[1] || *end || prefix < 1 || prefix > 32 || inet_pton(AF_INET, ip, &a) != 1)
		return config_fail(p, n->address_line, "[net %s] address \"%s\": expected A.B.C.D/PREFIX (e.g. 192.168.1.20/24)",
				   n->name, n->address);
	if (n->gateway && inet_pton(AF_INET, n->gateway, &a) != 1)
		return config_fail(p, n->gateway_line, "[net %s] gateway \"%s\": expected an IPv4 address (e.g. 192.168.1.1)",
				   n->name, n->gateway);
	return 0;
}

static int finish_net(struct parse *p, struct net_config *n)
{
	for (size_t i = 0; i < n->forwards.n; i++)
		if (!valid_forward(n->forwards.v[i]))
			return config_fail(p, n->forwards_line,
				    "[net %s] forward \"%s\": expected tcp:[HOSTADDR:]HOSTPORT[+]-:GUESTPORT (e.g. "
				    "tcp:2222-:22, tcp:2222+-:22 for the first free port from 2222, or tcp:127.0.0.1:8080-:80)",
				    n->name, n->forwards.v[i]);
	if (n->mode != NET_USER && (n->forwards.n || n->restricted_line))
		return config_fail(p, n->forwards.n ? n->forwards_line : n->restricted_line,
			    "[net %s]: forward and restrict go with mode = user (a tap is on its bridge's network)", n->name);
	if (n->mode == NET_TAP && !n->bridge)
		return config_fail(p, n->line, "[net %s]: mode = tap needs bridge = BRIDGE (an existing bridge: ip link add BR type "
					"bridge)",
			    n->name);
	if (n->mode != NET_TAP && (n->bridge_line || n->tap_line))
		return config_fail(p, n->bridge_line ? n->bridge_line : n->tap_line, "[net %s]: bridge and tap go with mode = tap",
			    n->name);
	if ((n->bridge && (strlen(n->bridge) >= 16 || !config_valid_name(n->bridge, 15))) ||
	    (n->tap && (strlen(n->tap) >= 16 || !config_valid_name(n->tap, 15))))
		return config_fail(p, n->bridge && (strlen(n->bridge) >= 16 || !config_valid_name(n->bridge, 15)) ? n->bridge_line
												      : n->tap_line,
			    "[net %s]: expected an interface name of up to 15 letters, digits, '_', '.' or '-'", n->name);
	if (n->mac) {
		unsigned m[6];
		char tail;

		if (sscanf(n->mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &tail) != 6 ||
		    strlen(n->mac) != 17 || (m[0] & 1))
			return config_fail(p, n->mac_line, "[net %s] mac \"%s\": expected a unicast address like 52:54:00:12:34:56",
				    n->name, n->mac);
	}
	return check_static_address(p, n);
}

static int finish_tuning(struct parse *p)
{
	struct vm_config *cfg = p->cfg;

	if (cfg->pin == PIN_LIST && cfg->pin_cpus.n != cfg->cpus) {
		char *l = cpulist_format(cfg->pin_cpus.cpu, cfg->pin_cpus.n);

		config_fail(p, cfg->pin_line, "[cpu] pin \"%s\": names %zu host CPUs; expected one per vCPU (%u)", l,
		     cfg->pin_cpus.n, cfg->cpus);
		free(l);
		return -EINVAL;
	}
	if (cfg->pin != PIN_LIST && (cfg->pin_iothreads_line || cfg->pin_emulator_line))
		return config_fail(p, cfg->pin_iothreads_line ? cfg->pin_iothreads_line : cfg->pin_emulator_line,
			    "[cpu] iothreads and emulator go with pin = LIST; expected pin = host CPUs for the vCPUs");
	if (cfg->qemu_user && !getpwnam(cfg->qemu_user))
		return config_fail(p, cfg->qemu_user_line, "[qemu] user \"%s\": no such user", cfg->qemu_user);
	for (size_t i = 0; i < cfg->n_tiers; i++) {
		struct tier_config *t = &cfg->tiers[i];

		if (!t->backend_line)
			return config_fail(p, t->line, "[memory tier %s]: missing key \"backend\": expected backend = dram or file",
				    t->name);
		if (!t->size_line)
			return config_fail(p, t->line, "[memory tier %s]: missing key \"size\" (e.g. size = 1G)", t->name);
		if (t->size % (2ULL << 20))
			return config_fail(p, t->size_line, "[memory tier %s] size: expected a multiple of 2M", t->name);
		if (t->backend == TIER_FILE && !t->path_line)
			return config_fail(p, t->line, "[memory tier %s]: backend file needs path = (a DAX device, file or directory)",
				    t->name);
		if (t->backend == TIER_DRAM && t->path_line)
			return config_fail(p, t->path_line, "[memory tier %s] path: not used by backend dram", t->name);
	}
	return 0;
}

/* Without a kernel the firmware boots from a disk: one that vmlaunch makes empty (a RAM disk with no source =)
 * holds no boot loader, and SeaBIOS would wait at "No bootable device." for ever. A tap may boot over the network
 * (PXE), and [qemu] extra may add a boot device of its own. */
static int finish_nothing_to_boot(struct parse *p)
{
	const struct vm_config *cfg = p->cfg;

	if (cfg->kernel || cfg->qemu_extra.n)
		return 0;
	for (size_t i = 0; i < cfg->n_disks; i++) {
		const struct disk_config *d = &cfg->disks[i];
		bool made_empty = (d->backend == BACKEND_TMPFS || d->backend == BACKEND_ZRAM || d->backend == BACKEND_BRD) &&
				  !d->source;

		if (!made_empty)
			return 0;
	}
	for (size_t i = 0; i < cfg->n_nets; i++)
		if (cfg->nets[i].mode == NET_TAP)
			return 0;
	return config_fail(p, 0,
		    "nothing to boot: no [boot] kernel, and no disk with an operating system on it (%s); expected "
		    "[boot] kernel = bundled (the bundled guest), or a disk with path = IMAGE or source = IMAGE",
		    cfg->n_disks ? "a RAM disk without source = starts empty" : "no [disk] at all");
}

void config_check(struct parse *p)
{
	struct vm_config *cfg = p->cfg;

	/* Each check below reports and goes on: every mistake of a config is said in one run. */
	if (!config_vm_name_valid(cfg->name))
		config_fail(p, cfg->name_line,
		     "[vm] name \"%s\": expected 1 to %d letters, digits, '_', '.' or '-', not ending in .lock (it names "
		     "/run/vmlaunch/NAME)",
		     cfg->name, VM_NAME_MAX);
	if (cfg->memory < (16ULL << 20))
		config_fail(p, cfg->memory_line, "[vm] memory: expected at least 16M");
	if (!cfg->machine)
		cfg->machine = xstrdup("q35");
	if (strcmp(cfg->machine, "q35"))
		config_fail(p, cfg->machine_line, "[vm] machine \"%s\": expected q35 (the only machine vmlaunch tunes for)",
		     cfg->machine);
	if (cfg->kernel && access(cfg->kernel, R_OK) < 0)
		config_fail(p, cfg->kernel_line, "[boot] kernel %s: %s", cfg->kernel, strerror(errno));
	if (cfg->initrd && access(cfg->initrd, R_OK) < 0)
		config_fail(p, cfg->initrd_line, "[boot] initrd %s: %s", cfg->initrd, strerror(errno));
	if (!cfg->kernel && cfg->initrd_line)
		config_fail(p, cfg->initrd_line, "[boot] initrd: needs kernel = as well");
	if (!cfg->kernel && cfg->append_line)
		config_fail(p, cfg->append_line, "[boot] append: needs kernel = as well (firmware boot has no command line)");
	if (!cfg->qemu_binary)
		cfg->qemu_binary = xstrdup("qemu-system-x86_64");
	/* a path the config names is its own mistake (2); a name looked up in $PATH is the host's (host.c, 1) */
	if (cfg->qemu_binary_line && strchr(cfg->qemu_binary, '/') && access(cfg->qemu_binary, X_OK) < 0)
		config_fail(p, cfg->qemu_binary_line, "[qemu] binary %s: %s; expected an executable qemu-system-x86_64",
		     cfg->qemu_binary, strerror(errno));
	for (size_t i = 0; i < cfg->n_disks; i++)
		finish_disk(p, &cfg->disks[i]);
	finish_boot(p);
	finish_cloud_init(p);
	for (size_t i = 0; i < cfg->n_shares; i++)
		finish_share(p, &cfg->shares[i]);
	for (size_t i = 0; i < cfg->n_nets; i++)
		finish_net(p, &cfg->nets[i]);
	finish_tuning(p);
	if (!p->failed) /* a judgement on the whole config: said when its parts are right */
		finish_nothing_to_boot(p);
}
