"""The test guests (tests/guests/*.c, bootrom.S) under khyve: each one's
exit status and console output, and the signals that stop a run.

A passing guest prints "PASS name" and powers off (exit 0); a failing one
prints "FAIL name: why" and triple-faults (exit 3).
"""
import re
import signal
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conftest import echo_checksum, wait_for

pytestmark = pytest.mark.usefixtures("kvm")

# A zone far from UTC with a half-hour offset, so local time and UTC can
# never be confused (POSIX TZ: the sign is inverted, this is UTC+05:30).
TZ_PLUS_0530 = "KHY-05:30"


def boot(khyve, name, cmdline="", *args, **kw):
    return khyve.run("-l", "com1,stdio", *args, "-f",
                     khyve.guest(name, cmdline), **kw)


def assert_pass(r, name):
    assert "FAIL" not in r.out, r.out
    assert f"PASS {name}" in r.out, (r.out, r.err)
    assert r.rc == 0, (r.out, r.err)


@pytest.mark.parametrize("name", ["hello", "pio_mmio", "pci", "rtc", "smbios"])
def test_guest_passes(khyve, name):
    assert_pass(boot(khyve, name), name)


def test_hello_gets_its_command_line(khyve):
    r = boot(khyve, "hello", "console=ttyS0 hello=world")
    assert_pass(r, "hello")
    assert ('Hello from a khyve test guest (cmdline: "console=ttyS0 '
            'hello=world")') in r.out


def test_failing_guest_exits_3(khyve):
    """The harness's own check: a guest whose CHECK fails says FAIL and
    triple-faults. Here reset.c is asked for a reset it does not know."""
    r = boot(khyve, "reset", "how=none")
    assert r.rc == 3, (r.out, r.err)
    assert "FAIL reset: still running after reset via none" in r.out
    assert "triple fault" in r.err


PCI_DEFAULT = ["PCI 00:00.0 1275:1275 class 060000",
               "PCI 00:1f.0 8086:7000 class 060100"]


@pytest.mark.parametrize("slots", [
    [],
    ["-s", "0,hostbridge", "-s", "31,lpc"],
    ["-s", "0:0,hostbridge", "-s", "0:31:0,lpc"],
    ["-s", "31,lpc"],
], ids=["default", "explicit", "bus-slot-func", "lpc-only"])
def test_pci_device_list(khyve, slots):
    r = boot(khyve, "pci", "", *slots)
    assert_pass(r, "pci")
    assert re.findall(r"^PCI .*?(?=\r?$)", r.out, re.M) == PCI_DEFAULT


def rtc_time(out):
    m = re.search(r"^RTC (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\r?$", out, re.M)
    assert m, out
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize("utc", [True, False], ids=["utc", "localtime"])
def test_rtc_time(khyve, utc):
    """-u: the RTC holds UTC; without it, the host's local time (TZ)."""
    zone = timezone.utc if utc else timezone(timedelta(hours=5, minutes=30))
    before = datetime.now(zone).replace(tzinfo=None, microsecond=0)
    r = boot(khyve, "rtc", "", *(["-u"] if utc else []),
             env={"TZ": TZ_PLUS_0530})
    after = datetime.now(zone).replace(tzinfo=None)
    assert_pass(r, "rtc")
    t = rtc_time(r.out)
    assert before - timedelta(seconds=2) <= t <= after + timedelta(seconds=2), \
        (t, before, after)


def smbios_uuid(out):
    m = re.search(r"^UUID ([0-9a-f-]{36})\r?$", out, re.M)
    assert m, out
    return m.group(1)


