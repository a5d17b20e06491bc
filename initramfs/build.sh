#!/bin/bash
# Builds the bundled test guest from the host's Debian kernel: the uncompressed vmlinux and the initramfs.
#
#   build.sh default-kver                           newest kernel with both /lib/modules/V and /boot/vmlinuz-V
#   build.sh vmlinux KVER OUTPUT                    ELF vmlinux extracted from /boot/vmlinuz-KVER
#   build.sh initramfs KVER OUTPUT INIT AGENT POWER_BUTTON UDHCPC_SCRIPT
#                                                   gzip'd newc cpio, byte-for-byte reproducible
#   build.sh modules-image KVER OUTPUT              ext4 image of the whole /lib/modules/KVER (the modules disk)
#
# Environment: GUEST_MODULES (modules loaded at every boot, dependencies are added from modules.dep),
# GUEST_MODULES_EXT4, GUEST_MODULES_VIRTIOFS, GUEST_MODULES_NET (modules the init loads only when it needs them: for
# a root or modules disk, for shares, for a virtio NIC), GUEST_MODULES_ROOT (default /lib/modules), GUEST_BUSYBOX
# (the static busybox to include), SOURCE_DATE_EPOCH (mtime of every archive member, default 0).
set -euo pipefail
umask 022
export LC_ALL=C

GUEST_MODULES=${GUEST_MODULES:-virtio_pci virtio_blk virtio_console virtio_rng qemu_fw_cfg button evdev pvpanic_pci}
# ext4 asks the crypto API for crc32c when it mounts a metadata_csum filesystem; the kernel would run modprobe for
# it, which finds nothing before the modules disk is mounted.
GUEST_MODULES_EXT4=${GUEST_MODULES_EXT4:-crc32c_generic ext4}
GUEST_MODULES_VIRTIOFS=${GUEST_MODULES_VIRTIOFS:-virtiofs}
GUEST_MODULES_NET=${GUEST_MODULES_NET:-virtio_net}
GUEST_MODULES_ROOT=${GUEST_MODULES_ROOT:-/lib/modules}
GUEST_BUSYBOX=${GUEST_BUSYBOX:-/bin/busybox}
MTIME=${SOURCE_DATE_EPOCH:-0}

die() {
	echo "initramfs/build.sh: $*" >&2
	exit 1
}

default_kver() {
	local dir kver best=
	for dir in /lib/modules/*/; do
		kver=$(basename "$dir")
		[[ -f /boot/vmlinuz-$kver ]] || continue
		best+="$kver"$'\n'
	done
	[[ -n $best ]] || die "no kernel found with both /lib/modules/VERSION and /boot/vmlinuz-VERSION (install linux-image-amd64)"
	printf '%s' "$best" | sort -V | tail -n 1
}

is_elf() {
	[[ $(head -c 4 "$1" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]
}

# Debian's bzImage carries its kernel as an xz stream; the ELF inside boots through PVH, which skips the emulated
# self-decompression (several seconds under TCG).
build_vmlinux() {
	local kver=$1 output=$2
	local image=/boot/vmlinuz-$kver offset tmp
	[[ -r $image ]] || die "$image: not readable"
	tmp=$output.tmp.$$
	trap 'rm -f "$tmp"' EXIT
	# The magic can also occur by chance inside the image: take the first offset that decompresses to an ELF.
	# shellcheck disable=SC2013 # one offset per line, digits only
	for offset in $(grep -obUaP '\xFD\x37\x7A\x58\x5A\x00' "$image" | cut -d: -f1); do
		# xz stops at the end of its stream, so only its status counts, not tail's (SIGPIPE).
		if xz -dc --single-stream <(tail -c +$((offset + 1)) "$image") >"$tmp" 2>/dev/null && is_elf "$tmp"; then
			mv "$tmp" "$output"
			trap - EXIT
			return 0
		fi
	done
	die "$image: no xz stream that decompresses to an ELF vmlinux (is it a Debian amd64 bzImage?)"
}

# Sets MODULE_NAME to the module name of a .ko path: modprobe treats '-' and '_' alike, so use '_' throughout.
module_name() {
	MODULE_NAME=${1##*/}
	MODULE_NAME=${MODULE_NAME%%.ko*}
	MODULE_NAME=${MODULE_NAME//-/_}
}

