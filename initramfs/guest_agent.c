/* vmlaunch-guest: PID 1 of the bundled guest in command mode; runs vmlaunch's command as launcher/guest_protocol.h says.
 *
 *   vmlaunch-guest [--root DIR] [--fail MESSAGE]   (exec'd by /init as PID 1)
 *   vmlaunch-guest --probe vdX                      (run by /init: which of vdX and its partitions to try as root)
 *
 * --root DIR: the command runs chrooted in DIR (the init mounted the image there, with its API filesystems), as
 * the user of DIR's /etc/passwd; afterwards everything under DIR is unmounted. --fail: the init could not set up
 * what the command needs; report MESSAGE and GUEST_EXIT_AGENT_FAILURE instead of running it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/random.h>

#include "guest_protocol.h"

#define FWCFG_DIR "/sys/firmware/qemu_fw_cfg/by_name/"
#define WAIT_PATH FWCFG_DIR GUEST_FWCFG_WAIT "/raw"
/* Where the command's files come from: fw_cfg at boot, or what the host sent over the status port after a
 * snapshot restore (GUEST_FWCFG_WAIT), kept in RECEIVED_DIR under the same leaf names. */
#define RECEIVED_DIR "/run/org.vmlaunch"
static const char *ARGV_PATH = FWCFG_DIR GUEST_FWCFG_ARGV "/raw";
static const char *USER_PATH = FWCFG_DIR GUEST_FWCFG_USER "/raw";
static const char *ENV_PATH = FWCFG_DIR GUEST_FWCFG_ENV "/raw";
static const char *TTY_PATH = FWCFG_DIR GUEST_FWCFG_TTY "/raw";
#define PORTS_DIR "/sys/class/virtio-ports"
#define COMMAND_PATH "/sbin:/bin:/usr/sbin:/usr/bin"
/* A distribution's usual PATH, for commands in a root image. */
#define IMAGE_COMMAND_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Ports are announced and named by the host through virtio-serial's control queue after the driver has probed, so
 * they can still be missing when we start; a port that has not appeared by then is not coming. */
#define PORTS_TIMEOUT_MS 5000
#define PORTS_POLL_MS 5
/* How long the guest waits for the host to have read all of the command's output. */
#define STATUS_ACK_TIMEOUT_MS 60000

/* Exit statuses the agent reports itself; 126 and 127 are the shell's. */
#define EXIT_AGENT_FAILURE GUEST_EXIT_AGENT_FAILURE
#define EXIT_NOT_EXECUTABLE GUEST_EXIT_NOT_EXECUTABLE
#define EXIT_NOT_FOUND GUEST_EXIT_NOT_FOUND

struct port {
        const char *name;
        int fd;
};

/* Whom the command runs as. name is NULL for the default, root without a passwd lookup (as before users existed). */
struct user {
        const char *name;
        uid_t uid;
        gid_t gid;
        gid_t *groups;
        size_t n_groups;
        char *home;
        char *shell;
};

struct command {
        char **argv;
        char **env; /* NAME=VALUE entries from GUEST_FWCFG_ENV, NULL-terminated; never NULL itself */
        const char *root; /* the image to chroot into, or NULL for the bundled guest itself */
        struct user user;
        bool tty; /* GUEST_FWCFG_TTY: the command runs on a pty of this size, with this TERM */
        struct winsize winsize;
        char term[64];
};

/* What the host writes to the status port, one line at a time: "eof=BYTES", "winsize=ROWS COLS", "ok". Kept across
 * reads, since a line may arrive in pieces, and from the command's run to the final acknowledgement. */
static struct {
        char data[256];
        size_t length;
} host_lines;

/* Where errors are also copied while the stderr port is open: in command mode the user reads that port, not
 * necessarily the console. */
static int error_port_fd = -1;
/* Bytes handed to the stdout and stderr ports: the host acknowledges them before the guest powers off. */
static unsigned long long port_bytes[2];

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
        if (error_port_fd >= 0) {
                int n = dprintf(error_port_fd, "vmlaunch-guest: %.*s", length, message);

                if (n > 0)
                        port_bytes[1] += (unsigned long long) n;
        }
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

/* The fw_cfg files argv and env hold strings each followed by one NUL; a missing final NUL is tolerated. Returns
 * them NULL-terminated, with their number in *ret_count. */
static int nul_list_read(const char *path, char ***ret_list, size_t *ret_count) {
        char *data, **list;
        size_t size, count = 0, i, k = 0;
        int r;

        r = read_file(path, &data, &size);
        if (r < 0)
                return r;
        for (i = 0; i < size; i++)
                if (data[i] == '\0')
                        count++;
        if (size > 0 && data[size - 1] != '\0')
                count++;

        /* One spare byte so that a string without its NUL still ends in one. */
        char *terminated = realloc(data, size + 1);
        list = calloc(count + 1, sizeof(char *));
        if (!terminated || !list) {
                free(terminated ? terminated : data);
                free(list);
                return -ENOMEM;
        }
        data = terminated;
        data[size] = '\0';
        for (i = 0; i < size; i += strlen(data + i) + 1)
                list[k++] = data + i;
        list[k] = NULL;
        if (count == 0)
                free(data);
        *ret_list = list;
        *ret_count = count;
        return 0;
}

