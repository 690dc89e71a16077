"""Linux boot benchmark (issue 3, "Performance (benchmark)"), used by run.py.

    python3 tools/bench/run.py --linux --khyve build/src/khyve \
        [--guestkit build/guestkit] [--linux-runs 5] [--linux-slow-runs 3]

Boots the guest kit's kernel (build/guestkit: vmlinux = ELF with a PVH note,
bzImage = the same kernel, LZ4) with its busybox initramfs and
khyve.task=poweroff, the same kernel command line everywhere, under

  - khyve -A, with the ELF vmlinux and with the bzImage (khyve decompresses
    the bzImage on the host and enters the kernel in 64-bit mode);
  - QEMU -M microvm and -M q35, each with -kernel vmlinux (PVH) and -kernel
    bzImage (the firmware loads it, the guest decompresses it).

and times, from just before execv() (run.spawn(): fork + exec, console on a
pipe, time.monotonic_ns()): the first byte of "Linux version" (the kernel's
first console line), of "Run /init", of "KHYVE-READY", and the process' exit;
also the guest's own clock at "Run /init" (the printk timestamp) and at
KHYVE-READY, peak RSS (VmHWM, sampled at every console read while the VMM
lives) and CPU (wait4). Configurations are interleaved: each round runs every
configuration that still needs runs, in an order rotated each round.

Writes the section between <!-- bench:linux:start --> and
<!-- bench:linux:end --> of BENCHMARKS.md, and after every run the raw
numbers to a JSON file (--linux-json, default build/bench-linux.json), from
which --linux-report-only regenerates the section.
"""

import datetime
import json
import os
import re
import shlex
import statistics
import time

import run as bench

MARK_START = "<!-- bench:linux:start -->"
MARK_END = "<!-- bench:linux:end -->"
RAM_MIB = 256
TARGET_FIRST_S = 1.0
TARGET_INIT_RATIO = 1.5
QEMU_BASE = ["-nodefaults", "-no-user-config", "-enable-kvm",
             "-cpu", "host,-arch-capabilities", "-smp", "1", "-m",
             str(RAM_MIB), "-display", "none", "-serial", "stdio",
             "-no-reboot"]
# QEMU cannot repair a CPL0 int3 on kvm_pvm (tools/guestkit/README.md,
# patch 0001), so its kernel needs no_int3_selftest; it is passed to every
# VMM so that the command line is the same everywhere.
EXTRA_CMDLINE = "no_int3_selftest khyve.task=poweroff"

FIRST = b"Linux version"
RUN_INIT = b"Run /init"
READY = b"KHYVE-READY"
RE_INIT_CLOCK = re.compile(rb"\[\s*(\d+\.\d+)\] Run /init")
RE_TS_LINE = re.compile(rb"^\[\s*(\d+\.\d+)\][^\n]*\n", re.M)
RE_READY_CLOCK = re.compile(rb"KHYVE-READY (\d+\.\d+)")


def log(msg):
    bench.log(msg)


class LConfig:
    def __init__(self, key, name, vmm, form, argv_fn, shown_fn, n):
        self.key = key
        self.name = name
        self.vmm = vmm          # "khyve" or "qemu"
        self.form = form        # "ELF (PVH note)" / "bzImage"
        self.argv_fn = argv_fn  # absolute paths
        self.shown_fn = shown_fn  # as written in the doc
        self.n = n
        self.runs = []          # dicts


def khyve_argv(khyve, kernel, initrd, cmdline):
    return [khyve, "-A", "-m", f"{RAM_MIB}M", "-l", "com1,stdio",
            "-f", f"kexec,{kernel},{initrd},{cmdline}"]


def qemu_argv(qemu, machine, kernel, initrd, cmdline):
    return [qemu] + QEMU_BASE + ["-M", machine, "-kernel", kernel,
                                 "-initrd", initrd, "-append", cmdline]


