"""Tier 4: the guest kit's real Linux kernel booted by khyve.

A boot takes 30-120 s on a software-virtualized host, so each test combines
several checks into one boot. The guest kit (make guestkit) provides the
kernel as an ELF vmlinux and as a bzImage, and a busybox initramfs whose
/init follows khyve.task=... (tools/guestkit/init).
"""
import os
import signal
import socket
import time

import pytest

from kit import finish, kit, start, wait_log  # noqa: F401 (kit: a fixture)


class Shell:
    """The guest's busybox shell over a byte stream (socket or pty)."""

    def __init__(self, send, recv):
        self.send, self.recv = send, recv
        self.buf = b""

    def run(self, command, timeout=120):
        """Run @command; return its output (between two marker lines)."""
        n = time.monotonic_ns()
        begin, end = f"__b{n}", f"__e{n}"
        # The quotes keep the markers out of the echoed command line.
        self.send(f"echo __b''{n}; {command + '; ' if command else ''}"
                  f"echo __e''{n}\n".encode())
        deadline = time.monotonic() + timeout
        while end.encode() + b"\r\n" not in self.buf:
            if time.monotonic() > deadline:
                pytest.fail(f"no answer to {command!r}; got {self.buf[-2000:]!r}")
            chunk = self.recv()
            if chunk:
                self.buf += chunk
        out, _, self.buf = self.buf.partition(end.encode() + b"\r\n")
        out = out.partition(begin.encode() + b"\r\n")[2]
        return out.decode(errors="replace").replace("\r", "")


def test_elf_smp_memory_acpi_socket_console_and_power_button(
        khyve_path, kit, tmp_path):
    """-A -c 2 -m 768M, ELF vmlinux, shell on a Unix-socket console: both
    CPUs online, MemTotal matches, no firmware-bug complaints about the
    ACPI tables; SIGTERM reaches the power-button handler → exit 0."""
    sock_path, log = tmp_path / "console.sock", tmp_path / "console.log"
    proc = start(khyve_path, kit, tmp_path,
                 ["-A", "-c", "2", "-m", "768M",
                  "-l", f"com1,socket={sock_path},log={log}"])
    wait_log(log, "KHYVE-READY", proc)
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sock_path))
    s.settimeout(1)

    def recv():
        try:
            return s.recv(65536)
        except socket.timeout:
            return b""

    shell = Shell(s.sendall, recv)
    shell.run("")
    out = shell.run("grep -c ^processor /proc/cpuinfo; "
                    "cat /sys/devices/system/cpu/online; "
                    "grep MemTotal /proc/meminfo")
    lines = [l for l in out.split("\n") if l.strip()]
    assert lines[0] == "2", out
    assert lines[1] == "0-1", out
    mem_kb = int(lines[2].split()[1])
    # MemTotal is RAM minus what the kernel keeps for itself.
    assert 700 * 1024 < mem_kb <= 768 * 1024, out
    dmesg = shell.run("dmesg")
    for bad in ("Firmware Bug", "FW_BUG", "ACPI Error", "ACPI BIOS Error",
                "ACPI Warning", "Incorrect checksum"):
        assert bad not in dmesg, dmesg
    assert "ACPI: button: Power Button" in dmesg
    s.close()
    proc.send_signal(signal.SIGTERM)
    wait_log(log, "KHYVE-POWERBUTTON", proc, timeout=120)
    assert finish(proc) == 0


def test_bzimage_autopty_shell_and_poweroff(khyve_path, kit, tmp_path):
    """The bzImage (payload decompressed by khyve), shell on an autopty link:
    a command's output comes back; `poweroff -f` → exit 0."""
    link, log = tmp_path / "tty", tmp_path / "console.log"
    proc = start(khyve_path, kit, tmp_path,
                 ["-A", "-l", f"com1,autopty={link},log={log}"],
                 kernel="bzImage")
    wait_log(log, "KHYVE-READY", proc)
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
    os.set_blocking(fd, False)

    def recv():
        time.sleep(0.2)
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return b""

    shell = Shell(lambda b: os.write(fd, b), recv)
    shell.run("")
    assert "hello-42" in shell.run("echo hello-$((6*7))")
    os.write(fd, b"poweroff -f\n")
    assert finish(proc) == 0
    os.close(fd)
    assert not link.exists()


def test_reboot_exits_2(khyve_path, kit, tmp_path):
    """Linux's reboot (ACPI reset register, then the keyboard controller)
    ends the run with exit status 2."""
    log = tmp_path / "console.log"
    proc = start(khyve_path, kit, tmp_path,
                 ["-A", "-l", f"com1,null,log={log}"], task="reboot")
    assert finish(proc) == 2
    assert "KHYVE-DONE" in log.read_text(errors="replace")


def test_mp_table_boot_without_acpi(khyve_path, kit, tmp_path):
    """Without -A the kernel finds its CPUs in the MP table; poweroff
    without ACPI halts, which khyve reports as exit 0 once the guest
    stops... so this boot reboots instead (keyboard controller)."""
    log = tmp_path / "console.log"
    proc = start(khyve_path, kit, tmp_path,
                 ["-c", "2", "-l", f"com1,null,log={log}"], task="info",
                 extra="reboot=k")
    wait_log(log, "cpus online:", proc)
    text = log.read_text(errors="replace")
    assert "found SMP MP-table" in text
    assert "cpus online: 0-1" in text, text[-2000:]
    proc.send_signal(signal.SIGKILL)
    finish(proc)
