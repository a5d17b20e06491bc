/* Warm start: the bundled guest saved at its ready point with qemu's migration to a file, restored per command. */
#define _GNU_SOURCE
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache_dir.h"
#include "exit_status.h"
#include "fdio.h"
#include "log.h"
#include "populate.h"
#include "rbd_snapshot.h"
#include "snapshot_manifest.h"
#include "strv.h"
#include "test_hook.h"

#define READY_TIMEOUT_MS 300000 /* a boot under TCG on a loaded host */
#define QMP_TIMEOUT_MS 30000
#define MIGRATE_POLL_MS 10

char *snapshot_dir(const struct vm_config *cfg)
{
	char *cache;
	char *dir;

	if (cfg->snapshot)
		return xstrdup(cfg->snapshot);
	cache = cache_dir_path();
	if (!cache)
		return NULL; /* a command run then boots; --snapshot says why (main.c) */
	dir = xasprintf("%s/snapshots/%s", cache, cfg->name);
	free(cache);
	return dir;
}

bool snapshot_exists(const char *dir)
{
	struct stat st;

	return dir && stat(dir, &st) == 0;
}

int snapshot_supported(const struct vm_config *cfg)
{
	if (!cfg->kernel && cfg->firmware != FIRMWARE_BIOS && cfg->nvram)
		return log_error("%s: [boot] nvram: a snapshot gives every restored run the UEFI variable store as saved "
				 "(qemu writes the saved flash back to the file when a restored VM runs), so a store kept "
				 "across runs would be overwritten by each: leave nvram unset",
				 config_at(cfg, cfg->nvram_line));
	/* qemu 7.2 declares vhost-user-fs unmigratable (hw/virtio/vhost-user-fs.c); later ones can carry virtiofsd's
	 * state in the stream (a vhost-user-fs-backend subsection), when virtiofsd has a migration mode */
	if (cfg->n_shares)
		return log_error("%s: [share %s]: a VM with virtiofs shares cannot be snapshotted: qemu's vhost-user-fs "
				 "device blocks migration (unmigratable in qemu 7.2), and the guest's open files "
				 "live in virtiofsd, whose state a save does not hold", cfg->file, cfg->shares[0].name);
	/* qemu's tpm-emulator does migrate (swtpm's state blobs ride in the stream); what is missing is a restore's
	 * swtpm started empty to receive them */
	if (cfg->tpm)
		return log_error("%s: [boot] tpm: a VM with a TPM cannot be snapshotted yet: qemu would carry swtpm's "
				 "state in the snapshot, but vmlaunch does not yet give each restored run a fresh swtpm to "
				 "load it into", cfg->file);
	if (cfg->snapshot_memory == SNAPSHOT_MEMORY_SHARED && (cfg->hugepages != HUGEPAGES_OFF || cfg->n_tiers))
		return log_error("%s: snapshot-memory = shared keeps guest RAM in one plain file: not with hugepages or "
				 "[memory tier]s", config_at(cfg, cfg->snapshot_memory_line));
	for (size_t i = 0; i < cfg->n_disks; i++) {
		const struct disk_config *d = &cfg->disks[i];

		if ((d->backend == BACKEND_FILE || d->backend == BACKEND_LVM || d->backend == BACKEND_RBD) &&
		    !d->ephemeral && (d->backend != BACKEND_FILE || !d->readonly))
			return log_error("%s: [disk %s]: a snapshot cannot take a persistent %sdisk: the saved guest "
					 "remembers the disk as it was at the save (its page cache, its file system's "
					 "state), and a restore would meet the disk as it is now, changed by whatever wrote "
					 "to it since; expected ephemeral = yes (each restored run writes to its own copy "
					 "of the disk as saved)%s",
					 config_at(cfg, d->ephemeral_line ? d->ephemeral_line : d->line), d->name,
					 d->backend == BACKEND_FILE ? "writable " : "",
					 d->backend == BACKEND_FILE ? " or readonly = yes" : "");
	}
	return 0;
}

void snapshot_paths(struct snapshot *s, const struct vm_config *cfg, bool save, bool restore)
{
	s->save = save;
	s->restore = restore;
	s->shared = cfg->snapshot_memory == SNAPSHOT_MEMORY_SHARED;
	if (save)
		s->tmp = xasprintf("%s.tmp-%d", s->dir, (int)getpid());
	if (s->shared && (save || restore))
		s->ram = xasprintf("%s/ram", save ? s->tmp : s->dir);
}

