#!/usr/bin/python3
"""Block device-path benchmark (issue 4): virtio-blk through the tier-2
host-side driver against fio on the same host file.

    python3 tools/bench/blk.py --bench build/tests/devices/bench_virtio_blk \
        [--dir /var/tmp] [--seconds 3] [--out BENCHMARKS.md]

On a 1 GiB file (filled with data first, so that reads touch the disk):
sequential 1 MiB and random 4 KiB reads and writes at queue depth 1 and 32,
O_DIRECT (nocache) and buffered, through khyve's io_uring and sync engines
(bench_virtio_blk: the device, its I/O thread and the backend, driven by
vdriver over memfd guest memory), and the same workload by fio with its
io_uring engine directly on the file. Reports khyve/host ratios of
throughput and khyve's device-side CPU time per GiB, and rewrites its
section of BENCHMARKS.md (between <!-- bench:blk:start --> and
<!-- bench:blk:end -->). Target: >= 90% of the host's throughput at queue
depth 32 with io_uring.

A benchmark, not a test: it fails only when something did not run.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (write_section)

MARK_START = "<!-- bench:blk:start -->"
MARK_END = "<!-- bench:blk:end -->"
SIZE = 1 << 30
WORKLOADS = [("read", 1 << 20, "seq read 1M"), ("write", 1 << 20,
                                                "seq write 1M"),
             ("randread", 4096, "rand read 4K"),
             ("randwrite", 4096, "rand write 4K")]
DEPTHS = [1, 32]
CACHES = ["direct", "buffered"]
ENGINES = ["uring", "sync"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fill(path):
    """A 1 GiB file of incompressible data, written once."""
    if os.path.exists(path) and os.path.getsize(path) == SIZE:
        return
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(chunk)
        os.fsync(f.fileno())


def run_khyve(exe, path, rw, bs, qd, cache, engine, secs):
    os.sync()  # the last run's write-back must not land in this one
    p = subprocess.run([exe, path, rw, str(bs), str(qd), cache, engine,
                        str(secs)], capture_output=True, text=True,
                       timeout=secs + 60)
    if p.returncode:
        raise RuntimeError(f"bench_virtio_blk {rw} {bs} {qd} {cache} "
                           f"{engine}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def run_fio(fio, path, rw, bs, qd, cache, secs):
    os.sync()
    p = subprocess.run([fio, "--name=host", f"--filename={path}",
                        f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}",
                        "--ioengine=io_uring",
                        f"--direct={1 if cache == 'direct' else 0}",
                        f"--runtime={secs}", "--time_based",
                        f"--size={SIZE}", "--randrepeat=0",
                        "--output-format=json"],
                       capture_output=True, text=True, timeout=secs + 60)
    if p.returncode:
        raise RuntimeError(f"fio {rw} {bs} {qd} {cache}: {p.stderr.strip()}")
    job = json.loads(p.stdout)["jobs"][0]
    side = job["write" if "write" in rw else "read"]
    runtime = side["runtime"] / 1000.0 or secs
    gib = side["io_bytes"] / float(1 << 30)
    cpu = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * runtime
    return {"iops": side["iops"], "mib_s": side["bw_bytes"] / float(1 << 20),
            "cpu_s_per_gib": cpu / gib if gib else 0.0}


def report(rows, meta):
    out = [MARK_START, "## Block device path (virtio-blk, tier-2 harness)",
           "",
           f"Run {meta['date']} on {meta['host']}: {meta['seconds']} s a "
           "configuration, 1 GiB file in "
           f"`{meta['dir']}`. khyve = bench_virtio_blk (device + I/O "
           "thread + backend, driven by the host-side virtio driver); "
           "host = fio --ioengine=io_uring on the same file. Ratio = "
           "khyve/host throughput; CPU = seconds of CPU per GiB moved "
           "(khyve: the device side only).", "",
           "| workload | QD | cache | engine | khyve IOPS | host IOPS | "
           "ratio | khyve MiB/s | khyve CPU s/GiB | host CPU s/GiB |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        k, h = r["khyve"], r["host"]
        ratio = k["iops"] / h["iops"] if h["iops"] else 0.0
        out.append(f"| {r['name']} | {r['qd']} | {r['cache']} | "
                   f"{r['engine']} | {k['iops']:.0f} | {h['iops']:.0f} | "
                   f"{ratio:.2f} | {k['mib_s']:.0f} | "
                   f"{k['cpu_s_per_gib']:.2f} | {h['cpu_s_per_gib']:.2f} |")
    out += ["", "Target: ratio >= 0.90 at QD 32 with io_uring.", MARK_END]
    return "\n".join(out)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default=os.path.join(
        repo, "build", "tests", "devices", "bench_virtio_blk"))
    ap.add_argument("--fio", default=shutil.which("fio"))
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--out", default=os.path.join(repo, "BENCHMARKS.md"))
    ap.add_argument("--keep-file", action="store_true")
    args = ap.parse_args()
    if not os.access(args.bench, os.X_OK) or not args.fio:
        log("bench blk: did not run: missing "
            + ("fio" if not args.fio else args.bench))
        return 1
    path = os.path.join(args.dir, "khyve-bench-blk.img")
    log(f"bench blk: filling {path}")
    fill(path)
    rows = []
    secs = args.seconds
    try:
        for rw, bs, name in WORKLOADS:
            for qd in DEPTHS:
                for cache in CACHES:
                    host = run_fio(args.fio, path, rw, bs, qd, cache, secs)
                    for engine in ENGINES:
                        k = run_khyve(args.bench, path, rw, bs, qd, cache,
                                      engine, secs)
                        rows.append({"name": name, "qd": qd, "cache": cache,
                                     "engine": engine, "khyve": k,
                                     "host": host})
                        log(f"bench blk: {name} qd{qd} {cache} {engine}: "
                            f"{k['iops']:.0f} vs {host['iops']:.0f} IOPS")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        log(f"bench blk: did not run: {e}")
        return 1
    finally:
        if not args.keep_file:
            os.unlink(path)
    meta = {"date": datetime.date.today().isoformat(),
            "host": os.uname().nodename, "seconds": secs, "dir": args.dir}
    md = report(rows, meta)
    print(md)
    bench.write_section(args.out, md, MARK_START, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
