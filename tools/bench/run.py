#!/usr/bin/python3
"""Boot benchmark for khyve against QEMU (issue 2, "make bench").

    python3 tools/bench/run.py --khyve build/src/khyve --guests build/tests/guests \
        [--runs 30] [--exit-runs 10] [--out BENCHMARKS.md]

Boots the 64 KiB firmware microguest (tests/guests/bootrom.S: prints
GUEST-READY, then GUEST-DONE, then powers off) under khyve, QEMU -M microvm and
QEMU -M q35, interleaved, and times process start -> first console byte of
GUEST-READY and process start -> exit. It then measures the cost of one
port-I/O exit with bootrom-loop.bin (100,000 `out %al,$0x80` between the two
lines) and khyve's memory, prints a table and rewrites its own section of
BENCHMARKS.md (between <!-- bench:boot:start --> and <!-- bench:boot:end -->;
the rest of the file is kept).

This is a benchmark, not a test: slow numbers never fail it. It exits non-zero
only when something did not run (a VMM that is missing, crashes, times out or
does not print the markers), and says what.

Python standard library only (Debian's /usr/bin/python3). perf and valgrind
are used when present, for the precise per-exit numbers.
"""

import argparse
import datetime
import json
import os
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linux_boot  # noqa: E402  (imports this module as `run`)

READY = b"GUEST-READY"
DONE = b"GUEST-DONE"
LOOP_ITERS = 100_000  # `out %al,$0x80` in bootrom-loop.bin (tests/guests)
RAM_MIB = 256
MARK_START = "<!-- bench:boot:start -->"
MARK_END = "<!-- bench:boot:end -->"
# From /work/shared/BASELINE.md (round 2, n = 30 each), not measured here.
REFERENCE = [
    ("QEMU -M microvm (BASELINE.md)", "73 (39–117)", "78 (42–128)", "38.9"),
    ("kvmtool --nodefaults (BASELINE.md)", "20 (9–36)", "32 (16–44)", "15.3"),
]
TARGET_READY_MS = 10.0
TARGET_OWN_MIB = 5.0
PERF_PERIOD_NS = 50_000  # perf record -e cpu-clock -c: one sample / 50 µs


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# One run: fork + exec with the console on a pipe.
# --------------------------------------------------------------------------

class Run:
    """The outcome of one VMM process."""

    def __init__(self):
        self.error = None       # None when the run is good
        self.t_first = None     # ms from just before exec to the first byte
        self.t_ready = None     # ... to the first byte of GUEST-READY
        self.t_done = None      # ... to the first byte of GUEST-DONE
        self.t_exit = None      # ... to the process' exit (pidfd readable)
        self.user = None        # ms, ru_utime
        self.sys = None         # ms, ru_stime
        self.maxrss = None      # KiB, ru_maxrss (see the note on its floor)
        self.hwm = None         # KiB, VmHWM of the VMM's own mm (/proc)
        self.status = {}        # /proc/PID/status fields at GUEST-READY, KiB
        self.ram_rss = None     # KiB resident in guest-RAM-sized mappings
        self.smaps = None       # _proc_smaps() at GUEST-READY
        self.exit_code = None
        self.out = b""
        self.err = b""

    @property
    def ok(self):
        return self.error is None


def _proc_status(pid):
    """VmHWM, VmRSS, RssAnon, RssFile, RssShmem of a live process, in KiB."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    fields[key] = int(val.split()[0])
    except OSError:
        return {}
    return fields


def _proc_smaps(pid, ram_kib):
    """From /proc/PID/smaps: KiB resident in the mappings at least as big as
    guest RAM (the guest's RAM: the only mappings that size in a VMM running
    a 256 MiB guest), the resident KiB per mapped file, and the Pss totals
    of smaps_rollup."""
    res = {"ram": None, "files": {}, "pss": {}}
    size, path = 0, ""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                if not first.endswith(":"):  # a mapping's header line
                    parts = line.split(None, 5)
                    path = parts[5].strip() if len(parts) > 5 else "[anon]"
                elif first == "Size:":
                    size = int(line.split()[1])
                elif first == "Rss:":
                    rss = int(line.split()[1])
                    if size >= ram_kib:
                        res["ram"] = (res["ram"] or 0) + rss
                    else:
                        name = os.path.basename(path) if path.startswith("/") \
                            else path
                        res["files"][name] = res["files"].get(name, 0) + rss
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.startswith("Pss"):
                    res["pss"][k] = int(v.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return res


class Spawned:
    """What spawn() saw of one process: raw times (time.monotonic_ns())."""

    def __init__(self):
        self.t0 = None          # ns, just before exec (from the child)
        self.exec_error = None  # str when exec failed
        self.chunks = []        # (t_ns, end offset in out) per console read
        self.out = b""
        self.err = b""
        self.t_exit_ns = None   # the pidfd became readable (or the kill)
        self.killed = False     # killed at the timeout
        self.exit_code = None
        self.user = None        # ms, ru_utime
        self.sys = None         # ms, ru_stime
        self.maxrss = None      # KiB, ru_maxrss

    def at(self, offset):
        """ms from exec to the arrival of the console byte at offset."""
        for t, end in self.chunks:
            if offset < end:
                return (t - self.t0) / 1e6
        return None

    def first(self, needle):
        """ms from exec to the first byte of needle on the console."""
        i = self.out.find(needle)
        return None if i < 0 else self.at(i)


def spawn(argv, timeout, on_output=None):
    """fork + exec argv with the console (stdout) on a pipe, stdin an open
    pipe, stderr captured. on_output(pid, out) is called after each console
    read with everything read so far (bytearray), while the process lives.
    Kills the process after timeout seconds."""
    s = Spawned()
    in_r, in_w = os.pipe()      # stdin stays open until the VMM is gone
    out_r, out_w = os.pipe()    # the console
    err_r, err_w = os.pipe()
    sync_r, sync_w = os.pipe()  # close-on-exec: EOF once exec succeeded
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            t0 = time.monotonic_ns()
            os.write(sync_w, b"T%d\n" % t0)
            os.execv(argv[0], argv)
        except BaseException as e:  # noqa: B036 - the child must not return
            try:
                os.write(sync_w, b"E%s\n" % str(e).encode(errors="replace"))
            finally:
                os._exit(127)
    for fd in (in_r, out_w, err_w, sync_w):
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    for fd in (out_r, err_r, sync_r, pidfd):
        poller.register(fd, select.POLLIN)
    open_fds = {out_r, err_r, sync_r}
    out, err, sync = bytearray(), bytearray(), bytearray()
    t_exit_ns = None
    deadline = time.monotonic() + timeout
    while open_fds or t_exit_ns is None:
        left = deadline - time.monotonic()
        if t_exit_ns is not None:
            # Gone: the pipes should be at EOF already; don't wait on a
            # grandchild that inherited them.
            left = min(left, 1.0)
        if left <= 0:
            if t_exit_ns is None:
                os.kill(pid, signal.SIGKILL)
                s.killed = True
                t_exit_ns = time.monotonic_ns()
                continue
            break
        events = poller.poll(left * 1000)
        now = time.monotonic_ns()
        for fd, _ev in events:
            if fd == pidfd:
                if t_exit_ns is None:
                    t_exit_ns = now
                poller.unregister(pidfd)
                continue
            data = os.read(fd, 65536)
            if not data:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            if fd == out_r:
                out += data
                s.chunks.append((now, len(out)))
                if on_output and t_exit_ns is None:
                    on_output(pid, out)
            elif fd == err_r:
                err += data
            else:
                sync += data
    _, status, ru = os.wait4(pid, 0)
    for fd in (out_r, err_r, sync_r, pidfd, in_w):
        try:
            os.close(fd)
        except OSError:
            pass
    s.out, s.err = bytes(out), bytes(err)
    s.exit_code = os.waitstatus_to_exitcode(status)
    s.user = ru.ru_utime * 1000.0
    s.sys = ru.ru_stime * 1000.0
    s.maxrss = ru.ru_maxrss
    m = re.match(rb"T(\d+)\n", bytes(sync))
    if m:
        s.t0 = int(m.group(1))
        s.t_exit_ns = t_exit_ns
    if b"\nE" in bytes(sync):
        s.exec_error = bytes(sync).split(b"\nE", 1)[1].decode(
            errors="replace").strip()
    return s


def run_once(argv, expect_exit, timeout, probe=None):
    """Run argv once. probe: None, "status" (read /proc/PID/status when the
    markers appear) or "smaps" (also the guest RAM's resident size)."""
    r = Run()
    probed = {"ready": False, "done": False}

    def on_output(pid, out):
        if probe and not probed["ready"] and READY in out:
            probed["ready"] = True
            r.status = _proc_status(pid)
            if probe == "smaps":
                r.smaps = _proc_smaps(pid, RAM_MIB * 1024)
                r.ram_rss = r.smaps["ram"]
            r.hwm = r.status.get("VmHWM")
        if probe and not probed["done"] and DONE in out:
            probed["done"] = True
            late = _proc_status(pid).get("VmHWM")
            if late is not None:
                r.hwm = max(r.hwm or 0, late)

    s = spawn(argv, timeout, on_output)
    r.out, r.err = s.out, s.err
    r.exit_code = s.exit_code
    r.user, r.sys, r.maxrss = s.user, s.sys, s.maxrss
    if s.t0 is None:
        r.error = "no start time from the child"
        return r
    if s.exec_error is not None:
        r.error = "exec failed: " + s.exec_error
        return r
    if s.chunks:
        r.t_first = (s.chunks[0][0] - s.t0) / 1e6
    r.t_ready = s.first(READY)
    r.t_done = s.first(DONE)
    r.t_exit = (s.t_exit_ns - s.t0) / 1e6
    if s.killed:
        r.error = f"timed out after {timeout:g} s (killed)"
    elif r.t_ready is None:
        r.error = "no GUEST-READY on the console"
    elif r.t_done is None:
        r.error = "no GUEST-DONE on the console"
    elif r.exit_code != expect_exit:
        r.error = f"exit status {r.exit_code}, expected {expect_exit}"
    return r


# --------------------------------------------------------------------------
# The configurations.
# --------------------------------------------------------------------------

class Config:
    def __init__(self, name, argv_fn, expect_exit, shown_fn):
        self.name = name
        self.argv_fn = argv_fn      # image path -> argv (absolute paths)
        self.expect_exit = expect_exit
        self.shown_fn = shown_fn    # image path -> argv as written in the doc
        self.runs = []

    def good(self):
        return [r for r in self.runs if r.ok]


def khyve_argv(khyve, image):
    return [khyve, "-m", f"{RAM_MIB}M", "-l", "com1,stdio",
            "-f", f"bootrom,{image}"]


def qemu_argv(qemu, machine, image):
    # As in BASELINE.md. The guest writes 0 to isa-debug-exit: status 1.
    return [qemu, "-nodefaults", "-no-user-config", "-enable-kvm",
            "-cpu", "host,-arch-capabilities", "-smp", "1", "-m", str(RAM_MIB),
            "-display", "none", "-serial", "stdio", "-no-reboot",
            "-bios", image, "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-M", machine]


def interleave(configs, n, image_of, timeout, probe, label):
    """n rounds; each round runs every configuration once, in an order rotated
    by one each round so that no VMM always follows the same one."""
    for i in range(n):
        k = i % len(configs)
        for c in configs[k:] + configs[:k]:
            r = run_once(c.argv_fn(image_of(c)), c.expect_exit, timeout, probe)
            c.runs.append(r)
            if not r.ok:
                log(f"  {label} {c.name} run {i + 1}: FAILED: {r.error}")
                if r.err:
                    log("    stderr: " + r.err.decode(errors="replace")
                        .strip()[-500:])
        log(f"  {label}: round {i + 1}/{n} done")


# --------------------------------------------------------------------------
# Statistics and formatting.
# --------------------------------------------------------------------------

def vals(runs, attr):
    return [getattr(r, attr) for r in runs if getattr(r, attr) is not None]


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_mmm(xs, nd=1, scale=1.0):
    """median (min–max)"""
    if not xs:
        return "–"
    xs = [x * scale for x in xs]
    return (f"{statistics.median(xs):.{nd}f} "
            f"({min(xs):.{nd}f}–{max(xs):.{nd}f})")


def fmt(x, nd=1):
    return "–" if x is None else f"{x:.{nd}f}"


def ratio(a, b, nd=1):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.{nd}f}×"


