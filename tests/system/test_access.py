"""Getting into a running VM: its serial console (vmlaunch --console), readiness for systemd once the guest answers,
and the network and provisioning mistakes a user makes on the way."""
import os
import pty
import select
import subprocess
import time

from conftest import GUEST, STATE_ROOT, VMLAUNCH, vmlaunch


def pty_read_until(fd, needle, timeout=120):
    """Reads from a pty master until `needle` (bytes) appears; returns everything read."""
    got = b""
    deadline = time.monotonic() + timeout
    while needle not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} did not appear; got:\n{got.decode(errors='replace')}")
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side closed
                chunk = b""
            if not chunk:
                raise AssertionError(f"EOF before {needle!r}; got:\n{got.decode(errors='replace')}")
            got += chunk
    return got


def wait_for_file_text(path, needle, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not in {path}:\n{path.read_text(errors='replace') if path.exists() else '-'}")


def test_console_attach_type_detach_and_the_vm_keeps_running(config, tmp_path):
    """A VM started with no terminal (as the systemd unit starts it): its console is logged, reachable on a socket,
    and a detach leaves it running."""
    conf = config("[vm]\nname = contest\n" + GUEST + "append = vmlaunch.interactive=1\n")
    log = STATE_ROOT / "contest" / "console.log"
    with open(tmp_path / "stdout", "wb") as out:
        p = subprocess.Popen([VMLAUNCH, str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE)
    try:
        # the log has the boot output while nobody is attached
        wait_for_file_text(log, "interactive shell on the serial console")
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(VMLAUNCH, [VMLAUNCH, "--console", "contest"])
        pty_read_until(fd, b"Ctrl-] detaches")
        os.write(fd, b"echo typed-$((6*7))\r")
        pty_read_until(fd, b"typed-42")
        os.write(fd, b"\x1d")
        pty_read_until(fd, b"detached from contest's console")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        # detached: the VM still runs, and qemu says so
        st = vmlaunch("--status", "contest")
        assert st.returncode == 0, st.stderr
        assert "status:  running" in st.stdout
        assert p.poll() is None
        text = log.read_text(errors="replace")
        assert "vmlaunch-demo: kernel " in text  # the boot output, from before anyone attached
        assert "typed-42" in text  # and what happened while attached
        # a second attach works after a detach
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(VMLAUNCH, [VMLAUNCH, "--console", "contest"])
        pty_read_until(fd, b"Ctrl-] detaches")
        os.write(fd, b"echo again-$((2+3))\r")
        pty_read_until(fd, b"again-5")
        os.write(fd, b"\x1d")
        os.waitpid(pid, 0)
        os.close(fd)
    finally:
        stop = vmlaunch("--stop", "contest", timeout=120)
        _, err = p.communicate(timeout=120)
    assert stop.returncode == 0, stop.stderr
    # with no terminal and no console-log, the console also went to stdout, as before
    assert "vmlaunch-demo: kernel " in (tmp_path / "stdout").read_text(errors="replace")
    assert not (STATE_ROOT / "contest").exists()


def test_console_of_a_vm_that_is_not_running():
    r = vmlaunch("--console", "nosuchvm")
    assert r.returncode == 1
    assert 'VM "nosuchvm" is not running' in r.stderr
