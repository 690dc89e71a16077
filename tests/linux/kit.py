"""Helpers shared by the tier-4 suites: the guest kit, starting khyve on it,
and waiting on its console log."""
import base64
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KIT = Path(os.environ.get("KHYVE_GUESTKIT", ROOT / "build/guestkit"))
BOOT_TIMEOUT = 600

# What this host's software-virtualized KVM needs (tools/guestkit/README.md);
# harmless on hosts with hardware virtualization.
KIT_CMDLINE = (ROOT / "tools/guestkit/cmdline").read_text().strip()


@pytest.fixture(scope="module")
def kit(kvm):
    for name in ("vmlinux", "bzImage", "initramfs.cpio"):
        if not (KIT / name).exists():
            pytest.fail(f"guest kit incomplete: {KIT / name} missing "
                        "(make guestkit builds it)")
    return KIT


def start(khyve_path, kit, tmp_path, args, kernel="vmlinux", task="shell",
          extra=""):
    cmdline = f"{KIT_CMDLINE} khyve.task={task} {extra}".strip()
    cmd = [str(khyve_path), *args, "-f",
           f"kexec,{kit / kernel},{kit / 'initramfs.cpio'},{cmdline}"]
    err = open(tmp_path / "stderr", "wb")
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err)


def wait_log(path, text, proc, timeout=BOOT_TIMEOUT):
    """Wait until the console log at @path contains @text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes() if path.exists() else b""
        if text.encode() in data:
            return data.decode(errors="replace")
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    data = path.read_bytes().decode(errors="replace") if path.exists() else ""
    pytest.fail(f"{text!r} not seen on the console "
                f"(khyve {'exited ' + str(proc.returncode) if proc.poll() is not None else 'still running'});"
                f" console tail:\n{data[-3000:]}")


def finish(proc, timeout=BOOT_TIMEOUT):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("khyve did not exit")


def boot_command(khyve_path, kit, log, args, command, kernel_args="",
                 initrd=True, wrap=()):
    """Start khyve on the kit's vmlinux with /init running @command (a
    shell snippet) and com1 logged to @log; returns the process. Without
    @initrd the kernel finds /init on the root that @kernel_args names.
    @wrap is a command line khyve's own is appended to (e.g. unshare)."""
    cmd64 = base64.b64encode(command.encode()).decode()
    cmdline = (f"{KIT_CMDLINE} {kernel_args} khyve.task=cmd "
               f"khyve.cmd64={cmd64}").strip()
    initramfs = kit / "initramfs.cpio" if initrd else ""
    argv = [*wrap, str(khyve_path), *args, "-l", f"com1,null,log={log}", "-f",
            f"kexec,{kit / 'vmlinux'},{initramfs},{cmdline}"]
    err = open(Path(log).with_suffix(".stderr"), "wb")
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err)


def unpack_initramfs(kit, dest):
    """The kit's initramfs as a directory tree (a root file system)."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(kit / "initramfs.cpio", "rb") as f:
        subprocess.run(["cpio", "-idm", "--quiet"], stdin=f, cwd=dest,
                       check=True)
    return dest