def mean(xs):
    return statistics.fmean(xs) if xs else None


def errtail(r):
    e = r.err.decode(errors="replace").strip().splitlines()
    e = [x for x in e if "software-virtualized" not in x]
    return ("(stderr: " + " / ".join(e[-3:])[-300:] + ")") if e else ""


def sh(argv):
    return shlex.join(argv)


# --------------------------------------------------------------------------
# perf and valgrind (optional, for a precise per-exit user-space cost).
# --------------------------------------------------------------------------

def perf_usable(perf):
    if not perf:
        return False
    try:
        p = subprocess.run([perf, "stat", "-x,", "-e", "task-clock", "--",
                            "/bin/true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and b"task-clock" in p.stderr


def perf_stat(perf, argv, expect_exit, timeout, tmpdir):
    """task-clock (precise on-CPU ns), user_time and system_time (rusage)."""
    outf = os.path.join(tmpdir, "perf-stat.csv")
    r = run_once([perf, "stat", "-x,", "-o", outf,
                  "-e", "task-clock,user_time,system_time", "--"] + argv,
                 expect_exit, timeout)
    if not r.ok:
        return r, None
    res = {}
    with open(outf) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or parts[0].startswith("<"):
                continue
            try:
                v = float(parts[0])
            except ValueError:
                continue
            unit, ev = parts[1], parts[2]
            ms = v / 1e6 if unit == "ns" else v  # task-clock is in msec
            res[ev] = ms
    return r, res


def perf_user_samples(perf, argv, expect_exit, timeout, tmpdir):
    """On-CPU time split user/kernel by sampling: perf record -e cpu-clock
    with a fixed period, every sample classified by its IP. Returns
    (run, user_ms, kernel_ms, {user symbol: ms})."""
    data = os.path.join(tmpdir, "perf.data")
    r = run_once([perf, "record", "-q", "-e", "cpu-clock",
                  "-c", str(PERF_PERIOD_NS), "-o", data, "--"] + argv,
                 expect_exit, timeout)
    if not r.ok:
        return r, None, None, None
    p = subprocess.run([perf, "script", "-i", data, "-F", "ip,sym,dso"],
                       capture_output=True, text=True, timeout=120)
    user = kern = 0
    syms = {}
    for line in p.stdout.splitlines():
        f = line.split(None, 1)
        if not f:
            continue
        try:
            ip = int(f[0], 16)
        except ValueError:
            continue
        if ip >= 0xffff800000000000:
            kern += 1
        else:
            user += 1
            sym = f[1].strip() if len(f) > 1 else "?"
            sym = re.sub(r"\(/.*/([^/)]+)\)$", r"(\1)", sym)
            syms[sym] = syms.get(sym, 0) + 1
    per = PERF_PERIOD_NS / 1e6
    return (r, user * per, kern * per,
            {k: v * per for k, v in syms.items()})


def callgrind_ir(valgrind, argv, expect_exit, timeout, tmpdir, tag):
    """User-space instructions executed (Ir), total and per function."""
    outf = os.path.join(tmpdir, f"callgrind.{tag}")
    r = run_once([valgrind, "--tool=callgrind", "--callgrind-out-file=" + outf,
                  "--"] + argv, expect_exit, timeout)
    if not r.ok:
        return r, None, None
    total = None
    with open(outf) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                total = int(line.split()[1])
    funcs = {}
    ann = shutil.which("callgrind_annotate")
    if ann:
        p = subprocess.run([ann, "--threshold=100", "--auto=no",
                            "--inclusive=no", outf],
                           capture_output=True, text=True, timeout=120)
        for line in p.stdout.splitlines():
            # "5,402,744 (23.22%)  /path/src/core/vcpu.c:exit_io [/path/khyve]"
            m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+:\S+)(\s+\[.*\])?$",
                         line)
            if not m:
                continue
            path, _, func = m.group(2).rpartition(":")
            path = "/" + os.path.normpath(path)  # may be relative to the cwd
            path = ("src/" + path.split("/src/", 1)[1]) if "/src/" in path \
                else os.path.basename(path)
            name = f"{path}:{func}"
            funcs[name] = funcs.get(name, 0) + int(m.group(1).replace(",", ""))
    return r, total, funcs


