/* vmlaunch-guest: PID 1 of the bundled guest in command mode; runs vmlaunch's command as launcher/guest_protocol.h says. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest_protocol.h"

#define ARGV_PATH "/sys/firmware/qemu_fw_cfg/by_name/" GUEST_FWCFG_ARGV "/raw"
#define PORTS_DIR "/sys/class/virtio-ports"
#define COMMAND_PATH "/sbin:/bin:/usr/sbin:/usr/bin"

/* Ports are announced and named by the host through virtio-serial's control queue after the driver has probed, so
 * they can still be missing when we start; a port that has not appeared by then is not coming. */
#define PORTS_TIMEOUT_MS 5000
#define PORTS_POLL_MS 5

/* Exit statuses the agent reports itself; 126 and 127 are the shell's. */
#define EXIT_AGENT_FAILURE 125
#define EXIT_NOT_EXECUTABLE 126
#define EXIT_NOT_FOUND 127

struct port {
        const char *name;
        int fd;
};

/* Where errors are also copied while the stderr port is open: in command mode the user reads that port, not
 * necessarily the console. */
static int error_port_fd = -1;

/* The console is PID 1's stderr: the kernel opened /dev/console for /init. */
static void console_error(const char *format, ...) {
        char message[1024];
        va_list ap;
        int length;

        va_start(ap, format);
        length = vsnprintf(message, sizeof(message) - 1, format, ap);
        va_end(ap);
        if (length < 0)
                return;
        if ((size_t) length > sizeof(message) - 2)
                length = sizeof(message) - 2;
        message[length++] = '\n';
        dprintf(STDERR_FILENO, "vmlaunch-guest: %.*s", length, message);
        if (error_port_fd >= 0)
                dprintf(error_port_fd, "vmlaunch-guest: %.*s", length, message);
}

static int read_file(const char *path, char **ret_data, size_t *ret_size) {
        size_t size = 0, allocated = 4096;
        char *data = malloc(allocated);
        int fd;

        if (!data)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                free(data);
                return r;
        }
        for (;;) {
                ssize_t n;

                if (size == allocated) {
                        char *bigger = realloc(data, allocated * 2);
                        if (!bigger) {
                                free(data);
                                close(fd);
                                return -ENOMEM;
                        }
                        data = bigger;
                        allocated *= 2;
                }
                n = read(fd, data + size, allocated - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        free(data);
                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        close(fd);
        *ret_data = data;
        *ret_size = size;
        return 0;
}

/* The fw_cfg file holds each argument followed by one NUL; a missing final NUL is tolerated. */
static int command_argv_read(char ***ret_argv) {
        char *data, **argv;
        size_t size, count = 0, i, k = 0;
        int r;

        r = read_file(ARGV_PATH, &data, &size);
        if (r < 0) {
                console_error("cannot read %s: %s", ARGV_PATH, strerror(-r));
                return r;
        }
        for (i = 0; i < size; i++)
                if (data[i] == '\0')
                        count++;
        if (size > 0 && data[size - 1] != '\0')
                count++;
        if (count == 0) {
                console_error("%s is empty: no command to run", ARGV_PATH);
                free(data);
                return -EINVAL;
        }

        /* One spare byte so that an argument without its NUL still ends in one. */
        char *terminated = realloc(data, size + 1);
        argv = calloc(count + 1, sizeof(char *));
        if (!terminated || !argv) {
                console_error("out of memory");
                free(terminated ? terminated : data);
                free(argv);
                return -ENOMEM;
        }
        data = terminated;
        data[size] = '\0';
        for (i = 0; i < size; i += strlen(data + i) + 1)
                argv[k++] = data + i;
        argv[k] = NULL;
        *ret_argv = argv;
        return 0;
}

static bool file_content_is(const char *path, const char *expected) {
        char buffer[256];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        n = read(fd, buffer, sizeof(buffer) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buffer[n] = '\0';
        buffer[strcspn(buffer, "\n")] = '\0';
        return strcmp(buffer, expected) == 0;
}

/* devtmpfs normally creates /dev/vportNpM; create the node from sysfs if it has not (yet). */
static int port_device_node(const char *entry, char *path, size_t size) {
        char dev_file[512], *dev = NULL;
        size_t dev_size;
        unsigned major_number, minor_number;
        int r;

        snprintf(path, size, "/dev/%s", entry);
        if (access(path, F_OK) == 0)
                return 0;
        snprintf(dev_file, sizeof(dev_file), PORTS_DIR "/%s/dev", entry);
        r = read_file(dev_file, &dev, &dev_size);
        if (r < 0)
                return r;
        r = sscanf(dev, "%u:%u", &major_number, &minor_number) == 2 ? 0 : -EINVAL;
        free(dev);
        if (r < 0)
                return r;
        if (mknod(path, S_IFCHR | 0600, makedev(major_number, minor_number)) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Returns 0 and the device path of the port named NAME, or -ENOENT while there is none. */
static int port_find(const char *name, char *path, size_t size) {
        DIR *dir = opendir(PORTS_DIR);
        struct dirent *entry;
        int r = -ENOENT;

        if (!dir)
                return -ENOENT;
        while ((entry = readdir(dir))) {
                char name_file[512];

                if (entry->d_name[0] == '.')
                        continue;
                snprintf(name_file, sizeof(name_file), PORTS_DIR "/%s/name", entry->d_name);
                if (!file_content_is(name_file, name))
                        continue;
                r = port_device_node(entry->d_name, path, size);
                if (r < 0)
                        console_error("port %s: cannot create /dev/%s: %s", name, entry->d_name, strerror(-r));
                break;
        }
        closedir(dir);
        return r;
}

static long elapsed_ms(const struct timespec *since) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Opens every port, waiting for the host to name them; ports not found stay at fd -1 and are reported. */
static int ports_open(struct port *ports, size_t count) {
        struct timespec start;
        size_t missing = count, i;
        int r = 0;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                for (i = 0; i < count; i++) {
                        char path[512];

                        if (ports[i].fd >= 0 || port_find(ports[i].name, path, sizeof(path)) < 0)
                                continue;
                        /* A port accepts one open at a time: the command inherits this descriptor. */
                        ports[i].fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
                        if (ports[i].fd < 0) {
                                console_error("cannot open port %s (%s): %m", ports[i].name, path);
                                ports[i].fd = -2; /* found but unusable: do not retry */
                        }
                        missing--;
                }
                if (missing == 0 || elapsed_ms(&start) >= PORTS_TIMEOUT_MS)
                        break;
                nanosleep(&(struct timespec){ .tv_nsec = PORTS_POLL_MS * 1000000L }, NULL);
        }
        for (i = 0; i < count; i++) {
                if (ports[i].fd == -1)
                        console_error("no virtio-serial port named %s after %d ms (is it on the qemu command line?)",
                                      ports[i].name, PORTS_TIMEOUT_MS);
                if (ports[i].fd < 0) {
                        ports[i].fd = -1;
                        r = -ENODEV;
                }
        }
        return r;
}

static void ports_close(struct port *ports, size_t count) {
        /* The guest cannot see when the host has consumed a port's buffers (no fsync, no tcdrain on a virtio
         * port). Closing one sends "guest closed" on the control queue and spins until qemu has taken it; qemu
         * services the queues in one thread (the vCPU's under TCG, the main loop's with ioeventfd) and the data
         * was kicked first, so by then qemu has handed it all to the chardev. What the chardev could not take at
         * once (socket or pipe with a slow reader) qemu keeps and loses when the VM powers off: README.md. */
        for (size_t i = 0; i < count; i++)
                if (ports[i].fd >= 0) {
                        close(ports[i].fd);
                        ports[i].fd = -1;
                }
}

static void child_exec(char **argv, int stdout_fd, int stderr_fd) {
        sigset_t none;
        int null_fd;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);
        setsid();

        null_fd = open("/dev/null", O_RDONLY);
        if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(stdout_fd, STDOUT_FILENO) < 0 ||
            dup2(stderr_fd, STDERR_FILENO) < 0) {
                console_error("cannot set up the command's stdio: %m");
                _exit(EXIT_AGENT_FAILURE);
        }
        if (null_fd > STDERR_FILENO)
                close(null_fd);

        execvp(argv[0], argv);
        int exec_errno = errno;
        /* stderr is the stderr port now: the message reaches the user, as a shell's would. */
        fprintf(stderr, "vmlaunch-guest: %s: %s\n", argv[0], strerror(exec_errno));
        _exit(exec_errno == ENOENT ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE);
}

static int exit_code(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return EXIT_AGENT_FAILURE;
}

/* As PID 1 we inherit every orphan; reaping them all while waiting keeps zombies from piling up. */
static int command_wait(pid_t command) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, 0);

                if (pid == command)
                        return exit_code(status);
                if (pid < 0 && errno != EINTR) {
                        console_error("waiting for the command: %m");
                        return EXIT_AGENT_FAILURE;
                }
        }
}

