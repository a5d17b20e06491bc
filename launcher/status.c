/* --list and --status: running VMs from their state dirs (pid, info file) and their qemu's QMP socket. */
#define _GNU_SOURCE
#include "status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "plan.h"
#include "process.h"
#include "qmp.h"
#include "state_dir.h"
#include "strv.h"

int status_write_info(const struct plan *p, const char *state_dir)
{
	char *path = state_file(state_dir, STATE_INFO);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f;

	if (fd < 0) {
		int r = log_errno(errno, "cannot create %s", path);

		free(path);
		return r;
	}
	free(path);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -errno;
	}
	fprintf(f, "memory %llu\ncpus %u\naccel %s\n", (unsigned long long)p->total_memory, p->cfg->cpus,
		p->kvm ? "kvm" : "tcg");
	for (size_t i = 0; i < p->n_disks; i++)
		fprintf(f, "disk %s %s %s\n", p->disks[i].cfg->name, backend_kind_name(p->disks[i].cfg->backend),
			p->disks[i].target->filename);
	if (p->command && p->command->n) {
		fputs("command", f);
		for (size_t i = 0; i < p->command->n; i++)
			fprintf(f, " %s", p->command->v[i]); /* shown, never parsed back into argv */
		fputc('\n', f);
	}
	/* vmlaunch --ssh: where, who, and with which key (the first one's private half, when it sits beside it) */
	if (p->ssh_port) {
		const struct vm_config *cfg = p->cfg;
		char *key = cfg->cloud_keys.n ? xstrdup(cfg->cloud_keys.v[0]) : xstrdup("-");
		size_t n = strlen(key);

		if (n > 4 && !strcmp(key + n - 4, ".pub"))
			key[n - 4] = '\0';
		fprintf(f, "ssh %s %u %s %s\n", p->ssh_host, p->ssh_port, cfg->cloud_user ? cfg->cloud_user : "root",
			access(key, R_OK) == 0 ? key : "-");
		free(key);
	}
	return fclose(f) == 0 ? 0 : -errno;
}

static int not_running(const char *name)
{
	log_error("VM \"%s\" is not running (vmlaunch --list shows the running ones)", name);
	return -ENOENT;
}

static double uptime_of(int pid)
{
	unsigned long long start;
	double now = 0;
	FILE *f;

	if (process_start_time(pid, &start) < 0)
		return 0;
	f = fopen("/proc/uptime", "re");
	if (f) {
		if (fscanf(f, "%lf", &now) != 1)
			now = 0;
		fclose(f);
	}
	return now - (double)start / (double)sysconf(_SC_CLK_TCK);
}

/* What a running VM's state dir says about it: vmlaunch's pid, its uptime, and the info file. */
static struct json_object *read_summary(const char *root, const char *name)
{
	char *dir = state_dir_path(root, name), *pidfile = state_file(dir, STATE_PID), *info = state_file(dir, STATE_INFO);
	struct json_object *o = json_object_new_object(), *disks = json_object_new_array();
	char line[1024];
	int pid = 0;
	FILE *f;

	if ((f = fopen(pidfile, "re"))) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "pid", json_object_new_int(pid));
	json_object_object_add(o, "uptime", json_object_new_double(pid ? uptime_of(pid) : 0.0));
	while ((f = fopen(info, "re")) && fgets(line, sizeof(line), f)) {
		char disk[64], backend[16], file[900];
		unsigned long long memory;
		unsigned cpus;

		do {
			line[strcspn(line, "\n")] = '\0';
			if (sscanf(line, "memory %llu", &memory) == 1)
				json_object_object_add(o, "memory", json_object_new_int64((int64_t)memory));
			else if (sscanf(line, "cpus %u", &cpus) == 1)
				json_object_object_add(o, "cpus", json_object_new_int((int)cpus));
			else if (!strncmp(line, "command ", 8))
				json_object_object_add(o, "command", json_object_new_string(line + 8));
			else if (sscanf(line, "disk %63s %15s %899s", disk, backend, file) == 3) {
				struct json_object *d = json_object_new_object();

				json_object_object_add(d, "name", json_object_new_string(disk));
				json_object_object_add(d, "backend", json_object_new_string(backend));
				json_object_object_add(d, "file", json_object_new_string(file));
				json_object_array_add(disks, d);
			}
		} while (fgets(line, sizeof(line), f));
		fclose(f);
		f = NULL;
		break;
	}
	if (f)
		fclose(f);
	json_object_object_add(o, "disks", disks);
	free(dir);
	free(pidfile);
	free(info);
	return o;
}

