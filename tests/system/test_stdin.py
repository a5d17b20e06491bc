"""The guest command's stdin (its own virtio-serial port, EOF included) and an interactive terminal: a pty in the
guest, the host's terminal raw while the command runs and exactly as it was afterwards. Stdin through
qemu-guest-agent is in test_guest.py's agent test (one firmware boot for both)."""
import fcntl
import hashlib
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

from conftest import GUEST, STATE_ROOT, VMLAUNCH, vmlaunch
from test_guest import debian_conf, debian_image  # noqa: F401 (a fixture)


def guest_conf(config, name):
    return config(f"[vm]\nname = {name}\n" + GUEST)


def test_piped_stdin_reaches_the_command_and_ends_with_eof(config):
    conf = guest_conf(config, "stdin-eof")
    # cat only ends at EOF; read + cat shows that lines arrive in order and nothing is lost or repeated
    r = vmlaunch(conf, "--", "sh", "-c", 'read first; echo "first=$first"; cat; echo end', input="x\ny\nz\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "first=x\ny\nz\nend\n"


def test_large_stdin_arrives_complete(config):
    data = os.urandom(10 << 20)
    conf = guest_conf(config, "stdin-big")
    # through a pipe, as `producer | vmlaunch` gives it: no size known in advance
    r = subprocess.run([VMLAUNCH, str(conf), "--", "sha256sum"], input=data, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_command_that_does_not_read_stdin_is_not_blocked_by_it(config):
    """An endless stdin (yes) and a command that never reads it: the command's status comes back all the same."""
    conf = guest_conf(config, "stdin-unread")
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        r = subprocess.run([VMLAUNCH, str(conf), "--", "sh", "-c", "echo ran; exit 7"], stdin=yes.stdout,
                           capture_output=True, text=True, timeout=180)
    finally:
        yes.kill()
        yes.wait()
    assert r.returncode == 7, r.stderr
    assert r.stdout == "ran\n"


def test_stdin_from_dev_null_or_closed_is_an_empty_input(config):
    conf = guest_conf(config, "stdin-none")
    r = vmlaunch(conf, "--", "sh", "-c", "wc -c; echo done", stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "done"]
    # fd 0 closed: nothing vmlaunch opens may land on it and be taken for the command's input
    r = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", VMLAUNCH, str(conf), "--", "sh", "-c", "wc -c; echo done"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "done"]
    assert not (STATE_ROOT / "stdin-none").exists()


def test_stdin_in_the_images_userland(config, debian_image):  # noqa: F811
    conf = debian_conf(config, "deb-stdin", debian_image)
    data = os.urandom(1 << 20)
    r = subprocess.run([VMLAUNCH, str(conf), "--", "sh", "-c", "sha256sum; test -t 0 || echo not-a-tty"],
                       input=data, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    assert r.stdout.split()[-1] == b"not-a-tty"


class Terminal:
    """vmlaunch on a pty of its own, as a person at a terminal runs it: stdin, stdout and stderr on the pty."""

    def __init__(self, *args, rows=33, cols=111):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.modes = termios.tcgetattr(self.slave)
        self.output = b""
        self.proc = subprocess.Popen([VMLAUNCH, *map(str, args)], stdin=self.slave, stdout=self.slave,
                                     stderr=self.slave, start_new_session=True, env={**os.environ, "TERM": "xterm"},
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))

    def read_until(self, needle, timeout=120):
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} did not appear; got:\n{self.output!r}")
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # EIO: every holder of the terminal's other end is gone
                    raise AssertionError(f"{needle!r} did not appear; got:\n{self.output!r}")
        return self.output

    def type(self, text):
        os.write(self.master, text)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def test_terminal_gets_a_pty_with_raw_mode_window_size_and_ctrl_c(config):
    conf = guest_conf(config, "stdin-tty")
    term = Terminal(conf, "--", "sh")
    try:
        term.read_until(b"# ")  # busybox sh's prompt: it found a terminal on its stdin
        modes = termios.tcgetattr(term.slave)
        lflag = modes[3]
        assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG), "the host terminal is not raw"
        assert not modes[1] & termios.OPOST
        term.type(b"tty; stty size; echo $TERM; echo $((6*7))\r")
        out = term.read_until(b"42\r\n")
        assert re.search(rb"\r\n/dev/pts/[0-9]+\r\n", out), out
        assert b"\r\n33 111\r\n" in out  # the window size came along
        assert b"\r\nxterm\r\n" in out
        # resized while it runs (the kernel sends vmlaunch SIGWINCH, as for a terminal emulator's window): the
        # guest's pty follows
        fcntl.ioctl(term.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        time.sleep(1)
        term.type(b"stty size\r")
        term.read_until(b"\r\n40 120\r\n")
        # Ctrl-C is a byte for the guest's pty: it stops the guest's sleep, not vmlaunch
        term.type(b"sleep 300\r")
        time.sleep(3)
        term.type(b"\x03")
        term.type(b"echo alive-after-ctrl-c; exit 3\r")
        term.read_until(b"alive-after-ctrl-c\r\n")
        assert term.proc.wait(timeout=120) == 3
        assert termios.tcgetattr(term.slave) == term.modes, "the terminal's modes were not restored"
    finally:
        term.close()
    assert not (STATE_ROOT / "stdin-tty").exists()


def test_terminal_in_the_images_userland(config, debian_image):  # noqa: F811
    """The image's bash on a pty of the image's own devpts, as the image's user."""
    conf = debian_conf(config, "deb-tty", debian_image)
    term = Terminal("--set", "vm.command-user=nobody", conf, "--", "bash", "--norc", "-i")
    try:
        term.read_until(b"$ ")
        term.type(b"tty; id -un; echo $((6*7)); exit 3\r")
        out = term.read_until(b"42\r\n")
        assert re.search(rb"\r/dev/pts/[0-9]+\r\nnobody\r\n", out), out  # after bash's bracketed-paste mode off
        assert term.proc.wait(timeout=120) == 3
        assert termios.tcgetattr(term.slave) == term.modes
    finally:
        term.close()


def test_stdin_over_the_agents_bound_is_refused_in_bounded_time(config, tmp_path):
    """More than guest-exec is given at once: said, and the VM stopped, whether or not an agent ever answers."""
    loop = tmp_path / "loop.raw"  # a boot sector that only loops (jmp $): something to boot, no agent ever
    loop.write_bytes(b"\xeb\xfe" + bytes(508) + b"\x55\xaa" + bytes((1 << 20) - 512))
    conf = config("[vm]\nname = qga-big\nagent-timeout = 600\n[boot]\nfirmware = bios\n"
                  f"[disk loop]\nbackend = file\npath = {loop}\nformat = raw\n")
    t0 = time.monotonic()
    r = subprocess.run([VMLAUNCH, str(conf), "--", "cat"], input=b"\0" * (17 << 20), capture_output=True,
                       timeout=300)
    assert r.returncode == 125, r.stderr
    assert b"stdin is larger than 16 MiB" in r.stderr
    assert time.monotonic() - t0 < 120  # not the agent-timeout
    assert not (STATE_ROOT / "qga-big").exists()


def test_terminal_restored_when_vmlaunch_is_killed(config):
    """SIGKILL leaves vmlaunch no chance to restore its raw terminal: the guardian does, as it undoes the rest."""
    conf = guest_conf(config, "stdin-tty-kill")
    term = Terminal(conf, "--", "sh")
    try:
        term.read_until(b"# ")
        assert not termios.tcgetattr(term.slave)[3] & termios.ICANON
        term.proc.kill()
        term.proc.wait()
        deadline = time.monotonic() + 60
        while termios.tcgetattr(term.slave) != term.modes and time.monotonic() < deadline:
            time.sleep(0.2)
        assert termios.tcgetattr(term.slave) == term.modes, "the terminal was left raw"
        while (STATE_ROOT / "stdin-tty-kill").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not (STATE_ROOT / "stdin-tty-kill").exists()
    finally:
        term.close()
