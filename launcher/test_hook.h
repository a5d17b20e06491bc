/* A test-only pause point: VMLAUNCH_STOP_AT=PHASE makes vmlaunch stop itself (SIGSTOP) at that phase, so the kill
 * tests can SIGKILL any process at a known point of the lifecycle instead of guessing with sleeps. */
#ifndef VMLAUNCH_TEST_HOOK_H
#define VMLAUNCH_TEST_HOOK_H

#include <stdbool.h>

/* Phases: "state" (state dir, journal and guardian exist), "hugepages" (reserved), "disk" (a disk was made, before it is filled), "zram-added" (hot_add answered, before the device's mark),
 * "qemu" (qemu started, guest not yet running), "running" (after cont), "teardown" (after the first undo). */
void test_hook_stop_at(const char *phase);
/* The guardian, a fork of vmlaunch, must never stop itself. */
void test_hook_disable(void);

/* In a helper's child before exec (command.c): VMLAUNCH_STOP_AT=helper-PROGRAM-ARG1 stops the helper itself, so a
 * kill test can kill vmlaunch in the middle of an acquisition and check that the helper dies with it. */
void test_hook_stop_helper(char *const argv[]);

/* VMLAUNCH_TEST_WITHHOLD=WHAT: true when vmlaunch is to leave out WHAT ("seed": the random bytes sent to a restored
 * guest), so a test can show what another mechanism (vmgenid) does on its own. */
bool test_hook_withhold(const char *what);

#endif