static int command_argv_read(char ***ret_argv) {
        size_t count;
        int r = nul_list_read(ARGV_PATH, ret_argv, &count);

        if (r < 0) {
                console_error("cannot read %s: %s", ARGV_PATH, strerror(-r));
                return r;
        }
        if (count == 0) {
                console_error("%s is empty: no command to run", ARGV_PATH);
                return -EINVAL;
        }
        return 0;
}

/* GUEST_FWCFG_ENV: NAME=VALUE entries for the command's environment; absent means none. */
static int command_env_read(char ***ret_env) {
        size_t count;
        int r = nul_list_read(ENV_PATH, ret_env, &count);

        if (r == -ENOENT) {
                *ret_env = calloc(1, sizeof(char *));
                return *ret_env ? 0 : -ENOMEM;
        }
        if (r < 0) {
                console_error("cannot read %s: %s", ENV_PATH, strerror(-r));
                return r;
        }
        for (size_t i = 0; i < count; i++) {
                const char *entry = (*ret_env)[i], *equals = strchr(entry, '=');

                if (!equals || equals == entry) {
                        console_error("%s: entry %zu (\"%s\") is not NAME=VALUE", ENV_PATH, i + 1, entry);
                        return -EINVAL;
                }
        }
        return 0;
}

/* GUEST_FWCFG_TTY: "ROWS COLS TERM"; absent means no pty. */
static int command_tty_read(struct command *c) {
        unsigned rows, cols;
        char *data;
        size_t size;
        int r = read_file(TTY_PATH, &data, &size);

        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                console_error("cannot read %s: %s", TTY_PATH, strerror(-r));
                return r;
        }
        data[size] = '\0'; /* read_file leaves room: size < allocated */
        r = sscanf(data, "%u %u %63s", &rows, &cols, c->term) == 3 && rows <= 0xffff && cols <= 0xffff ? 0 : -EINVAL;
        free(data);
        if (r < 0) {
                console_error("%s: expected \"ROWS COLS TERM\"", TTY_PATH);
                return r;
        }
        c->tty = true;
        c->winsize = (struct winsize){ .ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols };
        return 0;
}

/* Opens PATH inside ROOT as if ROOT were / (absolute symlinks stay inside it), as the chrooted command will see it. */
static FILE *fopen_in_root(const char *root, const char *path) {
        struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
        int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), fd, saved_errno;
        FILE *f;

        if (dir < 0)
                return NULL;
        fd = (int) syscall(SYS_openat2, dir, path, &how, sizeof(how));
        saved_errno = errno;
        close(dir);
        if (fd < 0) {
                errno = saved_errno;
                return NULL;
        }
        f = fdopen(fd, "r");
        if (!f)
                close(fd);
        return f;
}

static int groups_add(struct user *u, gid_t gid) {
        gid_t *bigger;

        for (size_t i = 0; i < u->n_groups; i++)
                if (u->groups[i] == gid)
                        return 0;
        bigger = realloc(u->groups, (u->n_groups + 1) * sizeof(gid_t));
        if (!bigger)
                return -ENOMEM;
        u->groups = bigger;
        u->groups[u->n_groups++] = gid;
        return 0;
}

/* NAME from ROOT's /etc/passwd, and its groups from ROOT's /etc/group as initgroups(3) would (primary group
 * first), read with fgetpwent/fgetgrent: a static binary must not go through NSS, and the files are the image's. */
static int user_lookup(const char *root, const char *name, struct user *u) {
        const char *where = strcmp(root, "/") == 0 ? "the bundled guest's" : "the root image's";
        struct passwd *pw;
        struct group *gr;
        FILE *f;

        f = fopen_in_root(root, "/etc/passwd");
        if (!f) {
                int r = -errno;

                console_error("user %s: cannot open %s /etc/passwd: %s", name, where, strerror(-r));
                return r;
        }
        while ((pw = fgetpwent(f)))
                if (strcmp(pw->pw_name, name) == 0)
                        break;
        if (!pw) {
                fclose(f);
                console_error("unknown user %s: not in %s /etc/passwd", name, where);
                return -ENOENT;
        }
        u->name = name;
        u->uid = pw->pw_uid;
        u->gid = pw->pw_gid;
        u->home = strdup(pw->pw_dir[0] ? pw->pw_dir : "/");
        u->shell = strdup(pw->pw_shell[0] ? pw->pw_shell : "/bin/sh");
        fclose(f);
        if (!u->home || !u->shell || groups_add(u, u->gid) < 0) {
                console_error("out of memory");
                return -ENOMEM;
        }

        /* No /etc/group means no supplementary groups, as with getgrouplist(3). */
        f = fopen_in_root(root, "/etc/group");
        if (!f)
                return 0;
        while ((gr = fgetgrent(f)))
                for (char **member = gr->gr_mem; *member; member++)
                        if (strcmp(*member, name) == 0 && groups_add(u, gr->gr_gid) < 0) {
                                fclose(f);
                                console_error("out of memory");
                                return -ENOMEM;
                        }
        fclose(f);
        return 0;
}

