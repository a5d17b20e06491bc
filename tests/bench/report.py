#!/usr/bin/python3
"""Renders tests/bench/results.md (and guest-io.png, with gnuplot) from the JSON the benchmarks left in
tests/bench/results/: io.json (guest_io.py), explore.json (explore.py), launch.json (launch.py), libvirt.json
(libvirt_bench.py) and populate.md (`make bench-populate`'s output). A section whose data is missing says so."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import cpusample  # noqa: E402
import mdtable  # noqa: E402

OUT = os.path.join(B.HERE, "results.md")
PNG = os.path.join(B.HERE, "guest-io.png")
WL_TITLE = {"randread-qd32": "16 KiB randread, iodepth 32", "randread-qd1": "16 KiB randread, iodepth 1",
            "randwrite-qd32": "16 KiB randwrite, iodepth 32", "randwrite-qd1": "16 KiB randwrite, iodepth 1"}
GROUP_TITLE = {"tmpfs": "raw file on tmpfs", "zram": "zram", "file": "raw file on the host's disk",
               "rbd": "RBD (memstore OSD over loopback)"}
TCG_NOTE = ("**Under TCG.** This host's KVM is nested PVM (unusable), so every guest here is emulated by TCG: the "
            "emulated guest CPU (its block layer, the driver, fio itself) bounds every variant, which is why the host "
            "reference is ~40–100× faster than any guest. Ratios between guest variants show which qemu configuration "
            "costs the guest fewer instructions and exits per request; with KVM the ordering carries over, not the "
            "size of the gaps. The host has 2 CPUs shared with other jobs: the load average is given next to every "
            "set of numbers, and the min–max spread shows how much the neighbours moved them.")


def runs_ok(v):
    return [r for r in v["runs"] if "results" in r]


def stat(v, wl, key):
    xs = [r["results"][wl][key] for r in runs_ok(v) if wl in r["results"]]
    return B.median(xs), B.minmax(xs), len(xs)


def loads(data):
    return "; ".join("round %d: %s" % (i + 1, la) for i, la in enumerate(data.get("round_loads", [])))


def steal(data):
    """A sentence on the host CPU time its hypervisor gave to others during the runs, when the runs measured it."""
    xs = [r["steal"] * 100 for v in data["variants"].values() for r in runs_ok(v) if r.get("steal") is not None]
    if not xs:
        return ""
    m, (lo, hi) = spread(xs)
    return (" This host is itself a virtual machine: its hypervisor ran others for %.0f%% of the host's CPU time "
            "during a run (median over runs, %.0f–%.0f%%; `steal` in /proc/stat), time no variant got." % (m, lo, hi))


def ms(us):
    return None if us is None else us / 1000.0


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def fmt_ratio(x):
    return "–" if x is None else "%.2f×" % x


def errors_of(v):
    return [r for r in v["runs"] if "error" in r]


def spread(xs):
    """(median, (min, max)) of the values that are there."""
    return B.median(xs), B.minmax(xs)


def col(runs, kind, key, scale=1.0):
    """spread() of one measure over the runs of one kind (launch.json, libvirt.json)."""
    return spread([r[key] * scale for r in runs.get(kind, []) if r.get(key) is not None])


def round_trip_kind(runs):
    """launch.json's run that times vmlaunch's round trip: "plain" (nothing sampling it) where recorded."""
    return "plain" if runs.get("plain") else "vmlaunch"


def phase(runs, key):
    """spread() of one phase time over vmlaunch's own runs."""
    return spread([r["phases"].get(key) for r in runs.get("vmlaunch", []) if "phases" in r])


def failure_lines(pairs, prefix="", title=None):
    """One line per (name, failed run), under `title` if given, then a blank line; nothing when none failed."""
    L = ["- %s%s, round %d: `%s`" % (prefix, k, r["round"], r["error"].strip().splitlines()[0][:300]) for k, r in pairs]
    return ([title, ""] if title and L else []) + L + ([""] if L else [])


def failures(runs):
    """failure_lines() for every failed run of any kind (launch.json, libvirt.json)."""
    return failure_lines([(k, r) for k in runs for r in runs[k] if "error" in r], prefix="failed: ")


def header(host):
    return "\n".join([
        "Host: %s, %s CPUs (shared with other jobs), %s GiB RAM, %s, kernel %s." % (
            host["cpu"], host["cpus"], host["mem_gib"], host["os"], host["host_kernel"]),
        "qemu: %s. fio: %s. Guest: the bundled guest (busybox initramfs, Debian kernel %s, booted as an uncompressed "
        "vmlinux through PVH), 2 vCPUs, 1 GiB (512 MiB for the launch runs). %s. vmlaunch %s." % (
            host["qemu"], host["fio"], host["guest_kernel"], host["accel"], host["vmlaunch"])])


