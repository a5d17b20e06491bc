#!/usr/bin/python3
"""Launch cost: what vmlaunch adds around qemu, with the plain bundled guest running `true` (interleaved rounds).

Per round, one after the other:
  strace    `strace -f --seccomp-bpf -ttt -e trace=execve,exit_group vmlaunch CONF -- true`: vmlaunch's execve ->
            qemu's execve (launch cost), qemu's exit -> vmlaunch's exit (teardown). --seccomp-bpf stops the traced
            processes only at those two syscalls, so the tracing costs next to nothing.
  vmlaunch  `vmlaunch -v CONF -- true` untraced: the round trip (wall), vmlaunch's own VmRSS/VmHWM sampled every
            20 ms from /proc while it supervises (its guardian's and qemu's too, for scale), and the -v lines
            timestamped as they arrive (qemu started -> guest running (QMP RESUME) -> SHUTDOWN -> exit).
  plain     `vmlaunch CONF -- true`, nothing watching: the round trip compared with bare's.
  bare      the argv `vmlaunch --dry-run CONF -- true` prints, run by this script without vmlaunch: it hands qemu
            the fds vmlaunch would (socketpairs on fds 3-6 for QMP and the guest's stdout/stderr/status ports, a
            listening unix socket on fd 7), a sparse file of the disk's size on /dev/shm where vmlaunch would mount
            its tmpfs, the argv file; it answers QMP (qmp_capabilities, cont) and reads the ports. No storage setup,
            journal, pinning, privilege dropping or tcmalloc.
  minimal   a hand-written minimal command line for the same guest (initramfs/README.md's "Testing by hand"):
            same machine, CPU, RAM, kernel, initrd and append, the disk as -blockdev file + virtio-blk, the ports on
            -chardev file, no QMP and no -S.

    tests/bench/launch.py [--rounds 3]
Writes tests/bench/results/launch.json, then regenerates results.md (report.py).
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

NAME = "bench-launch"
DISK_MB = 64
TIMEOUT = 180  # seconds for one `true` round trip (~5 s quiet, ~15 s under load) before it counts as hung


def make_conf(d):
    return B.write_conf(os.path.join(d, NAME + ".conf"), NAME,
                        ["backend = tmpfs", "size = %dM" % DISK_MB], initrd=B.INITRAMFS, memory="512M")


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out.append((int(p), comm))
    return out


def run_strace(conf, d):
    """Launch cost and teardown from strace's timestamps."""
    trace = os.path.join(d, "strace.out")
    argv = ["strace", "-f", "--seccomp-bpf", "-ttt", "-e", "trace=execve,exit_group", "-e", "signal=none",
            "-o", trace, B.VMLAUNCH, conf, "--", "true"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        _, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # strace, vmlaunch and qemu share this session; vmlaunch's guardian (its own session) undoes its setup
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise RuntimeError("strace vmlaunch: no exit after %d s (a guest hang?)" % TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError("strace vmlaunch: exit %d: %s" % (p.returncode, B.tail(err)))
    main_pid = qemu_pid = None
    t = {}
    probes = []
    helpers = []
    with open(trace) as f:
        for line in f:
            m = re.match(r"(\d+)\s+(\d+\.\d+) (.*)", line)
            if not m:
                continue
            pid, ts, rest = int(m.group(1)), float(m.group(2)), m.group(3)
            if main_pid is None and rest.startswith("execve(") and rest.rstrip().endswith("= 0"):
                main_pid, t["vmlaunch_exec"] = pid, ts
            elif rest.startswith("execve(") and "qemu-system" in rest.split(",")[0] and rest.rstrip().endswith("= 0"):
                if '"-machine"' in rest:  # the VM; vmlaunch also runs qemu to probe (`-device pvpanic-pci,help`)
                    qemu_pid, t["qemu_exec"] = pid, ts
                else:
                    probes.append(pid)
                    t.setdefault("probe_exec", ts)
            elif rest.startswith("+++ exited") or rest.startswith("+++ killed"):
                if pid == qemu_pid:
                    t["qemu_exit"] = ts
                elif pid == main_pid:
                    t["vmlaunch_exit"] = ts
                elif pid in probes:
                    t["probe_exit"] = ts
            if rest.startswith("execve(") and rest.rstrip().endswith("= 0") and pid != main_pid:
                helpers.append(rest.split('"')[1] if '"' in rest else rest[:40])
    missing = {"vmlaunch_exec", "qemu_exec", "qemu_exit", "vmlaunch_exit"} - set(t)
    if missing:
        raise RuntimeError("strace output lacks %s" % ", ".join(sorted(missing)))
    return {"launch_ms": (t["qemu_exec"] - t["vmlaunch_exec"]) * 1000,
            "probe_ms": (t["probe_exit"] - t["probe_exec"]) * 1000 if "probe_exit" in t else None,
            "helpers": helpers,
            "teardown_ms": (t["vmlaunch_exit"] - t["qemu_exit"]) * 1000,
            "traced_total_s": t["vmlaunch_exit"] - t["vmlaunch_exec"]}


def run_vmlaunch(conf):
    """Untraced round trip, RSS samples and the -v phases."""
    t0 = time.monotonic()
    p = subprocess.Popen([B.VMLAUNCH, "-v", conf, "--", "true"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, bufsize=1)
    phases = {}
    lines = []

    def reader():
        for line in p.stderr:
            now = time.monotonic() - t0
            lines.append(line)
            if "starting" in line and "qemu" in line:
                phases.setdefault("qemu_started_s", now)
            elif "QMP event RESUME" in line:
                phases.setdefault("running_s", now)
            elif "QMP event SHUTDOWN" in line:
                phases.setdefault("shutdown_s", now)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    rss, anon, rfile, hwm, side, guardian = [], [], [], 0, {}, []
    while p.poll() is None:
        if time.monotonic() - t0 > TIMEOUT:
            p.send_signal(signal.SIGTERM)  # power button; a second SIGTERM: quit
            time.sleep(2)
            p.send_signal(signal.SIGTERM)
            p.wait()
            raise RuntimeError("vmlaunch: no exit after %d s (a guest hang?)" % TIMEOUT)
        r = status_kb(p.pid, "VmRSS")
        if r is not None and "qemu_started_s" in phases:
            anon.append(status_kb(p.pid, "RssAnon"))
            rfile.append(status_kb(p.pid, "RssFile"))
        h = status_kb(p.pid, "VmHWM")
        if r is not None and "qemu_started_s" in phases:  # supervising: qemu exists
            rss.append(r)
        if h:
            hwm = max(hwm, h)
        for cpid, comm in children(p.pid):
            key = "qemu" if comm.startswith("qemu") else "guardian" if comm == "vmlaunch" else None
            if key:
                v = status_kb(cpid, "VmRSS")
                if v:
                    side[key] = max(side.get(key, 0), v)
                    if key == "guardian" and "running_s" in phases:  # once qemu runs: the guardian has trimmed
                        guardian.append(v)
        time.sleep(0.02)
    p.stdout.read()
    th.join(timeout=5)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("vmlaunch exit %d: %s" % (p.returncode, "".join(lines[-20:])))
    phases["exit_s"] = wall
    return {"wall_s": wall, "rss_kb": B.median(rss), "rss_anon_kb": B.median(anon), "rss_file_kb": B.median(rfile), "rss_max_kb": max(rss) if rss else None, "hwm_kb": hwm,
            "guardian_rss_kb": side.get("guardian"), "guardian_rss_running_kb": B.median(guardian), "qemu_rss_kb": side.get("qemu"), "phases": phases}


def run_plain(conf):
    """The round trip alone: `vmlaunch CONF -- true` with nothing watching it (run_vmlaunch's /proc sampler scans
    every process every 20 ms, CPU the bare run does not have to share)."""
    t0 = time.monotonic()
    p = subprocess.run([B.VMLAUNCH, conf, "--", "true"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("vmlaunch exit %d: %s" % (p.returncode, B.tail(p.stderr)))
    return {"wall_s": wall}


def qmp_cmd(f, cmd):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg:
            return msg


def passed_fds(argv):
    """What vmlaunch's argv expects on which fd: {fd: chardev id} for `-chardev socket,...,fd=N` and {fd: "disk"} for
    `-add-fd fd=N` (the disk's file, opened by vmlaunch)."""
    fds = {}
    for i, a in enumerate(argv[:-1]):
        nxt = argv[i + 1]
        if a == "-chardev" and nxt.startswith("socket,"):
            m, cid = re.search(r"(?:^|,)fd=(\d+)", nxt), re.search(r"(?:^|,)id=([^,]+)", nxt).group(1)
            if m:
                fds[int(m.group(1))] = cid
        elif a == "-add-fd":
            fds[int(re.search(r"(?:^|,)fd=(\d+)", nxt).group(1))] = "disk"
    return fds


def run_bare(conf, d):
    """vmlaunch's own argv, fds supplied by this script, no vmlaunch."""
    argv = B.dry_run(conf, ["true"])
    state = "/run/vmlaunch/" + NAME
    wd = os.path.join(d, "bare")
    shutil.rmtree(wd, ignore_errors=True)
    os.makedirs(wd)
    argv = [a.replace(state, wd) for a in argv]
    B.write_argv_file(os.path.join(wd, "argv"), ["true"])
    # vmlaunch mounts a tmpfs for the disk and opens its file (O_DIRECT where tmpfs takes it, as the argv's
    # cache.direct says); here a sparse file of the same size on /dev/shm
    disk = os.path.join(wd, "disk.raw")
    with open(disk, "wb") as f:
        f.truncate(DISK_MB << 20)
    direct = any("cache.direct=on" in a for a in argv)
    ours = {}  # fd in qemu -> our end (or None: nothing to read)
    src = {}   # fd in qemu -> the fd the child dup2()s there
    for fd, what in passed_fds(argv).items():
        if what == "disk":
            src[fd] = os.open(disk, os.O_RDWR | (os.O_DIRECT if direct else 0))
        elif what == "qmp-ext":  # a listening socket qemu accepts on (vmlaunch's STATE/qmp.sock)
            ext = socket.socket(socket.AF_UNIX)
            ext.bind(os.path.join(wd, "qmp.sock"))
            ext.listen(4)
            src[fd], ours[fd] = ext.detach(), None
        else:  # qmp, the guest's ports, the console: a socketpair
            a, b = socket.socketpair()
            src[fd], ours[fd] = b.detach(), a
    qmp_fd = next(fd for fd, w in passed_fds(argv).items() if w == "qmp")
    port_of = {w: fd for fd, w in passed_fds(argv).items()}
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: each fd where the argv says, as vmlaunch's child_exec arranges them, then exec
        try:
            high = {t: fcntl_dup_high(os.dup(s)) for t, s in src.items()}
            for target, h in high.items():
                os.dup2(h, target)
            os.closerange(max(high) + 1, 4096)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    for s in src.values():
        os.close(s)
    f = ours[qmp_fd].makefile("rw")
    json.loads(f.readline())  # greeting
    qmp_cmd(f, "qmp_capabilities")
    qmp_cmd(f, "cont")
    status_sock = ours[port_of["guest-status"]]
    status_sock.sendall(b"eof=0\n")  # the command's stdin is empty
    reading = {ours[port_of[w]].fileno(): w for w in ("guest-stdout", "guest-stderr", "guest-status", "console")
               if w in port_of}
    got = {w: b"" for w in reading.values()}
    acked = False
    while reading:
        if time.monotonic() - t0 > TIMEOUT:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise RuntimeError("bare qemu: no exit after %d s (a guest hang?)" % TIMEOUT)
        r, _, _ = select.select(list(reading), [], [], 1.0)
        for fd in r:
            data = os.read(fd, 65536)
            if not data:
                del reading[fd]
                continue
            got[reading[fd]] += data
        m = re.search(rb"^exit=\d+ out=(\d+) err=(\d+)\n", got["guest-status"], re.M)
        if m and not acked and len(got["guest-stdout"]) >= int(m.group(1)) and \
                len(got["guest-stderr"]) >= int(m.group(2)):
            status_sock.sendall(b"ok\n")  # the guest powers off once it has this
            acked = True
        if not r and os.waitpid(pid, os.WNOHANG)[0]:
            pid = None
            break
    if pid:
        os.waitpid(pid, 0)
    wall = time.monotonic() - t0
    f.close()
    for s in ours.values():
        if s is not None:
            s.close()
    status = got["guest-status"].split(b"\n")[0].split(b" ")[0]
    if status != b"exit=0":
        raise RuntimeError("bare qemu: guest status %r; console: %s" % (got["guest-status"], got.get("console", b"")[-500:]))
    shutil.rmtree(wd, ignore_errors=True)
    return {"wall_s": wall}


def fcntl_dup_high(fd):
    import fcntl
    h = fcntl.fcntl(fd, fcntl.F_DUPFD, 100)
    os.close(fd)
    return h


def minimal_argv(d, vmlaunch_argv):
    """The bare qemu command: the bundled guest with one blank virtio disk, nothing tuned, under the accelerator and
    CPU model of `vmlaunch_argv` (vmlaunch's --dry-run on this host)."""
    disk = os.path.join(d, "minimal.raw")
    with open(disk, "wb") as f:
        f.truncate(DISK_MB << 20)
    accel, cpu = B.accel_and_cpu(vmlaunch_argv)
    return [B.QEMU, "-M", "q35,accel=" + accel, "-cpu", cpu, "-nodefaults", "-no-user-config", "-nographic",
            "-no-reboot", "-m", "512M", "-smp", "2", "-kernel", B.VMLINUX, "-initrd", B.INITRAMFS,
            "-append", "console=ttyS0 panic=-1 " + B.GUEST_APPEND,
            "-blockdev", "driver=file,filename=%s,node-name=d0" % disk, "-device", "virtio-blk-pci,drive=d0,serial=scratch"]


def run_minimal(d, vmlaunch_argv):
    wd = tempfile.mkdtemp(dir=d)
    try:
        _, wall = B.run_qemu_command(minimal_argv(d, vmlaunch_argv), ["true"], 600, workdir=wd)
        return {"wall_s": wall}
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def library_cost(d, rounds):
    """What linking librbd and librados costs every vmlaunch exec, VM with RBD disks or not: two empty programs,
    one linked with vmlaunch's other libraries, one with librbd and librados as well (--no-as-needed, as vmlaunch
    needs them), exec'd 50 times each per round, interleaved; ms per exec and max RSS."""
    src = os.path.join(d, "empty.c")
    with open(src, "w") as f:
        f.write("int main(void) { return 0; }\n")
    base = B.run(["pkg-config", "--libs", "inih", "json-c", "liburing"], check=False).stdout.split() or \
        ["-linih", "-ljson-c", "-luring"]
    bins = {}
    for name, libs in (("without", base + ["-lnuma", "-lcap-ng"]),
                       ("with", base + ["-lrbd", "-lrados", "-lnuma", "-lcap-ng"])):
        out = os.path.join(d, "empty-" + name)
        p = B.run(["gcc", "-O2", "-o", out, src, "-Wl,--no-as-needed"] + libs, check=False)
        if p.returncode != 0:
            return {"error": "cannot build the test programs: " + p.stderr[-300:]}
        bins[name] = out
    res = {k: {"ms": [], "rss_kb": None} for k in bins}
    for _ in range(rounds):
        for k, b in bins.items():
            t = time.perf_counter()
            for _ in range(50):
                subprocess.run([b])
            res[k]["ms"].append((time.perf_counter() - t) / 50 * 1000)
    for k, b in bins.items():
        p = B.run(["/usr/bin/time", "-f", "%M", b], check=False)
        res[k]["rss_kb"] = int(p.stderr.strip().splitlines()[-1]) if p.stderr.strip() else None
        res[k]["ms_median"] = B.median(res[k]["ms"])
    res["load"] = B.loadavg()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    args = ap.parse_args()
    for f in (B.VMLAUNCH, B.VMLINUX, B.INITRAMFS):
        if not os.path.exists(f):
            sys.exit("launch.py: %s is missing (make all)" % f)
    if not shutil.which("strace"):
        sys.exit("launch.py: strace is missing (apt-get install strace)")
    d = tempfile.mkdtemp(prefix="vmbench-launch-", dir="/dev/shm")
    conf = make_conf(d)
    argv = B.dry_run(conf, ["true"])
    data = {"host": B.host_info(), "rounds": args.rounds, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "argv": argv, "minimal_argv": [a.replace(d, "$TMP") for a in minimal_argv(d, argv)], "disk_mb": DISK_MB,
            "round_loads": [], "runs": {"strace": [], "vmlaunch": [], "plain": [], "bare": [], "minimal": []}}
    try:
        for r in range(1, args.rounds + 1):
            data["round_loads"].append(B.before_round(r, args.rounds))
            for kind, fn in (("strace", lambda: run_strace(conf, d)), ("vmlaunch", lambda: run_vmlaunch(conf)),
                             ("plain", lambda: run_plain(conf)), ("bare", lambda: run_bare(conf, d)), ("minimal", lambda: run_minimal(d, argv))):
                run = {"round": r, "load": B.loadavg()}
                try:
                    run.update(fn())
                    B.log("round %d %s: %s" % (r, kind, ", ".join("%s=%s" % (k, round(v, 3) if isinstance(v, float) else v)
                                                                  for k, v in run.items() if k not in ("round", "load", "phases"))))
                except Exception as e:  # noqa: BLE001
                    run["error"] = str(e)[-2000:]
                    B.log("round %d %s FAILED: %s" % (r, kind, str(e)[-1000:]))
                data["runs"][kind].append(run)
            data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            B.save_json("launch.json", data)
        if shutil.which("gcc"):
            data["library_cost"] = library_cost(d, args.rounds)
            B.log("library cost:", data["library_cost"])
            B.save_json("launch.json", data)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    import report
    report.main()


if __name__ == "__main__":
    main()
