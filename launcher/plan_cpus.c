/* CPU placement: one host CPU per vCPU on one node, iothreads next, qemu's other threads on what is left. Pure. */
#define _GNU_SOURCE
#include "plan_cpus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strv.h"

static void list_push(struct cpulist *l, unsigned cpu)
{
	l->cpu = xrealloc(l->cpu, (l->n + 1) * sizeof(*l->cpu));
	l->cpu[l->n++] = cpu;
}

static void list_copy(struct cpulist *dst, const unsigned *cpus, size_t n)
{
	dst->cpu = xmalloc((n ? n : 1) * sizeof(*dst->cpu));
	memcpy(dst->cpu, cpus, n * sizeof(*cpus));
	dst->n = n;
}

/* One thread of every core first, SMT siblings after: vCPUs get whole cores while there are enough. */
static int by_core_then_cpu(const void *a, const void *b, void *topology)
{
	const struct topology *t = topology;
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	bool xs = x <= t->max_cpu && t->core_of[x] != x;
	bool ys = y <= t->max_cpu && t->core_of[y] != y;

	if (xs != ys)
		return xs ? 1 : -1;
	return x < y ? -1 : x > y;
}

static uint64_t node_memory(const struct vm_config *cfg, const struct topology_node *n)
{
	if (cfg->hugepages == HUGEPAGES_OFF)
		return n->mem_free;
	/* free hugepages plus what could still be reserved from free memory */
	return n->hp_free[cfg->hugepages == HUGEPAGES_1G ? HP_1G : HP_2M] *
		       hugepage_size_kib(cfg->hugepages == HUGEPAGES_1G ? HP_1G : HP_2M) * 1024 +
	       n->mem_free;
}

static const struct topology_node *find_node(const struct topology *t, unsigned id)
{
	for (size_t i = 0; i < t->n_nodes; i++)
		if (t->nodes[i].id == id)
			return &t->nodes[i];
	return NULL;
}

static const struct topology_node *node_of_cpu(const struct topology *t, unsigned cpu)
{
	for (size_t i = 0; i < t->n_nodes; i++)
		for (size_t k = 0; k < t->nodes[i].cpus.n; k++)
			if (t->nodes[i].cpus.cpu[k] == cpu)
				return &t->nodes[i];
	return NULL;
}

static void all_allowed(const struct topology *t, struct cpulist *out)
{
	for (size_t i = 0; i < t->n_nodes; i++)
		for (size_t k = 0; k < t->nodes[i].cpus.n; k++)
			list_push(out, t->nodes[i].cpus.cpu[k]);
}

static char *describe(const struct cpu_plan *p, const char *how)
{
	char *v = cpulist_format(p->vcpu.cpu, p->vcpu.n), *e = cpulist_format(p->emulator.cpu, p->emulator.n);
	char *io = xstrdup(""), *tmp, *why;

	for (size_t i = 0; i < p->n_iothreads; i++) {
		char *one = cpulist_format(p->iothread[i].cpu, p->iothread[i].n);

		tmp = xasprintf("%s%s%s", io, i ? " " : "", one);
		free(one);
		free(io);
		io = tmp;
	}
	why = xasprintf("%s: node %d; vCPUs on host CPUs %s (vCPU i on the i-th); iothreads on %s; emulator threads on %s",
			how, p->node, v, p->n_iothreads ? io : "-", e);
	free(v);
	free(e);
	free(io);
	return why;
}

static int plan_auto(const struct vm_config *cfg, const struct topology *t, struct cpu_plan *p)
{
	const struct topology_node *best = NULL;
	uint64_t need = cfg->memory;
	unsigned *order;
	size_t n, rest;
	int forced = cfg->host_node;

	for (size_t i = 0; i < t->n_nodes; i++) {
		const struct topology_node *n = &t->nodes[i];

		if (forced >= 0 && (int)n->id != forced)
			continue;
		if (n->cpus.n < cfg->cpus || node_memory(cfg, n) < need)
			continue;
		if (!best || n->cpus.n > best->cpus.n || (n->cpus.n == best->cpus.n && n->mem_free > best->mem_free))
			best = n;
	}
	if (!best) {
		p->pinned = false;
		p->node = forced;
		p->why = xasprintf("pin = auto: no host node%s has %u CPUs and the memory for %u vCPUs; not pinning, since "
				   "vCPUs would have to share CPUs",
				   forced >= 0 ? " (host-node)" : "", cfg->cpus, cfg->cpus);
		return 0;
	}
	p->pinned = true;
	p->node = (int)best->id;
	n = best->cpus.n;
	order = xmalloc(n * sizeof(*order));
	memcpy(order, best->cpus.cpu, n * sizeof(*order));
	qsort_r(order, n, sizeof(*order), by_core_then_cpu, (void *)t);
	list_copy(&p->vcpu, order, cfg->cpus);
	rest = n - cfg->cpus;
	for (size_t i = 0; i < p->n_iothreads; i++) {
		if (rest >= p->n_iothreads)
			list_push(&p->iothread[i], order[cfg->cpus + i]); /* each its own */
		else if (rest >= 1)
			list_push(&p->iothread[i], order[cfg->cpus]); /* all share one */
		else
			list_copy(&p->iothread[i], order, n); /* nothing left: they float over the node */
	}
	if (rest > p->n_iothreads)
		list_copy(&p->emulator, order + cfg->cpus + p->n_iothreads, rest - p->n_iothreads);
	else if (rest >= 1)
		list_copy(&p->emulator, order + cfg->cpus, rest); /* share the iothreads' CPUs */
	else
		list_copy(&p->emulator, order, n);
	free(order);
	p->why = describe(p, "pin = auto");
	return 0;
}