# ---------------------------------------------------------------------------------------------------------------

def target_lines(io):
    """The issue's targets (16K randread qd32, vmlaunch on tmpfs against qemu's and virtio's defaults), met or not."""
    vs = io["variants"]
    ref = stat(vs["vmlaunch-tmpfs"], "randread-qd32", "iops")[0] if "vmlaunch-tmpfs" in vs else None
    got = []
    for c, want, name in (("qemu-defaults", 3.0, "qemu defaults"), ("virtio-defaults", 1.8, "virtio defaults")):
        med = stat(vs[c], "randread-qd32", "iops")[0] if c in vs else None
        if ref and med:
            got.append("%.2f× %s (target ≥ %.1f×: %s)" % (ref / med, name, want,
                                                           "met" if ref / med >= want else "**not met**"))
    if not got:
        return []
    return ["Targets on this machine, 16 KiB randread iodepth 32, vmlaunch on tmpfs: " + "; ".join(got) + ".", ""]


def io_section(io, title="## 1. Guest disk I/O", how="`make bench-io`", brief=False):
    """brief: a later, longer run of some variants; fio's jobs, the columns and the arguments are section 1's."""
    if not io:
        return [title, "", "Not run yet: %s." % how, ""]
    L = ["%s (%s)" % (title, how), ""]
    L.append("Run %s – %s; %d round(s), variants interleaved in the order listed; %d s per workload after a %d s ramp; "
             "a %d MiB image of random data. Load average before each round: %s.%s" % (
                 io["started"], io.get("finished", "?"), io["rounds"], io["seconds"], io["ramp_seconds"],
                 io["disk_mb"], loads(io), steal(io)))
    if io.get("resumed"):
        L.append("Resumed " + "; ".join(io["resumed"]) + ".")
    L.append("")
    if brief:
        L.append("fio's jobs, the columns and each variant's arguments as in section 1.")
        L.append("")
        L += target_lines(io)
    else:
        L += io_notes(io)
    return L + io_tables(io, brief)


def io_notes(io):
    L = []
    L.append("In the guest: `fio %s` (one job per workload, one after the other, in one boot; IOPS, mean and p99 "
             "of the total latency from fio's JSON). On the host: the same jobs with `--ioengine=io_uring` (RBD: fio's "
             "`rbd` engine). The ratio is IOPS ÷ the IOPS of vmlaunch on the same backing (latencies are not "
             "ratioed). Medians of the rounds, (min–max) across rounds." % io["fio_guest"])
    L.append("")
    L.append(TCG_NOTE)
    L.append("")
    return L


def io_tables(io, brief):
    L = []
    vs = io["variants"]
    order = io["order"]
    for wl in io["workloads"]:
        L.append("### %s" % WL_TITLE.get(wl, wl))
        L.append("")
        rows = []
        for vid in order:
            v = vs[vid]
            med, (lo, hi), n = stat(v, wl, "iops")
            lat, _, _ = stat(v, wl, "lat_mean_us")
            p99, _, _ = stat(v, wl, "lat_p99_us")
            ref = v.get("ref")
            rr = ratio(med, stat(vs[ref], wl, "iops")[0]) if ref in vs else (1.0 if v["kind"] == "vmlaunch" and med else None)
            label = v["label"] if v["kind"] != "vmlaunch" else "**%s**" % v["label"]
            rows.append([GROUP_TITLE.get(v["group"], v["group"]), label, mdtable.fmt_num(med),
                         mdtable.fmt_range(lo, hi), mdtable.fmt_num(ms(lat), 2), mdtable.fmt_num(ms(p99), 2), fmt_ratio(rr),
                         "%d/%d" % (n, len(v["runs"]))])
        L.append(mdtable.md_table(["backing", "variant", "IOPS (median)", "min–max", "mean lat ms", "p99 lat ms",
                             "÷ vmlaunch", "runs ok"], rows,
                            ["---", "---", "---:", "---:", "---:", "---:", "---:", "---:"]))
        L.append("")
    if brief:
        return L + failure_lines([(vid, r) for vid in order for r in errors_of(vs[vid])], title="Failed runs:")
    L.append("Exact disk arguments of each variant (vmlaunch's from `vmlaunch --dry-run`; IMG, FILE are the images "
             "named in the backing column):")
    L.append("")
    rows = [[vid, "`%s`" % vs[vid]["args"].replace("|", "\\|")] for vid in order]
    L.append(mdtable.md_table(["variant", "arguments"], rows))
    L.append("")
    if io.get("rbd_note"):
        L.append(io["rbd_note"] + ".")
        L.append("")
    L += failure_lines([(vid, r) for vid in order for r in errors_of(vs[vid])], title="Failed runs:")
    L.append("![guest I/O ratios](guest-io.png)")
    L.append("")
    return L


