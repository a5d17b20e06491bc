"""Real work in the guest: host directories over virtiofs, the command's environment and user, user-mode networking,
and a distro image's own userland on the bundled kernel."""
import hashlib
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import GUEST, ROOT, STATE_ROOT, VMLAUNCH, free_port, mounts, netns_links, start, vmlaunch

DEBIAN = ROOT / "build" / "images" / "debian12.raw"


def virtiofsd_pids(vm):
    """The virtiofsd processes serving VM `vm` (found by the state dir in their command line): none may outlive it."""
    out = subprocess.run(["pgrep", "-f", f"virtiofsd .*source=/.*{vm}"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_shares_read_only_enforced_and_writable_share_reaches_the_host(config, tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "input.txt").write_text("from the host\n")
    conf = config("[vm]\nname = shares\n" + GUEST +
                  f"[share src]\npath = {src}\n[share out]\npath = {out}\nreadonly = no\nmount = /artifacts\n")
    r = vmlaunch(conf, "--", "sh", "-c",
                 "cat /mnt/src/input.txt; "
                 "if (echo x > /mnt/src/new) 2>&1; then echo WROTE; fi; "
                 "echo built-in-guest > /artifacts/result.txt")
    assert r.returncode == 0, r.stderr
    assert "from the host" in r.stdout
    assert "WROTE" not in r.stdout and "Read-only file system" in r.stdout
    assert (out / "result.txt").read_text() == "built-in-guest\n"
    assert not (src / "new").exists()
    assert not virtiofsd_pids("shares") and not virtiofsd_pids(str(out))
    assert "/run/vmlaunch/shares" not in mounts()
    assert not (STATE_ROOT / "shares").exists()


def test_share_option_env_and_command_user(config, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("x")
    conf = config("[vm]\nname = envuser\ncommand-user = nobody\n" + GUEST)
    r = vmlaunch("--share", f"data={tmp_path / 'data'}", "--env", "GREETING=hello world", "--env", "EMPTY=",
                 conf, "--", "sh", "-c", 'echo "$GREETING|$EMPTY|$(id -u)"; ls /mnt/data')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello world||65534\nf\n"


def test_share_with_missing_path_is_a_config_error(config, tmp_path):
    conf = config("[vm]\nname = noshare\n" + GUEST + f"[share s]\npath = {tmp_path / 'absent'}\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2
    assert f"t.conf:9: [share s] path {tmp_path / 'absent'}: No such file or directory" in r.stderr
    assert not (STATE_ROOT / "noshare").exists()


def test_missing_virtiofsd_names_the_package(config, tmp_path):
    """virtiofsd hidden behind a non-executable file, in a mount namespace of this test's own."""
    conf = config("[vm]\nname = novfs\n" + GUEST + f"[share s]\npath = {tmp_path}\n")
    blocker = tmp_path / "not-executable"
    blocker.write_text("")
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        f"mount --bind {blocker} /usr/lib/qemu/virtiofsd && exec {VMLAUNCH} {conf} -- true"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1, r.stderr
    assert "needs virtiofsd, which is not installed (apt-get install qemu-system-common)" in r.stderr
    assert not (STATE_ROOT / "novfs").exists()


def test_killed_vmlaunch_leaves_no_virtiofsd_and_no_bind(config, tmp_path):
    conf = config("[vm]\nname = killshare\n" + GUEST + f"[share s]\npath = {tmp_path}\n")
    p = start(conf, "--", "sleep", "600")
    deadline = time.monotonic() + 60
    while not virtiofsd_pids("killshare") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert virtiofsd_pids("killshare"), "virtiofsd did not start"
    assert "/run/vmlaunch/killshare/share-s" in mounts()
    time.sleep(1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 30
    while (STATE_ROOT / "killshare").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (STATE_ROOT / "killshare").exists()
    assert not virtiofsd_pids("killshare")
    assert "/run/vmlaunch/killshare" not in mounts()


def test_user_network_forward_reaches_the_guest_and_nothing_else(config):
    """Only loopback: the host connects to the forward, the guest answers; restrict = yes keeps it from anything else."""
    port = free_port()
    conf = config("[vm]\nname = netfwd\n" + GUEST +
                  f"[net n0]\nforward = tcp:{port}-:7777\nrestrict = yes\n")
    p = start(conf, "--", "sh", "-c",
              "ip -4 -o addr show dev eth0; echo pong | nc -l -p 7777; "
              # restricted: the user-mode gateway answers no connection beyond the forwards
              "if nc -w 2 10.0.2.2 22 </dev/null; then echo EGRESS; else echo no-egress; fi")
    got = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and b"pong" not in got:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(5)
                got = s.recv(100)
        except OSError:
            time.sleep(0.5)
    out, err = p.communicate(timeout=120)
    assert got == b"pong\n", err
    assert p.returncode == 0, err
    assert "10.0.2.15/" in out
    assert "no-egress" in out and "EGRESS" not in out
    # the forward listened on loopback only
    assert not (STATE_ROOT / "netfwd").exists()


def test_forward_without_address_binds_loopback_only(config):
    conf = config("[vm]\nname = fwdaddr\n" + GUEST + "[net n0]\nforward = tcp:2222-:22\n")
    r = vmlaunch("--dry-run", conf)
    assert r.returncode == 0, r.stderr
    assert "user,id=net-n0,hostfwd=tcp:127.0.0.1:2222-:22" in r.stdout.splitlines()


@pytest.fixture(scope="module")
def debian_image():
    if not DEBIAN.exists():
        r = subprocess.run(["make", "-C", str(ROOT), "debian-image"], capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f"make debian-image failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
    return DEBIAN


def debian_conf(config, name, image, extra=""):
    return config(f"[vm]\nname = {name}\ncpus = 2\nmemory = 1G\n" + GUEST +
                  "root = sys\n" +
                  f"[disk sys]\nbackend = file\npath = {image}\nformat = raw\nephemeral = yes\n" + extra)


def test_command_runs_in_the_images_userland_with_shares(config, tmp_path, debian_image):
    """A CI job: the checkout read-only, the artifacts writable, the image's own compiler."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "hello.c").write_text('#include <stdio.h>\nint main(void) { puts("hello from gcc"); return 42; }\n')
    (src / "Makefile").write_text("test:\n\tcc -O2 -o /tmp/hello hello.c\n\t/tmp/hello > /out/result.txt || "
                                  "test $$? -eq 42\n\tcat /etc/debian_version > /out/os.txt\n")
    conf = debian_conf(config, "deb-job", debian_image,
                       f"[share src]\npath = {src}\nmount = /src\n[share out]\npath = {out}\nreadonly = no\n"
                       "mount = /out\n")
    r = vmlaunch(conf, "--", "make", "-C", "/src", "test", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "result.txt").read_text() == "hello from gcc\n"
    assert (out / "os.txt").read_text().startswith("12.")
    assert not (src / "hello").exists()


def test_image_userland_statuses_user_and_large_output(config, debian_image):
    conf = debian_conf(config, "deb-status", debian_image)
    for cmd, status in ((["true"], 0), (["false"], 1), (["sh", "-c", "exit 42"], 42), (["no-such-tool"], 127)):
        r = vmlaunch(conf, "--", *cmd, timeout=300)
        assert r.returncode == status, (cmd, r.stderr)
    r = subprocess.run([VMLAUNCH, str(conf), "--", "dd", "if=/dev/zero", "bs=1M", "count=10", "status=none"],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"\0" * (10 << 20)
    r = vmlaunch("--set", "vm.command-user=nobody", conf, "--", "sh", "-c", "id -un; echo $HOME; cat /etc/os-release",
                 timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["nobody", "/nonexistent"]  # the image's own passwd
    assert 'VERSION_CODENAME=bookworm' in r.stdout


def ssh_when_up(name, command, proc, prefix=(), deadline_s=900):
    """vmlaunch --ssh NAME -- COMMAND, again every few seconds until it succeeds, the VM is gone or the deadline passes
    (a firmware boot with cloud-init takes minutes under TCG). prefix: e.g. `ip netns exec NS`."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            r = subprocess.run([*prefix, VMLAUNCH, "--ssh", name, "--", *command], capture_output=True, text=True,
                               timeout=90, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            r = subprocess.CompletedProcess(e.cmd, -1, "", "ssh timed out")
        if r.returncode == 0 or time.monotonic() > deadline or proc.poll() is not None:
            return r
        time.sleep(3)


def firmware_conf(config, name, image, extra=""):
    return config(f"[vm]\nname = {name}\ncpus = 2\nmemory = 1G\nagent-timeout = 600\n"
                  f"[disk sys]\nbackend = file\npath = {image}\nformat = raw\nephemeral = yes\n" + extra)


def test_cloud_image_boots_by_uefi_with_cloud_init_and_ssh(config, tmp_path, debian_image):
    """The developer's path: firmware boot, the key injected by a NoCloud seed, vmlaunch --ssh as that user; with a
    TPM that the firmware measures into."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = free_port()
    conf = firmware_conf(config, "deb-ssh", debian_image,
                         f"[net n0]\nforward = tcp:{port}-:22\nrestrict = yes\n"
                         f"[cloud-init]\nssh-key = {key}.pub\nuser = tester\n[boot]\ntpm = yes\n")
    p = start(conf)
    try:
        r = ssh_when_up("deb-ssh", ["sh", "-c", "id -un; test -d /sys/firmware/efi && echo uefi; "
                                          "cat /sys/class/tpm/tpm0/pcr-sha256/0"], p, deadline_s=600)
        assert r.returncode == 0, r.stderr
        user, firmware, pcr0 = r.stdout.splitlines()
        assert (user, firmware) == ("tester", "uefi")
        # [boot] tpm: OVMF found the TPM (tpm-crb) and measured itself into PCR 0, which starts as zeros
        assert len(pcr0) == 64 and set(pcr0) <= set("0123456789ABCDEF") and pcr0 != "0" * 64, pcr0
        # no password anywhere: the key is the way in
        assert "PasswordAuthentication" not in r.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err  # the ACPI power button, a clean shutdown
    assert not (STATE_ROOT / "deb-ssh").exists()


def test_bios_boot_with_a_static_address_on_a_bridge_and_ssh_there(config, tmp_path, debian_image, netns):
    """The appliance's path, on a BIOS boot (the image's own GRUB): a tap on a bridge (in a network namespace of the
    test's own) with a static address from the seed's network-config, and vmlaunch --ssh to that address as the
    seed's user, with its key."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    conf = firmware_conf(config, "deb-static", debian_image,
                         "[boot]\nfirmware = bios\n[net lan]\nmode = tap\nbridge = br0\naddress = 192.168.77.2/24\n"
                         f"gateway = 192.168.77.1\n[cloud-init]\nssh-key = {key}.pub\nuser = tester\n")
    inside = ["ip", "netns", "exec", netns]
    p = subprocess.Popen([*inside, VMLAUNCH, str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        r = ssh_when_up("deb-static", ["sh", "-c", "id -un; test -d /sys/firmware/efi && echo uefi || echo bios; "
                                             "ip -4 -br addr"], p, prefix=inside)
        assert r.returncode == 0, r.stderr
        user, firmware, *addrs = r.stdout.splitlines()
        assert (user, firmware) == ("tester", "bios")
        assert any("192.168.77.2/24" in a for a in addrs), addrs
        # the bridge's side reaches the address it was given
        ping = subprocess.run([*inside, "ping", "-c", "1", "-W", "5", "192.168.77.2"], capture_output=True, text=True)
        assert ping.returncode == 0, ping.stdout
    finally:
        subprocess.run([*inside, VMLAUNCH, "--stop", "deb-static", "--wait", "300"], capture_output=True, timeout=400)
        out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert not (STATE_ROOT / "deb-static").exists()
    assert "vml" not in netns_links(netns)  # the tap is gone


def test_command_through_qemu_guest_agent_on_a_bios_boot(config, debian_image):
    """Environment, stdout, stderr and status; and stdin, which guest-exec takes all at once (input-data)."""
    conf = firmware_conf(config, "deb-qga", debian_image, "[boot]\nfirmware = bios\n")
    data = "".join(f"line {i}\n" for i in range(20000))  # ~200 KiB
    r = vmlaunch("--env", "WHO=agent", conf, "--", "sh", "-c", 'echo "out $WHO"; md5sum; echo err >&2; exit 42',
                 input=data, timeout=900)
    assert r.returncode == 42, r.stderr
    assert r.stdout == f"out agent\n{hashlib.md5(data.encode()).hexdigest()}  -\n"
    assert "err\n" in r.stderr
    assert not (STATE_ROOT / "deb-qga").exists()


def test_guest_without_an_agent_is_125_in_bounded_time(config, tmp_path):
    """A boot sector that only loops: no agent ever answers; vmlaunch gives up after agent-timeout, not never."""
    loop = tmp_path / "loop.raw"
    loop.write_bytes(b"\xeb\xfe" + bytes(508) + b"\x55\xaa" + bytes((1 << 20) - 512))  # jmp $, boot signature
    conf = config("[vm]\nname = noagent\nagent-timeout = 5\n[boot]\nfirmware = bios\n"
                  f"[disk loop]\nbackend = file\npath = {loop}\nformat = raw\n")
    t0 = time.monotonic()
    r = vmlaunch(conf, "--", "true", timeout=120)
    assert r.returncode == 125, r.stderr
    assert "no qemu-guest-agent answered in 5 s" in r.stderr
    assert time.monotonic() - t0 < 60
    assert not (STATE_ROOT / "noagent").exists()


def test_tap_on_a_bridge_ping_and_tcp_and_gone_after_exit(config, netns):
    conf = config("[vm]\nname = tapvm\ncpus = 2\n" + GUEST + "[net lan]\nmode = tap\nbridge = br0\n")
    p = subprocess.Popen(["ip", "netns", "exec", netns, VMLAUNCH, str(conf), "--", "sh", "-c",
                          "ip addr add 192.168.77.2/24 dev eth0; ip link set eth0 up; "
                          "echo pong | nc -l -p 7777; echo served"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    pinged = False
    while time.monotonic() < deadline and not pinged:  # the netns pings the guest through the tap and the bridge
        pinged = subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "2", "192.168.77.2"],
                                capture_output=True).returncode == 0
    got = b""
    while time.monotonic() < deadline and pinged and not got:
        r = subprocess.run(["ip", "netns", "exec", netns, "python3", "-c",
                            "import socket; s = socket.create_connection(('192.168.77.2', 7777), timeout=3); "
                            "print(s.recv(64).decode(), end='')"], capture_output=True, text=True)
        got = r.stdout.encode()
        if not got:
            time.sleep(1)
    out, err = p.communicate(timeout=120)
    assert pinged, err
    assert got == b"pong\n", err
    assert p.returncode == 0, err
    assert "served" in out
    assert "vml" not in netns_links(netns)  # the tap went with qemu's last queue fd


def test_tap_gone_after_kill_and_missing_bridge_refused(config, netns):
    conf = config("[vm]\nname = tapkill\n" + GUEST + "[net lan]\nmode = tap\nbridge = br0\ntap = vmltest0\n")
    p = subprocess.Popen(["ip", "netns", "exec", netns, VMLAUNCH, str(conf), "--", "sleep", "600"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while "vmltest0" not in netns_links(netns) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "vmltest0" in netns_links(netns)
    time.sleep(1)
    p.send_signal(signal.SIGKILL)  # `ip netns exec` execs vmlaunch: this is vmlaunch itself
    p.wait()
    deadline = time.monotonic() + 30
    while (STATE_ROOT / "tapkill").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "vmltest0" not in netns_links(netns)
    conf = config("[vm]\nname = nobr\n" + GUEST + "[net lan]\nmode = tap\nbridge = nosuchbr\n", name="nobr.conf")
    r = subprocess.run(["ip", "netns", "exec", netns, VMLAUNCH, str(conf), "--", "true"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert "[net lan] bridge nosuchbr: no such bridge on this host (ip link add nosuchbr type bridge)" in r.stderr
    assert not (STATE_ROOT / "nobr").exists()
