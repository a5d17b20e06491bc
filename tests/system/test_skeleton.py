"""The walking skeleton end to end: boot the demo, run commands in throwaway VMs, ask qemu over QMP, stop with signals."""
import json
import os
import pty
import signal
import subprocess
import time

import pytest

from conftest import DEMO, GUEST, QMP, ROOT, STATE_ROOT, VMLAUNCH, mounts, read_until, start, vmlaunch


def cmdline_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_demo_boots_and_verifies_its_disk():
    r = vmlaunch(DEMO)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "vmlaunch-demo: kernel " in out
    assert "vmlaunch-demo: cpus 2" in out
    # the tmpfs disk, named by its serial
    assert "/dev/vda" in out and "serial=scratch" in out
    assert "vmlaunch-demo: pattern verified on /dev/vda" in out
    # under TCG here, said once
    assert r.stderr.count("using TCG") <= 1
    assert not (STATE_ROOT / "demo").exists()
    assert "/run/vmlaunch/demo" not in mounts()


def test_command_exit_status_and_output(config):
    conf = config("[vm]\nname = exit7\n" + GUEST)
    r = vmlaunch(conf, "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout == "to-stdout\n"
    assert "to-stderr\n" in r.stderr
    assert not (STATE_ROOT / "exit7").exists()


HWRNG_PROBE = ("cat /sys/class/misc/hw_random/rng_current; "
               "head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \\n'; echo")


def test_guest_kernel_draws_entropy_from_the_virtio_rng(config):
    """Every VM has a virtio-rng (rng-builtin: the host's getrandom()), and the guest kernel uses it as its hwrng."""
    conf = config("[vm]\nname = rng\n" + GUEST)
    seen = []
    for _ in range(2):
        r = vmlaunch(conf, "--", "sh", "-c", HWRNG_PROBE)
        assert r.returncode == 0, r.stderr
        current, data = r.stdout.splitlines()
        assert current == "virtio_rng.0", r.stdout
        assert len(data) == 64 and data != "0" * 64, r.stdout
        seen.append(data)
    assert seen[0] != seen[1]


def test_command_arguments_arrive_unquoted(config):
    """argv goes over fw_cfg, NUL-separated: spaces, quotes and $ reach the guest exactly."""
    conf = config("[vm]\nname = argv\n" + GUEST)
    tricky = ["a b", "it's", '"q"', "$HOME", "", "*"]
    r = vmlaunch(conf, "--", "printf", "[%s]\\n", *tricky)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(f"[{t}]\n" for t in tricky)


def test_command_not_found_is_127(config):
    conf = config("[vm]\nname = nf\n" + GUEST)
    r = vmlaunch(conf, "--", "no-such-command")
    assert r.returncode == 127, r.stderr


def test_large_output_arrives_complete(config):
    conf = config("[vm]\nname = big\n" + GUEST)
    r = vmlaunch(conf, "--", "seq", "1", "100000")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 100000 and lines[-1] == "100000"


def test_qmp_shows_virtio_blk_on_own_iothreads_then_sigterm(config, tmp_path):
    conf = config("[vm]\nname = qmpcheck\ncpus = 2\n" + GUEST +
                  "[disk one]\nbackend = tmpfs\nsize = 64M\n[disk two]\nbackend = tmpfs\nsize = 32M\n")
    p = start(conf, "--", "sh", "-c", "echo ready; exec sleep 600")
    try:
        read_until(p.stdout, "ready")
        # a second launch of a running name is refused, and the first is untouched
        again = vmlaunch(conf, "--", "true")
        assert again.returncode == 1
        assert 'VM "qmpcheck" is already running' in again.stderr
        assert p.poll() is None

        q = QMP(STATE_ROOT / "qmpcheck" / "qmp.sock")
        qemu = next(int(d) for d in os.listdir("/proc") if d.isdigit() and
                    b"qmpcheck,debug-threads=on" in cmdline_of(d))
        threads = {t["id"] for t in q.execute("query-iothreads")}
        assert threads == {"io-one", "io-two"}
        blocks = {b["qdev"]: b for b in q.execute("query-block")}
        for disk in ("one", "two"):
            dev = f"/machine/peripheral/vblk-{disk}/virtio-backend"
            assert dev in blocks, blocks.keys()
            assert q.execute("qom-get", path=f"/machine/peripheral/vblk-{disk}", property="iothread") == f"/objects/io-{disk}"
            assert q.execute("qom-get", path=f"/machine/peripheral/vblk-{disk}", property="num-queues") == 2
            assert q.execute("qom-get", path=f"/machine/peripheral/vblk-{disk}", property="type") == "virtio-blk-pci"
            assert q.execute("qom-get", path=f"/machine/peripheral/vblk-{disk}", property="packed") is True
            # the iothreads busy-poll at qemu's adaptive default, even where they share CPUs with the vCPUs
            assert q.execute("qom-get", path=f"/objects/io-{disk}", property="poll-max-ns") == 32768
            inserted = blocks[dev]["inserted"]
            assert inserted["cache"]["no-flush"] is True  # ephemeral RAM disk
            # qemu runs as vmlaunch-qemu: the disk is an fd vmlaunch opened (-add-fd), and that fd is the tmpfs file
            assert inserted["file"].startswith("/dev/fdset/")
            assert any(os.readlink(f"/proc/{qemu}/fd/{fd}").endswith(f"/tmpfs-{disk}/disk.raw")
                       for fd in os.listdir(f"/proc/{qemu}/fd"))
        q.close()
        assert f"/run/vmlaunch/qmpcheck/tmpfs-one" in mounts()

        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=120)
        # the command did not finish: 128 + SIGTERM, and everything is gone
        assert rc == 128 + signal.SIGTERM, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not (STATE_ROOT / "qmpcheck").exists()
    assert not (STATE_ROOT / "qmpcheck.lock").exists()
    assert "/run/vmlaunch/qmpcheck" not in mounts()