def chart(io):
    """Bar chart: every guest variant's IOPS ÷ vmlaunch's on the same backing, per workload."""
    if not io or not shutil.which("gnuplot"):
        return "gnuplot missing (apt-get install gnuplot-nox): no chart" if io else None
    vs = io["variants"]
    bars = [vid for vid in io["order"] if vs[vid]["kind"] == "qemu" or (vs[vid]["kind"] == "vmlaunch" and any(
        vs[o].get("ref") == vid and vs[o]["kind"] == "vmlaunch" for o in io["order"]))]
    if not bars:
        return None
    d = os.path.join(B.RESULTS_DIR, "guest-io.dat")
    with open(d, "w") as f:
        f.write("workload " + " ".join('"%s (÷ %s)"' % (b, vs[b]["ref"]) if vs[b].get("ref") else '"%s"' % b
                                       for b in bars) + "\n")
        for wl in io["workloads"]:
            row = []
            for vid in bars:
                v = vs[vid]
                med = stat(v, wl, "iops")[0]
                ref = v.get("ref") if v["kind"] != "vmlaunch" else None
                r = ratio(med, stat(vs[ref], wl, "iops")[0]) if ref in vs else (1.0 if med else None)
                row.append("%.3f" % r if r is not None else "NaN")
            f.write('"%s" %s\n' % (WL_TITLE[wl].replace("16 KiB ", "").replace(", iodepth ", " qd"), " ".join(row)))
    gp = """set terminal pngcairo size 1400,700 font ",11"
set output '%s'
set title "Guest IOPS ÷ vmlaunch's IOPS on the same backing (dashed line: vmlaunch = 1). TCG, 2 vCPUs; medians of %d rounds, %d s each"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "ratio to vmlaunch (vmlaunch = 1)"
set yrange [0:*]
set grid ytics
set key outside right top vertical
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb "black"
plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i)
""" % (PNG, io["rounds"], io["seconds"], len(bars) + 1, d)
    p = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    return None if p.returncode == 0 else "gnuplot failed: " + p.stderr[-500:]


def eff(v, kind):
    return B.median([r.get("per_cpu_s", {}).get(kind) for r in runs_ok(v)])


def rerun_command(ex, name):
    """The explore.py command line that reruns a longer check stored in results/NAME."""
    knobs = [v for v in ex["order"] if v not in ("vmlaunch", "hand") and "+" not in v]
    combos = [v for v in ex["order"] if "+" in v]
    polled = " --polled" if any(w.endswith("-polled") for w in ex["workloads"]) else ""
    return "tests/bench/explore.py --rounds %d --seconds %d --only %s --combo \"%s\"%s --json %s" % (
        ex["rounds"], ex["seconds"], ",".join(knobs), " ".join(combos), polled, name)


def explore_section(ex, title="## 1b. Flags explored", how="`make bench-explore`", brief=False):
    """brief: a later, longer check of a few knobs; the columns are explained once, in section 1b."""
    if not ex:
        return [title, "", "Not run yet: %s." % how, ""]
    vs = ex["variants"]
    targets = "qemu-defaults" in vs or "virtio-defaults" in vs
    L = ["%s (%s)" % (title, how), ""]
    L.append("Run %s – %s; %d round(s) interleaved, %d s per workload, %d MiB tmpfs image. Load average before each "
             "round: %s.%s `hand` is vmlaunch's own choice for a tmpfs disk, written by hand: %s. Every knob row is "
             "`hand` with that one change; \"÷ hand\" is its IOPS over `hand`'s (> 1: the change beats the current "
             "default).%s" % (
                 ex["started"], ex.get("finished", "?"), ex["rounds"], ex["seconds"], ex["disk_mb"], loads(ex),
                 steal(ex), ex["base"],
                 " \"vs qemu / virtio defaults\" are the target ratios (≥ 3× and ≥ 1.8× for randread qd32); "
                 "\"+ mitigations=off\" or \"+ vmlaunch's guest words\": against the defaults booted with the "
                 "same guest kernel command line as vmlaunch's, i.e. the qemu flags alone." if targets else ""))
    L.append("")
    if brief:
        L.append("Columns as in section 1b.")
        L.append("")
    else:
        L += explore_notes()
    L += explore_table(ex)
    L += thread_table(ex)
    return L


