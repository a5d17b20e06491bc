/* The librados side of the rbd backend: reaching a cluster (conf, user, cephx key, msgr2 mode, bounded timeouts),
 * and the journal encoding of an image's whereabouts. */
#define _GNU_SOURCE
#include "rbd_cluster.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rbd_lib.h"
#include "strv.h"

/* librados waits 300 s for the monitors and forever for an OSD by default: a dead cluster must fail in seconds. Only
 * vmlaunch's own connection has these limits; qemu's keeps Ceph's defaults (an I/O stall beats an I/O error). */
#define RBD_MOUNT_TIMEOUT "10"
#define RBD_OP_TIMEOUT "30"

void rbd_spec_free(struct rbd_spec *s)
{
	free(s->conf);
	free(s->user);
	free(s->keyring);
	free(s->pool);
	free(s->ns);
	free(s->image);
	memset(s, 0, sizeof(*s));
}

const char *rbd_ms_mode_word(enum ms_mode m)
{
	return m == MS_MODE_SECURE ? "secure" : m == MS_MODE_CRC ? "crc" : "default";
}

char *rbd_image_name(const char *pool, const char *ns, const char *image)
{
	return ns ? xasprintf("%s/%s/%s", pool, ns, image) : xasprintf("%s/%s", pool, image);
}

/* One "key=value" line each; config values cannot hold a newline (the INI parser is line based). */
char *rbd_spec_encode(const struct rbd_spec *s)
{
	return xasprintf("pool=%s\n%s%s%simage=%s\nconf=%s\nuser=%s\n%s%s%sms-mode=%s", s->pool, s->ns ? "namespace=" : "",
			 s->ns ? s->ns : "", s->ns ? "\n" : "", s->image, s->conf, s->user, s->keyring ? "keyring=" : "",
			 s->keyring ? s->keyring : "", s->keyring ? "\n" : "", rbd_ms_mode_word(s->ms_mode));
}

int rbd_spec_decode(const char *text, struct rbd_spec *s)
{
	char *copy = xstrdup(text), *save = NULL;

	memset(s, 0, sizeof(*s));
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '='), **field = NULL;

		if (!eq)
			continue;
		*eq = '\0';
		if (!strcmp(line, "pool"))
			field = &s->pool;
		else if (!strcmp(line, "namespace"))
			field = &s->ns;
		else if (!strcmp(line, "image"))
			field = &s->image;
		else if (!strcmp(line, "conf"))
			field = &s->conf;
		else if (!strcmp(line, "user"))
			field = &s->user;
		else if (!strcmp(line, "keyring"))
			field = &s->keyring;
		else if (!strcmp(line, "ms-mode"))
			s->ms_mode = !strcmp(eq + 1, "secure") ? MS_MODE_SECURE
				     : !strcmp(eq + 1, "crc")  ? MS_MODE_CRC
							       : MS_MODE_DEFAULT;
		if (field) {
			free(*field);
			*field = xstrdup(eq + 1);
		}
	}
	free(copy);
	if (!s->pool || !s->image || !s->conf || !s->user) {
		rbd_spec_free(s);
		return -EINVAL;
	}
	return 0;
}

