#!/usr/bin/python3
"""Which flags beat vmlaunch's current default? fio 16K randread and randwrite at iodepth 32 in the bundled guest
(tmpfs-backed raw image, as in guest_io.py), interleaved rounds, for:

  vmlaunch             vmlaunch itself, `backend = tmpfs` (`source = IMG`): the current default
  vmlaunch-pin-off     the same with `--set cpu.pin=off`
  hand                 vmlaunch's argv for that disk (from --dry-run: machine options, -cpu, append, iothread,
                       blockdev, virtio-blk device), written by hand on IMG itself: no pinning, no tcmalloc, no
                       privilege dropping. Every other variant is `hand` with one change, so its ratio to `hand`
                       is that change's gain.
  qemu-defaults, virtio-defaults   as in guest_io.py, for the target ratios; and the same booted with the guest
                       kernel words vmlaunch adds under TCG (`-guest-words`): the ratio to these is the qemu flags'
  and one variant per knob (--list shows them).

  The hand-written command line is kept as named parts (the -cpu, the -accel, the guest kernel's words, the disk's
  iothread object, blockdev and virtio-blk device, each a qemu option parsed into its properties); a knob changes
  one property or word of one part, never a string by its prefix.

  Each knob is a change from vmlaunch's current default: a flag vmlaunch already sets (packed=on, mitigations=off
  in the guest under TCG; the iothread's busy polling, qemu's default, by `poll-0`) is tested by taking it away, and
  `old-default` (the id lists the knobs) takes all of them away: vmlaunch's command line before they became
  defaults.

    tests/bench/explore.py [--seconds 10] [--rounds 5] [--only ID,ID] [--combo ID+ID ...] [--polled] [--list]

--polled adds polled I/O (io_uring with --hipri, randread and randwrite at iodepth 32) to the libaio workloads.

--combo id1+id2 adds a variant applying several changes at once. Environment: BENCH_EXPLORE_SECONDS (default 10),
BENCH_EXPLORE_ROUNDS (default BENCH_ROUNDS, else 5), BENCH_DISK_MB, BENCH_EXPLORE_COMBOS (space-separated, like
--combo).
Writes tests/bench/results/explore.json, then regenerates results.md (report.py).
"""
import argparse
import copy
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import cpusample  # noqa: E402
import fiojobs  # noqa: E402

WORKLOADS = [w for w in fiojobs.WORKLOADS if w[0] in ("randread-qd32", "randwrite-qd32")]
# Polled I/O: io_uring with IORING_SETUP_IOPOLL. It completes without an interrupt on a device with poll queues
# (virtio_blk.poll_queues=N in the guest); elsewhere the kernel completes it by interrupt as usual.
POLLED_WORKLOADS = [
    ("randread-qd32-polled", "randread", 32, ("--ioengine=io_uring", "--hipri")),
    ("randwrite-qd32-polled", "randwrite", 32, ("--ioengine=io_uring", "--hipri")),
]
# Words vmlaunch adds to the guest kernel's command line itself (under TCG), as opposed to the config's append.
GUEST_WORDS = ("mitigations=off", "tsc=reliable", "virtio_blk.poll_queues=1")


class QemuOpts:
    """One qemu option's value as named parts: its leading word (a -device's or -object's type, a -cpu model, an
    accelerator, a machine type; None for -blockdev's key=value form) and its properties, in order. ",," is qemu's
    escaped comma."""

    def __init__(self, text):
        parts = [p.replace("\0", ",") for p in text.replace(",,", "\0").split(",")]
        self.word = None if "=" in parts[0] else parts.pop(0)
        self.props = dict(p.split("=", 1) for p in parts)

    def get(self, key):
        return self.props.get(key)

    def set(self, key, value):
        """A copy with key=value (in its place if the key is there, else at the end); value None removes the key."""
        out = copy.deepcopy(self)
        if value is None:
            out.props.pop(key, None)
        else:
            out.props[key] = value
        return out

    def __str__(self):
        parts = ([self.word] if self.word is not None else []) + ["%s=%s" % kv for kv in self.props.items()]
        return ",".join(p.replace(",", ",,") for p in parts)


