/* What a firmware writes to the serial console to set up a screen of its own, kept off the user's terminal: OVMF
 * resets the terminal and switches its mode, SeaBIOS turns autowrap off, and neither turns it back. */
#ifndef VMLAUNCH_TERM_FILTER_H
#define VMLAUNCH_TERM_FILTER_H

#include <stddef.h>

struct term_filter {
	char held[8]; /* the start of a sequence that the next chunk may complete */
	size_t n_held;
};

/* Copies in[0..n) to out without ESC c (full reset), ESC [ ? 7 l (autowrap off) and ESC [ = N h (a PC screen mode):
 * out must hold n + sizeof(held) bytes. Returns the length written. */
size_t term_filter(struct term_filter *f, const char *in, size_t n, char *out);

#endif
