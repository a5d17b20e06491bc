#!/bin/bash
# install.sh — install from Debian what tests/ceph/start.sh and the RBD tests need, if missing.
# Fast and offline when everything is there (dpkg-query only); apt-get update runs only when
# something must be installed.
#
#   ceph-mon ceph-osd ceph-common   the cluster and the ceph/rbd/rados CLIs (Debian 12: 16.2.x pacific)
#   ceph-mgr                        needed: PG states ('ceph pg stat', the pgmap in 'ceph -s') and
#                                   so "active+clean" exist only in the mgr; without it 'ceph pg stat'
#                                   hangs and 'ceph -s' shows 0 pgs under HEALTH_OK. rbd_support
#                                   (rbd perf/trash purge schedules/task) lives there too.
#   qemu-block-extra                qemu's rbd block driver (block-rbd.so)
#   fio                             has the rbd ioengine (fio --enghelp | grep rbd)
#   uuid-runtime                    uuidgen, used by start.sh
set -euo pipefail

pkgs=(ceph-mon ceph-osd ceph-mgr ceph-common qemu-block-extra fio uuid-runtime)

missing=()
for p in "${pkgs[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[ "${st:0:2}" = ii ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "install.sh: need root to install: ${missing[*]}" >&2; exit 1; }
	echo "install.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# no recommends: they would pull in ceph-mds, radosgw, btrfs-progs and more
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# the pieces the tests rely on, checked every time (cheap)
for b in ceph-mon ceph-osd ceph-mgr ceph rbd rados ceph-authtool monmaptool qemu-img fio uuidgen; do
	command -v "$b" >/dev/null || { echo "install.sh: $b missing after install" >&2; exit 1; }
done
ls /usr/lib/x86_64-linux-gnu/qemu/block-rbd.so >/dev/null 2>&1 ||
	ls /usr/lib/*/qemu/block-rbd.so >/dev/null 2>&1 ||
	{ echo "install.sh: qemu block-rbd.so not found (qemu-block-extra)" >&2; exit 1; }
fio --enghelp 2>/dev/null | grep -qw rbd || { echo "install.sh: this fio has no rbd ioengine" >&2; exit 1; }
echo "install.sh: ok: ceph $(dpkg-query -W -f='${Version}' ceph-common), $(fio --version), qemu rbd driver"
