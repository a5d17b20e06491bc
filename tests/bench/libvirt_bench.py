#!/usr/bin/python3
"""The same guest through libvirt (`virsh create` / `virsh destroy`) next to vmlaunch: launch time, round trip of
`true`, stop time, and the resident memory of the supervising daemons.

libvirt here: Debian's libvirt-daemon-system (apt-get install --no-install-recommends libvirt-daemon-system
libvirt-clients). There is no systemd, so this script starts virtlogd and libvirtd itself (libvirtd under
`strace -f --seccomp-bpf -e trace=execve`, which stops it only at execve, to timestamp qemu's exec), and stops both
by their pids at the end. The domain is transient (`virsh create`), type qemu (TCG), with the same kernel, initrd,
command line, vCPUs, RAM and CPU model (`<cpu mode='maximum'/>` = -cpu max) as the vmlaunch config; the command
reaches the guest agent exactly as with vmlaunch (fw_cfg `<sysinfo type='fwcfg'>`, virtio-serial `<channel>`s,
here file-backed). qemu runs as root without relabelling (`<seclabel type='static' model='dac' relabel='no'>`), so
libvirt never chowns the repo's build files.

Per round: vmlaunch (`-- true` untraced: wall, RSS; then under strace: start -> qemu exec, qemu exit -> exit),
libvirt (`virsh create` of a `true` domain: start -> qemu exec, -> `virsh create` returned (guest running), ->
domain gone (polled every 50 ms)), and `virsh destroy` of a domain running `sleep 600`.

    tests/bench/libvirt_bench.py [--rounds 3]
Writes tests/bench/results/libvirt.json, then regenerates results.md (report.py).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import launch  # noqa: E402

DOMAIN = "bench-libvirt"
URI = "qemu:///system"


def virsh(*args, check=True, timeout=300):
    return B.run(["virsh", "-q", "-c", URI] + list(args), check=check, timeout=timeout)


def domain_xml(d, argv_file):
    files = {n: os.path.join(d, n) for n in ("console", "stdout", "stderr", "status")}
    chans = "\n".join(
        "    <channel type='file'><source path='%s'/><target type='virtio' name='org.vmlaunch.%s'/></channel>"
        % (files[n], n) for n in ("stdout", "stderr", "status"))
    return """<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(initrd)s</initrd>
    <cmdline>console=ttyS0 panic=-1 %(append)s</cmdline>
  </os>
  <sysinfo type='fwcfg'>
    <entry name='opt/org.vmlaunch/argv' file='%(argv)s'/>
  </sysinfo>
  <features><acpi/><apic/></features>
  <cpu mode='maximum' migratable='off'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
  <devices>
    <emulator>%(qemu)s</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%(disk)s'/>
      <target dev='vda' bus='virtio'/>
      <serial>scratch</serial>
    </disk>
    <controller type='usb' model='none'/>
    <serial type='file'><source path='%(console)s'/></serial>
%(chans)s
    <memballoon model='none'/>
  </devices>
</domain>
""" % {"name": DOMAIN, "kernel": B.VMLINUX, "initrd": B.INITRAMFS, "append": B.GUEST_APPEND, "argv": argv_file,
       "qemu": shutil.which(B.QEMU) or B.QEMU, "disk": os.path.join(d, "disk.raw"), "console": files["console"],
       "chans": chans}


class Libvirt:
    """virtlogd and libvirtd started by hand (no systemd here), stopped by pid."""

    def __init__(self, d):
        self.d = d
        self.trace = os.path.join(d, "libvirtd.strace")
        self.virtlogd = subprocess.Popen(["virtlogd"], stdout=open(os.path.join(d, "virtlogd.log"), "w"),
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.strace = subprocess.Popen(["strace", "-f", "--seccomp-bpf", "-ttt", "-e", "trace=execve", "-e",
                                        "signal=none", "-o", self.trace, "libvirtd"],
                                       stdout=open(os.path.join(d, "libvirtd.log"), "w"), stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.pid = None
        deadline = time.time() + 60
        while time.time() < deadline:
            kids = [p for p, comm in launch.children(self.strace.pid) if comm == "libvirtd"]
            if kids and virsh("version", check=False).returncode == 0:
                self.pid = kids[0]
                break
            if self.strace.poll() is not None:
                break
            time.sleep(0.5)
        if not self.pid:
            self.stop()
            raise RuntimeError("libvirtd did not start:\n" + B.tail(B.read(os.path.join(d, "libvirtd.log"))))

    def log_errors(self):
        return [l.split(": ", 2)[-1].strip() for l in B.read(os.path.join(self.d, "libvirtd.log")).splitlines()
                if ": error : " in l or ": warning : " in l][:8]

    def qemu_execs(self):
        """(pid, epoch time) of every qemu exec for our domain so far."""
        out = []
        with open(self.trace) as f:
            for line in f:
                m = re.match(r"(\d+) (\d+\.\d+) execve\(\"[^\"]*qemu-system[^\"]*\", .*guest=%s" % DOMAIN, line)
                if m and line.rstrip().endswith("= 0"):
                    out.append((int(m.group(1)), float(m.group(2))))
        return out

    def rss(self):
        return {"libvirtd": launch.status_kb(self.pid, "VmRSS"),
                "virtlogd": launch.status_kb(self.virtlogd.pid, "VmRSS")}

    def stop(self):
        for p in (self.pid, self.virtlogd.pid):
            if p:
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in (self.strace, self.virtlogd):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def domain_exists():
    return virsh("domstate", DOMAIN, check=False).returncode == 0


def write_domain(d, name, guest_argv):
    """Empty port files (libvirt opens them for appending), the guest's argv file, and the domain XML; its path."""
    for n in ("console", "stdout", "stderr", "status"):
        open(os.path.join(d, n), "w").close()
    argv_file = os.path.join(d, "argv-" + name)
    B.write_argv_file(argv_file, guest_argv)
    xml = os.path.join(d, name + ".xml")
    with open(xml, "w") as f:
        f.write(domain_xml(d, argv_file))
    return xml


