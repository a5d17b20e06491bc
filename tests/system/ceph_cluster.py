"""The throwaway single-node Ceph cluster (tests/ceph/) the RBD tests run against: one per pytest session, shared by
every test module that asks for the `ceph` fixture (conftest.py), so two modules never start two clusters on the
same ports."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

# python3-rados and python3-rbd check the cluster from the test; `make check` installs them (DEPS_TEST), so a missing
# one is an error here, never a silently skipped backend.
import rados
import rbd

CEPH = Path(__file__).resolve().parents[2] / "tests" / "ceph"


class Cluster:
    def __init__(self, path):
        self.dir = path
        self.conf = path / "ceph.conf"
        self.keyring = path / "ceph.client.vmlaunch.keyring"
        self.key = re.search(r"key = (\S+)", self.keyring.read_text()).group(1)

    def connect(self):
        """An admin connection and the ioctx of pool rbd; the caller shuts it down."""
        c = rados.Rados(conffile=str(self.conf), rados_id="admin")
        c.connect(timeout=30)
        return c, c.open_ioctx("rbd")

    def images(self):
        c, io = self.connect()
        try:
            return set(rbd.RBD().list(io))
        finally:
            io.close()
            c.shutdown()

    def with_image(self, name, fn):
        c, io = self.connect()
        try:
            with rbd.Image(io, name) as img:
                return fn(img)
        finally:
            io.close()
            c.shutdown()

    def create(self, name, size, data=b""):
        c, io = self.connect()
        try:
            rbd.RBD().create(io, name, size, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
            if data:
                with rbd.Image(io, name) as img:
                    img.write(data, 0)
        finally:
            io.close()
            c.shutdown()

    def remove(self, name):
        """Removes an image the test made, with its snapshots (unprotecting them)."""
        c, io = self.connect()
        try:
            try:
                with rbd.Image(io, name) as img:
                    for s in list(img.list_snaps()):
                        if img.is_protected_snap(s["name"]):
                            img.unprotect_snap(s["name"])
                        img.remove_snap(s["name"])
            except rbd.ImageNotFound:
                return
            rbd.RBD().remove(io, name)
        finally:
            io.close()
            c.shutdown()


def cluster():
    """Installs Ceph if needed, starts a cluster, yields it, stops and removes it."""
    r = subprocess.run(["bash", str(CEPH / "install.sh")], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"tests/ceph/install.sh failed:\n{r.stdout}{r.stderr}"
    # short: the daemons' admin sockets live here, and a unix socket path holds 107 bytes
    path = Path(tempfile.mkdtemp(prefix="vc-", dir="/tmp"))
    try:
        r = subprocess.run(["bash", str(CEPH / "start.sh"), str(path)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"tests/ceph/start.sh failed:\n{r.stdout}{r.stderr}"
        yield Cluster(path)
    finally:
        subprocess.run(["bash", str(CEPH / "stop.sh"), str(path)], capture_output=True, timeout=120)
        shutil.rmtree(path, ignore_errors=True)