void snapshot_plan(const struct snapshot *s, struct plan *p)
{
	if (!s->ram)
		return;
	p->snapshot_ram = s->ram;
	p->snapshot_ram_share = s->save;
	free(p->memory_why);
	p->memory_why = xasprintf("guest RAM %llu MiB in the snapshot's file %s, mapped %s: snapshot-memory = shared "
				  "(x-ignore-shared leaves it out of the migration stream)",
				  (unsigned long long)(p->cfg->memory >> 20), s->ram,
				  s->save ? "shared while saving" : "privately, copy-on-write");
}

int snapshot_verify(struct snapshot *s, const struct plan *p, const struct qemu_cmdline *c)
{
	long long start = monotonic_ms();
	int r = snapshot_manifest_check(s->dir, p, c, &s->qemu_version);

	/* a frozen RBD image lives on the cluster: it may have been removed there since */
	for (size_t i = 0; i < p->n_disks && r == 0; i++)
		if (p->disks[i].cfg->backend == BACKEND_RBD && snapshot_disk_frozen(p->disks[i].cfg)) {
			char *frozen = snapshot_frozen_path(s->dir, p->disks[i].cfg);

			r = rbd_snapshot_check(frozen, p->disks[i].cfg->name);
			free(frozen);
		}
	if (r == 0)
		log_info("snapshot %s matches this machine (manifest and state digest checked in %lld ms)", s->dir,
			 monotonic_ms() - start);
	return r;
}

void snapshot_restore_argv(struct snapshot *s, const struct plan *p, struct qemu_cmdline *c)
{
	int fd = QEMU_FD_EXTRA + (int)p->n_extra_fds + (int)c->n_fds;

	c->fds = xrealloc(c->fds, (c->n_fds + 1) * sizeof(*c->fds));
	c->fds[c->n_fds++] = (struct qemu_fd){ xasprintf("%s/" SNAPSHOT_STATE, s->dir), O_RDONLY | O_CLOEXEC, false };
	/* defer: nothing is read before snapshot_check_qemu has seen qemu's version (snapshot_load) */
	strv_push_many(&c->argv, "-incoming", "defer", NULL);
	s->state_fd = fd;
}

int snapshot_check_qemu(const struct snapshot *s, struct qmp *q)
{
	char *now = snapshot_qemu_version(q->greeting);
	int r = 0;

	if (!now || strcmp(now, s->qemu_version))
		r = log_error("snapshot %s was saved by qemu %s; this is qemu %s (rebuild it with vmlaunch --snapshot CONF)",
			      s->dir, s->qemu_version, now ? now : "of unknown version");
	free(now);
	return r;
}

static int migration_status(struct qmp *q, char **error)
{
	struct json_object *ret, *status, *desc;
	int r = qmp_execute(q, "query-migrate", NULL, &ret, QMP_TIMEOUT_MS);
	const char *st;

	*error = NULL;
	if (r < 0)
		return r;
	st = json_object_object_get_ex(ret, "status", &status) ? json_object_get_string(status) : "";
	r = !strcmp(st, "completed") ? 1 : !strcmp(st, "failed") || !strcmp(st, "cancelled") ? -EIO : 0;
	if (r < 0)
		*error = xstrdup(json_object_object_get_ex(ret, "error-desc", &desc) ? json_object_get_string(desc) : st);
	json_object_put(ret);
	return r;
}

/* x-ignore-shared: RAM blocks mapped shared are left out of the stream (qemu's migration/ram.c, ramblock_is_ignored);
 * both ends must agree, since the stream then carries each block's address. */
static int ignore_shared(struct qmp *q)
{
	struct json_object *args = json_object_new_object(), *caps = json_object_new_array(), *cap = json_object_new_object();

	json_object_object_add(cap, "capability", json_object_new_string("x-ignore-shared"));
	json_object_object_add(cap, "state", json_object_new_boolean(1));
	json_object_array_add(caps, cap);
	json_object_object_add(args, "capabilities", caps);
	return qmp_execute(q, "migrate-set-capabilities", args, NULL, QMP_TIMEOUT_MS);
}

