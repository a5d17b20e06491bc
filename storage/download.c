/* Images by URL: libcurl (dlopened) into a nameless file in the cache, SHA-256 by nettle, a name only once verified. */
#define _GNU_SOURCE
#include "download.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_dir.h"
#include "curl_lib.h"
#include "fdio.h"
#include "log.h"
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
	struct sha256_ctx sha;
	uint64_t done;
	curl_off_t shown; /* the byte count the progress line shows */
	int write_errno;
	bool progress, drawn;
	const char *what;
	struct timespec start, last;
};

static size_t on_data(char *data, size_t size, size_t n, void *opaque)
{
	struct transfer *t = opaque;
	size_t len = size * n;

	if (fd_write_all(t->fd, data, len) < 0) {
		t->write_errno = errno ? errno : EIO;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	sha256_update(&t->sha, len, (const uint8_t *)data);
	t->done += len;
	return len;
}

static double seconds_since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* One line on stderr, redrawn at most 10 times a second: a bar when the server said the size, MiB and rate. */
static int on_progress(void *opaque, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
	struct transfer *t = opaque;
	struct timespec ts;
	double elapsed, mib = 1024.0 * 1024.0;
	char bar[23] = "";

	(void)ut;
	(void)un;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* libcurl calls this about once a second when nothing moves, and many times a second when data flows: a redraw
	 * only when something changed, the last (complete) one always */
	if (!t->progress || (t->drawn && now == t->shown) ||
	    (t->drawn && seconds_since(&t->last, &ts) < 0.1 && !(total > 0 && now == total)))
		return 0;
	t->last = ts;
	t->shown = now;
	elapsed = seconds_since(&t->start, &ts);
	if (total > 0) {
		unsigned fill = (unsigned)(now * 20 / total);

		bar[0] = '[';
		memset(bar + 1, '#', fill);
		memset(bar + 1 + fill, '.', 20 - fill);
		bar[21] = ']';
		bar[22] = '\0';
	}
	fprintf(stderr, "\rvmlaunch: %s: downloading %s %8.1f/%.1f MiB %6.1f MiB/s", t->what, bar, (double)now / mib,
		(double)(total > 0 ? total : now) / mib, elapsed > 0 ? (double)now / mib / elapsed : 0.0);
	t->drawn = true;
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
	curl_lib.curl_easy_setopt(c, CURLOPT_NOPROGRESS, t->progress ? 0L : 1L);
	curl_lib.curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_lib.curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
	clock_gettime(CLOCK_MONOTONIC, &t->start);
	rc = curl_lib.curl_easy_perform(c);
	if (t->drawn)
		fputc('\n', stderr);
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

int download_image(const char *url, const char *sha256, const char *what, bool progress)
{
	struct transfer t = { .fd = -1, .progress = progress, .what = what };
	char *dir = download_cache_dir(), *path = download_cache_path(sha256), *tmp_name = NULL, got[2 * SHA256_DIGEST_SIZE + 1];
	uint8_t digest[SHA256_DIGEST_SIZE];
	const char *why;
	struct stat st;
	CURL *c = NULL;
	int r;

	if (!dir) {
		r = log_errno(ENOENT, "%s: no cache directory to download %s into (set HOME or XDG_CACHE_HOME)", what, url);
		goto out;
	}
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		log_info("%s: %s is in the cache as %s", what, url, path);
		r = 0;
		goto out;
	}
	r = curl_lib_load(&why);
	if (r < 0) {
		log_error("%s: source = %s: %s", what, url, why);
		goto out;
	}
	r = mkdir_parents(dir);
	if (r < 0)
		goto out;
	t.fd = r = open_unnamed(dir, &tmp_name);
	if (r < 0)
		goto out;
	c = curl_lib.curl_easy_init();
	if (!c) {
		r = log_errno(ENOMEM, "%s: curl_easy_init", what);
		goto out;
	}
	sha256_init(&t.sha);
	log_info("%s: downloading %s into %s", what, url, dir);
	r = fetch(c, &t, url);
	if (r < 0)
		goto out;
	sha256_digest(&t.sha, sizeof(digest), digest);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(got + 2 * i, 3, "%02x", digest[i]);
	if (strcmp(got, sha256)) {
		log_error("%s: %s has SHA-256 %s, not the %s that source-sha256 says; the download was not kept", what, url,
			  got, sha256);
		r = -EBADMSG;
		goto out;
	}
	if (fsync(t.fd) < 0) {
		r = log_errno(errno, "%s: cannot write the download of %s", what, url);
		goto out;
	}
	r = give_name(t.fd, tmp_name, path);
	if (r == 0) {
		free(tmp_name); /* renamed: nothing left to unlink */
		tmp_name = NULL;
	}
out:
	if (c)
		curl_lib.curl_easy_cleanup(c);
	if (tmp_name)
		unlink(tmp_name);
	free(tmp_name);
	if (t.fd >= 0)
		close(t.fd);
	free(dir);
	free(path);
	return r;
}