/* GUEST_FWCFG_USER: a user name from the passwd file of the root the command runs in; absent means root. */
static int command_user_read(const char *root, struct user *u) {
        char *data;
        size_t size;
        int r;

        *u = (struct user){ .home = strdup("/root"), .shell = NULL };
        r = read_file(USER_PATH, &data, &size);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                console_error("cannot read %s: %s", USER_PATH, strerror(-r));
                return r;
        }
        /* One trailing newline is forgiven: the file may have been written with echo. */
        if (size > 0 && data[size - 1] == '\n')
                size--;
        if (size == 0 || memchr(data, '\0', size) || memchr(data, '\n', size) || memchr(data, ':', size)) {
                console_error("%s: not a user name", USER_PATH);
                free(data);
                return -EINVAL;
        }
        data[size] = '\0'; /* read_file leaves room: size < allocated */
        free(u->home);
        u->home = NULL;
        return user_lookup(root ? root : "/", data, u);
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
                        /* A port accepts one open at a time. Read-write: the status port carries the host's
                         * acknowledgement back. */
                        ports[i].fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
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

/* In the child, with stderr on the stderr port already: the reason reaches the user, as a shell's would. */
_Noreturn static void child_fail(const char *what, const char *argument) {
        fprintf(stderr, "vmlaunch-guest: cannot %s %s: %s\n", what, argument, strerror(errno));
        _exit(EXIT_AGENT_FAILURE);
}

/* With a pty, stdin_fd, stdout_fd and stderr_fd are all its terminal end, which becomes the controlling terminal
 * of the command's new session. */
static void child_exec(const struct command *c, int stdin_fd, int stdout_fd, int stderr_fd) {
        const struct user *u = &c->user;
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);
        setsid();

        if ((c->tty && ioctl(stdin_fd, TIOCSCTTY, 0) < 0) || dup2(stdin_fd, STDIN_FILENO) < 0 ||
            dup2(stdout_fd, STDOUT_FILENO) < 0 || dup2(stderr_fd, STDERR_FILENO) < 0) {
                console_error("cannot set up the command's stdio: %m");
                _exit(EXIT_AGENT_FAILURE);
        }

        if (c->root && (chroot(c->root) < 0 || chdir("/") < 0))
                child_fail("chroot to", c->root);
        if (u->name) {
                if (setgroups(u->n_groups, u->groups) < 0)
                        child_fail("set the supplementary groups of", u->name);
                if (setgid(u->gid) < 0)
                        child_fail("set the group id of", u->name);
                if (setuid(u->uid) < 0)
                        child_fail("set the user id of", u->name);
                setenv("USER", u->name, 1);
                setenv("LOGNAME", u->name, 1);
                setenv("SHELL", u->shell, 1);
        }
        /* cwd is HOME in an image or for a named user, and stays / for root in the bundled guest, as it always
         * has; a HOME that does not exist (nobody's /nonexistent) leaves it at /, as login does. */
        if ((c->root || u->name) && chdir(u->home) < 0 && chdir("/") < 0)
                child_fail("chdir to", "/");
        setenv("PATH", c->root ? IMAGE_COMMAND_PATH : COMMAND_PATH, 1);
        setenv("HOME", u->home, 1);
        if (c->tty)
                setenv("TERM", c->term, 1);
        for (char **entry = c->env; *entry; entry++)
                putenv(*entry);

        execvp(c->argv[0], c->argv);
        int exec_errno = errno;
        /* stderr is the stderr port now: the message reaches the user, as a shell's would. */
        fprintf(stderr, "vmlaunch-guest: %s: %s\n", c->argv[0], strerror(exec_errno));
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

/* Copies what a pipe has to its port, counting it; false at EOF. */
static bool relay_some(int from, int to, unsigned long long *count) {
        char buffer[65536];
        ssize_t n = read(from, buffer, sizeof(buffer));

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0)
                return false;
        for (ssize_t done = 0; done < n;) {
                ssize_t w = write(to, buffer + done, (size_t) (n - done));

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return true; /* the port is gone: keep draining the pipe so the command never blocks */
                done += w;
                *count += (unsigned long long) w;
        }
        return true;
}

/* The host's stdin on its way to the command: read from the stdin port, written to the command's stdin pipe (or
 * its pty) without ever blocking this agent. */
struct input {
        int port;   /* the stdin port; -1 once it said goodbye */
        int target; /* the pipe's write end (non-blocking) or the pty; -1 once closed, or the command gone */
        bool tty;
        char buffer[65536];
        size_t length, offset;
        unsigned long long received, expected; /* expected: from the host's eof= line, ULLONG_MAX until then */
};

