"""Storage backends on real devices: tmpfs and zram here; brd and LVM where the kernel has them (skipped with the reason
where it does not). Population from raw and qcow2 images, checked from inside the guest and from the host."""
import hashlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import GUEST, QMP, STATE_ROOT, mounts, read_until, start, vmlaunch

PATTERN = b"vmlaunch-pattern"


def write_pattern(doublings=12):
    """Guest shell: the pattern doubled `doublings` times (12: 64 KiB), written at the start of /dev/vda."""
    return ("printf vmlaunch-pattern > /tmp/p; i=0; while [ $i -lt %d ]; do cat /tmp/p /tmp/p > /tmp/q; "
            "mv /tmp/q /tmp/p; i=$((i+1)); done; dd if=/tmp/p of=/dev/vda bs=65536 oflag=direct 2>/dev/null "
            "|| dd if=/tmp/p of=/dev/vda bs=65536 conv=fsync 2>/dev/null; sync; echo written; exec sleep 600"
            % doublings)


PATTERN_LEN = len(PATTERN) << 12  # 64 KiB


def zram_ids():
    return {p.name for p in Path("/sys/block").glob("zram*")}


def meminfo(key):
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def qemu_pid(name):
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and f"{name},debug-threads=on".encode() in Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0"):
                return int(d)
        except OSError:
            pass
    raise AssertionError(f"no qemu for {name}")


def disk_file(name):
    """The host file or device behind each disk. qemu runs as vmlaunch-qemu and opens "/dev/fdset/N", an fd vmlaunch
    opened: the path is what that fd (in qemu's fd set, query-fdsets) points to."""
    q = QMP(STATE_ROOT / name / "qmp.sock")
    try:
        files = {b["qdev"]: b["inserted"]["file"] for b in q.execute("query-block") if b.get("inserted")}
        fdsets = {s["fdset-id"]: s["fds"] for s in q.execute("query-fdsets")}
    finally:
        q.close()
    pid = qemu_pid(name)
    for dev, f in files.items():
        if f.startswith("/dev/fdset/"):
            fds = fdsets[int(f.rsplit("/", 1)[1])]
            files[dev] = os.readlink(f"/proc/{pid}/fd/{fds[0]['fd']}")
    return files


def run_pattern_vm(config, name, disk_section, doublings=12):
    """Boots a VM whose command writes the pattern to /dev/vda and waits; returns (process, path of the disk on the host)."""
    conf = config(f"[vm]\nname = {name}\n" + GUEST + disk_section)
    p = start(conf, "--", "sh", "-c", write_pattern(doublings))
    read_until(p.stdout, "written")
    files = disk_file(name)
    return p, files[f"/machine/peripheral/vblk-d/virtio-backend"]


def stop(p):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=120)
    assert rc == 128 + signal.SIGTERM, p.stderr.read()


