#!/bin/bash
# stop.sh [--keep] DIR — stop the throwaway Ceph cluster that start.sh made in DIR, then remove DIR.
#
# Only the daemons whose pid files are in DIR are signalled (TERM, up to 10 s, then KILL), and only
# while /proc/PID/comm still names a Ceph daemon, so a reused pid is never hit. Idempotent: a DIR
# that is gone, empty, or only half started is fine. --keep stops the daemons but leaves DIR
# (start.sh uses it on failure so the logs stay readable).
set -u

keep=0
if [ "${1:-}" = "--keep" ]; then keep=1; shift; fi
if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 [--keep] DIR" >&2
	exit 2
fi
dir=$1
[ -d "$dir" ] || { echo "stop.sh: $dir: nothing to stop (no such directory)"; exit 0; }

# Refuse to rm -rf something that does not look like ours (a typo like "stop.sh /" must be harmless).
dir=$(cd "$dir" && pwd -P)
if [ "$dir" = / ] || { [ -n "$(ls -A "$dir")" ] && [ ! -e "$dir/.vmlaunch-ceph" ]; }; then
	echo "stop.sh: $dir is not a cluster directory made by start.sh (no .vmlaunch-ceph marker); not touching it" >&2
	exit 1
fi

is_ceph() { # PID -> true if it is alive (not a zombie) and is a ceph daemon
	local comm state
	comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ "$state" = Z ] && return 1
	case $comm in ceph-mon|ceph-osd|ceph-mgr|ceph-mds) return 0 ;; *) return 1 ;; esac
}

stopped=0
stop_phase() { # PIDFILE... : TERM them all, wait up to 10 s, then KILL the ones left
	local f pid pids=() alive
	for f in "$@"; do
		[ -f "$f" ] || continue
		pid=$(tr -cd 0-9 <"$f")
		[ -n "$pid" ] || continue
		if is_ceph "$pid"; then
			kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
		fi
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	stopped=$((stopped + ${#pids[@]}))
	for _ in $(seq 100); do # 10 s
		alive=0
		for pid in "${pids[@]}"; do is_ceph "$pid" && alive=1; done
		[ $alive = 0 ] && return 0
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		if is_ceph "$pid"; then
			echo "stop.sh: pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) ignored TERM for 10 s; sending KILL" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
	done
	for pid in "${pids[@]}"; do # KILL is not instant either; wait for the kernel to finish it
		for _ in $(seq 50); do is_ceph "$pid" || break; sleep 0.1; done
		if is_ceph "$pid"; then echo "stop.sh: pid $pid survived KILL" >&2; return 1; fi
	done
}

# The mon goes last: an osd told to stop first asks the mon to mark it down and, if the mon is
# already gone, waits osd_mon_shutdown_timeout (5 s) for an answer.
shopt -s nullglob
others=() mons=()
for f in "$dir"/*.pid; do
	case ${f##*/} in mon.*) mons+=("$f") ;; *) others+=("$f") ;; esac
done
stop_phase "${others[@]}" || exit 1
stop_phase "${mons[@]}" || exit 1

if [ $keep = 1 ]; then
	echo "stopped $stopped daemon(s); kept $dir"
else
	rm -rf -- "$dir"
	echo "stopped $stopped daemon(s); removed $dir"
fi
