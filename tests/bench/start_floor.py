#!/usr/bin/python3
"""Start -> qemu's exec, untraced, against this host's floor (issue #22's first goal).

strace (section 2) stops the traced processes at every fork and exec it follows, which costs a launch milliseconds
here. This measures without a tracer: a static `stamp_exec` records CLOCK_MONOTONIC and execs the launcher; qemu is
replaced by a static stand-in (`[qemu] binary`) that records CLOCK_MONOTONIC at its main and execs the real qemu.
The difference is start -> qemu's exec plus the stand-in's own exec, the same for every launcher measured. Launchers,
interleaved round by round:
  floor-static  a static program that only vforks and execs the stand-in (no dynamic loader, no work)
  floor         the same, dynamically linked (as vmlaunch is: libc and ld.so)
  vmlaunch      `vmlaunch CONF -- true`, the plain bundled guest with a 64 MiB tmpfs disk (no source)
  --vs BIN      another vmlaunch build, the same way

    tests/bench/start_floor.py [--rounds 15] [--vs OTHER_VMLAUNCH]
Prints a Markdown table; tests/bench/results/start-floor.md keeps the last one.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
VMLAUNCH = os.environ.get("VMLAUNCH", os.path.join(BUILD, "vmlaunch"))


def cc(out, src, *flags):
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", *flags, "-o", out, os.path.join(HERE, "start_floor", src)],
                   check=True)


def read_ns(path):
    with open(path) as f:
        return int(f.read())


def once(d, argv):
    """One timed start: milliseconds from the stamp_exec's clock read to the stand-in's, or None if it never ran."""
    stamp, mark = os.path.join(d, "start"), os.path.join(d, "out", "stand-in")
    for p in (stamp, mark):
        if os.path.exists(p):
            os.unlink(p)
    r = subprocess.run([os.path.join(d, "stamp_exec"), stamp, *argv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    if not os.path.exists(mark):
        sys.exit(f"{argv[0]}: the stand-in never ran (exit {r.returncode}): {r.stderr.strip()}")
    return (read_ns(mark) - read_ns(stamp)) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--vs", help="another vmlaunch binary, measured the same way")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="vmlaunch-start-floor.")
    out = os.path.join(d, "out")
    os.mkdir(out)
    os.chmod(d, 0o755)
    os.chmod(out, 0o1777)  # qemu's stand-in runs as qemu's unprivileged user
    cc(os.path.join(d, "stamp_exec"), "stamp_exec.c", "-static")
    cc(os.path.join(d, "stand-in"), "stand_in.c", "-static", f'-DSTAMP_FILE="{out}/stand-in"')
    cc(os.path.join(d, "floor-static"), "floor.c", "-static")
    cc(os.path.join(d, "floor"), "floor.c")
    conf = os.path.join(d, "t.conf")
    with open(conf, "w") as f:
        f.write(f"[vm]\nname = start-floor\ncpus = 2\nmemory = 512M\n[boot]\nkernel = {BUILD}/vmlinux\n"
                f"initrd = {BUILD}/initramfs.cpio.gz\nappend = quiet cryptomgr.notests\n"
                f"[disk scratch]\nbackend = tmpfs\nsize = 64M\n[qemu]\nbinary = {d}/stand-in\n")
    runs = {
        "floor-static": [os.path.join(d, "floor-static"), os.path.join(d, "stand-in")],
        "floor": [os.path.join(d, "floor"), os.path.join(d, "stand-in")],
        "vmlaunch": [VMLAUNCH, conf, "--", "true"],
    }
    if args.vs:
        runs["vs"] = [os.path.abspath(args.vs), conf, "--", "true"]
    for argv in runs.values():  # warm-up: page cache, vmlaunch's capability cache for the stand-in
        once(d, argv)
    times = {k: [] for k in runs}
    loads = []
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for k, argv in runs.items():
            times[k].append(once(d, argv))
    ended = time.strftime("%H:%M:%S", time.gmtime())
    lines = [f"Run {started} – {ended} UTC, {args.rounds} interleaved rounds, 1-minute load "
             f"{min(loads):.2f}–{max(loads):.2f}; vmlaunch: {VMLAUNCH}" + (f", vs: {args.vs}" if args.vs else ""),
             "", "| launcher | start → stand-in's main, median | min–max |", "| --- | ---: | ---: |"]
    for k, v in times.items():
        lines.append(f"| {k} | {statistics.median(v):.2f} ms | {min(v):.2f}–{max(v):.2f} |")
    over = statistics.median(a - b for a, b in zip(times["vmlaunch"], times["floor"]))
    lines += ["", f"vmlaunch over the dynamic floor, median of the per-round differences: {over:.2f} ms"]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(HERE, "results", "start-floor.md"), "w") as f:
        f.write(text)
    subprocess.run(["rm", "-rf", d], check=True)


if __name__ == "__main__":
    main()
