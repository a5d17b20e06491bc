"""Backend rbd against a real throwaway Ceph cluster (tests/ceph/): create, grow, clone, ephemeral removal, errors the
cluster gives (wrong key, missing pool, dead monitors), the guest's I/O read back through librbd, and msgr2 secure mode."""
import base64
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import GUEST, QMP, ROOT, STATE_ROOT, read_until, start, vmlaunch

# python3-rados and python3-rbd check the cluster from the test; `make check` installs them (DEPS_TEST), so a missing
# one is an error here, never a silently skipped backend.
import rados
import rbd

PATTERN = b"vmlaunch-pattern"
PATTERN_LEN = len(PATTERN) << 12  # 64 KiB
FEATURES = {"layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"}


def rbd_config(config, ceph, vm, disk, name="t.conf"):
    return config(f"[vm]\nname = {vm}\n" + GUEST +
                  f"[disk d]\nbackend = rbd\npool = rbd\nconf = {ceph.conf}\nuser = vmlaunch\n" + disk, name=name)


def write_pattern(then="exec sleep 600"):
    """Guest shell: 64 KiB of the pattern at the start of /dev/vda with O_DIRECT, read back, then `then`."""
    return ("printf vmlaunch-pattern > /tmp/p; i=0; while [ $i -lt 12 ]; do cat /tmp/p /tmp/p > /tmp/q; "
            "mv /tmp/q /tmp/p; i=$((i+1)); done; dd if=/tmp/p of=/dev/vda bs=65536 oflag=direct conv=fsync "
            "2>/dev/null; dd if=/dev/vda bs=65536 count=1 iflag=direct 2>/dev/null | cmp - /tmp/p && echo written; "
            + then)


def stop(p):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=120)
    assert rc == 128 + signal.SIGTERM, p.stderr.read()


def block_node(vm, node):
    q = QMP(STATE_ROOT / vm / "qmp.sock")
    try:
        return next(n for n in q.execute("query-named-block-nodes") if n["node-name"] == node)
    finally:
        q.close()


def qemu_cmdline(vm):
    pid = None
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                args = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args[0].endswith(b"qemu-system-x86_64") and f"{vm},debug-threads=on".encode() in args:
                pid = int(p.name)
                return pid, [a.decode() for a in args if a]
    raise AssertionError(f"no qemu for {vm}")


def cmdlines_holding(secret):
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if secret in (p / "cmdline").read_bytes():
                    found.append(p.name)
            except OSError:
                pass
    return found


def test_ephemeral_create_runs_on_rbd_node_with_direct_cache_key_by_file_and_is_removed(config, ceph):
    before = ceph.images()
    conf = rbd_config(config, ceph, "rbdeph", "create = yes\nsize = 64M\nephemeral = yes\n")
    p = start(conf, "--", "sh", "-c", write_pattern())
    try:
        read_until(p.stdout, "written")
        assert ceph.images() == before | {"vmlaunch-rbdeph-d"}
        info = ceph.with_image("vmlaunch-rbdeph-d", lambda img: (img.size(), img.features()))
        assert info[0] == 64 << 20
        names = {"layering": rbd.RBD_FEATURE_LAYERING, "exclusive-lock": rbd.RBD_FEATURE_EXCLUSIVE_LOCK,
                 "object-map": rbd.RBD_FEATURE_OBJECT_MAP, "fast-diff": rbd.RBD_FEATURE_FAST_DIFF,
                 "deep-flatten": rbd.RBD_FEATURE_DEEP_FLATTEN}
        assert {n for n, bit in names.items() if info[1] & bit} == FEATURES
        # qemu's rbd driver straight under the device, librbd's cache off
        node = block_node("rbdeph", "disk-d")
        assert node["drv"] == "rbd", node
        assert node["cache"]["direct"] is True, node
        # the key reaches qemu through a root-owned file only qemu's group may read, never through any command line
        key_file = STATE_ROOT / "rbdeph" / "d.rbd-key"
        st = key_file.stat()
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0
        assert st.st_gid == pwd.getpwnam("vmlaunch-qemu").pw_gid
        assert key_file.read_text() == ceph.key
        _, args = qemu_cmdline("rbdeph")
        assert f"secret,id=secret-d,file={key_file},format=base64" in args
        assert cmdlines_holding(ceph.key.encode()) == []
        assert cmdlines_holding(base64.b64decode(ceph.key)) == []
    finally:
        stop(p)
    assert ceph.images() == before
    assert not (STATE_ROOT / "rbdeph").exists()