def thread_table(ex):
    """Host CPU per request by qemu thread role, for the variants whose runs sampled it (older JSON has no split)."""
    vs = ex["variants"]

    def us(v, kind, role):
        return B.median([r.get("per_cpu_s", {}).get(kind + "_us", {}).get(role) for r in runs_ok(v)])

    rows = []
    for vid in ex["order"]:
        cells = [us(vs[vid], kind, role) for kind in ("read", "write") for role in cpusample.ROLES]
        if any(c is not None for c in cells):
            rows.append(["`%s`" % vid] + [mdtable.fmt_num(c) if c is not None else "–" for c in cells])
    if not rows:
        return []
    names = {"vcpu": "vCPUs", "main": "main loop", "iothread": "iothreads", "other": "other"}
    hdr = ["variant"] + ["%s: %s" % (kind, names[r]) for kind in ("read", "write") for r in cpusample.ROLES]
    return ["Where qemu's CPU goes: µs of host CPU per request (medians over the rounds, same intervals as \"per "
            "qemu CPU-s\"), by thread — the vCPU threads (the guest's own code, emulated), the main loop (the BQL; "
            "without KVM's irqfd also every completion interrupt an iothread raises: iothread → eventfd → main loop → "
            "MSI → vCPU), the iothreads (virtio-blk and the I/O), and qemu's other threads (thread-pool workers for "
            "aio=threads, RCU, the monitor):", "", mdtable.md_table(hdr, rows, ["---"] + ["---:"] * (len(hdr) - 1)), ""]


def explore_notes():
    L = []
    L.append("\"per qemu CPU-s\": requests completed (QMP `query-blockstats`) per CPU-second of the whole qemu "
             "process (/proc/PID/stat), sampled every 0.5 s over the intervals where only reads (the qd32 read job) "
             "or only writes (the write job) completed. When the neighbours take CPU away, a TCG guest completes fewer "
             "requests per second but about as many per CPU-second, so this column is the steadier measure of how "
             "much work a configuration costs; IOPS is what the target is stated in.")
    L.append("")
    L.append(TCG_NOTE)
    L.append("")
    return L


def explore_table(ex):
    L = []
    vs = ex["variants"]
    hand = vs.get("hand")
    qd = vs.get("qemu-defaults")
    vd = vs.get("virtio-defaults")
    # the defaults booted with vmlaunch's own guest kernel words (older runs: mitigations=off only)
    words = "guest-words" if "qemu-defaults-guest-words" in vs or "virtio-defaults-guest-words" in vs else \
        "mitigations-off"
    qd2 = vs.get("qemu-defaults-" + words)
    vd2 = vs.get("virtio-defaults-" + words)
    rows = []
    for vid in ex["order"]:
        v = vs[vid]
        row = ["`%s`" % vid, v["what"]]
        for wl in ex["workloads"]:
            med, (lo, hi), n = stat(v, wl, "iops")
            row += [mdtable.fmt_num(med), mdtable.fmt_range(lo, hi), fmt_ratio(ratio(med, stat(hand, wl, "iops")[0] if hand else None))]
        for kind in ("read", "write"):
            med = eff(v, kind)
            row += [mdtable.fmt_num(med), fmt_ratio(ratio(med, eff(hand, kind) if hand else None))]
        rr = stat(v, "randread-qd32", "iops")[0]
        if qd or vd:
            row += [fmt_ratio(ratio(rr, stat(qd, "randread-qd32", "iops")[0] if qd else None)),
                    fmt_ratio(ratio(rr, stat(vd, "randread-qd32", "iops")[0] if vd else None))]
        if qd2 or vd2:
            row += [fmt_ratio(ratio(rr, stat(qd2, "randread-qd32", "iops")[0] if qd2 else None)),
                    fmt_ratio(ratio(rr, stat(vd2, "randread-qd32", "iops")[0] if vd2 else None))]
        row += [
                "%d/%d" % (len(runs_ok(v)), len(v["runs"]))]
        rows.append(row)
    hdr = ["variant", "change"]
    al = ["---", "---"]
    for wl in ex["workloads"]:
        short = wl.replace("randread-qd", "read qd").replace("randwrite-qd", "write qd")
        hdr += [short + " IOPS", "min–max", "÷ hand"]
        al += ["---:", "---:", "---:"]
    hdr += ["reads per qemu CPU-s", "÷ hand", "writes per qemu CPU-s", "÷ hand"]
    if qd or vd:
        hdr += ["read qd32 vs qemu defaults", "vs virtio defaults"]
    if qd2 or vd2:
        label = "vmlaunch's guest words" if words == "guest-words" else "mitigations=off"
        hdr += ["vs qemu defaults + " + label, "vs virtio defaults + " + label]
    hdr += ["runs ok"]
    al += ["---:"] * (len(hdr) - len(al))
    L.append(mdtable.md_table(hdr, rows, al))
    L.append("")
    L += failure_lines([(vid, r) for vid in ex["order"] for r in errors_of(vs[vid])], title="Failed runs:")
    return L


def longer_runs(prefix):
    """(data, file name) of every results/PREFIX-*.json, in the order they ran."""
    runs = [(B.load_json(f), f) for f in os.listdir(B.RESULTS_DIR) if re.fullmatch(prefix + r"-.*\.json", f)]
    return sorted(runs, key=lambda x: x[0]["started"])