int snapshot_load(const struct snapshot *s, struct qmp *q)
{
	long long start = monotonic_ms(), deadline = start + READY_TIMEOUT_MS;
	struct json_object *args = json_object_new_object();
	char *error, *uri = xasprintf("fd:%d", s->state_fd);
	int r;

	json_object_object_add(args, "uri", json_object_new_string(uri));
	free(uri);
	r = s->shared ? ignore_shared(q) : 0;
	if (r == 0)
		r = qmp_execute(q, "migrate-incoming", args, NULL, QMP_TIMEOUT_MS);
	else
		json_object_put(args);
	if (r < 0)
		return r;

	while ((r = migration_status(q, &error)) == 0 && monotonic_ms() < deadline)
		nanosleep(&(struct timespec){ .tv_nsec = MIGRATE_POLL_MS * 1000000L }, NULL);
	if (r == -EIO) {
		log_error("qemu could not load snapshot %s: %s", s->dir, error);
		free(error);
		return r;
	}
	if (r == 0)
		return log_error("qemu did not load snapshot %s in %d s", s->dir, READY_TIMEOUT_MS / 1000);
	if (r < 0)
		return r;
	log_info("snapshot %s loaded in %lld ms", s->dir, monotonic_ms() - start);
	return 0;
}

/* Until the guest's "ready" line on the status port, relaying its console meanwhile (a full console would stall
 * its boot). 0; -EINTR on a signal; -EIO when qemu exits first. */
static int wait_ready(const struct plan *p, struct vm_process *vm, int sigfd)
{
	long long deadline = monotonic_ms() + READY_TIMEOUT_MS;
	char line[64];
	size_t len = 0;

	for (;;) {
		struct pollfd fds[4] = { { vm->status_fd, POLLIN, 0 }, { vm->pidfd, POLLIN, 0 }, { sigfd, POLLIN, 0 },
					 { vm->console.qemu_fd, POLLIN, 0 } };
		long long left = deadline - monotonic_ms();

		if (left <= 0)
			return log_error("the guest did not get ready for a snapshot in %d s (its console: %s)",
					 READY_TIMEOUT_MS / 1000, p->console_log ? p->console_log : "stdio");
		if (poll(fds, 4, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return log_errno(errno, "poll");
		}
		if (fds[3].revents) {
			char buf[16384];

			console_from_guest(&vm->console, buf, sizeof(buf));
		}
		if (fds[2].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				log_error("interrupted by %s before the snapshot was saved", strsignal((int)si.ssi_signo));
				return -EINTR;
			}
		}
		if (fds[0].revents) {
			ssize_t n = read(vm->status_fd, line + len, sizeof(line) - 1 - len);

			if (n > 0) {
				len += (size_t)n;
				line[len] = '\0';
				if (strstr(line, "ready\n"))
					return 0;
				if (strchr(line, '\n')) /* exit=125: the agent could not start */
					return log_error("the guest reported \"%.*s\" instead of getting ready for a snapshot "
							 "(its console: %s)",
							 (int)strcspn(line, "\n"), line, p->console_log ? p->console_log : "stdio");
				if (len == sizeof(line) - 1)
					len = 0;
			}
		}
		if (fds[1].revents)
			return log_error("qemu exited before the guest got ready for a snapshot");
	}
}

/* A firmware-booted guest is ready when its qemu-guest-agent answers guest-sync-delimited (the 0xFF first flushes
 * whatever a previous client left in the agent's parser). The console is relayed meanwhile. */
static int wait_agent(const struct plan *p, struct vm_process *vm, int sigfd)
{
	long long deadline = monotonic_ms() + (long long)p->cfg->agent_timeout * 1000, next = 0;
	const char *sync = "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":2303}}\n";
	char buf[4096];
	size_t len = 0;

	for (;;) {
		struct pollfd fds[4] = { { vm->agent_fd, POLLIN, 0 }, { vm->pidfd, POLLIN, 0 }, { sigfd, POLLIN, 0 },
					 { vm->console.qemu_fd, POLLIN, 0 } };
		long long now = monotonic_ms();

		if (now >= deadline)
			return log_error("no qemu-guest-agent answered in %u s: nothing to snapshot (agent-timeout)",
					 p->cfg->agent_timeout);
		if (now >= next) {
			/* never blocking: qemu reads nothing from the port until the guest's agent opens it, and a vmlaunch
			 * stuck here would stop relaying the console, whose backlog then stalls the guest (agent.c) */
			if (send(vm->agent_fd, sync, strlen(sync), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
			    errno != EWOULDBLOCK)
				return log_errno(errno, "cannot write to qemu-guest-agent's port");
			next = now + 1000;
		}
		if (poll(fds, 4, (int)(next - now)) < 0 && errno != EINTR)
			return log_errno(errno, "poll");
		if (fds[3].revents)
			console_from_guest(&vm->console, buf, sizeof(buf));
		if (fds[2].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si))
				return log_error("interrupted by %s before the snapshot was saved", strsignal((int)si.ssi_signo)),
				       -EINTR;
		}
		if (fds[0].revents) {
			ssize_t n = read(vm->agent_fd, buf + len, sizeof(buf) - 1 - len);

			if (n > 0) {
				len += (size_t)n;
				buf[len] = '\0';
				if (strstr(buf, "\"return\": 2303") || strstr(buf, "\"return\":2303"))
					return 0;
				if (len > sizeof(buf) / 2)
					len = 0;
			}
		}
		if (fds[1].revents)
			return log_error("qemu exited before the guest's agent answered");
	}
}

