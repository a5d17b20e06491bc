#!/bin/bash
# fio-overlay.sh BASE_INITRAMFS OUTPUT — the second cpio archive that puts fio into the bundled guest.
#
# Linux unpacks concatenated cpio archives one after the other (each compressed or not), a later member replacing
# an earlier one, so
#   cat build/initramfs.cpio.gz ZEROS build/bench/fio-overlay.cpio > build/bench/initramfs-fio.cpio
# (ZEROS: padding to a multiple of 512 bytes; the kernel reads an uncompressed archive after a compressed one only
# at a 4-byte aligned offset, and skips zeros between archives; bench.mk does this)
# is the bundled guest plus:
#   /usr/bin/fio and every shared library `ldd /usr/bin/fio` names, at the same paths as on the host (the guest's
#       dynamic loader then finds them as the host's does, RUNPATHs included);
#   the AHCI disk path for the "qemu defaults" variant (-drive file=IMG,format=raw is AHCI on q35): ahci and sd_mod,
#       their dependencies from modules.dep, and the crc providers their softdeps name (else the kernel calls
#       /sbin/modprobe for them, which the busybox guest cannot serve);
#   /lib/modules/load-order replaced by the base archive's list followed by the new modules, dependencies first
#       (the guest's /init insmods that list in order).
# OUTPUT ending in .gz is gzip'd (-1), otherwise left uncompressed: the overlay is ~85 MB (fio links librbd, librados,
# glusterfs, ICU...), and the emulated kernel inflating it costs ~3 s of every boot under TCG (measured, qemu start to
# power-off running `fio --version`: 13.3 and 10.2 s gzip'd, 9.7 and 7.2 s uncompressed, 4.2 and 3.7 s without fio;
# load 2-2.4), so the benchmarks use the uncompressed one.
# Nothing needs root. Reproducible like the base archive: members sorted, owned 0:0, mtime SOURCE_DATE_EPOCH.
#
# Environment: BENCH_FIO (default /usr/bin/fio), BENCH_GUEST_MODULES (default below), GUEST_MODULES_ROOT
# (default /lib/modules).
set -euo pipefail
umask 022
export LC_ALL=C

BENCH_FIO=${BENCH_FIO:-/usr/bin/fio}
BENCH_GUEST_MODULES=${BENCH_GUEST_MODULES:-crct10dif_generic crc64_rocksoft_generic ahci sd_mod}
GUEST_MODULES_ROOT=${GUEST_MODULES_ROOT:-/lib/modules}
MTIME=${SOURCE_DATE_EPOCH:-0}

die() {
	echo "fio-overlay.sh: $*" >&2
	exit 1
}

[[ $# -eq 2 ]] || die "usage: fio-overlay.sh BASE_INITRAMFS OUTPUT"
base=$1
output=$2
[[ -r $base ]] || die "$base: not readable (make guest)"
[[ -x $BENCH_FIO ]] || die "$BENCH_FIO: missing (apt-get install fio)"

stage=$(mktemp -d "$(dirname "$output")/fio-overlay-stage.XXXXXX")
tmp=$output.tmp.$$
trap 'rm -rf "$stage" "$tmp"' EXIT

# What the base archive loads, and for which kernel.
gzip -dc <"$base" | cpio --quiet -i --to-stdout lib/modules/load-order >"$stage/base-order"
kver=$(gzip -dc <"$base" | cpio --quiet -i --to-stdout lib/modules/kernel-version)
[[ -s $stage/base-order && -n $kver ]] || die "$base: no lib/modules/load-order or kernel-version in it"

root=$stage/root
mkdir -p "$root/usr/bin" "$root/lib/modules"

# fio and its libraries, at the paths the host's loader resolved.
install -m 0755 "$BENCH_FIO" "$root/usr/bin/fio"
ldd "$BENCH_FIO" | awk '/=> \//{print $3} /^\t\/[^ ]*ld-linux/{print $1}' | sort -u | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
grep -q '' < <(find "$root" -name 'ld-linux*') || die "no dynamic loader found in ldd $BENCH_FIO"

# Modules: depth-first over modules.dep, dependencies first, skipping what the base archive already loads.
declare -A MODULE_PATH MODULE_DEPS DONE
modname() { local n=${1##*/}; n=${n%%.ko*}; echo "${n//-/_}"; }
while IFS= read -r line; do
	file=${line%%:*}
	name=$(modname "$file")
	MODULE_PATH[$name]=$file
	MODULE_DEPS[$name]=${line#*:}
done <"$GUEST_MODULES_ROOT/$kver/modules.dep"
while read -r name; do DONE[$name]=1; done <"$stage/base-order"
cp "$stage/base-order" "$stage/order"
visit() {
	local name=$1 dep
	[[ -n ${DONE[$name]:-} ]] && return 0
	[[ -n ${MODULE_PATH[$name]:-} ]] || die "module $name not in $GUEST_MODULES_ROOT/$kver/modules.dep"
	DONE[$name]=1
	for dep in ${MODULE_DEPS[$name]}; do visit "$(modname "$dep")"; done
	local src=$GUEST_MODULES_ROOT/$kver/${MODULE_PATH[$name]} dst=$root/lib/modules/$name.ko
	case $src in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*) die "$src: unknown module compression" ;;
	esac
	echo "$name" >>"$stage/order"
}
builtin=$GUEST_MODULES_ROOT/$kver/modules.builtin
for name in $BENCH_GUEST_MODULES; do
	name=${name//-/_}
	if [[ -z ${MODULE_PATH[$name]:-} ]] && [[ -r $builtin ]] && sed 's,.*/,,; s,\.ko.*,,; s,-,_,g' "$builtin" | grep -qx "$name"; then
		continue # built in
	fi
	visit "$name"
done
install -m 0644 "$stage/order" "$root/lib/modules/load-order"

find "$root" -exec touch -h -d "@$MTIME" {} +
compress=cat
[[ $output == *.gz ]] && compress="gzip -1 -n"
(cd "$root" && find . -mindepth 1 -printf '%P\n' | sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
	$compress >"$tmp"
mv "$tmp" "$output"
echo "fio-overlay.sh: $output: fio $("$BENCH_FIO" --version), $(du -sh "$root" | cut -f1) unpacked, modules +$(($(wc -l <"$stage/order") - $(wc -l <"$stage/base-order"))): $(tail -n +$(($(wc -l <"$stage/base-order") + 1)) "$stage/order" | tr '\n' ' ')" >&2
