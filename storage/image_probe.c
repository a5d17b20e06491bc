/* A base image's format and size, learned before anything is touched: read as data, never through a parser run as
 * root (populate.h: populate_probe). */
#define _GNU_SOURCE
#include "populate.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_convert.h"
#include "log.h"
#include "strv.h"

static const unsigned char qcow2_magic[4] = { 'Q', 'F', 'I', 0xfb };

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A qcow2 header's own facts, read as data (docs/interop/qcow2.txt): the virtual size, and whether it names another
 * file (a backing file; an external data file, incompatible feature bit 2). No parser runs as root: the image is
 * decoded by qemu-img as qemu's user (image_convert.c), which checks again with qemu's own reading. */
static int qcow2_header(int fd, const char *path, bool allow_external, struct populate_source *out)
{
	unsigned char h[104] = { 0 };
	uint32_t version;
	uint64_t backing;
	char name[1024];

	if (pread(fd, h, sizeof(h), 0) < 72)
		return log_error("base image %s: its qcow2 header is cut short", path);
	version = be32(h + 4);
	if (version != 2 && version != 3)
		return log_error("base image %s: qcow2 version %u; expected 2 or 3", path, version);
	out->virtual_size = be64(h + 24);
	backing = be64(h + 8);
	if (allow_external)
		return 0;
	if (backing) {
		uint32_t len = be32(h + 16);
		ssize_t n = pread(fd, name, len < sizeof(name) - 1 ? len : sizeof(name) - 1, (off_t)backing);

		name[n > 0 ? n : 0] = '\0';
		return log_error("base image %s names another file, %s, as its backing file; expected an image that stands "
				 "alone (qemu-img convert -O qcow2 flattens a chain) or source-backing = allow",
				 path, name);
	}
	if (version == 3 && be64(h + 72) & 4)
		return log_error("base image %s keeps its data in another file (an external data file); expected an image "
				 "that stands alone (qemu-img convert -O qcow2) or source-backing = allow",
				 path);
	return 0;
}

int populate_probe(const char *path, const char *format, bool allow_external, struct populate_source *out)
{
	unsigned char head[4] = { 0 };
	struct stat st;
	uint64_t size;
	bool qcow2;
	int fd, r = 0;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(errno, "cannot open the base image %s", path);
	qcow2 = pread(fd, head, sizeof(head), 0) == sizeof(head) && !memcmp(head, qcow2_magic, sizeof(head));
	/* Never a guess: unset, the format is qcow2 when the file starts with qcow2's magic and raw otherwise, never one
	 * of the dozen formats qemu-img would probe for (vmdk, vpc, vdi, ...: some name other host files). A raw image a
	 * guest wrote a qcow2 header into is then read as qcow2, but one that names no other file (refused below), so
	 * the guest gets back nothing but its own bytes. */
	if (format && !strcmp(format, "raw") && qcow2)
		/* Copying a qcow2 as raw would give the guest the container's bytes, not the disk inside. */
		r = log_error("base image %s is a qcow2 image, not raw; expected format = qcow2", path);
	else if (format && !strcmp(format, "qcow2") && !qcow2)
		r = log_error("base image %s: format = qcow2, but it has no qcow2 header", path);
	else if (format && !image_format_name_valid(format))
		r = log_error("base image %s: format \"%s\": expected a qemu-img format name such as qcow2", path, format);
	if (r < 0)
		goto out;
	if (!format)
		format = qcow2 ? "qcow2" : "raw";
	if (!strcmp(format, "raw")) {
		if (fstat(fd, &st) < 0 || (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0)) {
			r = log_errno(errno, "cannot read the size of %s", path);
			goto out;
		}
		/* whole 512-byte sectors, as qemu's raw driver presents a file */
		size = S_ISBLK(st.st_mode) ? size : (uint64_t)st.st_size;
		out->virtual_size = (size + 511) / 512 * 512;
	} else if (qcow2) {
		r = qcow2_header(fd, path, allow_external, out);
		if (r < 0)
			goto out;
	}
	/* other formats: the virtual size is learned by the unprivileged qemu-img info before the copy */
	out->path = xstrdup(path);
	out->format = xstrdup(format);
	out->allow_external = allow_external;
out:
	close(fd);
	return r;
}

void populate_source_free(struct populate_source *s)
{
	free(s->path);
	free(s->format);
	memset(s, 0, sizeof(*s));
}
