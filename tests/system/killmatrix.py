"""The kill matrix: SIGKILL a process at a known lifecycle phase, then check nothing of the VM remains.

Used by tests/system/test_kill.py (a fixed sample in `make check`) and tests/stress/kill_matrix.py (randomized, many
iterations). vmlaunch is frozen at the phase with VMLAUNCH_STOP_AT (a test-only pause point), so the kill lands
exactly there instead of after a guessed sleep.
"""
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import GUEST, ROOT, STATE_ROOT, VMLAUNCH

# "convert": inside an acquisition, with qemu-img convert filling a disk (the helper is what stops there); "share":
# a [share]'s virtiofsd started, qemu not yet; "network": a tap on a bridge made, qemu not yet; "tpm": swtpm started
# (the config has tpm = yes), qemu not yet
# "snapshot-save": vmlaunch --snapshot with the state written to its temporary directory, no manifest yet;
# "snapshot-restore": a run restoring a snapshot with qemu started, the state not loaded yet; "snapshot-frozen": a
# save of a VM with a zram disk, qemu gone, the disk's frozen image written to the temporary directory, no manifest
PHASES = ["state", "hugepages", "disk", "convert", "share", "network", "tpm", "qemu", "running", "teardown",
          "snapshot-save", "snapshot-restore", "snapshot-frozen"]
# "parents": vmlaunch and its guardian at once, not qemu: qemu must die by itself (PR_SET_PDEATHSIG, set again after
# it changed user, which clears it); "virtiofsd": the share's daemon (both of its processes)
VICTIMS = ["vmlaunch", "qemu", "guardian", "virtiofsd", "group", "parents", "all"]
# what the VM has besides its disks: a read-only [share] (virtiofsd, a bind mount), a tap on a bridge in a network
# namespace the matrix makes (traffic never leaves it)
FEATURES = ["share", "tap"]
TAP = "vmlkill0"
# [qemu] user: None is the default (vmlaunch-qemu as root)
USERS = [None, "root", "nobody"]


def zram_devices():
    return sorted(p.name for p in Path("/sys/block").glob("zram*"))


def our_mounts(name):
    return [line for line in Path("/proc/self/mounts").read_text().splitlines() if f"/run/vmlaunch/{name}/" in line]


def processes_of(name):
    """PIDs whose command line belongs to VM `name`: its qemu (-name NAME,...) or a vmlaunch running its config, or
    that vmlaunch started for it (VMLAUNCH_STATE_DIR in their environment: virtiofsd, swtpm, helpers; a zombie is
    dead already and is not counted)."""
    found = []
    state_env = f"VMLAUNCH_STATE_DIR={STATE_ROOT / name}".encode()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
            env = (p / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (f"{name},debug-threads=on".encode() in argv or any(a.endswith(f"/{name}.conf".encode()) for a in argv) or
                any(f"/run/vmlaunch/{name}/".encode() in a for a in argv)):  # a helper working on its disks
            found.append(int(p.name))
        elif state_env in env and state_of(int(p.name)) not in (None, "Z"):
            found.append(int(p.name))
    return found


def hugepages_total():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("HugePages_Total:"):
            return int(line.split()[1])
    return 0


def netns_links(ns):
    return subprocess.run(["ip", "netns", "exec", ns, "ip", "-br", "link"], capture_output=True, text=True).stdout


class Netns:
    """A network namespace of the matrix's own with a bridge br0 (192.168.77.1/24): the tap's only neighbours."""

    def __init__(self):
        self.name = f"vmlk{os.getpid()}"

    def __enter__(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "br0", "type", "bridge"],
                        ["ip", "link", "set", "br0", "up"], ["ip", "addr", "add", "192.168.77.1/24", "dev", "br0"]):
                subprocess.run(["ip", "netns", "exec", self.name, *cmd], check=True)
        except BaseException:
            self.__exit__()
            raise
        return self.name

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def virtiofsd_of(pid):
    """virtiofsd processes below `pid` (vmlaunch's child and, sandboxed, its child in a new pid namespace)."""
    found = []
    for k in children(pid):
        if "virtiofsd" in exe(k):
            found += [k, *(c for c in children(k) if "virtiofsd" in exe(c))]
    return found