# A spec is the hand-written command line as named parts: machine, accel, cpu (QemuOpts), kernel, append (the guest
# kernel's words after console=ttyS0 panic=-1), smp, memory, the disk's iothread (QemuOpts or None), blockdev and
# device (QemuOpts), and io_nice (the main loop's and iothread's nice value, None: unchanged). A knob is a function
# that changes a copy of it.

def prop(part, key, value):
    """key=value in one part (value None: without the key)."""
    def change(s):
        s[part] = s[part].set(key, value)
    return change


def model(part, word):
    """Another leading word in one part: `-cpu qemu64` for `-cpu max`."""
    def change(s):
        s[part] = copy.deepcopy(s[part])
        s[part].word = word
    return change


def add_words(*words):
    def change(s):
        s["append"] = s["append"] + list(words)
    return change


def drop_word(word):
    def change(s):
        s["append"] = [w for w in s["append"] if w != word]
    return change


def field(name, fn):
    """A part that is a plain value, as fn(old value)."""
    def change(s):
        s[name] = fn(s[name])
    return change


def changes(*fns):
    def change(s):
        for fn in fns:
            fn(s)
    return change


def without_iothread(s):
    s["iothread"] = None
    s["device"] = s["device"].set("iothread", None)


def changed(spec, *knobs):
    """A copy of spec with the knobs' changes."""
    s = copy.deepcopy(spec)
    for k in knobs:
        KNOBS[k][1](s)
    return s


def guest_bzimage(_):
    """The guest kernel as Debian ships it (a bzImage: its decompressor runs in the guest, and sets up 5-level
    paging when the CPU has LA57, which the PVH entry of the extracted vmlinux never does)."""
    kver = B.run([os.path.join(B.ROOT, "initramfs", "build.sh"), "default-kver"]).stdout.strip()
    return "/boot/vmlinuz-" + kver


