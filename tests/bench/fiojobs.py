"""fio in the bench guest: the workloads, fio's argv for them, and its JSON read back as IOPS and latencies."""
import json


WORKLOADS = [  # (key, rw, iodepth[, fio options of this job]); run in this order in one fio invocation, each after
    # the previous (stonewall)
    ("randread-qd32", "randread", 32),
    ("randread-qd1", "randread", 1),
    ("randwrite-qd32", "randwrite", 32),
    ("randwrite-qd1", "randwrite", 1),
]


def ramp_seconds(seconds):
    return 1 if seconds < 10 else 2


def fio_args(seconds, workloads, engine, filename=None, extra=()):
    """fio's argv after the program name: global options, then one job per workload, each waiting for the previous."""
    a = ["--output-format=json", "--thread", "--ioengine=" + engine, "--direct=1", "--bs=16k", "--time_based",
         "--runtime=%d" % seconds, "--ramp_time=%d" % ramp_seconds(seconds), "--norandommap", "--randrepeat=0",
         "--lat_percentiles=1", "--stonewall"]
    if filename:
        a.append("--filename=" + filename)
    a += list(extra)
    for key, rw, depth, *job in workloads:
        a += ["--name=" + key, "--rw=" + rw, "--iodepth=%d" % depth] + list(job[0] if job else ())
    return a


def guest_fio_argv(device, seconds, workloads):
    """The guest command: wait for the disk to appear (AHCI probes asynchronously), then fio with libaio on it."""
    script = ('d=$1; shift; i=0; while [ ! -b "$d" ]; do i=$((i+1)); '
              'if [ $i -gt 600 ]; then echo "no block device $d" >&2; ls /dev >&2; exit 3; fi; sleep 0.05; done; '
              'exec fio --filename="$d" "$@"')
    return ["sh", "-c", script, "sh", device] + fio_args(seconds, workloads, "libaio")


def parse_fio(text):
    """fio's JSON (possibly after other output) -> {workload: {iops, lat_mean_us, lat_p99_us}}."""
    i = text.find("{")
    if i < 0:
        raise ValueError("no fio JSON in output: %r" % text[-2000:])
    doc = json.JSONDecoder().raw_decode(text[i:])[0]
    out = {}
    for job in doc["jobs"]:
        if job.get("error"):
            raise ValueError("fio job %s: error %s" % (job["jobname"], job["error"]))
        d = job["write"] if job["write"]["io_bytes"] > job["read"]["io_bytes"] else job["read"]
        lat = d.get("lat_ns") or d["clat_ns"]
        pct = lat.get("percentile") or d["clat_ns"].get("percentile") or {}
        p99 = pct.get("99.000000")
        out[job["jobname"]] = {"iops": d["iops"], "lat_mean_us": lat["mean"] / 1000.0,
                               "lat_p99_us": p99 / 1000.0 if p99 is not None else None}
    return out
