"""Faults: each gives a clear error and the documented exit status, and leaves nothing behind."""
import os
import re
import subprocess

import killmatrix
from conftest import GUEST, STATE_ROOT, mounts, vmlaunch

DISKS = "[disk a]\nbackend = tmpfs\nsize = 16M\n[disk b]\nbackend = zram\nsize = 16M\n"


def assert_clean(name, zram_before, mounts_before):
    assert killmatrix.leftovers(name, zram_before) == []
    # only this VM's mounts: other VMs may come and go meanwhile
    assert [m for m in mounts().splitlines() if f"/run/vmlaunch/{name}" in m] == []


def test_config_writable_by_others_is_refused_as_root(config):
    conf = config("[vm]\nname = unsafe\n" + GUEST)
    os.chmod(conf, 0o666)
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2
    assert f"vmlaunch: {conf}: writable by a user other than root" in r.stderr
    os.chmod(conf, 0o644)
    os.chown(conf, 65534, 65534)
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2 and "writable by a user other than root" in r.stderr


def test_qemu_binary_missing(config):
    """A path the config names that does not exist is the config's mistake (2); a name not in $PATH is the host's (1)."""
    z, m = killmatrix.zram_devices(), mounts()
    conf = config("[vm]\nname = noqemu\n" + GUEST + DISKS + "[qemu]\nbinary = /nonexistent/qemu\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2, r.stderr
    assert re.search(r"\.conf:\d+: \[qemu\] binary /nonexistent/qemu: No such file or directory", r.stderr), r.stderr
    assert_clean("noqemu", z, m)
    conf = config("[vm]\nname = noqemu\n" + GUEST + DISKS + "[qemu]\nbinary = no-such-qemu-system\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1, r.stderr
    assert 'qemu binary "no-such-qemu-system" not found' in r.stderr
    assert_clean("noqemu", z, m)


def test_qemu_exits_immediately_everything_undone(config):
    z, m = killmatrix.zram_devices(), mounts()
    conf = config("[vm]\nname = qemufails\n" + GUEST + DISKS + "[qemu]\nextra = -no-such-option\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1
    assert "-no-such-option" in r.stderr  # qemu's own words
    assert "qemu exited with status 1 before the VM started" in r.stderr
    assert_clean("qemufails", z, m)


def test_population_failure_undoes_everything(config, tmp_path):
    """A qcow2 whose header is fine but whose first L2 entry is corrupt: qemu-img info accepts it, the copy fails."""
    good = tmp_path / "good.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(good), "8M"], check=True)
    raw = tmp_path / "data.raw"
    raw.write_bytes(os.urandom(4 << 20))
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(good)], check=True)
    broken = tmp_path / "broken.qcow2"
    data = bytearray(good.read_bytes())
    l1 = int.from_bytes(data[40:48], "big")
    l2 = int.from_bytes(data[l1:l1 + 8], "big") & 0x00FFFFFFFFFFFE00
    data[l2:l2 + 8] = ((1 << 63) | 0x1234).to_bytes(8, "big")  # an unaligned cluster offset
    broken.write_bytes(bytes(data))
    z, m = killmatrix.zram_devices(), mounts()
    conf = config("[vm]\nname = popfails\n" + GUEST + DISKS + f"[disk c]\nbackend = zram\nsize = 16M\nsource = {broken}\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1, r.stderr
    assert "qemu-img" in r.stderr
    assert_clean("popfails", z, m)
    assert not (STATE_ROOT / "popfails").exists()
