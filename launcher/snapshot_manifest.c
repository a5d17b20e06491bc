/* A snapshot's manifest: written last at save, checked line by line before a restore uses anything else. */
#define _GNU_SOURCE
#include "snapshot_manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"
#include "journal.h"
#include "log.h"
#include "strv.h"

#define MANIFEST_HEADER "vmlaunch-snapshot 1"

char *snapshot_qemu_version(struct json_object *greeting)
{
	struct json_object *qmp, *version, *qemu, *package, *n[3];
	static const char *const keys[3] = { "major", "minor", "micro" };

	if (!greeting || !json_object_object_get_ex(greeting, "QMP", &qmp) ||
	    !json_object_object_get_ex(qmp, "version", &version) || !json_object_object_get_ex(version, "qemu", &qemu))
		return NULL;
	for (int i = 0; i < 3; i++)
		if (!json_object_object_get_ex(qemu, keys[i], &n[i]))
			return NULL;
	if (!json_object_object_get_ex(version, "package", &package))
		package = NULL;
	return xasprintf("%d.%d.%d%s%s%s", json_object_get_int(n[0]), json_object_get_int(n[1]),
			 json_object_get_int(n[2]), package ? " (" : "", package ? json_object_get_string(package) : "",
			 package ? ")" : "");
}

/* "SIZE MTIME INODE": what changes when a file is replaced or rewritten (digesting a kernel each run would cost
 * more than the restore). */