# id -> (what changes, how)
KNOBS = {
    "cpu-qemu64": ("`-cpu qemu64` instead of `-cpu max`", model("cpu", "qemu64")),
    "cpu-EPYC": ("`-cpu EPYC` instead of `-cpu max`", model("cpu", "EPYC")),
    "cpu-Skylake-Client": ("`-cpu Skylake-Client` (an Intel model: the guest turns on PTI)",
                           model("cpu", "Skylake-Client")),
    "cpu-max-pcid-off": ("`-cpu max,pcid=off,invpcid=off`", changes(prop("cpu", "pcid", "off"),
                                                                     prop("cpu", "invpcid", "off"))),
    "tsc-reliable": ("guest kernel `tsc=reliable` (TSC clocksource instead of HPET)", add_words("tsc=reliable")),
    "cpu-max-pku-off": ("`-cpu max,pku=off`", prop("cpu", "pku", "off")),
    "cpu-max-monitor-off": ("`-cpu max,monitor=off`", prop("cpu", "monitor", "off")),
    "cpu-max-la57-off": ("`-cpu max,la57=off` (no LA57: a guest kernel booted through its decompressor sets up 4-level "
                         "page tables, not 5; the vmlinux booted through PVH uses 4 levels either way)",
                         prop("cpu", "la57", "off")),
    "cpu-la57-on": ("without `la57=off` (`-cpu max` with LA57: 5-level page tables for a guest kernel booted "
                    "through its decompressor)", prop("cpu", "la57", None)),
    "bzimage": ("the guest kernel booted as Debian's bzImage (/boot/vmlinuz-*, through its decompressor) instead of "
                "the extracted vmlinux through PVH: as a guest booted from its disk", field("kernel", guest_bzimage)),
    "cpu-max-smap-off": ("`-cpu max,smap=off` (no stac/clac around every guest kernel access to user memory)",
                         prop("cpu", "smap", "off")),
    "cpu-max-intel": ("`-cpu max,vendor=GenuineIntel`", prop("cpu", "vendor", "GenuineIntel")),
    "mitigations-off": ("guest kernel `mitigations=off` (no retpolines, RSB filling, … in the guest)",
                        add_words("mitigations=off")),
    "mitigations-on": ("without the guest kernel's `mitigations=off` (the guest's default Spectre mitigations)",
                       drop_word("mitigations=off")),
    "poll-queues-0": ("without the guest kernel's `virtio_blk.poll_queues=1` (two interrupt queues, no poll queue)",
                      drop_word("virtio_blk.poll_queues=1")),
    "poll-queues-1": ("guest kernel `virtio_blk.poll_queues=1` (one poll queue, one interrupt queue)",
                      add_words("virtio_blk.poll_queues=1")),
    "nohz-off": ("guest kernel `nohz=off` (a periodic tick instead of reprogramming the LAPIC timer at every idle "
                 "entry and exit)", add_words("nohz=off")),
    "highres-off": ("guest kernel `highres=off nohz=off` (a periodic LAPIC tick, never reprogrammed: fewer qemu "
                    "timer updates)", add_words("highres=off", "nohz=off")),
    "tsc-unreliable": ("without the guest kernel's `tsc=reliable` (the guest falls back to the HPET clocksource)",
                       drop_word("tsc=reliable")),
    "idle-poll": ("guest kernel `idle=poll` (idle vCPUs spin instead of halting: no halt/wake-up per request, but "
                  "they burn host CPU)", add_words("idle=poll")),
    "spectre-v2-off": ("guest kernel `spectre_v2=off` (no retpolines and RSB filling; the other mitigations stay)",
                       add_words("spectre_v2=off")),
    "init-on-alloc-off": ("guest kernel `init_on_alloc=0` (Debian's kernel zeroes every page and slab allocation by "
                          "default; under TCG the zeroing is emulated)", add_words("init_on_alloc=0")),
    "preempt-none": ("guest kernel `preempt=none` (Debian's default is voluntary)", add_words("preempt=none")),
    "tcg-single": ("`-accel tcg,thread=single` (one thread for all vCPUs)", prop("accel", "thread", "single")),
    "tcg-tb-256": ("`-accel tcg,tb-size=256` (MiB; default 1 GiB)", prop("accel", "tb-size", "256")),
    "poll-0": ("iothread `poll-max-ns=0` (no busy polling; qemu's default 32768)",
               prop("iothread", "poll-max-ns", "0")),
    "poll-32k": ("iothread busy-polling at qemu's default (`poll-max-ns` unset: adaptive up to 32768 ns)",
                 prop("iothread", "poll-max-ns", None)),
    "poll-200k": ("iothread `poll-max-ns=200000`", prop("iothread", "poll-max-ns", "200000")),
    "no-iothread": ("no iothread (virtio-blk served by the main loop)", without_iothread),
    "num-queues-1": ("virtio-blk `num-queues=1` (default: one per vCPU)", prop("device", "num-queues", "1")),
    "smp-cores": ("`-smp N,sockets=1,cores=N` (the vCPUs as cores of one socket, sharing its L3, instead of qemu's "
                  "one socket per vCPU: the guest's block layer completes a request on the vCPU the interrupt came to, "
                  "without an IPI to the submitting one)",
                  field("smp", lambda n: "{0},sockets=1,cores={0}".format(n.split(",")[0]))),
    "io-nice-10": ("qemu's main loop thread and iothread at nice -10 (the vCPU threads stay at 0): the threads that "
                   "relay each request and its completion win the CPU they share with a busy vCPU at once",
                   field("io_nice", lambda n: -10)),
    "queue-size-1024": ("virtio-blk `queue-size=1024` (default 256)", prop("device", "queue-size", "1024")),
    "packed": ("virtio-blk `packed=on` (packed virtqueue)", prop("device", "packed", "on")),
    "packed-off": ("virtio-blk without `packed=on` (split virtqueue, qemu's default)", prop("device", "packed", None)),
    "ioeventfd-off": ("no iothread and virtio-blk `ioeventfd=off` (requests handled in the vCPU thread that "
                      "notifies; an iothread needs ioeventfd)",
                      changes(without_iothread, prop("device", "ioeventfd", "off"))),
    "aio-native": ("blockdev `aio=native`", prop("blockdev", "aio", "native")),
    "aio-io_uring": ("blockdev `aio=io_uring`", prop("blockdev", "aio", "io_uring")),
    "aio-threads": ("blockdev `aio=threads`", prop("blockdev", "aio", "threads")),
    "cache-direct-off": ("blockdev `cache.direct=off,aio=threads` (through the host page cache)",
                         changes(prop("blockdev", "cache.direct", "off"), prop("blockdev", "aio", "threads"))),
}