/* A librados handle for the spec's user and conf, configured but not connected. On failure, *what names the step. */
int rbd_cluster_configure(const struct rbd_spec *s, rados_t *out, const char **what)
{
	char *name = xasprintf("client.%s", s->user);
	int r;

	*out = NULL;
	/* Every use of librados and librbd starts here, so this is where they are loaded. */
	r = rbd_lib_load(what);
	if (r < 0) {
		free(name);
		return r;
	}
	r = rbd_lib.rados_create2(out, "ceph", name, 0);
	free(name);
	if (r < 0) {
		*out = NULL;
		*what = "cannot set up a librados client";
		return r;
	}
	r = rbd_lib.rados_conf_read_file(*out, s->conf);
	if (r < 0) {
		*what = "cannot read the Ceph configuration";
		goto fail;
	}
	*what = "cannot apply vmlaunch's client settings";
	/* vmlaunch's messages say what failed, once; librados's own lines would repeat it in other words */
	if ((r = rbd_lib.rados_conf_set(*out, "log_to_stderr", "false")) < 0 ||
	    (r = rbd_lib.rados_conf_set(*out, "err_to_stderr", "false")) < 0 ||
	    /* a short-lived control connection: no admin socket to collide with qemu's */
	    (r = rbd_lib.rados_conf_set(*out, "admin_socket", "")) < 0 ||
	    (r = rbd_lib.rados_conf_set(*out, "client_mount_timeout", RBD_MOUNT_TIMEOUT)) < 0 ||
	    (r = rbd_lib.rados_conf_set(*out, "rados_mon_op_timeout", RBD_MOUNT_TIMEOUT)) < 0 ||
	    (r = rbd_lib.rados_conf_set(*out, "rados_osd_op_timeout", RBD_OP_TIMEOUT)) < 0)
		goto fail;
	if (s->keyring && (r = rbd_lib.rados_conf_set(*out, "keyring", s->keyring)) < 0) {
		*what = "cannot use the keyring";
		goto fail;
	}
	/* There is no "ms_mode" in librados (that is krbd's map option): these two pick msgr2's mode per connection. */
	if (s->ms_mode != MS_MODE_DEFAULT &&
	    ((r = rbd_lib.rados_conf_set(*out, "ms_client_mode", rbd_ms_mode_word(s->ms_mode))) < 0 ||
	     (r = rbd_lib.rados_conf_set(*out, "ms_mon_client_mode", rbd_ms_mode_word(s->ms_mode))) < 0)) {
		*what = "cannot set the msgr2 mode";
		goto fail;
	}
	return 0;
fail:
	rbd_lib.rados_shutdown(*out);
	*out = NULL;
	return r;
}

static bool valid_base64(const char *s)
{
	size_t n = strlen(s);

	if (!n || n % 4)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '+' && *s != '/' && *s != '=')
			return false;
	return true;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* The "key = ..." of section [ENTITY] in a keyring file. 0 and *key, -ENOKEY when the file has no key for it. */
static int keyring_read(const char *path, const char *entity, char **key)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, *section = NULL;
	size_t cap = 0;
	int r = -ENOKEY;

	*key = NULL;
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *s = trim(line), *eq;

		if (*s == '[') {
			char *close = strchr(s, ']');

			free(section);
			section = close ? strndup(s + 1, (size_t)(close - s - 1)) : NULL;
			continue;
		}
		eq = strchr(s, '=');
		if (!section || strcmp(section, entity) || !eq)
			continue;
		*eq = '\0';
		if (strcmp(trim(s), "key"))
			continue;
		s = trim(eq + 1);
		if (*s == '"' && strlen(s) >= 2 && s[strlen(s) - 1] == '"') {
			s[strlen(s) - 1] = '\0';
			s++;
		}
		free(*key);
		*key = xstrdup(s);
		r = 0;
	}
	free(line);
	free(section);
	fclose(f);
	return r;
}

static int conf_get(rados_t c, const char *option, char *buf, size_t len)
{
	int r = rbd_lib.rados_conf_get(c, option, buf, len);

	if (r < 0)
		buf[0] = '\0';
	return r;
}

/*
 * The cephx key librados would use for client.USER, found the way librados finds it: the `key` option, then
 * `keyfile`, then the first file of the `keyring` list that exists. *key is NULL when the cluster does not ask
 * clients for cephx. On failure returns -errno and *why says what was looked at.
 */