static const char *get_string(struct json_object *o, const char *key, const char *fallback)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : fallback;
}

static int64_t get_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

int status_list(const char *root, bool json)
{
	struct json_object *all = json_object_new_array();
	DIR *d = opendir(root);
	struct dirent *e;

	if (!d && errno != ENOENT) {
		json_object_put(all);
		return log_errno(errno, "cannot open %s", root);
	}
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && e->d_type == DT_DIR && state_dir_running(root, e->d_name))
			json_object_array_add(all, read_summary(root, e->d_name));
	if (d)
		closedir(d);
	if (json) {
		puts(json_object_to_json_string_ext(all, JSON_C_TO_STRING_PLAIN));
	} else {
		printf("%-20s %8s %9s %5s %8s  %s\n", "NAME", "PID", "UPTIME", "CPUS", "MEMORY", "DISKS");
		for (size_t i = 0; i < json_object_array_length(all); i++) {
			struct json_object *vm = json_object_array_get_idx(all, i), *disks, *v;
			char list[1024] = "";

			json_object_object_get_ex(vm, "disks", &disks);
			for (size_t k = 0; k < json_object_array_length(disks); k++) {
				struct json_object *disk = json_object_array_get_idx(disks, k);
				size_t n = strlen(list);

				snprintf(list + n, sizeof(list) - n, "%s%s:%s", n ? " " : "", get_string(disk, "name", "?"),
					 get_string(disk, "backend", "?"));
			}
			json_object_object_get_ex(vm, "uptime", &v);
			printf("%-20s %8lld %8.0fs %5lld %7lldM  %s\n", get_string(vm, "name", "?"),
			       (long long)get_int(vm, "pid"), json_object_get_double(v), (long long)get_int(vm, "cpus"),
			       (long long)(get_int(vm, "memory") >> 20), *list ? list : "-");
		}
		if (!json_object_array_length(all))
			printf("(no VM running)\n");
	}
	json_object_put(all);
	return 0;
}

int status_show(const char *root, const char *name, bool json)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct json_object *st = NULL, *cpus = NULL, *vm, *disks;
	struct qmp q;
	int fd, r;

	if (!state_dir_running(root, name))
		return not_running(name);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s/" STATE_QMP, root, name);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_errno(errno, "socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = log_errno(errno, "cannot reach %s (another client may hold it)", addr.sun_path);
		close(fd);
		return r;
	}
	r = qmp_connect(&q, fd, NULL, NULL, 5000, false);
	if (r == 0)
		r = qmp_execute(&q, "query-status", NULL, &st, 5000);
	if (r == 0)
		r = qmp_execute(&q, "query-cpus-fast", NULL, &cpus, 5000);
	if (r == 0) {
		vm = read_summary(root, name);
		json_object_object_add(vm, "status", json_object_new_string(get_string(st, "status", "unknown")));
		json_object_object_add(vm, "vcpus", json_object_new_int((int)json_object_array_length(cpus)));
		if (json) {
			puts(json_object_to_json_string_ext(vm, JSON_C_TO_STRING_PLAIN));
		} else {
			struct json_object *up;

			json_object_object_get_ex(vm, "uptime", &up);
			printf("name:    %s\nstatus:  %s\npid:     %lld\nuptime:  %.0fs\nvcpus:   %lld\nmemory:  %lldM\n", name,
			       get_string(vm, "status", "?"), (long long)get_int(vm, "pid"), json_object_get_double(up),
			       (long long)get_int(vm, "vcpus"), (long long)(get_int(vm, "memory") >> 20));
			if (json_object_object_get_ex(vm, "command", &up))
				printf("command: %s\n", json_object_get_string(up));
			json_object_object_get_ex(vm, "disks", &disks);
			for (size_t i = 0; i < json_object_array_length(disks); i++) {
				struct json_object *d = json_object_array_get_idx(disks, i);

				printf("disk:    %s %s %s\n", get_string(d, "name", "?"), get_string(d, "backend", "?"),
				       get_string(d, "file", "?"));
			}
		}
		json_object_put(vm);
	}
	json_object_put(st);
	json_object_put(cpus);
	qmp_close(&q);
	return r;
}

