/* Images by URL: libcurl (dlopened, in an unprivileged child) into a nameless file in the cache, SHA-256 by nettle,
 * a name only once verified. */
#define _GNU_SOURCE
#include "download.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache_dir.h"
#include "curl_lib.h"
#include "fdio.h"
#include "log.h"
#include "progress.h"
#include "privileges.h"
#include "strv.h"

#ifndef VMLAUNCH_VERSION
#define VMLAUNCH_VERSION "0.1"
#endif

char *download_cache_dir(void)
{
	char *root = cache_dir_path(), *dir = root ? xasprintf("%s/images", root) : NULL;

	free(root);
	return dir;
}

char *download_cache_path(const char *sha256)
{
	char *dir = download_cache_dir(), *path = dir ? xasprintf("%s/%s", dir, sha256) : NULL;

	free(dir);
	return path;
}

struct transfer {
	int fd;
	uint64_t done;
	int write_errno;
	const char *what;
	struct progress line;
};

static size_t on_data(char *data, size_t size, size_t n, void *opaque)
{
	struct transfer *t = opaque;
	size_t len = size * n;

	if (fd_write_all(t->fd, data, len) < 0) {
		t->write_errno = errno ? errno : EIO;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	t->done += len;
	return len;
}

/* The progress line: libcurl calls this about once a second when nothing moves and many times a second when data
 * flows; the line is redrawn at most 10 times a second, the last (complete) one always. */
static int on_progress(void *opaque, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
	struct transfer *t = opaque;

	(void)ut;
	(void)un;
	t->line.total = total > 0 ? (uint64_t)total : 0;
	t->line.done = (uint64_t)now;
	progress_draw(&t->line, total > 0 && now == total);
	return 0;
}

/* A nameless file in the cache dir; where the filesystem has no O_TMPFILE, a named one (*tmp_name) unlinked on any
 * failure. */
static int open_unnamed(const char *dir, char **tmp_name)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);

	*tmp_name = NULL;
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd >= 0 ? fd : log_errno(errno, "cannot create a file in %s", dir);
	*tmp_name = xasprintf("%s/.download-XXXXXX", dir);
	fd = mkostemp(*tmp_name, O_CLOEXEC);
	if (fd < 0) {
		int r = log_errno(errno, "cannot create a file in %s", dir);

		free(*tmp_name);
		*tmp_name = NULL;
		return r;
	}
	fchmod(fd, 0644);
	return fd;
}

/* The verified file gets its name; an existing one (a concurrent download of the same image) is as good. */
static int give_name(int fd, const char *tmp_name, const char *path)
{
	char proc[64];

	if (tmp_name)
		return rename(tmp_name, path) < 0 ? log_errno(errno, "cannot rename %s to %s", tmp_name, path) : 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
		return log_errno(errno, "cannot name %s", path);
	return 0;
}

static int fetch(CURL *c, struct transfer *t, const char *url)
{
	char error[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	curl_lib.curl_easy_setopt(c, CURLOPT_URL, url);
	/* only http and https, redirects included: a redirect to file:// or anything else is refused */
	curl_lib.curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_lib.curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_lib.curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_lib.curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_lib.curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L); /* an HTTP error page is not the image */
	curl_lib.curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled server: under 1 KiB/s for a minute ends the download instead of hanging the launch */
	curl_lib.curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_lib.curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_lib.curl_easy_setopt(c, CURLOPT_USERAGENT, "vmlaunch/" VMLAUNCH_VERSION);
	curl_lib.curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
	curl_lib.curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_lib.curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	curl_lib.curl_easy_setopt(c, CURLOPT_NOPROGRESS, t->line.enabled ? 0L : 1L);
	curl_lib.curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_lib.curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
	progress_begin(&t->line, "downloading", 0);
	rc = curl_lib.curl_easy_perform(c);
	progress_interrupt(&t->line);
	if (rc == CURLE_WRITE_ERROR && t->write_errno)
		return log_errno(t->write_errno, "%s: cannot write the download of %s", t->what, url);
	if (rc != CURLE_OK) {
		log_error("%s: cannot download %s: %s", t->what, url, *error ? error : curl_lib.curl_easy_strerror(rc));
		return -EIO;
	}
	return 0;
}