# --------------------------------------------------------------------------
# Where khyve's wall time goes: system-wide perf record of syscalls and
# context switches (with kernel stacks) around one khyve run.
# --------------------------------------------------------------------------

SYSCALLS = {0: "read", 1: "write", 3: "close", 9: "mmap", 10: "mprotect",
            11: "munmap", 16: "ioctl", 28: "madvise", 59: "execve",
            77: "ftruncate", 202: "futex", 231: "exit_group", 232: "epoll_wait",
            257: "openat", 281: "epoll_pwait", 319: "memfd_create",
            435: "clone3", 60: "exit", 56: "clone", 13: "rt_sigaction",
            14: "rt_sigprocmask", 234: "tgkill"}
KVM_IOCTLS = {0x00: "KVM_GET_API_VERSION", 0x01: "KVM_CREATE_VM",
              0x02: "KVM_GET_MSR_INDEX_LIST", 0x03: "KVM_CHECK_EXTENSION",
              0x04: "KVM_GET_VCPU_MMAP_SIZE", 0x05: "KVM_GET_SUPPORTED_CPUID",
              0x41: "KVM_CREATE_VCPU", 0x46: "KVM_SET_USER_MEMORY_REGION",
              0x47: "KVM_SET_TSS_ADDR", 0x48: "KVM_SET_IDENTITY_MAP_ADDR",
              0x49: "KVM_SET_USER_MEMORY_REGION2", 0x60: "KVM_CREATE_IRQCHIP",
              0x6a: "KVM_SET_GSI_ROUTING", 0x76: "KVM_IRQFD",
              0x77: "KVM_CREATE_PIT2", 0x79: "KVM_IOEVENTFD", 0x80: "KVM_RUN",
              0x82: "KVM_SET_REGS", 0x84: "KVM_SET_SREGS",
              0x89: "KVM_SET_MSRS", 0x8d: "KVM_SET_FPU", 0x8e: "KVM_GET_LAPIC",
              0x8f: "KVM_SET_LAPIC", 0x90: "KVM_SET_CPUID2",
              0xa3: "KVM_ENABLE_CAP"}
WAIT_FRAMES = {"__schedule", "schedule", "schedule_timeout",
               "wait_for_completion", "__wait_for_common",
               "wait_for_completion_killable", "schedule_preempt_disabled",
               "io_schedule", "schedule_hrtimeout_range_clock",
               "__mutex_lock.constprop.0", "__mutex_lock", "mutex_lock",
               "rwsem_down_write_slowpath", "rwsem_down_read_slowpath",
               "down_write", "down_read", "percpu_down_write"}
HDR = re.compile(r"^(.*?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$")


def syscall_label(nr, args, vm_fd):
    name = SYSCALLS.get(nr, f"syscall {nr}")
    if nr == 16 and len(args) > 1:
        cmd = int(args[1], 16)
        if (cmd >> 8) & 0xff == 0xae:
            return KVM_IOCTLS.get(cmd & 0xff, f"KVM ioctl {cmd:#x}")
        return f"ioctl {cmd:#x}"
    if nr == 3 and args and vm_fd is not None and int(args[0], 16) == vm_fd:
        return "close(VM fd)"
    return name


def block_reason(prev_state, frames):
    if prev_state.startswith("R"):
        return "preempted (runnable, waiting for a CPU)"
    syms = [f.split("+")[0] for f in frames]
    i = 0
    while i < len(syms) and syms[i] in WAIT_FRAMES:
        i += 1
    if i >= len(syms):
        return "sleep"
    what = syms[i]
    caller = next((s for s in syms[i + 1:] if s.startswith(("kvm", "__kvm"))
                   and s not in ("kvm_vm_ioctl", "kvm_arch_vm_ioctl",
                                 "kvm_vcpu_ioctl")), None)
    return what + (f" ← {caller}" if caller and caller != what else "")


def trace_khyve(perf, argv, timeout, tmpdir):
    """One khyve run under `perf record -a` (syscalls + sched_switch with
    kernel stacks). Returns a dict: phases (ms) and the slow syscalls of the
    main thread with their off-CPU time and why they slept."""
    data = os.path.join(tmpdir, "trace.data")
    r = run_once([perf, "record", "-q", "-a", "-o", data,
                  "-e", "sched:sched_switch/call-graph=fp/",
                  "-e", "raw_syscalls:sys_enter", "-e", "raw_syscalls:sys_exit",
                  "--"] + argv, 0, timeout)
    if not r.ok:
        return r, None
    p = subprocess.run([perf, "script", "-i", data, "-F",
                        "comm,pid,tid,time,event,trace,ip,sym"],
                       capture_output=True, text=True, timeout=300)
    events = []
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        if line.startswith("\t"):  # a call-chain frame
            if events:
                f = line.split(None, 1)
                if len(f) == 2:
                    events[-1][6].append(f[1].strip())
            continue
        m = HDR.match(line)
        if m:
            events.append([m.group(1).strip(), int(m.group(2)),
                           int(m.group(3)), float(m.group(4)) * 1000.0,
                           m.group(5), m.group(6), []])
    # The workload: the process whose execve returned as "khyve".
    pid = None
    for comm, epid, tid, t, ev, tr, fr in events:
        if comm == "khyve" and ev == "raw_syscalls:sys_exit" and \
                tr.startswith("NR 59 "):
            pid, t_exec = epid, t
            break
    if pid is None:
        r.error = "perf trace: no execve of khyve seen"
        return r, None
    main = pid
    open_sys = {}
    calls = []      # (tid, t0, t1, nr, args, ret)
    off = []        # (t_out, t_in, reason) of the main thread
    out_at = None
    vm_fd = None
    for comm, epid, tid, t, ev, tr, fr in events:
        if ev == "sched:sched_switch":
            m = re.search(r"prev_pid=(\d+) .*prev_state=(\S+) ==> .*"
                          r"next_pid=(\d+)", tr)
            if not m:
                continue
            if int(m.group(1)) == main:
                out_at = (t, block_reason(m.group(2), fr))
            if int(m.group(3)) == main and out_at:
                off.append((out_at[0], t, out_at[1]))
                out_at = None
            continue
        if epid != pid or t < t_exec:
            continue
        if ev == "raw_syscalls:sys_enter":
            m = re.match(r"NR (\d+) \(([^)]*)\)", tr)
            if m:
                open_sys[tid] = (t, int(m.group(1)),
                                 [a.strip() for a in m.group(2).split(",")])
        elif ev == "raw_syscalls:sys_exit" and tid in open_sys:
            t0, nr, args = open_sys.pop(tid)
            m = re.search(r"= (-?\d+)", tr)
            ret = int(m.group(1)) if m else None
            if nr == 16 and len(args) > 1 and int(args[1], 16) == 0xae01:
                vm_fd = ret
            calls.append((tid, t0, t, nr, args, ret))
    # exit_group never returns: close it at the last event of the process.
    for tid, (t0, nr, args) in open_sys.items():
        calls.append((tid, t0, t0, nr, args, None))
    calls.sort(key=lambda c: c[1])
    ioctls_main = [c for c in calls if c[0] == main and c[3] == 16]
    first_ioctl = ioctls_main[0][1] if ioctls_main else None
    runs = [c for c in calls if c[3] == 16 and c[4] and len(c[4]) > 1
            and int(c[4][1], 16) & 0xffff == 0xae80]
    writes = [c for c in calls if c[3] == 1 and c[4] and c[4][0] == "1"]
    # The console bytes: "GUEST-READY\r\n" is 13 writes of one byte (or
    # fewer, bigger ones); GUEST-DONE starts after the first 13 bytes.
    nbytes, done_at = 0, None
    for c in writes:
        if nbytes >= len(READY) + 2 and done_at is None:
            done_at = c[1]
        nbytes += c[5] or 0
    ex = [c for c in calls if c[0] == main and c[3] == 231]
    t_exit_group = ex[0][1] if ex else None
    res = {"t_exec": t_exec, "first_ioctl": first_ioctl,
           "first_run": runs[0][1] if runs else None,
           "first_out": writes[0][1] if writes else None,
           "done": done_at, "exit_group": t_exit_group}

    def offcpu(t0, t1):
        tot, why = 0.0, {}
        for a, b, reason in off:
            lo, hi = max(a, t0), min(b, t1)
            if hi > lo:
                tot += hi - lo
                why[reason] = why.get(reason, 0.0) + hi - lo
        return tot, why

    slow = []  # (phase, label, dur, offcpu, reasons)
    seen = {}
    for tid, t0, t1, nr, args, ret in calls:
        if tid != main or nr in (232, 281, 202, 231):  # waits for vCPU/exit
            continue
        label = syscall_label(nr, args, vm_fd)
        phase = "start" if res["first_out"] is None or t0 < res["first_out"] \
            else "exit"
        seen[(phase, label)] = seen.get((phase, label), 0) + 1
        if t1 - t0 >= 0.05:
            k = seen[(phase, label)]
            o, why = offcpu(t0, t1)
            slow.append((phase, f"{label} #{k}" if k > 1 or label ==
                         "KVM_SET_USER_MEMORY_REGION" else label,
                         t1 - t0, o, why))
    res["slow"] = slow
    return r, res


