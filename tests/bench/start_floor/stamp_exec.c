/* stamp_exec OUT PROG ARG...: writes CLOCK_MONOTONIC (ns) to OUT, then execs PROG: the start of a timed launch. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec t;
	FILE *f;

	if (argc < 3)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t);
	f = fopen(argv[1], "w");
	if (!f)
		return 1;
	fprintf(f, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
	fclose(f);
	execv(argv[2], argv + 2);
	return 127;
}
