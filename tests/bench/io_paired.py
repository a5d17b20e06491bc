#!/usr/bin/python3
"""Guest disk I/O of two vmlaunch builds, paired: guest_io.py's vmlaunch variants run with build A and build B in
turn, the order swapped every round, on the same backing images, one VM at a time. On a shared host whose load moves
single runs, a pair run minutes apart says more than two full runs an hour apart.

    tests/bench/io_paired.py --a OLD/vmlaunch --a-initrd OLD/build/bench/initramfs-fio.cpio \
        [--b build/vmlaunch] [--b-initrd build/bench/initramfs-fio.cpio] [--seconds 10] [--rounds 3] [--only ID,ID]

Each build boots the bench guest built from its own tree (the guest's protocol is the launcher's), on the same
kernel (build/vmlinux). Writes tests/bench/results/io-paired.json and io-paired.md, or the --json name (report.py puts every io-paired*.md in
results.md). Environment as for guest_io.py (BENCH_DISK_MB, BENCH_DISK_DIR; RBD only with CEPH_DIR).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import fiojobs  # noqa: E402
import guest_io  # noqa: E402
import mdtable  # noqa: E402

BLOCK_KIB = 16  # fiojobs' --bs


def dry_run_disk(vmlaunch, conf):
    """The disk's arguments as this build would give them to qemu."""
    p = subprocess.run([vmlaunch, "--dry-run", conf], capture_output=True, text=True)
    if p.returncode:
        return "(dry-run failed: %s)" % (p.stderr.strip().splitlines() or ["?"])[-1]
    return " ".join(B.disk_args_of(p.stdout.splitlines()))


def run_one(side, v, ctx, seconds, workloads, confdir):
    conf = B.write_conf(os.path.join(confdir, "%s-%s.conf" % (side["name"], v.id)), "bench-io-" + v.id, v.conf(ctx),
                        initrd=side["initrd"])
    out, wall = B.run_vmlaunch_command(conf, fiojobs.guest_fio_argv(v.device, seconds, workloads),
                                       guest_io.timeout_for(seconds, len(workloads)), vmlaunch=side["vmlaunch"])
    return fiojobs.parse_fio(out), wall