@pytest.mark.parametrize("text", ["6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                                  "A3A1B3C4-0102-4304-8506-0708090A0B0C"])
def test_smbios_uuid_from_command_line(khyve, text):
    r = boot(khyve, "smbios", "", "-U", text)
    assert_pass(r, "smbios")
    assert smbios_uuid(r.out) == text.lower()


def test_smbios_uuid_random_v4_without_U(khyve):
    seen = set()
    for _ in range(2):
        r = boot(khyve, "smbios")
        assert_pass(r, "smbios")
        u = uuid.UUID(smbios_uuid(r.out))
        assert u.version == 4 and u.variant == uuid.RFC_4122, u
        seen.add(u)
    assert len(seen) == 2, "two runs without -U got the same UUID"


@pytest.mark.parametrize("how,status", [("kbd", 2), ("outport", 2),
                                        ("cf9", 2), ("triple", 3)])
def test_reset(khyve, how, status):
    r = boot(khyve, "reset", f"how={how}")
    assert f"RESET via {how}" in r.out
    assert "FAIL" not in r.out and "still running" not in r.out, r.out
    assert r.rc == status, (r.out, r.err)


def test_bootrom(khyve):
    r = boot(khyve, "bootrom.bin")
    assert re.search(r"GUEST-READY\r?\nGUEST-DONE", r.out), (r.out, r.err)
    assert r.rc == 0, r.err


def start(khyve, name, cmdline="", *args, **kw):
    return khyve.start("-l", "com1,stdio", *args, "-f",
                       khyve.guest(name, cmdline), **kw)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_power_button(khyve, sig):
    """SIGTERM presses the ACPI power button; the guest sees it, powers off,
    and khyve exits 0."""
    p = start(khyve, "powerbutton")
    p.expect(r"READY\r?\n")
    p.signal(sig)
    p.expect(r"POWER BUTTON\r?\n")
    assert p.wait() == 0, (p.out, p.err)
    assert "PASS powerbutton" in p.out and "FAIL" not in p.out


def test_shutdown_timeout_stops_hard(khyve):
    """A guest that ignores the power button (echo waits for input) is
    stopped when KHYVE_SHUTDOWN_TIMEOUT_MS runs out: exit 1, said why."""
    p = start(khyve, "echo", env={"KHYVE_SHUTDOWN_TIMEOUT_MS": "300"})
    p.expect("ECHO-READY")
    t = time.monotonic()
    p.signal(signal.SIGTERM)
    rc = p.wait(timeout=20)
    elapsed = time.monotonic() - t
    assert rc == 1, (p.out, p.err)
    assert elapsed >= 0.3, elapsed
    assert "did not power off" in p.err, p.err


def test_second_sigterm_stops_hard(khyve):
    """The default timeout is long; a second SIGTERM does not wait for it."""
    p = start(khyve, "echo")
    p.expect("ECHO-READY")
    p.signal(signal.SIGTERM)
    # Two signals sent at once may merge into one: wait for the first.
    wait_for(lambda: "pressing the power button" in p.err,
             what="the power button")
    t = time.monotonic()
    p.signal(signal.SIGTERM)
    rc = p.wait(timeout=20)
    assert rc == 1, (p.out, p.err)
    assert time.monotonic() - t < 5
    assert "stopping the guest now" in p.err, p.err


def echo_line(p, line, start=0):
    """Send @line to the echo guest; check the length and checksum of what
    it got (and the text, for short lines). Returns where the answer ends."""
    data = line.encode()
    p.send(data + b"\n")
    want = f"ECHO {len(data)} {echo_checksum(data):x}"
    if len(data) <= 60:
        want += " " + line
    m = p.expect(re.escape(want) + r"\r?\n", start=start)
    return m.end()


def test_echo_through_a_pipe(khyve):
    p = start(khyve, "echo")
    pos = p.expect(r"ECHO-READY\r?\n").end()
    for line in ["hello", "x", "a line with spaces and symbols !@#$%^&*()",
                 "0123456789" * 6]:
        pos = echo_line(p, line, pos)
    p.send("quit\n")
    p.expect("PASS echo")
    assert p.wait() == 0, p.err


def test_echo_pasted_64k_line_arrives_complete(khyve):
    """A pasted 64 KiB line: the UART's FIFO holds 16 bytes, the rest waits
    in the host; not one byte may be lost."""
    line = "".join(chr(ord("a") + (i * 7 + i // 26) % 26)
                   for i in range(65536))
    p = start(khyve, "echo")
    pos = p.expect(r"ECHO-READY\r?\n").end()
    pos = echo_line(p, line, pos)
    pos = echo_line(p, "after", pos)
    p.send("quit\n")
    p.expect("PASS echo")
    assert p.wait() == 0, p.err


# Regression: the UART used to pull a byte from the console before the
# guest enabled its FIFO, and the FIFO enable then cleared it.
@pytest.mark.parametrize("attempt", range(5))
def test_echo_input_before_guest_is_ready(khyve, attempt):
    """`printf 'hi\\nquit\\n' | khyve ...`: input that is already in the
    pipe when the guest starts must not lose its first byte."""
    r = boot(khyve, "echo", input=b"short line\nquit\n")
    assert r.rc == 0, (r.out, r.err)
    assert "ECHO 10 %x short line" % echo_checksum(b"short line") in r.out, \
        r.out


def test_echo_stdin_regular_file(khyve, tmp_path):
    """stdin a regular file (epoll cannot watch it): read on demand."""
    f = tmp_path / "input"
    f.write_bytes(b"from a file\nquit\n")
    with open(f, "rb") as stdin:
        r = boot(khyve, "echo", stdin=stdin)
    assert r.rc == 0, (r.out, r.err)
    assert "ECHO 11 %x from a file" % echo_checksum(b"from a file") in r.out
    assert "PASS echo" in r.out


def test_virtio_pci_transport(khyve):
    """A tiny virtio driver in a test guest: caps, BAR, PCI_CFG window,
    negotiation, a queue, ioeventfd notify, INTx ISR, NEEDS_RESET, reset."""
    r = boot(khyve, "virtio_pci", "", "-s", "3,virtio-rnd")
    assert_pass(r, "virtio_pci")
    assert "virtio-rnd: 64 bytes" in r.out, r.out
