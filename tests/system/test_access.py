"""Getting into a running VM: its serial console (vmlaunch --console), readiness for systemd once the guest answers,
and the network and provisioning mistakes a user makes on the way."""
import os
import pty
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import GUEST, STATE_ROOT, VMLAUNCH, free_port, vmlaunch


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


def attach_type_detach(name, line, expect):
    """vmlaunch --console NAME on a pty: types LINE, waits for EXPECT, detaches with Ctrl-]; vmlaunch says so and
    exits 0."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(VMLAUNCH, [VMLAUNCH, "--console", name])
    try:
        pty_read_until(fd, b"Ctrl-] detaches")
        os.write(fd, line + b"\r")
        pty_read_until(fd, expect)
        os.write(fd, b"\x1d")
        pty_read_until(fd, f"detached from {name}'s console".encode())
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


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
        attach_type_detach("contest", b"echo typed-$((6*7))", b"typed-42")
        # detached: the VM still runs, and qemu says so
        st = vmlaunch("--status", "contest")
        assert st.returncode == 0, st.stderr
        assert "status:  running" in st.stdout
        assert p.poll() is None
        text = log.read_text(errors="replace")
        assert "vmlaunch-demo: kernel " in text  # the boot output, from before anyone attached
        assert "typed-42" in text  # and what happened while attached
        # a second attach works after a detach
        attach_type_detach("contest", b"echo again-$((2+3))", b"again-5")
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


def datagrams(sock):
    """Every datagram the notify socket holds now."""
    got = []
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            return got


def test_ready_only_once_ssh_answers_through_the_forward(config, tmp_path):
    """systemd's READY=1 comes when the guest's port 22 gives an SSH banner through the forward, not when qemu starts;
    STATUS= lines say what vmlaunch waits for meanwhile. The guest serves the banner only after a pause, then to
    every connection, as sshd does (a probe attempt given up under load is followed by another)."""
    port = free_port()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    conf = config("[vm]\nname = readyssh\n" + GUEST + f"[net n0]\nforward = tcp:{port}-:22\nrestrict = yes\n")
    p = subprocess.Popen([VMLAUNCH, str(conf), "--", "sh", "-c",
                          "sleep 4; echo serving; "
                          "while :; do printf 'SSH-2.0-guest\\r\\n' | nc -l -p 22; echo served; done"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        assert p.stdout.readline() == "serving\n", p.stderr.read() if p.poll() is not None else ""
        before = datagrams(notify)
        # the guest has run for seconds (it printed), but its port 22 has not answered: not ready yet
        assert not any("READY=1" in d for d in before), before
        assert any("STATUS=readyssh: waiting for ssh on 127.0.0.1:%d" % port in d for d in before), before
        assert p.stdout.readline() == "served\n"  # vmlaunch's probe read the banner
        deadline = time.monotonic() + 30
        after = []
        while time.monotonic() < deadline and not any("READY=1" in d for d in after):
            after += datagrams(notify)
            time.sleep(0.1)
        ready = [d for d in after if "READY=1" in d]
        assert ready and f"ssh answered on 127.0.0.1:{port}" in ready[0], after
    finally:
        p.terminate()
        p.communicate(timeout=120)
        notify.close()
    assert not (STATE_ROOT / "readyssh").exists()


def nothing_left(name):
    return not (STATE_ROOT / name).exists() and not (STATE_ROOT / f"{name}.lock").exists() and \
        f"/run/vmlaunch/{name}" not in open("/proc/self/mounts").read()


def test_forward_port_in_use_is_refused_before_anything_is_made(config):
    """A host problem, said before qemu starts: exit 1 naming the port and the forward; no disk made, no state dir."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        conf = config("[vm]\nname = fwdbusy\n" + GUEST + "[disk d]\nbackend = tmpfs\nsize = 16M\n"
                      f"[net n0]\nforward = tcp:{port}-:22\n")
        r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1, r.stderr
    assert f"{conf}:12: [net n0] forward tcp:127.0.0.1:{port}-:22: port {port} on 127.0.0.1 is in use" in r.stderr
    assert f"tcp:{port}+-:22 for the first free port" in r.stderr
    assert "qemu" not in r.stderr  # refused before qemu, not by it
    assert nothing_left("fwdbusy")


