/* Taps through /dev/net/tun and rtnetlink (libmnl): no `ip` child, no shell. A tap whose fds are all closed vanishes
 * by itself; the journal's undo covers the moments before qemu holds them. */
#define _GNU_SOURCE
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "mnl_lib.h"
#include "strv.h"

unsigned tap_bridge_index(const char *bridge)
{
	char *path = xasprintf("/sys/class/net/%s/bridge", bridge);
	unsigned index = access(path, F_OK) == 0 ? if_nametoindex(bridge) : 0;

	free(path);
	return index;
}

/* One RTM_NEWLINK/RTM_DELLINK request on NAME, acknowledged; libmnl is loaded (mnl_lib_load). */
static int link_request(uint16_t type, const char *name, unsigned master, bool up)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_lib.mnl_socket_open(NETLINK_ROUTE);
	struct nlmsghdr *nlh = mnl_lib.mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	unsigned seq = (unsigned)time(NULL), portid;
	int r = 0;
	ssize_t n;

	if (!nl)
		return -errno;
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	ifm = mnl_lib.mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	if (up) {
		ifm->ifi_change = IFF_UP;
		ifm->ifi_flags = IFF_UP;
	}
	mnl_lib.mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (master)
		mnl_lib.mnl_attr_put_u32(nlh, IFLA_MASTER, master);
	if (mnl_lib.mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_lib.mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	portid = mnl_lib.mnl_socket_get_portid(nl);
	n = mnl_lib.mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		r = -errno;
	else if (mnl_lib.mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) < 0)
		r = -errno; /* the kernel's answer to the request */
out:
	mnl_lib.mnl_socket_close(nl);
	return r;
}

/* Only a tun/tap device is ever deleted: what the journal names must be one vmlaunch could have made. */
static int tap_remove_undo(const char *name, const char *state_dir)
{
	const char *why;
	char *flags;
	bool is_tap;
	int r;

	(void)state_dir;
	if (!*name || strlen(name) >= IFNAMSIZ || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return log_errno(EBADMSG, "journal: tap-remove of \"%s\": expected an interface name", name);
	flags = xasprintf("/sys/class/net/%s/tun_flags", name);
	is_tap = access(flags, F_OK) == 0;
	free(flags);
	if (!is_tap)
		return 0; /* gone with its last fd, or never made */
	if (mnl_lib_load(&why) < 0) {
		log_error("cannot remove tap %s: %s", name, why);
		return -ELIBACC;
	}
	r = link_request(RTM_DELLINK, name, 0, false);
	if (r < 0 && r != -ENODEV)
		return log_errno(r, "cannot remove tap %s", name);
	return 0;
}
JOURNAL_UNDO_VOLATILE(tap, "tap-remove", tap_remove_undo)

static int open_queue(const char *name, int *fd)
{
	struct ifreq ifr = { 0 };

	*fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(*fd, TUNSETIFF, &ifr) < 0) {
		int r = -errno;

		close(*fd);
		*fd = -1;
		return r;
	}
	return 0;
}

int tap_open(const struct net_plan *n, struct journal *j, int *fds, int *vhost_fds)
{
	const char *name = n->tap, *why;
	int r;

	/* vhost_fds has room only when vhost is on */
	for (unsigned i = 0; i < n->queues; i++) {
		fds[i] = -1;
		if (n->vhost)
			vhost_fds[i] = -1;
	}
	if (mnl_lib_load(&why) < 0) {
		log_error("net \"%s\": tap %s: %s", n->cfg->name, name, why);
		return -ELIBACC;
	}
	if (if_nametoindex(name))
		return log_errno(EEXIST, "net \"%s\": interface %s exists already (another VM's tap, or tap = names one in "
					 "use)",
				 n->cfg->name, name);
	r = journal_add(j, "tap-remove", name);
	for (unsigned i = 0; r == 0 && i < n->queues; i++) {
		r = open_queue(name, &fds[i]);
		if (r < 0)
			r = log_errno(r, "net \"%s\": cannot make tap %s (queue %u)", n->cfg->name, name, i);
	}
	for (unsigned i = 0; r == 0 && n->vhost && i < n->queues; i++) {
		vhost_fds[i] = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
		if (vhost_fds[i] < 0)
			r = log_errno(errno, "net \"%s\": cannot open /dev/vhost-net", n->cfg->name);
	}
	if (r == 0) {
		r = link_request(RTM_NEWLINK, name, n->bridge_index, true);
		if (r < 0)
			r = log_errno(r, "net \"%s\": cannot attach tap %s to bridge %s", n->cfg->name, name, n->cfg->bridge);
	}
	if (r == 0)
		log_info("net \"%s\": tap %s on bridge %s, %u queue(s)%s", n->cfg->name, name, n->cfg->bridge, n->queues,
			 n->vhost ? ", vhost-net" : "");
	return r;
}
