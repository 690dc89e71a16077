"""Instructions a software-virtualized KVM (PVM, SPEC.md §7) cannot run at
guest CPL0, and the stuck-vCPU watchdog.

The fix-up guests (tests/guests/fixups/) check int3, cmpxchg16b/8b and
xsave/xsaveopt/xrstor against what hardware does; they must pass on every
host: on PVM through khyve's fix-ups, elsewhere natively. The stuck guest
hangs on purpose: a spin is reported and the run goes on; a KVM hypercall
never returns on PVM, so khyve reports it and stops (exit 1), while
hardware KVM completes it.
"""
import os
import re
import signal
import time

import pytest

from conftest import wait_for

pytestmark = pytest.mark.usefixtures("kvm")

WATCHDOG_MS = "300"
STUCK_SAMPLES = 3  # WATCHDOG_STUCK_SAMPLES in src/core/watchdog.h


def pvm_host():
    """As khyve's pvm_host_detect(): kvm_pvm loaded, or a /dev/kvm on a CPU
    that shows neither VT-x nor AMD-V."""
    if os.path.exists("/sys/module/kvm_pvm"):
        return True
    with open("/proc/cpuinfo") as f:
        flags = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
    return not (flags and {"vmx", "svm"} & set(flags.group(1).split()))


def boot(khyve, name, cmdline="", env=None, **kw):
    return khyve.run("-l", "com1,stdio", "-f", khyve.guest(name, cmdline),
                     env=env, **kw)


@pytest.mark.parametrize("name", ["int3", "cmpxchg16b", "xsave"])
def test_fixup_guest(khyve, name):
    r = boot(khyve, name)
    assert "FAIL" not in r.out, (r.out, r.err)
    assert f"PASS {name}" in r.out, (r.out, r.err)
    assert r.rc == 0, (r.out, r.err)
    assert "emulation failure" not in r.err, r.err


def test_watchdog_vmcall(khyve):
    """PVM: the vCPU spins inside KVM_RUN; the watchdog names the hypercall
    and stops the run. Hardware KVM returns from the unknown hypercall."""
    t = time.monotonic()
    r = boot(khyve, "stuck", "how=vmcall", env={"KHYVE_WATCHDOG_MS":
                                                WATCHDOG_MS})
    elapsed = time.monotonic() - t
    assert "STUCK via vmcall" in r.out, (r.out, r.err)
    if pvm_host():
        assert r.rc == 1, (r.out, r.err)
        assert "stuck in a KVM hypercall" in r.err, r.err
        assert "vmcall returned" not in r.out, r.out
        # Three samples 300 ms apart, not the default 10 s period.
        assert elapsed < 8, elapsed
    else:
        assert "vmcall returned" in r.out, (r.out, r.err)
        assert "PASS stuck" in r.out
        assert r.rc == 0, (r.out, r.err)


def test_watchdog_spin(khyve):
    """A kernel vCPU looping on one instruction is reported once, with its
    RIP and bytes (a jmp to itself), and khyve keeps running it."""
    p = khyve.start("-l", "com1,stdio", "-f",
                    khyve.guest("stuck", "how=spin"),
                    env={"KHYVE_WATCHDOG_MS": WATCHDOG_MS})
    p.expect(r"STUCK via spin\r?\n")
    t = time.monotonic()
    wait_for(lambda: "has not moved from RIP" in p.err, timeout=10,
             what="the watchdog's report")
    # About STUCK_SAMPLES periods after the loop started (slack: 2 cores).
    assert time.monotonic() - t < 5
    m = re.search(r"vCPU 0 has not moved from RIP (0x[0-9a-f]+) .*"
                  r"\(bytes: eb fe ", p.err)
    assert m, p.err
    assert int(m.group(1), 16) >= 0x100000, m.group(1)  # in the guest image

    # Still running, and reported only once while it stays stuck.
    time.sleep(STUCK_SAMPLES * int(WATCHDOG_MS) / 1000 + 0.3)
    assert p.p.poll() is None, p.err
    assert p.err.count("has not moved from RIP") == 1, p.err

    # The guest ignores the power button: the second SIGTERM stops it.
    p.signal(signal.SIGTERM)
    time.sleep(0.2)
    p.signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 1, (p.out, p.err)
    assert "stopping the guest now" in p.err, p.err
