"""Shared helpers for the system tests: they run the real vmlaunch (the sanitized build) and boot real guests."""
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VMLAUNCH = os.environ.get("VMLAUNCH", str(ROOT / "build" / "vmlaunch"))
STATE_ROOT = Path("/run/vmlaunch")
DEMO = ROOT / "configs" / "demo.conf"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vmlaunch(*args, **kw):
    """Runs vmlaunch to completion; returns the CompletedProcess (text mode). Its stdin is /dev/null unless given: the
    guest command reads vmlaunch's stdin, which must not be whatever pytest was started with."""
    kw.setdefault("timeout", 180)
    if "input" not in kw:
        kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([VMLAUNCH, *map(str, args)], capture_output=True, text=True, **kw)


def start(*args, **kw):
    """Starts vmlaunch in the background with piped output."""
    return subprocess.Popen([VMLAUNCH, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, **kw)


def read_until(stream, needle, timeout=120):
    """Reads lines from a pipe until one contains `needle`; returns everything read."""
    seen = []
    deadline = time.monotonic() + timeout
    os.set_blocking(stream.fileno(), True)
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} did not appear; got:\n{''.join(seen)}")


class QMP:
    """A minimal QMP client for asserting what qemu really runs."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.file = self.sock.makefile("rw")
        json.loads(self.file.readline())  # greeting
        self.execute("qmp_capabilities")

    def execute(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"QMP {cmd}: {reply['error']}")
            return reply["return"]

    def close(self):
        self.file.close()
        self.sock.close()


QEMU_USER = "vmlaunch-qemu"


@pytest.fixture(scope="session", autouse=True)
def qemu_user():
    """vmlaunch runs qemu as this system user unless a config says otherwise (make deps creates it; so does this)."""
    if subprocess.run(["id", "-u", QEMU_USER], capture_output=True).returncode != 0:
        groups = ["--groups", "kvm"] if subprocess.run(["getent", "group", "kvm"], capture_output=True).returncode == 0 else []
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", *groups, QEMU_USER], check=True)
    return QEMU_USER


def mounts():
    return Path("/proc/self/mounts").read_text()


@pytest.fixture
def netns():
    """A network namespace of this test's own with a bridge at 192.168.77.1/24: no traffic leaves it."""
    name = f"vmlt{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "br0", "type", "bridge"],
                    ["ip", "link", "set", "br0", "up"], ["ip", "addr", "add", "192.168.77.1/24", "dev", "br0"]):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def netns_links(ns):
    return subprocess.run(["ip", "netns", "exec", ns, "ip", "-br", "link"], capture_output=True, text=True).stdout


@pytest.fixture
def config(tmp_path):
    """Writes a config next to the bundled guest's files (paths absolute) and returns its path."""

    def make(text, name="t.conf"):
        path = tmp_path / name
        path.write_text(text.replace("@BUILD@", str(ROOT / "build")))
        return path

    return make


GUEST = """
[boot]
kernel = @BUILD@/vmlinux
initrd = @BUILD@/initramfs.cpio.gz
append = quiet cryptomgr.notests
"""


@pytest.fixture(scope="session")
def ceph():
    """The throwaway Ceph cluster (ceph_cluster.py), started once per session for every module that asks for it."""
    import ceph_cluster  # noqa: PLC0415 (rados is imported only by sessions that need a cluster)
    yield from ceph_cluster.cluster()
