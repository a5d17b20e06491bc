/* The contract between vmlaunch and the bundled guest (initramfs/): names both sides must agree on. */
#ifndef VMLAUNCH_GUEST_PROTOCOL_H
#define VMLAUNCH_GUEST_PROTOCOL_H

/*
 * Command mode (`vmlaunch CONFIG -- COMMAND ARG...`):
 *  - the command's argv reaches the guest as the fw_cfg file GUEST_FWCFG_ARGV: each argument followed by one NUL
 *    byte, no quoting of any kind (the guest reads it from
 *    /sys/firmware/qemu_fw_cfg/by_name/opt/org.vmlaunch/argv/raw);
 *  - the guest runs it with its stdout and stderr connected to the virtio-serial ports named GUEST_PORT_STDOUT and
 *    GUEST_PORT_STDERR (found through /sys/class/virtio-ports/NAME/name), and its stdin fed from the port
 *    GUEST_PORT_STDIN through a pipe the guest writes: a command that never reads its stdin is never blocked by it;
 *  - the end of the host's stdin: once the host has written all of it (BYTES in total) to GUEST_PORT_STDIN, it
 *    writes one line "eof=BYTES\n" to GUEST_PORT_STATUS; the guest closes the command's stdin when it has read
 *    BYTES from the stdin port (the line and the data travel on different queues, so either may arrive first).
 *    The host never closes the stdin port's chardev itself: that would be the port's disconnection, not an EOF;
 *  - with the fw_cfg file GUEST_FWCFG_TTY ("ROWS COLS TERM\n", written when vmlaunch's stdin and stdout are a
 *    terminal) the command gets a pty instead: the guest opens a pty (/dev/pts/ptmx of the root it runs in, devpts
 *    mounted at /dev/pts first in the bundled guest), makes its other end the command's controlling terminal and
 *    stdin, stdout and stderr, sets its window size to ROWS x COLS and TERM in the environment, and copies
 *    GUEST_PORT_STDIN to the pty and the pty to GUEST_PORT_STDOUT (nothing on GUEST_PORT_STDERR but the guest's own
 *    errors). The host's terminal is in raw mode meanwhile, so Ctrl-C is a byte the pty turns into SIGINT. A line
 *    "winsize=ROWS COLS\n" from the host on GUEST_PORT_STATUS resizes the pty (the command gets SIGWINCH); an
 *    eof= line is ignored in this mode;
 *  - the command's output reaches the ports through pipes the guest copies, counting the bytes; when the command
 *    has ended and its pipes are closed, the guest writes one line "exit=N out=BYTES err=BYTES\n" (N in 0..255; a
 *    command killed by signal S reports 128+S) to GUEST_PORT_STATUS and waits (up to 60 s) for the host's line
 *    "ok\n" on that port (skipping other lines: an eof= may still come), which the host sends once it has read BYTES from each port: qemu drops what a slow host has
 *    not taken yet when the VM powers off. Then the guest syncs and powers off;
 *  - a guest that cannot start the command reports exit=127 (not found) or exit=126 (not executable), like a shell,
 *    and exit=125 (GUEST_EXIT_AGENT_FAILURE) when it could not set up what the command needs: a port missing after
 *    5 s, an empty argv, an unknown user, a malformed env entry, a root disk that does not mount, a share that does
 *    not mount, a pty that cannot be opened. The reason goes to the serial console and to the stderr port.
 * Snapshot mode (vmlaunch --snapshot, launcher/snapshot.c): the fw_cfg file GUEST_FWCFG_WAIT exists (its content
 * is not read) and GUEST_FWCFG_ARGV is empty. Once its ports are open the guest writes "ready\n" to
 * GUEST_PORT_STATUS and waits there for the command; the host saves the VM at that point, and every restored copy
 * goes on from it. The host sends, in this order:
 *    "file NAME BYTES\n" + BYTES bytes, for NAME argv, then env, user and tty when they exist, each with the
 *       content the fw_cfg file of that name would have had;
 *    "seed HEX\n": 16 to 64 random bytes the guest adds to its entropy pool with RNDADDENTROPY, then reseeds the
 *       kernel's generator from it (RNDRESEEDCRNG), so restored siblings' random numbers differ (the vmgenid
 *       device has already made the kernel reseed where it has the driver: this also covers kernels without it);
 *    "hostname NAME\n": the run's [vm] name, which the guest sets (sethostname): siblings do not share the saved one;
 *    "time SECONDS NANOSECONDS\n": the host's CLOCK_REALTIME, which the guest sets (its own is the saved one);
 *    "run\n": the guest first reads past what its /dev/hwrng had buffered at the save (the same bytes in every
 *       sibling; non-blocking), then the command runs as in command mode, and everything after (eof=, winsize=, ok)
 *       is as there.
 * Without the fw_cfg file the guest runs its demo (initramfs/init), or boots the root image's init (below).
 *
 * Optional fw_cfg files, in command mode and, where it makes sense, without a command:
 *  - GUEST_FWCFG_USER: a user name, nothing else (one trailing newline tolerated); the command runs as that user
 *    of the passwd and group files of the root it runs in (the root image's, or the bundled guest's, which knows
 *    root and nobody): uid, gid, supplementary groups, HOME, USER, LOGNAME, SHELL, cwd = HOME (/ if HOME does not
 *    exist). Absent: root, HOME=/root. An unknown user is exit=125;
 *  - GUEST_FWCFG_ENV: NAME=VALUE entries, each followed by one NUL, added last to the command's environment (they
 *    override PATH, HOME and the rest). An entry without '=' or with an empty NAME is exit=125;
 *  - GUEST_FWCFG_SHARES: text, one line per host directory: "TAG MODE MOUNTPOINT\n", single spaces, MODE "ro" or
 *    "rw", MOUNTPOINT absolute and without whitespace. Before the command (or the root image's init, or the demo)
 *    starts, the guest mounts each with `mount -t virtiofs [-o ro] TAG ROOT/MOUNTPOINT` (ROOT the root image when
 *    there is one; symlinks resolved inside it; a missing mount point is created). "ro" is the guest kernel's
 *    read-only mount: writes fail with EROFS. In command mode a share that does not mount is exit=125 and the
 *    command does not run; without one the guest says so on the console and boots on. The host side per TAG:
 *    virtiofsd on a socket, `-chardev socket,id=ID,path=SOCK -device vhost-user-fs-pci,chardev=ID,tag=TAG`, and
 *    guest RAM that virtiofsd can map (`-object memory-backend-memfd,id=mem,size=SIZE,share=on -machine
 *    memory-backend=mem`). Mount points under /run, /tmp, /dev, /proc or /sys are hidden by the mounts made there.
 *
 * Kernel command line words that vmlaunch adds:
 *  - GUEST_CMDLINE_INTERACTIVE "=1" when vmlaunch's stdin is a terminal: the demo drops to a shell on the serial
 *    console instead of powering off;
 *  - the demo writes and verifies its test pattern only on the virtio disk whose serial is named by
 *    GUEST_CMDLINE_PATTERN_DISK (set in demo.conf's append), never on any other disk;
 *  - GUEST_CMDLINE_ROOT "=SERIAL": boot a root image's userland on the bundled kernel. The guest mounts the
 *    virtio disk with that serial at /sysroot: its whole-disk filesystem, else the first partition (by number) with
 *    an ext4 (ext2/3), xfs or btrfs superblock that mounts; read-write unless the disk is read-only (readonly=on).
 *    ext4 is in the initramfs; xfs and btrfs load from the modules disk. With a command, the command runs chrooted
 *    in the image with its /proc, /sys, /dev, /dev/pts, /dev/shm, /run and /tmp mounted, PATH
 *    /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; afterwards the guest kills what it left and
 *    unmounts everything under /sysroot (a busy root is remounted read-only) before it reports the status. Without
 *    a command, the guest moves /proc, /sys and /dev into the image and switch_roots to its /sbin/init (no
 *    /sbin/init: console error, power off). No mountable filesystem: console error, exit=125 in command mode;
 *  - GUEST_CMDLINE_MODULES "=SERIAL": a read-only virtio disk holding an ext4 filesystem whose top directory is
 *    the bundled kernel's complete /lib/modules/KVER (build/modules.img, `initramfs/build.sh modules-image`). The
 *    guest mounts it read-only at its own /lib/modules/KVER (busybox modprobe loads xfs, btrfs and the rest from
 *    it) and, with a root image, shows it at the image's /lib/modules/KVER: a tmpfs over the image's /lib/modules
 *    holding a read-only bind, so the image's udev and modprobe work and nothing is written to the image. The
 *    serial is the one the host gives that disk, e.g. "modules";
 *  - GUEST_CMDLINE_NET "=" GUEST_CMDLINE_NET_DHCP: lo and every eth* / en* interface up, one busybox udhcpc per
 *    interface (3 discovers 1 s apart, then given up; after a lease it renews in the background, or exits before
 *    switch_root), which sets the address, the default route and /etc/resolv.conf (shown in a root image over its
 *    /etc/resolv.conf, without writing to it). Without the word only lo is brought up; virtio_net is loaded
 *    whenever the VM has a virtio NIC.
 */