int rbd_find_key(rados_t c, const char *user, char **key, char **why)
{
	char value[4096], *entity = xasprintf("client.%s", user), *list, *save = NULL;
	int r = -ENOENT;

	*key = NULL;
	*why = NULL;
	conf_get(c, "auth_client_required", value, sizeof(value));
	if (!strstr(value, "cephx")) {
		free(entity);
		return 0;
	}
	conf_get(c, "key", value, sizeof(value));
	if (*trim(value)) {
		*key = xstrdup(trim(value));
		goto check;
	}
	conf_get(c, "keyfile", value, sizeof(value));
	if (*trim(value)) {
		FILE *f = fopen(trim(value), "re");
		char buf[512] = "";

		if (!f || !fgets(buf, sizeof(buf), f)) {
			r = f ? -EIO : -errno;
			*why = xasprintf("cannot read keyfile %s", trim(value));
			if (f)
				fclose(f);
			free(entity);
			return r;
		}
		fclose(f);
		*key = xstrdup(trim(buf));
		goto check;
	}
	if (conf_get(c, "keyring", value, sizeof(value)) < 0) {
		free(entity);
		*why = xstrdup("cannot read the keyring option");
		return -EINVAL;
	}
	list = xstrdup(value);
	for (char *path = strtok_r(list, ",; \t", &save); path; path = strtok_r(NULL, ",; \t", &save)) {
		if (access(path, F_OK) < 0)
			continue;
		r = keyring_read(path, entity, key);
		if (r == -ENOKEY)
			*why = xasprintf("keyring %s has no key for %s", path, entity);
		else if (r < 0)
			*why = xasprintf("cannot read keyring %s", path);
		break;
	}
	free(list);
	if (r == -ENOENT && !*why)
		*why = xasprintf("no keyring for %s (looked for %s; expected keyring = PATH)", entity, value);
	if (r < 0) {
		free(entity);
		return r;
	}
check:
	free(entity);
	if (!valid_base64(*key)) {
		free(*key);
		*key = NULL;
		*why = xstrdup("the cephx key is not base64");
		return -EINVAL;
	}
	return 0;
}

/* Connects with vmlaunch's bounded timeouts. On failure *what names the step; the handle is shut down. */
int rbd_cluster_connect(const struct rbd_spec *s, rados_t *out, const char **what)
{
	int r = rbd_cluster_configure(s, out, what);

	if (r < 0)
		return r;
	r = rbd_lib.rados_connect(*out);
	if (r < 0) {
		*what = "cannot connect to the Ceph cluster";
		rbd_lib.rados_shutdown(*out);
		*out = NULL;
	}
	return r;
}

int rbd_open_pool(rados_t c, const char *pool, const char *ns, rados_ioctx_t *io)
{
	int r = rbd_lib.rados_ioctx_create(c, pool, io);

	if (r < 0)
		return r;
	if (ns)
		rbd_lib.rados_ioctx_set_namespace(*io, ns);
	return 0;
}

int rbd_clone_parent(rados_t c, const struct rbd_parent *parent, rados_ioctx_t io, const char *image)
{
	rados_ioctx_t pio;
	rbd_image_options_t opts;
	int r = rbd_open_pool(c, parent->pool, parent->ns, &pio);

	if (r < 0)
		return r;
	rbd_lib.rbd_image_options_create(&opts);
	rbd_lib.rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, RBD_FEATURES);
	r = rbd_lib.rbd_clone3(pio, parent->image, parent->snap, io, image, opts);
	rbd_lib.rbd_image_options_destroy(opts);
	rbd_lib.rados_ioctx_destroy(pio);
	return r;
}

void rbd_disconnect(rados_t c, rados_ioctx_t io)
{
	if (io)
		rbd_lib.rados_ioctx_destroy(io);
	if (c)
		rbd_lib.rados_shutdown(c);
}

void rbd_parent_free(struct rbd_parent *p)
{
	free(p->pool);
	free(p->ns);
	free(p->image);
	free(p->snap);
	memset(p, 0, sizeof(*p));
}

int rbd_parent_parse(const char *text, struct rbd_parent *p)
{
	char *copy = xstrdup(text), *at = strrchr(copy, '@'), *slash1 = strchr(copy, '/'), *slash2;

	memset(p, 0, sizeof(*p));
	if (!at || !slash1 || slash1 > at || !at[1] || slash1 == copy) {
		free(copy);
		return -EINVAL;
	}
	*at = '\0';
	*slash1 = '\0';
	slash2 = strchr(slash1 + 1, '/');
	if (slash2)
		*slash2 = '\0';
	p->pool = xstrdup(copy);
	p->ns = slash2 ? xstrdup(slash1 + 1) : NULL;
	p->image = xstrdup(slash2 ? slash2 + 1 : slash1 + 1);
	p->snap = xstrdup(at + 1);
	free(copy);
	if (!*p->image || (p->ns && !*p->ns) || strchr(p->image, '/')) {
		rbd_parent_free(p);
		return -EINVAL;
	}
	return 0;
}