/* Writes what is buffered as far as the target takes it; at the end of the host's stdin closes the pipe, which is
 * the command's EOF. A command that closed its stdin (EPIPE) gets nothing more. */
static void input_flush(struct input *in) {
        while (in->target >= 0 && in->offset < in->length) {
                ssize_t n = write(in->target, in->buffer + in->offset, in->length - in->offset);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) {
                        if (!in->tty)
                                close(in->target);
                        in->target = -1;
                        break;
                }
                in->offset += (size_t) n;
        }
        in->length = in->offset = 0;
        if (!in->tty && in->target >= 0 && in->received >= in->expected) {
                close(in->target);
                in->target = -1;
        }
}

static void input_take(struct input *in) {
        ssize_t n = read(in->port, in->buffer, sizeof(in->buffer));

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                /* the host closed the port: nothing more is coming, whatever it said */
                in->port = -1;
                in->expected = in->received;
        } else {
                in->received += (unsigned long long) n;
                in->length = (size_t) n;
                in->offset = 0;
        }
        input_flush(in);
}

/* One read from the status port; calls on_line for each complete line (without its newline). False once the port
 * is closed or broken. */
static bool host_lines_read(int fd, void (*on_line)(const char *line, void *context), void *context) {
        ssize_t n = read(fd, host_lines.data + host_lines.length, sizeof(host_lines.data) - 1 - host_lines.length);
        char *start, *newline;

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0)
                return false;
        host_lines.length += (size_t) n;
        host_lines.data[host_lines.length] = '\0';
        for (start = host_lines.data; (newline = strchr(start, '\n')); start = newline + 1) {
                *newline = '\0';
                on_line(start, context);
        }
        host_lines.length -= (size_t) (start - host_lines.data);
        memmove(host_lines.data, start, host_lines.length);
        if (host_lines.length == sizeof(host_lines.data) - 1)
                host_lines.length = 0; /* no line is that long: drop the garbage rather than stall */
        return true;
}

struct running {
        struct input *input;
        int pty; /* the pty's host side, or -1 */
};

static void on_host_line(const char *line, void *context) {
        struct running *r = context;
        unsigned long long bytes;
        unsigned rows, cols;

        if (sscanf(line, "eof=%llu", &bytes) == 1 && !r->input->tty) {
                r->input->expected = bytes;
                input_flush(r->input);
        } else if (sscanf(line, "winsize=%u %u", &rows, &cols) == 2 && r->pty >= 0) {
                struct winsize size = { .ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols };

                /* the kernel sends SIGWINCH to the pty's foreground process group */
                ioctl(r->pty, TIOCSWINSZ, &size);
        }
}

/* A pty from the devpts of the root the command runs in (so that its name, /dev/pts/N, means the same there), its
 * terminal end owned by the command's user, as grantpt(3) leaves it. Returns the host side, *ret_terminal the
 * other. */
