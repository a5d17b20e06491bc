"""Hardening (#19): names from the command line, forged journals, qemu's user, source images' backing files."""
import fcntl
import os
import pwd
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import GUEST, ROOT, VMLAUNCH, vmlaunch


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


def proc_field(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return line.split()[1]
    raise AssertionError(field)


def qemu_of(name):
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if f"{name},debug-threads=on".encode() in open(f"/proc/{p}/cmdline", "rb").read().split(b"\0"):
                    return int(p)
            except OSError:
                pass
    raise AssertionError(f"no qemu for {name}")


def test_qemu_is_unprivileged_by_default_and_gets_fds_not_paths(config, tmp_path, qemu_user):
    """As root with no [qemu] user, qemu runs as vmlaunch-qemu with that user's groups; it reaches a root-only image in a root-only dir, a zram
    device, a tmpfs disk, an ephemeral overlay's base and its console log through fds vmlaunch opened, and nothing on
    the host changes owner; the state dir and journal stay root's. Signals vmlaunch inherited as ignored are not
    ignored in qemu."""
    qemu = pwd.getpwnam(qemu_user)
    img, base = tmp_path / "data.raw", tmp_path / "base.raw"
    for f in (img, base):
        with open(f, "wb") as fh:
            fh.truncate(8 << 20)
        os.chmod(f, 0o600)
    conf = config("[vm]\nname = hfds\n" + GUEST +
                  "[disk z]\nbackend = zram\nsize = 16M\n"
                  "[disk t]\nbackend = tmpfs\nsize = 16M\n"
                  f"[disk f]\nbackend = file\npath = {img}\n"
                  f"[disk e]\nbackend = file\npath = {base}\nephemeral = yes\n")
    r = vmlaunch("--dry-run", conf)
    assert r.returncode == 0, r.stderr
    assert str(img) not in r.stdout and str(base) not in r.stdout and "/dev/zram" not in r.stdout
    assert "-add-fd" in r.stdout
    # started with signals ignored (as nohup does for SIGHUP), which an exec keeps; qemu itself catches HUP and INT,
    # so the check is on two it leaves alone
    p = subprocess.Popen([VMLAUNCH, str(conf), "--", "sh", "-c",
                          "for d in /dev/vd?; do dd if=/dev/zero of=$d bs=4k count=1 conv=fsync 2>/dev/null "
                          "|| exit 9; done; echo up; exec sleep 600"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGUSR2, signal.SIGXCPU)])
    try:
        assert p.stdout.readline() == "up\n", p.stderr.read() if p.poll() is not None else ""
        pid = qemu_of("hfds")
        assert proc_field(pid, "Uid") == str(qemu.pw_uid)
        # its own supplementary groups (kvm, for /dev/kvm), looked up by vmlaunch before the fork
        groups = next(line.split()[1:] for line in open(f"/proc/{pid}/status") if line.startswith("Groups:"))
        assert sorted(map(int, groups)) == sorted(set(os.getgrouplist(qemu_user, qemu.pw_gid)))
        # vmlaunch's inherited ignored signals are not qemu's: its child set them back to the default before the exec
        ignored = int(proc_field(pid, "SigIgn"), 16)
        assert not ignored & (1 << (signal.SIGUSR2 - 1) | 1 << (signal.SIGXCPU - 1)), hex(ignored)
        state = "/run/vmlaunch/hfds"
        st = os.stat(state)
        assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o711
        for leaf in ("journal", "console.log", "qmp.sock", "pid"):
            st = os.lstat(f"{state}/{leaf}")
            assert st.st_uid == 0 and not st.st_mode & 0o022, leaf
        zram = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        zram = [z for z in zram if z.startswith("/dev/zram")]
        # the compressed store is bounded: twice the disk's size (room for overwrites of a full disk)
        assert all(int(open(f"/sys/block/{z[5:]}/mm_stat").read().split()[3]) == 32 << 20 for z in zram)  # mem_limit
        assert zram and all(os.stat(z).st_uid == 0 and os.stat(z).st_gid in (0, 6) for z in zram)  # root:root or root:disk
        for f in (img, base):
            assert os.stat(f).st_uid == 0 and (os.stat(f).st_mode & 0o777) == 0o600
    finally:
        p.terminate()
        p.wait(timeout=120)
    assert p.returncode == 128 + 15, p.stderr.read()


