"""[boot] tpm = yes: the guest sees a TPM 2.0 that swtpm emulates; swtpm runs as qemu's user, dies with vmlaunch, and
keeps its state across runs only when tpm-state = says so."""
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

from conftest import GUEST, QEMU_USER, STATE_ROOT, VMLAUNCH, start, vmlaunch

# TPM2_ReadClock (TPM 2.0 Part 3, 29.1: tag TPM_ST_NO_SESSIONS, size 10, TPM_CC_ReadClock = 0x181) sent through
# /dev/tpm0; the answer's TPMS_CLOCK_INFO holds resetCount, which a TPM increments at every TPM2_Startup(CLEAR) after
# a reset and keeps in its NV memory: what persists, as the guest sees it.
READ_CLOCK = ('exec 3<>/dev/tpm0; printf "\\x80\\x01\\x00\\x00\\x00\\x0a\\x00\\x00\\x01\\x81" >&3; '
              'echo CLOCK $(dd bs=64 count=1 <&3 2>/dev/null | od -An -v -tx1)')


def reset_count(stdout):
    """resetCount from the ReadClock answer: 10-byte header, time (8), clock (8), then resetCount (4, big-endian)."""
    line = next(l for l in stdout.splitlines() if l.startswith("CLOCK "))
    data = bytes(int(b, 16) for b in line.split()[1:])
    assert data[:2] == b"\x80\x01" and data[6:10] == b"\0\0\0\0", f"TPM2_ReadClock failed: {data.hex()}"
    return int.from_bytes(data[26:30], "big")


def swtpm_pids(vm):
    """swtpm processes started for VM `vm` (their environment names its state dir)."""
    want = f"VMLAUNCH_STATE_DIR={STATE_ROOT / vm}".encode()
    found = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() == "swtpm" and want in (d / "environ").read_bytes().split(b"\0"):
                found.add(int(d.name))
        except OSError:
            pass
    return found


def alive(pid, zombie_counts=True):
    """Whether pid is still swtpm. A zombie counts where vmlaunch is its parent and had to reap it; after vmlaunch
    was killed, reaping the orphan is its new parent's business (zombie_counts=False)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
    return name == "swtpm" and (zombie_counts or state != "Z")


def tpm_conf(config, name, extra=""):
    return config(f"[vm]\nname = {name}\n" + GUEST + f"tpm = yes\n{extra}")


def test_guest_sees_the_tpm_and_reads_its_pcrs_and_swtpm_is_gone_after(config):
    conf = tpm_conf(config, "tpmguest")
    p = start(conf, "--", "sh", "-c",
              "sleep 2; ls /sys/class/tpm; cat /sys/class/tpm/tpm0/tpm_version_major; "
              "cat /sys/class/tpm/tpm0/pcr-sha256/0 /sys/class/tpm/tpm0/pcr-sha256/7; " + READ_CLOCK)
    deadline = time.monotonic() + 60
    while not swtpm_pids("tpmguest") and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = swtpm_pids("tpmguest")
    assert pids, "swtpm did not start"
    (pid,) = pids
    # qemu's unprivileged user, not root
    assert Path(f"/proc/{pid}").stat().st_uid == pwd.getpwnam(QEMU_USER).pw_uid
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "tpm0" and lines[1] == "2", out
    # two PCRs of the SHA-256 bank, read by the guest's kernel from the TPM (TPM2_PCR_Read)
    assert all(len(l) == 64 and set(l) <= set("0123456789ABCDEF") for l in lines[2:4]), out
    assert reset_count(out) >= 1
    assert not alive(pid), "swtpm outlived vmlaunch"
    assert not (STATE_ROOT / "tpmguest").exists()


def test_tpm_state_is_thrown_away_unless_kept(config, tmp_path):
    """The TPM's resetCount, read by the guest, goes up from run to run only when tpm-state = keeps its NV memory."""
    fresh = []
    for _ in range(2):
        r = vmlaunch(tpm_conf(config, "tpmfresh"), "--", "sh", "-c", READ_CLOCK)
        assert r.returncode == 0, r.stderr
        fresh.append(reset_count(r.stdout))
    assert fresh[0] == fresh[1], "a throwaway TPM remembered an earlier run"

    state = tmp_path / "tpm"
    conf = tpm_conf(config, "tpmkept", f"tpm-state = {state}\n")
    kept = []
    for _ in range(2):
        r = vmlaunch(conf, "--", "sh", "-c", READ_CLOCK)
        assert r.returncode == 0, r.stderr
        kept.append(reset_count(r.stdout))
    assert kept[0] == fresh[0], "the first run of a kept TPM starts as a fresh one"
    assert kept[1] == kept[0] + 1, f"the kept TPM did not remember the first run: {kept}"
    # made at first start, for swtpm's user alone; kept after exit
    assert state.stat().st_uid == pwd.getpwnam(QEMU_USER).pw_uid and (state.stat().st_mode & 0o777) == 0o700
    assert (state / "tpm2-00.permall").exists()


def test_killed_vmlaunch_leaves_no_swtpm(config):
    conf = tpm_conf(config, "tpmkill")
    p = start(conf, "--", "sleep", "600")
    deadline = time.monotonic() + 60
    while not swtpm_pids("tpmkill") and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = swtpm_pids("tpmkill")
    assert pids, "swtpm did not start"
    time.sleep(1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ((STATE_ROOT / "tpmkill").exists() or
                                           any(alive(pid, False) for pid in pids)):
        time.sleep(0.2)
    assert not any(alive(pid, False) for pid in pids), "swtpm survived the SIGKILL of vmlaunch"
    assert not (STATE_ROOT / "tpmkill").exists()


def test_missing_swtpm_names_the_package(config, tmp_path):
    """swtpm hidden behind a non-executable file, in a mount namespace of this test's own."""
    conf = tpm_conf(config, "notpm")
    blocker = tmp_path / "not-executable"
    blocker.write_text("")
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        f"mount --bind {blocker} /usr/bin/swtpm && exec {VMLAUNCH} {conf} -- true"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1, r.stderr
    assert "[boot] tpm = yes needs swtpm, which is not installed (apt-get install swtpm)" in r.stderr
    assert not (STATE_ROOT / "notpm").exists()


def test_tpm_state_without_tpm_is_a_config_error(config, tmp_path):
    conf = config("[vm]\nname = tpmbad\n" + GUEST + f"tpm-state = {tmp_path}\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2
    assert "t.conf:8: [boot] tpm-state: the TPM's kept state; expected tpm = yes as well" in r.stderr
    a_file = conf
    conf = config("[vm]\nname = tpmbad\n" + GUEST + f"tpm = yes\ntpm-state = {a_file}\n", name="u.conf")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2
    assert f"u.conf:9: [boot] tpm-state {a_file}: expected a directory" in r.stderr
    assert not (STATE_ROOT / "tpmbad").exists()