#define GUEST_FWCFG_ARGV "opt/org.vmlaunch/argv"
#define GUEST_FWCFG_USER "opt/org.vmlaunch/user"
#define GUEST_FWCFG_ENV "opt/org.vmlaunch/env"
#define GUEST_FWCFG_SHARES "opt/org.vmlaunch/shares"
#define GUEST_FWCFG_TTY "opt/org.vmlaunch/tty"
#define GUEST_FWCFG_WAIT "opt/org.vmlaunch/wait"
#define GUEST_PORT_STDOUT "org.vmlaunch.stdout"
#define GUEST_PORT_STDERR "org.vmlaunch.stderr"
#define GUEST_PORT_STATUS "org.vmlaunch.status"
#define GUEST_PORT_STDIN "org.vmlaunch.stdin"
#define GUEST_CMDLINE_INTERACTIVE "vmlaunch.interactive"
#define GUEST_CMDLINE_PATTERN_DISK "vmlaunch.pattern-disk"
#define GUEST_CMDLINE_ROOT "vmlaunch.root"
#define GUEST_CMDLINE_MODULES "vmlaunch.modules"
#define GUEST_CMDLINE_NET "vmlaunch.net"
#define GUEST_CMDLINE_NET_DHCP "dhcp"
#define GUEST_EXIT_AGENT_FAILURE 125
#define GUEST_EXIT_NOT_EXECUTABLE 126
#define GUEST_EXIT_NOT_FOUND 127

#endif
