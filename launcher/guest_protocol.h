/* The contract between vmlaunch and the bundled guest (initramfs/): names both sides must agree on. */
#ifndef VMLAUNCH_GUEST_PROTOCOL_H
#define VMLAUNCH_GUEST_PROTOCOL_H

/*
 * Command mode (`vmlaunch CONFIG -- COMMAND ARG...`):
 *  - the command's argv reaches the guest as the fw_cfg file GUEST_FWCFG_ARGV: each argument followed by one NUL
 *    byte, no quoting of any kind (the guest reads it from
 *    /sys/firmware/qemu_fw_cfg/by_name/opt/org.vmlaunch/argv/raw);
 *  - the guest runs it with stdin from /dev/null, its stdout and stderr connected to the virtio-serial ports named
 *    GUEST_PORT_STDOUT and GUEST_PORT_STDERR (found through /sys/class/virtio-ports/NAME/name);
 *  - when the command has ended and both ports are drained, the guest writes one line "exit=N\n" (N in 0..255; a
 *    command killed by signal S reports 128+S) to GUEST_PORT_STATUS, syncs, and powers off;
 *  - a guest that cannot start the command reports exit=127 (not found) or exit=126 (not executable), like a shell.
 * Without the fw_cfg file the guest runs its demo (initramfs/init).
 *
 * Kernel command line words that vmlaunch adds:
 *  - GUEST_CMDLINE_INTERACTIVE "=1" when vmlaunch's stdin is a terminal: the demo drops to a shell on the serial
 *    console instead of powering off;
 *  - the demo writes and verifies its test pattern only on the virtio disk whose serial is named by
 *    GUEST_CMDLINE_PATTERN_DISK (set in demo.conf's append), never on any other disk.
 */
#define GUEST_FWCFG_ARGV "opt/org.vmlaunch/argv"
#define GUEST_PORT_STDOUT "org.vmlaunch.stdout"
#define GUEST_PORT_STDERR "org.vmlaunch.stderr"
#define GUEST_PORT_STATUS "org.vmlaunch.status"
#define GUEST_CMDLINE_INTERACTIVE "vmlaunch.interactive"
#define GUEST_CMDLINE_PATTERN_DISK "vmlaunch.pattern-disk"

#endif