def leftovers(name, zram_before, hugepages_before=None, netns=None):
    left = []
    if netns and TAP in netns_links(netns):
        left.append(f"tap {TAP} in netns {netns}")
    if hugepages_before is not None and hugepages_total() != hugepages_before:
        left.append(f"hugepages: {hugepages_total()} reserved, {hugepages_before} before")
    if (STATE_ROOT / name).exists():
        left.append(f"state dir {STATE_ROOT / name}")
    if (STATE_ROOT / f"{name}.lock").exists():
        left.append(f"lock {STATE_ROOT / name}.lock")
    left += [f"mount {m}" for m in our_mounts(name)]
    extra = set(zram_devices()) - set(zram_before)
    left += [f"zram {z}" for z in sorted(extra)]
    left += [f"process {pid}" for pid in processes_of(name)]
    return left


def state_of(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def children(pid):
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def write_config(directory, name, source, hugepages, user=None, tpm=False, features=()):
    conf = Path(directory) / f"{name}.conf"
    shared = Path(directory) / "shared"
    shared.mkdir(exist_ok=True)
    conf.write_text(f"[vm]\nname = {name}\nmemory = 256M\n" + ("[memory]\nhugepages = 2M\n" if hugepages else "") +
                    (f"[qemu]\nuser = {user}\n" if user else "") +
                    GUEST.replace("@BUILD@", str(ROOT / "build")) + ("tpm = yes\n" if tpm else "") +
                    f"[disk a]\nbackend = tmpfs\nsize = 32M\nsource = {source}\n"
                    "[disk b]\nbackend = zram\nsize = 32M\n" +
                    (f"[share s]\npath = {shared}\n" if "share" in features else "") +
                    (f"[net lan]\nmode = tap\nbridge = br0\ntap = {TAP}\n" if "tap" in features else ""))
    return conf


def write_snapshot_config(directory, name, ram_disk=False):
    """A VM a snapshot can hold (no writable disks; a zram disk if asked), its snapshot in `directory`/snap."""
    conf = Path(directory) / f"{name}.conf"
    conf.write_text(f"[vm]\nname = {name}\nmemory = 256M\nsnapshot = {Path(directory) / 'snap'}\n" +
                    GUEST.replace("@BUILD@", str(ROOT / "build")) +
                    ("[disk scratch]\nbackend = zram\nsize = 16M\n" if ram_disk else ""))
    return conf


def snapshot_leftovers(directory):
    """A save's temporary or replaced directory, or a snapshot without both of its files."""
    left = [f"snapshot scrap {p}" for p in Path(directory).glob("snap.*")]
    snap = Path(directory) / "snap"
    # stream: manifest and state; shared (the default): its RAM file too; a zram disk's frozen image
    if snap.exists() and sorted(p.name for p in snap.iterdir() if p.name != "disk-scratch.raw") not in (
            ["manifest", "state"], ["manifest", "ram", "state"]):
        left.append(f"incomplete snapshot {snap}: {sorted(p.name for p in snap.iterdir())}")
    return left


def make_source(directory):
    src = Path(directory) / "source.raw"
    if not src.exists():
        with open(src, "wb") as f:
            f.truncate(16 << 20)
            f.seek(1 << 20)
            f.write(os.urandom(1 << 20))
    return src


def make_qcow2_source(directory):
    src = Path(directory) / "source.qcow2"
    if not src.exists():
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(make_source(directory)), str(src)],
                       check=True)
    return src


def run_case(directory, name, phase, victim, timeout=60, user=None, features=(), relaunch=False):
    """Returns a list of what was left behind (empty when the host is clean) and a description of what happened.

    features: what the VM has besides its disks (FEATURES); the phases "share" and "network" imply theirs. A tap
    needs a network namespace: the case makes one and runs vmlaunch inside it. relaunch: afterwards, the same name
    must launch again (a stale lock, socket or tap would refuse it)."""
    features = set(features)
    if phase in ("share", "network"):
        features.add("share" if phase == "share" else "tap")
    if "tap" in features:
        with Netns() as ns:
            return _run_case(directory, name, phase, victim, timeout, user, features, relaunch, ns)
    return _run_case(directory, name, phase, victim, timeout, user, features, relaunch, None)