# --------------------------------------------------------------------------
# Machine facts.
# --------------------------------------------------------------------------

def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def machine_facts(khyve, qemu):
    facts = {}
    facts["date"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    facts["nproc"] = len(os.sched_getaffinity(0))
    facts["kernel"] = os.uname().release
    model = "?"
    flags = ""
    for line in (read("/proc/cpuinfo", "") or "").splitlines():
        if line.startswith("model name") and model == "?":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line.split(":", 1)[1]
    facts["cpu"] = model
    facts["hw_virt"] = ("svm" in flags.split()) or ("vmx" in flags.split())
    mem = read("/proc/meminfo", "").splitlines()
    facts["mem_gib"] = (int(mem[0].split()[1]) / 1048576) if mem else None
    if os.path.isdir("/sys/module/kvm_pvm"):
        params = []
        for p in ("pvm_native", "pvm_emul_batch"):
            v = read(f"/sys/module/kvm_pvm/parameters/{p}")
            if v is not None:
                params.append(f"{p}={v}")
        tdp = read("/sys/module/kvm/parameters/tdp_mmu")
        if tdp is not None:
            params.append(f"kvm.tdp_mmu={tdp}")
        facts["kvm"] = ("kvm_pvm (PVM: software virtualization, guest CPL0 "
                        "code runs in KVM's instruction emulator; see "
                        "/work/shared/PVM.md; " + ", ".join(params) + ")")
    elif os.path.isdir("/sys/module/kvm_amd"):
        facts["kvm"] = "kvm_amd (hardware virtualization)"
    elif os.path.isdir("/sys/module/kvm_intel"):
        facts["kvm"] = "kvm_intel (hardware virtualization)"
    else:
        facts["kvm"] = "unknown KVM module"
    if qemu:
        try:
            facts["qemu"] = subprocess.run(
                [qemu, "--version"], capture_output=True, text=True,
                timeout=30).stdout.splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            facts["qemu"] = "?"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short",
                               "HEAD"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain",
                                "--", "src", "include", "meson.build"],
                               capture_output=True, text=True,
                               timeout=30).stdout.strip()
        facts["commit"] = head + (" + uncommitted changes under src/ or "
                                  "include/" if dirty else "")
    except OSError:
        facts["commit"] = "?"
    # The build options of the khyve binary (build/src/khyve -> build/).
    bopts = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(khyve))), "meson-info", "intro-buildoptions.json")
    try:
        with open(bopts) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        facts["buildtype"] = (f"buildtype={opts.get('buildtype')}, "
                              f"optimization={opts.get('optimization')}, "
                              f"b_sanitize={opts.get('b_sanitize')}")
    except (OSError, ValueError, KeyError):
        facts["buildtype"] = None
    try:
        st = os.stat(khyve)
        facts["khyve_size"] = st.st_size
    except OSError:
        facts["khyve_size"] = None
    return facts


def cpu_busy_snapshot():
    """(busy, total) jiffies from /proc/stat, all CPUs."""
    f = read("/proc/stat", "").splitlines()[0].split()[1:]
    v = [int(x) for x in f]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def top_processes(exclude_pids, n=4):
    """The processes that used the most CPU over the last second, other than
    ours (a one-second sample, to say what else the machine was doing)."""
    def sample():
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) in exclude_pids:
                continue
            s = read(f"/proc/{d}/stat")
            if not s:
                continue
            comm = s[s.index("(") + 1:s.rindex(")")]
            rest = s[s.rindex(")") + 2:].split()
            out[int(d)] = (comm, int(rest[11]) + int(rest[12]))
        return out
    a = sample()
    time.sleep(1.0)
    b = sample()
    hz = os.sysconf("SC_CLK_TCK")
    use = []
    for pid, (comm, t) in b.items():
        if pid in a:
            d = (t - a[pid][1]) / hz * 100.0
            if d >= 5:
                use.append((d, comm))
    use.sort(reverse=True)
    return ", ".join(f"{comm} {d:.0f} %" for d, comm in use[:n]) or "none ≥ 5 %"


# --------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description="khyve vs QEMU: firmware microguest boot benchmark "
                    "(writes BENCHMARKS.md)")
    ap.add_argument("--khyve", required=True, help="the khyve binary")
    ap.add_argument("--guests", default=None,
                    help="the directory with bootrom.bin and bootrom-loop.bin")
    ap.add_argument("--runs", type=int, default=30,
                    help="boots per VMM for the start-up table (default 30)")
    ap.add_argument("--exit-runs", type=int, default=10,
                    help="runs per guest and VMM for the exit cost "
                         "(default 10, at least 5)")
    ap.add_argument("--out", default=None,
                    help="the Markdown file to update (default: BENCHMARKS.md "
                         "at the repository root)")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64"),
                    help="the QEMU binary (default: qemu-system-x86_64 on "
                         "PATH)")
    ap.add_argument("--no-qemu", action="store_true",
                    help="measure khyve only (the QEMU rows are left out)")
    ap.add_argument("--no-perf", action="store_true",
                    help="skip the perf measurements")
    ap.add_argument("--no-valgrind", action="store_true",
                    help="skip the callgrind instruction counts")
    ap.add_argument("--trace-runs", type=int, default=3,
                    help="khyve boots under `perf record -a` to break its "
                         "wall time down (default 3, 0 to skip)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds before a run is killed (default 30)")
    ap.add_argument("--json", default=None,
                    help="also write every run's raw numbers to this file")
    ap.add_argument("--no-write", action="store_true",
                    help="print only, don't touch BENCHMARKS.md")
    ap.add_argument("--linux", action="store_true",
                    help="run only the Linux boot benchmark "
                         "(tools/bench/linux_boot.py)")
    ap.add_argument("--no-linux", action="store_true",
                    help="run only the firmware microguest benchmark")
    ap.add_argument("--guestkit", default=None,
                    help="the guest kit directory (default build/guestkit "
                         "at the repository root)")
    ap.add_argument("--linux-runs", type=int, default=5,
                    help="Linux boots per configuration (default 5)")
    ap.add_argument("--linux-slow-runs", type=int, default=3,
                    help="Linux boots for QEMU with a bzImage (default 3: "
                         "the guest decompresses it, very slow here)")
    ap.add_argument("--linux-timeout", type=float, default=240.0,
                    help="seconds before a Linux boot is killed (default "
                         "240)")
    ap.add_argument("--linux-json", default=None,
                    help="raw Linux boot numbers, rewritten after every run "
                         "(default build/bench-linux.json)")
    ap.add_argument("--linux-report-only", action="store_true",
                    help="rewrite the Linux section from --linux-json "
                         "without booting anything")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    if args.guestkit is None:
        args.guestkit = os.path.join(repo, "build", "guestkit")
    if args.linux or args.linux_report_only:
        return linux_boot.main(args, repo)
    if not args.guests:
        ap.error("--guests is required (unless --linux)")
    rc = microguest(args, ap)
    if args.no_linux:
        return rc
    if not os.path.isfile(os.path.join(args.guestkit, "vmlinux")):
        log(f"bench: Linux boot skipped: no {args.guestkit}/vmlinux "
            "(run `make guestkit`)")
        return rc or 1
    return linux_boot.main(args, repo) or rc