# Fills LOAD_ORDER with the requested modules and everything they depend on, dependencies first, from
# modules.dep (a depth-first post-order walk, so the order follows the kernel's own dependency data).
declare -A MODULE_PATH MODULE_DEPS VISIT_STATE
LOAD_ORDER=()
MODULES_DEP_READ=
read_modules_dep() {
	local kver=$1 line file
	local dep_file=$GUEST_MODULES_ROOT/$kver/modules.dep
	[[ -r $dep_file ]] || die "$dep_file: not readable"
	while IFS= read -r line; do
		file=${line%%:*}
		module_name "$file"
		MODULE_PATH[$MODULE_NAME]=$file
		MODULE_DEPS[$MODULE_NAME]=${line#*:}
	done <"$dep_file"
}

visit_module() {
	local name=$1 dep
	case ${VISIT_STATE[$name]:-} in
	visited) return 0 ;;
	visiting) die "module dependency cycle through $name" ;;
	esac
	[[ -n ${MODULE_PATH[$name]:-} ]] || die "module $name not found in modules.dep"
	VISIT_STATE[$name]=visiting
	for dep in ${MODULE_DEPS[$name]}; do
		module_name "$dep"
		visit_module "$MODULE_NAME"
	done
	VISIT_STATE[$name]=visited
	LOAD_ORDER+=("$name")
}

# resolve_modules KVER MODULE...: LOAD_ORDER for these modules alone (each group has its own load order).
resolve_modules() {
	local kver=$1 name
	local builtin=$GUEST_MODULES_ROOT/$kver/modules.builtin
	shift
	[[ -n $MODULES_DEP_READ ]] || read_modules_dep "$kver"
	MODULES_DEP_READ=1
	VISIT_STATE=()
	LOAD_ORDER=()
	for name in "$@"; do
		name=${name//-/_}
		if [[ -z ${MODULE_PATH[$name]:-} ]] && [[ -r $builtin ]] &&
			sed 's,.*/,,; s,\.ko.*,,; s,-,_,g' "$builtin" | grep -x "$name" >/dev/null; then
			continue # built into this kernel: nothing to load
		fi
		visit_module "$name"
	done
}

copy_module() {
	local src=$1 dst=$2
	case $src in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*) die "$src: unknown module compression" ;;
	esac
}

