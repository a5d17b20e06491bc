#!/usr/bin/python3
"""Warm start (issue 23): `vmlaunch CONF -- true` booted against restored from a snapshot, guest RAM streamed or
shared, and 8 concurrent restores of each.

The bundled guest, 512 MiB, 1 vCPU, TCG, snapshots on /dev/shm. Per round, in this order (interleaved, so a noisy
neighbour hurts every variant alike): a boot, a restore with `snapshot-memory = stream` (RAM in qemu's migration
stream), one with `shared` (RAM in a file mapped copy-on-write, x-ignore-shared); each the wall time of the whole
vmlaunch run (set-up, qemu, the command, teardown). The restore's own steps come from vmlaunch -v: the manifest and
state digest check, qemu's load of the state. Then, per variant, 8 restores at once from the same snapshot under 8
names, each guest checking that no sibling's file shows in its /root and holding still (sleep) while the host
samples every qemu's RSS and PSS (/proc/PID/smaps_rollup) and MemAvailable. With the Debian test image there, also
its userland on the bundled kernel (boot against restore), and the image by SeaBIOS with its own systemd, saved once
qemu-guest-agent answers and restored `--rounds` times (`--only-systemd`: that part alone, printed). Writes
results/snapshot.json and results/snapshot.md (report.py puts the latter into results.md).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import benchlib as B
import mdtable as M

GUEST = """
[boot]
kernel = {build}/vmlinux
initrd = {build}/initramfs.cpio.gz
append = quiet cryptomgr.notests
"""
CONCURRENT = 8
DEBIAN = os.path.join(B.BUILD, "images", "debian12.raw")


MODES = ["stream", "shared"]


def conf(workdir, name, snapshot, mode="stream"):
    path = os.path.join(workdir, "%s-%s.conf" % (name, mode))
    with open(path, "w") as f:
        f.write("[vm]\nname = %s\nsnapshot = %s\nsnapshot-memory = %s\n" % (name, snapshot, mode) +
                GUEST.format(build=B.BUILD))
    return path


def timed(argv, **kw):
    start = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600, **kw)
    return time.monotonic() - start, r


def ms_from(pattern, text):
    m = re.search(pattern, text)
    return int(m.group(1)) if m else None


def debian(workdir, rounds):
    """The Debian image's userland on the bundled kernel (root = DISK, an ephemeral overlay), 2 vCPUs, 1 GiB: a boot
    against a restore (shared memory) of `-- true`, interleaved."""
    snapshot = os.path.join(workdir, "snapshot-debian")
    confs = {}
    for kind, snap in (("boot", os.path.join(workdir, "none")), ("restore", snapshot)):
        confs[kind] = os.path.join(workdir, "debian-%s.conf" % kind)
        with open(confs[kind], "w") as f:
            f.write("[vm]\nname = bench-deb\ncpus = 2\nmemory = 1G\nsnapshot = %s\n" % snap +
                    GUEST.format(build=B.BUILD) + "root = sys\n[disk sys]\nbackend = file\npath = %s\n"
                    "format = raw\nephemeral = yes\n" % DEBIAN)
    save_s, r = timed([B.VMLAUNCH, "--snapshot", confs["restore"]])
    if r.returncode:
        raise SystemExit("vmlaunch --snapshot (Debian) failed:\n" + r.stderr)
    out = {"save_s": save_s, "boot": [], "restore": []}
    for i in range(rounds):
        B.before_round(i + 1, rounds)
        for kind in ("boot", "restore"):
            t, r = timed([B.VMLAUNCH, confs[kind], "--", "true"])
            if r.returncode:
                raise SystemExit("Debian %s failed:\n%s" % (kind, r.stderr))
            out[kind].append(t)
        B.log("Debian: boot %.2f s, restore %.2f s" % (out["boot"][-1], out["restore"][-1]))
    return out


def debian_systemd(workdir, rounds):
    """The Debian image by SeaBIOS with its own systemd, 2 vCPUs, 1 GiB, shared memory: saved once its
    qemu-guest-agent answers (the save's time is that boot), then `-- true` restored `rounds` times."""
    path = os.path.join(workdir, "debian-systemd.conf")
    with open(path, "w") as f:
        f.write("[vm]\nname = bench-debfw\ncpus = 2\nmemory = 1G\nagent-timeout = 600\nsnapshot = %s\n"
                "[boot]\nfirmware = bios\n[disk sys]\nbackend = file\npath = %s\nformat = raw\nephemeral = yes\n" % (
                    os.path.join(workdir, "snapshot-debian-systemd"), DEBIAN))
    save_s, r = timed([B.VMLAUNCH, "--snapshot", path])
    if r.returncode:
        raise SystemExit("vmlaunch --snapshot (Debian, systemd) failed:\n" + r.stderr)
    out = {"save_s": save_s, "restore": [], "load_ms": []}
    for i in range(rounds):
        B.before_round(i + 1, rounds)
        t, r = timed([B.VMLAUNCH, "-v", path, "--", "true"])
        if r.returncode or "loaded in" not in r.stderr:
            raise SystemExit("Debian (systemd) restore failed:\n" + r.stderr)
        out["restore"].append(t)
        out["load_ms"].append(ms_from(r"loaded in (\d+) ms", r.stderr))
        B.log("Debian with systemd: restore %.2f s" % t)
    return out


def qemu_of(name):
    """The qemu child of NAME's vmlaunch, from its pid file."""
    try:
        with open("/run/vmlaunch/%s/pid" % name) as f:
            pid = int(f.read().split()[0])
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            for child in f.read().split():
                with open("/proc/%s/comm" % child) as c:
                    if c.read().startswith("qemu"):
                        return int(child)
    except (OSError, ValueError):
        return None
    return None


def rollup(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit():
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def concurrent(workdir, snapshot, mode):
    names = ["bench-snap-%d" % i for i in range(CONCURRENT)]
    confs = [conf(workdir, n, snapshot, mode) for n in names]
    script = ('test -e /root/token && echo "seen $(cat /root/token)"; echo %s >/root/token; sleep 6; '
              'echo "mine $(cat /root/token)"')
    before = mem_available()
    start = time.monotonic()
    procs = [subprocess.Popen([B.VMLAUNCH, c, "--", "sh", "-c", script % n], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
             for n, c in zip(names, confs)]
    samples = {}
    deadline = time.monotonic() + 120
    while len(samples) < CONCURRENT and time.monotonic() < deadline:
        for n in names:
            if n not in samples:
                pid = qemu_of(n)
                if pid:
                    samples[n] = pid
        time.sleep(0.1)
    time.sleep(3)  # every guest is in its sleep by now (a restore takes well under a second alone)
    during = mem_available()
    mem = {n: rollup(pid) for n, pid in samples.items() if os.path.exists("/proc/%d" % pid)}
    results = [p.communicate(timeout=300) for p in procs]
    wall = time.monotonic() - start
    ok = all(p.returncode == 0 for p in procs)
    isolated = all(out.strip() == "mine %s" % n for (out, _), n in zip(results, names))
    for (out, err), n, p in zip(results, names, procs):
        if p.returncode != 0 or out.strip() != "mine %s" % n:
            B.log("run", n, "status", p.returncode, "stdout", repr(out), B.tail(err))
    return {"vms": CONCURRENT, "wall": wall, "all_ok": ok, "isolated": isolated,
            "rss_kib": [m.get("Rss", 0) for m in mem.values()], "pss_kib": [m.get("Pss", 0) for m in mem.values()],
            "mem_available_drop_kib": before - during}


def render_systemd(data):
    d = data.get("debian_systemd")
    if not d:
        return ""
    return ("- The Debian test image by SeaBIOS with its own kernel and systemd (an ephemeral overlay, 2 vCPUs, 1 GiB, "
            "shared memory), saved once qemu-guest-agent answered: save (that boot included) %.1f s; `-- true` "
            "restored %d times: median %s s, min %s s (%s), of which qemu's load median %s ms. Load average at its "
            "start %s." % (d["save_s"], len(d["restore"]), M.fmt_num(B.median(d["restore"]), 2),
                          M.fmt_num(min(d["restore"]), 2), M.fmt_range(*B.minmax(d["restore"]), 2),
                          M.fmt_num(B.median(d["load_ms"])), d.get("load", "?")))


def render(data):
    L = ["Run on %s, load average %s (1/5/15 min) at the start and %s at the end, on this shared 2-CPU host; the "
         "bundled guest, 512 MiB, 1 vCPU, TCG; %d interleaved rounds of a boot and a restore per way of keeping guest "
         "RAM, `vmlaunch CONF -- true` (wall time of the whole run). Snapshots on /dev/shm. `stream`: guest RAM in "
         "qemu's migration stream, loaded into each qemu's own memory; `shared`: guest RAM in a file of the snapshot, "
         "mapped shared while saving and privately (copy-on-write) by each restore, left out of the stream by "
         "`x-ignore-shared`." % (data["date"], data["load_start"], data["load_end"], len(data["boot"])), ""]
    rows = [["boot", M.fmt_num(B.median(data["boot"]), 2), M.fmt_range(*B.minmax(data["boot"]), 2)]]
    for m in MODES:
        d = data["modes"][m]
        rows.append(["restore, %s" % m, M.fmt_num(B.median(d["restore"]), 2), M.fmt_range(*B.minmax(d["restore"]), 2)])
        rows.append(["… of which: manifest + SHA-256 of the state (ms)", M.fmt_num(B.median(d["check_ms"])),
                     M.fmt_range(*B.minmax(d["check_ms"]))])
        rows.append(["… of which: qemu loads the state (ms)", M.fmt_num(B.median(d["load_ms"])),
                     M.fmt_range(*B.minmax(d["load_ms"]))])
    L.append(M.md_table(["`-- true`, seconds unless said", "median", "min–max"], rows, ["---", "---:", "---:"]))
    L.append("")
    for m in MODES:
        d = data["modes"][m]
        L.append("- `%s`: save (`vmlaunch --snapshot`, boot to the ready point included) %.1f s; state file %d MiB%s." % (
            m, d["save_s"], d["state_mib"], ", RAM file %d MiB allocated of 512" % d["ram_mib"] if d.get("ram_mib") else
            " (zero pages are not written)"))
    for m in MODES:
        c = data["modes"][m].get("concurrent")
        if not c:
            continue
        L.append("- `%s`, %d restores at once from one snapshot, each under its own name: %s; isolation (no guest saw "
                 "a sibling's file, each read back its own): %s; wall time for all %.1f s. Per qemu while the guests "
                 "idle: RSS median %d MiB, PSS median %d MiB; MemAvailable fell by %d MiB in all, %d MiB per VM." % (
                     m, c["vms"], "all exited 0" if c["all_ok"] else "some FAILED", "yes" if c["isolated"] else "NO",
                     c["wall"], B.median(c["rss_kib"]) // 1024 if c["rss_kib"] else 0,
                     B.median(c["pss_kib"]) // 1024 if c["pss_kib"] else 0, c["mem_available_drop_kib"] // 1024,
                     c["mem_available_drop_kib"] // 1024 // c["vms"]))
    d = data.get("debian")
    if d:
        L.append("- The Debian test image's userland on the bundled kernel (`root = DISK`, an ephemeral overlay, 2 vCPUs, "
                 "1 GiB, shared memory), `-- true`, %d interleaved rounds: boot %s s (%s), restore %s s (%s); save %.1f s. "
                 "(The bundled kernel and init, not the image's own systemd: see the next line.)" % (
                     len(d["boot"]), M.fmt_num(B.median(d["boot"]), 2), M.fmt_range(*B.minmax(d["boot"]), 2),
                     M.fmt_num(B.median(d["restore"]), 2), M.fmt_range(*B.minmax(d["restore"]), 2), d["save_s"]))
    line = render_systemd(data)
    if line:
        L.append(line)
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")))
    ap.add_argument("--no-concurrent", action="store_true")
    ap.add_argument("--only-systemd", action="store_true",
                    help="only the Debian-with-systemd restore (its results printed, not written)")
    args = ap.parse_args()
    if args.only_systemd:
        workdir = tempfile.mkdtemp(prefix="vmlaunch-bench-snap-", dir="/dev/shm")
        try:
            data = {"debian_systemd": dict(debian_systemd(workdir, args.rounds), load=B.loadavg())}
            print(render_systemd(data))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    workdir = tempfile.mkdtemp(prefix="vmlaunch-bench-snap-", dir="/dev/shm")
    try:
        boot_conf = conf(workdir, "bench-boot", os.path.join(workdir, "none"))
        data = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_start": B.loadavg(), "boot": [], "modes": {}}
        snaps, confs = {}, {}
        for m in MODES:
            snaps[m] = os.path.join(workdir, "snapshot-" + m)
            confs[m] = conf(workdir, "bench-snap", snaps[m], m)
            B.log("saving the snapshot (%s)" % m)
            save_s, r = timed([B.VMLAUNCH, "--snapshot", confs[m]])
            if r.returncode:
                raise SystemExit("vmlaunch --snapshot failed:\n" + r.stderr)
            d = data["modes"][m] = {"save_s": save_s, "restore": [], "check_ms": [], "load_ms": [],
                                    "state_mib": os.path.getsize(os.path.join(snaps[m], "state")) >> 20}
            ram = os.path.join(snaps[m], "ram")
            if os.path.exists(ram):
                d["ram_mib"] = os.stat(ram).st_blocks * 512 >> 20
        for i in range(args.rounds):
            B.before_round(i + 1, args.rounds)
            t, r = timed([B.VMLAUNCH, boot_conf, "--", "true"])
            if r.returncode:
                raise SystemExit("boot failed:\n" + r.stderr)
            data["boot"].append(t)
            line = "boot %.2f s" % t
            for m in MODES:
                d = data["modes"][m]
                t, r = timed([B.VMLAUNCH, "-v", confs[m], "--", "true"])
                if r.returncode or "loaded in" not in r.stderr:
                    raise SystemExit("restore failed:\n" + r.stderr)
                d["restore"].append(t)
                d["check_ms"].append(ms_from(r"digest checked in (\d+) ms", r.stderr))
                d["load_ms"].append(ms_from(r"loaded in (\d+) ms", r.stderr))
                line += ", %s %.2f s" % (m, t)
            B.log(line)
        if os.path.exists(DEBIAN):
            B.log("the Debian image's userland")
            data["debian"] = debian(workdir, max(3, args.rounds // 2))
        if os.path.exists(DEBIAN):
            B.log("the Debian image with its own systemd")
            load = B.loadavg()
            data["debian_systemd"] = dict(debian_systemd(workdir, args.rounds), load=load)
        if not args.no_concurrent:
            for m in MODES:
                B.log("%d concurrent restores (%s)" % (CONCURRENT, m))
                data["modes"][m]["concurrent"] = concurrent(workdir, snaps[m], m)
        data["load_end"] = B.loadavg()
        os.makedirs(B.RESULTS_DIR, exist_ok=True)
        with open(os.path.join(B.RESULTS_DIR, "snapshot.json"), "w") as f:
            json.dump(data, f, indent=1)
        text = render(data)
        with open(os.path.join(B.RESULTS_DIR, "snapshot.md"), "w") as f:
            f.write(text)
        print(text)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
