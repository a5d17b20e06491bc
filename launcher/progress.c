/* The progress line (progress.h). */
#define _GNU_SOURCE
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fdio.h"

void progress_begin(struct progress *p, const char *phase, uint64_t total)
{
	p->phase = phase;
	p->done = 0;
	p->total = total;
	p->start = monotonic_ms() / 1000.0;
	p->last = 0;
}

void progress_draw(struct progress *p, bool force)
{
	const char *name = p->target;
	struct winsize ws;
	double t, elapsed, rate, unit;
	const char *name_unit;
	unsigned pct, fill;
	char bar[11], stats[128];
	int room, n;

	if (!p->enabled)
		return;
	t = monotonic_ms() / 1000.0;
	if (!force && t - p->last < 0.1)
		return;
	p->last = t;
	elapsed = t - p->start;
	/* GiB for what is large, MiB below: a 2 MiB image would read 0.00 GiB */
	unit = (p->total ? p->total : p->done) >= (1u << 30) ? 1024.0 * 1024.0 * 1024.0 : 1024.0 * 1024.0;
	name_unit = unit > 1024.0 * 1024.0 ? "GiB" : "MiB";
	rate = elapsed > 0 ? (double)p->done / unit / elapsed : 0;
	if (p->total) {
		pct = p->done < p->total ? (unsigned)(p->done * 100 / p->total) : 100;
		fill = pct / 10;
		memset(bar, '#', fill);
		memset(bar + fill, '.', 10 - fill);
		bar[10] = '\0';
		snprintf(stats, sizeof(stats), "%s [%s] %u%% %.1f/%.1f %s %.1f %s/s", p->phase, bar, pct,
			 (double)p->done / unit, (double)p->total / unit, name_unit, rate, name_unit);
	} else {
		snprintf(stats, sizeof(stats), "%s %.1f %s %.1f %s/s", p->phase, (double)p->done / unit, name_unit, rate,
			 name_unit);
	}
	/* A line that wraps cannot be redrawn with \r: a long path gives up its beginning to fit the terminal. */
	room = (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80) - 1 -
	       (int)strlen("vmlaunch: : ") - (int)strlen(stats);
	if ((int)strlen(name) > room)
		name = room > 8 ? name + strlen(name) - (size_t)(room - 3) : NULL;
	/* a shorter redraw blanks what is left of the longer one before it */
	n = fprintf(stderr, "\rvmlaunch: %s%s%s%s", name && name != p->target ? "..." : "", name ? name : "",
		    name ? ": " : "", stats);
	if (n > 0 && n < p->width)
		fprintf(stderr, "%*s", p->width - n, "");
	if (n > p->width)
		p->width = n;
	p->drawn = true;
}

void progress_end(struct progress *p)
{
	if (!p->enabled)
		return;
	progress_draw(p, true);
	fputc('\n', stderr);
	p->drawn = false;
	p->width = 0;
}

void progress_interrupt(struct progress *p)
{
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
	p->width = 0;
}
