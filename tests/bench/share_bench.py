#!/usr/bin/python3
"""Host directories in the guest (issue 20): a real build and file reads over vmlaunch's virtiofs [share], over
vmtest-style 9p (`-virtfs`, qemu's built-in server) and on the host itself.

The guest is the Debian test image's userland on the bundled kernel (`[boot] root =`), 2 vCPUs, 1 GiB, under TCG
here. Per round, in this order (interleaved, so a noisy neighbour hurts every variant alike): the host, virtiofs,
9p. Each guest run is one boot doing three jobs, each timed inside the guest (boot and teardown are left out, and
reported apart as the whole run's wall time):
- build: `make -j2` of 28 of vmlaunch's own C files (those that need no library headers the image lacks, ~5,200
  lines plus headers) with `gcc -O0`, sources read from the share, objects written to the guest's /tmp (tmpfs);
- big: `dd` of a 1 GiB file of random bytes, 1 MiB blocks;
- small: `cat` of a tree of 10,000 files of 4 KiB (`find -exec cat {} +`, counted by `wc -c`).
The host variant runs the same script on the host, objects on /dev/shm. The files are in the host's page cache in
every variant (the data is made once, and page caches are never dropped on this shared machine): what is measured
is the path from the host's page cache to the program, not the disk.
Writes results/share.json and results/share.md (report.py puts the latter into results.md).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import benchlib as B
import mdtable

WORK = os.environ.get("BENCH_SHARE_DIR", "/var/tmp/vmlaunch-bench-share")
DEBIAN = os.path.join(B.BUILD, "images", "debian12.raw")
EXCLUDE = ("ini.h", "json-c", "libmnl", "liburing", "numa.h", "cap-ng", "/rbd/", "/rados/", "/nettle/", "/curl/")
SMALL_FILES = 10000
SMALL_SIZE = 4096
BIG_MIB = 1024
VARIANTS = ["host", "virtiofs", "9p"]

# The job, the same on the host and in the guest: prints "build S", "big S BYTES", "small S BYTES".
JOB = r"""
set -e
now() { date +%s.%N; }
span() { awk "BEGIN { printf \"%.3f\", $2 - $1 }"; }
a=$(now); make -s -j2 -C "$SRC" OUT="$OUT" >/dev/null; b=$(now)
echo "build $(span $a $b) $(ls "$OUT"/*/*.o | wc -l)"
a=$(now); n=$(dd if="$DATA/big.bin" bs=1M 2>/dev/null | wc -c); b=$(now)
echo "big $(span $a $b) $n"
a=$(now); n=$(find "$DATA/small" -type f -exec cat {} + | wc -c); b=$(now)
echo "small $(span $a $b) $n"
"""
# 9p the way vmtest and the kernel's selftests mount it: trans=virtio, 9p2000.L, the kernel's default msize.
MOUNT_9P = ("modprobe -a 9pnet_virtio 9p; mkdir -p /mnt/src9p /mnt/data9p; "
            "mount -t 9p -o ro,trans=virtio,version=9p2000.L src9p /mnt/src9p; "
            "mount -t 9p -o ro,trans=virtio,version=9p2000.L data9p /mnt/data9p; ")


def sources():
    """vmlaunch's C files that compile with libc and kernel headers only (the image has no libmnl, json-c, ...)."""
    out = []
    for d in ("launcher", "storage"):
        for f in sorted(os.listdir(os.path.join(B.ROOT, d))):
            if not f.endswith(".c"):
                continue
            deps = B.run(["gcc", "-M", "-Ilauncher", "-Istorage", "-DVMLAUNCH_VERSION=\"x\"", f"{d}/{f}"],
                         cwd=B.ROOT).stdout
            if not any(x in deps for x in EXCLUDE):
                out.append(f"{d}/{f}")
    return out