def first_error(text):
    """The line of a failed run's message that names the error (fio's, or vmlaunch's exit)."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in lines:
        if l.startswith("fio:") or l.startswith("vmlaunch"):
            return l
    return lines[0] if lines else "?"


def summary(data):
    """Markdown: per variant and workload, each build's median IOPS (min–max) and MiB/s, and B against A."""
    a, b = data["sides"][0]["name"], data["sides"][1]["name"]
    rows = []
    for vid in data["order"]:
        for w in data["workloads"]:
            med = {}
            cells = []
            for s in (a, b):
                xs = [r["results"][w]["iops"] for r in data["runs"] if r["variant"] == vid and r["side"] == s
                      and "results" in r]
                med[s] = B.median(xs)
                lo, hi = B.minmax(xs)
                cells += ["%s (%s)" % (mdtable.fmt_num(med[s]), mdtable.fmt_range(lo, hi)),
                          mdtable.fmt_num(med[s] * BLOCK_KIB / 1024 if med[s] else None, 1)]
            ratio = "%+.1f %%" % (100.0 * (med[b] / med[a] - 1)) if med[a] and med[b] else "–"
            rows.append([vid, w] + cells + [ratio])
    head = ["variant", "workload", "%s IOPS median (min–max)" % a, "%s MiB/s" % a,
            "%s IOPS median (min–max)" % b, "%s MiB/s" % b, "%s vs %s" % (b, a)]
    L = ["%s: %s" % (s["name"], s["what"]) for s in data["sides"]]
    L = ["Run %s – %s: `tests/bench/io_paired.py --seconds %d --rounds %d --only %s`; %d MiB images, 16 KiB blocks, "
         "fio in the guest with libaio, each build's own bench guest on the same kernel; the two builds alternate, the "
         "order swapped every round." % (data["started"], data.get("finished", "?"), data["seconds"], data["rounds"],
                                         ",".join(data["order"]), data["disk_mb"]), "",
         "Builds: " + "; ".join(L) + ".", "", mdtable.md_table(head, rows), ""]
    L.append("Load average (1, 5, 15 min) before each run, in run order: " + "; ".join(
        "r%d %s %s: %s" % (r["round"], r["variant"].replace("vmlaunch-", ""), r["side"], r["load_before"])
        for r in data["runs"]) + ".")
    errors = [r for r in data["runs"] if "error" in r]
    if errors:
        L += ["", "Failed runs: " + "; ".join(
            "r%d %s %s: %s" % (r["round"], r["variant"], r["side"], first_error(r["error"])) for r in errors)]
    for vid, args in data["args"].items():
        L += ["", "`%s` disk arguments — %s" % (vid, "; ".join("%s: `%s`" % (s, a) for s, a in args.items()))]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="build A's vmlaunch")
    ap.add_argument("--a-initrd", required=True, help="build A's bench guest (its build/bench/initramfs-fio.cpio)")
    ap.add_argument("--a-name", default="before")
    ap.add_argument("--a-what", default="build A")
    ap.add_argument("--b", default=B.VMLAUNCH)
    ap.add_argument("--b-initrd", default=B.INITRAMFS_FIO)
    ap.add_argument("--b-name", default="after")
    ap.add_argument("--b-what", default="build B")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--disk-mb", type=int, default=int(os.environ.get("BENCH_DISK_MB", "512")))
    ap.add_argument("--only", default="vmlaunch-tmpfs,vmlaunch-zram,vmlaunch-file")
    ap.add_argument("--json", default="io-paired.json")
    args = ap.parse_args()

    sides = [{"name": args.a_name, "what": args.a_what, "vmlaunch": args.a, "initrd": args.a_initrd},
             {"name": args.b_name, "what": args.b_what, "vmlaunch": args.b, "initrd": args.b_initrd}]
    for f in [B.VMLINUX] + [s[k] for s in sides for k in ("vmlaunch", "initrd")]:
        if not os.path.exists(f):
            sys.exit("io_paired.py: %s is missing" % f)
    workloads = fiojobs.WORKLOADS
    confdir = tempfile.mkdtemp(prefix="vmbench-paired-")
    data = {"host": B.host_info(), "seconds": args.seconds, "rounds": args.rounds, "disk_mb": args.disk_mb,
            "workloads": [w[0] for w in workloads], "sides": sides, "started": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                             time.gmtime()),
            "order": [], "runs": [], "args": {}}
    try:
        with guest_io.backing(args.disk_mb, bool(os.environ.get("CEPH_DIR"))) as ctx:
            keep = set(args.only.split(","))
            vs = [v for v in guest_io.variants(ctx) if v.id in keep and v.kind == "vmlaunch"]
            data["order"] = [v.id for v in vs]
            for v in vs:
                conf = B.write_conf(os.path.join(confdir, v.id + ".conf"), "bench-io-" + v.id, v.conf(ctx))
                data["args"][v.id] = {s["name"]: dry_run_disk(s["vmlaunch"], conf) for s in sides}
            for r in range(1, args.rounds + 1):
                B.before_round(r, args.rounds)
                for v in vs:
                    for s in (sides if r % 2 else sides[::-1]):
                        B.log("round %d: %s with %s" % (r, v.id, s["name"]))
                        run = {"round": r, "variant": v.id, "side": s["name"], "load_before": B.loadavg()}
                        try:
                            res, wall = run_one(s, v, ctx, args.seconds, workloads, confdir)
                            run.update(results=res, wall=round(wall, 1))
                            B.log("  " + ", ".join("%s %.0f IOPS" % (k, x["iops"]) for k, x in res.items()))
                        except Exception as e:  # noqa: BLE001 — a failed run is recorded, the others go on
                            run["error"] = str(e)[-3000:]
                            B.log("  FAILED:", str(e)[-1500:])
                        data["runs"].append(run)
                data["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                B.save_json(args.json, data)
    finally:
        shutil.rmtree(confdir, ignore_errors=True)
    md = os.path.join(B.RESULTS_DIR, os.path.splitext(args.json)[0] + ".md")
    with open(md, "w") as f:
        f.write(summary(data))
    B.log("wrote", os.path.relpath(md, B.ROOT))


if __name__ == "__main__":
    main()