static int mkdir_parents(const char *path)
{
	char *copy = xstrdup(path);
	int r = 0;

	for (char *p = copy + 1; r == 0; p++) {
		bool end = !*p;

		if (*p && *p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			r = log_errno(errno, "cannot create %s", copy);
		if (end)
			break;
		*p = '/';
	}
	free(copy);
	return r;
}

/* The transfer itself runs in a child without root's powers (qemu's user, no capabilities, no-new-privileges):
 * libcurl parses what a server sends (HTTP, TLS), and none of that needs root. It writes into the file vmlaunch
 * opened, and vmlaunch hashes what landed there itself. */
static int fetch_unprivileged(int fd, const char *url, const char *what, bool progress, const struct privileges *pv)
{
	pid_t parent = getpid(), pid;
	int status;

	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return log_errno(errno, "%s: cannot fork", what);
	if (pid == 0) {
		struct transfer t = { .fd = fd, .what = what, .line = { .enabled = progress, .target = what } };
		const char *why;
		CURL *c;
		int r;

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		r = privileges_drop(pv);
		if (r < 0) {
			log_errno(-r, "%s: cannot drop privileges to download %s", what, url);
			_exit(1);
		}
		if (curl_lib_load(&why) < 0) {
			log_error("%s: source = %s: %s", what, url, why);
			_exit(1);
		}
		c = curl_lib.curl_easy_init();
		if (!c) {
			log_errno(ENOMEM, "%s: curl_easy_init", what);
			_exit(1);
		}
		r = fetch(c, &t, url);
		curl_lib.curl_easy_cleanup(c);
		_exit(r < 0 ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return log_errno(errno, "%s: waitpid", what);
	if (WIFSIGNALED(status))
		return log_errno(EIO, "%s: the download of %s was killed by signal %d", what, url, WTERMSIG(status));
	return WEXITSTATUS(status) == 0 ? 0 : -EIO; /* the child said why */
}

/* SHA-256 of what the file holds, read back by vmlaunch: the child that wrote it is not trusted to say. */
static int hash_file(int fd, char *hex, const char *what)
{
	static uint8_t buf[1 << 20];
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256_ctx sha;
	off_t at = 0;
	ssize_t n;

	sha256_init(&sha);
	while ((n = pread(fd, buf, sizeof(buf), at)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_errno(errno, "%s: cannot read the download back", what);
		sha256_update(&sha, (size_t)n, buf);
		at += n;
	}
	sha256_digest(&sha, sizeof(digest), digest);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	return 0;
}

int download_image(const char *url, const char *sha256, const char *what, bool progress, const struct privileges *pv)
{
	char *dir = download_cache_dir(), *path = download_cache_path(sha256), *tmp_name = NULL;
	char got[2 * SHA256_DIGEST_SIZE + 1];
	struct stat st;
	int fd = -1, r;

	if (!dir) {
		r = log_errno(ENOENT, "%s: no cache directory to download %s into (set HOME or XDG_CACHE_HOME)", what, url);
		goto out;
	}
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		log_info("%s: %s is in the cache as %s", what, url, path);
		r = 0;
		goto out;
	}
	r = mkdir_parents(dir);
	if (r < 0)
		goto out;
	fd = r = open_unnamed(dir, &tmp_name);
	if (r < 0)
		goto out;
	log_info("%s: downloading %s into %s", what, url, dir);
	r = fetch_unprivileged(fd, url, what, progress, pv);
	if (r < 0)
		goto out;
	r = hash_file(fd, got, what);
	if (r < 0)
		goto out;
	if (strcmp(got, sha256)) {
		log_error("%s: %s has SHA-256 %s, not the %s that source-sha256 says; the download was not kept", what, url,
			  got, sha256);
		r = -EBADMSG;
		goto out;
	}
	if (fsync(fd) < 0) {
		r = log_errno(errno, "%s: cannot write the download of %s", what, url);
		goto out;
	}
	r = give_name(fd, tmp_name, path);
	if (r == 0) {
		free(tmp_name); /* renamed: nothing left to unlink */
		tmp_name = NULL;
	}
out:
	if (tmp_name)
		unlink(tmp_name);
	free(tmp_name);
	if (fd >= 0)
		close(fd);
	free(dir);
	free(path);
	return r;
}