def default_knobs(base):
    """Each knob once, as a change from vmlaunch's current default (so a default vmlaunch already has is tested by
    taking it away), and `old-default`: the disk and kernel flags before the packed/mitigations defaults."""
    k = ["cpu-qemu64", "cpu-EPYC", "cpu-Skylake-Client",
         "mitigations-on" if "mitigations=off" in base["append"] else "mitigations-off",
         "poll-0",
         "packed-off" if base["device"].get("packed") == "on" else "packed",
         "poll-queues-0" if "virtio_blk.poll_queues=1" in base["append"] else "poll-queues-1",
         "nohz-off", "idle-poll", "tcg-single", "no-iothread", "num-queues-1", "ioeventfd-off"]
    k += ["aio-" + a for a in ("native", "io_uring", "threads") if base["blockdev"].get("aio") != a]
    return k


def default_combos(base):
    undo = [k for k, had in (("mitigations-on", "mitigations=off" in base["append"]),
                             ("packed-off", base["device"].get("packed") == "on")) if had]
    return ["+".join(undo)] if len(undo) > 1 else []


def vmlaunch_spec(conf, raw):
    """vmlaunch's choices for this disk (its --dry-run argv), as the spec a hand-written command line is built from,
    on the image RAW itself instead of the fd vmlaunch hands qemu."""
    argv = B.dry_run(conf)
    val = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("-")}
    accel, cpu = B.accel_and_cpu(argv)
    append = val["-append"].split()
    for w in ("console=ttyS0", "panic=-1"):
        append.remove(w)
    disk = {}
    for opt, value in zip(argv, argv[1:]):
        if opt == "-object" and value.startswith("iothread,"):
            disk["iothread"] = QemuOpts(value)
        elif opt == "-blockdev" and "node-name=disk-" in value:
            disk["blockdev"] = QemuOpts(value).set("filename", raw)
        elif opt == "-device" and value.startswith("virtio-blk"):
            disk["device"] = QemuOpts(value)
    return dict(disk, machine=QemuOpts(val["-machine"]).set("accel", None), accel=QemuOpts(accel),
                cpu=QemuOpts(cpu), kernel=B.VMLINUX, append=append, smp=val["-smp"], memory=val["-m"], io_nice=None)


def disk_argv(s):
    return ((["-object", str(s["iothread"])] if s["iothread"] else []) +
            ["-blockdev", str(s["blockdev"]), "-device", str(s["device"])])


def spec_argv(s):
    a = B.base_qemu_argv(machine=str(s["machine"]), accel=str(s["accel"]), cpu=str(s["cpu"]), kernel=s["kernel"])
    a[a.index("-smp") + 1] = s["smp"]
    a[a.index("-append") + 1] = " ".join(["console=ttyS0", "panic=-1"] + s["append"])
    return a + disk_argv(s)


