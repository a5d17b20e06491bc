/* The librados side of the rbd backend: a cluster connection for one image's spec, and its cephx key. */
#ifndef VMLAUNCH_RBD_CLUSTER_H
#define VMLAUNCH_RBD_CLUSTER_H

#include <rados/librados.h>

#include "config.h"

#define RBD_DEFAULT_CONF "/etc/ceph/ceph.conf"
#define RBD_DEFAULT_USER "admin"
/* What an image vmlaunch creates, clones or copies has: layering for clones, the rest for fast diffs and flattens */
#define RBD_FEATURES \
	(RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | \
	 RBD_FEATURE_DEEP_FLATTEN)

/* Everything needed to reach one image; what the rbd-remove undo carries in its one journal argument. */
struct rbd_spec {
	char *conf, *user;
	char *keyring; /* NULL: what the conf says */
	enum ms_mode ms_mode;
	char *pool;
	char *ns; /* NULL: the pool's default namespace */
	char *image;
};

void rbd_spec_free(struct rbd_spec *s);
const char *rbd_ms_mode_word(enum ms_mode m);
/* POOL/IMAGE or POOL/NAMESPACE/IMAGE. */
char *rbd_image_name(const char *pool, const char *ns, const char *image);
/* One "key=value" line each: what the rbd-remove undo carries. decode: 0, or -EINVAL without pool/image/conf/user. */
char *rbd_spec_encode(const struct rbd_spec *s);
int rbd_spec_decode(const char *text, struct rbd_spec *s);

/* A librados handle for the spec's user and conf, configured but not connected. On failure, *what names the step. */
int rbd_cluster_configure(const struct rbd_spec *s, rados_t *out, const char **what);
/* Configures and connects with vmlaunch's bounded timeouts; on failure *what names the step, the handle is gone. */
int rbd_cluster_connect(const struct rbd_spec *s, rados_t *out, const char **what);
int rbd_open_pool(rados_t c, const char *pool, const char *ns, rados_ioctx_t *io);
/* The cephx key librados would use for client.USER; *key NULL when the cluster asks for none. On failure *why says
 * what was looked at. */
int rbd_find_key(rados_t c, const char *user, char **key, char **why);

/* clone-from = POOL/IMAGE@SNAP or POOL/NAMESPACE/IMAGE@SNAP. */
struct rbd_parent {
	char *pool, *ns, *image, *snap;
};

/* The pool's context and the cluster connection, each when there is one (NULL: none). */
void rbd_disconnect(rados_t c, rados_ioctx_t io);
void rbd_parent_free(struct rbd_parent *p);
int rbd_parent_parse(const char *text, struct rbd_parent *p);
/* Clones parent (its protected snapshot) into `image` in io's pool, with vmlaunch's features. 0 or -errno (not
 * logged: the caller says which disk). */
int rbd_clone_parent(rados_t c, const struct rbd_parent *parent, rados_ioctx_t io, const char *image);

#endif
