/* systemd's readiness protocol (sd_notify): READY=1 once the guest runs, STATUS= lines, for Type=notify units. */
#ifndef VMLAUNCH_NOTIFY_H
#define VMLAUNCH_NOTIFY_H

/* Sends "STATE" to $NOTIFY_SOCKET when systemd set one; does nothing otherwise. Never fails the caller. */
void notify_systemd(const char *state);

#endif
