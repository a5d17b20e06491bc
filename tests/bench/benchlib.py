"""The harness every benchmark script shares: where the build is, the log, rounds that record the load, running a
program, the host's description, the results' JSON, and running the bundled guest in command mode (a hand-written
qemu command line or vmlaunch). fio's jobs are in fiojobs.py, qemu's CPU sampling in cpusample.py, Markdown in
mdtable.py.

Benchmarks, not tests: they pass or fail nothing; they record raw numbers as JSON under tests/bench/results/ and
report.py renders tests/bench/results.md from whatever JSON is there.
"""
import contextlib
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
RESULTS_DIR = os.path.join(HERE, "results")
VMLAUNCH = os.environ.get("VMLAUNCH", os.path.join(BUILD, "vmlaunch"))
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
VMLINUX = os.path.join(BUILD, "vmlinux")
INITRAMFS = os.path.join(BUILD, "initramfs.cpio.gz")
INITRAMFS_FIO = os.path.join(BUILD, "bench", "initramfs-fio.cpio")
# The kernel command line vmlaunch builds for the bundled guest (vmlaunch adds console=ttyS0 panic=-1 itself).
GUEST_APPEND = "quiet cryptomgr.notests"
QUIET_LOAD = 1.5


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # so that `finally:` blocks remove images, zram devices, daemons


signal.signal(signal.SIGTERM, _terminate)
signal.signal(signal.SIGHUP, _terminate)


