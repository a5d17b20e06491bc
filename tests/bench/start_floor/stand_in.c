/* qemu's stand-in ([qemu] binary): writes CLOCK_MONOTONIC (ns) at its main to $STAMP_DIR/stand-in (a fixed path:
 * vmlaunch gives qemu a clean environment), then execs the real qemu with the same argv. Static: its own exec is
 * the same small cost for every launcher measured. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#ifndef STAMP_FILE
#error STAMP_FILE must be defined
#endif

int main(int argc, char **argv)
{
	struct timespec t;
	FILE *f;

	(void)argc;
	clock_gettime(CLOCK_MONOTONIC, &t);
	f = fopen(STAMP_FILE, "w");
	if (f) {
		fprintf(f, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
		fclose(f);
	}
	argv[0] = "/usr/bin/qemu-system-x86_64";
	execv(argv[0], argv);
	return 127;
}