def microguest(args, ap):
    """The firmware microguest benchmark (bench:boot section)."""
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.exit_runs < 5:
        ap.error("--exit-runs must be at least 5")

    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    out_path = args.out or os.path.join(repo, "BENCHMARKS.md")
    khyve = os.path.abspath(args.khyve)
    guests = os.path.abspath(args.guests)
    boot = os.path.join(guests, "bootrom.bin")
    loop = os.path.join(guests, "bootrom-loop.bin")

    # What cannot run at all: say so and stop before measuring anything.
    missing = []
    if not os.access(khyve, os.X_OK):
        missing.append(f"khyve binary {args.khyve} (run `ninja -C build`)")
    for g in (boot, loop):
        if not os.path.isfile(g):
            missing.append(f"guest image {g}")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        missing.append("/dev/kvm (missing or not accessible)")
    qemu = None if args.no_qemu else args.qemu
    if not args.no_qemu and not (qemu and os.access(qemu, os.X_OK)):
        missing.append("qemu-system-x86_64 (apt-get install qemu-system-x86, "
                       "or --no-qemu)")
    if missing:
        log("bench: did not run: missing " + "; ".join(missing))
        return 1

    def shown_khyve(img):
        return khyve_argv(args.khyve, os.path.join(args.guests,
                                                   os.path.basename(img)))

    def shown_qemu(machine):
        return lambda img: qemu_argv(
            "qemu-system-x86_64", machine,
            os.path.join(args.guests, os.path.basename(img)))

    def mk_khyve(name):
        return Config(name, lambda img: khyve_argv(khyve, img), 0, shown_khyve)

    def mk_qemu(name, machine):
        return Config(name, lambda img: qemu_argv(qemu, machine, img), 1,
                      shown_qemu(machine))

    def binary_id(path):
        try:
            st = os.stat(path)
            return (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            return None
    khyve_id = binary_id(khyve)
    load_before = read("/proc/loadavg")
    others_before = top_processes({os.getpid()})
    busy0 = cpu_busy_snapshot()
    t_start = time.monotonic()
    facts = machine_facts(khyve, qemu)
    problems = []  # VMM runs that failed: the exit status says so
    notes = []     # optional measurements (perf, valgrind) that failed

    # ---- 1. Start-up: boot to first output and to exit. -------------------
    boot_cfgs = [mk_khyve("khyve")]
    if qemu:
        boot_cfgs += [mk_qemu("QEMU -M microvm", "microvm"),
                      mk_qemu("QEMU -M q35", "q35")]
    log("bench: warm-up (2 boots per VMM, not counted)")
    for c in boot_cfgs:
        for _ in range(2):
            r = run_once(c.argv_fn(boot), c.expect_exit, args.timeout)
            if not r.ok:
                log(f"  warm-up {c.name}: FAILED: {r.error}: "
                    + r.err.decode(errors="replace").strip()[-500:])
    log(f"bench: start-up, {args.runs} boots per VMM, interleaved")
    interleave(boot_cfgs, args.runs, lambda c: boot, args.timeout, "status",
               "boot")

    # The ru_maxrss floor: a child forked from this (Python) process carries
    # the parent's resident pages into its maxrss at exec (the kernel folds
    # the old mm's high-water mark into the process' maxrss in exec_mmap()).
    floor = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(os.devnull, os.O_RDWR)
                for i in (0, 1, 2):
                    os.dup2(fd, i)
                os.execv("/bin/true", ["/bin/true"])
            finally:
                os._exit(127)
        floor.append(os.wait4(pid, 0)[2].ru_maxrss)
    rss_floor = max(floor)

    # Cross-check of khyve's peak RSS with GNU time (its own floor is lower).
    gnu_time = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    gt_rss, gt_floor = [], None
    if gnu_time:
        with tempfile.TemporaryDirectory() as td:
            tf = os.path.join(td, "t")
            for argv in ([gnu_time, "-f", "%M", "-o", tf, "/bin/true"],):
                subprocess.run(argv, capture_output=True, timeout=30)
                gt_floor = int(read(tf, "0").splitlines()[-1])
            for _ in range(3):
                r = run_once([gnu_time, "-f", "%M", "-o", tf]
                             + khyve_argv(khyve, boot), 0, args.timeout)
                if r.ok:
                    gt_rss.append(int(read(tf, "0").splitlines()[-1]))

    # ---- 2. Port-I/O exit cost. ------------------------------------------
    log(f"bench: port-I/O exits, {args.exit_runs} runs per guest and VMM")
    exit_cfgs = [mk_khyve("khyve"), mk_khyve("khyve loop")]
    if qemu:
        exit_cfgs += [mk_qemu("QEMU -M microvm", "microvm"),
                      mk_qemu("QEMU -M microvm loop", "microvm")]
    interleave(exit_cfgs, args.exit_runs,
               lambda c: loop if c.name.endswith("loop") else boot,
               args.timeout * 2, "smaps", "exits")
    ex = {c.name: c for c in exit_cfgs}

    perf = None if args.no_perf else shutil.which("perf")
    perf_ok = perf_usable(perf)
    if perf and not perf_ok:
        notes.append(f"{perf} does not work here (perf stat failed): "
                     "no perf measurements")
    stat = {"plain": [], "loop": []}
    samp = {"plain": [], "loop": []}
    cg = {}
    traces = []
    with tempfile.TemporaryDirectory() as td:
        if perf_ok:
            log("bench: perf stat / perf record of khyve")
            for i in range(args.exit_runs):
                for tag, img in (("plain", boot), ("loop", loop)):
                    r, res = perf_stat(perf, khyve_argv(khyve, img), 0,
                                       args.timeout * 2, td)
                    if res:
                        stat[tag].append(res)
                    elif not r.ok:
                        notes.append(f"perf stat khyve {tag}: {r.error} "
                                        + errtail(r))
            for i in range(3):
                for tag, img in (("plain", boot), ("loop", loop)):
                    r, u, k, syms = perf_user_samples(
                        perf, khyve_argv(khyve, img), 0, args.timeout * 2, td)
                    if u is not None:
                        samp[tag].append((u, k, syms))
                    else:
                        notes.append(f"perf record khyve {tag}: "
                                        f"{r.error} " + errtail(r))
        if perf_ok and args.trace_runs:
            log(f"bench: perf record -a of {args.trace_runs} khyve boots "
                "(where the wall time goes)")
            for i in range(args.trace_runs):
                r, res = trace_khyve(perf, khyve_argv(khyve, boot),
                                     args.timeout * 2, td)
                if res:
                    traces.append(res)
                else:
                    notes.append(f"perf record -a khyve: {r.error} "
                                    + errtail(r))
        valgrind = None if args.no_valgrind else shutil.which("valgrind")
        if valgrind:
            log("bench: callgrind instruction counts of khyve")
            for tag, img in (("plain", boot), ("loop", loop)):
                r, total, funcs = callgrind_ir(
                    valgrind, khyve_argv(khyve, img), 0, 600, td, tag)
                if total is not None:
                    cg[tag] = (total, funcs)
                else:
                    notes.append(f"callgrind khyve {tag}: {r.error} "
                                    + errtail(r))

    if binary_id(khyve) != khyve_id:
        when = "?"
        try:
            when = datetime.datetime.fromtimestamp(
                os.stat(khyve).st_mtime, datetime.timezone.utc).strftime(
                "%H:%M:%S UTC")
        except OSError:
            pass
        notes.append(f"{args.khyve} was rebuilt while the benchmark ran "
                     f"(new file at {when}): the runs after that used the "
                     "new binary, and a run that started while it was being "
                     "written fails")
    busy1 = cpu_busy_snapshot()
    load_after = read("/proc/loadavg")
    others_after = top_processes({os.getpid()})
    elapsed = time.monotonic() - t_start
    busy_pct = 100.0 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])

    # ---- What did not run. -------------------------------------------------
    for c in boot_cfgs + exit_cfgs:
        bad = [r for r in c.runs if not r.ok]
        if bad:
            kind = "start-up" if c in boot_cfgs else "port-I/O"
            problems.append(f"{c.name} ({kind} runs): {len(bad)} of "
                            f"{len(c.runs)} runs "
                            f"failed ({bad[0].error}) " + errtail(bad[0]))
    if not boot_cfgs[0].good():
        log("bench: did not run: khyve never booted the microguest; "
            "BENCHMARKS.md left as it was")
        for p in problems:
            log("  " + p)
        return 1

    # ---- The report. ------------------------------------------------------
    md = report(args, facts, boot_cfgs, ex, stat, samp, cg, traces, rss_floor,
                gt_rss, gt_floor, load_before, load_after, busy_pct, elapsed,
                others_before, others_after, problems, notes, boot, loop)
    print(md)
    if not args.no_write:
        write_section(out_path, md)
        log(f"bench: wrote {out_path}")
    if args.json:
        dump = {c.name + (" (exits)" if c in exit_cfgs else ""):
                [r.__dict__ | {"out": r.out.decode(errors="replace"),
                               "err": r.err.decode(errors="replace")}
                 for r in c.runs] for c in boot_cfgs + exit_cfgs}
        with open(args.json, "w") as f:
            json.dump({"facts": facts, "runs": dump, "perf_stat": stat,
                       "traces": traces,
                       "callgrind": {k: v[0] for k, v in cg.items()}},
                      f, indent=1, default=str)
    for p in notes:
        log("bench: note: " + p)
    if problems:
        log("bench: some runs did not complete:")
        for p in problems:
            log("  " + p)
        return 1
    return 0


