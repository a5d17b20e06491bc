"""Hardening (#19): names from the command line, forged journals, qemu's user, source images' backing files."""
import fcntl
import os
import pwd
import subprocess
import tempfile

import pytest

from conftest import VMLAUNCH, vmlaunch


def as_nobody_with_root(base):
    """vmlaunch as an unprivileged user keeps its state under $XDG_RUNTIME_DIR/vmlaunch: a base directory of the
    test's own, so a vmlaunch that misbehaves cannot touch another VM's /run/vmlaunch entries."""
    nobody = pwd.getpwnam("nobody")
    os.chown(base, nobody.pw_uid, nobody.pw_gid)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(base))

    def run(*args):
        return subprocess.run([VMLAUNCH, *args], capture_output=True, text=True, timeout=60, env=env,
                              user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    return run, nobody


@pytest.mark.parametrize("name", ["", ".", "..", "x.lock", "a/b"])
def test_cleanup_and_status_refuse_what_is_not_a_vm_name(name):
    base = tempfile.mkdtemp(prefix="vmlaunch-names-")
    os.chmod(base, 0o755)
    run, nobody = as_nobody_with_root(base)
    root = os.path.join(base, "vmlaunch")
    os.mkdir(root, 0o755)
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    # another VM's lock, held the whole time, and a leftover state dir beside it
    lock = os.path.join(root, "other.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchown(fd, nobody.pw_uid, nobody.pw_gid)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = run("--cleanup", name)
        assert r.returncode == 2, r.stderr
        assert "expected a VM name" in r.stderr
        r = run("--status", name)
        assert r.returncode == 2, r.stderr
        assert "expected a VM name" in r.stderr
        assert os.path.exists(lock) and os.path.isdir(root)
        # --cleanup of every VM waits for a held lock and never removes it
        r = run("--cleanup", "--wait", "0")
        assert os.path.exists(lock), r.stderr
    finally:
        os.close(fd)
        subprocess.run(["rm", "-rf", base])