def longer_sections():
    """Sections 1c, 1d, …: the further explore.py checks, then the longer guest_io.py runs, each with its command,
    then the paired runs of two builds (io_paired.py writes its own section)."""
    L = []
    letters = iter("cdefghijklmnopqrstuvwxyz")
    for ex, name in longer_runs("explore-long"):
        knobs = ", ".join("`%s`" % v for v in ex["order"] if v not in ("vmlaunch", "hand"))
        L += explore_section(ex, title="## 1%s. Check of %s, %d rounds" % (next(letters), knobs, ex["rounds"]),
                             how="`%s`" % rerun_command(ex, name), brief=True)
    for io, name in longer_runs("io-long"):
        how = "`tests/bench/guest_io.py --only %s --rounds %d --seconds %d --json %s`" % (
            ",".join(io["order"]), io["rounds"], io["seconds"], name)
        L += io_section(io, title="## 1%s. Longer run: %s" % (next(letters), ", ".join(io["order"])), how=how,
                        brief=True)
    for name in sorted(f for f in os.listdir(B.RESULTS_DIR) if re.fullmatch(r"io-paired.*\.md", f)):
        L += ["## 1%s. Two vmlaunch builds, paired (`tests/bench/io_paired.py`, results/%s)" % (next(letters), name),
              "", B.read(os.path.join(B.RESULTS_DIR, name)).strip(), ""]
    return L


