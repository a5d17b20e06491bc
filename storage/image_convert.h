/* Filling a disk from an image in a format that needs a parser (qcow2, ...), with the parser never running as root. */
#ifndef VMLAUNCH_IMAGE_CONVERT_H
#define VMLAUNCH_IMAGE_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "populate_types.h"

/* What qemu-img convert needs to know about the target beyond populate_target. */
struct convert_target {
	const struct populate_target *dst;
	bool blockdev; /* a block device: written with O_DIRECT when direct */
	bool direct;   /* the device took an O_DIRECT open */
};

/* qemu-nbd exports the source's bytes (-f raw --read-only: no format parsed) and the target (-f raw), each on a socket
 * only root can connect to; qemu-img, as sb->as, gets one connection to each as an fd, reads the image's own facts
 * (qemu-img info: the virtual size, and no other file named) and converts. With src->allow_external, qemu-img opens
 * the source by its path instead, as sb->as, so it can follow the chain with that user's rights. Every helper is a
 * journaled child that dies with vmlaunch. Fills in src->virtual_size when the probe could not. */
int image_convert(struct populate_source *src, const struct convert_target *t, const struct populate_sandbox *sb);

/* Whether a format name is a plain word (it goes into qemu's JSON syntax). */
bool image_format_name_valid(const char *format);

#endif