static int check_cpus(const struct vm_config *cfg, const struct topology *t, const char *key, unsigned line,
		      const struct cpulist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!node_of_cpu(t, l->cpu[i]))
			return log_error("%s: [cpu] %s: host CPU %u is not online or not allowed to vmlaunch",
					 config_at(cfg, line), key, l->cpu[i]);
	return 0;
}

static int plan_list(const struct vm_config *cfg, const struct topology *t, struct cpu_plan *p)
{
	struct cpulist io = { 0 }, all = { 0 };
	int r;

	list_copy(&p->vcpu, cfg->pin_cpus.cpu, cfg->pin_cpus.n);
	r = check_cpus(cfg, t, "pin", cfg->pin_line, &p->vcpu);
	if (r < 0)
		return r;
	if (cfg->pin_emulator.n) {
		list_copy(&p->emulator, cfg->pin_emulator.cpu, cfg->pin_emulator.n);
		r = check_cpus(cfg, t, "emulator", cfg->pin_emulator_line, &p->emulator);
		if (r < 0)
			return r;
	} else {
		/* every allowed CPU the vCPUs do not use, or all of them if they use every one */
		all_allowed(t, &all);
		for (size_t i = 0; i < all.n; i++) {
			bool used = false;

			for (size_t k = 0; k < p->vcpu.n; k++)
				used |= p->vcpu.cpu[k] == all.cpu[i];
			if (!used)
				list_push(&p->emulator, all.cpu[i]);
		}
		if (!p->emulator.n)
			list_copy(&p->emulator, all.cpu, all.n);
		cpulist_free(&all);
	}
	if (cfg->pin_iothreads.n) {
		list_copy(&io, cfg->pin_iothreads.cpu, cfg->pin_iothreads.n);
		r = check_cpus(cfg, t, "iothreads", cfg->pin_iothreads_line, &io);
		if (r == 0 && io.n != 1 && io.n != p->n_iothreads)
			r = log_error("%s: [cpu] iothreads: names %zu CPUs; expected 1 (shared) or one per disk (%zu)",
				      config_at(cfg, cfg->pin_iothreads_line), io.n, p->n_iothreads);
		for (size_t i = 0; r == 0 && i < p->n_iothreads; i++)
			list_push(&p->iothread[i], io.cpu[io.n == 1 ? 0 : i]);
		cpulist_free(&io);
		if (r < 0)
			return r;
	} else {
		for (size_t i = 0; i < p->n_iothreads; i++)
			list_copy(&p->iothread[i], p->emulator.cpu, p->emulator.n);
	}
	p->pinned = true;
	p->node = (int)node_of_cpu(t, p->vcpu.cpu[0])->id;
	if (cfg->host_node != HOST_NODE_AUTO)
		p->node = cfg->host_node;
	p->why = describe(p, "pin = list from the config");
	return 0;
}

int plan_cpus(const struct vm_config *cfg, const struct topology *t, size_t n_iothreads, struct cpu_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->node = -1;
	p->n_iothreads = n_iothreads;
	p->iothread = xcalloc(n_iothreads ? n_iothreads : 1, sizeof(*p->iothread));
	if (cfg->host_node != HOST_NODE_AUTO && !find_node(t, (unsigned)cfg->host_node))
		return log_error("%s: [memory] host-node %d: no such node on this host",
				 config_at(cfg, cfg->host_node_line), cfg->host_node);
	if (cfg->pin == PIN_OFF) {
		p->node = cfg->host_node;
		p->why = xstrdup("pin = off: qemu's threads run where the scheduler puts them");
		return 0;
	}
	if (cfg->pin == PIN_AUTO)
		return plan_auto(cfg, t, p);
	return plan_list(cfg, t, p);
}

void cpu_plan_free(struct cpu_plan *p)
{
	cpulist_free(&p->vcpu);
	cpulist_free(&p->emulator);
	for (size_t i = 0; i < p->n_iothreads; i++)
		cpulist_free(&p->iothread[i]);
	free(p->iothread);
	free(p->why);
	memset(p, 0, sizeof(*p));
}