def launch_section(la):
    if not la:
        return ["## 2. Launch cost", "", "Not run yet: `make bench-launch`.", ""]
    L = ["## 2. Launch cost (`make bench-launch`)", ""]
    L.append("Run %s – %s; %d round(s), each: vmlaunch under strace, vmlaunch untraced, the bare qemu command, the "
             "minimal command, one after the other. The plain bundled guest (%s MiB tmpfs disk, 2 vCPUs, 512 MiB) runs "
             "`true`. Load average before each round: %s." % (
                 la["started"], la.get("finished", "?"), la["rounds"], la["disk_mb"], loads(la)))
    L.append("")
    R = la["runs"]

    def row(name, m, how, digits=0, unit=""):
        med, (lo, hi) = m
        return [name, (mdtable.fmt_num(med, digits) + unit) if med is not None else "–",
                mdtable.fmt_range(lo, hi, digits) if lo is not None else "–", how]

    rows = [
        row("vmlaunch start → qemu's execve", col(R, "strace", "launch_ms"), "`strace -f --seccomp-bpf -ttt -e trace=execve,exit_group`", 1, " ms"),
        row("… of which the `qemu -device pvpanic-pci,help` probe", col(R, "strace", "probe_ms"), "its execve → its exit, same trace", 1, " ms"),
        row("qemu's exit → vmlaunch's exit (teardown)", col(R, "strace", "teardown_ms"), "same trace", 1, " ms"),
        row("vmlaunch VmRSS while supervising", col(R, "vmlaunch", "rss_kb", 1 / 1024), "/proc/PID/status, every 20 ms, median", 1, " MiB"),
        row("… RssAnon (its own heap and stacks)", col(R, "vmlaunch", "rss_anon_kb", 1 / 1024), "same", 2, " MiB"),
        row("… RssFile (mapped code and read-only data: vmlaunch, libc, ld.so)", col(R, "vmlaunch", "rss_file_kb", 1 / 1024), "same", 1, " MiB"),
        row("vmlaunch VmHWM (peak)", col(R, "vmlaunch", "hwm_kb", 1 / 1024), "/proc/PID/status", 1, " MiB"),
        row("vmlaunch's guardian VmRSS", col(R, "vmlaunch", "guardian_rss_kb", 1 / 1024), "its forked watcher (`-v`), max seen", 1, " MiB"),
        row("… once the guest runs", col(R, "vmlaunch", "guardian_rss_running_kb", 1 / 1024), "median after QMP RESUME (it trims once qemu runs)", 1, " MiB"),
        row("qemu VmRSS (for scale)", col(R, "vmlaunch", "qemu_rss_kb", 1 / 1024), "max seen", 0, " MiB"),
        row("`-v`: start → \"starting qemu\"", phase(R, "qemu_started_s"), "stderr lines timestamped on arrival", 2, " s"),
        row("`-v`: start → guest running (QMP RESUME)", phase(R, "running_s"), "after QMP setup, pinning, `cont`", 2, " s"),
        row("`-v`: start → guest powered off (SHUTDOWN)", phase(R, "shutdown_s"), "", 2, " s"),
        row("**`vmlaunch CONF -- true`** round trip", col(R, round_trip_kind(R), "wall_s"), "wall, untraced, nothing sampling", 2, " s"),
        row("… with `-v` and the RSS sampler above", col(R, "vmlaunch", "wall_s"), "the `vmlaunch` run", 2, " s"),
        row("**bare qemu**, vmlaunch's argv, fds supplied", col(R, "bare", "wall_s"), "see below", 2, " s"),
        row("**minimal hand-written qemu** command line", col(R, "minimal", "wall_s"), "see below", 2, " s"),
    ]
    L.append(mdtable.md_table(["measure", "median", "min–max", "how"], rows, ["---", "---:", "---:", "---"]))
    L.append("")
    lc = la.get("library_cost")
    if lc and "with" in lc:
        L.append("**What librbd and librados cost a launch that loads them** (an RBD disk: storage/rbd_lib.c dlopens them; "
                 "before issue #22 they were linked, and every launch paid this): "
                 "an empty program linked with vmlaunch's other libraries takes %s ms per exec and %s MiB max RSS; "
                 "the same linked with librbd and librados too, %s ms and %s MiB (%d×50 execs each, interleaved, "
                 "medians; load %s)." % (
                     mdtable.fmt_num(lc["without"]["ms_median"], 1), mdtable.fmt_num((lc["without"]["rss_kb"] or 0) / 1024, 1),
                     mdtable.fmt_num(lc["with"]["ms_median"], 1), mdtable.fmt_num((lc["with"]["rss_kb"] or 0) / 1024, 1),
                     len(lc["with"]["ms"]), lc["load"]))
        L.append("")
    helpers = sorted({h for r in R["strace"] for h in r.get("helpers", [])})
    if helpers:
        L.append("Programs vmlaunch executes per launch (from the trace): %s." % ", ".join("`%s`" % h for h in helpers))
        L.append("")
    vm, bare, mini = col(R, round_trip_kind(R), "wall_s")[0], col(R, "bare", "wall_s")[0], col(R, "minimal", "wall_s")[0]
    if vm and bare:
        L.append("vmlaunch's round trip is %.2f s (%+.0f%%) against the bare run of its own argv%s." % (
            vm - bare, 100 * (vm / bare - 1), " and %.2f s against the minimal command line" % (vm - mini) if mini else ""))
        L.append("")
    L.append("**The bare run**: `vmlaunch --dry-run CONF -- true` gives the argv; the script replaces the state dir "
             "with its own directory, makes the disk as a sparse file of the same size on /dev/shm (where vmlaunch "
             "would mount a tmpfs), writes the argv file, and forks qemu with every fd the argv names, where vmlaunch "
             "passes it: socketpairs for QMP, the guest's stdout, stderr, status and stdin ports and the console, a "
             "listening unix socket for the external QMP monitor, the disk's file for `-add-fd`. It answers QMP "
             "(`qmp_capabilities`, `cont`: the argv has `-S`), reads the ports until qemu exits, says `eof=0` and "
             "acknowledges the guest's `exit=` line with `ok`, as vmlaunch does. What it leaves out is exactly vmlaunch's own work: config parsing, the KVM "
             "probe, state dir, lock and journal, the tmpfs mount, the guardian, pinning over QMP, privilege "
             "dropping, tcmalloc, teardown.")
    L.append("")
    L.append("**The minimal command line** (what one would type, initramfs/README.md): `%s` plus file-backed "
             "stdout and stderr ports, a null stdin port, the status port on a unix socket the script answers "
             "(`eof=0`, then `ok`) and `-fw_cfg` for the argv; no QMP, no `-S`." % " ".join(la["minimal_argv"]))
    L.append("")
    L += failures(R)
    return L


