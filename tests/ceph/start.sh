#!/bin/bash
# start.sh DIR — start a throwaway single-node Ceph cluster whose whole state lives in DIR.
#
# mon.a + mgr.x + osd.0 (memstore: RAM only), 127.0.0.1 only, cephx on, msgr2 crc and secure both
# accepted, non-default ports. Makes pool "rbd" (size 1, 8 PGs, rbd-initialised) and the restricted
# client.vmlaunch, then waits for every PG to be active+clean. Clients use:
#   ceph -c DIR/ceph.conf ...              (client.admin, DIR/ceph.client.admin.keyring)
#   rbd  -c DIR/ceph.conf --id vmlaunch .. (DIR/ceph.client.vmlaunch.keyring)
#   rados_conf_read_file(DIR/ceph.conf) with id "admin" or "vmlaunch"
# Stop with stop.sh DIR. On failure: the daemons started here are stopped, DIR (with the logs) is
# kept, and the exit status is non-zero.
#
# Environment (all optional):
#   CEPH_MON_V2_PORT (13300)  CEPH_MON_V1_PORT (16789)   mon addresses on 127.0.0.1
#   CEPH_PORT_MIN (16800)     CEPH_PORT_MAX (16899)      range the osd and mgr bind in
#   CEPH_MEMSTORE_BYTES (2147483648)                     osd capacity (RAM used only as written)
#   CEPH_WAIT_SECS (90)                                  bound on the wait for active+clean
set -euo pipefail

t0=$(date +%s.%N)
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "start.sh: error: $*" >&2; exit 1; }

