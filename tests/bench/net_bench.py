#!/usr/bin/python3
"""Guest networking (issue 21): TCP throughput and request rate between the guest and this host, per backend; and
the boot-to-ssh time of the cloud image.

Backends, one boot each per round, interleaved round by round:
- `user`: vmlaunch's `[net] mode = user` (qemu's slirp, virtio-net), `restrict = yes`, host forwards on 127.0.0.1;
- `tap`: vmlaunch's `mode = tap` (multiqueue; vhost-net under KVM only) on a bridge inside a network namespace this
  script makes; the host side runs in that namespace;
- `qemu-default`: qemu's default `-nic user` (no model given: q35's default NIC), restrict=on, the same forwards;
- `passt`: passt (Debian's `passt`) on a unix socket, `-netdev stream` + virtio-net-pci, `-t` forwards on 127.0.0.1.
The guest is the Debian test image's userland on the bundled kernel (`[boot] root =`), 2 vCPUs, 1 GiB, TCG here;
iperf3 and its libraries come from the host over a read-only [share] (host and image are both Debian 12). Per boot:
iperf3 host → guest and guest → host (`-R`), 10 s each (the server in the guest, reached through the forward or the
bridge), and the request rate: 64-byte request, 64-byte answer, one connection, 10 s (rr.py, python3 at both ends).
Traffic stays on loopback or inside the namespace; the guest opens no connection of its own.

Boot to ssh (`--ssh-rounds`, default: as many as `--rounds`): the Debian image booted by UEFI with a cloud-init seed (as tests/system/test_guest.py's
cloud-init test), from `vmlaunch CONF` started to the first `vmlaunch --ssh NAME -- true` that succeeds.
Writes results/net.json and results/net.md (report.py puts the latter into results.md).
"""
import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import benchlib as B
import mdtable

WORK = os.environ.get("BENCH_NET_DIR", "/var/tmp/vmlaunch-bench-net")
DEBIAN = os.path.join(B.BUILD, "images", "debian12.raw")
VARIANTS = ["user", "tap", "qemu-default", "passt"]
SECONDS = int(os.environ.get("BENCH_NET_SECONDS", "10"))
NETNS = f"vmlbench{os.getpid()}"
GUEST_TAP_ADDR = "192.168.77.2"

RR = r'''
import socket, sys, time
if sys.argv[1] == "server":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    s.listen(1)
    c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        m = c.recv(64)
        if not m:
            break
        c.sendall(m)
else:
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg, n, end = b"x" * 64, 0, time.monotonic() + float(sys.argv[4])
    while time.monotonic() < end:
        c.sendall(msg)
        got = b""
        while len(got) < 64:
            part = c.recv(64 - len(got))
            if not part:
                raise SystemExit("closed")
            got += part
        n += 1
    print(n / float(sys.argv[4]))
'''

# In the guest: bring the NIC up (the variants that vmlaunch does not configure), then serve two iperf3 runs and
# one request-rate run, one after the other.
GUEST = r'''
set -e
modprobe -a e1000 e1000e virtio_net 2>/dev/null || true
sleep 1
for i in /sys/class/net/*; do n=${i##*/}; [ "$n" = lo ] || IF=$n; done
ip link set "$IF" up
ip -4 addr show dev "$IF" | grep -q inet || ip addr add "$ADDR" dev "$IF"
echo "nic $IF $(basename "$(readlink /sys/class/net/$IF/device/driver)")"
export LD_LIBRARY_PATH=/opt/tools
/opt/tools/iperf3 -s -1 -p 5201 >/dev/null
/opt/tools/iperf3 -s -1 -p 5201 >/dev/null
python3 /opt/tools/rr.py server 7000
echo served
'''