/* Streams the stopped VM's state into the open file `fd` (getfd + migrate fd:), waiting until it completes. */
static int migrate_to(struct qmp *q, int fd, bool shared)
{
	struct json_object *args;
	int r;

	if (shared && (r = ignore_shared(q)) < 0)
		return r;
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("snapshot"));
	r = qmp_execute_fd(q, "getfd", args, fd, NULL, QMP_TIMEOUT_MS);
	if (r < 0)
		return r;
	/* qemu's default bandwidth limit is meant for a live migration over a network, not a file on this host */
	args = json_object_new_object();
	json_object_object_add(args, "max-bandwidth", json_object_new_int64(1LL << 40));
	r = qmp_execute(q, "migrate-set-parameters", args, NULL, QMP_TIMEOUT_MS);
	if (r < 0)
		return r;
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:snapshot"));
	r = qmp_execute(q, "migrate", args, NULL, QMP_TIMEOUT_MS);
	if (r < 0)
		return r;
	for (long long deadline = monotonic_ms() + READY_TIMEOUT_MS; monotonic_ms() < deadline;) {
		char *error;

		r = migration_status(q, &error);
		if (r == -EIO) {
			log_error("qemu could not save the VM's state: %s", error);
			free(error);
		}
		if (r != 0)
			return r < 0 ? r : 0;
		nanosleep(&(struct timespec){ .tv_nsec = MIGRATE_POLL_MS * 1000000L }, NULL);
	}
	return log_error("qemu did not finish saving the VM's state in %d s", READY_TIMEOUT_MS / 1000);
}

/* What a killed save leaves: DIR.tmp-PID or DIR.old-PID with at most a state and a manifest in it. */
static int undo_partial(const char *dir, const char *state_dir)
{
	const char *base = strrchr(dir, '/');
	char *f;

	(void)state_dir;
	if (!base || (!strstr(base, ".tmp-") && !strstr(base, ".old-")))
		return log_error("snapshot-partial %s: not a name a save makes; left alone", dir);
	f = xasprintf("%s/" SNAPSHOT_STATE, dir);
	unlink(f);
	free(f);
	f = xasprintf("%s/" SNAPSHOT_MANIFEST, dir);
	unlink(f);
	free(f);
	f = xasprintf("%s/ram", dir);
	unlink(f);
	free(f);
	f = xasprintf("%s/" SNAPSHOT_UEFI_VARS, dir);
	unlink(f);
	free(f);
	{
		DIR *d = opendir(dir);
		struct dirent *e;

		/* the frozen disks: disk-NAME.qcow2, disk-NAME.raw, and disk-NAME.rbd naming a frozen RBD image */
		while (d && (e = readdir(d)))
			if (!strncmp(e->d_name, "disk-", 5)) {
				f = xasprintf("%s/%s", dir, e->d_name);
				/* a frozen RBD image still cloned by restores stays, with the file that names it */
				if (!strstr(e->d_name, ".rbd") || rbd_snapshot_drop(f) == 0)
					unlink(f);
				free(f);
			}
		if (d)
			closedir(d);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		return log_errno(errno, "cannot remove %s", dir);
	return 0;
}
JOURNAL_UNDO(snapshot_partial, "snapshot-partial", undo_partial)

static int mkdir_parents(const char *dir)
{
	char *path = xstrdup(dir);
	int r = 0;

	for (char *slash = strchr(path + 1, '/'); slash && !r; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			r = log_errno(errno, "cannot create %s", path);
		*slash = '/';
	}
	free(path);
	return r;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0 || fsync(fd) < 0)
		r = log_errno(errno, "cannot sync %s", path);
	if (fd >= 0)
		close(fd);
	return r;
}