def prepare():
    """WORK/tree (the sources, headers and a Makefile) and WORK/data (big.bin, small/): readable by qemu's user."""
    tree, data = os.path.join(WORK, "tree"), os.path.join(WORK, "data")
    srcs = sources()
    # made once and kept (the data takes a while), but made again when the list of sources is another
    if os.path.exists(os.path.join(WORK, "ready")):
        with open(os.path.join(WORK, "ready")) as f:
            meta = json.load(f)
        if meta.get("files") == srcs:
            return tree, data, meta
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(tree)
    os.chmod(WORK, 0o755)
    for d in ("launcher", "storage"):
        os.makedirs(os.path.join(tree, d))
        for f in os.listdir(os.path.join(B.ROOT, d)):
            if f.endswith(".h") or f"{d}/{f}" in srcs:
                shutil.copy(os.path.join(B.ROOT, d, f), os.path.join(tree, d, f))
    with open(os.path.join(tree, "Makefile"), "w") as f:
        f.write("SRCS := %s\nOUT ?= /tmp/obj\nOBJS := $(patsubst %%.c,$(OUT)/%%.o,$(SRCS))\nall: $(OBJS)\n"
                "$(OUT)/%%.o: %%.c\n\t@mkdir -p $(dir $@)\n"
                "\tgcc -std=gnu11 -O0 -Ilauncher -Istorage -DVMLAUNCH_VERSION='\"bench\"' -c $< -o $@\n"
                % " ".join(srcs))
    lines = sum(sum(1 for _ in open(os.path.join(tree, s))) for s in srcs)
    os.makedirs(os.path.join(data, "small"))
    with open(os.path.join(data, "big.bin"), "wb") as f:
        for _ in range(BIG_MIB):
            f.write(os.urandom(1 << 20))
    for i in range(SMALL_FILES):
        d = os.path.join(data, "small", "%02d" % (i % 100))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            f.write(os.urandom(SMALL_SIZE))
    meta = {"sources": len(srcs), "lines": lines, "files": srcs}
    with open(os.path.join(WORK, "ready"), "w") as f:
        f.write(json.dumps(meta))
    return tree, data, meta


def parse(out):
    r = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 3 and w[0] in ("build", "big", "small"):
            r[w[0] + "_s"] = float(w[1])
            r[w[0] + ("_objects" if w[0] == "build" else "_bytes")] = int(w[2])
    return r


def conf(path, variant, tree, data):
    shares = (f"[share src]\npath = {tree}\nmount = /src\n[share data]\npath = {data}\nmount = /data\n"
              if variant == "virtiofs" else "")
    # one -virtfs per continuation line: a config line has at most 198 characters
    extra = (f"[qemu]\nextra = -virtfs local,path={tree},mount_tag=src9p,security_model=none,readonly=on,"
             f"multidevs=remap\n  -virtfs local,path={data},mount_tag=data9p,security_model=none,readonly=on,"
             "multidevs=remap\n" if variant == "9p" else "")
    with open(path, "w") as f:
        f.write(f"[vm]\nname = bench-share\ncpus = 2\nmemory = 1G\nconsole-log = {path}.console\n"
                f"[boot]\nkernel = {B.VMLINUX}\ninitrd = {B.INITRAMFS}\nappend = {B.GUEST_APPEND}\nroot = sys\n"
                f"[disk sys]\nbackend = file\npath = {DEBIAN}\nformat = raw\nephemeral = yes\n" + shares + extra)
    return path


def run_variant(variant, tree, data, workdir):
    la0 = B.loadavg()
    t0 = time.monotonic()
    if variant == "host":
        out_dir = "/dev/shm/vmlaunch-bench-share-obj"
        shutil.rmtree(out_dir, ignore_errors=True)
        env = dict(os.environ, SRC=tree, DATA=data, OUT=out_dir)
        try:
            out = B.run(["sh", "-c", JOB], env=env).stdout
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        wall = time.monotonic() - t0
    else:
        where = ("SRC=/src DATA=/data" if variant == "virtiofs" else MOUNT_9P + "SRC=/mnt/src9p DATA=/mnt/data9p")
        script = f"{where} OUT=/tmp/obj; export SRC DATA OUT; " + JOB
        c = conf(os.path.join(workdir, f"{variant}.conf"), variant, tree, data)
        out, wall = B.run_vmlaunch_command(c, ["sh", "-c", script], timeout=1800)
    r = parse(out)
    r.update(wall_s=wall, load_before=la0, load_after=B.loadavg())
    return r


