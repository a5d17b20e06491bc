/* Unprivileged image parsing: root's qemu-nbd serves bytes without parsing them, qemu-img as qemu's user decodes. */
#define _GNU_SOURCE
#include "image_convert.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"
#include "journal.h"
#include "log.h"
#include "privileges.h"
#include "source_view.h"
#include "strv.h"

/* One qemu-nbd export: the daemon and vmlaunch's connections to it, which qemu-img is handed. */
struct nbd_export {
	pid_t pid;
	int conn[2];
	size_t n_conn;
};

bool image_format_name_valid(const char *format)
{
	if (!*format)
		return false;
	for (const char *c = format; *c; c++)
		if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '_' && *c != '-')
			return false;
	return true;
}

static void export_close(struct nbd_export *e)
{
	for (size_t i = 0; i < e->n_conn; i++)
		if (e->conn[i] >= 0)
			close(e->conn[i]);
	e->n_conn = 0;
}

/* Ends a daemon that serves until killed (the read-only source), and reaps it. */
static void export_stop(struct nbd_export *e)
{
	export_close(e);
	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	e->pid = 0;
}

/* qemu-nbd on PATH (-f raw: its bytes, never a format's parser), listening on SB->dir/NAME.sock, which vmlaunch binds
 * 0600 (qemu's user cannot connect), hands over by socket activation, connects to n_conn times and unlinks. */
static int export_start(const struct populate_sandbox *sb, const char *name, const char *path, bool writable,
			bool direct, size_t n_conn, struct nbd_export *e)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char *sock = xasprintf("%s/%s.sock", sb->dir, name), *log = xasprintf("%s/populate-nbd.log", sb->dir), *what;
	struct strv argv = STRV_INIT;
	int lfd = -1, r;
	mode_t old;

	*e = (struct nbd_export){ .conn = { -1, -1 } };
	what = xasprintf("cannot serve %s to qemu-img", path);
	if (strlen(sock) >= sizeof(addr.sun_path)) {
		r = log_errno(ENAMETOOLONG, "%s: socket path %s", what, sock);
		goto out;
	}
	strcpy(addr.sun_path, sock);
	r = journal_add(sb->journal, "unlink", sock);
	if (r == 0)
		r = journal_add(sb->journal, "unlink", log);
	if (r < 0)
		goto out;
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		r = log_errno(errno, "%s: socket", what);
		goto out;
	}
	unlink(sock); /* a leftover of a killed run */
	old = umask(077);
	r = bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, (int)n_conn) < 0 ? -errno : 0;
	umask(old);
	if (r < 0) {
		r = log_errno(-r, "%s: cannot listen on %s", what, sock);
		goto out;
	}
	strv_push_many(&argv, "qemu-nbd", "--format=raw", NULL);
	if (!writable)
		strv_push(&argv, "--read-only");
	else
		strv_push(&argv, "--discard=unmap"); /* qemu-img's zero writes may punch holes, as zero_range does */
	/* on a block device the page cache would hold a second copy of the disk (RAM twice over for zram or brd) */
	if (direct)
		strv_push_many(&argv, "--cache=none", "--aio=native", NULL);
	/* several connections: served until killed; one: qemu-nbd exits (after flushing) when it closes */
	if (n_conn > 1)
		strv_pushf(&argv, "--shared=%zu", n_conn);
	if (n_conn > 1)
		strv_push(&argv, "--persistent");
	strv_push(&argv, path);
	e->pid = command_start_child(argv.v,
				     &(struct command_child){ .fds = &lfd, .n_fds = 1, .socket_activation = true,
							      .journal = sb->journal },
				     log, what);
	if (e->pid < 0) {
		r = (int)e->pid;
		e->pid = 0;
		goto out;
	}
	/* the listening socket exists: each connect is queued until qemu-nbd accepts it */
	for (; e->n_conn < n_conn; e->n_conn++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		e->conn[e->n_conn] = fd;
		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			r = log_errno(errno, "%s: cannot connect to %s", what, sock);
			e->n_conn++;
			break;
		}
	}
out:
	if (lfd >= 0)
		close(lfd);
	unlink(sock);
	if (r < 0)
		export_stop(e);
	strv_free(&argv);
	free(what);
	free(sock);
	free(log);
	return r;
}