def measure(argv, timeout):
    """One boot; a dict of the numbers (times in s)."""
    hwm = {"v": None}

    def on_output(pid, out):
        v = bench._proc_status(pid).get("VmHWM")
        if v is not None:
            hwm["v"] = max(hwm["v"] or 0, v)

    s = bench.spawn(argv, timeout, on_output)
    d = {"error": None, "exit_code": s.exit_code, "killed": s.killed,
         "user_s": s.user / 1e3, "sys_s": s.sys / 1e3,
         "hwm_mib": hwm["v"] / 1024 if hwm["v"] else None}
    if s.t0 is None or s.exec_error is not None:
        d["error"] = "exec failed: " + str(s.exec_error)
        d["tail"] = ""
        return d

    def sec(x):
        return None if x is None else x / 1e3
    d["t_first"] = sec(s.first(FIRST))
    d["t_init"] = sec(s.first(RUN_INIT))
    d["t_ready"] = sec(s.first(READY))
    d["t_exit"] = (s.t_exit_ns - s.t0) / 1e9
    m = RE_INIT_CLOCK.search(s.out)
    d["g_init"] = float(m.group(1)) if m else None
    m = RE_READY_CLOCK.search(s.out)
    d["g_ready"] = float(m.group(1)) if m else None
    # The printk clock's zero in host time: every console line
    # "[    t] ..." arrives at or after host time zero + t, so the minimum of
    # (arrival - t) over the lines bounds it from above; it is tight for
    # the lines printed once the serial console is live. kvmclock starts
    # the printk clock early in setup_arch(), shortly after the kernel's
    # entry, so this is when the kernel started (roughly), whereas the first
    # line only arrives when console_init() registers ttyS0 and flushes the
    # log buffer.
    z = None
    for m in RE_TS_LINE.finditer(s.out):
        ts = float(m.group(1))
        if ts <= 0:
            continue
        t = s.at(m.end() - 1)
        if t is not None:
            z = (t / 1e3 - ts) if z is None else min(z, t / 1e3 - ts)
    d["t_clock0"] = z
    d["console"] = s.out.decode(errors="replace")
    out = d["console"]
    d["tail"] = "\n".join(out.rstrip().splitlines()[-8:])
    d["stderr_tail"] = "\n".join(
        s.err.decode(errors="replace").rstrip().splitlines()[-4:])
    reached = [n for n, k in (("first line", "t_first"),
                              ("Run /init", "t_init"),
                              ("KHYVE-READY", "t_ready")) if d[k] is not None]
    if s.killed:
        d["error"] = (f"timed out after {timeout:g} s (killed); reached: "
                      + (", ".join(reached) or "nothing"))
    elif d["t_ready"] is None:
        d["error"] = (f"exit status {s.exit_code} before KHYVE-READY; "
                      "reached: " + (", ".join(reached) or "nothing"))
    elif s.exit_code != 0:
        d["error"] = f"exit status {s.exit_code} (expected 0)"
    return d


# --------------------------------------------------------------------------
# Formatting.
# --------------------------------------------------------------------------

def vals(c, k, good_only=True):
    return [r[k] for r in c.runs
            if r.get(k) is not None and (r["error"] is None or not good_only)]


def mmm(xs, nd=1):
    if not xs:
        return "–"
    return (f"{statistics.median(xs):.{nd}f} "
            f"({min(xs):.{nd}f}–{max(xs):.{nd}f})")


def med(xs):
    return statistics.median(xs) if xs else None


def sh(argv):
    return shlex.join(argv)


