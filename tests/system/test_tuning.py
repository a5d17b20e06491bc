"""Host tuning read back from /proc while the guest runs: pinning, tcmalloc, capabilities, hugepages, memory tiers."""
import os
import pwd
import re
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from conftest import GUEST, STATE_ROOT, read_until, start, vmlaunch


def meminfo(key):
    return int(re.search(rf"^{key}:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1))


def qemu_pid(name):
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if f"{name},debug-threads=on".encode() in (p / "cmdline").read_bytes().split(b"\0"):
                    return int(p.name)
            except OSError:
                pass
    raise AssertionError(f"no qemu for {name}")


def threads(pid):
    """{thread name: Cpus_allowed_list} for every thread of qemu."""
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        comm = (t / "comm").read_text().strip()
        allowed = re.search(r"^Cpus_allowed_list:\s+(\S+)", (t / "status").read_text(), re.M).group(1)
        out.setdefault(comm, set()).add(allowed)
    return out


def status_field(pid, field):
    return re.search(rf"^{field}:\s+(.*)$", Path(f"/proc/{pid}/status").read_text(), re.M).group(1)


def online_cpus():
    return os.sched_getaffinity(0)


def test_pinning_tcmalloc_caps_and_hugepages(config):
    assert len(online_cpus()) >= 2, "needs two CPUs"
    hp_before = meminfo("HugePages_Total")
    conf = config("[vm]\nname = tuned\ncpus = 1\nmemory = 128M\n[memory]\nhugepages = 2M\n" + GUEST +
                  "[disk d]\nbackend = tmpfs\nsize = 16M\n")
    p = start(conf, "--", "sh", "-c", "echo up; exec sleep 600")
    try:
        read_until(p.stdout, "up")
        pid = qemu_pid("tuned")
        names = threads(pid)
        cpus = sorted(online_cpus())
        # pin = auto on one node: vCPU 0 on the first CPU, the iothread on the next, the rest of qemu with it
        assert names["CPU 0/TCG"] == {str(cpus[0])}, names
        assert names["IO io-d"] == {str(cpus[1])}, names
        assert names["qemu-system-x86"] == {str(cpus[1])}, names
        # tcmalloc preloaded into qemu, not into vmlaunch
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libtcmalloc" in maps
        assert "libtcmalloc" not in Path(f"/proc/{p.pid}/maps").read_text()
        # no capabilities at all, no way to gain them
        for field in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            assert int(status_field(pid, field), 16) == 0, field
        assert status_field(pid, "NoNewPrivs") == "1"
        # 128 MiB of 2 MiB pages, reserved exactly
        assert meminfo("HugePages_Total") == hp_before + 64
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
    assert meminfo("HugePages_Total") == hp_before
    assert not (STATE_ROOT / "tuned").exists()


def test_hugepages_given_back_after_failed_start(config):
    hp_before = meminfo("HugePages_Total")
    conf = config("[vm]\nname = hpfail\nmemory = 64M\n[memory]\nhugepages = 2M\n" + GUEST +
                  "[qemu]\nextra = -no-such-option\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1
    assert meminfo("HugePages_Total") == hp_before


def test_hugepages_too_many_is_refused_and_nothing_reserved(config):
    hp_before = meminfo("HugePages_Total")
    total_kib = meminfo("MemTotal")
    too_much = (total_kib // 1024 // 1024 + 8)  # GiB beyond the machine's RAM
    conf = config(f"[vm]\nname = hpbig\nmemory = {too_much}G\n[memory]\nhugepages = 2M\n[cpu]\npin = off\n" + GUEST)
    r = vmlaunch(conf, "--", "true")
    # more than the host's RAM is refused by the plan, with the numbers, before anything is reserved (the reserve's
    # own check, for a kernel that finds fewer pages than MemAvailable promised, stays behind it)
    assert r.returncode == 2, r.stderr
    assert "this host has" in r.stderr and "MemTotal" in r.stderr
    assert meminfo("HugePages_Total") == hp_before


def test_explicit_pin_list(config):
    cpus = sorted(online_cpus())
    conf = config(f"[vm]\nname = pinned\ncpus = 1\n[cpu]\npin = {cpus[-1]}\niothreads = {cpus[0]}\n"
                  f"emulator = {cpus[0]}\n" + GUEST + "[disk d]\nbackend = tmpfs\nsize = 16M\n")
    p = start(conf, "--", "sh", "-c", "echo up; exec sleep 600")
    try:
        read_until(p.stdout, "up")
        names = threads(qemu_pid("pinned"))
        assert names["CPU 0/TCG"] == {str(cpus[-1])}
        assert names["IO io-d"] == {str(cpus[0])}
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)


def test_pin_list_beyond_host_is_config_error(config):
    conf = config("[vm]\nname = badpin\ncpus = 1\n[cpu]\npin = 4000\n" + GUEST)
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2
    assert f"{conf}:5: [cpu] pin: host CPU 4000 is not online or not allowed to vmlaunch" in r.stderr


def test_runs_as_user_with_no_caps(config):
    nobody = pwd.getpwnam("nobody")
    conf = config("[vm]\nname = asuser\n[qemu]\nuser = nobody\n" + GUEST + "[disk d]\nbackend = zram\nsize = 16M\n")
    p = start(conf, "--", "sh", "-c", "dd if=/dev/vda of=/dev/null bs=64k count=4 2>/dev/null && echo up; "
                                      "exec sleep 600")
    try:
        read_until(p.stdout, "up")
        pid = qemu_pid("asuser")
        assert status_field(pid, "Uid").split()[0] == str(nobody.pw_uid)
        assert int(status_field(pid, "CapEff"), 16) == 0 and int(status_field(pid, "CapBnd"), 16) == 0
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
    assert not (STATE_ROOT / "asuser").exists()


def test_memory_tier_is_a_guest_numa_node(config, qemu_user):
    # qemu (vmlaunch-qemu) makes its backing file there itself: a directory its user may write, as the operator
    # grants one (pytest's tmp_path is root's alone)
    tier_dir = Path(tempfile.mkdtemp(prefix="vmlaunch-tier-", dir="/var/tmp"))
    user = pwd.getpwnam(qemu_user)
    os.chown(tier_dir, user.pw_uid, user.pw_gid)
    try:
        check_tier(config, tier_dir)
    finally:
        shutil.rmtree(tier_dir, ignore_errors=True)


def check_tier(config, tier_dir):
    conf = config("[vm]\nname = tiered\nmemory = 256M\n" + GUEST +
                  f"[memory tier slow]\nbackend = file\npath = {tier_dir}\nsize = 64M\n")
    r = vmlaunch(conf, "--", "sh", "-c", "cat /sys/devices/system/node/node1/meminfo; ls /sys/devices/system/node")
    assert r.returncode == 0, r.stderr
    total = int(re.search(r"Node 1 MemTotal:\s+(\d+) kB", r.stdout).group(1))
    assert 60 * 1024 <= total <= 64 * 1024, r.stdout  # the kernel keeps a little for itself
    assert "node0" in r.stdout and "node1" in r.stdout
    # qemu made its backing file in the directory and unlinked it: nothing left behind
    assert list(tier_dir.iterdir()) == []


CLOCKSOURCE = "/sys/devices/system/clocksource/clocksource0/current_clocksource"  # the host's and the guest's


def host_clocksource():
    return Path(CLOCKSOURCE).read_text().strip()


def host_tsc_invariant():
    """constant_tsc and nonstop_tsc among the host CPU's flags: its TSC ticks at one rate."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            return "constant_tsc" in flags and "nonstop_tsc" in flags
    return False


def test_tcg_guest_keeps_time_with_the_tsc_unless_told_otherwise(config):
    """Under TCG a guest with 2+ vCPUs would distrust its TSC (no invariant-TSC bit) and read the emulated HPET at
    every clock read; vmlaunch tells it the TSC is reliable when the host's TSC is invariant or the host keeps time
    with it (qemu's TCG TSC is the host's, never going back). A clocksource= of the user's own wins."""
    vm = "[vm]\nname = clk\ncpus = 2\n" + GUEST
    probe = vmlaunch("--dry-run", config(vm), "--", "true")
    assert probe.returncode == 0, probe.stderr
    if "accel=kvm" in probe.stdout:
        pytest.skip("KVM works here: the guest gets kvmclock, and vmlaunch leaves its clock alone")
    if host_clocksource() != "tsc" and not host_tsc_invariant():
        assert "tsc=reliable" not in probe.stdout
        pytest.skip(f"the host keeps time with {host_clocksource()} and its CPU shows no invariant TSC: "
                    "vmlaunch must not add tsc=reliable (checked in the dry run only)")
    r = vmlaunch(config(vm), "--", "sh", "-c", f"cat {CLOCKSOURCE} /proc/cmdline")
    assert r.returncode == 0, r.stderr
    # tsc-early: the same counter, before the kernel's refined calibration (about 1 s after boot) renames it
    assert r.stdout.splitlines()[0] in ("tsc", "tsc-early"), r.stdout
    assert " tsc=reliable" in r.stdout.splitlines()[1]
    r = vmlaunch(config(vm + "append = clocksource=hpet\n"), "--", "cat", CLOCKSOURCE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hpet"


def test_tcg_guest_gets_a_poll_queue_through_the_bundled_init(config):
    """Under TCG with 2+ vCPUs vmlaunch asks for one virtio-blk poll queue (virtio_blk.poll_queues=1), and the bundled
    init passes MODULE.PARAM words to insmod as modprobe would: the guest's disk then has a polled queue and one
    interrupt queue instead of two."""
    vm = "[vm]\nname = pq\ncpus = 2\n" + GUEST + "[disk d]\nbackend = tmpfs\nsize = 16M\n"
    probe = vmlaunch("--dry-run", config(vm), "--", "true")
    assert probe.returncode == 0, probe.stderr
    if "accel=kvm" in probe.stdout:
        pytest.skip("KVM works here: interrupts are cheap, and vmlaunch leaves virtio_blk's queues alone")
    assert " virtio_blk.poll_queues=1" in probe.stdout
    r = vmlaunch(config(vm), "--", "sh", "-c", "cat /sys/module/virtio_blk/parameters/poll_queues "
                 "/sys/block/vda/queue/io_poll; ls /sys/block/vda/mq; grep -c 'virtio.-req\\.' /proc/interrupts")
    assert r.returncode == 0, r.stderr
    poll_queues, io_poll, *rest = r.stdout.split()
    assert (poll_queues, io_poll) == ("1", "1"), r.stdout
    assert rest == ["0", "1", "1"], r.stdout  # two hardware queues; one of them raises interrupts
