"""Efficiency: guest requests completed per host CPU-second of qemu, which the neighbours' load moves far less than
IOPS (a CPU-bound TCG guest does fewer requests per second when it gets less CPU, not fewer per CPU-second); and the
host CPU time its hypervisor gave to others meanwhile."""
import json
import os
import socket
import threading
import time

from benchlib import log


def find_pid(marker):
    """The pid of a process whose NUL-separated cmdline contains `marker` (bytes)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if marker in f.read():
                    return int(p)
        except OSError:
            pass
    return None


def stat_ticks(path):
    """utime + stime from a /proc/PID/stat or /proc/PID/task/TID/stat file (the comm field may hold spaces)."""
    with open(path) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return int(st[11]) + int(st[12])


def cpu_ticks(pid):
    return stat_ticks("/proc/%d/stat" % pid)  # all threads, those that ended included


def thread_ticks(pid):
    """{tid: utime + stime} of every thread qemu has now."""
    out = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            out[int(t)] = stat_ticks("/proc/%d/task/%s/stat" % (pid, t))
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return out


# Where qemu's CPU time goes, by thread role: the vCPUs (guest code under TCG), the main loop (the BQL, device
# emulation outside iothreads, and — without KVM's irqfd — every interrupt an iothread raises), the iothreads, rest.
ROLES = ("vcpu", "main", "iothread", "other")


def host_cpu_ticks():
    """(steal, total) jiffies of all host CPUs from /proc/stat: steal is the time the hypervisor under this host ran
    someone else while this host had work."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return t[7], sum(t)


class HostSteal:
    """`with HostSteal() as s:` — afterwards s.fraction is the share of the host's CPU time that its hypervisor gave to
    others meanwhile (None if no time passed); str(s) says it for the log."""

    def __enter__(self):
        self.before, self.fraction = host_cpu_ticks(), None
        return self

    def __exit__(self, *exc):
        steal, total = (a - b for a, b in zip(host_cpu_ticks(), self.before))
        self.fraction = steal / total if total > 0 else None

    def __str__(self):
        return "host CPU stolen %.0f%%" % (100 * (self.fraction or 0))


class QemuSampler:
    """Samples qemu's CPU time (per thread) and its disks' completed requests (QMP query-blockstats) every `period`
    seconds while a run goes on, then sums both over the intervals where only reads, or only writes, were completing.
    With `io_nice`, it also sets that nice value on qemu's main loop thread and iothreads as soon as it knows them
    (explore.py's io-nice knob): the one QMP connection a hand-written command line offers is the sampler's."""

    def __init__(self, marker, qmp_path, period=0.5, io_nice=None):
        self.marker, self.qmp_path, self.period, self.io_nice = marker, qmp_path, period, io_nice
        self.samples = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)

    def _run(self):
        pid = sock = None
        hz = os.sysconf("SC_CLK_TCK")
        while not self.stop.is_set():
            try:
                if pid is None:
                    pid = find_pid(self.marker)
                if pid is not None and sock is None and os.path.exists(self.qmp_path):
                    sock = socket.socket(socket.AF_UNIX)
                    sock.settimeout(5)
                    sock.connect(self.qmp_path)
                    f = sock.makefile("rw")
                    f.readline()
                    f.write('{"execute":"qmp_capabilities"}\n')
                    f.flush()
                    f.readline()
                    roles = {pid: "main"}
                    for cmd, role in (("query-cpus-fast", "vcpu"), ("query-iothreads", "iothread")):
                        f.write('{"execute":"%s"}\n' % cmd)
                        f.flush()
                        msg = self._answer(f)
                        roles.update({t["thread-id"]: role for t in msg.get("return", [])})
                    if self.io_nice is not None:
                        for t in (t for t, role in roles.items() if role in ("main", "iothread")):
                            try:
                                os.setpriority(os.PRIO_PROCESS, t, self.io_nice)
                            except OSError as e:
                                log("cannot set nice %d on qemu thread %d: %s" % (self.io_nice, t, e))
                if sock is not None:
                    f.write('{"execute":"query-blockstats"}\n')
                    f.flush()
                    msg = self._answer(f)
                    rd = sum(d["stats"]["rd_operations"] for d in msg.get("return", []))
                    wr = sum(d["stats"]["wr_operations"] for d in msg.get("return", []))
                    self.samples.append((time.monotonic(), cpu_ticks(pid) / hz, rd, wr,
                                         {t: (roles.get(t, "other"), n / hz) for t, n in thread_ticks(pid).items()}))
            except (OSError, ValueError):
                if sock is not None:
                    sock.close()
                sock = None
                if pid is not None and not os.path.exists("/proc/%d" % pid):
                    return
            self.stop.wait(self.period)

    @staticmethod
    def _answer(f):
        while True:  # skip QMP events
            msg = json.loads(f.readline())
            if "return" in msg or "error" in msg:
                return msg

    @staticmethod
    def _by_role(a, b):
        """CPU seconds per thread role between two samples (threads alive in both)."""
        out = dict.fromkeys(ROLES, 0.0)
        for t, (role, sec) in b[4].items():
            if t in a[4]:
                out[role] += sec - a[4][t][1]
        return out

    def per_cpu_second(self):
        """{"read": ops per qemu CPU-second, "write": ...} over the intervals with only that kind of request
        completing, leaving out the first and last such interval (partial); "read_us": {role: µs of host CPU per
        request} for each thread role in ROLES, likewise for writes."""
        out = {}
        iv = [(b[1] - a[1], b[2] - a[2], b[3] - a[3], self._by_role(a, b)) for a, b in zip(self.samples, self.samples[1:])]
        for kind, idx, other in (("read", 1, 2), ("write", 2, 1)):
            sel = [x for x in iv if x[idx] > 0 and x[other] == 0]
            sel = sel[1:-1]
            cpu = sum(x[0] for x in sel)
            ops = sum(x[idx] for x in sel)
            if len(sel) >= 3 and cpu > 0:
                out[kind] = ops / cpu
                out[kind + "_cpu_util"] = cpu / (len(sel) * self.period)  # qemu's CPUs busy, of the 2 host CPUs
                out[kind + "_us"] = {r: 1e6 * sum(x[3][r] for x in sel) / ops for r in ROLES}
        return out
