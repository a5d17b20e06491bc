/* The NoCloud seed: cloud-init finds a vfat volume labelled CIDATA and reads meta-data, user-data and, for a static
 * address, network-config from it. */
#define _GNU_SOURCE
#include "cloud_init.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "fdio.h"
#include "log.h"
#include "state_dir.h"
#include "strv.h"

/* A YAML double-quoted scalar: keys carry comments that may hold ':' or '#'. */
static char *yaml_quote(const char *s)
{
	char *out = xmalloc(strlen(s) * 2 + 3), *o = out;

	*o++ = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

/* FNV-1a: the instance-id changes whenever the user-data does (so cloud-init applies new keys to a kept disk), and
 * the MIME boundary starts from the file it separates. */
static unsigned long long digest(const char *s)
{
	unsigned long long h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Appends "INDENT- KEY" for each key, YAML-quoted. */
static char *append_keys(char *text, const struct strv *keys, const char *indent)
{
	for (size_t i = 0; i < keys->n; i++) {
		char *q = yaml_quote(keys->v[i]), *more = xasprintf("%s%s- %s\n", text, indent, q);

		free(q);
		free(text);
		text = more;
	}
	return text;
}

char *cloud_init_user_data(const struct vm_config *cfg, const struct strv *keys)
{
	char *text = xasprintf("#cloud-config\n# written by vmlaunch for VM %s\nusers:\n  - default\n  - name: %s\n"
			       "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    shell: /bin/bash\n    lock_passwd: true\n",
			       cfg->name, cfg->cloud_user), *more;

	if (keys->n) {
		more = xasprintf("%s    ssh_authorized_keys:\n", text);
		free(text);
		text = more;
	}
	text = append_keys(text, keys, "      ");
	if (cfg->n_shares) {
		more = xasprintf("%smounts:\n", text);
		free(text);
		text = more;
	}
	for (size_t i = 0; i < cfg->n_shares; i++) {
		const struct share_config *s = &cfg->shares[i];

		more = xasprintf("%s  - [ %s, %s, virtiofs, \"%s,nofail\", \"0\", \"0\" ]\n", text, s->tag, s->mount,
				 s->readonly ? "ro" : "rw");
		free(text);
		text = more;
	}
	return text;
}

/* cloud-init merges cloud-config parts in order, by each part's Merge-Type header (default dict(replace)+list()+str(),
 * cloudinit/handlers/cloud_config.py): ours comes second and asks for lists to be appended, keys not replaced, so
 * the file's own ssh_authorized_keys and everything else in it stay as written. No YAML is parsed here. */
#define KEYS_MERGE_TYPE "dict(recurse_array,no_replace)+list(append)"

char *cloud_init_merge_user_data(const char *file_text, const struct strv *keys)
{
	char *boundary = NULL, *keys_part, *out;
	unsigned long long h;

	if (!keys->n || strncmp(file_text, "#cloud-config", 13) || (file_text[13] != '\n' && file_text[13] != '\r'))
		return NULL;
	keys_part = append_keys(xstrdup("#cloud-config\nssh_authorized_keys:\n"), keys, "  ");
	/* a boundary that occurs in neither part (RFC 2046) */
	h = digest(file_text);
	do {
		free(boundary);
		boundary = xasprintf("==vmlaunch-%016llx==", h++);
	} while (strstr(file_text, boundary) || strstr(keys_part, boundary));
	out = xasprintf("Content-Type: multipart/mixed; boundary=\"%s\"\nMIME-Version: 1.0\n\n"
			"--%s\nContent-Type: text/cloud-config; charset=\"utf-8\"\nMIME-Version: 1.0\n"
			"Content-Disposition: attachment; filename=\"user-data\"\n\n%s%s"
			"--%s\nContent-Type: text/cloud-config; charset=\"utf-8\"\nMIME-Version: 1.0\n"
			"Merge-Type: " KEYS_MERGE_TYPE "\nContent-Disposition: attachment; filename=\"vmlaunch-keys\"\n\n%s"
			"--%s--\n",
			boundary, boundary, file_text, file_text[0] && file_text[strlen(file_text) - 1] != '\n' ? "\n" : "",
			boundary, keys_part, boundary);
	free(boundary);
	free(keys_part);
	return out;
}

static int write_text(struct journal *j, const char *path, const char *text)
{
	int fd, r = state_dir_journal_file(j, path);

	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(errno, "cannot create %s", path);
	r = fd_write_all(fd, text, strlen(text));
	if (close(fd) < 0 && !r)
		r = -errno;
	return r < 0 ? log_errno(r, "cannot write %s", path) : 0;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t len = 0;
	FILE *m;
	char buf[8192];
	size_t n;

	if (!f)
		return NULL;
	m = open_memstream(&text, &len);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, m);
	fclose(m);
	fclose(f);
	return text;
}

char *cloud_init_network_config(const struct plan *p)
{
	struct strv lines = STRV_INIT;
	bool any = false;
	char *text;

	strv_push(&lines, "version: 2\nethernets:\n");
	for (size_t i = 0; i < p->n_nets; i++) {
		const struct net_plan *np = &p->nets[i];
		const struct net_config *n = np->cfg;

		if (n->mode == NET_NONE)
			continue;
		strv_pushf(&lines, "  %s:\n    match:\n      macaddress: \"%s\"\n", n->name, np->mac);
		if (!n->address) {
			strv_push(&lines, "    dhcp4: true\n");
			continue;
		}
		any = true;
		strv_pushf(&lines, "    addresses: [\"%s\"]\n", n->address);
		if (n->gateway)
			strv_pushf(&lines, "    routes:\n      - to: 0.0.0.0/0\n        via: \"%s\"\n", n->gateway);
	}
	text = any ? strv_join(&lines, "") : NULL;
	strv_free(&lines);
	return text;
}


int cloud_init_make_seed(const struct plan *p, struct journal *j)
{
	const struct vm_config *cfg = p->cfg;
	const struct strv *keys = &cfg->cloud_key_lines; /* read and checked when the config was loaded */
	char *user_data = NULL, *meta = NULL, *ud_path = state_file(p->state_dir, "user-data");
	char *md_path = state_file(p->state_dir, "meta-data"), *what = xasprintf("cloud-init seed %s", p->seed);
	char *network = cloud_init_network_config(p), *nc_path = state_file(p->state_dir, "network-config");
	int r = 0;

	if (cfg->cloud_user_data && !(user_data = read_all(cfg->cloud_user_data)))
		r = log_errno(errno, "cannot read %s", cfg->cloud_user_data);
	if (r == 0 && user_data && cfg->cloud_merge_keys) {
		char *merged = cloud_init_merge_user_data(user_data, keys);

		if (merged) {
			free(user_data);
			user_data = merged;
		}
	}
	if (r == 0 && !user_data)
		user_data = cloud_init_user_data(cfg, keys);
	if (r == 0) {
		meta = xasprintf("instance-id: vmlaunch-%s-%016llx\nlocal-hostname: %s\n", cfg->name, digest(user_data),
				 cfg->name);
		r = write_text(j, ud_path, user_data);
	}
	if (r == 0)
		r = write_text(j, md_path, meta);
	if (r == 0 && network)
		r = write_text(j, nc_path, network);
	if (r == 0)
		r = state_dir_journal_file(j, p->seed);
	if (r == 0)
		r = command_must((char *[]){ "mkfs.vfat", "-n", "CIDATA", "-C", p->seed, "1024", NULL }, what);
	if (r == 0) {
		/* mtools refuses an image whose geometry it does not like unless told not to check */
		setenv("MTOOLS_SKIP_CHECK", "1", 1);
		r = command_must((char *[]){ "mcopy", "-o", "-i", p->seed, ud_path, md_path, network ? nc_path : "::",
					     network ? "::" : NULL, NULL },
				 what);
	}
	free(user_data);
	free(meta);
	free(ud_path);
	free(md_path);
	free(network);
	free(nc_path);
	free(what);
	return r;
}