/* qemu's JSON filename for FORMAT on an NBD connection that is the helper's fd FD; no backing file is ever opened. */
static char *nbd_json(const char *format, int fd, bool no_backing)
{
	return xasprintf("json:{\"driver\":\"%s\",%s\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"fd\",\"str\":"
			 "\"%d\"}}}",
			 format, no_backing ? "\"backing\":null," : "", fd);
}

/* The same for the source's read-only, idmapped view that is the helper's fd FD (source_view.c). */
static char *view_json(const char *format, int fd)
{
	return xasprintf("json:{\"driver\":\"%s\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":"
			 "\"/proc/self/fd/%d\"}}",
			 format, fd);
}

/* Another file the image names, which qemu-img would open: a backing file, a qcow2 external data file, a vmdk extent
 * elsewhere. NULL when there is none. */
static const char *external_file(struct json_object *info)
{
	struct json_object *v, *spec, *data, *extents;
	const char *self = "";

	/* an extent is elsewhere when it is not the image itself, as qemu names it */
	if (json_object_object_get_ex(info, "filename", &v))
		self = json_object_get_string(v);

	if (json_object_object_get_ex(info, "backing-filename", &v))
		return json_object_get_string(v);
	if (!json_object_object_get_ex(info, "format-specific", &spec) ||
	    !json_object_object_get_ex(spec, "data", &data))
		return NULL;
	if (json_object_object_get_ex(data, "data-file", &v))
		return json_object_get_string(v);
	if (json_object_object_get_ex(data, "extents", &extents) && json_object_is_type(extents, json_type_array))
		for (size_t i = 0; i < json_object_array_length(extents); i++)
			if (json_object_object_get_ex(json_object_array_get_idx(extents, i), "filename", &v) &&
			    strcmp(json_object_get_string(v), self))
				return json_object_get_string(v);
	return NULL;
}

/* With source-backing = allow, qemu-img opens the files itself, as qemu's user. */
#define ALLOW_HINT                                                                                                   \
	" (with source-backing = allow, qemu-img reads the image and the files it names as qemu's user: they must be " \
	"readable by it)"

/* qemu-img info as the unprivileged user: the virtual size, and a refusal of images that name other files. */
static int image_info(struct populate_source *src, const char *name, const int *fds, size_t n_fds,
		      const struct populate_sandbox *sb)
{
	struct json_object *info = NULL, *jsize;
	char *json = NULL, *what = xasprintf("cannot read the base image %s%s", src->path,
					     src->allow_external ? ALLOW_HINT : "");
	char *argv[] = { "qemu-img", "info", "--output=json", (char *)name, NULL };
	char *argv_fmt[] = { "qemu-img", "info", "--output=json", "-f", src->format, (char *)name, NULL };
	const char *other;
	int r;

	r = command_run_child(n_fds ? argv : argv_fmt,
			      &(struct command_child){ .fds = fds, .n_fds = n_fds, .as = sb->as, .journal = sb->journal },
			      &json, what);
	if (r != 0) {
		r = r < 0 ? r : -EIO;
		goto out;
	}
	info = json_tokener_parse(json);
	if (!info || !json_object_object_get_ex(info, "virtual-size", &jsize) || !json_object_is_type(jsize, json_type_int) ||
	    json_object_get_int64(jsize) < 0) {
		r = log_errno(EPROTO, "qemu-img info %s: unexpected output (no virtual-size)", src->path);
		goto out;
	}
	other = external_file(info);
	if (other && !src->allow_external) {
		r = log_error("base image %s names another file, %s; expected an image that stands alone (qemu-img "
			      "convert -O qcow2 flattens a chain) or source-backing = allow",
			      src->path, other);
		goto out;
	}
	src->virtual_size = (uint64_t)json_object_get_int64(jsize);
	r = 0;
out:
	json_object_put(info);
	free(json);
	free(what);
	return r;
}

/* How qemu-img reaches the source: by path, through a read-only view of it alone, or through an NBD export. */
struct source_access {
	char *name; /* qemu-img's filename for it: a path, or a json: filename on the helper's fd 3 */
	int view;   /* the view, or -1 */
	struct nbd_export nbd;
};

