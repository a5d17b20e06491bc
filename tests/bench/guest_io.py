#!/usr/bin/python3
"""Guest disk I/O: fio inside the bundled guest (build/bench/initramfs-fio.cpio.gz) against the same backing through
qemu's defaults, the usual virtio defaults, vmlaunch itself, and fio on the host; interleaved rounds.

    tests/bench/guest_io.py [--seconds 20] [--rounds 3] [--only ID,ID] [--list]

Environment: BENCH_SECONDS, BENCH_ROUNDS, BENCH_DISK_MB (default 512), BENCH_DISK_DIR (the disk-file group's
directory, default /var/tmp), CEPH_DIR (a cluster from tests/ceph/start.sh: the RBD group uses it), BENCH_RBD
(auto (default): without CEPH_DIR, start a throwaway cluster with tests/ceph/start.sh when Ceph is installed and
stop it at the end; start: the same, installing Ceph first (tests/ceph/install.sh); off: no RBD group),
BENCH_QUIET_WAIT (see benchlib.before_round).
Writes tests/bench/results/io.json, then regenerates results.md and guest-io.png (report.py).
"""
import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import cpusample  # noqa: E402
import fiojobs  # noqa: E402


class Variant:
    def __init__(self, vid, group, label, kind, *, disk=None, device="/dev/vda", conf=None, host=None, ref=None,
                 note=""):
        self.id, self.group, self.label, self.kind = vid, group, label, kind
        self.disk = disk        # qemu: function(ctx) -> disk arguments
        self.device = device    # the guest's block device
        self.conf = conf        # vmlaunch: function(ctx) -> [disk d] lines
        self.host = host        # host: function(ctx) -> (fio extra args, env, setup/teardown context manager)
        self.ref = ref          # the vmlaunch variant this one's ratio is taken against
        self.note = note


def raw_drive(path, extra=""):
    return ["-drive", "file=%s,format=raw%s" % (path, extra)]


@contextlib.contextmanager
def host_zram(ctx):
    """A zram device like vmlaunch's (kernel's default compressor), filled with the image, reset afterwards."""
    dev = B.run(["zramctl", "--find", "--size", "%dM" % ctx.disk_mb]).stdout.strip()
    try:
        B.run(["dd", "if=" + ctx.raw, "of=" + dev, "bs=1M", "oflag=direct", "status=none"])
        yield dev
    finally:
        B.run(["zramctl", "--reset", dev], check=False)