if [ $# -ne 1 ] || [ -z "$1" ]; then echo "usage: $0 DIR" >&2; exit 2; fi
v2port=${CEPH_MON_V2_PORT:-13300}
v1port=${CEPH_MON_V1_PORT:-16789}
pmin=${CEPH_PORT_MIN:-16800}
pmax=${CEPH_PORT_MAX:-16899}
memstore_bytes=${CEPH_MEMSTORE_BYTES:-2147483648}
wait_secs=${CEPH_WAIT_SECS:-90}

for b in ceph-mon ceph-osd ceph-mgr ceph ceph-authtool monmaptool rbd uuidgen timeout; do
	command -v "$b" >/dev/null || die "$b not found; run $here/install.sh first"
done

# DIR: must not exist or be empty. It ends up inside ceph.conf and inside qemu's
# "rbd:pool/img:conf=DIR/ceph.conf" strings, so no whitespace, ':' '@' '=' ',' or '\'.
if [ -e "$1" ]; then
	[ -d "$1" ] || die "$1 exists and is not a directory"
	[ -z "$(ls -A "$1")" ] || die "$1 is not empty (stop.sh $1 removes an old cluster)"
fi
created=0
[ -e "$1" ] || created=1
mkdir -p "$1"
dir=$(cd "$1" && pwd -P)
started=0
on_exit() {
	local rc=$?
	[ $rc -eq 0 ] && return
	trap - EXIT
	echo "start.sh: FAILED (exit $rc) after $(elapsed) s" >&2
	for f in "$dir"/*.log; do
		[ -f "$f" ] || continue
		echo "---- last lines of $f ----" >&2
		tail -n 25 "$f" >&2
	done
	if [ $started = 1 ]; then
		bash "$here/stop.sh" --keep "$dir" >&2 || true
		echo "start.sh: daemons stopped; logs kept in $dir (remove with: $here/stop.sh $dir)" >&2
	elif [ $created = 1 ]; then
		rm -rf -- "$dir" # nothing ran: nothing worth keeping
	else
		find "$dir" -mindepth 1 -delete # it was empty before: leave it so
	fi
	exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
elapsed() { echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}'; }
case $dir in *[[:space:]:@=,\\]*) die "DIR must not contain whitespace or any of : @ = , \\ (got '$dir')" ;; esac
touch "$dir/.vmlaunch-ceph" # marker: stop.sh only ever deletes directories that carry it
# admin sockets are unix sockets: sun_path holds 107 bytes
[ ${#dir} -le 90 ] || echo "start.sh: warning: DIR is long (${#dir} chars); daemon admin sockets may not bind" >&2

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$v2port" "$v1port"; do
	port_busy "$p" && die "127.0.0.1:$p is already in use (another cluster still running? try stop.sh on its DIR)"
done

say() { if [ -n "${CEPH_START_VERBOSE:-}" ]; then echo "start.sh: [$(elapsed) s] $*" >&2; fi; }

conf=$dir/ceph.conf
fsid=$(uuidgen)
cat >"$conf" <<EOF
# Throwaway test cluster made by vmlaunch tests/ceph/start.sh; stop.sh $dir removes it.
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$v2port,v1:127.0.0.1:$v1port]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv4 = true
ms_bind_ipv6 = false
ms_bind_port_min = $pmin
ms_bind_port_max = $pmax
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
# msgr2: servers accept both modes; a client picks with ms_client_mode / ms_mon_client_mode
ms_cluster_mode = secure crc
ms_service_mode = crc secure
ms_client_mode = crc secure
ms_mon_cluster_mode = secure crc
ms_mon_service_mode = crc secure
ms_mon_client_mode = secure crc
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
# the host's disk fill level must not turn into HEALTH_WARN / a mon shutdown
mon_data_avail_warn = 2
mon_data_avail_crit = 1
# PG state reaches the mgr and the mon quickly (defaults are 5 s)
mgr_stats_period = 1
mon_mgr_digest_period = 1
keyring = $dir/ceph.\$name.keyring

[client]
# no admin sockets or log files for short-lived clients (set them per command if wanted)
admin_socket =
log_file =

[mon]
mon_data = $dir/\$name
keyring = $dir/\$name/keyring
pid_file = $dir/\$name.pid
log_file = $dir/\$name.log
admin_socket = $dir/\$name.asok
mon_cluster_log_file = $dir/cluster.log
mgr_initial_modules = iostat

[mon.a]
public_addrv = [v2:127.0.0.1:$v2port,v1:127.0.0.1:$v1port]

[mgr]
# loading every python module takes the mgr ~13 s on a busy 2-core box; skip the ones that are
# neither always-on (which must load, or health turns ERR) nor wanted
mgr_disabled_modules = alerts diskprediction_local influx insights localpool mirroring nfs osd_support prometheus restful selftest snap_schedule stats telegraf test_orchestrator zabbix cephadm dashboard k8sevents rook
mgr_data = $dir/\$name
keyring = $dir/\$name/keyring
pid_file = $dir/\$name.pid
log_file = $dir/\$name.log
admin_socket = $dir/\$name.asok

[osd]
osd_data = $dir/\$name
keyring = $dir/\$name/keyring
pid_file = $dir/\$name.pid
log_file = $dir/\$name.log
admin_socket = $dir/\$name.asok
osd_objectstore = memstore
memstore_device_bytes = $memstore_bytes
EOF

ceph_bin=$(command -v ceph)
ceph() { timeout 30 "$ceph_bin" -c "$conf" --connect-timeout 15 "$@"; }

# --- keys and monmap
say "keys and monmap"
mkdir -p "$dir/mon.a" "$dir/mgr.x" "$dir/osd.0"
ceph-authtool --create-keyring "$dir/mon.seed.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/ceph.client.admin.keyring" --gen-key -n client.admin \
	--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/mgr.x/keyring" --gen-key -n mgr.x \
	--cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$dir/mon.seed.keyring" --import-keyring "$dir/ceph.client.admin.keyring" >/dev/null
ceph-authtool "$dir/mon.seed.keyring" --import-keyring "$dir/mgr.x/keyring" >/dev/null
chmod 600 "$dir/ceph.client.admin.keyring"
monmaptool --create --fsid "$fsid" --enable-all-features \
	--addv a "[v2:127.0.0.1:$v2port,v1:127.0.0.1:$v1port]" "$dir/monmap" >/dev/null

# --- mon
say "mon mkfs"
ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/mon.seed.keyring" \
	>"$dir/mon.a.mkfs.log" 2>&1 || { cat "$dir/mon.a.mkfs.log" >&2; die "ceph-mon --mkfs failed"; }
rm -f "$dir/mon.seed.keyring" "$dir/monmap"
started=1
ceph-mon -c "$conf" -i a >"$dir/mon.a.start.log" 2>&1 || die "ceph-mon did not start"
ceph mon stat >/dev/null || die "mon.a does not answer on 127.0.0.1:$v2port"

# --- mgr (PG states, 'ceph pg stat' and health are the mgr's; rbd_support lives there too)
say "mgr"
# devicehealth would make a second pool (device_health_metrics) some time after the mgr is up and
# run smartctl scrapes; neither is wanted here
ceph config set mgr mgr/devicehealth/enable_monitoring false --force # mon learns module options only from a running mgr
ceph-mgr -c "$conf" -i x >"$dir/mgr.x.start.log" 2>&1 || die "ceph-mgr did not start"

# --- osd
say "osd"
osd_uuid=$(uuidgen)
osd_key=$(ceph-authtool --gen-print-key)
osd_id=$(echo "{\"cephx_secret\": \"$osd_key\"}" | ceph osd new "$osd_uuid" -i -) || die "ceph osd new failed"
[ "$osd_id" = 0 ] || die "ceph osd new gave id '$osd_id', expected 0"
ceph-authtool --create-keyring "$dir/osd.0/keyring" -n osd.0 --add-key "$osd_key" >/dev/null
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/osd.0.mkfs.log" 2>&1 ||
	{ cat "$dir/osd.0.mkfs.log" >&2; die "ceph-osd --mkfs failed"; }
ceph-osd -c "$conf" -i 0 >"$dir/osd.0.start.log" 2>&1 || die "ceph-osd did not start"

# --- pool and client
say "pool and client"
# one budget of wait_secs for the pool's PGs: rbd pool init blocks until they are active, and the
# loop below then waits for clean
deadline=$(( $(date +%s) + wait_secs ))
out=$(ceph osd pool create rbd 8 8 replicated 2>&1) || die "ceph osd pool create rbd: $out"
ceph auth get-or-create client.vmlaunch mon 'profile rbd' osd 'profile rbd pool=rbd' \
	-o "$dir/ceph.client.vmlaunch.keyring"
left=$(( deadline - $(date +%s) )); [ $left -ge 1 ] || left=1 # timeout 0 would mean none
timeout $left rbd -c "$conf" pool init rbd ||
	die "rbd pool init rbd failed or its PGs were not active within ${wait_secs} s"
chmod 600 "$dir/ceph.client.vmlaunch.keyring"

# --- wait for every PG to be active+clean
say "wait for active+clean"
# every PG of every pool, not only those the mgr has heard of yet
want=$(ceph osd dump --format json | /usr/bin/python3 -c '
import json, sys
pools = json.load(sys.stdin)["pools"]
for p in pools:
    if p["pool_name"] == "rbd" and p["size"] != 1:
        sys.exit("pool rbd has size %d, not 1" % p["size"])
print(sum(p["pg_num"] for p in pools))') || die "ceph osd dump: no usable answer"
while :; do
	# the mgr answers {"pg_ready":true,"pg_summary":{"num_pg_by_state":[{"name":"active+clean","num":8}],"num_pgs":8,...}}
	st=$(ceph pg stat --format json 2>/dev/null || true)
	if /usr/bin/python3 -c '
import json, sys
s = json.loads(sys.argv[1])["pg_summary"]
n = s["num_pgs"]
clean = sum(x["num"] for x in s["num_pg_by_state"] if x["name"] == "active+clean")
sys.exit(0 if n == int(sys.argv[2]) and clean == n else 1)' "$st" "$want" 2>/dev/null; then
		break
	fi
	if [ "$(date +%s)" -ge $deadline ]; then
		echo "start.sh: last 'ceph pg stat': $st" >&2
		ceph -s >&2 || true
		die "PGs not all active+clean after ${wait_secs} s"
	fi
	sleep 0.5
done
say "active+clean"

# the restricted client, over msgr2 secure mode to both mon and osd (the daemons accept crc too)
timeout 30 rbd -c "$conf" --id vmlaunch --ms_client_mode secure --ms_mon_client_mode secure ls rbd >/dev/null ||
	die "client.vmlaunch cannot list pool rbd in msgr2 secure mode"
health=$(ceph health 2>/dev/null || echo unknown)
echo "ceph cluster up in $dir after $(elapsed) s: $want/$want PGs active+clean; $health"
if [ "${health%% *}" != HEALTH_OK ]; then ceph health detail >&2 || true; fi
echo "  conf: $conf   clients: admin, vmlaunch (pool rbd)   stop: $here/stop.sh $dir"