def test_tmpfs_pattern_visible_from_host_and_everything_gone_after(config):
    # 32 MiB of pattern (detect-zeroes would turn zeros into holes, so real data), in a 128 MiB sparse disk
    p, path = run_pattern_vm(config, "tmpfsdisk", "[disk d]\nbackend = tmpfs\nsize = 128M\n", doublings=21)
    try:
        shmem_running = meminfo("Shmem")
        used = os.statvfs(os.path.dirname(path))
        assert (used.f_blocks - used.f_bfree) * used.f_frsize >= 32 << 20
        assert path.endswith("/tmpfs-d/disk.raw")
        with open(path, "rb") as f:
            assert f.read(PATTERN_LEN) == PATTERN * (PATTERN_LEN // len(PATTERN))
        assert "/run/vmlaunch/tmpfsdisk/tmpfs-d tmpfs" in mounts()
        # sparse: the 128 MiB disk holds only what the guest wrote
        assert os.stat(path).st_blocks * 512 < 48 << 20
    finally:
        stop(p)
    assert "/run/vmlaunch/tmpfsdisk" not in mounts()
    assert not (STATE_ROOT / "tmpfsdisk").exists()
    # the RAM the disk used is back
    assert meminfo("Shmem") <= shmem_running - (28 << 20)


def test_zram_pattern_visible_from_host_and_device_removed(config):
    before = zram_ids()
    p, path = run_pattern_vm(config, "zramdisk",
                             "[disk d]\nbackend = zram\nsize = 64M\ncomp-algorithm = lzo-rle\n")
    try:
        assert re.fullmatch(r"/dev/zram\d+", path), path
        dev = Path(path).name
        assert dev not in before  # a device vmlaunch made, not one it found
        assert int(Path(f"/sys/block/{dev}/disksize").read_text()) == 64 << 20
        assert "[lzo-rle]" in Path(f"/sys/block/{dev}/comp_algorithm").read_text()
        with open(path, "rb") as f:
            assert f.read(PATTERN_LEN) == PATTERN * (PATTERN_LEN // len(PATTERN))
    finally:
        stop(p)
    assert zram_ids() == before
    assert not (STATE_ROOT / "zramdisk").exists()


def test_zram_full_of_incompressible_data_takes_overwrites(config):
    """A zram disk filled with random data is overwritten whole, twice, without an I/O error: zram allocates an
    overwrite's new object before it frees the old one, so a memory limit of exactly the disk's size would refuse
    every overwrite of a full disk."""
    conf = config("[vm]\nname = zramfull\n" + GUEST + "[disk d]\nbackend = zram\nsize = 16M\n")
    r = vmlaunch(conf, "--", "sh", "-c", "for i in 1 2 3; do dd if=/dev/urandom of=/dev/vda bs=64k count=256 "
                 "conv=fsync 2>/dev/null || exit 7; done; echo overwritten", timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == "overwritten", (r.returncode, r.stdout, r.stderr[-2000:])


def make_source(tmp_path):
    """A sparse 48 MiB raw image with data at scattered, unaligned places (and the last byte), plus a qcow2 copy."""
    raw = tmp_path / "base.raw"
    with open(raw, "wb") as f:
        f.truncate(48 << 20)
        for off, data in ((0, b"boot sector" * 40), (5 << 20, os.urandom(3 << 20)), ((31 << 20) + 4097, b"x" * 7777),
                          ((48 << 20) - 1, b"!")):
            f.seek(off)
            f.write(data)
    qcow2 = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    return raw, qcow2


def digest(path, length):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = length
        while left:
            chunk = f.read(min(left, 1 << 20))
            assert chunk
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


@pytest.mark.parametrize("backend,source", [("tmpfs", "base.qcow2"), ("zram", "base.raw")])
def test_populated_disk_matches_source_in_guest_and_host(config, tmp_path, backend, source):
    raw, _ = make_source(tmp_path)
    want = digest(raw, 48 << 20)
    zero_tail = hashlib.sha256(b"\0" * (16 << 20)).hexdigest()
    conf = config(f"[vm]\nname = pop{backend}\n" + GUEST +
                  f"[disk d]\nbackend = {backend}\nsize = 64M\nsource = {tmp_path / source}\n")
    p = start(conf, "--", "sh", "-c",
              "head -c 50331648 /dev/vda | sha256sum; tail -c 16777216 /dev/vda | sha256sum; echo done; "
              "exec sleep 600")
    try:
        out = read_until(p.stdout, "done")
        sums = re.findall(r"^([0-9a-f]{64})", out, re.M)
        assert sums == [want, zero_tail], out
        path = disk_file(f"pop{backend}")["/machine/peripheral/vblk-d/virtio-backend"]
        assert digest(path, 48 << 20) == want
        if backend == "tmpfs":
            # holes stayed holes: ~3.1 MiB of data, not 48 MiB
            assert os.stat(path).st_blocks * 512 < 8 << 20
    finally:
        stop(p)


def test_source_larger_than_disk_is_refused_before_touching_anything(config, tmp_path):
    raw, _ = make_source(tmp_path)
    before_zram, before_mounts = zram_ids(), mounts()
    conf = config("[vm]\nname = toosmall\n" + GUEST + f"[disk d]\nbackend = zram\nsize = 32M\nsource = {raw}\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2
    assert f"{conf}:10: [disk d] source {raw} is 50331648 bytes (raw), larger than size = 33554432 bytes" in r.stderr
    assert zram_ids() == before_zram and "/run/vmlaunch/toosmall" not in mounts()
    assert not (STATE_ROOT / "toosmall").exists()


def test_failure_halfway_undoes_earlier_disks(config):
    """The second disk fails (zram refuses the algorithm) after the first (a tmpfs mount) was made: both are undone."""
    before_zram, before_mounts = zram_ids(), mounts()
    conf = config("[vm]\nname = halfway\n" + GUEST +
                  "[disk a]\nbackend = tmpfs\nsize = 16M\n[disk b]\nbackend = zram\nsize = 16M\n"
                  "comp-algorithm = no-such-algo\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1
    assert 'disk "b": zram does not offer comp-algorithm "no-such-algo"' in r.stderr
    assert zram_ids() == before_zram
    assert "/run/vmlaunch/halfway" not in mounts()
    assert not (STATE_ROOT / "halfway").exists()


def kernel_has(module):
    if Path(f"/sys/module/{module}").exists():
        return True
    modules = Path(f"/lib/modules/{os.uname().release}")
    return modules.exists() and any(modules.rglob(f"{module}.ko*"))


@pytest.mark.skipif(not kernel_has("brd"), reason="this kernel has no brd module (no /lib/modules/$(uname -r), "
                                                  "not built in): the brd backend cannot be tested here")
def test_brd_pattern_and_unload(config):
    loaded_before = Path("/sys/module/brd").exists()
    if loaded_before:
        pytest.skip("brd is already loaded by someone else; vmlaunch refuses to use it")
    p, path = run_pattern_vm(config, "brddisk", "[disk d]\nbackend = brd\nsize = 64M\n")
    try:
        assert path == "/dev/ram0"
        with open(path, "rb") as f:
            assert f.read(PATTERN_LEN) == PATTERN * (PATTERN_LEN // len(PATTERN))
    finally:
        stop(p)
    assert not Path("/sys/module/brd").exists()


def lvm_usable():
    """The kernel's device-mapper answering (dmsetup opens /dev/mapper/control; the node can exist without it)."""
    return subprocess.run(["sh", "-c", "command -v lvcreate && dmsetup version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not lvm_usable(), reason="no device-mapper in this kernel (/dev/mapper/control) or no lvm2: "
                                             "LVM cannot be tested here; its commands are covered by unit tests")
def test_lvm_on_loop_pv(config, tmp_path):
    img = tmp_path / "pv.img"
    img.write_bytes(b"")
    os.truncate(img, 512 << 20)
    loop = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True,
                          check=True).stdout.strip()
    vg = f"vmltest{os.getpid()}"
    try:
        subprocess.run(["vgcreate", "-s", "4M", vg, loop], check=True, capture_output=True)
        p, path = run_pattern_vm(config, "lvmdisk", f"[disk d]\nbackend = lvm\nvg = {vg}\nsize = 64M\nephemeral = yes\n")
        try:
            assert path == f"/dev/{vg}/vmlaunch-lvmdisk-d"
            with open(path, "rb") as f:
                assert f.read(PATTERN_LEN) == PATTERN * (PATTERN_LEN // len(PATTERN))
        finally:
            stop(p)
        lvs = subprocess.run(["lvs", vg], capture_output=True, text=True).stdout
        assert "vmlaunch-lvmdisk-d" not in lvs
    finally:
        subprocess.run(["vgremove", "-f", vg], capture_output=True)
        subprocess.run(["losetup", "-d", loop])