def prepare():
    tools = os.path.join(WORK, "tools")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(tools)
    os.chmod(WORK, 0o755)
    iperf3 = shutil.which("iperf3")
    if not iperf3:
        sys.exit("iperf3 is missing: apt-get install iperf3")
    shutil.copy(iperf3, tools)
    for line in B.run(["ldd", iperf3]).stdout.splitlines():
        w = line.split()
        if "=>" in w and w[2].startswith("/") and not os.path.basename(w[2]).startswith(("libc.so", "libm.so")):
            shutil.copy(w[2], tools)  # libiperf, libcrypto, libsctp: not in the image; libc and libm are
    with open(os.path.join(tools, "rr.py"), "w") as f:
        f.write(RR)
    return tools


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def netns_up():
    B.run(["ip", "netns", "add", NETNS])
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "br0", "type", "bridge"],
                ["ip", "link", "set", "br0", "up"], ["ip", "addr", "add", "192.168.77.1/24", "dev", "br0"]):
        B.run(["ip", "netns", "exec", NETNS, *cmd])


def netns_down():
    B.run(["ip", "netns", "del", NETNS], check=False)


def write_conf(path, variant, tools, ports, sock):
    fwd = "".join(f"forward = tcp:127.0.0.1:{h}-:{g}\n" for h, g in ports)
    net = {
        "user": "[net n0]\nmode = user\nrestrict = yes\n" + fwd,
        "tap": "[net lan]\nmode = tap\nbridge = br0\n",
        "qemu-default": "[qemu]\nextra = -nic user,restrict=on,%s\n" % ",".join(
            f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in ports),
        "passt": f"[qemu]\nextra = -netdev stream,id=passt,server=off,addr.type=unix,addr.path={sock} "
                 "-device virtio-net-pci,netdev=passt\n",
    }[variant]
    with open(path, "w") as f:
        f.write(f"[vm]\nname = bench-net\ncpus = 2\nmemory = 1G\nconsole-log = {path}.console\n"
                f"[boot]\nkernel = {B.VMLINUX}\ninitrd = {B.INITRAMFS}\nappend = {B.GUEST_APPEND}\nroot = sys\n"
                f"[disk sys]\nbackend = file\npath = {DEBIAN}\nformat = raw\nephemeral = yes\n"
                f"[share tools]\npath = {tools}\nmount = /opt/tools\n" + net)
    return path