def _run_case(directory, name, phase, victim, timeout, user, features, relaunch, netns):
    zram_before, hugepages_before = zram_devices(), hugepages_total()
    snapshot = phase.startswith("snapshot-")
    if snapshot:
        conf = write_snapshot_config(directory, name, ram_disk=phase == "snapshot-frozen")
        if phase == "snapshot-restore":
            r = subprocess.run([VMLAUNCH, "--snapshot", str(conf)], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=180)
            assert r.returncode == 0, r.stderr
    else:
        source = make_qcow2_source(directory) if phase == "convert" else make_source(directory)
        conf = write_config(directory, name, source, hugepages=phase == "hugepages", user=user, tpm=phase == "tpm",
                            features=features)
    command = ["true"] if phase == "teardown" else ["sh", "-c", "sleep 3"]
    args = ["--snapshot", str(conf)] if phase in ("snapshot-save", "snapshot-frozen") else [str(conf), "--", *command]
    env = dict(os.environ, VMLAUNCH_STOP_AT="helper-qemu-img-convert" if phase == "convert" else phase)
    inside = ["ip", "netns", "exec", netns] if netns else []  # `ip netns exec` execs vmlaunch: p.pid is vmlaunch
    p = subprocess.Popen([*inside, VMLAUNCH, *args], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout

    def stopped():
        """The process frozen at the phase: vmlaunch itself, or at "convert" its qemu-img."""
        if phase != "convert":
            return p.pid if state_of(p.pid) == "T" else None
        return next((k for k in children(p.pid) if state_of(k) == "T"), None)

    while stopped() is None:
        if p.poll() is not None:
            raise AssertionError(f"vmlaunch exited ({p.returncode}) before phase {phase}: {p.stderr.read().decode()}")
        if time.monotonic() > deadline:
            p.kill()
            raise AssertionError(f"vmlaunch never reached phase {phase}")
        time.sleep(0.02)

    frozen = stopped()
    kids = children(p.pid)
    qemu = [k for k in kids if "qemu-system" in exe(k)]
    guardian = [k for k in kids if exe(k) == exe(p.pid)]
    virtiofsd = virtiofsd_of(p.pid)
    what = f"{phase}/{victim}" + (f"/{user}" if user else "") + "".join(f"+{f}" for f in sorted(features))
    if victim == "vmlaunch":
        os.kill(p.pid, signal.SIGKILL)
    elif victim == "qemu":
        if not qemu:
            os.kill(frozen, signal.SIGCONT)  # no qemu yet at this phase: let the run finish normally
            what += " (no qemu yet: ran to the end)"
        for q in qemu:
            os.kill(q, signal.SIGKILL)
        os.kill(frozen, signal.SIGCONT)
    elif victim == "virtiofsd":
        if not virtiofsd:
            what += " (no virtiofsd: ran to the end)"
        for v in virtiofsd:
            os.kill(v, signal.SIGKILL)
        os.kill(frozen, signal.SIGCONT)
    elif victim == "guardian":
        for g in guardian:
            os.kill(g, signal.SIGKILL)
        os.kill(frozen, signal.SIGCONT)
    elif victim == "group":
        os.killpg(p.pid, signal.SIGKILL)
    elif victim == "parents":
        for pid in [p.pid, *guardian]:
            os.kill(pid, signal.SIGKILL)
    elif victim == "all":
        for pid in [p.pid, *qemu, *guardian]:
            os.kill(pid, signal.SIGKILL)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return [f"vmlaunch did not exit after {what}"], what
    if victim == "parents":
        # before --cleanup, whose replay would kill it: qemu must already be gone on its own
        deadline = time.monotonic() + 5
        while any(state_of(q) not in (None, "Z") for q in qemu) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [q for q in qemu if state_of(q) not in (None, "Z")]
        if survivors:
            subprocess.run([*inside, VMLAUNCH, "--cleanup", name], capture_output=True, timeout=timeout)
            return [f"qemu {q} outlived vmlaunch and its guardian" for q in survivors], what
    if victim in ("all", "parents"):
        # nothing survived to clean up: that is what --cleanup (ExecStopPost) is for
        r = subprocess.run([*inside, VMLAUNCH, "--cleanup", name], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            return [f"--cleanup failed ({r.returncode}): {r.stderr}"], what
    # the guardian works asynchronously: give it a few seconds
    deadline = time.monotonic() + 15
    left = leftovers(name, zram_before, hugepages_before, netns)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = leftovers(name, zram_before, hugepages_before, netns)
    if snapshot:
        left += snapshot_leftovers(directory)
    # the virtiofsd seen at the kill, whatever its command line says: dead (a zombie is the reaper's business)
    left += [f"virtiofsd {v}" for v in virtiofsd if state_of(v) not in (None, "Z")]
    p.stderr.close()
    if relaunch and not left:
        r = subprocess.run([*inside, VMLAUNCH, str(conf), "--", "true"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            left.append(f"the next launch of {name} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
        left += leftovers(name, zram_before, hugepages_before, netns)
        if snapshot:
            left += snapshot_leftovers(directory)
    return left, what
