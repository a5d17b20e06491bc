/* The config file (INI, parsed by libinih) as a validated, typed struct vm_config; every error names file:line. */
#ifndef VMLAUNCH_CONFIG_H
#define VMLAUNCH_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "config_types.h"
#include "config_values.h"

/* "FILE:LINE", or "FILE (from --set)" for a value --set gave: where a message points. Valid until the next four
 * calls (a small ring of buffers, for a message that names two places). */
const char *config_at(const struct vm_config *cfg, unsigned line);

/* Parses and validates FILE, then applies each "section.key=value" of `sets` (--set) on top.
 * Returns 0, or -EINVAL after printing one "vmlaunch: FILE:LINE: ..." message; -errno if FILE cannot be read. */
int config_load(const char *file, const struct strv *sets, struct vm_config *out);
void config_free(struct vm_config *cfg);

const char *backend_kind_name(enum backend_kind b);

/* Every key the parser accepts, from its own table, for the documentation test: "section.key" ("disk.size" for
 * [disk NAME] size), NULL-terminated. */
const char *const *config_known_keys(void);
/* Whether NAME can name a VM: it becomes /run/vmlaunch/NAME, beside NAME.lock. */
bool config_vm_name_valid(const char *name);
/* One forward = (config_forward_parse): HOSTADDR made explicit (127.0.0.1 unless written). */
struct net_forward {
	bool udp;
	char addr[16];
	unsigned host, guest;
	bool first_free; /* HOSTPORT+: that port or the first free one after it, chosen at launch */
};

bool config_forward_parse(const char *text, struct net_forward *out);

#endif
