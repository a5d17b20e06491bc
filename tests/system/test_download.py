"""source = URL with source-sha256: downloaded once into /var/cache/vmlaunch/images (keyed by the SHA-256), verified
before it is kept, never by --dry-run, by a child running as qemu's user. The server is python's http.server on
127.0.0.1, started by the test."""
import hashlib
import os
import pwd
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GUEST, QEMU_USER, STATE_ROOT, VMLAUNCH, free_port, vmlaunch

CACHE = Path("/var/cache/vmlaunch/images")

# python's http.server, and each request's log line says which user owns the client's socket (/proc/net/tcp: the
# connection from the client's port to ours), so a test can see who downloaded.
SERVER = """
import functools, http.server, sys
port, root = int(sys.argv[1]), sys.argv[2]

class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        uid = "?"
        for line in open("/proc/net/tcp").read().splitlines()[1:]:
            f = line.split()
            if int(f[1].split(":")[1], 16) == self.client_address[1] and int(f[2].split(":")[1], 16) == port:
                uid = f[7]
        sys.stderr.write("uid=%s %s\\n" % (uid, fmt % args))
        sys.stderr.flush()

http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=root)).serve_forever()
"""
SIZE = 2 << 20


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www, its request log in tmp_path/http.log; and a random image
    there (random, so its SHA-256 names a cache entry no other run has). Cache entries it names are removed after."""
    www = tmp_path / "www"
    www.mkdir()
    image = os.urandom(SIZE)
    (www / "img.raw").write_bytes(image)
    sha = hashlib.sha256(image).hexdigest()
    port = free_port()
    log = open(tmp_path / "http.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(www)], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.05)
    names = [sha]
    try:
        yield {"url": f"http://127.0.0.1:{port}/img.raw", "sha": sha, "log": tmp_path / "http.log", "names": names,
               "port": port}
    finally:
        proc.terminate()
        proc.wait()
        log.close()
        for n in names:
            (CACHE / n).unlink(missing_ok=True)


def gets(server):
    return [l for l in server["log"].read_text().splitlines() if '"GET /img.raw' in l]


def url_conf(config, name, url, sha=None):
    return config(f"[vm]\nname = {name}\n" + GUEST + f"[disk d]\nbackend = tmpfs\nsize = 8M\nsource = {url}\n" +
                  (f"source-sha256 = {sha}\n" if sha else ""))


def cache_listing():
    return sorted(os.listdir(CACHE)) if CACHE.exists() else []


def test_url_image_downloaded_once_verified_and_never_by_dry_run(config, server):
    conf = url_conf(config, "urlonce", server["url"], server["sha"].upper())  # hex digits in either case
    r = vmlaunch("--dry-run", conf)
    assert r.returncode == 0, r.stderr
    assert not gets(server) and not (CACHE / server["sha"]).exists(), "--dry-run downloaded"

    check = ["--", "sh", "-c", f"head -c {SIZE} /dev/vda | sha256sum"]
    r = vmlaunch(conf, *check)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == server["sha"], "the guest's disk is not the image"
    assert len(gets(server)) == 1
    # libcurl ran as qemu's user, not as root
    assert gets(server)[0].startswith(f"uid={pwd.getpwnam(QEMU_USER).pw_uid} "), gets(server)
    cached = CACHE / server["sha"]
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == server["sha"]

    r = vmlaunch(conf, *check)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == server["sha"]
    assert len(gets(server)) == 1, "the second launch downloaded again"


def test_wrong_sha256_is_refused_and_nothing_is_kept(config, server):
    wrong = hashlib.sha256(b"another image").hexdigest()
    server["names"].append(wrong)
    before = cache_listing()
    r = vmlaunch(url_conf(config, "urlwrong", server["url"], wrong), "--", "true")
    assert r.returncode == 1, r.stderr
    assert f"has SHA-256 {server['sha']}, not the {wrong} that source-sha256 says; the download was not kept" in r.stderr
    assert len(gets(server)) == 1
    assert cache_listing() == before  # no entry under either name, no temporary file
    assert not (STATE_ROOT / "urlwrong").exists()


def test_server_down_and_missing_image_are_clear_errors(config, server):
    down = f"http://127.0.0.1:{free_port()}/img.raw"
    r = vmlaunch(url_conf(config, "urldown", down, server["sha"]), "--", "true")
    assert r.returncode == 1, r.stderr
    assert f'vmlaunch: disk "d": cannot download {down}: ' in r.stderr and "onnect" in r.stderr, r.stderr
    missing = server["url"].replace("img.raw", "nothing.raw")
    r = vmlaunch(url_conf(config, "urldown", missing, server["sha"]), "--", "true")
    assert r.returncode == 1, r.stderr
    assert f'vmlaunch: disk "d": cannot download {missing}: ' in r.stderr and "404" in r.stderr, r.stderr
    assert not (CACHE / server["sha"]).exists()
    assert not (STATE_ROOT / "urldown").exists()


def test_url_without_or_with_a_malformed_sha256_is_a_config_error(config, server):
    r = vmlaunch(url_conf(config, "urlnosha", server["url"]), "--", "true")
    assert r.returncode == 2
    assert (f"t.conf:11: [disk d] source {server['url']}: a URL needs source-sha256 = the image's SHA-256"
            in r.stderr), r.stderr
    r = vmlaunch(url_conf(config, "urlnosha", server["url"], "abc123"), "--", "true")
    assert r.returncode == 2
    assert 't.conf:12: [disk d] source-sha256 "abc123": expected the image\'s SHA-256, 64 hex digits' in r.stderr
    assert not gets(server) and not (STATE_ROOT / "urlnosha").exists()


def test_download_shows_progress_on_a_terminal(config, server, tmp_path):
    """Under script(1) vmlaunch's stderr is a terminal: the progress line appears there, and only there."""
    conf = url_conf(config, "urltty", server["url"], server["sha"])
    typescript = tmp_path / "typescript"
    r = subprocess.run(["script", "-qefc", f"{VMLAUNCH} {conf} -- true", str(typescript)], capture_output=True,
                       text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    out = typescript.read_text(errors="replace")
    assert 'vmlaunch: disk "d": downloading [##########]' in out, out
    assert "100% 2.0/2.0 MiB" in out, out
