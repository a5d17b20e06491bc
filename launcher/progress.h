/* One progress line on stderr, redrawn in place at most 10 times a second, for long steps before the guest runs
 * (filling a disk, downloading an image). Only when the caller said stderr is a terminal. */
#ifndef VMLAUNCH_PROGRESS_H
#define VMLAUNCH_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	bool enabled, drawn;
	const char *target; /* what the step works on, shown first (a long one loses its beginning to fit) */
	const char *phase;  /* "copying", "zeroing", "downloading" */
	uint64_t done, total; /* bytes; total 0: unknown (no bar, no percentage) */
	double start, last;
	int width; /* of the longest line drawn, which a redraw covers */
};

void progress_begin(struct progress *p, const char *phase, uint64_t total);
/* Redraws with p->done; at most 10 times a second unless force. */
void progress_draw(struct progress *p, bool force);
/* Ends the line with the final numbers. */
void progress_end(struct progress *p);
/* Before an error message: it starts on a line of its own rather than after the bar. */
void progress_interrupt(struct progress *p);

#endif
