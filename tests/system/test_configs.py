"""The shipped configs, each booted where this machine allows; `make install` / `make uninstall`."""
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, STATE_ROOT, VMLAUNCH, netns_links, vmlaunch

CONFIGS = ROOT / "configs"


def test_ci_runner_runs_a_job_in_the_images_userland(tmp_path):
    """As its comment says: the checkout read-only at /src, artifacts back through --share, the image's own make."""
    debian = ROOT / "build" / "images" / "debian12.raw"
    if not debian.exists():
        pytest.skip(f"{debian} is built by make debian-image (make check builds it first)")
    checkout, artifacts = tmp_path / "checkout", tmp_path / "artifacts"
    checkout.mkdir()
    artifacts.mkdir()
    (checkout / "t.c").write_text("int main(void) { return 0; }\n")
    (checkout / "Makefile").write_text("test:\n\tcc -o /tmp/t t.c\n\t/tmp/t\n\tuname -r > /mnt/out/kernel\n\texit 3\n")
    r = vmlaunch("--set", f"share.src.path={checkout}", "--share", f"out={artifacts}:rw", CONFIGS / "ci-runner.conf",
                 "--", "make", "-C", "/src", "test", timeout=600)
    assert r.returncode == 2, r.stdout + r.stderr  # make's own status for the recipe's exit 3
    # the image's userland on the bundled kernel
    bundled = (ROOT / "build" / "guest" / "kernel-version").read_text().strip()
    assert (artifacts / "kernel").read_text().strip() == bundled
    assert "cc -o /tmp/t t.c" in r.stdout
    assert not (STATE_ROOT / "ci-runner").exists()


def test_tiered_memory_guest_sees_two_nodes():
    r = vmlaunch(CONFIGS / "tiered-memory.conf", "--", "sh", "-c", "cat /sys/devices/system/node/node1/meminfo")
    assert r.returncode == 0, r.stderr
    total = int(re.search(r"Node 1 MemTotal:\s+(\d+) kB", r.stdout).group(1))
    assert 250 * 1024 <= total <= 256 * 1024


@pytest.fixture
def public_dir():
    """A directory user nobody can reach (pytest's tmp_path is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix="vmlaunch-test-", dir="/var/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


def test_appliance_makes_its_disk_once_and_keeps_it_on_its_bridge(public_dir, netns):
    """As shipped: a tap on br0 (here in a network namespace of the test's own), a data disk made at first start."""
    img = public_dir / "data.raw"
    run = ["ip", "netns", "exec", netns, VMLAUNCH, str(CONFIGS / "appliance.conf"), "--set", f"disk.data.path={img}"]
    r = subprocess.run(run + ["--", "sh", "-c", "cat /sys/class/net/eth0/address; "
                              "printf kept-across-boots | dd of=/dev/vda conv=fsync 2>/dev/null"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("52:54:00:")
    assert img.stat().st_size == 8 << 30 and img.stat().st_blocks < 1024  # made sparse, 8G as the config says
    r = subprocess.run(run + ["--", "head", "-c", "17", "/dev/vda"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "kept-across-boots"
    assert img.read_bytes()[:17] == b"kept-across-boots"
    assert "vml" not in netns_links(netns)
    # made by vmlaunch, root's alone: qemu (vmlaunch-qemu) is handed it as an open fd, never a chowned file
    assert os.stat(img).st_uid == 0 and os.stat(img).st_mode & 0o777 == 0o600


def test_fedora_plans_hugepages_and_pinning(tmp_path):
    """No Fedora image can be downloaded here: the config is checked through --explain with a stand-in image."""
    img = tmp_path / "fedora.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "1G"], check=True)
    r = vmlaunch("--explain", CONFIGS / "fedora.conf", "--set", f"disk.root.source={img}", "--set", "vm.cpus=1",
                 "--set", "vm.memory=512M")
    assert r.returncode == 0, r.stderr
    assert "memory-backend-memfd,id=ram0,size=512M,hugetlb=on,hugetlbsize=2M,prealloc=on" in r.stdout
    assert "# pin = auto" in r.stdout
    assert "virtio-blk-pci,id=vblk-root" in r.stdout


def test_every_config_parses():
    for conf in sorted(CONFIGS.glob("*.conf")):
        if conf.name in ("rbd.conf",):
            continue  # needs a cluster: tests/system/test_rbd.py boots it against the test cluster
        r = vmlaunch("--dry-run", conf, "--set", "vm.cpus=2" if conf.name == "ci-runner.conf"
                     else "vm.cpus=1")
        # a placeholder image path is the only acceptable complaint
        assert r.returncode == 0 or "/var/lib/vmlaunch/" in r.stderr, (conf, r.stderr)


def test_install_and_uninstall(public_dir):
    dest = public_dir / "root"  # where qemu's own user (vmlaunch-qemu) can read the installed guest
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr/local"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    prefix = dest / "usr" / "local"
    for rel in ("bin/vmlaunch", "share/vmlaunch/vmlinux", "share/vmlaunch/initramfs.cpio.gz",
                "share/man/man1/vmlaunch.1", "share/man/man5/vmlaunch.conf.5", "lib/systemd/system/vmlaunch@.service",
                "share/bash-completion/completions/vmlaunch", "share/doc/vmlaunch/examples/demo.conf"):
        assert (prefix / rel).exists(), rel
    unit = (prefix / "lib/systemd/system/vmlaunch@.service").read_text()
    assert "ExecStart=/usr/local/bin/vmlaunch /etc/vmlaunch/%i.conf" in unit
    assert "ExecStopPost=/usr/local/bin/vmlaunch --cleanup %i" in unit
    assert "KillMode=mixed" in unit and "Type=notify" in unit
    # Where the shipped configs' comments say to put them: /etc/vmlaunch. `bundled` is the installed guest, found from
    # the installed binary, so the copies work as they are.
    etc = dest / "etc" / "vmlaunch"
    etc.mkdir(parents=True)
    for name in ("appliance.conf", "demo.conf"):
        shutil.copy(prefix / "share/doc/vmlaunch/examples" / name, etc / name)
    installed = prefix / "bin" / "vmlaunch"
    r = subprocess.run([installed, "--dry-run", etc / "appliance.conf"], capture_output=True, text=True)
    if not Path("/var/lib/vmlaunch").is_dir():  # its data disk's directory, named by the config: a mistake (2)
        assert r.returncode == 2
        assert "no directory /var/lib/vmlaunch to make it in; expected an existing directory (mkdir -p " \
               "/var/lib/vmlaunch)" in r.stderr
        r = subprocess.run([installed, "--dry-run", etc / "appliance.conf", "--set",
                            f"disk.data.path={public_dir}/data.raw"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    argv = r.stdout.splitlines()
    assert argv[argv.index("-kernel") + 1] == str(prefix / "share/vmlaunch/vmlinux")
    assert argv[argv.index("-initrd") + 1] == str(prefix / "share/vmlaunch/initramfs.cpio.gz")
    r = subprocess.run([installed, etc / "demo.conf", "--", "cat", "/proc/cmdline"], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    assert "console=ttyS0" in r.stdout
    shutil.rmtree(dest / "etc")
    r = subprocess.run([installed, "--dry-run"], capture_output=True, text=True)  # no CONFIG: the installed demo
    assert r.returncode == 0, r.stderr
    assert f"vmlaunch: no CONFIG given: using the embedded default, {prefix}/share/vmlaunch/demo.conf" in r.stderr
    r = subprocess.run(["make", "-s", "uninstall", f"DESTDIR={dest}", "PREFIX=/usr/local"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert [p for p in dest.rglob("*") if p.is_file()] == []