def render(data):
    runs = data["runs"]

    def cell(v, key, digits=1):
        xs = [r[key] for r in runs[v] if key in r]
        lo, hi = B.minmax(xs)
        return "%s (%s)" % (mdtable.fmt_num(B.median(xs), digits), mdtable.fmt_range(lo, hi, digits)) if xs else "–"

    def rate(v, key, size_key):
        xs = [r[size_key] / r[key] / 2**20 for r in runs[v] if key in r and r[key] > 0]
        lo, hi = B.minmax(xs)
        return "%s (%s)" % (mdtable.fmt_num(B.median(xs)), mdtable.fmt_range(lo, hi)) if xs else "–"

    names = {"host": "host (no VM)", "virtiofs": "**vmlaunch, virtiofs [share]**", "9p": "9p (`-virtfs`, vmtest-style)"}
    L = ["Ran %s, `%s`, %d interleaved rounds (host, virtiofs, 9p in each), %s. The job: `make -j2` of %d "
         "of vmlaunch's C files (%s lines, `gcc -O0`), the tree shared read-only; a 1 GiB file read by `dd`; "
         "10,000 files of 4 KiB read by `cat`. The guest: the Debian 12 test image's userland on the bundled kernel "
         "(`[boot] root =`), 2 vCPUs, 1 GiB, **TCG** (every guest number is bounded by emulation). Times are measured inside the guest, boot excluded; \"whole run\" is "
         "`vmlaunch CONF -- JOB` from start to exit. Median (min–max)." % (
             data["host"]["date"], data["command"], data["rounds"], data["host"]["vmlaunch"], data["sources"],
             mdtable.fmt_num(data["lines"])), ""]
    rows = []
    for v in VARIANTS:
        if v in runs:
            rows.append([names[v], cell(v, "build_s"), cell(v, "big_s", 2), rate(v, "big_s", "big_bytes"),
                         cell(v, "small_s", 2), cell(v, "wall_s")])
    L.append(mdtable.md_table(["variant", "build, s", "1 GiB read, s", "1 GiB read, MiB/s", "10,000 files, s",
                         "whole run, s"], rows, ["---"] + ["---:"] * 5))
    L.append("")
    L.append(mdtable.load_note(data["order"]))
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--only", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    ap.add_argument("--render", action="store_true", help="only render results/share.md again from results/share.json")
    args = ap.parse_args()
    if args.render:
        md = render(B.load_json("share.json"))
        with open(os.path.join(B.RESULTS_DIR, "share.md"), "w") as f:
            f.write(md + "\n")
        return
    if not os.path.exists(DEBIAN):
        sys.exit(f"{DEBIAN} is missing: make debian-image")
    variants = [v for v in VARIANTS if v in args.only.split(",")]
    tree, data, meta = prepare()
    data_out = {"host": B.host_info(), "rounds": args.rounds, "runs": {v: [] for v in variants}, "order": [],
                "command": "tests/bench/share_bench.py " + " ".join(sys.argv[1:]), **meta}
    with tempfile.TemporaryDirectory() as workdir:
        for n in range(1, args.rounds + 1):
            B.before_round(n, args.rounds)
            for v in variants:
                try:
                    r = run_variant(v, tree, data, workdir)
                except RuntimeError as e:
                    B.log(f"{v}: failed: {e}")
                    r = {"error": str(e)[:2000], "load_before": B.loadavg()}
                B.log(v, {k: r[k] for k in r if k != "error"})
                data_out["runs"][v].append(r)
                data_out["order"].append((v, r["load_before"]))
    B.save_json("share.json", data_out)
    md = render(data_out)
    with open(os.path.join(B.RESULTS_DIR, "share.md"), "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
