#!/bin/bash
# Build the Debian 12 (bookworm) disk image vmlaunch's tests boot: tests/images/README.md.
# Usage (as root): tests/images/build-debian.sh OUTPUT.raw
#   3 GiB sparse raw disk, GPT: 1 = BIOS boot (grub-pc core), 2 = ESP (vfat), 3 = ext4 root (label root).
#   Boots with BIOS (grub i386-pc) and UEFI (grub x86_64-efi, removable path), serial console on ttyS0.
# The mirror comes from the host's apt sources and an apt proxy from `apt-config`; nothing here names one.
set -euo pipefail

SUITE=bookworm
SIZE=3G
PACKAGES=(
	systemd-sysv udev kmod dbus libpam-systemd procps netbase
	linux-image-amd64 initramfs-tools
	grub-pc-bin grub-efi-amd64-bin grub2-common
	openssh-server cloud-init python3-cffi-backend qemu-guest-agent
	make gcc libc6-dev sudo iproute2 ca-certificates e2fsprogs dosfstools
)
# The part of PACKAGES debootstrap resolves by itself (no virtual dependencies); apt-get adds the rest.
BOOTSTRAP_INCLUDE=systemd-sysv,udev,kmod,dbus,iproute2,ca-certificates,e2fsprogs,netbase,procps

die() { echo "build-debian: $*" >&2; exit 1; }
log() { printf '[%s] build-debian: %s\n' "$(date +%T)" "$*" >&2; }

[ $# -eq 1 ] || { echo "usage: $0 OUTPUT.raw" >&2; exit 2; }
OUT=$1
[ "$(id -u)" -eq 0 ] || die "must run as root (losetup, mount, chroot)"
for tool in debootstrap sgdisk partx losetup mkfs.vfat mmd mcopy mdir mkfs.ext4 blkid zerofree fallocate e2fsck apt-config wget; do
	command -v "$tool" >/dev/null || die "missing host tool $tool (see DEPS_IMAGES in tests/images/images.mk)"
done

# ---------------------------------------------------------------- mirror and proxy, from the host's apt
# Prints "URI SUITE" for every enabled deb entry with component main, from one-line .list files and
# deb822 .sources files alike.
apt_entries() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '{ sub(/#.*/, "") }
		     $1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			uri = $i; suite = $(i + 1)
			for (j = i + 2; j <= NF; j++) if ($j == "main") { print uri, suite; break }
		     }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'function flush(   u, s, nu, ns, a, b, k, l) {
			if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && tolower(enabled) != "no") {
				nu = split(uris, a, " "); ns = split(suites, b, " ")
				for (k = 1; k <= nu; k++) for (l = 1; l <= ns; l++) print a[k], b[l]
			}
			types = uris = suites = comps = enabled = ""; key = ""
		     }
		     /^[ \t]*#/ { next }
		     /^[ \t]*$/ { flush(); next }
		     /^[ \t]/ { val = $0; sub(/^[ \t]+/, "", val); append(key, val); next }
		     {
			key = tolower($0); sub(/:.*/, "", key)
			val = $0; sub(/^[^:]*:[ \t]*/, "", val)
			append(key, val)
		     }
		     function append(k, v) {
			if (k == "types") types = types " " v
			else if (k == "uris") uris = uris " " v
			else if (k == "suites") suites = suites " " v
			else if (k == "components") comps = comps " " v
			else if (k == "enabled") enabled = v
		     }
		     END { flush() }' "$f"
	done
}
ENTRIES=$(apt_entries | awk '$1 ~ /^(https?|ftp|file):\/\// && $2 ~ /^'"$SUITE"'(-updates|-security)?$/' | sort -u)
MIRROR=$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$ENTRIES")
[ -n "$MIRROR" ] || die "no 'deb URI $SUITE main' entry in /etc/apt/sources.list{,.d/*.list,.d/*.sources}"
log "mirror from host apt sources: $MIRROR"

# An apt proxy (Acquire::http::Proxy) applies to debootstrap's wget and to apt in the chroot.
APT_HTTP_PROXY='' APT_HTTPS_PROXY=''
eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy APT_HTTPS_PROXY Acquire::https::Proxy)"
if [ -n "$APT_HTTP_PROXY" ] && [ "$APT_HTTP_PROXY" != DIRECT ] && [ -z "${http_proxy:-}" ]; then
	export http_proxy=$APT_HTTP_PROXY
fi
if [ -n "$APT_HTTPS_PROXY" ] && [ "$APT_HTTPS_PROXY" != DIRECT ] && [ -z "${https_proxy:-}" ]; then
	export https_proxy=$APT_HTTPS_PROXY