def variants(ctx):
    raw, qcow2, dfile = ctx.raw, ctx.qcow2, ctx.disk_file
    v = [
        # --- a raw file on tmpfs (/dev/shm), the reference notes' backing
        Variant("qemu-defaults", "tmpfs", "qemu defaults: `-drive file=IMG,format=raw` (AHCI on q35, no iothread)",
                "qemu", disk=lambda c: raw_drive(raw), device="/dev/sda", ref="vmlaunch-tmpfs"),
        Variant("virtio-defaults", "tmpfs", "virtio defaults: `-drive file=IMG,if=virtio,format=raw` (writeback, aio=threads)",
                "qemu", disk=lambda c: raw_drive(raw, ",if=virtio"), ref="vmlaunch-tmpfs"),
        Variant("virtio-defaults-qcow2", "tmpfs", "virtio defaults on qcow2: `-drive file=IMG.qcow2,if=virtio,format=qcow2`",
                "qemu", disk=lambda c: ["-drive", "file=%s,if=virtio,format=qcow2" % qcow2], ref="vmlaunch-tmpfs"),
        Variant("vmlaunch-tmpfs", "tmpfs", "vmlaunch, `backend = tmpfs` (`source = IMG`)", "vmlaunch",
                conf=lambda c: ["backend = tmpfs", "size = %dM" % c.disk_mb, "source = " + raw, "source-format = raw"]),
        Variant("host-tmpfs", "tmpfs", "host: fio on IMG (io_uring, O_DIRECT)", "host",
                host=lambda c: (["--filename=" + raw], contextlib.nullcontext()), ref="vmlaunch-tmpfs"),
        # --- zram
        Variant("vmlaunch-zram", "zram", "vmlaunch, `backend = zram` (`source = IMG`)", "vmlaunch",
                conf=lambda c: ["backend = zram", "size = %dM" % c.disk_mb, "source = " + raw, "source-format = raw"]),
        Variant("host-zram", "zram", "host: fio on a zram device holding IMG (io_uring, O_DIRECT)", "host",
                host=lambda c: (None, host_zram(c)), ref="vmlaunch-zram"),
        # --- a raw file on the host's disk file system
        Variant("virtio-defaults-file", "file", "virtio defaults: `-drive file=FILE,if=virtio,format=raw` (host page cache)",
                "qemu", disk=lambda c: raw_drive(dfile, ",if=virtio"), ref="vmlaunch-file"),
        Variant("vmlaunch-file", "file", "vmlaunch, `backend = file` (`path = FILE`, persistent)", "vmlaunch",
                conf=lambda c: ["backend = file", "path = " + dfile, "format = raw"]),
        Variant("host-file", "file", "host: fio on FILE (io_uring, O_DIRECT)", "host",
                host=lambda c: (["--filename=" + dfile], contextlib.nullcontext()), ref="vmlaunch-file"),
    ]
    if ctx.ceph_conf:
        img, conf = ctx.rbd_image, ctx.ceph_conf
        v += [
            Variant("qemu-defaults-rbd", "rbd", "qemu defaults: `-drive file=rbd:POOL/IMG:conf=…,format=raw` (AHCI, librbd cache on)",
                    "qemu", disk=lambda c: raw_drive("rbd:rbd/%s:conf=%s:id=vmlaunch" % (img, conf)),
                    device="/dev/sda", ref="vmlaunch-rbd"),
            Variant("virtio-defaults-rbd", "rbd", "virtio defaults: `-drive file=rbd:…,if=virtio,format=raw` (writeback = librbd cache on)",
                    "qemu", disk=lambda c: raw_drive("rbd:rbd/%s:conf=%s:id=vmlaunch" % (img, conf), ",if=virtio"),
                    ref="vmlaunch-rbd"),
            Variant("vmlaunch-rbd", "rbd", "vmlaunch, `backend = rbd` (existing image)", "vmlaunch",
                    conf=lambda c: ["backend = rbd", "pool = rbd", "image = " + img, "conf = " + conf,
                                    "user = vmlaunch"]),
            Variant("host-rbd", "rbd", "host: fio's rbd engine (librbd, no VM)", "host",
                    host=lambda c: (["--ioengine=rbd", "--clientname=vmlaunch", "--pool=rbd", "--rbdname=" + img],
                                    contextlib.nullcontext()), ref="vmlaunch-rbd"),
        ]
    return v


class Ctx:
    pass


@contextlib.contextmanager
def backing(disk_mb, want_rbd):
    """The images every variant uses: IMG (random data) on tmpfs, its qcow2 copy there, a copy on the disk file
    system, and (when a cluster is available) an RBD image with the same size."""
    c = Ctx()
    c.disk_mb = disk_mb
    c.dir = tempfile.mkdtemp(prefix="vmbench-io-", dir="/dev/shm")
    c.disk_dir = tempfile.mkdtemp(prefix="vmbench-io-", dir=os.environ.get("BENCH_DISK_DIR", "/var/tmp"))
    c.raw = os.path.join(c.dir, "disk.raw")
    c.qcow2 = os.path.join(c.dir, "disk.qcow2")
    c.disk_file = os.path.join(c.disk_dir, "disk.raw")
    c.ceph_conf = None
    own_cluster = None
    try:
        B.log("backing: %d MiB of random data in %s, qcow2 copy, copy in %s" % (disk_mb, c.raw, c.disk_file))
        B.run(["dd", "if=/dev/urandom", "of=" + c.raw, "bs=1M", "count=%d" % disk_mb, "status=none"])
        B.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", c.raw, c.qcow2])
        B.run(["dd", "if=" + c.raw, "of=" + c.disk_file, "bs=1M", "oflag=direct", "status=none"])
        ceph_dir = os.environ.get("CEPH_DIR")
        if not ceph_dir and want_rbd:
            B.run(["bash", os.path.join(B.ROOT, "tests/ceph/install.sh")], check=False)
            ceph_dir = own_cluster = tempfile.mkdtemp(prefix="vc-", dir="/tmp")
            B.log("starting a throwaway Ceph cluster in", ceph_dir)
            B.run(["bash", os.path.join(B.ROOT, "tests/ceph/start.sh"), ceph_dir], stdout=sys.stderr)
        if ceph_dir:
            c.ceph_conf = os.path.join(ceph_dir, "ceph.conf")
            c.rbd_image = "vmlaunch-bench-io"
            B.run(["rbd", "-c", c.ceph_conf, "--id", "vmlaunch", "rm", "rbd/" + c.rbd_image], check=False)
            B.run(["rbd", "-c", c.ceph_conf, "--id", "vmlaunch", "create", "rbd/" + c.rbd_image, "--size",
                   "%dM" % disk_mb])
            # filled, so every read reaches data the OSD holds (as rbd_bench.sh does)
            B.run(["fio", "--name=fill", "--ioengine=rbd", "--clientname=vmlaunch", "--pool=rbd",
                   "--rbdname=" + c.rbd_image, "--rw=write", "--bs=1M", "--iodepth=4", "--size=%dM" % disk_mb,
                   "--output=/dev/null"], env=dict(os.environ, CEPH_CONF=c.ceph_conf))
        yield c
    finally:
        if c.ceph_conf:
            B.run(["rbd", "-c", c.ceph_conf, "--id", "vmlaunch", "rm", "rbd/" + c.rbd_image], check=False)
        if own_cluster:
            B.run(["bash", os.path.join(B.ROOT, "tests/ceph/stop.sh"), own_cluster], check=False)
        shutil.rmtree(c.dir, ignore_errors=True)
        shutil.rmtree(c.disk_dir, ignore_errors=True)