def test_persistent_image_keeps_guest_data_grows_and_never_shrinks(config, ceph):
    name = "vmlaunch-rbdkeep-d"
    try:
        conf = rbd_config(config, ceph, "rbdkeep", "create = yes\nsize = 64M\n")
        r = vmlaunch(conf, "--", "sh", "-c", write_pattern(then="true"))
        assert r.returncode == 0, r.stderr
        assert r.stdout == "written\n"
        # what the guest wrote, read back through librbd after vmlaunch is gone
        data = ceph.with_image(name, lambda img: img.read(0, PATTERN_LEN))
        assert data == PATTERN * (PATTERN_LEN // len(PATTERN))
        assert not (STATE_ROOT / "rbdkeep").exists()

        # size = larger: grown before boot; the data stays
        conf = rbd_config(config, ceph, "rbdkeep", "size = 96M\n")
        r = vmlaunch(conf, "--", "sh", "-c", "cat /sys/block/vda/size; head -c 16 /dev/vda; echo")
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"{(96 << 20) // 512}\nvmlaunch-pattern\n"
        assert ceph.with_image(name, lambda img: img.size()) == 96 << 20

        # size = smaller: a warning, and the image keeps its size (shrinking would cut off the guest's data)
        conf = rbd_config(config, ceph, "rbdkeep", "size = 32M\n")
        r = vmlaunch(conf, "--", "cat", "/sys/block/vda/size")
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"{(96 << 20) // 512}\n"
        assert (f"vmlaunch: warning: {conf}:13: [disk d]: image rbd/{name} is 100663296 bytes, larger than size = "
                f"33554432; vmlaunch never shrinks an image") in r.stderr
        assert ceph.with_image(name, lambda img: img.size()) == 96 << 20

        # an existing image is never removed: ephemeral = yes on it is refused before anything happens
        conf = rbd_config(config, ceph, "rbdkeep", "ephemeral = yes\ncreate = yes\nsize = 96M\n")
        r = vmlaunch(conf, "--", "true")
        assert r.returncode == 2
        assert (f"{conf}:13: [disk d]: image rbd/{name} exists; an ephemeral disk is created fresh and removed at "
                "exit, and vmlaunch never removes an image it did not create") in r.stderr
        assert name in ceph.images()
    finally:
        ceph.remove(name)


@pytest.fixture
def protected_base(ceph):
    ceph.create("rbdbase", 64 << 20, b"base-image-data")
    ceph.with_image("rbdbase", lambda img: (img.create_snap("s1"), img.protect_snap("s1")))
    yield "rbd/rbdbase@s1"
    ceph.remove("rbdbase")


def test_ephemeral_clone_of_protected_snapshot_sees_parent_and_is_removed(config, ceph, protected_base):
    before = ceph.images()
    conf = rbd_config(config, ceph, "rbdclone",
                      f"clone-from = {protected_base}\nsize = 128M\nephemeral = yes\n")
    p = start(conf, "--", "sh", "-c", "head -c 15 /dev/vda; echo; cat /sys/block/vda/size; "
              "echo guest-was-here | dd of=/dev/vda conv=fsync 2>/dev/null; echo ready; exec sleep 600")
    try:
        out = read_until(p.stdout, "ready")
        assert out == f"base-image-data\n{(128 << 20) // 512}\nready\n"
        parent = ceph.with_image("vmlaunch-rbdclone-d", lambda img: img.parent_info())
        assert parent == ("rbd", "rbdbase", "s1")
    finally:
        stop(p)
    assert ceph.images() == before
    # the parent is untouched: copy-on-write
    assert ceph.with_image("rbdbase", lambda img: img.read(0, 15)) == b"base-image-data"


def test_clone_of_unprotected_or_missing_snapshot_refused(config, ceph, protected_base):
    before = ceph.images()
    ceph.with_image("rbdbase", lambda img: img.create_snap("open"))
    conf = rbd_config(config, ceph, "rbdclone2", "clone-from = rbd/rbdbase@open\nephemeral = yes\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 2
    assert (f"{conf}:13: [disk d] clone-from: snapshot rbd/rbdbase@open is not protected; a clone needs its parent "
            "to stay (rbd snap protect rbd/rbdbase@open)") in r.stderr
    conf = rbd_config(config, ceph, "rbdclone2", "clone-from = rbd/rbdbase@nosuch\nephemeral = yes\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1
    assert (f"{conf}:13: [disk d] clone-from: no snapshot \"nosuch\" of rbd/rbdbase: No such file or directory"
            in r.stderr)
    assert ceph.images() == before
    assert not (STATE_ROOT / "rbdclone2").exists()


def test_wrong_key_is_the_cluster_refusing_and_nothing_is_left(config, ceph, tmp_path):
    raw = bytearray(base64.b64decode(ceph.key))
    raw[-1] ^= 0xFF  # the secret is the tail; the head is the key's type and creation time
    bad = tmp_path / "bad.keyring"
    bad.write_text(f"[client.vmlaunch]\n\tkey = {base64.b64encode(bytes(raw)).decode()}\n")
    before = ceph.images()
    conf = rbd_config(config, ceph, "rbdbadkey", f"keyring = {bad}\ncreate = yes\nsize = 64M\nephemeral = yes\n")
    t0 = time.monotonic()
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1, r.stderr
    assert (f"vmlaunch: {conf}:13: [disk d]: cannot connect to the Ceph cluster in {ceph.conf} as client.vmlaunch: "
            "Permission denied\n") in r.stderr
    assert time.monotonic() - t0 < 15
    assert ceph.images() == before
    assert not (STATE_ROOT / "rbdbadkey").exists()


def test_missing_pool_and_missing_image(config, ceph):
    conf = config("[vm]\nname = rbdnopool\n" + GUEST +
                  f"[disk d]\nbackend = rbd\nconf = {ceph.conf}\nuser = vmlaunch\npool = nopool\ncreate = yes\n"
                  "size = 64M\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1
    assert (f"vmlaunch: {conf}:12: [disk d] pool \"nopool\": cannot open the pool in the Ceph cluster of {ceph.conf}: "
            "No such file or directory\n") in r.stderr
    conf = rbd_config(config, ceph, "rbdnoimage", "image = nosuch\n")
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1
    assert (f"{conf}:13: [disk d]: no image rbd/nosuch in the Ceph cluster of {ceph.conf} (expected create = yes "
            "with size =, or clone-from =): No such file or directory") in r.stderr


def test_dead_cluster_fails_in_seconds(config, ceph, tmp_path):
    dead = tmp_path / "dead.conf"
    # nothing listens there: librados would hunt for monitors for client_mount_timeout (300 s) by default
    dead.write_text(re.sub(r"mon_host = .*", "mon_host = [v2:127.0.0.1:1]", ceph.conf.read_text()))
    conf = config("[vm]\nname = rbddead\n" + GUEST +
                  f"[disk d]\nbackend = rbd\npool = rbd\nconf = {dead}\nuser = vmlaunch\ncreate = yes\nsize = 64M\n")
    t0 = time.monotonic()
    r = vmlaunch(conf, "--", "true")
    assert r.returncode == 1
    assert time.monotonic() - t0 < 30
    assert f"cannot connect to the Ceph cluster in {dead} as client.vmlaunch: Connection timed out" in r.stderr


def test_killed_vmlaunch_guardian_removes_the_ephemeral_image(config, ceph):
    before = ceph.images()
    conf = rbd_config(config, ceph, "rbdkill", "create = yes\nsize = 64M\nephemeral = yes\n")
    p = start(conf, "--", "true", env={**os.environ, "VMLAUNCH_STOP_AT": "disk"})
    try:
        read_until(p.stderr, "VMLAUNCH_STOP_AT=disk")
        assert "vmlaunch-rbdkill-d" in ceph.images()
        journal = (STATE_ROOT / "rbdkill" / "journal").read_text()
        assert f"rbd-remove pool=rbd%0Aimage=vmlaunch-rbdkill-d%0Aconf={ceph.conf}%0Auser=vmlaunch%0A" in journal
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 60
    while (STATE_ROOT / "rbdkill").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (STATE_ROOT / "rbdkill").exists()
    assert ceph.images() == before


def test_secure_mode_boots_does_io_and_qemu_really_uses_it(config, ceph, tmp_path):
    # the user's conf gives qemu's librados an admin socket, so the test can ask it what mode it was configured with
    user_conf = tmp_path / "c.conf"
    asok_dir = Path(tempfile.mkdtemp(prefix="as-", dir="/tmp"))
    qemu_user = pwd.getpwnam("vmlaunch-qemu")
    os.chown(asok_dir, qemu_user.pw_uid, qemu_user.pw_gid)  # qemu, as its own user, makes its admin socket there
    user_conf.write_text(ceph.conf.read_text() + f"\n[client.vmlaunch]\nadmin_socket = {asok_dir}/$pid.asok\n"
                         "ms_client_mode = crc\n")
    before = ceph.images()
    conf = config("[vm]\nname = rbdsecure\n" + GUEST +
                  f"[disk d]\nbackend = rbd\npool = rbd\nconf = {user_conf}\nuser = vmlaunch\ncreate = yes\n"
                  "size = 64M\nephemeral = yes\nms-mode = secure\n")
    p = start(conf, "--", "sh", "-c", write_pattern())
    try:
        read_until(p.stdout, "written")
        generated = STATE_ROOT / "rbdsecure" / "d.ceph.conf"
        pid, args = qemu_cmdline("rbdsecure")
        assert any(f"conf={generated}," in a for a in args), args
        text = generated.read_text()
        assert text.startswith(user_conf.read_text())
        assert text.endswith("[client.vmlaunch]\nms_client_mode = secure\nms_mon_client_mode = secure\n")
        assert stat.S_IMODE(generated.stat().st_mode) == 0o640 and generated.stat().st_uid == 0
        # what Ceph's own parser makes of it (a section given twice merges, the later line wins)
        c = rados.Rados(conffile=str(generated), rados_id="vmlaunch")
        try:
            assert c.conf_get("ms_client_mode") == "secure"
            assert c.conf_get("ms_mon_client_mode") == "secure"
        finally:
            c.shutdown()
        # and what qemu's librados runs with
        asok = asok_dir / f"{pid}.asok"
        for what in ("ms_client_mode", "ms_mon_client_mode"):
            out = subprocess.run(["ceph", "--admin-daemon", str(asok), "config", "get", what], capture_output=True,
                                 text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            assert f'"{what}": "secure"' in out.stdout
    finally:
        stop(p)
        shutil.rmtree(asok_dir, ignore_errors=True)
    assert ceph.images() == before
    assert not (STATE_ROOT / "rbdsecure").exists()


def test_image_open_by_another_client_is_refused(config, ceph):
    ceph.create("rbdbusy", 64 << 20)
    c, io = ceph.connect()
    try:
        with rbd.Image(io, "rbdbusy"):  # a writable open holds a watch, as a running VM's qemu does
            conf = rbd_config(config, ceph, "rbdbusy", "image = rbdbusy\n")
            r = vmlaunch("--dry-run", conf)
            assert r.returncode == 1
            assert (f"{conf}:13: [disk d]: image rbd/rbdbusy is open by 1 other client(s) (rbd status rbd/rbdbusy); "
                    "two writers would corrupt it: Device or resource busy") in r.stderr
            # read-only, the same image is fine
            conf = rbd_config(config, ceph, "rbdbusy", "image = rbdbusy\nreadonly = yes\n")
            r = vmlaunch("--dry-run", conf)
            assert r.returncode == 0, r.stderr
            assert "read-only=on" in r.stdout
    finally:
        io.close()
        c.shutdown()
        ceph.remove("rbdbusy")


def test_remove_undo_is_idempotent(ceph):
    """A journal replayed twice, or after the image or its pool went away, undoes quietly."""
    ceph.create("rbdreplay", 16 << 20)
    spec = f"pool=rbd%0Aimage=rbdreplay%0Aconf={ceph.conf}%0Auser=vmlaunch%0Ams-mode=secure"
    gone_pool = f"pool=nopool%0Aimage=rbdreplay%0Aconf={ceph.conf}%0Auser=vmlaunch%0Ams-mode=default"
    state = STATE_ROOT / "rbdreplay"
    state.mkdir(parents=True)
    (state / "journal").write_text(f"rbd-remove {gone_pool}\nrbd-remove {spec}\nrbd-remove {spec}\n")
    r = vmlaunch("--cleanup", "rbdreplay")
    assert r.returncode == 0, r.stderr
    assert r.stderr == 'vmlaunch: warning: cleaning up after "rbdreplay", which did not finish\n'
    assert "rbdreplay" not in ceph.images()
    assert not state.exists()


def test_shipped_rbd_conf_boots_an_ephemeral_clone(ceph):
    """configs/rbd.conf as shipped, pointed at the test cluster: a clone of rbd/base@golden, gone after exit."""
    c, io = ceph.connect()
    try:
        rbd.RBD().create(io, "base", 64 << 20, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(io, "base") as img:
            img.write(b"golden-base", 0)
            img.create_snap("golden")
            img.protect_snap("golden")
    finally:
        io.close()
        c.shutdown()
    try:
        before = ceph.images()
        r = vmlaunch(ROOT / "configs" / "rbd.conf", "--set", f"disk.root.conf={ceph.conf}", "--",
                     "head", "-c", "11", "/dev/vda")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "golden-base"
        assert ceph.images() == before  # the clone is gone, the base stays
    finally:
        ceph.remove("base")
