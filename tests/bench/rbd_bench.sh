#!/bin/bash
# rbd_bench.sh — 16K random reads at iodepth 32 on one RBD image, three ways; a benchmark, not a test: prints a
# Markdown table and passes or fails nothing.
#
#   vmlaunch   fio in the bundled guest, the disk as vmlaunch sets it up: -blockdev driver=rbd straight under
#              virtio-blk, cache.direct=on (librbd's cache off), its own iothread, num-queues = vCPUs
#   qemu       fio in the same guest, qemu's defaults: -drive file=rbd:POOL/IMAGE:conf=...:id=...,if=virtio
#              (cache=writeback, so librbd's cache is on; a raw format node; no iothread)
#   host       fio's rbd engine on the host (CEPH_CONF), no VM at all: what librbd itself delivers
#
# The bundled guest has no fio, and initramfs/ is not this script's to change: when the guest lacks fio, the host's
# fio and the libraries it loads are packed into a second cpio appended to a copy of the guest's initramfs (Linux
# unpacks concatenated archives one after the other) and run through their own dynamic loader. Without fio on the
# host the guest rows are skipped with a note.
#
#   tests/bench/rbd_bench.sh                 start a throwaway cluster (tests/ceph/start.sh), stop it at the end
#   CEPH_DIR=/tmp/vc-x tests/bench/rbd_bench.sh   use a cluster start.sh made
#   RUNTIME=10 IMAGE_MB=256 VMLAUNCH=build/vmlaunch  (defaults)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
runtime=${RUNTIME:-10}
image_mb=${IMAGE_MB:-256}
vmlaunch=${VMLAUNCH:-$root/build/vmlaunch}
qemu=${QEMU:-qemu-system-x86_64}
image=vmlaunch-bench
vm=rbdbench
note() { echo "rbd_bench: $*" >&2; }

for f in "$vmlaunch" "$root/build/vmlinux" "$root/build/initramfs.cpio.gz"; do
	[ -e "$f" ] || { note "$f is missing: make build/vmlaunch guest"; exit 1; }
done
bash "$root/tests/ceph/install.sh" >/dev/null