fi
[ -z "${http_proxy:-}" ] || log "http proxy: $http_proxy"

# ---------------------------------------------------------------- cleanup on any exit
WORK='' LOOP='' ROOT='' DONE=0
MOUNTS=()
cleanup() {
	local rc=$? i p
	set +e
	if [ -n "$ROOT" ]; then
		# Anything still running inside the chroot was started by this script: stop it by PID.
		for p in /proc/[0-9]*; do
			[ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill "${p#/proc/}" 2>/dev/null
		done
	fi
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[i]}" 2>/dev/null || { sleep 1; umount "${MOUNTS[i]}"; } ||
			umount -l "${MOUNTS[i]}" || echo "build-debian: could not unmount ${MOUNTS[i]}" >&2
	done
	if [ -n "$LOOP" ]; then
		partx -d "$LOOP" 2>/dev/null
		losetup -d "$LOOP" || echo "build-debian: could not detach $LOOP" >&2
	fi
	# rmdir only: never a recursive delete of a directory something may still be bound to.
	[ -z "$ROOT" ] || rmdir "$ROOT" 2>/dev/null
	[ -z "$WORK" ] || rmdir "$WORK" 2>/dev/null
	if [ "$DONE" != 1 ]; then
		rm -f "$OUT"
		[ "$rc" -ne 0 ] || rc=1
		echo "build-debian: FAILED, $OUT removed" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

mnt() { # mnt [mount options...] TARGET: mount and remember TARGET for cleanup
	mount "$@"
	MOUNTS+=("${!#}")
}
umnt() { # umnt TARGET: unmount TARGET (mounted by mnt) and forget it
	local m keep=()
	umount "$1"
	for m in "${MOUNTS[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
	MOUNTS=("${keep[@]}")
}
in_root() {
	chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive ${http_proxy:+http_proxy=$http_proxy} \
		${https_proxy:+https_proxy=$https_proxy} "$@"
}
apt_root() { in_root apt-get -q -y -o APT::Install-Recommends=false -o Dpkg::Options::=--force-confdef \
	-o Dpkg::Options::=--force-confold "$@"; }

START=$(date +%s)

# ---------------------------------------------------------------- disk, partitions, file systems
log "creating $SIZE sparse disk $OUT"
rm -f "$OUT"
truncate -s "$SIZE" "$OUT"
# Two sgdisk runs: `sgdisk -q -o -n ...` in one run left an empty table here.
sgdisk -o "$OUT" >/dev/null
sgdisk -n 1:2048:+1M -t 1:EF02 -c 1:bios \
	-n 2:0:+100M -t 2:EF00 -c 2:esp \
	-n 3:0:0 -t 3:8304 -c 3:root "$OUT" >/dev/null 2>&1 || die "sgdisk failed"
[ "$(sgdisk -p "$OUT" | grep -c '^ *[0-9]')" -eq 3 ] || die "partition table: expected 3 partitions"

LOOP=$(losetup -f --show "$OUT")
# This kernel may ignore losetup -P, and without udev nothing else scans the table: partx -a does.
partx -a "$LOOP" || [ -b "${LOOP}p3" ] || die "partx -a $LOOP failed"
for _ in $(seq 50); do [ -b "${LOOP}p3" ] && break; sleep 0.1; done
[ -b "${LOOP}p1" ] && [ -b "${LOOP}p2" ] && [ -b "${LOOP}p3" ] || die "no partition devices for $LOOP"
log "attached $LOOP"

mkfs.vfat -F 32 -n ESP "${LOOP}p2" >/dev/null
mkfs.ext4 -q -F -L root -E lazy_itable_init=0,lazy_journal_init=0 "${LOOP}p3"
ROOT_UUID=$(blkid -c /dev/null -s UUID -o value "${LOOP}p3")
ESP_UUID=$(blkid -c /dev/null -s UUID -o value "${LOOP}p2")
[ -n "$ROOT_UUID" ] && [ -n "$ESP_UUID" ] || die "could not read file system UUIDs"

WORK=$(mktemp -d /tmp/build-debian.XXXXXX)
ROOT=$WORK/root
mkdir "$ROOT"
mnt "${LOOP}p3" "$ROOT"
# The .debs (debootstrap's and apt's) go to a cache on the host, bound over the image's
# /var/cache/apt/archives: they never take blocks in the image, and a rebuild downloads only what changed.
CACHE=${DEBIAN_IMAGE_CACHE:-$(dirname "$OUT")/cache}
mkdir -p "$CACHE/partial" "$ROOT/var/cache/apt/archives"
CACHE=$(cd "$CACHE" && pwd)
mnt --bind "$CACHE" "$ROOT/var/cache/apt/archives"
log "package cache: $CACHE"

# ---------------------------------------------------------------- debootstrap
log "debootstrap $SUITE (minbase)"
debootstrap --variant=minbase --include="$BOOTSTRAP_INCLUDE" "$SUITE" "$ROOT" "$MIRROR"
log "debootstrap done after $(($(date +%s) - START)) s"

# The ESP is never mounted here (this host's kernel has no vfat): mtools writes it, see boot loaders.
mkdir -p "$ROOT/boot/efi"
mnt -t proc proc "$ROOT/proc"
mnt --bind /sys "$ROOT/sys"
mnt --bind /dev "$ROOT/dev"
mnt --bind /dev/pts "$ROOT/dev/pts"
mnt -t tmpfs tmpfs "$ROOT/run"

# No service starts in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# The image's apt sources: the same URIs the host's apt uses, deb822 like the host.
rm -f "$ROOT/etc/apt/sources.list"
awk '{ s[$1] = s[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
     END { for (i = 1; i <= n; i++) {
		if (i > 1) print ""
		printf "Types: deb\nURIs: %s\nSuites:%s\nComponents: main\n", order[i], s[order[i]]
		print "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
     } }' <<<"$ENTRIES" >"$ROOT/etc/apt/sources.list.d/debian.sources"

cat >"$ROOT/etc/fstab" <<EOF
UUID=$ROOT_UUID	/	ext4	errors=remount-ro	0	1
UUID=$ESP_UUID	/boot/efi	vfat	umask=0077	0	2
EOF
echo debian >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
echo LANG=C.UTF-8 >"$ROOT/etc/default/locale"
# No swap: the initramfs need not look for a resume device.
mkdir -p "$ROOT/etc/initramfs-tools/conf.d"
echo RESUME=none >"$ROOT/etc/initramfs-tools/conf.d/resume"
echo COMPRESS=gzip >"$ROOT/etc/initramfs-tools/conf.d/compress"
echo 'cloud-init cloud-init/datasources multiselect NoCloud, None' | in_root debconf-set-selections

# ---------------------------------------------------------------- packages
log "apt-get install ${PACKAGES[*]}"
apt_root update
apt_root dist-upgrade
# Everything but the kernel first, then the kernel: one initramfs build instead of two (the
# initramfs-tools trigger the other packages fire runs while there is no kernel yet).
NOT_KERNEL=()
for p in "${PACKAGES[@]}"; do [ "$p" = linux-image-amd64 ] || NOT_KERNEL+=("$p"); done
apt_root install "${NOT_KERNEL[@]}"
apt_root install linux-image-amd64
log "packages done after $(($(date +%s) - START)) s"

# ---------------------------------------------------------------- configuration
mkdir -p "$ROOT/etc/systemd/network" "$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$ROOT/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en*

[Network]
DHCP=ipv4
EOF
# Without a NIC (or a link) wait-online would hold network-online.target, and cloud-init, for 2 minutes.
cat >"$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d/vmlaunch.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=15
EOF
in_root systemctl enable systemd-networkd.service

cat >"$ROOT/etc/cloud/cloud.cfg.d/99_vmlaunch.cfg" <<'EOF'
# vmlaunch test image: NoCloud seed (vfat/iso labelled CIDATA) or nothing.
datasource_list: [ NoCloud, None ]
# sudo resolves the host name: keep it in /etc/hosts, no DNS wait.
manage_etc_hosts: true
# New host keys on each instance (the image has none); no DSA, which sshd no longer loads.
ssh_genkeytypes: [ rsa, ecdsa, ed25519 ]
# A seed's network-config ([net] address: a static address on a tap) is applied, through systemd-networkd; without
# one cloud-init falls back to DHCP on the first NIC, and 20-wired.network covers boots without cloud-init.
# Keep the image's apt sources; do not let cloud-init write its own sources.list.
apt:
  preserve_sources_list: true
EOF

# sshd on Debian 12 does not create missing host keys. cloud-init's ssh module makes them on each new
# instance; this oneshot covers a boot where cloud-init did not (or is disabled).
cat >"$ROOT/etc/systemd/system/ssh-hostkeys.service" <<'EOF'
[Unit]
Description=Generate missing SSH host keys
After=cloud-init.service
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target ssh.service
EOF
in_root systemctl enable ssh-hostkeys.service ssh.service

# Timers whose first run lands right after the first boot: noise in TCG timings.
for unit in apt-daily.timer apt-daily-upgrade.timer; do
	in_root systemctl mask "$unit"
done
for unit in e2scrub_all.timer fstrim.timer dpkg-db-backup.timer; do
	[ ! -e "$ROOT/lib/systemd/system/$unit" ] || in_root systemctl disable "$unit"
done

# qemu-guest-agent has no [Install]: udev starts it when its virtio port appears.
grep -qs 'org.qemu.guest_agent.0' "$ROOT"/lib/udev/rules.d/*qemu-guest-agent*.rules ||
	die "qemu-guest-agent udev rule not found"

# ---------------------------------------------------------------- boot loaders
cat >"$ROOT/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY=true
EOF
log "grub-install i386-pc and x86_64-efi"
in_root grub-install --target=i386-pc --boot-directory=/boot "$LOOP"
# UEFI: what `grub-install --target=x86_64-efi --removable --no-nvram` does, by hand, because
# grub-install wants the ESP mounted (it checks --efi-directory is on FAT) and this host's kernel
# cannot mount vfat: modules to /boot/grub/x86_64-efi, a core image that finds the root file system
# by UUID, written to the ESP's removable-media path with mtools.
mkdir -p "$ROOT/boot/grub/x86_64-efi"
cp "$ROOT"/usr/lib/grub/x86_64-efi/*.mod "$ROOT"/usr/lib/grub/x86_64-efi/*.lst "$ROOT/boot/grub/x86_64-efi/"
cat >"$ROOT/tmp/load.cfg" <<EOF
search.fs_uuid $ROOT_UUID root hd0,gpt3
set prefix=(\$root)'/boot/grub'
EOF
in_root grub-mkimage -O x86_64-efi -d /usr/lib/grub/x86_64-efi -c /tmp/load.cfg -p /boot/grub \
	-o /tmp/BOOTX64.EFI part_gpt ext2 search_fs_uuid
export MTOOLS_SKIP_CHECK=1
mmd -i "${LOOP}p2" ::/EFI ::/EFI/BOOT
mcopy -i "${LOOP}p2" "$ROOT/tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mdir -i "${LOOP}p2" ::/EFI/BOOT | grep -q BOOTX64 || die "no EFI/BOOT/BOOTX64.EFI on the ESP"
in_root update-grub
# No /dev/disk/by-uuid without udev: grub-mkconfig wrote root=/dev/loopNp3.
sed -i "s|root=${LOOP}p3\\b|root=UUID=$ROOT_UUID|g" "$ROOT/boot/grub/grub.cfg"
grep -q "root=UUID=$ROOT_UUID " "$ROOT/boot/grub/grub.cfg" || die "grub.cfg: no root=UUID=$ROOT_UUID"
! grep -q 'root=/dev/' "$ROOT/boot/grub/grub.cfg" || die "grub.cfg still has a root=/dev/ path"
ls "$ROOT"/boot/vmlinuz-* "$ROOT"/boot/initrd.img-* >/dev/null || die "no kernel or initrd in /boot"

# ---------------------------------------------------------------- per-instance state out, clean up
rm -f "$ROOT"/etc/ssh/ssh_host_*
: >"$ROOT/etc/machine-id"
[ ! -f "$ROOT/var/lib/dbus/machine-id" ] || [ -L "$ROOT/var/lib/dbus/machine-id" ] ||
	rm -f "$ROOT/var/lib/dbus/machine-id"
in_root passwd -l root >/dev/null
apt_root autoclean # drops superseded .debs from the host cache
umnt "$ROOT/var/cache/apt/archives"
apt_root clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin
rm -f "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old "$ROOT/usr/sbin/policy-rc.d"
# debootstrap copied the host's resolv.conf; the guest has no resolver of its own (no resolved).
: >"$ROOT/etc/resolv.conf"
find "$ROOT/var/log" -type f -exec truncate -s 0 {} +
rm -rf "$ROOT"/tmp/* "$ROOT"/var/tmp/* "$ROOT/root/.bash_history"

for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[i]}"; unset 'MOUNTS[i]'; done
e2fsck -f -n "${LOOP}p3" >/dev/null || die "e2fsck ${LOOP}p3 failed"
# fstrim through the loop device frees nothing in the file here: zero the free blocks (apt lists,
# initramfs temporaries, ... deleted during the build) and punch the zeroed blocks out of the file.
zerofree "${LOOP}p3"
fallocate --dig-holes "$OUT"
DONE=1
log "done in $(($(date +%s) - START)) s: $OUT ($(du -h "$OUT" | cut -f1) on disk)"