def test_sigterm_powers_off_interactive_demo_gracefully():
    """With a terminal, the demo guest waits in a shell; SIGTERM presses the ACPI power button and vmlaunch exits 0."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(VMLAUNCH, [VMLAUNCH, str(DEMO)])
    out = b""
    deadline = time.monotonic() + 120
    while b"pattern verified" not in out and time.monotonic() < deadline:
        try:
            out += os.read(fd, 4096)
        except OSError:
            break
    assert b"pattern verified" in out, out.decode(errors="replace")
    time.sleep(1)  # let the guest reach its shell
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    status = None
    while time.monotonic() < deadline:
        try:
            out += os.read(fd, 4096)
        except OSError:
            pass
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError("vmlaunch did not exit after SIGTERM:\n" + out.decode(errors="replace"))
    os.close(fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out.decode(errors="replace")
    assert not (STATE_ROOT / "demo").exists()


def test_config_error_is_status_2_with_file_line_and_touches_nothing(config):
    conf = config("[vm]\nname = bad\n" + GUEST + "[disk root]\nbackend = tmpfs\nsize = 20X\n")
    r = vmlaunch(conf)
    assert r.returncode == 2
    assert r.stderr == f'vmlaunch: {conf}:10: [disk root] size "20X": expected a whole number with K, M, G or T suffix ' \
                       "(e.g. 512M, 2G)\n"
    assert not (STATE_ROOT / "bad").exists() and not (STATE_ROOT / "bad.lock").exists()
    assert "/run/vmlaunch/bad" not in mounts()


def test_usage_errors_are_status_2():
    # (no CONFIG at all is not one: it boots the embedded default, test_no_config_boots_the_embedded_default_verbosely)
    assert vmlaunch("--bogus", DEMO).returncode == 2
    r = vmlaunch(DEMO, "extra")
    assert r.returncode == 2 and "expected -- COMMAND" in r.stderr
    r = vmlaunch("/nonexistent.conf")
    assert r.returncode == 2 and "/nonexistent.conf" in r.stderr


def test_dry_run_prints_argv_and_touches_nothing():
    r = vmlaunch("--dry-run", DEMO)
    assert r.returncode == 0, r.stderr
    argv = r.stdout.splitlines()
    assert argv[0].endswith("qemu-system-x86_64")
    assert "-nodefaults" in argv and "-S" in argv
    assert any(a.startswith("virtio-blk-pci,") and "iothread=io-scratch" in a for a in argv)
    assert not (STATE_ROOT / "demo").exists()
    r = vmlaunch("--explain", DEMO)
    assert r.returncode == 0
    assert "# disk \"scratch\"" in r.stdout and "-blockdev driver=file" in r.stdout


def test_help_and_version():
    r = vmlaunch("--help")
    assert r.returncode == 0 and "Exit status:" in r.stdout and "--dry-run" in r.stdout
    r = vmlaunch("--version")
    assert r.returncode == 0 and r.stdout.startswith("vmlaunch ")


def test_guest_panic_is_status_125(config):
    conf = config("[vm]\nname = panic\n" + GUEST)
    r = vmlaunch(conf, "--", "sh", "-c", "echo c > /proc/sysrq-trigger; sleep 60")
    assert r.returncode == 125, r.stderr
    assert "the guest kernel panicked" in r.stderr
    assert not (STATE_ROOT / "panic").exists()


def test_guest_whose_boot_never_reaches_its_agent_is_stopped_after_agent_timeout(config):
    """A boot that hangs (here: a shell as the initramfs's init, waiting on the console forever) must not hold a CI
    job until the job's own timeout: no ports opened within [vm] agent-timeout is status 125, qemu quit, all undone."""
    conf = config("[vm]\nname = hung\nagent-timeout = 3\n" +
                  GUEST.replace("cryptomgr.notests", "cryptomgr.notests rdinit=/bin/sh"))
    t0 = time.monotonic()
    r = vmlaunch(conf, "--", "echo", "never")
    assert r.returncode == 125, r.stderr
    assert "did not open its ports within 3 s" in r.stderr and "console's last lines" in r.stderr
    assert "never" not in r.stdout
    assert time.monotonic() - t0 < 30  # not the 60 s shutdown-timeout of a power button nobody answers
    assert not (STATE_ROOT / "hung").exists()


def test_guest_that_never_reports_is_status_125(config):
    conf = config("[vm]\nname = silent\n" + GUEST)
    r = vmlaunch(conf, "--", "poweroff", "-f")
    assert r.returncode == 125, r.stderr
    assert "the guest stopped without reporting the command's exit status" in r.stderr
    assert "console's last lines" in r.stderr


def test_ephemeral_file_disk_never_writes_the_image(config, tmp_path):
    img = tmp_path / "base.raw"
    img.write_bytes(b"original" + b"\0" * ((8 << 20) - 8))
    before = img.read_bytes()
    conf = config("[vm]\nname = overlay\n" + GUEST + f"[disk d]\nbackend = file\npath = {img}\nephemeral = yes\n")
    r = vmlaunch(conf, "--", "sh", "-c", "printf changed | dd of=/dev/vda conv=fsync 2>/dev/null; head -c 7 /dev/vda")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "changed"  # the guest saw its write (in the overlay)
    assert img.read_bytes() == before  # the image did not
    assert not (STATE_ROOT / "overlay").exists()  # nor does the overlay remain


def test_slow_reader_still_gets_all_output(config):
    """qemu drops what it holds when the guest powers off: vmlaunch reads eagerly even when its stdout is slow."""
    import time
    conf = config("[vm]\nname = slowread\n" + GUEST)
    p = start(conf, "--", "sh", "-c", "seq 1 200000; printf tail")
    time.sleep(3)  # let the guest fill every buffer between it and us
    got = bytearray()
    while True:
        chunk = p.stdout.buffer.read1(2000) if hasattr(p.stdout, "buffer") else p.stdout.read(2000)
        if not chunk:
            break
        got += chunk
        time.sleep(0.005)
    assert p.wait(timeout=120) == 0
    lines = bytes(got).split(b"\n")
    assert len(lines) == 200001 and lines[-2] == b"200000" and lines[-1] == b"tail"


def test_newcomer_mistakes_get_messages_that_say_what_to_do():
    r = vmlaunch(ROOT / "configs")
    assert r.returncode == 2
    assert "configs: not a regular file; expected a config file such as configs/demo.conf" in r.stderr
    r = vmlaunch(DEMO, "uname", "-a")
    assert r.returncode == 2
    assert "unknown option -a; if it is the command's, put -- before the command" in r.stderr
    r = vmlaunch("--set")
    assert r.returncode == 2 and r.stderr == "vmlaunch: --set: expected a value (vmlaunch --help)\n"
    # a value --set gave is said to come from --set, not from line 4294967295 of the file
    r = vmlaunch("--dry-run", "--set", "disk.x.backend=file", "--set", "disk.x.path=/nonexistent/x.raw", DEMO)
    assert r.returncode == 2
    assert r.stderr.startswith(f"vmlaunch: {DEMO} (from --set): [disk x] path /nonexistent/x.raw: No such file"), r.stderr


def test_config_mistakes_all_at_once_and_nothing_to_boot_refused(config):
    """Every mistake in one run, each with file:line and a near miss named; a config with nothing to boot is refused
    before anything starts; a file the config names that is not there is a config mistake (2), not a host failure."""
    conf = config("[vm]\nname = many\ncpu = 2\nmemory = 1.5G\n" + GUEST
                  + "[disks scratch]\nbackend = tmpfs\n[disk a]\nbackend = tmpfs\nsize = 16M\nsizee = 1G\n")
    r = vmlaunch("--dry-run", conf, "--set", "vm.acel=tcg")
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert f'vmlaunch: {conf}:3: [vm]: unknown key "cpu" (did you mean "cpus"?): expected one of' in r.stderr
    assert f'vmlaunch: {conf}:4: [vm] memory "1.5G": expected a whole number' in r.stderr
    assert f"vmlaunch: {conf}:10: unknown section [disks scratch] (did you mean [disk scratch]?)" in r.stderr
    assert f'vmlaunch: {conf}:15: [disk a]: unknown key "sizee" (did you mean "size"?)' in r.stderr
    assert 'vmlaunch: --set vm.acel=tcg: [vm]: unknown key "acel" (did you mean "accel"?)' in r.stderr
    assert len(lines) == 5 and all(l.startswith("vmlaunch: ") for l in lines), r.stderr

    empty = config("[vm]\nname = empty\n[disk d]\nbackend = tmpfs\nsize = 16M\n", name="empty.conf")
    r = vmlaunch(empty, "--", "true")
    assert r.returncode == 2
    assert r.stderr == (f"vmlaunch: {empty}: nothing to boot: no [boot] kernel, and no disk with an operating system on "
                        "it (a RAM disk without source = starts empty); expected [boot] kernel = bundled (the bundled "
                        "guest), or a disk with path = IMAGE or source = IMAGE\n")
    assert not (STATE_ROOT / "empty").exists()

    r = vmlaunch("--dry-run", ROOT / "configs" / "rbd.conf", "--set", "disk.root.conf=/nonexistent/ceph.conf")
    assert r.returncode == 2, r.stderr
    assert "[disk root] conf /nonexistent/ceph.conf: No such file or directory; expected the Ceph cluster's" in r.stderr
    r = vmlaunch("--dry-run", DEMO, "--set", "qemu.binary=/nonexistent/qemu-system-x86_64")
    assert r.returncode == 2
    assert "(from --set) [qemu] binary /nonexistent/qemu-system-x86_64: No such file or directory" in r.stderr


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_firmware_with_nothing_to_boot_is_reported_and_the_terminal_kept(tmp_path, firmware):
    """SeaBIOS or OVMF on a blank disk: noticed (SeaBIOS's "No bootable device.", OVMF starting its shell) and
    reported with exit 1, not waited on; under a terminal, no firmware sequence that changes the terminal's mode
    reaches it (SeaBIOS's screen goes to its debug port; OVMF's is relayed through a filter, which lets its screen
    clears and colours through) and its modes are what they were."""
    import termios
    blank = tmp_path / "blank.raw"
    with open(blank, "wb") as f:
        f.truncate(1 << 20)
    conf = tmp_path / "blank.conf"
    conf.write_text(f"[vm]\nname = blank\nmemory = 128M\n[boot]\nfirmware = {firmware}\n"
                    f"[disk d]\nbackend = file\npath = {blank}\nformat = raw\n")
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        p = subprocess.Popen([VMLAUNCH, str(conf)], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        out = b""
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            os.set_blocking(master, False)
            try:
                out += os.read(master, 65536)
            except BlockingIOError:
                time.sleep(0.1)
        if p.poll() is None:
            p.kill()
            p.wait()
            raise AssertionError("vmlaunch waited on a guest with nothing to boot:\n" + out.decode(errors="replace"))
        try:
            out += os.read(master, 65536)
        except BlockingIOError:
            pass
        after = termios.tcgetattr(slave)
    finally:
        os.close(master)
        os.close(slave)
    text = out.decode(errors="replace")
    assert p.returncode == 1, text
    if firmware == "bios":
        assert 'the firmware found nothing to boot (SeaBIOS: "No bootable device.")' in text
        assert "\x1b" not in text  # no ESC c, ESC[?7l or ESC[2J from SeaBIOS's serial console
    else:
        assert "the firmware found nothing to boot (OVMF: every boot option failed, it started its UEFI shell)" in text
        assert 'BdsDxe: failed to load Boot0001 "UEFI Misc Device"' in text  # its console reached the terminal
        for mode in ("\x1bc", "\x1b[?7l", "\x1b[=3h"):
            assert mode not in text
    assert after == before
    assert not (STATE_ROOT / "blank").exists()


def test_make_run_on_a_terminal_leaves_it_as_it_was():
    """The demo on a terminal (make run): its shell offered, left with exit; no firmware resets the terminal or turns
    autowrap off, and the terminal's modes after the run are the ones before it."""
    import termios
    master, slave = os.openpty()
    out = b""
    try:
        before = termios.tcgetattr(slave)
        p = subprocess.Popen([VMLAUNCH, str(DEMO), "--set", "vm.name=ttydemo"], stdin=slave, stdout=slave, stderr=slave,
                             start_new_session=True)
        os.set_blocking(master, False)
        deadline = time.monotonic() + 180
        sent = False
        while p.poll() is None and time.monotonic() < deadline:
            try:
                out += os.read(master, 65536)
            except BlockingIOError:
                time.sleep(0.1)
            if not sent and b"pattern verified" in out and b"/ # " in out.split(b"pattern verified")[-1]:
                os.write(master, b"exit\n")  # the guest's shell: leaving it powers the guest off
                sent = True
        if p.poll() is None:
            p.kill()
            p.wait()
            raise AssertionError("the demo did not power off after exit:\n" + out.decode(errors="replace"))
        after = termios.tcgetattr(slave)
    finally:
        os.close(master)
        os.close(slave)
    assert p.returncode == 0, out.decode(errors="replace")
    for seq in (b"\x1bc", b"\x1b[?7l", b"\x1b[2J"):  # what SeaBIOS's serial console would send
        assert seq not in out
    assert after == before
    assert not (STATE_ROOT / "ttydemo").exists()


def test_no_config_boots_the_embedded_default_verbosely(tmp_path):
    """`vmlaunch` alone boots the demo that came with it; -v says each step; a binary with no demo says how."""
    r = vmlaunch("-v", "--set", "vm.name=nocfg", "--", "cat", "/proc/cmdline")  # its own name: others boot the demo
    assert r.returncode == 0, r.stderr
    assert "console=ttyS0" in r.stdout
    assert f"vmlaunch: no CONFIG given: using the embedded default, {DEMO}\n" in r.stderr
    for step in ('vmlaunch: config ', 'vmlaunch: storage: describing disk "scratch" (tmpfs)', "vmlaunch: accelerator: ",
                 "vmlaunch: state: /run/vmlaunch/nocfg (locked)", 'vmlaunch: preparing disk "scratch" (tmpfs)',
                 "vmlaunch: starting qemu: ", "vmlaunch: pinning: a vCPU (thread ", "vmlaunch: supervising qemu (pid ",
                 "vmlaunch: the VM stopped (exit status 0); undoing"):
        assert step in r.stderr, step
    assert all(line.startswith("vmlaunch: ") for line in r.stderr.splitlines()), r.stderr
    r = vmlaunch("-v", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "vmlaunch: --dry-run: nothing on the host is touched" in r.stderr and "vmlaunch: CPUs: " in r.stderr
    lonely = tmp_path / "vmlaunch"
    lonely.write_bytes(open(VMLAUNCH, "rb").read())
    lonely.chmod(0o755)
    r = subprocess.run([str(lonely)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("vmlaunch: expected a CONFIG file (vmlaunch [OPTIONS] CONFIG [-- COMMAND...]); without "
                               "one vmlaunch boots its embedded default, demo.conf, which is not at "), r.stderr


def test_cleanup_of_a_running_vm_says_how_to_stop_it(config):
    conf = config("[vm]\nname = busy\n" + GUEST)
    p = start(conf, "--", "sleep", "600")
    try:
        deadline = time.monotonic() + 60
        while not (STATE_ROOT / "busy" / "info").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        r = vmlaunch("--cleanup", "busy", "--wait", "1")
        assert r.returncode == 1
        assert r.stderr == (f'vmlaunch: VM "busy" is running (vmlaunch pid {p.pid}) and did not stop while --cleanup '
                            "waited; --cleanup is for what a killed run left behind: stop it with vmlaunch --stop busy "
                            "(it cleans up after itself)\n")
        assert (STATE_ROOT / "busy" / "info").exists()  # untouched
        r = vmlaunch("--stop", "busy", "--wait", "20")
        assert r.returncode == 0, r.stderr
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            time.sleep(1)
            p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    assert not (STATE_ROOT / "busy").exists()


def test_stop_by_name_powers_off_and_waits(config):
    conf = config("[vm]\nname = stopme\n" + GUEST)
    p = start(conf, "--", "sleep", "600")
    deadline = time.monotonic() + 60
    while not (STATE_ROOT / "stopme" / "info").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    r = vmlaunch("--stop", "stopme", "--wait", "20")
    assert r.returncode == 0, r.stderr
    assert p.wait(timeout=30) == 128 + signal.SIGTERM  # the command did not finish: 128+N
    assert not (STATE_ROOT / "stopme").exists()
    r = vmlaunch("--stop", "stopme")
    assert r.returncode == 1
    assert r.stderr == 'vmlaunch: VM "stopme" is not running (vmlaunch --list shows the running ones)\n'


def test_status_and_list_as_json_with_disks_by_config_name(config):
    conf = config("[vm]\nname = jsonvm\n" + GUEST + "[disk scratch]\nbackend = tmpfs\nsize = 16M\n")
    p = start(conf, "--", "sleep", "600")
    try:
        deadline = time.monotonic() + 60
        while not (STATE_ROOT / "jsonvm" / "info").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        r = vmlaunch("--status", "jsonvm", "--json")
        assert r.returncode == 0, r.stderr
        vm = json.loads(r.stdout)
        assert vm["name"] == "jsonvm" and vm["status"] == "running" and vm["pid"] == p.pid
        assert vm["command"] == "sleep 600"
        assert [(d["name"], d["backend"]) for d in vm["disks"]] == [("scratch", "tmpfs")]
        listed = json.loads(vmlaunch("--list", "--json").stdout)
        assert "jsonvm" in [v["name"] for v in listed]
        r = vmlaunch("--status", "jsonvm")
        assert "disk:    scratch tmpfs " in r.stdout and "command: sleep 600" in r.stdout
    finally:
        p.send_signal(signal.SIGTERM)
        time.sleep(1)  # two at once would be one pending signal
        p.send_signal(signal.SIGTERM)  # the second: quit, no waiting for the guest
        p.wait(timeout=60)