def test_qemu_user_root_must_be_written(config):
    conf = config("[vm]\nname = hroot\n[qemu]\nuser = root\n" + GUEST)
    p = subprocess.Popen([VMLAUNCH, str(conf), "--", "sh", "-c", "echo up; exec sleep 600"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "up\n"
        assert proc_field(qemu_of("hroot"), "Uid") == "0"
    finally:
        p.terminate()
        p.wait(timeout=120)


def test_source_image_naming_a_host_file_is_refused(config, tmp_path, qemu_user):
    """qemu-img create -b SECRET: as source = it gave the guest SECRET's bytes (read as root)."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"HOST-SECRET-" * 100)
    evil = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(secret), "-F", "raw", str(evil), "1M"],
                   check=True)
    disk = f"[disk d]\nbackend = tmpfs\nsize = 16M\nsource = {evil}\n"
    conf = config("[vm]\nname = hevil\n" + GUEST + disk)
    r = vmlaunch(conf, "--", "head", "-c", "12", "/dev/vda")
    assert "HOST-SECRET" not in r.stdout
    assert r.returncode == 2, r.stderr
    assert f"names another file, {secret}" in r.stderr and "source-backing = allow" in r.stderr
    # allowed in writing, with the format written too, it is followed, with qemu's user's rights: never root's
    r = vmlaunch(config("[vm]\nname = hevil\n" + GUEST + disk + "source-backing = allow\n", name="allow.conf"),
                 "--", "head", "-c", "12", "/dev/vda")
    assert r.returncode == 2 and "source-backing = allow: needs source-format" in r.stderr
    allowed = disk + "source-backing = allow\nsource-format = qcow2\n"
    r = vmlaunch(config("[vm]\nname = hevil\n" + GUEST + allowed, name="allow2.conf"),
                 "--", "head", "-c", "12", "/dev/vda")
    assert "HOST-SECRET" not in r.stdout
    assert r.returncode == 1 and "readable by it" in r.stderr, r.stderr  # the secret is root's alone
    shared = Path(tempfile.mkdtemp(prefix="vmlaunch-chain-"))
    try:
        os.chmod(shared, 0o755)
        (shared / "base.raw").write_bytes(b"SHARED-BASE-" * 100)
        os.chmod(shared / "base.raw", 0o644)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(shared / "base.raw"), "-F", "raw",
                        str(shared / "top.qcow2"), "1M"], check=True)
        os.chmod(shared / "top.qcow2", 0o644)
        conf = config("[vm]\nname = hevil\n" + GUEST + allowed.replace(str(evil), str(shared / "top.qcow2")),
                      name="allow3.conf")
        r = vmlaunch(conf, "--", "head", "-c", "12", "/dev/vda")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "SHARED-BASE-"
    finally:
        subprocess.run(["rm", "-rf", str(shared)])


def children(pid):
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            kids += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
        except OSError:
            pass
    return kids


def stopped_child(p, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert p.poll() is None, p.stderr.read()
        for k in children(p.pid):
            try:
                if open(f"/proc/{k}/stat").read().rsplit(")", 1)[1].split()[0] == "T":
                    return k
            except OSError:
                pass
        time.sleep(0.02)
    raise AssertionError("no helper stopped")


@pytest.mark.parametrize("where", ["disk", "tmpfs"])
@pytest.mark.parametrize("step", ["info", "convert"])
def test_source_image_is_parsed_by_qemus_user_and_a_root_only_source_still_populates(config, tmp_path, qemu_user,
                                                                                     step, where):
    """The qcow2 is read by qemu-img as vmlaunch-qemu, paused here (VMLAUNCH_STOP_AT) to look at it in /proc: no
    uid 0, no capability, no host path of the image open or named; its bytes come from root's qemu-nbd, which
    parses no format. The image is root's alone (0600 in a 0700 directory) and still fills the disk."""
    qemu = pwd.getpwnam(qemu_user)
    # on tmpfs (no idmapped mounts on this kernel) the image's bytes come from root's qemu-nbd instead
    home = tmp_path if where == "disk" else Path(tempfile.mkdtemp(prefix="vmlaunch-parse-", dir="/dev/shm"))
    raw, image = home / "root-only.raw", home / "root-only.qcow2"
    with open(raw, "wb") as f:
        f.write(b"ROOT-ONLY-DATA")
        f.truncate(4 << 20)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(image)], check=True)
    os.chmod(image, 0o600)
    assert (os.stat(home).st_mode & 0o777) == 0o700
    conf = config("[vm]\nname = hparse\n" + GUEST + f"[disk d]\nbackend = tmpfs\nsize = 16M\nsource = {image}\n")
    p = subprocess.Popen([VMLAUNCH, str(conf), "--", "head", "-c", "14", "/dev/vda"],
                         env=dict(os.environ, VMLAUNCH_STOP_AT=f"helper-qemu-img-{step}"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # stopped just before it execs qemu-img (the hook's name is built from that argv): what exec keeps is
        # its ids, its empty capability sets, no-new-privileges, and the fds without O_CLOEXEC
        helper = stopped_child(p)
        status = open(f"/proc/{helper}/status").read()
        assert status.split("Uid:")[1].split()[:4] == [str(qemu.pw_uid)] * 4, status
        assert status.split("Gid:")[1].split()[:4] == [str(qemu.pw_gid)] * 4, status
        assert proc_field(helper, "CapEff") == "0" * 16 and proc_field(helper, "CapPrm") == "0" * 16
        assert proc_field(helper, "NoNewPrivs") == "1"
        kept = {}
        for fd in os.listdir(f"/proc/{helper}/fd"):
            flags = int(open(f"/proc/{helper}/fdinfo/{fd}").read().split("flags:")[1].split()[0], 8)
            if not flags & os.O_CLOEXEC:
                kept[int(fd)] = os.readlink(f"/proc/{helper}/fd/{fd}"), flags
        # stdin, stdout, stderr; the image as fd 3: an O_PATH fd of a read-only mount of that file alone, idmapped so
        # the file is qemu's user's there (nothing is open for reading yet: qemu-img opens /proc/self/fd/3 with its
        # own rights), or a connection to root's qemu-nbd where the file system has no idmapped mounts; for convert
        # the disk as fd 4, a connection to root's qemu-nbd
        assert sorted(kept) == list(range(3 + (step == "convert") + 1)), kept
        image_fd, image_flags = kept[3]
        # a detached mount's root reads as "/": the file alone, no path on the host
        assert image_fd.startswith("socket:") or (image_fd == "/" and image_flags & 0o10000000), kept  # O_PATH
        assert step == "info" or kept[4][0].startswith("socket:"), kept
        # qemu's user cannot open the image itself
        r = subprocess.run(["runuser", "-u", qemu_user, "--", "head", "-c", "1", str(image)], capture_output=True)
        assert r.returncode != 0 and b"Permission denied" in r.stderr
        os.kill(helper, signal.SIGCONT)
        out, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if where == "tmpfs":
            subprocess.run(["rm", "-rf", str(home)])
    assert p.returncode == 0, err
    assert out == "ROOT-ONLY-DATA"


def test_raw_source_with_a_forged_header_is_never_probed_as_another_format(config, tmp_path):
    """A raw image whose first bytes a guest made a vmdk descriptor naming a host file: qemu-img would probe vmdk
    and read the extent; vmlaunch only knows qcow2's magic, so it is raw, and the guest gets its own bytes back."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"HOST-SECRET-" * 100)
    img = tmp_path / "guest-written.raw"
    desc = (f'# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
            f'RW 2048 FLAT "{secret}" 0\n').encode()
    img.write_bytes(desc.ljust(1 << 20, b"\0"))
    probe = subprocess.run(["qemu-img", "info", "--output=json", str(img)], capture_output=True, text=True)
    assert '"format": "vmdk"' in probe.stdout  # what qemu-img's own probe makes of it
    conf = config("[vm]\nname = hvmdk\n" + GUEST + f"[disk d]\nbackend = tmpfs\nsize = 16M\nsource = {img}\n")
    r = vmlaunch(conf, "--", "head", "-c", "21", "/dev/vda")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "# Disk DescriptorFile"


def test_other_formats_learn_their_size_and_files_from_qemu_img_as_qemus_user(config, tmp_path):
    """A format vmlaunch reads no header of (vmdk): qemu-img info, unprivileged, gives its size and the files it
    names. A sparse vmdk fills the disk; a descriptor naming a host file, readable by anyone, is refused and nothing
    is left behind."""
    raw, image = tmp_path / "r.raw", tmp_path / "s.vmdk"
    with open(raw, "wb") as f:
        f.write(b"VMDK-DATA")
        f.truncate(4 << 20)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", str(raw), str(image)], check=True)
    conf = config("[vm]\nname = hvmdk2\n" + GUEST +
                  f"[disk d]\nbackend = tmpfs\nsize = 16M\nsource = {image}\nsource-format = vmdk\n")
    r = vmlaunch(conf, "--", "head", "-c", "9", "/dev/vda")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "VMDK-DATA"
    shared = Path(tempfile.mkdtemp(prefix="vmlaunch-extent-"))
    try:
        os.chmod(shared, 0o755)
        (shared / "secret").write_bytes(b"HOST-SECRET-" * 100)
        os.chmod(shared / "secret", 0o644)
        evil = tmp_path / "evil.vmdk"
        evil.write_text('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
                        f'RW 2048 FLAT "{shared / "secret"}" 0\n')
        conf = config("[vm]\nname = hvmdk2\n" + GUEST +
                      f"[disk d]\nbackend = tmpfs\nsize = 16M\nsource = {evil}\nsource-format = vmdk\n",
                      name="evil.conf")
        r = vmlaunch(conf, "--", "head", "-c", "12", "/dev/vda")
        assert "HOST-SECRET" not in r.stdout
        assert r.returncode == 1 and f"names another file, {shared / 'secret'}" in r.stderr, r.stderr
        assert not os.path.exists("/run/vmlaunch/hvmdk2")
    finally:
        subprocess.run(["rm", "-rf", str(shared)])


def test_forged_journal_touches_nothing_outside_the_state_dir(tmp_path):
    """A leftover state dir whose journal was written by someone else: records pointing outside it (directly, through
    a symlink inside it, or at a process vmlaunch never started) are refused; --cleanup still removes the dir."""
    name = "hforged"
    state = f"/run/vmlaunch/{name}"
    outside = tmp_path / "outside"
    outside.mkdir()
    victim, through_link, victim_dir = outside / "victim", outside / "via-link", outside / "empty-dir"
    victim.write_text("keep")
    through_link.write_text("keep")
    victim_dir.mkdir()
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        start = open(f"/proc/{bystander.pid}/stat").read().rsplit(")", 1)[1].split()[19]
        assert not os.path.exists(state) and not os.path.exists(f"{state}.lock")
        os.makedirs(state, mode=0o700)
        os.symlink(outside, f"{state}/link")
        with open(f"{state}/journal", "w") as j:
            j.write(f"unlink {victim}\n"
                    f"unlink {state}/../../..{victim}\n"
                    f"unlink {state}/link/via-link\n"
                    f"rmdir {victim_dir}\n"
                    f"rmdir {state}/link/empty-dir\n"
                    f"umount {state}/link\n"
                    f"kill {bystander.pid}:{start}\n"
                    "zram-remove ../../../sys/class/zram-control\n"
                    "lvm-remove not/a/name\n"
                    "brd-discard /dev/sda\n")
        r = vmlaunch("--cleanup", name)
        assert r.returncode == 0, r.stderr  # the leftover is gone; each refusal is said on stderr
        assert "refusing to remove" in r.stderr and "not killing it" in r.stderr
        assert victim.read_text() == "keep" and through_link.read_text() == "keep" and victim_dir.is_dir()
        assert bystander.poll() is None
        assert not os.path.exists(state) and not os.path.exists(f"{state}.lock")
    finally:
        bystander.kill()
        bystander.wait()
        subprocess.run(["rm", "-rf", state, f"{state}.lock"])


def test_guest_memory_total_cannot_wrap_around(config, tmp_path):
    conf = config("[vm]\nname = hmem\n" + GUEST + "[memory tier far]\nbackend = dram\nsize = 2T\n")
    r = vmlaunch("--dry-run", "--set", "vm.memory=16777215T", conf)
    assert "-m\n0M" not in r.stdout
    assert r.returncode == 2 and "more than 4 PiB" in r.stderr, r.stderr


def test_more_pci_devices_than_q35_slots_is_refused_before_anything_is_made(config):
    """28 disks + the command's virtio-serial + pvpanic + virtio-rng: 31 functions for q35's 30 free slots. qemu said
    'no slot/function available' after every disk was made; vmlaunch now says so first (27 disks boot)."""
    disks = lambda n: "".join(f"[disk d{i}]\nbackend = tmpfs\nsize = 1M\n" for i in range(n))
    conf = config("[vm]\nname = hpci\nmemory = 256M\n" + GUEST + disks(28))
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2, r.stderr
    assert "31 PCI devices (28 disks" in r.stderr and "30 free slots" in r.stderr
    assert not os.path.exists("/run/vmlaunch/hpci")
    conf = config("[vm]\nname = hpci\nmemory = 256M\n" + GUEST + disks(27), name="ok.conf")
    r = vmlaunch(conf, "--", "sh", "-c", "ls /sys/block | grep -c vd")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "27\n"


def meminfo_bytes(key):
    for line in open("/proc/meminfo"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def test_ram_disks_and_hugepages_bounded_by_the_host(config):
    total_mib = meminfo_bytes("MemTotal") >> 20
    conf = config("[vm]\nname = hram\nmemory = 256M\n" + GUEST +
                  f"[disk a]\nbackend = tmpfs\nsize = {total_mib // 2 + 1}M\n"
                  f"[disk b]\nbackend = zram\nsize = {total_mib // 2 + 1}M\n")
    r = vmlaunch("--dry-run", conf)
    assert r.returncode == 2, r.stderr
    assert f"this host has {total_mib} MiB (MemTotal" in r.stderr
    # Halfway between MemAvailable and MemTotal: within MemTotal, so only the hugepage bound can refuse it, and far
    # enough above MemAvailable that memory freed between this read and vmlaunch's (a VM just ended) cannot fit it.
    avail_mib = meminfo_bytes("MemAvailable") >> 20
    pages = (avail_mib + total_mib) // 4
    assert pages * 2 - avail_mib >= 64, "MemAvailable is too close to MemTotal for this test"
    conf = config(f"[vm]\nname = hram\nmemory = {pages * 2}M\n[memory]\nhugepages = 2M\n" + GUEST, name="hp.conf")
    r = vmlaunch("--dry-run", conf)
    assert r.returncode == 2, r.stderr
    assert f"{pages} pages" in r.stderr and "MemAvailable" in r.stderr


def forge_and_clean_up(name, records):
    """Writes a leftover state dir whose journal holds only `records`, then runs --cleanup NAME on it."""
    state = f"/run/vmlaunch/{name}"
    assert not os.path.exists(state) and not os.path.exists(f"{state}.lock")
    os.makedirs(state, mode=0o700)
    try:
        with open(f"{state}/journal", "w") as j:
            j.write("".join(r + "\n" for r in records))
        r = vmlaunch("--cleanup", name)
        assert not os.path.exists(state)
        return r
    finally:
        subprocess.run(["rm", "-rf", state, f"{state}.lock"])


def test_forged_zram_and_hugepages_records_do_nothing():
    """A zram device and hugepages vmlaunch did not make for the VM (the host's, another VM's): records naming them
    in a forged journal, well-formed ones, remove nothing and give nothing back."""
    with open("/sys/class/zram-control/hot_add") as f:
        zram = f.read().strip()
    pool = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
    before = int(open(pool).read())
    try:
        # someone else's reservation of two pages
        with open(pool, "w") as f:
            f.write(str(before + 2))
        assert int(open(pool).read()) == before + 2, "could not reserve two 2M pages for the test"
        r = forge_and_clean_up("hforged2", [f"hugepages global:0:2048:{before}:2", f"zram-remove {zram}"])
        assert r.returncode == 0, r.stderr
        assert f"refusing to remove /dev/zram{zram}" in r.stderr
        assert "refusing to give back hugepages" in r.stderr
        assert os.path.exists(f"/sys/block/zram{zram}")
        assert int(open(pool).read()) == before + 2
    finally:
        with open(pool, "w") as f:
            f.write(str(before))
        if os.path.exists(f"/sys/block/zram{zram}"):
            with open("/sys/class/zram-control/hot_remove", "w") as f:
                f.write(zram)


def test_zram_of_a_vm_is_removed_only_with_its_mark(config):
    """The VM's own zram device goes at exit (the mark on its state dir names its diskseq); a second VM's journal
    naming the first one's device while it runs leaves it alone."""
    conf = config("[vm]\nname = hzram\n" + GUEST + "[disk z]\nbackend = zram\nsize = 16M\n")
    p = subprocess.Popen([VMLAUNCH, str(conf), "--", "sh", "-c", "echo up; exec sleep 600"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "up\n", p.stderr.read() if p.poll() is not None else ""
        pid = qemu_of("hzram")
        devs = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        zram = next(d for d in devs if d.startswith("/dev/zram"))[len("/dev/zram"):]
        seq = open(f"/sys/block/zram{zram}/diskseq").read().strip()
        assert os.getxattr("/run/vmlaunch/hzram", f"trusted.vmlaunch.zram.{zram}") == seq.encode()
        r = forge_and_clean_up("hzram2", [f"zram-remove {zram}"])
        assert f"refusing to remove /dev/zram{zram}" in r.stderr
        assert os.path.exists(f"/sys/block/zram{zram}")
    finally:
        p.terminate()
        p.wait(timeout=120)
    assert p.returncode == 128 + 15, p.stderr.read()
    # gone with its VM, unless another test took the number since
    assert not os.path.exists(f"/sys/block/zram{zram}") or open(f"/sys/block/zram{zram}/diskseq").read().strip() != seq


def lvm_usable():
    """The kernel's device-mapper answering (dmsetup opens /dev/mapper/control; the node can exist without it)."""
    return subprocess.run(["sh", "-c", "command -v lvcreate && dmsetup version"], capture_output=True).returncode == 0


def test_forged_lvm_record_removes_no_volume_without_the_vms_tag(tmp_path):
    """lvm-remove VG/LV removes a volume only if it carries vmlaunch=STATE_DIR (lvcreate --addtag): the tag check
    itself is a unit test (test_storage_commands: test_lvm_owner_tag); here a real volume on a loop PV."""
    if not lvm_usable():
        reason = ("no device-mapper in this kernel (/dev/mapper/control) or no lvm2: the lvm-remove undo cannot run "
                  "here; its tag check is unit-tested (test_lvm_owner_tag)")
        print(reason)
        pytest.skip(reason)
    img = tmp_path / "pv.img"
    img.write_bytes(b"")
    os.truncate(img, 64 << 20)
    loop = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True,
                          check=True).stdout.strip()
    vg = f"vmlforge{os.getpid()}"
    try:
        subprocess.run(["vgcreate", "-s", "4M", vg, loop], check=True, capture_output=True)
        subprocess.run(["lvcreate", "--yes", "-L", "8M", "-n", "theirs", vg], check=True, capture_output=True)
        subprocess.run(["lvcreate", "--yes", "-L", "8M", "-n", "other", "--addtag", "vmlaunch=/run/vmlaunch/else",
                        vg], check=True, capture_output=True)
        r = forge_and_clean_up("hlvm", [f"lvm-remove {vg}/theirs", f"lvm-remove {vg}/other"])
        assert r.stderr.count("refusing to remove logical volume") == 2, r.stderr
        lvs = subprocess.run(["lvs", "--noheadings", "-o", "lv_name", vg], capture_output=True, text=True).stdout
        assert "theirs" in lvs and "other" in lvs
    finally:
        subprocess.run(["vgremove", "-f", vg], capture_output=True)
        subprocess.run(["losetup", "-d", loop])


def test_release_binary_is_built_hardened():
    """build/vmlaunch (what `make install` installs; it runs as root) has Debian's hardening: the GOT read-only once
    started (RELRO, bind now), a non-executable stack, stack canaries and fortified libc calls (imported _chk
    functions), and it needs no shared library but libc and its loader."""
    binary = ROOT / "build" / "vmlaunch"
    dynamic = subprocess.run(["readelf", "-dW", binary], capture_output=True, text=True, check=True).stdout
    segments = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    symbols = subprocess.run(["nm", "-D", "--undefined-only", binary], capture_output=True, text=True,
                             check=True).stdout
    assert "BIND_NOW" in dynamic and "PIE" in dynamic, dynamic
    assert "GNU_RELRO" in segments, segments
    stack = [line for line in segments.splitlines() if "GNU_STACK" in line]
    assert stack and stack[0].split()[-2] == "RW", segments
    assert "__stack_chk_fail" in symbols, symbols
    assert "__snprintf_chk" in symbols, symbols
    needed = [line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert set(needed) <= {"libc.so.6", "ld-linux-x86-64.so.2"}, needed
