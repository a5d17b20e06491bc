/* [share]: bind, socket and virtiofsd for one host directory; their undos are the state dir's and the process's. */
#define _GNU_SOURCE
#include "share.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "command.h"
#include "journal.h"
#include "log.h"
#include "privileges.h"
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

/* vmlaunch listens, so the socket exists before qemu connects, and virtiofsd gets it as an fd (--fd). */
static int listen_socket(const struct share_plan *s, const struct privileges *pv, struct journal *j)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, r = state_dir_journal_file(j, s->socket);

	if (r < 0)
		return r;
	if (strlen(s->socket) >= sizeof(addr.sun_path))
		return log_errno(ENAMETOOLONG, "share \"%s\": socket path %s", s->cfg->name, s->socket);
	strcpy(addr.sun_path, s->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_errno(errno, "socket");
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
		r = log_errno(errno, "share \"%s\": cannot listen on %s", s->cfg->name, s->socket);
		close(fd);
		return r;
	}
	(void)pv; /* qemu as another user is handed a connection to the socket (run.c), never its path */
	return fd;
}

int share_start(const struct share_plan *s, const char *virtiofsd, const struct privileges *pv, struct journal *j)
{
	struct strv argv = STRV_INIT;
	char *what = xasprintf("share \"%s\"", s->cfg->name), *log;
	int fd, r = s->cfg->readonly ? bind_read_only(s, j) : 0;
	pid_t pid;

	if (r < 0)
		goto out;
	fd = r = listen_socket(s, pv, j);
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