def report(cfgs, meta):
    L = []
    A = L.append
    A(MARK_START)
    A("## Linux boot (guest kit kernel, khyve.task=poweroff)")
    A("")
    A(f"Generated by `make bench` (`tools/bench/run.py` → "
      f"`tools/bench/linux_boot.py`) on {meta['date']}. Do not edit by hand: "
      "the next run replaces everything between the `bench:linux` markers.")
    A("")
    A("The guest kit (`build/guestkit`, `make guestkit`): Linux 6.1.192, the "
      "same kernel as an ELF `vmlinux` with a PVH note and as an LZ4 "
      "`bzImage`, the 1.9 MiB busybox `initramfs.cpio`; /init prints "
      "`KHYVE-READY` and powers off (`khyve.task=poweroff`). 1 vCPU, "
      "256 MiB, the same command line for every VMM (below). Times are from "
      "just before `execv()` (fork + exec from the harness, console on a "
      "pipe, `time.monotonic_ns()`, the same code as the microguest "
      "section) to the arrival of the first byte of `Linux version` (the "
      "kernel's first console line), of `Run /init`, of `KHYVE-READY`, and "
      "to the process' exit. \"guest clock\" is the kernel's own printk "
      "timestamp on the `Run /init` line (seconds since the kernel's clock "
      "started; excludes the firmware and the VMM's set-up): it shows how "
      "much of a difference is the guest kernel's own work and how much the "
      "host's load. Peak RSS is the VMM's `VmHWM` (sampled at every console "
      "read; it includes the guest RAM the VMM has touched). "
      "*printk clock zero* is when, in host time since exec, the guest "
      "kernel's printk clock read 0: the minimum over the console lines of "
      "(arrival − the line's timestamp); kvmclock starts that clock early in "
      "`setup_arch()`, shortly after the kernel's entry, so it places the "
      "kernel's start, which the first line does not: with "
      "`console=ttyS0` and no early console, `Linux version` (stamped "
      "0.000000) is held in the log buffer until `console_init()` registers "
      "the serial console, many seconds of emulated kernel work later. "
      "CPU is "
      "`ru_utime + ru_stime` from `wait4()` (all threads). "
      "**Median (min–max)**, seconds; n = successful runs / runs. "
      "Configurations interleaved (each round runs every configuration "
      "still short of its n, the order rotated each round); no warm-up "
      "boots (the images were in the page cache).")
    A("")
    A("| VMM, kernel form | first kernel line, s | printk clock zero, s | "
      "`Run /init`, s | "
      "guest clock at `Run /init`, s | `KHYVE-READY`, s | exit, s | "
      "peak RSS, MiB | CPU user+sys, s | n |")
    A("|---|---|---|---|---|---|---|---|---|---|")
    for c in cfgs:
        cpu = [r["user_s"] + r["sys_s"] for r in c.runs if r["error"] is None]
        good = len([r for r in c.runs if r["error"] is None])
        A(f"| {c.name} | {mmm(vals(c, 't_first'), 2)} | "
          f"{mmm(vals(c, 't_clock0'), 2)} | "
          f"{mmm(vals(c, 't_init'))} | {mmm(vals(c, 'g_init'))} | "
          f"{mmm(vals(c, 't_ready'))} | {mmm(vals(c, 't_exit'))} | "
          f"{mmm(vals(c, 'hwm_mib'))} | {mmm(cpu)} | {good}/{len(c.runs)} |")
    A("")

    # Ratios.
    kh = [c for c in cfgs if c.vmm == "khyve"]
    qe = [c for c in cfgs if c.vmm == "qemu" and vals(c, "t_init")]
    A("**Targets** (issue 3):")
    A("")
    for c in kh:
        f = med(vals(c, "t_first"))
        fx = vals(c, "t_first")
        if f is None:
            A(f"- {c.name}: first kernel line — no successful run.")
            continue
        ok = "met" if f < TARGET_FIRST_S else "**not met**"
        z = med(vals(c, "t_clock0"))
        zs = "" if z is None else (
            f" The kernel itself started earlier: printk clock zero at "
            f"{z:.2f} s (median; "
            + ("< 1 s" if z < TARGET_FIRST_S else "≥ 1 s") + ").")
        A(f"- {c.name}: first kernel line (`Linux version`) on the console "
          f"at {f:.2f} s (median; max {max(fx):.2f} s) after process start "
          f"— target < {TARGET_FIRST_S:g} s: {ok}.{zs}")
    if qe and kh:
        best = min(qe, key=lambda c: med(vals(c, "t_init")))
        bq = med(vals(best, "t_init"))
        bg = min(qe, key=lambda c: med(vals(c, "g_init")))
        bqg = med(vals(bg, "g_init"))
        for c in kh:
            ki = med(vals(c, "t_init"))
            if ki is None:
                continue
            r = bq / ki
            ok = "met" if r >= TARGET_INIT_RATIO else "**not met**"
            kg = med(vals(c, "g_init"))
            A(f"- {c.name}: `Run /init` at {ki:.1f} s vs QEMU's best "
              f"({best.name}, {bq:.1f} s): QEMU / khyve = **{r:.2f}×** (medians; "
              f"> 1 means khyve is sooner) — "
              f"target ≥ {TARGET_INIT_RATIO:g}×: {ok}. By the guest clock "
              f"at `Run /init` (the kernel's own time, less sensitive to "
              f"the firmware): khyve {kg:.1f} s vs QEMU's best ({bg.name}) "
              f"{bqg:.1f} s, {bqg / kg:.2f}×.")
        A("")
        A("Ratios of `Run /init` (QEMU config median / khyve median; > 1 "
          "means khyve is sooner):")
        A("")
        A("| | " + " | ".join(c.name for c in kh) + " |")
        A("|---|" + "---|" * len(kh))
        for q in qe:
            row = [f"{med(vals(q, 't_init')) / med(vals(c, 't_init')):.2f}×"
                   if vals(c, "t_init") else "–" for c in kh]
            A(f"| {q.name} | " + " | ".join(row) + " |")
    A("")

    # Where the time goes: before the kernel vs inside it.
    A("Split (medians of the per-run differences, s): *before the kernel* = "
      "printk clock zero (the firmware's and the VMM's share; for a bzImage "
      "under QEMU it includes the guest's decompression); *kernel to "
      "`Run /init`* = `Run /init` − printk clock zero, and the guest clock "
      "at `Run /init` (the same interval by the guest's clock); */init* = "
      "`KHYVE-READY` − `Run /init`; *power-off* = exit − `KHYVE-READY`.")
    A("")
    A("| VMM, kernel form | before the kernel | kernel to `Run /init` (host) "
      "| guest clock at `Run /init` | /init | power-off |")
    A("|---|---|---|---|---|---|")
    for c in cfgs:
        g = [r for r in c.runs if r["error"] is None]

        def dm(a, b):
            xs = [r[a] - (r[b] if b else 0) for r in g
                  if r.get(a) is not None and (b is None or
                                               r.get(b) is not None)]
            return f"{med(xs):.1f}" if xs else "–"
        A(f"| {c.name} | {dm('t_clock0', None)} | "
          f"{dm('t_init', 't_clock0')} | {dm('g_init', None)} | "
          f"{dm('t_ready', 't_init')} | {dm('t_exit', 't_ready')} |")
    A("")

    A("<details><summary>Every run (s; in the order they ran, with the "
      "1-minute load average at its start)</summary>")
    A("")
    A("| round | VMM, kernel form | first line | clock zero | `Run /init` | "
      "guest clock | `KHYVE-READY` | exit | loadavg | result |")
    A("|---|---|---|---|---|---|---|---|---|---|")
    allr = sorted(((r.get("seq", 0), c, r) for c in cfgs for r in c.runs),
                  key=lambda x: (x[2]["round"], x[0]))

    def f2(x, nd=1):
        return "–" if x is None else f"{x:.{nd}f}"
    for _, c, r in allr:
        A(f"| {r['round']} | {c.name} | {f2(r.get('t_first'), 2)} | "
          f"{f2(r.get('t_clock0'), 2)} | {f2(r.get('t_init'))} | "
          f"{f2(r.get('g_init'))} | {f2(r.get('t_ready'))} | "
          f"{f2(r.get('t_exit'))} | {(r.get('loadavg') or '?').split()[0]} | "
          f"{'ok' if r['error'] is None else 'failed'} |")
    A("")
    A("</details>")
    A("")

    bad = [(c, r) for c in cfgs for r in c.runs if r["error"] is not None]
    if bad:
        A("**Runs that did not complete** (not in the medians above):")
        A("")
        for c, r in bad:
            A(f"- {c.name}, round {r['round']}: {r['error']}. Console tail:")
            A("")
            A("  ```")
            for line in (r.get("tail") or "(nothing)").splitlines():
                A("  " + line)
            A("  ```")
        A("")

    A("### Machine, load and commands")
    A("")
    A(f"- {meta['nproc']} CPUs ({meta['cpu']}), host kernel "
      f"`{meta['kernel']}`, {meta['kvm']}.")
    A(f"- `/proc/loadavg` before `{meta['load_before']}`, after "
      f"`{meta['load_after']}`; "
      + (f"all CPUs {meta['busy_pct']:.0f} % busy on average during the "
         f"{meta['elapsed'] / 60:.0f} min of the run (including the boots "
         "measured, which keep one CPU busy). "
         if meta['busy_pct'] == meta['busy_pct'] else
         f"{meta['elapsed'] / 60:.0f} min of runs. ")
      + 
      f"Other processes using CPU (1 s sample): before: "
      f"{meta['others_before']}; after: {meta['others_after']}.")
    if meta.get("other_vmms"):
        A(f"- Other VMs running on the machine when the benchmark started "
          f"(not ours; left alone): {meta['other_vmms']}. The machine is "
          "shared (other engineers run Linux boot tests): a busy second "
          "core slows an emulated boot down by up to ~2× (MINIKERNEL.md), "
          "which the guest clock column shows as well.")
    A(f"- khyve: commit {meta['commit']}; {meta.get('qemu', 'QEMU ?')}.")
    A(f"- Guest kit: {meta['kit']}.")
    A("- Commands (paths relative to the repository; the command line is "
      "`tools/guestkit/cmdline` + `" + EXTRA_CMDLINE + "`: QEMU needs "
      "`no_int3_selftest` on kvm_pvm (it cannot repair a CPL0 `int3`, "
      "guest kit README), khyve gets it too so that the kernel does the "
      "same work everywhere):")
    A("")
    A("  ```")
    for c in cfgs:
        A("  " + sh(c.shown_fn()))
    A("  ```")
    A("")
    short = [c for c in cfgs if len(c.runs) < c.n]
    if short:
        A("- **Incomplete:** the run was stopped before every planned boot "
          "had run (the session's time limit): " + ", ".join(
              f"{c.name} {len(c.runs)} of {c.n}" for c in short)
          + ". The n column above is what was measured.")
    A(f"- Planned n per configuration: {meta['n_desc']}; per-boot timeout "
      f"{meta['timeout']:g} s (a boot still running then is killed and "
      "reported as timed out).")
    A("- Reproduce: `make bench` (everything), or `python3 tools/bench/run.py "
      "--linux --khyve build/src/khyve --guestkit build/guestkit "
      f"--linux-runs {meta['runs']} --linux-slow-runs {meta['slow_runs']}`; "
      "the raw numbers of every run go to `--linux-json` "
      "(default `build/bench-linux.json`).")
    for n in meta.get("notes", []):
        A(f"- {n}")
    A("")
    A(MARK_END)
    return "\n".join(L)