def log(*args):
    print("[%s load %s]" % (time.strftime("%H:%M:%S"), loadavg()), *args, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def before_round(n, total):
    """Called before each round: records the load; waits up to BENCH_QUIET_WAIT seconds (default 0) for the
    1-minute load to drop below 1.5, then runs anyway (the load is recorded next to the round's numbers)."""
    deadline = time.time() + float(os.environ.get("BENCH_QUIET_WAIT", "0"))
    while load1() >= QUIET_LOAD and time.time() < deadline:
        time.sleep(10)
    la = loadavg()
    log("round %d/%d: load average %s%s" % (n, total, la, "" if load1() < QUIET_LOAD else " (busy: others use the CPUs)"))
    return la


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def minmax(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def run(argv, check=True, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    p = subprocess.run(argv, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s" % (" ".join(map(shlex.quote, argv)), p.returncode, p.stderr))
    return p


def first_line(argv):
    try:
        return run(argv, check=False).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def host_info():
    """The host, qemu, kernel and fio versions, for the results' header."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    guest_kver = "?"
    with contextlib.suppress(OSError):
        guest_kver = run([os.path.join(ROOT, "initramfs", "build.sh"), "default-kver"], check=False).stdout.strip()
    kvm = "KVM usable"
    if os.path.exists("/sys/module/kvm_pvm"):
        kvm = "KVM is nested PVM (/sys/module/kvm_pvm): unusable, every guest runs under TCG"
    elif not os.path.exists("/dev/kvm"):
        kvm = "no /dev/kvm: TCG"
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "host_kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_kb / 2**20, 1),
        "qemu": first_line([QEMU, "--version"]),
        "fio": first_line(["fio", "--version"]),
        "guest_kernel": guest_kver,
        "vmlaunch": first_line([VMLAUNCH, "--version"]),
        "accel": kvm,
        "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
    }


def save_json(name, data):
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, name)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    log("wrote", os.path.relpath(path, ROOT))


def load_json(name):
    path = os.path.join(RESULTS_DIR, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------------------------
# Hand-written qemu command lines running the bundled guest in command mode

def base_qemu_argv(*, initrd=INITRAMFS_FIO, cpus=2, memory="1G", cpu="max", accel="tcg", machine="q35",
                   append_extra="", kernel=VMLINUX):
    """What every hand-written variant shares: the same guest, vCPUs, RAM and kernel command line as the vmlaunch
    runs; -nodefaults so that only the disk arguments differ between variants (the disk is added by the caller)."""
    return [QEMU, "-machine", machine, "-accel", accel, "-cpu", cpu, "-m", memory, "-smp", str(cpus),
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd,
            "-append", ("console=ttyS0 panic=-1 " + GUEST_APPEND + " " + append_extra).strip(),
            "-device", "pvpanic-pci", "-action", "panic=exit-failure"]


def write_argv_file(path, guest_argv):
    """The guest command as the guest agent reads it over fw_cfg: each word NUL-terminated."""
    with open(path, "wb") as f:
        f.write(b"".join(a.encode() + b"\0" for a in guest_argv))


def command_mode_args(workdir, guest_argv):
    """The guest agent's channels as the initramfs README describes them: file-backed virtio-serial ports for stdout
    and stderr (qemu writes everything before the guest powers off), an empty stdin port, the status port on a unix
    socket answered by StatusPort (the guest waits for the host's "ok" before it powers off), the argv over fw_cfg,
    the console to a file."""
    write_argv_file(os.path.join(workdir, "argv"), guest_argv)
    for n in ("stdout", "stderr", "console"):
        open(os.path.join(workdir, n), "w").close()
    a = ["-serial", "file:" + os.path.join(workdir, "console"), "-device", "virtio-serial-pci"]
    for n in ("stdout", "stderr"):
        a += ["-chardev", "file,id=%s,path=%s" % (n, os.path.join(workdir, n)),
              "-device", "virtserialport,chardev=%s,name=org.vmlaunch.%s" % (n, n)]
    a += ["-chardev", "null,id=stdin", "-device", "virtserialport,chardev=stdin,name=org.vmlaunch.stdin",
          "-chardev", "socket,id=status,path=" + os.path.join(workdir, "status.sock"),
          "-device", "virtserialport,chardev=status,name=org.vmlaunch.status"]
    a += ["-fw_cfg", "name=opt/org.vmlaunch/argv,file=" + os.path.join(workdir, "argv")]
    return a


class StatusPort:
    """The host side of the guest's status port (launcher/guest_protocol.h), listening before qemu starts: says
    "eof=0" (the command's stdin is empty), and answers the guest's "exit=N out=BYTES err=BYTES" with "ok" once the
    stdout and stderr files hold that many bytes, as vmlaunch does; without the "ok" the guest waits 60 s."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.exit_line = None
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(os.path.join(workdir, "status.sock"))
        self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.sendall(b"eof=0\n")
        buf = b""
        while True:
            data = conn.recv(4096)
            if not data:
                break
            buf += data
            m = re.search(rb"^(exit=(\d+) out=(\d+) err=(\d+))\n", buf, re.M)
            if m and self.exit_line is None:
                self.exit_line = m.group(1).decode()
                self._wait_for(("stdout", int(m.group(3))), ("stderr", int(m.group(4))))
                conn.sendall(b"ok\n")
        conn.close()

    def _wait_for(self, *files, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(os.path.getsize(os.path.join(self.workdir, n)) >= size for n, size in files):
                return
            time.sleep(0.01)

    def close(self):
        self.sock.close()

    @property
    def status(self):
        """"exit=N" as the guest reported it, or "" when it reported nothing."""
        return self.exit_line.split()[0] if self.exit_line else ""


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def read_if_there(path):
    try:
        return read(path)
    except FileNotFoundError:
        return ""


def tail(text, n=15):
    return "\n".join(text.rstrip().splitlines()[-n:])


def run_qemu_command(argv, guest_argv, timeout, workdir=None, env=None):
    """Runs a hand-written qemu command line with the guest in command mode. Returns (stdout, wall seconds)."""
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="vmbench-q-", dir="/dev/shm")
    try:
        full = argv + command_mode_args(workdir, guest_argv)
        status_port = StatusPort(workdir)
        t0 = time.monotonic()
        p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise RuntimeError("qemu timed out after %d s; console:\n%s" % (timeout, tail(read(os.path.join(workdir, "console")))))
        wall = time.monotonic() - t0
        status_port.thread.join(timeout=5)
        status_port.close()
        status = status_port.status
        if p.returncode != 0 or status != "exit=0":
            raise RuntimeError("qemu exit %d, guest %r\nqemu stderr: %s\nguest stderr: %s\nconsole:\n%s" % (
                p.returncode, status_port.exit_line, tail(err), tail(read(os.path.join(workdir, "stderr"))),
                tail(read(os.path.join(workdir, "console")))))
        return read(os.path.join(workdir, "stdout")), wall
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def console_of(conf):
    """Where the VM of a write_conf() config logs its console (kept after the run, for a failed run's report)."""
    return conf + ".console"


def write_conf(path, name, disk_lines, *, initrd=INITRAMFS_FIO, cpus=2, memory="1G", extra=(), more=""):
    with open(path, "w") as f:
        f.write("[vm]\nname = %s\ncpus = %d\nmemory = %s\nconsole-log = %s\n\n"
                "[boot]\nkernel = %s\ninitrd = %s\nappend = %s\n\n" % (
                    name, cpus, memory, console_of(path), VMLINUX, initrd, GUEST_APPEND))
        if extra:
            f.write("[qemu]\nextra = %s\n\n" % " ".join(extra))
        if more:
            f.write(more + "\n\n")
        f.write("[disk d]\n" + "\n".join(disk_lines) + "\n")
    return path


def run_vmlaunch_command(conf, guest_argv, timeout, sets=(), vmlaunch=VMLAUNCH):
    """`vmlaunch CONF -- COMMAND`: returns (stdout, wall seconds)."""
    argv = [vmlaunch]
    for s in sets:
        argv += ["--set", s]
    argv += [conf, "--"] + guest_argv
    t0 = time.monotonic()

    def last_words(err):
        return "stderr: %s\nconsole:\n%s" % (tail(err or "", 30), tail(read_if_there(console_of(conf)), 30))

    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)  # vmlaunch powers the guest off and undoes its setup
        try:
            out, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        raise RuntimeError("vmlaunch timed out after %d s\nguest stdout: %s\n%s" % (timeout, tail(out or ""),
                                                                                  last_words(err)))
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("vmlaunch exit %d\n%s" % (p.returncode, last_words(err)))
    return out, wall


def dry_run(conf, guest_argv=None, sets=()):
    argv = [VMLAUNCH, "--dry-run"]
    for s in sets:
        argv += ["--set", s]
    argv.append(conf)
    if guest_argv:
        argv += ["--"] + guest_argv
    return run(argv).stdout.splitlines()


def accel_and_cpu(argv):
    """The accelerator and `-cpu` of a vmlaunch --dry-run argv: what the hand-written variants take over, so that on
    a host where vmlaunch picks KVM they run under KVM too (and `-cpu host`), not TCG against vmlaunch's KVM."""
    val = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("-")}
    return re.search(r"(?:^|,)accel=(\w+)", val["-machine"]).group(1), val["-cpu"]


def disk_args_of(argv):
    """The arguments of a vmlaunch argv that describe its disk (iothread object, blockdev, virtio-blk device)."""
    out = []
    for i, a in enumerate(argv[:-1]):
        nxt = argv[i + 1]
        if a in ("-object", "-blockdev") and ("iothread" in nxt or "node-name=disk-" in nxt):
            out += [a, nxt]
        elif a == "-device" and nxt.startswith("virtio-blk"):
            out += [a, nxt]
    return out
