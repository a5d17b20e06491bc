/* A config file as a checked struct vm_config: read with --set on top (config.c), then judged as a whole
 * (config_check.c). */
#include <errno.h>

#include "config.h"
#include "config_parse.h"

int config_load(const char *file, const struct strv *sets, struct vm_config *cfg)
{
	struct parse p = { .cfg = cfg, .where = file };
	int r = config_read(&p, file, sets);

	if (r == 0)
		config_check(&p);
	config_parse_free(&p);
	return r < 0 ? r : p.failed ? -EINVAL : 0;
}