def test_first_free_port_is_taken_printed_and_used_by_ssh(config):
    """forward = tcp:PORT+-:22 when PORT is taken: the next free one, printed, is the one qemu forwards and the one
    vmlaunch --ssh reads from the state dir."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        conf = config("[vm]\nname = fwdfree\n" + GUEST + f"[net n0]\nforward = tcp:{port}+-:22\nrestrict = yes\n")
        p = subprocess.Popen([VMLAUNCH, str(conf), "--", "sh", "-c", "echo pong | nc -l -p 22; exec sleep 600"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stderr.readline()
            assert "[net n0] forward tcp 127.0.0.1:" in line and "(the ports before it are in use)" in line, line
            used = int(line.split("127.0.0.1:")[1].split()[0])
            assert used > port
            deadline = time.monotonic() + 120
            while not (STATE_ROOT / "fwdfree" / "info").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            info = (STATE_ROOT / "fwdfree" / "info").read_text()
            assert f"ssh 127.0.0.1 {used} " in info  # what vmlaunch --ssh connects to
            got = b""
            while time.monotonic() < deadline and got != b"pong\n":
                try:
                    with socket.create_connection(("127.0.0.1", used), timeout=2) as s:
                        s.settimeout(5)
                        got = s.recv(100)
                except OSError:
                    time.sleep(0.5)
            assert got == b"pong\n"  # the guest's port 22, through the port that was printed
        finally:
            p.terminate()
            p.communicate(timeout=120)
    assert nothing_left("fwdfree")


def test_unreadable_or_private_ssh_key_is_a_config_error(config, tmp_path):
    keydir = tmp_path / "keys"
    keydir.mkdir()
    conf = config("[vm]\nname = badkey\n" + GUEST + f"[cloud-init]\nssh-key = {keydir}\n")
    r = vmlaunch(conf)
    assert r.returncode == 2, r.stderr
    assert f"{conf}:9: [cloud-init] ssh-key {keydir}: Is a directory; expected a readable public key file" in r.stderr
    private = tmp_path / "id_test"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private)], check=True)
    conf = config("[vm]\nname = badkey\n" + GUEST + f"[cloud-init]\nssh-key = {private}\n")
    r = vmlaunch(conf)
    assert r.returncode == 2, r.stderr
    assert f"{conf}:9: [cloud-init] ssh-key {private}: expected an OpenSSH public key" in r.stderr
    assert "this is a private key" in r.stderr
    assert nothing_left("badkey")


def test_uefi_without_ovmf_names_the_package(config, tmp_path):
    empty = tmp_path / "no-firmware"
    empty.mkdir()
    image = tmp_path / "disk.raw"  # something to boot, as far as the config can tell
    image.write_bytes(bytes(1 << 20))
    conf = config(f"[vm]\nname = noovmf\n[boot]\nfirmware = uefi\n[disk d]\nbackend = file\npath = {image}\n"
                  "format = raw\n")
    r = subprocess.run([VMLAUNCH, str(conf)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "VMLAUNCH_FIRMWARE_DIR": str(empty)})
    assert r.returncode == 1, r.stderr
    assert "[boot] firmware = uefi: no OVMF firmware is installed (apt-get install ovmf" in r.stderr
    assert nothing_left("noovmf")
    # the same config on this host, which has OVMF, plans a UEFI boot: the hook is what made the difference
    r = vmlaunch("--dry-run", conf)
    assert r.returncode == 0 and "node-name=fw-code" in r.stdout, r.stderr


DEBIAN = Path(__file__).resolve().parents[2] / "build" / "images" / "debian12.raw"


def wait_ready(notify, p, timeout):
    """Waits for READY=1 on the notify socket (vmlaunch's ssh probe) while vmlaunch runs; returns what arrived."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        got += datagrams(notify)
        if any("READY=1" in d for d in got):
            return got
        time.sleep(0.5)
    raise AssertionError(f"no READY=1 in {timeout} s (vmlaunch {'exited' if p.poll() is not None else 'runs'}): {got}")


def test_cloud_config_user_data_is_merged_with_the_key(config, tmp_path):
    """A #cloud-config user-data keeps doing what it says (write_files) and the injected key still logs in as the
    image's default user; READY=1 arrives when the guest's real sshd answers."""
    if not DEBIAN.exists():
        pytest.skip("build/images/debian12.raw: make debian-image")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "ud.yaml").write_text("#cloud-config\nwrite_files:\n  - path: /etc/made-by-user-data\n"
                                      "    content: \"from the file\\n\"\n")
    port = free_port()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    conf = config(f"[vm]\nname = deb-ud\ncpus = 2\nmemory = 1G\n"
                  f"[disk sys]\nbackend = file\npath = {DEBIAN}\nformat = raw\nephemeral = yes\n"
                  f"[net n0]\nforward = tcp:{port}-:22\nrestrict = yes\n"
                  f"[cloud-init]\nssh-key = {key}.pub\nuser = debian\nuser-data = {tmp_path / 'ud.yaml'}\n")
    p = subprocess.Popen([VMLAUNCH, str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        seed = (STATE_ROOT / "deb-ud" / "user-data")
        deadline = time.monotonic() + 60
        while not seed.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Merge-Type: dict(recurse_array,no_replace)+list(append)" in seed.read_text()
        wait_ready(notify, p, 900)
        r = vmlaunch("--ssh", "deb-ud", "--", "sh", "-c", "id -un; cat /etc/made-by-user-data", timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "debian\nfrom the file\n"
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=300)
        notify.close()
    assert p.returncode == 0, err
    assert nothing_left("deb-ud")


def test_smbios_credentials_give_root_the_key_without_cloud_init(config, tmp_path):
    """systemd's own provisioning: the key reaches root's authorized_keys through an SMBIOS type 11 credential, with
    cloud-init disabled on the kernel command line (the image's systemd boots on the bundled kernel)."""
    if not DEBIAN.exists():
        pytest.skip("build/images/debian12.raw: make debian-image")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = free_port()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    conf = config(f"[vm]\nname = deb-cred\ncpus = 2\nmemory = 1G\n" + GUEST + "append = cloud-init=disabled\n"
                  "root = sys\n"
                  f"[disk sys]\nbackend = file\npath = {DEBIAN}\nformat = raw\nephemeral = yes\n"
                  f"[net n0]\nforward = tcp:{port}-:22\nrestrict = yes\n"
                  f"[cloud-init]\nssh-key = {key}.pub\n")
    dry = vmlaunch("--dry-run", conf)
    assert dry.returncode == 0, dry.stderr
    creds = [a for a in dry.stdout.splitlines() if a.startswith("type=11,value=io.systemd.credential.binary:")]
    assert len(creds) == 1
    import base64
    assert base64.b64decode(creds[0].split("ssh.authorized_keys.root=", 1)[1]).decode() == \
        (tmp_path / "key.pub").read_text()
    p = subprocess.Popen([VMLAUNCH, str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        wait_ready(notify, p, 900)
        r = subprocess.run(["ssh", "-p", str(port), "-i", str(key), "-o", "IdentitiesOnly=yes", "-o",
                            "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                            "-o", "BatchMode=yes", "root@127.0.0.1",
                            "id -un; systemctl is-active cloud-init.service cloud-init-local.service || true; "
                            "ls /run/credentials/@system/"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split()
        assert lines[0] == "root"
        assert lines[1:3] == ["inactive", "inactive"]  # cloud-init never ran: systemd did it
        assert "ssh.authorized_keys.root" in lines
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=300)
        notify.close()
    assert nothing_left("deb-cred")