def timeout_for(seconds, n_workloads):
    return 300 + 3 * n_workloads * (seconds + fiojobs.ramp_seconds(seconds))


def run_variant(v, ctx, seconds, workloads, confdir):
    """One run of one variant: {workload: {iops, lat_mean_us, lat_p99_us}}, plus wall seconds."""
    tmo = timeout_for(seconds, len(workloads))
    if v.kind == "qemu":
        argv = B.base_qemu_argv(accel=ctx.accel, cpu=ctx.cpu) + v.disk(ctx)
        out, wall = B.run_qemu_command(argv, fiojobs.guest_fio_argv(v.device, seconds, workloads), tmo)
        return fiojobs.parse_fio(out), wall
    if v.kind == "vmlaunch":
        conf = B.write_conf(os.path.join(confdir, v.id + ".conf"), "bench-io-" + v.id, v.conf(ctx))
        out, wall = B.run_vmlaunch_command(conf, fiojobs.guest_fio_argv(v.device, seconds, workloads), tmo)
        return fiojobs.parse_fio(out), wall
    extra, cm = v.host(ctx)
    with cm as dev:
        args = extra if extra is not None else ["--filename=" + dev]
        engine = "rbd" if any(a == "--ioengine=rbd" for a in args) else "io_uring"
        args = [a for a in args if not a.startswith("--ioengine=")]
        env = dict(os.environ, CEPH_CONF=ctx.ceph_conf) if ctx.ceph_conf else None
        t0 = time.monotonic()
        p = B.run(["fio"] + fiojobs.fio_args(seconds, workloads, engine, extra=args), env=env, timeout=tmo)
        return fiojobs.parse_fio(p.stdout), time.monotonic() - t0