def start_passt(ports):
    """passt as qemu's user (its socket is then qemu's to connect to), forwards only from 127.0.0.1; IPv4, no UDP.
    Returns (Popen, socket path). passt 0.0~git20230309 (Debian 12) picks the path itself (/tmp/passt_N.socket):
    with --socket PATH it reports the socket bound but no file appears, so the path is read from its output."""
    argv = ["passt", "-f", "-4", "--runas", "vmlaunch-qemu", "-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2",
            "--no-dhcp-dns", "--no-dhcp-search", "-u", "none"]
    for h, g in ports:
        argv += ["-t", f"127.0.0.1/{h}:{g}"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in p.stderr:
        seen.append(line)
        if line.startswith("UNIX domain socket bound at "):
            sock = line.split(" at ", 1)[1].strip()
            threading.Thread(target=p.stderr.read, daemon=True).start()  # keep its pipe drained
            return p, sock
    p.kill()
    p.wait()
    raise RuntimeError("passt did not start: %s" % "".join(seen))


def client(inside, argv, timeout, until, parse):
    """Retries `argv` (in the namespace for tap) until parse() accepts its output: the guest's server may not listen
    yet (slirp and passt accept on the host's side first, then the guest refuses)."""
    last = ""
    while time.monotonic() < until:
        r = subprocess.run([*inside, *argv], capture_output=True, text=True, timeout=timeout)
        try:
            if r.returncode == 0:
                return parse(r.stdout)
        except (ValueError, KeyError) as e:
            last = "%r: %s" % (e, r.stdout.strip()[-300:])
        else:
            last = r.stderr.strip() or r.stdout.strip()[-300:]
        time.sleep(1)
    raise RuntimeError("client %s never succeeded: %s" % (argv[0], last))


def iperf_bps(out):
    j = json.loads(out)
    if j.get("error"):
        raise ValueError(j["error"])
    return j["end"]["sum_received"]["bits_per_second"]


def run_variant(variant, tools, workdir):
    p1, p2 = free_port(), free_port()
    ports = [(p1, 5201), (p2, 7000)]
    passt, sock = None, None
    la0 = B.loadavg()
    inside = []
    if variant == "tap":
        inside = ["ip", "netns", "exec", NETNS]
        host, port_iperf, port_rr, addr = GUEST_TAP_ADDR, 5201, 7000, GUEST_TAP_ADDR + "/24"
    else:
        host, port_iperf, port_rr, addr = "127.0.0.1", p1, p2, "10.0.2.15/24"
    if variant == "passt":
        passt, sock = start_passt(ports)
    conf = write_conf(os.path.join(workdir, variant + ".conf"), variant, tools, ports, sock)
    t0 = time.monotonic()
    vm = subprocess.Popen([*inside, B.VMLAUNCH, conf, "--", "sh", "-c", f"ADDR={addr}; " + GUEST],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
    r = {"load_before": la0}
    try:
        until = t0 + 600
        iperf = ["iperf3", "-c", host, "-p", str(port_iperf), "-t", str(SECONDS), "-J"]
        r["to_guest_bps"] = client(inside, iperf, SECONDS + 60, until, iperf_bps)
        r["from_guest_bps"] = client(inside, iperf + ["-R"], SECONDS + 60, until, iperf_bps)
        rr = ["/usr/bin/python3", os.path.join(tools, "rr.py"), "client", host, str(port_rr), str(SECONDS)]
        r["rr_per_s"] = client(inside, rr, SECONDS + 60, until, float)
        out, err = vm.communicate(timeout=120)
        if vm.returncode != 0 or "served" not in out:
            raise RuntimeError("vmlaunch exit %d: %s" % (vm.returncode, B.tail(err)))
        r["nic"] = next((line.split(None, 1)[1] for line in out.splitlines() if line.startswith("nic ")), "?")
        r["wall_s"] = time.monotonic() - t0
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        r["error"] = str(e)[:2000] + "\nconsole:\n" + B.tail(B.read_if_there(conf + ".console"), 20)
        if vm.poll() is None:
            vm.send_signal(signal.SIGTERM)
        try:
            vm.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            vm.kill()
            vm.communicate()
    finally:
        if passt:
            passt.kill()
            passt.wait()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sock)  # passt leaves its socket behind when killed
    r["load_after"] = B.loadavg()
    return r


def boot_to_ssh(workdir):
    """The cloud image by UEFI with a NoCloud seed: seconds from `vmlaunch CONF` to a working `vmlaunch --ssh`."""
    key = os.path.join(workdir, "key")
    if not os.path.exists(key):
        B.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
    port = free_port()
    conf = os.path.join(workdir, "ssh.conf")
    with open(conf, "w") as f:
        f.write(f"[vm]\nname = bench-ssh\ncpus = 2\nmemory = 1G\nconsole-log = {conf}.console\n"
                f"[disk sys]\nbackend = file\npath = {DEBIAN}\nformat = raw\nephemeral = yes\n"
                f"[net n0]\nforward = tcp:{port}-:22\nrestrict = yes\n"
                f"[cloud-init]\nssh-key = {key}.pub\nuser = tester\n")
    la0 = B.loadavg()
    t0 = time.monotonic()
    vm = subprocess.Popen([B.VMLAUNCH, conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, start_new_session=True)
    r = {"load_before": la0}
    try:
        while time.monotonic() < t0 + 900 and vm.poll() is None:
            try:
                s = subprocess.run([B.VMLAUNCH, "--ssh", "bench-ssh", "--", "true"], capture_output=True,
                                   timeout=60)
            except subprocess.TimeoutExpired:
                continue
            if s.returncode == 0:
                r["ssh_s"] = time.monotonic() - t0
                break
            time.sleep(0.5)
        else:
            r["error"] = "no ssh: " + B.tail(B.read_if_there(conf + ".console"), 20)
    finally:
        vm.send_signal(signal.SIGTERM)
        try:
            vm.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            vm.kill()
            vm.communicate()
    r["load_after"] = B.loadavg()
    return r


def render(data):
    runs = data["runs"]

    def cell(v, key, scale=1.0, digits=0):
        xs = [r[key] * scale for r in runs.get(v, []) if key in r]
        lo, hi = B.minmax(xs)
        return "%s (%s)" % (mdtable.fmt_num(B.median(xs), digits), mdtable.fmt_range(lo, hi, digits)) if xs else "–"

    names = {"user": "**vmlaunch `mode = user`** (slirp, virtio-net)",
             "tap": "**vmlaunch `mode = tap`** (a queue per vCPU; vhost-net only under KVM), in a netns",
             "qemu-default": "qemu's default `-nic user`", "passt": "passt, `-netdev stream`, virtio-net"}
    nics = {v: sorted({r.get("nic", "?") for r in runs[v] if "nic" in r}) for v in runs}
    L = ["Ran %s, `%s`, %d interleaved rounds, %s. The guest: the Debian 12 test image's userland on the "
         "bundled kernel (`[boot] root =`), 2 vCPUs, 1 GiB, **TCG**: the guest's network stack is emulated code, so "
         "every figure is bounded by the guest CPU, not by the backend alone. iperf3 3.12, %d s per direction, the "
         "server in the guest; request rate: 64-byte request and answer on one TCP connection (TCP_NODELAY), %d s. "
         "Median (min–max)." % (data["host"]["date"], data["command"], data["rounds"], data["host"]["vmlaunch"],
                                 data["seconds"], data["seconds"]), ""]
    rows = []
    for v in VARIANTS:
        if v in runs:
            errs = sum(1 for r in runs[v] if "error" in r)
            rows.append([names[v] + (" (guest driver: %s)" % ", ".join(n.split()[-1] for n in nics[v]) if nics[v] else ""),
                         cell(v, "to_guest_bps", 1e-6), cell(v, "from_guest_bps", 1e-6), cell(v, "rr_per_s"),
                         "%d" % errs])
    L.append(mdtable.md_table(["backend", "host → guest, Mbit/s", "guest → host, Mbit/s", "requests/s", "failed runs"],
                        rows, ["---", "---:", "---:", "---:", "---:"]))
    L.append("")
    ssh = [r["ssh_s"] for r in data.get("ssh", []) if "ssh_s" in r]
    if data.get("ssh"):
        L.append("Boot to ssh (the Debian image by UEFI, cloud-init seed with a key, `vmlaunch --ssh` polled every "
                 "0.5 s until `true` succeeds): %s s, median (%s) of %d boots, %d failed." % (
                     mdtable.fmt_num(B.median(ssh), 1), mdtable.fmt_range(*B.minmax(ssh), 1), len(ssh),
                     len(data["ssh"]) - len(ssh)))
        L.append("")
    L.append(mdtable.load_note(data["order"]))
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--only", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    ap.add_argument("--ssh-rounds", type=int, default=None, help="boot-to-ssh rounds (default: --rounds)")
    ap.add_argument("--render", action="store_true", help="only render results/net.md again from results/net.json")
    args = ap.parse_args()
    if args.render:
        md = render(B.load_json("net.json"))
        with open(os.path.join(B.RESULTS_DIR, "net.md"), "w") as f:
            f.write(md + "\n")
        return
    if not os.path.exists(DEBIAN):
        sys.exit(f"{DEBIAN} is missing: make debian-image")
    variants = [v for v in VARIANTS if v in args.only.split(",")]
    tools = prepare()
    data = {"host": B.host_info(), "rounds": args.rounds, "seconds": SECONDS, "runs": {v: [] for v in variants},
            "order": [], "ssh": [], "command": "tests/bench/net_bench.py " + " ".join(sys.argv[1:])}
    ssh_rounds = args.rounds if args.ssh_rounds is None else args.ssh_rounds
    with tempfile.TemporaryDirectory() as workdir:
        try:
            if "tap" in variants:
                netns_up()
            for n in range(1, max(args.rounds, ssh_rounds) + 1):
                B.before_round(n, args.rounds)
                for v in variants if n <= args.rounds else []:
                    r = run_variant(v, tools, workdir)
                    B.log(v, {k: (r[k] if k != "error" else r[k][:300]) for k in r})
                    data["runs"][v].append(r)
                    data["order"].append((v, r["load_before"]))
                if n <= ssh_rounds:
                    r = boot_to_ssh(workdir)
                    B.log("ssh", r)
                    data["ssh"].append(r)
                    data["order"].append(("ssh", r["load_before"]))
        finally:
            netns_down()
    B.save_json("net.json", data)
    md = render(data)
    with open(os.path.join(B.RESULTS_DIR, "net.md"), "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