/* 'ARG', with each ' as '\'' : POSIX sh reads it back as exactly ARG. */
static char *shell_quote(const char *arg)
{
	char *out = xmalloc(strlen(arg) * 4 + 3), *o = out;

	*o++ = '\'';
	for (; *arg; arg++) {
		if (*arg == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *arg;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

int status_ssh(const char *root, const char *name, const struct strv *command)
{
	char *dir = state_dir_path(root, name), *info = state_file(dir, STATE_INFO), line[1024];
	char host[64] = "", user[64] = "", key[900] = "";
	struct strv argv = STRV_INIT;
	unsigned port = 0;
	FILE *f;
	int r;

	if (!state_dir_running(root, name)) {
		r = not_running(name);
		goto out;
	}
	f = fopen(info, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "ssh %63s %u %63s %899s", host, &port, user, key) == 4)
			break;
	if (f)
		fclose(f);
	if (!port) {
		r = log_errno(ENOENT, "VM \"%s\" has no ssh port: give it a [net] with forward = tcp:PORT-:22 and a "
				      "[cloud-init] section for the key",
			      name);
		goto out;
	}
	strv_push_many(&argv, "ssh", "-p", NULL);
	strv_pushf(&argv, "%u", port);
	/* the guest makes new host keys at every first boot: trust the first one, per VM, in its state dir */
	strv_push(&argv, "-o");
	strv_pushf(&argv, "UserKnownHostsFile=%s/known_hosts", dir);
	/* a forward answers at once even while the guest boots: give up on a silent one rather than hang */
	strv_push_many(&argv, "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
		       NULL);
	if (strcmp(key, "-"))
		strv_push_many(&argv, "-i", key, "-o", "IdentitiesOnly=yes", NULL);
	strv_pushf(&argv, "%s@%s", user, host);
	if (command->n) {
		/* ssh hands the remote shell one string: each argument quoted, so they arrive as given, like -- COMMAND */
		char *line = xstrdup(""), *tmp;

		for (size_t i = 0; i < command->n; i++) {
			char *q = shell_quote(command->v[i]);

			tmp = xasprintf("%s%s%s", line, i ? " " : "", q);
			free(q);
			free(line);
			line = tmp;
		}
		strv_push_many(&argv, "--", line, NULL);
		free(line);
	}
	execvp("ssh", argv.v);
	r = log_errno(errno, "cannot run ssh (apt-get install openssh-client)");
out:
	strv_free(&argv);
	free(info);
	free(dir);
	return r;
}

/* NAME's vmlaunch, from its pid file, if that pid still is a vmlaunch (a pid file can outlive its process). */
static pid_t vmlaunch_pid(const char *root, const char *name)
{
	char *dir = state_dir_path(root, name), *pidfile = state_file(dir, STATE_PID), *comm_path, comm[32];
	FILE *f = fopen(pidfile, "re");
	int pid = 0;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	free(dir);
	free(pidfile);
	if (pid <= 0)
		return -1;
	comm_path = xasprintf("/proc/%d/comm", pid);
	read_first_line(comm_path, comm, sizeof(comm));
	free(comm_path);
	return !strncmp(comm, "vmlaunch", 8) ? pid : -1;
}

static bool wait_stopped(const char *root, const char *name, int wait_ms)
{
	for (int waited = 0; state_dir_running(root, name); waited += 100) {
		if (waited >= wait_ms)
			return false;
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	}
	return true;
}

int status_stop(const char *root, const char *name, int wait_ms)
{
	pid_t pid;

	if (!state_dir_running(root, name))
		return not_running(name);
	pid = vmlaunch_pid(root, name);
	if (pid < 0)
		return log_errno(ESRCH, "VM \"%s\": no vmlaunch process behind it (its guardian may be cleaning up; "
					"vmlaunch --cleanup %s waits for that)",
				 name, name);
	if (kill(pid, SIGTERM) < 0)
		return log_errno(errno, "cannot signal vmlaunch (pid %d)", (int)pid);
	if (wait_stopped(root, name, wait_ms))
		return 0;
	log_warn("VM \"%s\" did not power off in %d s; stopping qemu", name, wait_ms / 1000);
	kill(pid, SIGTERM); /* the second request: quit */
	if (wait_stopped(root, name, 15000))
		return 0;
	return log_errno(ETIMEDOUT, "VM \"%s\" is still running (vmlaunch pid %d)", name, (int)pid);
}