def describe(v, ctx, confdir):
    """The exact arguments a variant's disk gets (vmlaunch's from --dry-run)."""
    if v.kind == "qemu":
        return " ".join(v.disk(ctx))
    if v.kind == "vmlaunch":
        conf = B.write_conf(os.path.join(confdir, v.id + ".conf"), "bench-io-" + v.id, v.conf(ctx))
        try:
            return " ".join(B.disk_args_of(B.dry_run(conf)))
        except RuntimeError as e:
            return "(dry-run failed: %s)" % str(e).strip().splitlines()[-1]
    return "fio " + " ".join(v.host(ctx)[0] or ["--filename=/dev/zramN"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "20")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--disk-mb", type=int, default=int(os.environ.get("BENCH_DISK_MB", "512")))
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""), help="comma-separated variant ids")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run: keep the complete rounds "
                    "in the results file (same seconds, image size and variants) and run the missing ones")
    ap.add_argument("--json", default="io.json", help="results file under tests/bench/results/ (report.py reads io.json)")
    args = ap.parse_args()

    for f in (B.VMLAUNCH, B.VMLINUX, B.INITRAMFS_FIO):
        if not os.path.exists(f):
            sys.exit("guest_io.py: %s is missing (make bench-guest)" % f)
    workloads = fiojobs.WORKLOADS
    mode = os.environ.get("BENCH_RBD", "auto")
    want_rbd = bool(os.environ.get("CEPH_DIR")) or mode == "start" or (mode == "auto" and shutil.which("ceph-mon"))
    confdir = tempfile.mkdtemp(prefix="vmbench-conf-")
    data = {"host": B.host_info(), "seconds": args.seconds, "rounds": args.rounds, "disk_mb": args.disk_mb,
            "ramp_seconds": fiojobs.ramp_seconds(args.seconds), "workloads": [w[0] for w in workloads],
            "fio_guest": " ".join(fiojobs.fio_args(args.seconds, workloads, "libaio", "/dev/vda")),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "round_loads": [], "variants": {}, "order": []}
    if not want_rbd:
        data["rbd_note"] = ("RBD group not run: no CEPH_DIR (a cluster from tests/ceph/start.sh), and BENCH_RBD=%s%s"
                            % (mode, "" if mode == "off" else " with no ceph-mon installed (tests/ceph/install.sh)"))
    elif not os.environ.get("CEPH_DIR"):
        data["rbd_note"] = ("RBD: a throwaway cluster from tests/ceph/start.sh (mon, mgr, one memstore OSD on "
                            "127.0.0.1) ran through all rounds, idle during the other groups")
    else:
        data["rbd_note"] = "RBD: the cluster in CEPH_DIR=%s" % os.environ["CEPH_DIR"]
    if args.list:  # the variants by name: no images made, no cluster started
        ctx = Ctx()
        ctx.raw, ctx.qcow2, ctx.disk_file, ctx.rbd_image = "IMG", "IMG.qcow2", "FILE", "IMG"
        ctx.ceph_conf = "CEPH_CONF" if want_rbd else None
        for v in variants(ctx):
            print("%-24s %-7s %s" % (v.id, v.group, v.label))
        return
    try:
        with backing(args.disk_mb, want_rbd) as ctx:
            # the hand-written variants run under the accelerator and CPU model vmlaunch picks here
            probe = B.write_conf(os.path.join(confdir, "accel.conf"), "bench-io-accel", ["backend = tmpfs", "size = 16M"])
            ctx.accel, ctx.cpu = B.accel_and_cpu(B.dry_run(probe))
            data["accel"], data["cpu"] = ctx.accel, ctx.cpu
            B.log("hand-written variants: -accel %s -cpu %s (vmlaunch's choice on this host)" % (ctx.accel, ctx.cpu))
            vs = variants(ctx)
            if args.only:
                keep = set(args.only.split(","))
                vs = [v for v in vs if v.id in keep]
            for v in vs:
                data["order"].append(v.id)
                data["variants"][v.id] = {"label": v.label, "group": v.group, "kind": v.kind, "ref": v.ref,
                                          "args": describe(v, ctx, confdir), "runs": []}
            first = 1
            old = B.load_json(args.json) if args.resume else None
            if old and old["seconds"] == args.seconds and old["disk_mb"] == args.disk_mb and old["order"] == data["order"]:
                done = len(old["round_loads"])
                for vid in data["order"]:
                    data["variants"][vid]["runs"] = [r for r in old["variants"][vid]["runs"] if r["round"] <= done]
                data["round_loads"] = old["round_loads"][:done]
                data["started"] = old["started"]
                data["resumed"] = old.get("resumed", []) + [
                    "after round %d at %s (the first run was killed; the images were made anew)" % (
                        done, time.strftime("%Y-%m-%d %H:%M:%S"))]
                first = done + 1
                B.log("resuming %s after round %d" % (args.json, done))
            elif args.resume:
                B.log("nothing to resume in %s (missing, or other settings): starting afresh" % args.json)
            B.log("variants:", ", ".join(v.id for v in vs), "; %d s per workload, %d rounds" % (args.seconds, args.rounds))
            for r in range(first, args.rounds + 1):
                la = B.before_round(r, args.rounds)
                data["round_loads"].append(la)
                for v in vs:
                    B.log("round %d: %s" % (r, v.id))
                    run = {"round": r, "load_before": B.loadavg()}
                    try:
                        with cpusample.HostSteal() as steal:
                            res, wall = run_variant(v, ctx, args.seconds, workloads, confdir)
                        run.update(results=res, wall=round(wall, 1), steal=steal.fraction)
                        B.log("  " + ", ".join("%s %.0f IOPS" % (k, x["iops"]) for k, x in res.items()) + "; %s" % steal)
                    except Exception as e:  # noqa: BLE001 — a failed variant is recorded, the others go on
                        run["error"] = str(e)[-3000:]
                        B.log("  FAILED:", str(e)[-1500:])
                    run["load_after"] = B.loadavg()
                    data["variants"][v.id]["runs"].append(run)
                data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
                B.save_json(args.json, data)  # after every round: a long run interrupted keeps what it measured
    finally:
        shutil.rmtree(confdir, ignore_errors=True)
    import report
    report.main()


if __name__ == "__main__":
    main()
