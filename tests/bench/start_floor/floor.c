/* The floor: a launcher that does nothing but vfork and exec qemu's stand-in (which runs `qemu -version`). */
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *args[] = { argc > 1 ? argv[1] : "stand-in", "-version", NULL };
	pid_t pid = vfork();

	if (pid == 0) {
		execv(args[0], args);
		_exit(127);
	}
	return pid < 0 || waitpid(pid, NULL, 0) < 0;
}
