/* Proof that vmlaunch made a host object for one VM, kept where a forged journal cannot reach: an undo acts only on
 * what carries the mark. */
#ifndef VMLAUNCH_OWNERSHIP_H
#define VMLAUNCH_OWNERSHIP_H

#include <stddef.h>

/* The mark is a trusted.* extended attribute on the VM's state dir ("trusted.vmlaunch.KEY" = VALUE): only
 * CAP_SYS_ADMIN can set or read that namespace, so whoever can write the journal (a file) cannot also vouch for
 * its records. Set before the acquisition, like the journal record, and cleared by the undo. */
int ownership_mark(const char *state_dir, const char *key, const char *value);
/* 1 when the state dir carries KEY with exactly VALUE, 0 when it carries none or another, negative errno when it
 * cannot be read (logged). */
int ownership_check(const char *state_dir, const char *key, const char *value);
/* Reads KEY's value into buf (NUL-terminated): 1 when present, 0 when absent, negative errno (logged). */
int ownership_get(const char *state_dir, const char *key, char *buf, size_t size);
void ownership_clear(const char *state_dir, const char *key);

#endif