def libvirt_section(lv, la):
    if not lv:
        return ["## 4. libvirt", "", "Not run yet: `make bench-libvirt`.", ""]
    L = ["## 4. libvirt: `virsh create` / `virsh destroy` (`make bench-libvirt`)", ""]
    if lv.get("error") and not any(lv["runs"].values()):
        L += ["Could not run: %s" % lv["error"], ""]
        return L
    L.append("Run %s – %s; %s; %d round(s), each: vmlaunch untraced, vmlaunch under strace, libvirt (`virsh create` "
             "of a transient domain running `true`), `virsh destroy` of a domain running `sleep 600`. One warm-up "
             "of each before (libvirtd probes qemu's capabilities once). Load average before each round: %s." % (
                 lv["started"], lv.get("finished", "?"), lv.get("libvirt_version", "libvirt"), lv["rounds"], loads(lv)))
    L.append("")
    L.append("libvirtd and virtlogd are started by hand (no systemd here; libvirtd under `strace -f --seccomp-bpf -e "
             "trace=execve` to timestamp qemu's exec) and stopped by pid. The domain is the same guest: same kernel, "
             "initrd, command line, 2 vCPUs, 512 MiB, `<cpu mode='maximum'/>` (= `-cpu max`), a virtio disk on "
             "a 64 MiB file, the argv over `<sysinfo type='fwcfg'>`, the ports as file `<channel>`s, qemu as root "
             "without relabelling. libvirtd's complaints here (none fatal): %s." % (
                 "; ".join("`%s`" % m[:120] for m in lv.get("libvirtd_messages", [])) or "none"))
    L.append("")
    R = lv["runs"]

    def cell(m, digits, unit):
        med, (lo, hi) = m
        return "–" if med is None else "%s%s (%s)" % (mdtable.fmt_num(med, digits), unit, mdtable.fmt_range(lo, hi, digits))

    idle = lv.get("libvirtd_idle_rss_kb", {})
    rows = [
        ["start → qemu's execve", cell(col(R, "vmlaunch_strace", "launch_ms"), 1, " ms"), cell(col(R, "libvirt", "launch_ms"), 1, " ms")],
        ["start → guest running", cell(phase(R, "running_s"), 2, " s") + " (QMP RESUME)",
         cell(col(R, "libvirt", "create_s"), 2, " s") + " (`virsh create` returns)"],
        ["`true` round trip", cell(col(R, "vmlaunch", "wall_s"), 2, " s"), cell(col(R, "libvirt", "wall_s"), 2, " s") + " (until the domain is gone, polled every 50 ms)"],
        ["stop", cell(col(R, "vmlaunch_strace", "teardown_ms"), 1, " ms") + " (qemu exit → vmlaunch exit)",
         cell(col(R, "destroy", "destroy_s"), 2, " s") + " (`virsh destroy` of a running guest)"],
        ["supervisor RSS", cell(col(R, "vmlaunch", "rss_kb", 1 / 1024), 1, " MiB") + " vmlaunch + " +
         cell(col(R, "vmlaunch", "guardian_rss_kb", 1 / 1024), 1, " MiB") + " guardian",
         cell(col(R, "libvirt", "libvirtd_rss_kb", 1 / 1024), 1, " MiB") + " libvirtd + " +
         cell(col(R, "libvirt", "virtlogd_rss_kb", 1 / 1024), 1, " MiB") + " virtlogd (idle before any domain: %s MiB libvirtd)" % (
             mdtable.fmt_num((idle.get("libvirtd") or 0) / 1024, 1))],
    ]
    L.append(mdtable.md_table(["measure: median (min–max)", "vmlaunch", "libvirt"], rows))
    L.append("")
    L += failures(R)
    return L


def lean_section():
    """Section 2b: the lean start's before/after figures, hand-measured with farm-bench (results/launch-lean.md)."""
    p = os.path.join(B.RESULTS_DIR, "launch-lean.md")
    if not os.path.exists(p):
        return []
    return ["## 2b. Lean start: before and after (farm-bench)", "", B.read(p).strip(), ""]


def snapshot_profile_section():
    """Section 7b: where a restore's time goes, hand-measured (strace, farm-bench; results/snapshot-profile.md)."""
    p = os.path.join(B.RESULTS_DIR, "snapshot-profile.md")
    if not os.path.exists(p):
        return []
    return ["## 7b. Warm start: where a restore's time goes (strace, paired runs)", "", B.read(p).strip(), ""]


def populate_section():
    L = ["## 3. Disk population (`make bench-populate`)", ""]
    p = os.path.join(B.RESULTS_DIR, "populate.md")
    if not os.path.exists(p):
        return L + ["Not run yet in this form: `make bench-populate` (tests/bench/README.md has earlier results).", ""]
    L.append("The output of the last `make bench-populate` (%s, load average %s at its start):" % tuple(
        B.read(p + ".meta").strip().split("|", 1)) if os.path.exists(p + ".meta") else
        "The output of the last `make bench-populate`:")
    L.append("")
    L.append(B.read(p).strip())
    L.append("")
    return L


def md_section(title, name, how):
    """A section a benchmark script renders itself (results/NAME, written by share_bench.py and net_bench.py)."""
    p = os.path.join(B.RESULTS_DIR, name)
    if not os.path.exists(p):
        return [title, "", "Not run yet: %s." % how, ""]
    return [title, "", B.read(p).strip(), ""]