# One newc entry without data (device nodes): GNU cpio can only archive nodes that exist, and creating them needs
# root, which building should not.
newc_header() {
	local name=$1 mode=$2 rdev_major=$3 rdev_minor=$4 ino=$5
	local namesize=$((${#name} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$ino" "$mode" 0 0 1 "$MTIME" 0 0 0 "$rdev_major" "$rdev_minor" "$namesize" 0
	printf '%s\0' "$name"
	head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
}

# The kernel opens /dev/console for /init's stdio before /init can mount devtmpfs, so the archive must carry it.
device_nodes_cpio() {
	newc_header dev/console $((0020600)) 5 1 1
	newc_header 'TRAILER!!!' 0 0 0 0
}

build_initramfs() {
	local kver=$1 output=$2 init=$3 agent=$4 power_button=$5 udhcpc_script=$6
	local stage name applet tmp file group wanted
	local -a wanted_list
	for file in "$init" "$agent" "$power_button" "$udhcpc_script" "$GUEST_BUSYBOX"; do
		[[ -r $file ]] || die "$file: not readable"
	done
	readelf -l "$GUEST_BUSYBOX" | grep 'program interpreter' >/dev/null &&
		die "$GUEST_BUSYBOX is dynamically linked; the guest needs busybox-static"

	stage=$(mktemp -d "$(dirname "$output")/initramfs-stage.XXXXXX")
	tmp=$output.tmp.$$
	trap 'rm -rf "$stage" "$tmp"' EXIT

	# lib/modules/KVER is where the init mounts the modules disk; sysroot where it mounts vmlaunch.root's disk.
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/share/udhcpc,etc/acpi/PWRF,lib/modules/"$kver"} \
		"$stage"/{proc,sys,dev,run,tmp,root,var/log,sysroot}
	chmod 1777 "$stage/tmp"
	install -m 0755 "$init" "$stage/init"
	install -m 0755 "$agent" "$stage/sbin/vmlaunch-guest"
	install -m 0755 "$power_button" "$stage/etc/acpi/PWRF/00000080"
	install -m 0755 "$udhcpc_script" "$stage/usr/share/udhcpc/default.script"
	install -m 0755 "$GUEST_BUSYBOX" "$stage/bin/busybox"
	# Users for opt/org.vmlaunch/user in the bundled guest itself (a root image brings its own).
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' \
		>"$stage/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$stage/etc/group"
	# Links made here cost nothing at boot, unlike `busybox --install -s` (see README.md for the measurement).
	for applet in $("$GUEST_BUSYBOX" --list-full); do
		case $applet in
		bin/busybox | linuxrc | */init) continue ;;
		esac
		[[ -e $stage/$applet ]] || ln -s /bin/busybox "$stage/$applet"
	done

	# load-order is loaded at every boot; load-order.GROUP only when the init needs the group. A group lists its
	# whole dependency chain: the init skips what is already loaded.
	for group in '' .ext4 .virtiofs .net; do
		case $group in
		'') wanted=$GUEST_MODULES ;;
		.ext4) wanted=$GUEST_MODULES_EXT4 ;;
		.virtiofs) wanted=$GUEST_MODULES_VIRTIOFS ;;
		.net) wanted=$GUEST_MODULES_NET ;;
		esac
		read -ra wanted_list <<<"$wanted"
		resolve_modules "$kver" "${wanted_list[@]}"
		file=load-order$group
		for name in "${LOAD_ORDER[@]}"; do
			[[ -e $stage/lib/modules/$name.ko ]] && continue
			copy_module "$GUEST_MODULES_ROOT/$kver/${MODULE_PATH[$name]}" "$stage/lib/modules/$name.ko"
			chmod 0644 "$stage/lib/modules/$name.ko"
		done
		if ((${#LOAD_ORDER[@]})); then
			printf '%s\n' "${LOAD_ORDER[@]}" >"$stage/lib/modules/$file"
		else
			: >"$stage/lib/modules/$file" # all built in
		fi
	done
	printf '%s\n' "$kver" >"$stage/lib/modules/kernel-version"

	find "$stage" -exec touch -h -d "@$MTIME" {} +
	# The kernel unpacks concatenated archives; the nodes go second so that `cpio -t` lists the main one.
	{
		(cd "$stage" && find . -mindepth 1 -printf '%P\n' | sort |
			cpio --quiet -o -H newc -R 0:0 --reproducible)
		device_nodes_cpio
	} | gzip -9 -n >"$tmp"
	mv "$tmp" "$output"
	rm -rf "$stage"
	trap - EXIT
}

# The modules disk: an ext4 filesystem whose top directory is /lib/modules/KVER as installed (modules.dep and all,
# nothing decompressed), for the guest to mount read-only there. No journal: the disk is only ever read. The UUID and
# hash seed come from KVER and every timestamp from SOURCE_DATE_EPOCH, so the same tree gives the same image.
build_modules_image() {
	local kver=$1 output=$2
	local dir=$GUEST_MODULES_ROOT/$kver tmp kib inodes uuid
	[[ -r $dir/modules.dep ]] || die "$dir/modules.dep: not readable"
	tmp=$output.tmp.$$
	trap 'rm -f "$tmp"' EXIT
	# Every file and directory in whole 4 KiB blocks, as ext4 allocates them (not du's: the host's filesystem may
	# compress or pack); the margin covers extent blocks, the inode tables and the group descriptors.
	kib=$(find "$dir" -printf '%s\n' | awk '{ kib += int(($1 + 4095) / 4096) * 4 } END { print kib }')
	inodes=$(find "$dir" | wc -l)
	uuid=$(printf 'vmlaunch-modules %s' "$kver" | md5sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
	: >"$tmp" # an existing file keeps mke2fs from announcing that it creates one
	# mke2fs reads 0 as unset; the files keep their own mtime, ctime and atime from the tree.
	E2FSPROGS_FAKE_TIME=$((MTIME > 0 ? MTIME : 1)) mke2fs -q -F -t ext4 -O ^has_journal -m 0 -b 4096 \
		-N $((inodes + inodes / 8 + 64)) -L vmlaunch-modules -U "$uuid" \
		-E root_owner=0:0,hash_seed="$uuid",lazy_itable_init=0 \
		-d "$dir" "$tmp" $((kib + kib / 16 + 16384))k ||
		die "mke2fs of $dir into $tmp failed"
	mv "$tmp" "$output"
	trap - EXIT
}

case ${1:-} in
default-kver)
	[[ $# -eq 1 ]] || die "usage: build.sh default-kver"
	default_kver
	;;
vmlinux)
	[[ $# -eq 3 ]] || die "usage: build.sh vmlinux KVER OUTPUT"
	build_vmlinux "$2" "$3"
	;;
initramfs)
	[[ $# -eq 7 ]] || die "usage: build.sh initramfs KVER OUTPUT INIT AGENT POWER_BUTTON UDHCPC_SCRIPT"
	build_initramfs "$2" "$3" "$4" "$5" "$6" "$7"
	;;
modules-image)
	[[ $# -eq 3 ]] || die "usage: build.sh modules-image KVER OUTPUT"
	build_modules_image "$2" "$3"
	;;
*)
	die "usage: build.sh default-kver | vmlinux KVER OUTPUT | initramfs KVER OUTPUT INIT AGENT POWER_BUTTON" \
		"UDHCPC_SCRIPT | modules-image KVER OUTPUT"
	;;
esac