static int pty_open(const struct command *c, int *ret_terminal) {
        char ptmx[4096];
        int unlock = 0, host, terminal;

        if (!c->root && mkdir("/dev/pts", 0755) < 0 && errno != EEXIST)
                return -errno;
        /* the bundled guest mounts no devpts of its own; an image's is mounted by the init (guest_protocol.h) */
        if (!c->root && mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666") < 0 &&
            errno != EBUSY)
                return -errno;
        snprintf(ptmx, sizeof(ptmx), "%s/dev/pts/ptmx", c->root ? c->root : "");
        host = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (host < 0)
                return -errno;
        if (ioctl(host, TIOCSPTLCK, &unlock) < 0 || ioctl(host, TIOCSWINSZ, &c->winsize) < 0 ||
            (terminal = ioctl(host, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
                int r = -errno;

                close(host);
                return r;
        }
        if (c->user.name && fchown(terminal, c->user.uid, (gid_t) -1) < 0)
                console_error("cannot give the pty to user %s: %m", c->user.name);
        *ret_terminal = terminal;
        return host;
}

/* The command's output goes through pipes (or its pty) this agent copies to the ports, so it knows how many bytes
 * the host must have before the VM may power off (qemu drops what a slow host has not taken yet); its input comes
 * the other way, from the stdin port. Returns the exit code once the command has exited and every writer of its
 * pipes is gone (what it left running is killed then). */
static int command_run(const struct command *c, int stdout_fd, int stderr_fd, int stdin_fd, int status_fd) {
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, in[2] = { -1, -1 }, code = -1, open_pipes;
        struct input *input = calloc(1, sizeof(*input));
        struct running running = { input, -1 };
        pid_t pid;

        if (!input) {
                console_error("out of memory");
                return EXIT_AGENT_FAILURE;
        }
        if (c->tty) {
                int host = pty_open(c, &in[0]);

                if (host < 0) {
                        console_error("cannot open a pty for the command: %s", strerror(-host));
                        free(input);
                        return EXIT_AGENT_FAILURE;
                }
                out[0] = running.pty = input->target = host;
                out[1] = err[1] = in[0];
                open_pipes = 1;
        } else {
                if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0 ||
                    fcntl(in[1], F_SETFL, O_NONBLOCK) < 0) {
                        console_error("cannot make the command's pipes: %m");
                        free(input);
                        return EXIT_AGENT_FAILURE;
                }
                input->target = in[1];
                open_pipes = 2;
        }
        input->port = stdin_fd;
        input->tty = c->tty;
        input->expected = ~0ULL;
        pid = fork();
        if (pid < 0) {
                console_error("cannot fork: %m");
                free(input);
                return EXIT_AGENT_FAILURE;
        }
        if (pid == 0)
                child_exec(c, in[0], out[1], err[1]);
        close(in[0]);
        if (!c->tty) {
                close(out[1]);
                close(err[1]);
        }
        struct pollfd fds[5] = { { out[0], POLLIN, 0 }, { c->tty ? -1 : err[0], POLLIN, 0 } };
        int ports[2] = { stdout_fd, stderr_fd };
        bool status_open = status_fd >= 0;

        while (open_pipes > 0) {
                int status;
                pid_t done;

                fds[2] = (struct pollfd){ input->length == 0 ? input->port : -1, POLLIN, 0 };
                fds[3] = (struct pollfd){ input->length ? input->target : -1, POLLOUT, 0 };
                fds[4] = (struct pollfd){ status_open ? status_fd : -1, POLLIN, 0 };
                if (poll(fds, 5, code < 0 ? 100 : 1000) < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < 2; i++)
                        if (fds[i].fd >= 0 && fds[i].revents && !relay_some(fds[i].fd, ports[i], &port_bytes[i])) {
                                close(fds[i].fd);
                                fds[i].fd = -1;
                                open_pipes--;
                                if (c->tty)
                                        input->target = running.pty = -1; /* the pty is gone with it */
                        }
                if (fds[2].revents)
                        input_take(input);
                if (fds[3].revents)
                        input_flush(input);
                if (fds[4].revents)
                        status_open = host_lines_read(status_fd, on_host_line, &running);
                /* As PID 1 every orphan is ours to reap; once the command is gone, what it left must let go of
                 * its pipes, or its output would never end. */
                while ((done = waitpid(-1, &status, WNOHANG)) > 0)
                        if (done == pid)
                                code = exit_code(status);
                if (code >= 0 && open_pipes > 0)
                        kill(-1, SIGKILL);
        }
        if (!c->tty && input->target >= 0)
                close(input->target);
        free(input);
        if (code < 0)
                code = command_wait(pid);
        return code;
}

/* Everything the command needs from fw_cfg besides the ports; 0 or a negative errno (already reported). */
static int command_read(struct command *c) {
        int r = command_argv_read(&c->argv);

        if (r == 0)
                r = command_env_read(&c->env);
        if (r == 0)
                r = command_user_read(c->root, &c->user);
        if (r == 0)
                r = command_tty_read(c);
        return r;
}

/* lo up without a subprocess (every fork costs ~15 ms under TCG): the common boot has no other network. */
static void loopback_up(void) {
        struct ifreq ifr = { .ifr_name = "lo" };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 ||
            (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0))
                console_error("cannot bring up lo: %m");
        if (fd >= 0)
                close(fd);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void mountinfo_unescape(char *s) {
        char *out = s;

        for (; *s; s++) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
                    s[3] <= '7') {
                        *out++ = (char) ((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
                        s += 3;
                } else
                        *out++ = *s;
        }
        *out = '\0';
}

/* Unmounts ROOT and everything under it, the most recent mount first, so that a persistent root image, its shares
 * and whatever the command mounted are clean when the VM powers off. A root that stays busy is remounted
 * read-only instead. */
static void root_unmount(const char *root) {
        size_t root_length = strlen(root), n = 0, allocated = 0, left;
        char line[4096], **points = NULL;
        FILE *f = fopen("/proc/self/mountinfo", "re");

        if (!f) {
                console_error("cannot read /proc/self/mountinfo to unmount %s: %m", root);
                return;
        }
        /* Fields: id parent major:minor root mountpoint ... */
        while (fgets(line, sizeof(line), f)) {
                char point[4096];

                if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
                        continue;
                mountinfo_unescape(point);
                if (strncmp(point, root, root_length) != 0 || (point[root_length] && point[root_length] != '/'))
                        continue;
                if (n == allocated) {
                        size_t more = allocated ? allocated * 2 : 16;
                        char **bigger = realloc(points, more * sizeof(char *));

                        if (!bigger)
                                break;
                        points = bigger;
                        allocated = more;
                }
                if (!(points[n] = strdup(point)))
                        break;
                n++;
        }
        fclose(f);

        /* mountinfo lists mounts in the order they were made; a moved mount can break that, hence the passes. */
        left = n;
        for (bool progress = true; left > 0 && progress;) {
                progress = false;
                for (size_t i = n; i-- > 0;)
                        if (points[i] && umount2(points[i], 0) == 0) {
                                free(points[i]);
                                points[i] = NULL;
                                left--;
                                progress = true;
                        }
        }
        for (size_t i = 0; i < n; i++) {
                if (!points[i])
                        continue;
                if (strcmp(points[i], root) == 0 && mount(NULL, root, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0)
                        console_error("cannot unmount %s (busy): remounted it read-only", root);
                else
                        console_error("cannot unmount %s: %s", points[i], strerror(errno));
                free(points[i]);
        }
        free(points);
}

/* The filesystem types vmlaunch.root may name, from their superblock magic: ext2/3/4 (the ext4 driver mounts
 * all three), xfs, btrfs. Anything else (an EFI system partition, swap, BIOS boot) is not a root. */
static const char *fs_type(const char *device) {
        unsigned char buffer[8];
        const char *type = NULL;
        int fd = open(device, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return NULL;
        if (pread(fd, buffer, 4, 0) == 4 && memcmp(buffer, "XFSB", 4) == 0)
                type = "xfs";
        else if (pread(fd, buffer, 8, 0x10040) == 8 && memcmp(buffer, "_BHRfS_M", 8) == 0)
                type = "btrfs";
        else if (pread(fd, buffer, 2, 1080) == 2 && buffer[0] == 0x53 && buffer[1] == 0xEF)
                type = "ext4";
        close(fd);
        return type;
}

static int partition_compare(const void *a, const void *b) {
        const unsigned *x = a, *y = b;

        return (*x > *y) - (*x < *y);
}

/* --probe vdX: prints "DEVICE TYPE" for vdX, then its partitions in partition-number order, that hold a root
 * filesystem type; the init tries to mount them in that order. */
static int probe_main(const char *disk) {
        unsigned numbers[256];
        size_t n = 0;
        char path[512];
        const char *type;
        struct dirent *entry;
        DIR *dir;

        if (strchr(disk, '/')) {
                console_error("--probe: %s is not a disk name like vda", disk);
                return 2;
        }
        snprintf(path, sizeof(path), "/dev/%s", disk);
        if ((type = fs_type(path)))
                printf("%s %s\n", disk, type);
        snprintf(path, sizeof(path), "/sys/block/%s", disk);
        dir = opendir(path);
        if (!dir) {
                console_error("--probe: cannot open %s: %m", path);
                return 1;
        }
        while ((entry = readdir(dir)) && n < sizeof(numbers) / sizeof(numbers[0])) {
                char *number_file, *number;
                size_t size;

                if (strncmp(entry->d_name, disk, strlen(disk)) != 0)
                        continue;
                if (asprintf(&number_file, "/sys/block/%s/%s/partition", disk, entry->d_name) < 0)
                        break;
                if (read_file(number_file, &number, &size) == 0) {
                        number[size < 16 ? size : 15] = '\0';
                        numbers[n++] = (unsigned) strtoul(number, NULL, 10);
                        free(number);
                }
                free(number_file);
        }
        closedir(dir);
        qsort(numbers, n, sizeof(numbers[0]), partition_compare);
        for (size_t i = 0; i < n; i++) {
                /* vda3, but nvme0n1p3: a disk name ending in a digit takes a p */
                const char *separator = disk[strlen(disk) - 1] >= '0' && disk[strlen(disk) - 1] <= '9' ? "p" : "";

                snprintf(path, sizeof(path), "/dev/%s%s%u", disk, separator, numbers[i]);
                if ((type = fs_type(path)))
                        printf("%s%s%u %s\n", disk, separator, numbers[i], type);
        }
        return 0;
}

static void on_ack_line(const char *line, void *context) {
        if (strcmp(line, "ok") == 0)
                *(bool *) context = true;
}

/* "exit=N out=BYTES err=BYTES", then the host's "ok" once it has every byte (bounded: a host that never answers
 * does not keep the VM up). Other lines (a late eof=) are skipped. */
static void status_report(int status_fd, int code) {
        char line[96];
        int length = snprintf(line, sizeof(line), "exit=%d out=%llu err=%llu\n", code, port_bytes[0], port_bytes[1]);
        struct pollfd p = { status_fd, POLLIN, 0 };
        struct timespec start;
        bool acknowledged = false;

        if (status_fd < 0)
                return;
        if (write(status_fd, line, (size_t) length) != length) {
                console_error("cannot write the exit status to port %s: %m", GUEST_PORT_STATUS);
                return;
        }
        clock_gettime(CLOCK_MONOTONIC, &start);
        while (!acknowledged) {
                long left = STATUS_ACK_TIMEOUT_MS - elapsed_ms(&start);

                if (left <= 0 || poll(&p, 1, (int) left) <= 0 ||
                    !host_lines_read(status_fd, on_ack_line, &acknowledged)) {
                        console_error("the host did not acknowledge the output in %d ms", STATUS_ACK_TIMEOUT_MS);
                        return;
                }
        }
}

/* The host's message after a snapshot restore, as bytes read so far from the status port. */
struct received {
        char *data;
        size_t length, allocated;
};

/* Reads more of the status port into *b; false at EOF or an error (reported). */
static bool received_more(int fd, struct received *b) {
        ssize_t n;

        if (b->length == b->allocated) {
                size_t more = b->allocated ? b->allocated * 2 : 4096;
                char *bigger = realloc(b->data, more + 1);

                if (!bigger) {
                        console_error("out of memory");
                        return false;
                }
                b->data = bigger;
                b->allocated = more;
        }
        do
                n = read(fd, b->data + b->length, b->allocated - b->length);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
                console_error("port %s closed while waiting for the command: %s", GUEST_PORT_STATUS,
                              n < 0 ? strerror(errno) : "end of file");
                return false;
        }
        b->length += (size_t) n;
        return true;
}

static int file_write(const char *path, const char *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok;

        if (fd < 0)
                return -errno;
        ok = write(fd, data, size) == (ssize_t) size;
        close(fd);
        return ok ? 0 : -EIO;
}

/* The guest clock is the saved one after a restore: the host's time replaces it. */
static void clock_from_host(const char *value) {
        struct timespec now = { 0 };
        long long seconds;
        long nanoseconds;

        if (sscanf(value, "%lld %ld", &seconds, &nanoseconds) != 2 || nanoseconds < 0 || nanoseconds > 999999999) {
                console_error("time from the host: expected \"SECONDS NANOSECONDS\", got \"%s\"", value);
                return;
        }
        now.tv_sec = (time_t) seconds;
        now.tv_nsec = nanoseconds;
        if (clock_settime(CLOCK_REALTIME, &now) < 0)
                console_error("cannot set the clock: %m");
}

/* Every restored sibling starts with the same entropy pool: the host's random bytes are mixed in and credited
 * (RNDADDENTROPY) before the command runs, so its /dev/urandom and getrandom() differ per run. */
static void entropy_from_host(const char *hex) {
        struct {
                struct rand_pool_info info;
                unsigned char bytes[64]; /* info.buf: the ioctl reads the bytes that follow its header */
        } pool = { 0 };
        size_t n = 0;
        int fd;

        while (n < sizeof(pool.bytes) && sscanf(hex + 2 * n, "%2hhx", &pool.bytes[n]) == 1)
                n++;
        if (n < 16) {
                console_error("seed from the host: expected at least 32 hex digits");
                return;
        }
        pool.info.entropy_count = (int) (n * 8);
        pool.info.buf_size = (int) n;
        fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ioctl(fd, RNDADDENTROPY, &pool.info) < 0)
                console_error("cannot add the host's seed to the entropy pool: %m");
        /* the kernel reseeds its generator from the pool on its own schedule (every minute of uptime, and the
         * restored uptime goes on from the saved one): now, so the command's first random bytes are new */
        else if (ioctl(fd, RNDRESEEDCRNG) < 0)
                console_error("cannot reseed the kernel's random generator: %m");
        if (fd >= 0)
                close(fd);
}

/* The bytes the hwrng core (rng_buffer) and the virtio_rng driver (its data[]) had buffered at the save, at most
 * 64 each with 64-byte cache lines, are the same in every restored sibling: read past them before the command can.
 * O_NONBLOCK: the buffered bytes come at once, then EAGAIN until the new qemu answers; never a wait. */
static void hwrng_drop_saved_bytes(void) {
        unsigned char buf[128];
        size_t n = 0;
        ssize_t got;
        int fd = open("/dev/hwrng", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

        if (fd < 0)
                return; /* no hwrng in this guest: nothing buffered */
        while (n < sizeof(buf) && (got = read(fd, buf, sizeof(buf) - n)) > 0)
                n += (size_t) got;
        close(fd);
}

/* Every restored sibling would otherwise share the saved hostname: each run's is its [vm] name. */
static void hostname_from_host(const char *name) {
        if (sethostname(name, strlen(name)) < 0)
                console_error("cannot set the hostname to \"%s\": %m", name);
}

/* GUEST_FWCFG_WAIT: the VM was booted to be saved; say "ready" on the status port and wait (in the saved state,
 * then in every restored copy) for the command as guest_protocol.h describes, then read it from RECEIVED_DIR. */
static int command_receive(int status_fd) {
        static char argv_file[] = RECEIVED_DIR "/argv", env_file[] = RECEIVED_DIR "/env",
                    user_file[] = RECEIVED_DIR "/user", tty_file[] = RECEIVED_DIR "/tty";
        struct received b = { 0 };
        size_t at = 0;
        bool run = false;
        int r = 0;

        if (status_fd < 0)
                return -ENODEV;
        if (mkdir(RECEIVED_DIR, 0700) < 0 && errno != EEXIST) {
                console_error("cannot create %s: %m", RECEIVED_DIR);
                return -errno;
        }
        if (write(status_fd, "ready\n", 6) != 6) {
                console_error("cannot write to port %s: %m", GUEST_PORT_STATUS);
                return -EIO;
        }
        while (!run && r == 0) {
                char *newline = b.data ? memchr(b.data + at, '\n', b.length - at) : NULL;
                char name[16];
                size_t size;

                if (!newline) {
                        if (!received_more(status_fd, &b))
                                r = -EIO;
                        continue;
                }
                *newline = '\0';
                if (sscanf(b.data + at, "file %15s %zu", name, &size) == 2) {
                        size_t start = (size_t) (newline + 1 - b.data);
                        const char *path = !strcmp(name, "argv") ? argv_file
                                           : !strcmp(name, "env") ? env_file
                                           : !strcmp(name, "user") ? user_file
                                           : !strcmp(name, "tty")  ? tty_file
                                                                   : NULL;

                        while (r == 0 && b.length - start < size)
                                if (!received_more(status_fd, &b))
                                        r = -EIO;
                        if (r < 0)
                                break;
                        if (!path || file_write(path, b.data + start, size) < 0) {
                                console_error("cannot take the host's file %s", name);
                                r = -EINVAL;
                                break;
                        }
                        if (path == argv_file)
                                ARGV_PATH = argv_file;
                        else if (path == env_file)
                                ENV_PATH = env_file;
                        else if (path == user_file)
                                USER_PATH = user_file;
                        else
                                TTY_PATH = tty_file;
                        at = start + size;
                        continue;
                }
                if (!strncmp(b.data + at, "time ", 5))
                        clock_from_host(b.data + at + 5);
                else if (!strncmp(b.data + at, "seed ", 5))
                        entropy_from_host(b.data + at + 5);
                else if (!strncmp(b.data + at, "hostname ", 9))
                        hostname_from_host(b.data + at + 9);
                else if (!strcmp(b.data + at, "run")) {
                        hwrng_drop_saved_bytes();
                        run = true;
                }
                else
                        console_error("unexpected line from the host: \"%s\"", b.data + at);
                at = (size_t) (newline + 1 - b.data);
        }
        /* What follows "run" (an eof= line already) belongs to the lines the command's run reads. */
        if (r == 0 && b.length > at) {
                size_t rest = b.length - at < sizeof(host_lines.data) - 1 ? b.length - at : sizeof(host_lines.data) - 1;

                memcpy(host_lines.data, b.data + at, rest);
                host_lines.length = rest;
        }
        free(b.data);
        return r;
}

int main(int argc, char **argv) {
        struct port ports[] = {
                { GUEST_PORT_STDOUT, -1 },
                { GUEST_PORT_STDERR, -1 },
                { GUEST_PORT_STATUS, -1 },
                { GUEST_PORT_STDIN, -1 },
        };
        struct port *stdout_port = &ports[0], *stderr_port = &ports[1], *status_port = &ports[2];
        struct port *stdin_port = &ports[3];
        struct command command = { 0 };
        const char *failure = NULL;
        int code = EXIT_AGENT_FAILURE, r;

        if (argc == 3 && strcmp(argv[1], "--probe") == 0)
                return probe_main(argv[2]);
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
                        command.root = argv[++i];
                else if (strcmp(argv[i], "--fail") == 0 && i + 1 < argc)
                        failure = argv[++i];
                else {
                        console_error("unknown argument %s (usage: vmlaunch-guest [--root DIR] [--fail MESSAGE] | "
                                      "--probe DISK)", argv[i]);
                        failure = "vmlaunch-guest was started with a wrong argument";
                }
        }

        /* Everything below (kill(-1), reboot) is only right for the init of a throwaway VM. */
        if (getpid() != 1) {
                console_error("must run as PID 1 of the guest (it kills every process and powers off)");
                return EXIT_AGENT_FAILURE;
        }
        umask(022);
        /* a command that closed its stdin is an EPIPE on our write, not a signal */
        signal(SIGPIPE, SIG_IGN);
        if (chdir("/") < 0)
                console_error("cannot chdir to /: %m");

        r = ports_open(ports, 4);
        error_port_fd = stderr_port->fd;
        if (failure)
                console_error("%s", failure);
        else if (r == 0 && (access(WAIT_PATH, F_OK) != 0 || command_receive(status_port->fd) == 0) &&
                 command_read(&command) == 0) {
                loopback_up();
                code = command_run(&command, stdout_port->fd, stderr_port->fd, stdin_port->fd, status_port->fd);
        }

        processes_kill_remaining();
        if (command.root)
                root_unmount(command.root);
        error_port_fd = -1;
        ports_close(ports, 2);
        ports_close(stdin_port, 1);
        status_report(status_port->fd, code);
        ports_close(status_port, 1);

        sync();
        reboot(RB_POWER_OFF);
        console_error("cannot power off: %m");
        return code;
}