/* Whatever the command left running may hold the ports open, and a port only says goodbye to the host (see
 * ports_close) when its last descriptor closes. */
static void processes_kill_remaining(void) {
        kill(-1, SIGKILL);
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
}

static int command_run(char **argv, int stdout_fd, int stderr_fd) {
        pid_t pid = fork();

        if (pid < 0) {
                console_error("cannot fork: %m");
                return EXIT_AGENT_FAILURE;
        }
        if (pid == 0)
                child_exec(argv, stdout_fd, stderr_fd);
        return command_wait(pid);
}

static void status_report(int status_fd, int code) {
        char line[16];
        int length = snprintf(line, sizeof(line), "exit=%d\n", code);

        if (status_fd < 0)
                return;
        if (write(status_fd, line, (size_t) length) != length)
                console_error("cannot write the exit status to port %s: %m", GUEST_PORT_STATUS);
}

int main(void) {
        struct port ports[] = {
                { GUEST_PORT_STDOUT, -1 },
                { GUEST_PORT_STDERR, -1 },
                { GUEST_PORT_STATUS, -1 },
        };
        struct port *stdout_port = &ports[0], *stderr_port = &ports[1], *status_port = &ports[2];
        char **argv;
        int code = EXIT_AGENT_FAILURE, r;

        /* Everything below (kill(-1), reboot) is only right for the init of a throwaway VM. */
        if (getpid() != 1) {
                console_error("must run as PID 1 of the guest (it kills every process and powers off)");
                return EXIT_AGENT_FAILURE;
        }
        setenv("PATH", COMMAND_PATH, 1);
        setenv("HOME", "/root", 1);
        umask(022);
        if (chdir("/") < 0)
                console_error("cannot chdir to /: %m");

        r = ports_open(ports, 3);
        error_port_fd = stderr_port->fd;
        if (r == 0 && command_argv_read(&argv) == 0)
                code = command_run(argv, stdout_port->fd, stderr_port->fd);

        processes_kill_remaining();
        error_port_fd = -1;
        ports_close(ports, 2);
        status_report(status_port->fd, code);
        ports_close(status_port, 1);

        sync();
        reboot(RB_POWER_OFF);
        console_error("cannot power off: %m");
        return code;
}