def describe_spec(s):
    kernel = "" if s["kernel"] == B.VMLINUX else " -kernel %s" % s["kernel"]
    smp = "" if s["smp"].isdigit() else " -smp %s" % s["smp"]
    nice = "" if s["io_nice"] is None else "; main loop and iothread at nice %d" % s["io_nice"]
    return "`-machine %s -accel %s -cpu %s%s%s` append `%s`, `%s`%s" % (
        s["machine"], s["accel"], s["cpu"], smp, kernel, " ".join(s["append"]), " ".join(disk_argv(s)), nice)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_EXPLORE_SECONDS", "10")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_EXPLORE_ROUNDS",
                                                                     os.environ.get("BENCH_ROUNDS", "5"))))
    ap.add_argument("--disk-mb", type=int, default=int(os.environ.get("BENCH_DISK_MB", "512")))
    ap.add_argument("--only", default=os.environ.get("BENCH_EXPLORE_ONLY", ""))
    ap.add_argument("--combo", action="append", help="KNOB+KNOB...: several changes at once (default: taking "
                    "away all of packed=on and mitigations=off that the current default has)")
    ap.add_argument("--polled", action="store_true", help="also polled I/O (io_uring --hipri)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--json", default="explore.json", help="results file under tests/bench/results/ (report.py reads "
                    "explore.json)")
    args = ap.parse_args()
    if args.list:
        for k, (what, _) in KNOBS.items():
            print("%-20s %s" % (k, what))
        return
    for f in (B.VMLAUNCH, B.VMLINUX, B.INITRAMFS_FIO):
        if not os.path.exists(f):
            sys.exit("explore.py: %s is missing (make bench-guest)" % f)

    workloads = WORKLOADS + (POLLED_WORKLOADS if args.polled else [])
    d = tempfile.mkdtemp(prefix="vmbench-explore-", dir="/dev/shm")
    raw = os.path.join(d, "disk.raw")
    try:
        B.run(["dd", "if=/dev/urandom", "of=" + raw, "bs=1M", "count=%d" % args.disk_mb, "status=none"])
        conf = B.write_conf(os.path.join(d, "explore.conf"), "bench-explore",
                            ["backend = tmpfs", "size = %dM" % args.disk_mb, "source = " + raw, "source-format = raw"])
        base = vmlaunch_spec(conf, raw)
        variants = [("vmlaunch", "vmlaunch itself (`backend = tmpfs`): the current default", "vmlaunch", ()),
                    ("vmlaunch-pin-off", "vmlaunch `--set cpu.pin=off`", "vmlaunch", ("cpu.pin=off",)),
                    ("hand", "vmlaunch's argv written by hand on IMG (baseline of the knobs below)", "spec", base),
                    ("qemu-defaults", "qemu defaults: `-drive file=IMG,format=raw` (AHCI)", "qemu",
                     ["-drive", "file=%s,format=raw" % raw]),
                    ("virtio-defaults", "virtio defaults: `-drive file=IMG,if=virtio,format=raw`", "qemu",
                     ["-drive", "file=%s,format=raw,if=virtio" % raw])]
        words = " ".join(w for w in base["append"] if w in GUEST_WORDS)
        if words:
            # the same guest kernel command line as vmlaunch's: the ratio to these is the qemu flags' alone
            variants += [("qemu-defaults-guest-words", "qemu defaults, booted with vmlaunch's guest words `%s`" % words,
                          "qemu-mo", ["-drive", "file=%s,format=raw" % raw]),
                         ("virtio-defaults-guest-words", "virtio defaults, booted with vmlaunch's guest words `%s`" %
                          words, "qemu-mo", ["-drive", "file=%s,format=raw,if=virtio" % raw])]
        knobs = args.only.split(",") if args.only else default_knobs(base)
        for k in knobs:
            if k in KNOBS:
                variants.append((k, KNOBS[k][0], "spec", changed(base, k)))
        if args.combo is None:
            args.combo = os.environ.get("BENCH_EXPLORE_COMBOS", " ".join(default_combos(base))).split()
        for combo in [c for c in args.combo if c]:
            s = changed(base, *combo.split("+"))
            what = " + ".join(KNOBS[k][0] for k in combo.split("+"))
            if combo == "+".join(default_combos(base)):
                what = "vmlaunch's default before packed=on and mitigations=off: " + what
            variants.append((combo, what, "spec", s))
        if args.only:
            keep = set(args.only.split(",")) | {"vmlaunch", "hand"} | set(c for c in args.combo if c)
            variants = [v for v in variants if v[0] in keep]

        data = {"host": B.host_info(), "seconds": args.seconds, "rounds": args.rounds, "disk_mb": args.disk_mb,
                "workloads": [w[0] for w in workloads], "base": describe_spec(base).replace(raw, "IMG"),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "round_loads": [], "order": [], "variants": {}}
        for vid, what, kind, x in variants:
            data["order"].append(vid)
            data["variants"][vid] = {"what": what, "kind": kind, "runs": [],
                                     "args": describe_spec(x).replace(raw, "IMG") if kind == "spec" else (" ".join(x).replace(raw, "IMG") if kind.startswith("qemu") else
                                                                                    " ".join("--set " + s for s in x))}
        tmo = 300 + 3 * len(workloads) * (args.seconds + fiojobs.ramp_seconds(args.seconds))
        for r in range(1, args.rounds + 1):
            data["round_loads"].append(B.before_round(r, args.rounds))
            for vid, what, kind, x in variants:
                run = {"round": r, "load_before": B.loadavg()}
                B.log("round %d: %s" % (r, vid))
                dev = "/dev/sda" if vid.startswith("qemu-defaults") else "/dev/vda"
                gargv = fiojobs.guest_fio_argv(dev, args.seconds, workloads)
                if kind == "vmlaunch":
                    qmp = "/run/vmlaunch/bench-explore/qmp.sock"
                    marker = b"-name\0bench-explore,"
                else:
                    qmp = os.path.join(d, "qmp-%s.sock" % vid)
                    marker = qmp.encode()
                    qmp_args = ["-qmp", "unix:%s,server=on,wait=off" % qmp]
                try:
                    nice = x["io_nice"] if kind == "spec" else None
                    with cpusample.HostSteal() as steal, cpusample.QemuSampler(marker, qmp, io_nice=nice) as sampler:
                        if kind == "vmlaunch":
                            out, wall = B.run_vmlaunch_command(conf, gargv, tmo, sets=x)
                        elif kind in ("qemu", "qemu-mo"):  # under vmlaunch's accelerator and CPU model
                            ref = B.base_qemu_argv(accel=str(base["accel"]), cpu=str(base["cpu"]),
                                                   append_extra=words if kind == "qemu-mo" else "")
                            out, wall = B.run_qemu_command(ref + x + qmp_args, gargv, tmo)
                        else:
                            out, wall = B.run_qemu_command(spec_argv(x) + qmp_args, gargv, tmo)
                    run.update(results=fiojobs.parse_fio(out), wall=round(wall, 1), per_cpu_s=sampler.per_cpu_second(),
                               steal=steal.fraction)
                    pcs = run["per_cpu_s"]
                    B.log("  " + ", ".join("%s %.0f IOPS" % (k, v["iops"]) for k, v in run["results"].items()) +
                          "; per qemu CPU-second: " + ", ".join("%s %.0f" % (k, pcs[k]) for k in ("read", "write")
                                                                if k in pcs) +
                          "; µs of CPU per read by " + " ".join("%s %.0f" % (r, us) for r, us in
                                                               pcs.get("read_us", {}).items()) +
                          "; %s" % steal)
                except Exception as e:  # noqa: BLE001
                    run["error"] = str(e)[-3000:]
                    B.log("  FAILED:", str(e)[-1500:])
                run["load_after"] = B.loadavg()
                data["variants"][vid]["runs"].append(run)
            data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            B.save_json(args.json, data)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    import report
    report.main()


if __name__ == "__main__":
    main()