static char *file_identity(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return xasprintf("missing");
	return xasprintf("%lld %lld.%09ld %llu", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
			 st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
}

static void push_file(struct strv *lines, const char *kind, const char *path)
{
	char *id, *enc;

	if (!path)
		return;
	id = file_identity(path);
	enc = journal_encode(path);
	strv_pushf(lines, "%s %s %s", kind, enc, id);
	free(enc);
	free(id);
}

/* TEXT with every "KEY=VALUE," (NEEDLE; with a leading comma for image=) as "KEY=@DISK:NAME@," (allocated). */
static char *replace_all(const char *text, const char *needle, const char *key, const char *name)
{
	struct strv out = STRV_INIT;
	const char *at;
	char *joined;

	while ((at = strstr(text, needle))) {
		strv_pushf(&out, "%.*s%s%s=@DISK:%s@,", (int)(at - text), text, needle[0] == ',' ? "," : "", key, name);
		text = at + strlen(needle);
	}
	strv_push(&out, text);
	joined = strv_join(&out, "");
	strv_free(&out);
	return joined;
}

/* An argument as the manifest keeps it: the run's own parts (its state directory, the VM name qemu shows) replaced
 * by placeholders, so that runs under other names (concurrent ones) restore the same snapshot. */
static char *generic_arg(const struct plan *p, const char *prev, const char *arg)
{
	size_t sl = strlen(p->state_dir), nl = strlen(p->cfg->name);
	struct strv out = STRV_INIT;
	const char *at;
	char *joined;

	if (prev && !strcmp(prev, "-name") && !strncmp(arg, p->cfg->name, nl) && (arg[nl] == ',' || !arg[nl]))
		return xasprintf("@NAME@%s", arg + nl);
	/* shared memory: mapped shared while saving, privately when restored; the same machine */
	if (p->snapshot_ram && !strncmp(arg, "memory-backend-file,id=ram0,", 28) && strstr(arg, ",share=off")) {
		char *copy = xstrdup(arg), *at = strstr(copy, ",share=off");

		memcpy(at, ",share=on,", 10);
		memmove(at + 9, at + 10, strlen(at + 10) + 1);
		return copy;
	}
	while ((at = strstr(arg, p->state_dir))) {
		strv_pushf(&out, "%.*s@STATE@", (int)(at - arg), arg);
		arg = at + sl;
	}
	strv_push(&out, arg);
	joined = strv_join(&out, "");
	strv_free(&out);
	/* a device made per run (/dev/zramN; an LV named for the VM): the same disk under another name, when qemu
	 * gets it by path rather than as an fd */
	for (size_t i = 0; i < p->n_disks; i++) {
		const struct storage_target *t = p->disks[i].target;
		char *node = xasprintf("node-name=%s,", p->disks[i].node), *file = xasprintf("node-name=%s-file,", p->disks[i].node);
		char *needle = t->filename ? xasprintf("filename=%s,", t->filename) : NULL, *generic;

		if (t->driver == DRIVER_HOST_DEVICE && needle && (strstr(joined, node) || strstr(joined, file))) {
			generic = replace_all(joined, needle, "filename", p->disks[i].cfg->name);
			free(joined);
			joined = generic;
		}
		/* an ephemeral RBD image is named for the VM: vmlaunch-NAME-DISK */
		for (size_t k = 0; t->driver == DRIVER_RBD && strstr(joined, node) && k + 1 < t->driver_opts.n; k += 2)
			if (!strcmp(t->driver_opts.v[k], "image")) {
				char *image = xasprintf(",image=%s,", t->driver_opts.v[k + 1]);

				generic = replace_all(joined, image, "image", p->disks[i].cfg->name);
				free(joined);
				joined = generic;
				free(image);
			}
		free(node);
		free(file);
		free(needle);
	}
	return joined;
}

static int digest_path(const char *path, char hex[2 * SHA256_DIGEST_SIZE + 1], unsigned long long *size);

/* Everything the saved state depends on besides qemu's version, one line each, in a fixed order; `dir` holds the
 * frozen overlays of ephemeral disks, digested (they are small: what the guest wrote before the ready point). */
static void describe(struct strv *lines, const struct plan *p, const struct qemu_cmdline *c, const char *dir)
{
	const struct vm_config *cfg = p->cfg;

	push_file(lines, "qemu-binary", c->argv.v[0]);
	push_file(lines, "file", cfg->kernel);
	push_file(lines, "file", cfg->initrd);
	push_file(lines, "file", p->modules_image);
	if (p->uefi) {
		char hex[2 * SHA256_DIGEST_SIZE + 1], *vars = xasprintf("%s/" SNAPSHOT_UEFI_VARS, dir);
		unsigned long long size;

		push_file(lines, "file", p->uefi->code);
		if (digest_path(vars, hex, &size) < 0)
			strv_push(lines, "uefi-vars missing");
		else
			strv_pushf(lines, "uefi-vars %llu %s", size, hex);
		free(vars);
	}
	for (size_t i = 0; i < cfg->n_disks; i++)
		push_file(lines, "file", cfg->disks[i].path);
	for (size_t i = 0; i < p->n_disks; i++) {
		char hex[2 * SHA256_DIGEST_SIZE + 1], *frozen;
		unsigned long long size;
		struct stat st;

		if (!snapshot_disk_frozen(p->disks[i].cfg))
			continue;
		frozen = snapshot_frozen_path(dir, p->disks[i].cfg);
		/* a RAM disk's image is as large as the disk: by identity, as the RAM file below, not by digest */
		bool digested = p->disks[i].cfg->backend == BACKEND_FILE || p->disks[i].cfg->backend == BACKEND_RBD;

		if (!digested && stat(frozen, &st) == 0)
			strv_pushf(lines, "disk %s %lld %lld.%09ld %lld.%09ld %llu", p->disks[i].cfg->name,
				   (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
				   (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec, (unsigned long long)st.st_ino);
		else if (!digested || digest_path(frozen, hex, &size) < 0)
			strv_pushf(lines, "disk %s missing", p->disks[i].cfg->name);
		else
			strv_pushf(lines, "disk %s %llu %s", p->disks[i].cfg->name, size, hex);
		free(frozen);
	}
	if (p->snapshot_ram) {
		/* The RAM file by identity, not digest (that would cost what sharing it saves). With its ctime, which no
		 * one but root can set back: qemu's user owns the file, and any write by it changes the ctime. */
		struct stat st;

		if (stat(p->snapshot_ram, &st) < 0)
			strv_push(lines, "ram missing");
		else
			strv_pushf(lines, "ram %lld %lld.%09ld %lld.%09ld %llu", (long long)st.st_size,
				   (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec,
				   st.st_ctim.tv_nsec, (unsigned long long)st.st_ino);
	}
	for (size_t i = 0; i < c->argv.n; i++) {
		char *arg = generic_arg(p, i ? c->argv.v[i - 1] : NULL, c->argv.v[i]), *enc = journal_encode(arg);

		strv_pushf(lines, "arg %s", enc);
		free(enc);
		free(arg);
	}
}

/* SHA-256 of the open file, as hex, and its size. */
static int digest_file(int fd, char hex[2 * SHA256_DIGEST_SIZE + 1], unsigned long long *size)
{
	static char buf[1 << 20];
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256_ctx sha;
	ssize_t n;

	*size = 0;
	sha256_init(&sha);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		sha256_update(&sha, (size_t)n, (const uint8_t *)buf);
		*size += (unsigned long long)n;
	}
	sha256_digest(&sha, sizeof(digest), digest);
	for (size_t i = 0; i < sizeof(digest); i++)
		sprintf(hex + 2 * i, "%02x", digest[i]);
	return 0;
}

/* What a restored run must find as the save left it: an ephemeral file disk's overlay, and a tmpfs disk's whole
 * image (its source may have changed since; the guest's page cache remembers the saved one). */
bool snapshot_disk_frozen(const struct disk_config *d)
{
	switch (d->backend) {
	case BACKEND_FILE:
		return d->ephemeral && !d->readonly;
	case BACKEND_TMPFS:
	case BACKEND_ZRAM:
	case BACKEND_BRD:
	case BACKEND_LVM: /* ephemeral only: snapshot_supported refuses a persistent LV */
		return true;
	case BACKEND_RBD: /* a copy on the cluster, cloned per run (storage/rbd_snapshot.c) */
		return d->ephemeral;
	default:
		return false;
	}
}

char *snapshot_frozen_path(const char *dir, const struct disk_config *d)
{
	return xasprintf("%s/disk-%s.%s", dir, d->name,
			 d->backend == BACKEND_FILE ? "qcow2" : d->backend == BACKEND_RBD ? "rbd" : "raw");
}

static int digest_path(const char *path, char hex[2 * SHA256_DIGEST_SIZE + 1], unsigned long long *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	r = digest_file(fd, hex, size);
	close(fd);
	return r;
}

int snapshot_manifest_write(const char *dir, const struct plan *p, const struct qemu_cmdline *c,
			    const char *qemu_version)
{
	char *state = xasprintf("%s/" SNAPSHOT_STATE, dir), *path = xasprintf("%s/" SNAPSHOT_MANIFEST, dir), *text;
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	struct strv lines = STRV_INIT;
	unsigned long long size;
	int fd = -1, r;

	r = digest_path(state, hex, &size);
	if (r < 0) {
		log_errno(r, "cannot read %s", state);
		goto out;
	}
	strv_push(&lines, MANIFEST_HEADER);
	strv_pushf(&lines, "qemu-version %s", qemu_version);
	describe(&lines, p, c, dir);
	strv_pushf(&lines, "state %llu %s", size, hex);
	strv_push(&lines, "end"); /* a manifest cut short has no end line */
	text = strv_join(&lines, "\n");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = log_errno(errno, "cannot create %s", path);
		free(text);
		goto out;
	}
	r = fd_write_all(fd, text, strlen(text));
	if (!r)
		r = fd_write_all(fd, "\n", 1);
	if (!r && fsync(fd) < 0)
		r = -errno;
	free(text);
	if (r < 0)
		log_errno(r, "cannot write %s", path);
out:
	if (fd >= 0)
		close(fd);
	strv_free(&lines);
	free(state);
	free(path);
	return r;
}

/* The manifest's lines, without their newlines; NULL with errno set when it cannot be read. */
static char **read_lines(const char *path, size_t *n)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, **v = NULL;
	size_t cap = 0;
	ssize_t len;

	*n = 0;
	if (!f)
		return NULL;
	while ((len = getline(&line, &cap, f)) >= 0) {
		if (len && line[len - 1] == '\n')
			line[len - 1] = '\0';
		v = xrealloc(v, (*n + 2) * sizeof(*v));
		v[(*n)++] = xstrdup(line);
		v[*n] = NULL;
	}
	free(line);
	fclose(f);
	if (!v)
		v = xcalloc(1, sizeof(*v));
	return v;
}

static void free_lines(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Says which of the manifest's lines differs from this run's, in words a user can act on. */
static int mismatch(const char *dir, const char *saved, const char *now)
{
	const char *rebuild = "rebuild it with vmlaunch --snapshot CONF, or remove it";

	if (!strncmp(now, "arg ", 4)) {
		char *was = strncmp(saved, "arg ", 4) ? NULL : journal_decode(saved + 4), *is = journal_decode(now + 4);

		log_error("snapshot %s was saved for another qemu command line: \"%s\" there, \"%s\" now (%s)", dir,
			  was ? was : "(end of its command line)", is, rebuild);
		free(was);
		free(is);
	} else if (!strncmp(now, "disk ", 5)) {
		log_error("snapshot %s: a disk's frozen image differs from the one saved (%s there, %s now) (%s)", dir, saved,
			  now, rebuild);
	} else if (!strncmp(now, "uefi-vars ", 10)) {
		log_error("snapshot %s: its UEFI variable store (%s) differs from the one saved (%s there, %s now) (%s)", dir,
			  SNAPSHOT_UEFI_VARS, saved, now, rebuild);
	} else if (!strncmp(now, "ram ", 4)) {
		log_error("snapshot %s: its RAM file was changed or replaced since it was saved (%s there, %s now: size, "
			  "mtime, ctime, inode) (%s)", dir, saved, now, rebuild);
	} else if (!strncmp(now, "qemu-binary ", 12)) {
		log_error("snapshot %s was saved by another qemu binary (%s there, %s now) (%s)", dir, saved, now, rebuild);
	} else {
		log_error("snapshot %s: a file the VM reads changed since it was saved (%s there, %s now) (%s)", dir, saved,
			  now, rebuild);
	}
	return -EINVAL;
}

int snapshot_manifest_check(const char *dir, const struct plan *p, const struct qemu_cmdline *c, char **qemu_version)
{
	char *path = xasprintf("%s/" SNAPSHOT_MANIFEST, dir), *state = xasprintf("%s/" SNAPSHOT_STATE, dir);
	char hex[2 * SHA256_DIGEST_SIZE + 1], want_hex[2 * SHA256_DIGEST_SIZE + 1];
	struct strv now = STRV_INIT;
	unsigned long long size, want_size;
	size_t n = 0, k;
	char **saved = read_lines(path, &n);
	int r = 0;

	*qemu_version = NULL;
	if (!saved) {
		r = errno == ENOENT ? log_error("snapshot %s is incomplete: it has no %s (remove it, or rebuild it with "
						"vmlaunch --snapshot CONF)", dir, SNAPSHOT_MANIFEST)
				    : log_errno(errno, "cannot read %s", path);
		goto out;
	}
	if (n < 4 || strcmp(saved[0], MANIFEST_HEADER) || strncmp(saved[1], "qemu-version ", 13) ||
	    strcmp(saved[n - 1], "end")) {
		r = log_error("snapshot %s: %s is incomplete or not a vmlaunch snapshot manifest (rebuild it with vmlaunch "
			      "--snapshot CONF)", dir, path);
		goto out;
	}
	*qemu_version = xstrdup(saved[1] + 13);
	describe(&now, p, c, dir);
	for (k = 0; k < now.n; k++)
		if (2 + k >= n - 2 || strcmp(saved[2 + k], now.v[k])) {
			r = mismatch(dir, 2 + k < n - 2 ? saved[2 + k] : "(nothing)", now.v[k]);
			goto out;
		}
	if (2 + k != n - 2 || sscanf(saved[n - 2], "state %llu %64s", &want_size, want_hex) != 2) {
		r = mismatch(dir, saved[2 + k], "arg (end of this run's command line)");
		goto out;
	}
	/* The whole state is read once here, before qemu sees any of it: a torn or altered file is refused, never
	 * loaded (the read also brings it into the page cache qemu then reads it from). */
	r = digest_path(state, hex, &size);
	if (r < 0) {
		r = r == -ENOENT ? log_error("snapshot %s is incomplete: it has no %s", dir, SNAPSHOT_STATE)
				 : log_errno(r, "cannot read %s", state);
		goto out;
	}
	if (size != want_size || strcmp(hex, want_hex)) {
		r = log_error("snapshot %s is corrupt: %s has %llu bytes with SHA-256 %s, the manifest says %llu bytes with "
			      "%s (rebuild it with vmlaunch --snapshot CONF)",
			      dir, state, size, hex, want_size, want_hex);
		goto out;
	}
out:
	if (r < 0) {
		free(*qemu_version);
		*qemu_version = NULL;
	}
	strv_free(&now);
	free_lines(saved, n);
	free(path);
	free(state);
	return r;
}
