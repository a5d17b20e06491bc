/* [share]: bind, socket and virtiofsd for one host directory; their undos are the state dir's and the process's. */
#define _GNU_SOURCE
#include "share.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "journal.h"
#include "log.h"
#include "state_dir.h"
#include "strv.h"

/* A read-only view of the directory: virtiofsd serves it, so no guest can write there, whatever it mounts. */
static int bind_read_only(const struct share_plan *s, struct journal *j)
{
	int r = state_dir_journal_dir(j, s->source);

	if (r == 0 && mkdir(s->source, 0700) < 0)
		r = log_errno(errno, "share \"%s\": cannot create %s", s->cfg->name, s->source);
	if (r == 0)
		r = state_dir_journal_mount(j, s->source);
	if (r == 0 && mount(s->cfg->path, s->source, NULL, MS_BIND, NULL) < 0)
		r = log_errno(errno, "share \"%s\": cannot bind %s", s->cfg->name, s->cfg->path);
	if (r == 0 && mount(NULL, s->source, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		r = log_errno(errno, "share \"%s\": cannot make %s read-only", s->cfg->name, s->source);
	return r;
}

int share_start(const struct share_plan *s, const char *virtiofsd, struct journal *j)
{
	struct strv argv = STRV_INIT;
	char *what = xasprintf("share \"%s\"", s->cfg->name), *log;
	int fd, r = s->cfg->readonly ? bind_read_only(s, j) : 0;
	pid_t pid;

	if (r < 0)
		goto out;
	fd = r = state_dir_listen(j, s->socket, what); /* virtiofsd --fd; qemu as another user gets a connection */
	if (r < 0)
		goto out;
	/* qemu 7.2's C virtiofsd: sandboxed in its own mount, pid and net namespaces by default */
	strv_push_many(&argv, virtiofsd, "--fd=3", "-o", NULL);
	{
		/* -o values are comma-separated options: a comma in the path is escaped for fuse_opt */
		char *escaped = xmalloc(strlen(s->source) * 2 + 1), *o = escaped;

		for (const char *c = s->source; *c; c++) {
			if (*c == ',' || *c == '\\')
				*o++ = '\\';
			*o++ = *c;
		}
		*o = '\0';
		strv_pushf(&argv, "source=%s", escaped);
		free(escaped);
	}
	strv_push_many(&argv, "-o", "cache=auto", "-o", "log_level=warn", NULL);
	log = xasprintf("%s.log", s->socket);
	pid = command_start(argv.v, &fd, 1, log, j, what);
	free(log);
	close(fd);
	r = pid < 0 ? (int)pid : 0;
	if (r == 0)
		log_info("share \"%s\": virtiofsd (pid %d) serves %s", s->cfg->name, (int)pid, s->source);
out:
	strv_free(&argv);
	free(what);
	return r;
}