def other_vmms():
    me = os.getpid()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        name = os.path.basename(argv[0].decode(errors="replace"))
        if name in ("khyve", "qemu-system-x86_64", "lkvm"):
            found.append(name)
    if not found:
        return "none"
    return ", ".join(f"{found.count(n)} × {n}" for n in sorted(set(found)))


def kit_desc(kit):
    parts = []
    for f in ("vmlinux", "bzImage", "initramfs.cpio"):
        try:
            parts.append(f"{f} {os.path.getsize(os.path.join(kit, f)):,} B")
        except OSError:
            parts.append(f"{f} missing")
    return ", ".join(parts)


# --------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------

def main(args, repo):
    kit = os.path.abspath(args.guestkit)
    kit_shown = os.path.relpath(kit, repo) if kit.startswith(repo) else kit
    khyve = os.path.abspath(args.khyve)
    qemu = None if args.no_qemu else args.qemu
    out_path = args.out or os.path.join(repo, "BENCHMARKS.md")
    json_path = args.linux_json or os.path.join(repo, "build",
                                                "bench-linux.json")
    with open(os.path.join(repo, "tools", "guestkit", "cmdline")) as f:
        cmdline = f.read().strip() + " " + EXTRA_CMDLINE
    vml = os.path.join(kit, "vmlinux")
    bzi = os.path.join(kit, "bzImage")
    ird = os.path.join(kit, "initramfs.cpio")

    if args.linux_report_only:
        with open(json_path) as f:
            saved = json.load(f)
        meta = saved["meta"]
    else:
        missing = [p for p in (vml, bzi, ird) if not os.path.isfile(p)]
        if not os.access(khyve, os.X_OK):
            missing.append(khyve)
        if not args.no_qemu and not (qemu and os.access(qemu, os.X_OK)):
            missing.append("qemu-system-x86_64")
        if missing:
            log("bench linux: did not run: missing " + ", ".join(missing)
                + " (`make guestkit`?)")
            return 1

    n, ns = args.linux_runs, args.linux_slow_runs
    kshown = os.path.relpath(khyve, repo) if khyve.startswith(repo) \
        else args.khyve

    def K(key, name, kern):
        return LConfig(
            key, name, "khyve", kern,
            lambda: khyve_argv(khyve, os.path.join(kit, kern), ird, cmdline),
            lambda: khyve_argv(kshown, f"{kit_shown}/{kern}",
                               f"{kit_shown}/initramfs.cpio", cmdline), n)

    def Q(key, name, machine, kern, runs):
        return LConfig(
            key, name, "qemu", kern,
            lambda: qemu_argv(qemu, machine, os.path.join(kit, kern), ird,
                              cmdline),
            lambda: qemu_argv("qemu-system-x86_64", machine,
                              f"{kit_shown}/{kern}",
                              f"{kit_shown}/initramfs.cpio", cmdline), runs)

    cfgs = [K("khyve-elf", "khyve, ELF vmlinux", "vmlinux"),
            K("khyve-bz", "khyve, bzImage", "bzImage")]
    if qemu or args.linux_report_only:
        cfgs += [Q("microvm-pvh", "QEMU -M microvm, PVH vmlinux", "microvm",
                   "vmlinux", n),
                 Q("q35-pvh", "QEMU -M q35, PVH vmlinux", "q35", "vmlinux", n),
                 Q("microvm-bz", "QEMU -M microvm, bzImage", "microvm",
                   "bzImage", ns),
                 Q("q35-bz", "QEMU -M q35, bzImage", "q35", "bzImage", ns)]

    if args.linux_report_only:
        for c in cfgs:
            c.runs = saved["runs"].get(c.key, [])
    else:
        meta = {"date": datetime.datetime.now(datetime.timezone.utc)
                .strftime("%Y-%m-%d %H:%M UTC"),
                "load_before": bench.read("/proc/loadavg"),
                "others_before": bench.top_processes({os.getpid()}),
                "other_vmms": other_vmms(), "timeout": args.linux_timeout,
                "runs": n, "slow_runs": ns, "kit": kit_desc(kit),
                "notes": []}
        facts = bench.machine_facts(khyve, qemu)
        for k in ("nproc", "cpu", "kernel", "kvm", "commit", "qemu"):
            meta[k] = facts.get(k)
        busy0 = bench.cpu_busy_snapshot()
        t_start = time.monotonic()
        rounds = max(c.n for c in cfgs)
        for i in range(rounds):
            todo = [c for c in cfgs if len(c.runs) < c.n]
            k = i % len(todo)
            for c in todo[k:] + todo[:k]:
                la = bench.read("/proc/loadavg")
                d = measure(c.argv_fn(), args.linux_timeout)
                d["round"] = i + 1
                d["seq"] = sum(len(x.runs) for x in cfgs)
                d["loadavg"] = la
                c.runs.append(d)
                log(f"  linux {c.name} run {len(c.runs)}/{c.n}: "
                    + (f"first {d.get('t_first')}, /init {d.get('t_init')} "
                       f"(guest {d.get('g_init')}), exit "
                       f"{d.get('t_exit'):.1f} s" if d["error"] is None
                       else "FAILED: " + d["error"])
                    + f" [load {la.split()[0]}]")
                meta["elapsed"] = time.monotonic() - t_start
                _save(json_path, meta, cfgs)
            log(f"  linux: round {i + 1}/{rounds} done")
        busy1 = bench.cpu_busy_snapshot()
        meta["elapsed"] = time.monotonic() - t_start
        meta["busy_pct"] = (100.0 * (busy1[0] - busy0[0])
                            / max(1, busy1[1] - busy0[1]))
        meta["load_after"] = bench.read("/proc/loadavg")
        meta["others_after"] = bench.top_processes({os.getpid()})
        _save(json_path, meta, cfgs)
    meta.setdefault("load_after", "(run not finished)")
    meta.setdefault("others_after", "?")
    meta.setdefault("busy_pct", float("nan"))
    meta["n_desc"] = ", ".join(f"{c.name} {c.n}" for c in cfgs)


    md = report(cfgs, meta)
    print(md)
    if not args.no_write:
        bench.write_section(out_path, md, MARK_START, MARK_END)
        log(f"bench linux: wrote {out_path}")
    bad = [c for c in cfgs if any(r["error"] for r in c.runs)]
    return 1 if bad else 0


def _save(path, meta, cfgs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "runs": {c.key: c.runs for c in cfgs}}, f,
                  indent=1)
    os.replace(tmp, path)