int snapshot_prepare(const struct snapshot *s, const struct plan *p, struct journal *journal)
{
	const struct privileges *pv = p->privileges;
	int r = mkdir_parents(s->dir), fd;

	if (r == 0)
		r = journal_add(journal, "snapshot-partial", s->tmp);
	if (r < 0)
		return r;
	if (mkdir(s->tmp, 0700) < 0)
		return log_errno(errno, "cannot create %s", s->tmp);
	if (!s->ram)
		return 0;
	/* qemu opens it again through /proc/self/fd read-write (a private mapping too): its user must own it */
	fd = open(s->ram, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(errno, "cannot create %s", s->ram);
	if (ftruncate(fd, (off_t)p->cfg->memory) < 0 ||
	    (pv && pv->switch_user && fchown(fd, pv->uid, pv->gid) < 0))
		r = log_errno(errno, "cannot prepare %s for qemu", s->ram);
	close(fd);
	return r;
}

int snapshot_restore_disks(const struct snapshot *s, const struct plan *p, struct journal *journal)
{
	for (size_t i = 0; i < p->n_disks; i++) {
		char *frozen;
		int r;

		if (!snapshot_disk_frozen(p->disks[i].cfg))
			continue;
		frozen = snapshot_frozen_path(s->dir, p->disks[i].cfg);
		if (p->disks[i].cfg->backend == BACKEND_RBD) {
			r = rbd_snapshot_clone(p->cfg, p->disks[i].cfg, frozen, journal);
			free(frozen);
			if (r < 0)
				return r;
			continue;
		}
		/* an overlay replaces the run's fresh one; an image fills the run's fresh disk, which was left unfilled
		 * (storage_prepare skips its source) */
		r = populate_copy_raw(frozen, p->disks[i].target->filename,
				      p->disks[i].cfg->backend == BACKEND_FILE ? POPULATE_RAW_CREATE
				      : p->disks[i].target->zeroed	  ? POPULATE_RAW_ZEROED
									  : 0);
		free(frozen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A UEFI guest's variable store between this run's file and the snapshot directory `dir`: frozen there after a
 * save's qemu quit (it then holds every variable written before the save), or copied back over a restore's fresh
 * store (firmware_vars_prepare's), so the file agrees with the flash content in the state, which qemu writes back
 * to it once the restored VM runs. */
static int copy_varstore(const struct plan *p, const char *dir, bool freeze)
{
	char *frozen;
	int r;

	if (!p->uefi)
		return 0;
	frozen = xasprintf("%s/" SNAPSHOT_UEFI_VARS, dir);
	r = freeze ? populate_copy_raw(p->uefi_vars, frozen, POPULATE_RAW_CREATE)
		   : populate_copy_raw(frozen, p->uefi_vars, POPULATE_RAW_CREATE);
	free(frozen);
	return r;
}

int snapshot_restore_varstore(const struct snapshot *s, const struct plan *p)
{
	return copy_varstore(p, s->dir, false);
}

/* tmp → dir, replacing an older snapshot there; each name journaled first, so a kill leaves neither behind. */
static int install(const char *tmp, const char *dir, struct journal *journal)
{
	char *old = xasprintf("%s.old-%d", dir, (int)getpid()), *parent = xstrdup(dir), *slash;
	int r = 0;

	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (snapshot_exists(dir)) {
		r = journal_add(journal, "snapshot-partial", old);
		if (!r && rename(dir, old) < 0)
			r = log_errno(errno, "cannot move the old snapshot %s aside", dir);
	}
	if (!r && rename(tmp, dir) < 0)
		r = log_errno(errno, "cannot rename %s to %s", tmp, dir);
	if (!r)
		r = fsync_path(parent);
	if (!r)
		undo_partial(old, NULL); /* the old one, now that the new one is in place */
	free(old);
	free(parent);
	return r;
}

/* The guest stopped and its device state (and RAM, unless shared) written to STATE and synced; *size its size. */
static int save_state(const struct snapshot *s, struct vm_process *vm, const char *state, off_t *size)
{
	long long saved;
	struct stat st;
	int fd, r = qmp_execute(&vm->qmp, "stop", NULL, NULL, QMP_TIMEOUT_MS);

	if (r < 0)
		return r;
	fd = open(state, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(errno, "cannot create %s", state);
	saved = monotonic_ms();
	r = migrate_to(&vm->qmp, fd, s->shared);
	if (r == 0 && fsync(fd) < 0)
		r = log_errno(errno, "cannot sync %s", state);
	if (r == 0 && fstat(fd, &st) < 0)
		r = log_errno(errno, "cannot check %s", state);
	close(fd);
	if (r < 0)
		return r;
	*size = st.st_size;
	log_info("state saved: %lld MiB in %lld ms", (long long)st.st_size >> 20, monotonic_ms() - saved);
	return 0;
}

/* qemu quit, so that the RAM file and the overlays hold everything; then each is made durable or copied. */
static int freeze_files(const struct snapshot *s, const struct plan *p, struct vm_process *vm, struct journal *journal)
{
	struct pollfd pf = { vm->pidfd, POLLIN, 0 };
	int r = 0;

	qmp_send(&vm->qmp, "quit", NULL);
	/* the RAM file (shared memory) is complete once qemu has let go of it */
	if (poll(&pf, 1, 10000) > 0) {
		waitpid(vm->pid, NULL, 0);
		vm->pid = -1;
	}
	if (vm->pid > 0) /* qemu must have let go of the RAM file and the overlays: it may still hold writes */
		return log_errno(ETIMEDOUT, "qemu did not exit after saving");
	if (s->ram) {
		int ram = open(s->ram, O_RDONLY | O_CLOEXEC);

		if (ram < 0 || fsync(ram) < 0)
			r = log_errno(errno, "cannot complete %s", s->ram);
		if (ram >= 0)
			close(ram);
	}
	for (size_t i = 0; i < p->n_disks && r == 0; i++) {
		char *frozen;

		if (!snapshot_disk_frozen(p->disks[i].cfg))
			continue;
		frozen = snapshot_frozen_path(s->tmp, p->disks[i].cfg);
		if (p->disks[i].cfg->backend == BACKEND_RBD) {
			/* a copy on the cluster, kept once the snapshot is installed under s->dir */
			char *keep_if = snapshot_frozen_path(s->dir, p->disks[i].cfg);

			r = rbd_snapshot_freeze(p->cfg, p->disks[i].cfg, frozen, keep_if, journal);
			free(keep_if);
		} else {
			/* a RAM disk or LV is a block device: its unwritten blocks read as zeros, which stay holes here */
			r = populate_copy_raw(p->disks[i].target->filename, frozen, POPULATE_RAW_CREATE);
		}
		free(frozen);
	}
	return r;
}

int snapshot_save(const struct snapshot *s, const struct plan *p, const struct qemu_cmdline *c, struct vm_process *vm,
		  int sigfd, struct journal *journal)
{
	char *state = xasprintf("%s/" SNAPSHOT_STATE, s->tmp);
	char *version = snapshot_qemu_version(vm->qmp.greeting);
	long long start = monotonic_ms();
	off_t size = 0;
	int r;

	r = qmp_execute(&vm->qmp, "cont", NULL, NULL, QMP_TIMEOUT_MS);
	if (r == 0)
		r = p->agent_mode ? wait_agent(p, vm, sigfd) : wait_ready(p, vm, sigfd);
	if (r == 0) {
		log_info("the guest is ready after %lld ms; saving it to %s", monotonic_ms() - start, s->dir);
		r = save_state(s, vm, state, &size);
	}
	if (r == 0) {
		test_hook_stop_at("snapshot-save"); /* the state complete, no manifest yet: a kill here must leave nothing */
		r = freeze_files(s, p, vm, journal);
	}
	if (r == 0)
		r = copy_varstore(p, s->tmp, true);
	if (r == 0)
		test_hook_stop_at("snapshot-frozen"); /* the disks' frozen images written too, still no manifest */
	if (r == 0)
		r = snapshot_manifest_write(s->tmp, p, c, version ? version : "unknown");
	if (r == 0)
		r = fsync_path(s->tmp);
	if (r == 0)
		r = install(s->tmp, s->dir, journal);
	if (r == 0)
		fprintf(stderr, "vmlaunch: snapshot saved to %s (%lld MiB of state)\n", s->dir, (long long)size >> 20);
	free(version);
	free(state);
	return r == 0 ? EXIT_VM_OK : r == -EINTR ? 128 + SIGINT : EXIT_SETUP_FAILED;
}

void snapshot_free(struct snapshot *s)
{
	free(s->dir);
	free(s->qemu_version);
	free(s->tmp);
	free(s->ram);
	s->dir = s->qemu_version = s->tmp = s->ram = NULL;
}
