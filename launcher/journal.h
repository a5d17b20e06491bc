/* The undo journal: one line per acquisition in the state dir (fsynced where a host crash would not undo it); teardown replays it backwards. The journal is
 * a plain log plus a registry: each module registers its own undo verbs (JOURNAL_UNDO) and knows only itself. */
#ifndef VMLAUNCH_JOURNAL_H
#define VMLAUNCH_JOURNAL_H

#include <stdbool.h>

struct journal {
	int fd;
	char *path;
};

/* One undo verb. `undo` gets the record's argument and the state dir the journal lives in (what it may remove must
 * lie inside it or be something the module can prove it made); it is idempotent: replaying a journal twice, or one
 * whose step never happened, is harmless. An undo is recorded before its acquisition (the intent), so a kill in
 * between still finds it. `durable`: the acquisition outlives a host crash (an LVM volume, an RBD image), so its
 * record must be on disk before it acts; otherwise a write() is enough, since a killed vmlaunch loses nothing it
 * wrote, and a crash of the host ends the acquisition itself. */
struct journal_undo {
	const char *verb;
	int (*undo)(const char *arg, const char *state_dir);
	bool durable;
	struct journal_undo *next;
};

/* Registers an undo verb at program start, the way kvmtool's subsystems register their init and exit. */
#define JOURNAL_UNDO_REGISTER(name, verb_, fn, durable_)                                                       \
	static struct journal_undo journal_undo_##name = { .verb = (verb_), .undo = (fn), .durable = (durable_) }; \
	__attribute__((constructor)) static void journal_undo_register_##name(void)                              \
	{                                                                                                         \
		journal_register(&journal_undo_##name);                                                           \
	}
#define JOURNAL_UNDO(name, verb_, fn) JOURNAL_UNDO_REGISTER(name, verb_, fn, true)
/* For what a host crash removes by itself: processes, mounts, and files and directories in the state dir (a state
 * dir that outlived a reboot, /run on disk, is emptied whole by the next run's cleanup, journal or not). */
#define JOURNAL_UNDO_VOLATILE(name, verb_, fn) JOURNAL_UNDO_REGISTER(name, verb_, fn, false)
void journal_register(struct journal_undo *u);

/* Creates STATE_DIR/journal (0600, refusing to follow a symlink). */
int journal_create(struct journal *j, const char *state_dir);
/* Appends "VERB ARG"; for a durable verb (or one not registered) fdatasyncs before returning, so a crash of the host
 * right after still finds the record. */
int journal_add(struct journal *j, const char *verb, const char *arg);
/* Runs every undo of STATE_DIR's journal in reverse order; returns 0 or the first error (all are attempted). */
int journal_replay(const char *state_dir);
void journal_close(struct journal *j);
/* Whether STATE_DIR holds a journal: a run that did not finish left it. */
bool journal_exists(const char *state_dir);

/* Percent-encoding of journal arguments, exposed for tests. */
char *journal_encode(const char *arg);
char *journal_decode(const char *enc);

#endif