def summary(io, ex, la, lv):
    """The table for the README."""
    L = ["## Summary", ""]
    if io:
        vs = io["variants"]
        cols = [c for c in ("qemu-defaults", "virtio-defaults", "virtio-defaults-qcow2", "vmlaunch-tmpfs", "host-tmpfs")
                if c in vs]
        names = {"qemu-defaults": "qemu defaults (AHCI)", "virtio-defaults": "virtio defaults",
                 "virtio-defaults-qcow2": "virtio defaults, qcow2", "vmlaunch-tmpfs": "**vmlaunch**",
                 "host-tmpfs": "host fio (no VM)"}
        rows = []
        for wl in io["workloads"]:
            ref = stat(vs["vmlaunch-tmpfs"], wl, "iops")[0] if "vmlaunch-tmpfs" in vs else None
            row = [WL_TITLE[wl]]
            for c in cols:
                med = stat(vs[c], wl, "iops")[0]
                if c == "vmlaunch-tmpfs" or med is None or ref is None:
                    row.append(mdtable.fmt_num(med))
                elif c.startswith("host"):
                    row.append("%s (%.0f×)" % (mdtable.fmt_num(med), med / ref))
                else:
                    row.append("%s (vmlaunch %.2f×)" % (mdtable.fmt_num(med), ref / med))
            rows.append(row)
        L.append("Guest disk I/O, IOPS, median of %d interleaved rounds, %d s each; fio in the bundled guest "
                 "(2 vCPUs, **TCG**: emulation bounds every guest number), same %d MiB raw image on tmpfs; load "
                 "average %s:" % (io["rounds"], io["seconds"], io["disk_mb"],
                                  " / ".join(x.split()[0] for x in io["round_loads"])))
        L.append("")
        L.append(mdtable.md_table(["workload"] + [names[c] for c in cols], rows, ["---"] + ["---:"] * len(cols)))
        L.append("")
        L += target_lines(io)
    rows = []
    if la:
        R = la["runs"]
        rows += [["vmlaunch start → qemu exec", mdtable.fmt_num(col(R, "strace", "launch_ms")[0], 1) + " ms"],
                 ["teardown after qemu exits", mdtable.fmt_num(col(R, "strace", "teardown_ms")[0], 1) + " ms"],
                 ["vmlaunch's RSS while supervising", mdtable.fmt_num((col(R, "vmlaunch", "rss_kb")[0] or 0) / 1024, 1) + " MiB"],
                 ["`vmlaunch CONF -- true` vs bare qemu (same argv)", "%s s vs %s s" % (
                     mdtable.fmt_num(col(R, round_trip_kind(R), "wall_s")[0], 2), mdtable.fmt_num(col(R, "bare", "wall_s")[0], 2))]]
    if lv and lv["runs"].get("libvirt"):
        R = lv["runs"]
        rows += [["libvirt: `virsh create` start → qemu exec", mdtable.fmt_num(col(R, "libvirt", "launch_ms")[0], 1) + " ms"],
                 ["libvirtd's RSS (+ virtlogd)", "%s MiB (+ %s MiB)" % (
                     mdtable.fmt_num((col(R, "libvirt", "libvirtd_rss_kb")[0] or 0) / 1024, 1),
                     mdtable.fmt_num((col(R, "libvirt", "virtlogd_rss_kb")[0] or 0) / 1024, 1))]]
    if rows:
        L.append("Launch cost (medians; load averages in sections 2 and 4):")
        L.append("")
        L.append(mdtable.md_table(["measure", "value"], rows, ["---", "---:"]))
        L.append("")
    return L


def main():
    io = B.load_json("io.json")
    ex = B.load_json("explore.json")
    la = B.load_json("launch.json")
    lv = B.load_json("libvirt.json")
    host = None
    for d in (io, ex, la, lv):
        if d:
            host = d["host"]
            break
    L = ["# vmlaunch benchmark results", ""]
    L.append("Generated by `make bench` (tests/bench/, see README.md there) on %s; every section says when it ran. "
             "Raw data: tests/bench/results/*.json." % (host["date"] if host else "?"))
    L.append("")
    if host:
        L.append(header(host))
        L.append("")
    L.append(TCG_NOTE)
    L.append("")
    L += summary(io, ex, la, lv)
    L += io_section(io)
    note = chart(io)
    if note:
        L += [note, ""]
    L += explore_section(ex)
    L += longer_sections()
    L += launch_section(la)
    L += lean_section()
    L += populate_section()
    L += libvirt_section(lv, la)
    L += md_section("## 5. Host directories in the guest: virtiofs, 9p, the host (`make bench-share`)", "share.md",
                    "`make bench-share`")
    L += md_section("## 6. Guest networking: user, tap, qemu's default, passt; boot to ssh (`make bench-net`)",
                    "net.md", "`make bench-net`")
    L += md_section("## 7. Warm start: boot against restore from a snapshot (`make bench-snapshot`)", "snapshot.md",
                    "`make bench-snapshot`")
    L += snapshot_profile_section()
    with open(OUT + ".tmp", "w") as f:
        f.write("\n".join(L).rstrip() + "\n")
    os.replace(OUT + ".tmp", OUT)
    B.log("wrote", os.path.relpath(OUT, B.ROOT), "and" if io else "", os.path.relpath(PNG, B.ROOT) if io else "")


if __name__ == "__main__":
    main()