static int source_open(const struct populate_source *src, const struct populate_sandbox *sb, struct source_access *a)
{
	int r;

	if (src->allow_external) {
		/* the chain is followed by path, with qemu's user's rights: never root's */
		a->name = src->path[0] == '/' ? xstrdup(src->path) : xasprintf("./%s", src->path);
		return 0;
	}
	if (sb->as && sb->as->switch_user && (a->view = source_view_open(src->path, sb->as->uid, sb->as->gid)) >= 0) {
		/* The fast way: qemu-img reads the file itself, through a read-only mount of it alone in which it is
		 * qemu's user's file. NBD costs ~5 times the CPU of reading the file (tests/bench/README.md). */
		a->name = view_json(src->format, 3);
		return 0;
	}
	/* two connections: one for qemu-img info, one for the convert */
	r = export_start(sb, "populate-source", src->path, false, false, 2, &a->nbd);
	if (r < 0)
		return r;
	a->name = nbd_json(src->format, 3, true);
	return 0;
}

static void source_close(struct source_access *a)
{
	if (a->view >= 0)
		close(a->view);
	export_stop(&a->nbd);
	free(a->name);
}

/* qemu-img convert FROM (the helper's fds[0] when there are two) onto the target's export OUT (its last fd), then
 * waits for OUT's server, which exits once qemu-img's connection is closed, after flushing the disk. */
static int convert_onto(const struct populate_source *src, const struct populate_target *dst,
			const struct populate_sandbox *sb, const char *from, const int *fds, size_t n_fds,
			struct nbd_export *out)
{
	struct strv argv = STRV_INIT;
	char *to, *what;
	int status, r;

	to = xasprintf("json:{\"driver\":\"raw\",\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"fd\",\"str\":\"%zu\"}}}",
		       2 + n_fds);
	/* -n: the target exists and keeps its size. -W: out-of-order writes, -m 8: eight requests in flight; a raw
	 * target does not care about write order. */
	strv_push_many(&argv, "qemu-img", "convert", "-n", "-O", "raw", "-W", "-m", "8", NULL);
	if (src->allow_external)
		strv_push_many(&argv, "-f", src->format, NULL);
	/* --target-is-zero only when it is true: on a target holding old data qemu-img must write zeros where the
	 * image has none, and without the flag it does */
	if (dst->zeroed)
		strv_push(&argv, "--target-is-zero");
	strv_push_many(&argv, from, to, NULL);
	what = xasprintf("cannot convert %s onto %s%s", src->path, dst->path, src->allow_external ? ALLOW_HINT : "");
	r = command_run_child(argv.v,
			      &(struct command_child){ .fds = fds, .n_fds = n_fds, .as = sb->as, .journal = sb->journal },
			      NULL, what);
	r = r > 0 ? -EIO : r;
	export_close(out);
	if (r < 0)
		kill(out->pid, SIGTERM);
	while (waitpid(out->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status)))
		r = log_errno(EIO, "%s: qemu-nbd failed (see %s/populate-nbd.log)", what, sb->dir);
	out->pid = 0;
	strv_free(&argv);
	free(to);
	free(what);
	return r;
}

int image_convert(struct populate_source *src, const struct convert_target *t, const struct populate_sandbox *sb)
{
	const struct populate_target *dst = t->dst;
	struct source_access in = { .view = -1, .nbd = { .conn = { -1, -1 } } };
	struct nbd_export out = { .conn = { -1, -1 } };
	int fds[2], r;
	size_t n_fds = 0;

	if (!image_format_name_valid(src->format))
		return log_error("base image %s: format \"%s\": expected a qemu-img format name such as qcow2", src->path,
				 src->format);
	r = source_open(src, sb, &in);
	if (r < 0)
		goto done;
	if (in.view >= 0)
		r = image_info(src, in.name, &in.view, 1, sb);
	else
		r = image_info(src, in.name, in.nbd.conn, in.nbd.n_conn ? 1 : 0, sb);
	if (r < 0)
		goto done;
	if (src->virtual_size > dst->size) {
		r = log_error("cannot populate %s from %s: the image's virtual size (%" PRIu64 " bytes) is larger than the "
			      "disk (%" PRIu64 " bytes); make the disk at least as large as the image",
			      dst->path, src->path, src->virtual_size, dst->size);
		goto done;
	}
	r = export_start(sb, "populate-target", dst->path, true, t->blockdev && t->direct, 1, &out);
	if (r < 0)
		goto done;
	if (in.view >= 0)
		fds[n_fds++] = in.view;
	else if (in.nbd.n_conn)
		fds[n_fds++] = in.nbd.conn[1];
	fds[n_fds++] = out.conn[0];
	r = convert_onto(src, dst, sb, in.name, fds, n_fds, &out);
done:
	export_stop(&out);
	source_close(&in);
	return r;
}