def run_libvirt_true(lv, d):
    xml = write_domain(d, "true", ["true"])
    n_before = len(lv.qemu_execs())
    t0 = time.time()
    virsh("create", xml)
    t_created = time.time()
    rss = []
    while domain_exists():
        if time.time() - t0 > launch.TIMEOUT:
            virsh("destroy", DOMAIN, check=False)
            raise RuntimeError("libvirt: the domain still runs after %d s (a guest hang?)" % launch.TIMEOUT)
        rss.append(lv.rss())
        time.sleep(0.05)
    t_gone = time.time()
    status = B.read(os.path.join(d, "status")).strip()
    if status != "exit=0":
        raise RuntimeError("libvirt guest status %r; console:\n%s" % (status, B.tail(B.read(os.path.join(d, "console")))))
    execs = lv.qemu_execs()[n_before:]
    return {"launch_ms": (execs[0][1] - t0) * 1000 if execs else None, "create_s": t_created - t0,
            "wall_s": t_gone - t0,
            "libvirtd_rss_kb": B.median([r["libvirtd"] for r in rss]) if rss else None,
            "virtlogd_rss_kb": B.median([r["virtlogd"] for r in rss]) if rss else None}


def run_libvirt_destroy(lv, d):
    xml = write_domain(d, "sleep", ["sleep", "600"])
    virsh("create", xml)
    time.sleep(2)
    t0 = time.time()
    virsh("destroy", DOMAIN)
    return {"destroy_s": time.time() - t0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    args = ap.parse_args()
    data = {"host": B.host_info(), "rounds": args.rounds, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "round_loads": [], "runs": {"vmlaunch": [], "vmlaunch_strace": [], "libvirt": [], "destroy": []}}
    missing = [p for p in ("libvirtd", "virtlogd", "virsh", "strace") if not shutil.which(p)]
    if missing:
        data["error"] = ("cannot run: %s not installed (apt-get install --no-install-recommends libvirt-daemon-system "
                         "libvirt-clients strace)" % ", ".join(missing))
        B.save_json("libvirt.json", data)
        B.log(data["error"])
        import report
        report.main()
        return
    data["libvirt_version"] = B.first_line(["libvirtd", "--version"])
    d = tempfile.mkdtemp(prefix="vmbench-libvirt-", dir="/dev/shm")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "disk.raw"), "wb") as f:
        f.truncate(launch.DISK_MB << 20)
    conf = launch.make_conf(d)
    lv = None
    try:
        try:
            lv = Libvirt(d)
        except RuntimeError as e:
            data["error"] = "libvirtd could not run here: %s" % e
            B.save_json("libvirt.json", data)
            raise
        data["libvirtd_idle_rss_kb"] = lv.rss()
        data["libvirtd_messages"] = lv.log_errors()
        B.log("warm-up: one libvirt and one vmlaunch run, not counted (libvirt probes qemu's capabilities once)")
        if domain_exists():
            virsh("destroy", DOMAIN, check=False)
        run_libvirt_true(lv, d)
        launch.run_vmlaunch(conf)
        for r in range(1, args.rounds + 1):
            data["round_loads"].append(B.before_round(r, args.rounds))
            for kind, fn in (("vmlaunch", lambda: launch.run_vmlaunch(conf)),
                             ("vmlaunch_strace", lambda: launch.run_strace(conf, d)),
                             ("libvirt", lambda: run_libvirt_true(lv, d)),
                             ("destroy", lambda: run_libvirt_destroy(lv, d))):
                run = {"round": r, "load": B.loadavg()}
                try:
                    run.update(fn())
                    B.log("round %d %s: %s" % (r, kind, ", ".join(
                        "%s=%s" % (k, round(v, 3) if isinstance(v, float) else v) for k, v in run.items()
                        if k not in ("round", "load", "phases"))))
                except Exception as e:  # noqa: BLE001
                    run["error"] = str(e)[-2000:]
                    B.log("round %d %s FAILED: %s" % (r, kind, str(e)[-1000:]))
                    if kind in ("libvirt", "destroy") and domain_exists():
                        virsh("destroy", DOMAIN, check=False)
                data["runs"][kind].append(run)
            data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            B.save_json("libvirt.json", data)
    finally:
        if lv:
            if domain_exists():
                virsh("destroy", DOMAIN, check=False)
            lv.stop()
        shutil.rmtree(d, ignore_errors=True)
    import report
    report.main()


if __name__ == "__main__":
    main()
