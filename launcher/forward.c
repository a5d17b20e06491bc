/* The host side of user-mode forwards, checked before anything is made: a port already taken is said now (qemu
 * would only fail after the disks were set up), and HOSTPORT+ takes the first free port from HOSTPORT. */
#define _GNU_SOURCE
#include "forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define FIRST_FREE_TRIES 100

/* Whether ADDR:PORT can be bound now, as slirp binds it (SO_REUSEADDR: a port in TIME_WAIT counts as free). */
static int try_bind(const struct net_forward *f, unsigned port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, one = 1, r = 0;

	if (inet_pton(AF_INET, f->addr, &addr.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, (f->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int resolve_one(struct plan *p, const struct net_plan *n, struct net_forward *f)
{
	const struct net_config *nc = n->cfg;
	unsigned first = f->host, last = f->first_free ? first + FIRST_FREE_TRIES - 1 : first;
	int r = -EADDRINUSE;

	if (last > 65535)
		last = 65535;
	for (unsigned port = first; port <= last; port++) {
		r = try_bind(f, port);
		if (r == -EADDRINUSE)
			continue;
		if (r < 0)
			return log_errno(r, "%s: [net %s] forward %s:%s:%u-:%u: cannot bind %s:%u",
					 config_at(p->cfg, nc->forwards_line), nc->name, f->udp ? "udp" : "tcp",
					 f->addr, port, f->guest, f->addr, port);
		f->host = port;
		if (p->ssh_forward == f)
			p->ssh_port = port;
		if (f->first_free)
			fprintf(stderr, "vmlaunch: %s: [net %s] forward %s %s:%u to the guest's port %u%s\n", p->cfg->name,
				nc->name, f->udp ? "udp" : "tcp", f->addr, port, f->guest,
				port == first ? "" : " (the ports before it are in use)");
		return 0;
	}
	if (f->first_free)
		log_error("%s: [net %s] forward: ports %u to %u on %s are all in use",
			  config_at(p->cfg, nc->forwards_line), nc->name, first, last, f->addr);
	else
		log_error("%s: [net %s] forward %s:%s:%u-:%u: port %u on %s is in use (another VM or service has it; "
			  "write %s:%u+-:%u for the first free port from %u)",
			  config_at(p->cfg, nc->forwards_line), nc->name, f->udp ? "udp" : "tcp", f->addr, first,
			  f->guest, first, f->addr, f->udp ? "udp" : "tcp", first, f->guest, first);
	return -EADDRINUSE;
}

int forward_resolve(struct plan *p)
{
	for (size_t i = 0; i < p->n_nets; i++)
		for (size_t k = 0; k < p->nets[i].n_forwards; k++) {
			int r = resolve_one(p, &p->nets[i], &p->nets[i].forwards[k]);

			if (r < 0)
				return r;
		}
	return 0;
}