work=$(mktemp -d /tmp/rbdbench-XXXX)
own_cluster=
cleanup() {
	if [ -n "${conf:-}" ]; then
		rbd -c "$conf" --id vmlaunch rm "rbd/$image" >/dev/null 2>&1 || true
	fi
	if [ -n "$own_cluster" ]; then
		bash "$root/tests/ceph/stop.sh" "$own_cluster" >/dev/null || true
	fi
	rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${CEPH_DIR:-}" ]; then
	dir=$CEPH_DIR
else
	dir=$(mktemp -d /tmp/vc-XXXX)
	own_cluster=$dir
	bash "$root/tests/ceph/start.sh" "$dir" >&2
fi
conf=$dir/ceph.conf

# The image, filled so every read reaches an object the OSD holds (an unwritten extent is answered without data).
rbd -c "$conf" --id vmlaunch create "rbd/$image" --size "${image_mb}M"
CEPH_CONF=$conf fio --name=fill --ioengine=rbd --clientname=vmlaunch --pool=rbd --rbdname="$image" --rw=write \
	--bs=1M --iodepth=4 --size="${image_mb}M" --output=/dev/null

job=(--name=randread --rw=randread --bs=16k --iodepth=32 --numjobs=1 --runtime="$runtime" --time_based
	--size="${image_mb}M" --norandommap --output-format=json)

# fio in the guest: the bundled one if it has fio, else the host's fio packed beside it.
initrd=$root/build/initramfs.cpio.gz
guest_fio=()
if zcat "$initrd" | cpio -t 2>/dev/null | grep -qx 'usr/bin/fio\|bin/fio'; then
	guest_fio=(fio)
elif command -v fio >/dev/null && command -v cpio >/dev/null; then
	mkdir -p "$work/fio/opt/fio"
	cp -L "$(command -v fio)" "$work/fio/opt/fio/fio"
	ldd "$(command -v fio)" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
		cp -L "$lib" "$work/fio/opt/fio/"
	done
	loader=$(basename "$(ldd "$(command -v fio)" | awk '/^\t\/lib.*ld-linux/{print $1}')")
	(cd "$work/fio" && find opt | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$work/fio.cpio.gz"
	cat "$initrd" "$work/fio.cpio.gz" >"$work/initrd-fio.cpio.gz"
	initrd=$work/initrd-fio.cpio.gz
	guest_fio=("/opt/fio/$loader" --library-path /opt/fio /opt/fio/fio)
	note "the bundled guest has no fio: using the host's ($(fio --version)) with its libraries, $(du -sh "$work/fio" | cut -f1)"
else
	note "no fio in the bundled guest and none on the host to lend it: the guest rows are skipped (apt-get install fio)"
fi

# accel: whatever vmlaunch would choose here, so both guest rows run alike
cat >"$work/bench.conf" <<EOF
[vm]
name = $vm
cpus = 2
memory = 1G
[boot]
kernel = $root/build/vmlinux
initrd = $initrd
append = quiet cryptomgr.notests
[disk d]
backend = rbd
pool = rbd
image = $image
conf = $conf
user = vmlaunch
EOF
accel=$("$vmlaunch" --dry-run "$work/bench.conf" 2>/dev/null | sed -n 's/.*accel=\([a-z]*\).*/\1/p' | head -1)
accel=${accel:-tcg}

iops() { # fio JSON on stdin -> "IOPS | MiB/s | mean latency (ms)"
	/usr/bin/python3 -c '
import json, sys
text = sys.stdin.read()
r = json.loads(text[text.index("{"):])["jobs"][0]["read"]
print("%.0f | %.1f | %.2f" % (r["iops"], r["bw_bytes"] / 2**20, r["clat_ns"]["mean"] / 1e6))'
}

rows=()
if [ ${#guest_fio[@]} -gt 0 ]; then
	gjob=("${guest_fio[@]}" "${job[@]}" --filename=/dev/vda --ioengine=libaio --direct=1 --thread)
	note "vmlaunch defaults: fio in the guest (${runtime} s)"
	out=$("$vmlaunch" "$work/bench.conf" -- "${gjob[@]}")
	rows+=("| vmlaunch: -blockdev rbd, cache.direct=on, iothread | $(iops <<<"$out") |")

	note "qemu defaults: -drive file=rbd:...,if=virtio (${runtime} s)"
	mkdir -p "$work/q"
	printf '%s\0' "${gjob[@]}" >"$work/q/argv"
	: >"$work/q/stdout"
	"$qemu" -machine "q35,accel=$accel" -cpu "$([ "$accel" = kvm ] && echo host || echo max)" -m 1G -smp 2 \
		-nodefaults -no-user-config -nographic -no-reboot \
		-kernel "$root/build/vmlinux" -initrd "$initrd" -append "console=ttyS0 panic=-1 quiet cryptomgr.notests" \
		-serial "file:$work/q/console" \
		-drive "file=rbd:rbd/$image:conf=$conf:id=vmlaunch,format=raw,if=virtio" \
		-device virtio-serial-pci \
		-chardev "file,id=o,path=$work/q/stdout" -device virtserialport,chardev=o,name=org.vmlaunch.stdout \
		-chardev "file,id=e,path=$work/q/stderr" -device virtserialport,chardev=e,name=org.vmlaunch.stderr \
		-chardev "file,id=s,path=$work/q/status" -device virtserialport,chardev=s,name=org.vmlaunch.status \
		-fw_cfg "name=opt/org.vmlaunch/argv,file=$work/q/argv"
	rows+=("| qemu: -drive file=rbd:..., writeback, no iothread | $(iops <"$work/q/stdout") |")
fi

note "host: fio's rbd engine (${runtime} s)"
out=$(CEPH_CONF=$conf fio "${job[@]}" --ioengine=rbd --clientname=vmlaunch --pool=rbd --rbdname="$image")
rows+=("| host: fio --ioengine=rbd | $(iops <<<"$out") |")

echo
echo "16K random reads, iodepth 32, ${runtime} s, ${image_mb} MiB image (memstore OSD over loopback); guest accel: $accel"
echo
echo "| how | IOPS | MiB/s | mean latency (ms) |"
echo "| --- | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