def trace_section(traces, kr):
    """Markdown lines: khyve's wall time by phase and by slow syscall."""
    L = []
    A = L.append
    n = len(traces)
    A("### Where khyve's wall time goes")
    A("")
    A(f"One khyve boot at a time under `perf record -a -e "
      "raw_syscalls:sys_enter,raw_syscalls:sys_exit -e "
      "sched:sched_switch/call-graph=fp/` (every syscall and context switch "
      f"on the machine, with kernel stacks), n = {n}, medians (min–max) in "
      "ms. Tracing slows everything down, so the totals are higher than in "
      "the table above; the split is what matters. \"Off CPU\" is the time "
      "the main thread slept inside the call, \"why\" the kernel function it "
      "slept in (and its KVM caller), from the stack at the context switch.")
    A("")

    def ph(a, b):
        xs = [t[b] - t[a] for t in traces
              if t.get(a) is not None and t.get(b) is not None]
        return fmt_mmm(xs, 2)
    A("| phase | ms |")
    A("|---|---|")
    A(f"| exec returns → first KVM ioctl (ld.so, libc, option parsing) | "
      f"{ph('t_exec', 'first_ioctl')} |")
    A(f"| first KVM ioctl → first KVM_RUN (VM, irqchip, PIT, memory, vCPU) | "
      f"{ph('first_ioctl', 'first_run')} |")
    A(f"| first KVM_RUN → first console byte (the guest runs) | "
      f"{ph('first_run', 'first_out')} |")
    A(f"| first console byte → GUEST-DONE | {ph('first_out', 'done')} |")
    A(f"| GUEST-DONE → exit_group (stop the vCPU, tear down the VM) | "
      f"{ph('done', 'exit_group')} |")
    A("")
    rows = {}
    order = []
    for t in traces:
        for phase, label, dur, offc, why in t["slow"]:
            k = (phase, label)
            if k not in rows:
                rows[k] = []
                order.append(k)
            rows[k].append((dur, offc, why))
    offs, fracs, reasons = [], [], {}
    for t in traces:
        if t.get("first_run") is None:
            continue
        o = sum(x[3] for x in t["slow"] if x[0] == "start")
        offs.append(o)
        fracs.append(100.0 * o / max(1e-9, t["first_run"] - t["t_exec"]))
        for x in t["slow"]:
            if x[0] == "start":
                for r, ms in x[4].items():
                    reasons[r.split(" ← ")[0]] = \
                        reasons.get(r.split(" ← ")[0], 0.0) + ms
    if offs:
        top = max(reasons.items(), key=lambda kv: kv[1])[0] if reasons else "?"
        A(f"From exec to the first KVM_RUN, khyve's main thread sleeps in the "
          f"kernel for {fmt_mmm(offs, 2)} ms, {statistics.median(fracs):.0f} % "
          f"of that phase (median), mostly in `{top}`.")
        A("")
    A("Main-thread system calls that took 0.05 ms or more (in at least one "
      "run):")
    A("")
    A("| when | call | took, ms | off CPU, ms | why (total ms over the runs) |")
    A("|---|---|---|---|---|")
    order.sort(key=lambda k: k[0] != "start")  # stable: start-up, then exit
    for k in order:
        v = rows[k]
        why = {}
        for _, _, w in v:
            for r, ms in w.items():
                why[r] = why.get(r, 0.0) + ms
        top = sorted(why.items(), key=lambda kv: -kv[1])[:3]
        wtxt = "; ".join(f"`{r}` {ms:.1f}" for r, ms in top if ms >= 0.05)
        A(f"| {'start-up' if k[0] == 'start' else 'exit'} | `{k[1]}` | "
          f"{fmt_mmm([x[0] for x in v], 2)} | "
          f"{fmt_mmm([x[1] for x in v], 2)} | {wtxt or '–'} |")
    A("")
    return L


