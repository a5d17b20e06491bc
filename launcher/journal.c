/* Persistent undo log: what was acquired, in order, so any exit — clean, failed or after a crash — can undo it. */
#define _GNU_SOURCE
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "strv.h"
#include "test_hook.h"

#define JOURNAL_FILE "journal"

static struct journal_undo *undos;

void journal_register(struct journal_undo *u)
{
	u->next = undos;
	undos = u;
}

char *journal_encode(const char *arg)
{
	char *out = xmalloc(strlen(arg) * 3 + 1), *o = out;

	for (const unsigned char *s = (const unsigned char *)arg; *s; s++) {
		if (*s <= ' ' || *s == '%' || *s >= 0x7f)
			o += sprintf(o, "%%%02X", *s);
		else
			*o++ = (char)*s;
	}
	*o = '\0';
	return out;
}

char *journal_decode(const char *enc)
{
	char *out = xmalloc(strlen(enc) + 1), *o = out;

	for (const char *s = enc; *s; s++) {
		unsigned v;

		if (*s == '%' && sscanf(s + 1, "%2X", &v) == 1 && v) {
			*o++ = (char)v;
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

int journal_create(struct journal *j, const char *state_dir)
{
	j->path = xasprintf("%s/" JOURNAL_FILE, state_dir);
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		int r = log_errno(errno, "cannot create %s", j->path);

		free(j->path);
		j->path = NULL;
		return r;
	}
	return 0;
}

/* Unknown verbs are durable: the safe side. An fdatasync of a later durable record covers the earlier ones too (one
 * file), so the order on disk is never broken. */
static bool verb_durable(const char *verb)
{
	for (const struct journal_undo *u = undos; u; u = u->next)
		if (!strcmp(verb, u->verb))
			return u->durable;
	return true;
}

int journal_add(struct journal *j, const char *verb, const char *arg)
{
	char *enc = journal_encode(arg), *line = xasprintf("%s %s\n", verb, enc);
	size_t len = strlen(line);
	ssize_t n = write(j->fd, line, len);
	int r = 0;

	if (n != (ssize_t)len)
		r = log_errno(n < 0 ? errno : EIO, "cannot write %s", j->path);
	else if (verb_durable(verb) && fdatasync(j->fd) < 0)
		r = log_errno(errno, "cannot sync %s", j->path);
	free(enc);
	free(line);
	return r;
}

static int undo_one(const char *verb, const char *arg, const char *state_dir)
{
	for (const struct journal_undo *u = undos; u; u = u->next)
		if (!strcmp(verb, u->verb))
			return u->undo(arg, state_dir);
	return log_errno(EBADMSG, "journal: unknown undo \"%s\" (written by a newer vmlaunch?)", verb);
}

int journal_replay(const char *state_dir)
{
	char *path = xasprintf("%s/" JOURNAL_FILE, state_dir);
	/* never a symlink planted in place of the journal */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	struct strv lines = STRV_INIT;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int first_error = 0;

	if (!f) {
		first_error = errno == ENOENT ? 0 : log_errno(errno, "cannot read %s", path);
		if (fd >= 0)
			close(fd);
		free(path);
		return first_error;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n')
			break; /* torn last write: that step never completed its record, so nothing to undo */
		line[len - 1] = '\0';
		strv_push(&lines, line);
	}
	free(line);
	fclose(f);
	for (size_t i = lines.n; i-- > 0;) {
		char *sp = strchr(lines.v[i], ' '), *arg;
		int r;

		if (!sp) {
			r = log_errno(EBADMSG, "%s: malformed record \"%s\"", path, lines.v[i]);
		} else {
			*sp = '\0';
			arg = journal_decode(sp + 1);
			r = undo_one(lines.v[i], arg, state_dir);
			free(arg);
		}
		if (i == lines.n - 1)
			test_hook_stop_at("teardown");
		if (r < 0 && !first_error)
			first_error = r;
	}
	strv_free(&lines);
	free(path);
	return first_error;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	free(j->path);
	j->path = NULL;
}

bool journal_exists(const char *state_dir)
{
	char *path = xasprintf("%s/" JOURNAL_FILE, state_dir);
	bool r = access(path, F_OK) == 0;

	free(path);
	return r;
}