def report(args, facts, boot_cfgs, ex, stat, samp, cg, traces, rss_floor,
           gt_rss, gt_floor, load_before, load_after, busy_pct, elapsed,
           others_before, others_after, problems, notes, boot, loop):
    L = []
    A = L.append
    n = args.runs
    by = {c.name: c for c in boot_cfgs}
    kh = by["khyve"].good()

    A(MARK_START)
    A("## Boot to first output (firmware microguest)")
    A("")
    A(f"Generated by `make bench` (`tools/bench/run.py`) on {facts['date']}. "
      "Do not edit by hand: the next run replaces everything between the "
      "`bench:boot` markers.")
    A("")
    A("The guest is `tests/guests/bootrom.S`, a 64 KiB real-mode firmware "
      "image: it sets up COM1, prints `GUEST-READY`, then `GUEST-DONE`, then "
      "asks to stop (ACPI S5 on khyve, isa-debug-exit on QEMU). 1 vCPU, "
      f"{RAM_MIB} MiB. Time is measured from just before `execv()` (fork + "
      "exec from the harness, console on a pipe, `time.monotonic_ns()`) to "
      "the arrival of the first byte of `GUEST-READY` on the console pipe, "
      "and to the process' exit (its pidfd becoming readable). CPU is "
      "`ru_utime`/`ru_stime` from `wait4()`. "
      f"n = {n} boots per VMM, interleaved (each round runs every VMM once, "
      "the order rotated each round), after 2 uncounted warm-up boots each. "
      "All values are **median (min–max)**.")
    A("")
    A("| VMM | to first output, ms | to exit, ms | peak RSS, MiB | "
      "CPU user+sys, ms | user / sys, ms (medians) | n |")
    A("|---|---|---|---|---|---|---|")
    for c in boot_cfgs:
        g = c.good()
        A(f"| {c.name} | {fmt_mmm(vals(g, 't_ready'))} | "
          f"{fmt_mmm(vals(g, 't_exit'))} | "
          f"{fmt_mmm(vals(g, 'hwm'), 2, 1 / 1024)} | "
          f"{fmt_mmm([r.user + r.sys for r in g])} | "
          f"{fmt(med(vals(g, 'user')))} / {fmt(med(vals(g, 'sys')))} | "
          f"{len(g)}/{len(c.runs)} |")
    for name, rdy, ext, rss in REFERENCE:
        A(f"| *{name}* | *{rdy}* | *{ext}* | *{rss}* | | | *30* |")
    A("")
    A("Peak RSS is the VMM's own `VmHWM` (high-water mark of its address "
      "space, `/proc/PID/status`), read when `GUEST-READY` arrives and again "
      "at `GUEST-DONE` when the process is still there. `ru_maxrss` from "
      "`wait4()` is not usable for a small VMM when the harness forks it: the "
      "kernel folds the pre-exec copy of the forking process' pages into "
      f"`ru_maxrss` (here a floor of {rss_floor / 1024:.1f} MiB, measured by "
      "forking `/bin/true`), so the raw values are listed below only. Rows "
      "in *italics* are BASELINE.md's numbers from an earlier session, not "
      "from this run. CPU: user+sys is exact (the scheduler's runtime); the "
      "user/sys split is sampled at the 4 ms tick (HZ=250, tick-based "
      "accounting), so for a process that runs a few ms it only says which "
      "side the one or two ticks fell on.")
    A("")

    # Ratios.
    kr, ke = med(vals(kh, "t_ready")), med(vals(kh, "t_exit"))
    krm = min(vals(kh, "t_ready")) if kh else None
    khwm = med(vals(kh, "hwm"))
    if len(boot_cfgs) > 1:
        A("**Ratios** (QEMU / khyve; > 1 means khyve is faster or smaller):")
        A("")
        A("| vs | first output (medians) | first output (minima) | "
          "exit (medians) | peak RSS (medians) |")
        A("|---|---|---|---|---|")
        for c in boot_cfgs[1:]:
            g = c.good()
            qr = vals(g, "t_ready")
            A(f"| {c.name} | {ratio(med(qr), kr)} | "
              f"{ratio(min(qr) if qr else None, krm)} | "
              f"{ratio(med(vals(g, 't_exit')), ke)} | "
              f"{ratio(med(vals(g, 'hwm')), khwm)} |")
        A("")
    A(f"Targets of issue 2: first output under {TARGET_READY_MS:g} ms — "
      f"khyve's median is {fmt(kr)} ms "
      f"(**{'met' if kr is not None and kr < TARGET_READY_MS else 'not met'}"
      f"**); under {TARGET_OWN_MIB:g} MiB of its own memory — see the next "
      "section.")
    A("")
    if traces:
        L.extend(trace_section(traces, kr))

    # Memory.
    A("### khyve's memory")
    A("")
    kl = ex["khyve loop"].good() + ex["khyve"].good()
    st = [r.status for r in kl if r.status]
    ram = [r.ram_rss for r in kl if r.ram_rss is not None]

    def smed(key):
        xs = [s[key] for s in st if key in s]
        return fmt_mmm(xs, 2, 1 / 1024)
    own = [r.status["VmRSS"] - r.ram_rss for r in kl
           if r.status.get("VmRSS") is not None and r.ram_rss is not None]
    khwm_mib = khwm / 1024 if khwm is not None else None
    A(f"Read from `/proc/PID/status` and `/proc/PID/smaps` while the guest "
      f"runs (at `GUEST-READY`, n = {len(st)}, the port-I/O runs below), MiB:")
    A("")
    A("| | MiB |")
    A("|---|---|")
    A(f"| peak RSS (`VmHWM`, start-up runs) | {fmt_mmm(vals(kh, 'hwm'), 2, 1 / 1024)} |")
    A(f"| RSS (`VmRSS`) | {smed('VmRSS')} |")
    A(f"| of which anonymous (`RssAnon`: heap, stacks, the 64 KiB ROM copy) | "
      f"{smed('RssAnon')} |")
    A(f"| of which file-backed (`RssFile`: the khyve binary, libc, ld.so) | "
      f"{smed('RssFile')} |")
    A(f"| of which shared memory (`RssShmem`: the guest RAM memfd) | "
      f"{smed('RssShmem')} |")
    A(f"| guest RAM touched (`Rss` of the {RAM_MIB} MiB mapping) | "
      f"{fmt_mmm(ram, 3, 1 / 1024)} |")
    A(f"| khyve's own (`VmRSS` − guest RAM) | {fmt_mmm(own, 2, 1 / 1024)} |")
    pss = [r.smaps["pss"]["Pss"] for r in kl
           if r.smaps and "Pss" in r.smaps["pss"]]
    pss_anon = [r.smaps["pss"]["Pss_Anon"] for r in kl
                if r.smaps and "Pss_Anon" in r.smaps["pss"]]
    if pss:
        A(f"| proportional set size (`Pss`: shared file pages divided among "
          f"the processes that map them) | {fmt_mmm(pss, 2, 1 / 1024)} |")
    if pss_anon:
        A(f"| of which `Pss_Anon` | {fmt_mmm(pss_anon, 2, 1 / 1024)} |")
    if gt_rss:
        A(f"| cross-check: GNU `time -f %M` (its floor: "
          f"{gt_floor / 1024:.2f} MiB), n = {len(gt_rss)} | "
          f"{fmt_mmm(gt_rss, 2, 1 / 1024)} |")
    A(f"| raw `ru_maxrss` from `wait4()` (floor {rss_floor / 1024:.2f} MiB, "
      f"see above) | {fmt_mmm(vals(kh, 'maxrss'), 2, 1 / 1024)} |")
    A("")
    files = {}
    nsm = 0
    for r in kl:
        if r.smaps and r.smaps["files"]:
            nsm += 1
            for k, v in r.smaps["files"].items():
                files.setdefault(k, []).append(v)
    if files:
        top = sorted(files.items(), key=lambda kv: -statistics.median(kv[1]))
        A("Resident KiB by mapping (median, at `GUEST-READY`; `[anon]` is "
          "unnamed anonymous memory such as thread stacks and the ROM copy): "
          + ", ".join(f"{k} {statistics.median(v):.0f}"
                      for k, v in top[:10]) + ".")
        A("")
    met = khwm_mib is not None and khwm_mib < TARGET_OWN_MIB
    A(f"The RSS is reported as is: it includes the guest RAM that is "
      f"resident (the microguest itself touches almost nothing: its stack; "
      f"most of it is the top 64 KiB of the ROM that khyve copies into RAM "
      f"below 1 MiB as the legacy BIOS alias) and the shared file pages of "
      f"libc and the binary. "
      f"Target under {TARGET_OWN_MIB:g} MiB: **{'met' if met else 'not met'}**"
      f" (peak RSS {fmt(khwm_mib, 2)} MiB; QEMU microvm "
      f"{fmt(med(vals(by['QEMU -M microvm'].good(), 'hwm')) / 1024 if 'QEMU -M microvm' in by and by['QEMU -M microvm'].good() else None, 1)}"
      " MiB).")
    A("")

    # Exit cost.
    A("### Port-I/O exit cost")
    A("")
    A(f"`bootrom-loop.bin` does {LOOP_ITERS:,} `out %al,$0x80` between "
      "`GUEST-READY` and `GUEST-DONE`; each one is a KVM_EXIT_IO handled "
      "in the VMM's user space. Per exit = (loop run − plain run) / 100,000, with the plain "
      f"`bootrom.bin` run as the baseline. n = {args.exit_runs} runs of each, "
      "interleaved.")
    A("")
    A("| VMM | wall (READY→DONE), µs/exit | user CPU, µs/exit | "
      "sys CPU, µs/exit | user+sys CPU, µs/exit | loop run: user / sys ms |")
    A("|---|---|---|---|---|---|")
    for name in ("khyve", "QEMU -M microvm"):
        if name not in ex:
            continue
        p, lp = ex[name].good(), ex[name + " loop"].good()
        if not p or not lp:
            A(f"| {name} | did not run | | | | |")
            continue

        def per(attr):
            a, b = mean(vals(lp, attr)), mean(vals(p, attr))
            return None if a is None or b is None else (a - b) * 1000 / LOOP_ITERS
        wall = (med([r.t_done - r.t_ready for r in lp])
                - med([r.t_done - r.t_ready for r in p])) * 1000 / LOOP_ITERS
        tot = ((mean([r.user + r.sys for r in lp])
                - mean([r.user + r.sys for r in p])) * 1000 / LOOP_ITERS)
        A(f"| {name} | {wall:.2f} | {fmt(per('user'), 3)} | "
          f"{fmt(per('sys'), 2)} | {tot:.2f} | "
          f"{fmt(mean(vals(lp, 'user')))} / {fmt(mean(vals(lp, 'sys')))} |")
    A("")
    A("Method and precision: wall is the difference of the medians of the "
      "READY→DONE interval. CPU is the difference of the *means* of "
      "`ru_utime`/`ru_stime`. This host's kernel uses tick-based CPU "
      "accounting (`CONFIG_TICK_CPU_ACCOUNTING`, HZ=250): user+sys is exact "
      "(it is the scheduler's `sum_exec_runtime`), but the user/sys split is "
      "a 4 ms-tick sample scaled to it, so one run's user time moves in steps "
      "of about 0.04 µs/exit; averaging over n runs narrows that. The more "
      "precise numbers for khyve's user space follow.")
    A("")
    # perf
    if stat["loop"] and stat["plain"]:
        def pm(tag, ev):
            xs = [s[ev] for s in stat[tag] if ev in s]
            return mean(xs)
        tc = (pm("loop", "task-clock") - pm("plain", "task-clock")) * 1000 / LOOP_ITERS
        ut = None
        if pm("loop", "user_time") is not None and pm("plain", "user_time") is not None:
            ut = (pm("loop", "user_time") - pm("plain", "user_time")) * 1000 / LOOP_ITERS
        A(f"- `perf stat -e task-clock,user_time,system_time` (n = "
          f"{len(stat['loop'])} each): task-clock (exact on-CPU time, all "
          f"threads) **{tc:.2f} µs/exit**; user_time {fmt(ut, 3)} µs/exit "
          "(perf takes user_time from the same rusage, so it is no finer "
          "than the table).")
    if samp["loop"] and samp["plain"]:
        ul = mean([s[0] for s in samp["loop"]])
        up = mean([s[0] for s in samp["plain"]])
        kl_ = mean([s[1] for s in samp["loop"]])
        uper = (ul - up) * 1000 / LOOP_ITERS
        share = 100.0 * ul / (ul + kl_) if ul + kl_ else 0
        syms = {}
        for s in samp["loop"]:
            for k, v in s[2].items():
                syms[k] = syms.get(k, 0) + v / len(samp["loop"])
        top = sorted(syms.items(), key=lambda kv: -kv[1])[:5]
        A(f"- `perf record -e cpu-clock -c {PERF_PERIOD_NS}` (a sample every "
          f"{PERF_PERIOD_NS // 1000} µs of CPU, classified user/kernel by its "
          f"IP; n = {len(samp['loop'])} each): khyve user space "
          f"**{uper:.3f} µs/exit** ({share:.1f} % of the loop run's CPU). "
          "Where (loop run, µs/exit): "
          + ", ".join(f"{k} {v * 1000 / LOOP_ITERS:.3f}" for k, v in top)
          + ". The `ioctl` wrapper's share is more than its few "
          "instructions (see callgrind below) would take: it is probably the "
          "first user-mode instructions after `KVM_RUN` returns paying for "
          "cache and TLB refills after the world switch.")
    if "loop" in cg and "plain" in cg:
        irl, fl = cg["loop"]
        irp, fp = cg["plain"]
        A(f"- `valgrind --tool=callgrind` (instructions executed in user "
          f"space, exact, n = 1): **{(irl - irp) / LOOP_ITERS:.0f} "
          f"instructions/exit** ({irl:,} loop − {irp:,} plain). By function "
          "(instructions/exit):")
        A("")
        diff = {k: (v - fp.get(k, 0)) / LOOP_ITERS for k, v in fl.items()}
        A("  | function | instructions/exit |")
        A("  |---|---|")
        for k, v in sorted(diff.items(), key=lambda kv: -kv[1])[:10]:
            if v >= 0.5:
                A(f"  | `{k}` | {v:.0f} |")
    if not (stat["loop"] or samp["loop"] or cg):
        A("- perf and valgrind were not available or were skipped: only the "
          "rusage numbers above.")
    A("")
    A("Almost all of an exit's cost is in the kernel (PVM's world switch and "
      "KVM's exit path, the sys column); the VMM's share is the user column. "
      "BASELINE.md found about 7.5 µs per exit in total, of which 0.2–0.6 µs "
      "in the VMM's user space, for QEMU and kvmtool.")
    A("")

    # Machine and commands.
    A("### Machine and method")
    A("")
    A(f"- {facts['nproc']} CPUs ({facts['cpu']}), "
      f"{facts['mem_gib']:.0f} GiB, host kernel `{facts['kernel']}`; the "
      f"CPU flags show {'svm/vmx' if facts['hw_virt'] else 'no svm/vmx'}. "
      f"`/dev/kvm`: {facts['kvm']}. The machine is itself a microVM, shared "
      "with other work.")
    A(f"- Load: `/proc/loadavg` before `{load_before}`, after "
      f"`{load_after}`; all CPUs {busy_pct:.0f} % busy on average during "
      f"the {elapsed:.0f} s of the run (including the benchmark itself). "
      f"Other processes using CPU: before: {others_before}; after: "
      f"{others_after}.")
    A(f"- khyve: commit {facts['commit']}, "
      f"{facts['khyve_size']:,} B binary"
      + (f", {facts['buildtype']}" if facts['buildtype'] else "") + ".")
    if facts.get("qemu"):
        A(f"- {facts['qemu']}.")
    A("- Commands (each run once per round; `bootrom-loop.bin` in place of "
      "`bootrom.bin` for the exit runs):")
    A("")
    A("  ```")
    for c in boot_cfgs:
        A("  " + sh(c.shown_fn(boot)))
    A("  ```")
    A("")
    A(f"- Reproduce: `make bench`, or `python3 tools/bench/run.py "
      f"--khyve build/src/khyve --guests build/tests/guests --runs {n} "
      f"--exit-runs {args.exit_runs}` (`--json FILE` keeps every run).")
    A("- The machine has 2 vCPUs shared with other work: expect the medians "
      "to move by tens of percent between sessions (BASELINE.md saw QEMU "
      "q35's median at 48 ms in one round and 86 ms in the next); the minima "
      "and the ratios are steadier.")
    if problems:
        A("")
        A("**Runs that did not complete:**")
        A("")
        for p in problems:
            A(f"- {p}")
    if notes:
        A("")
        A("Notes (optional measurements that did not run, and other "
          "warnings):")
        A("")
        for p in notes:
            A(f"- {p}")
    A("")
    A(MARK_END)
    return "\n".join(L)


def write_section(path, md, start=MARK_START, end=MARK_END):
    """Put @md (which starts with @start and ends with @end) into the
    benchmark file at @path, replacing that section if present."""
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = None
    if old is None:
        new = ("# khyve benchmarks\n\n"
               "Each section is written by a benchmark tool and replaced "
               "when it runs again; see the markers.\n\n" + md + "\n")
    elif start in old and end in old:
        a = old.index(start)
        b = old.index(end) + len(end)
        new = old[:a] + md + old[b:]
    else:
        new = old.rstrip("\n") + "\n\n" + md + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
