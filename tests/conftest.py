"""Shared fixtures of khyve's pytest suites.

`make check` runs them with KHYVE (the binary) and KHYVE_GUESTS (the built
test guests) in the environment; without them the paths default to the
build directory. Tests that boot a guest take the `kvm` fixture: where
/dev/kvm is missing or unusable they are skipped with the reason, never
passed. Tests of bad arguments need no KVM and do not take it.
"""
import fcntl
import os
import re
import signal
import subprocess
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_API_VERSION = 12

# Generous: the machine is shared (2 cores, kernel builds); a healthy run of
# a test guest takes milliseconds.
TIMEOUT = 30

# Variables of khyve's own that a test must set explicitly, never inherit.
KHYVE_ENV = ("KHYVE_KVM_PATH", "KHYVE_SHUTDOWN_TIMEOUT_MS", "KHYVE_DEBUG")

Result = namedtuple("Result", "rc out err")


def khyve_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in KHYVE_ENV}
    env.update(extra or {})
    return env


def kvm_unusable_reason(path="/dev/kvm"):
    """None when @path is a working KVM device, else why it is not."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"{path} cannot be opened ({e.strerror}): KVM tests need it"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION, 0)
        if version != KVM_API_VERSION:
            return f"{path}: KVM API version {version}, need {KVM_API_VERSION}"
        vm = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm)
    except OSError as e:
        return f"{path} is not a usable KVM device ({e.strerror})"
    finally:
        os.close(fd)
    return None


@pytest.fixture(scope="session")
def kvm():
    """Skip (with the reason) a test that needs a working /dev/kvm."""
    reason = kvm_unusable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def khyve_path():
    path = Path(os.environ.get("KHYVE", ROOT / "build/src/khyve"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"khyve binary {path} not found: run `make` first "
                    "or set KHYVE")
    return path


@pytest.fixture(scope="session")
def guests_dir():
    path = Path(os.environ.get("KHYVE_GUESTS", ROOT / "build/tests/guests"))
    if not (path / "hello.elf").exists():
        pytest.fail(f"test guests not found in {path}: run `make` first "
                    "or set KHYVE_GUESTS")
    return path


class Khyve:
    """Runs khyve: to completion (run) or in the background (start)."""

    def __init__(self, path, guests):
        self.path = path
        self.guests = guests

    def guest(self, name, cmdline=""):
        """The -f argument that boots test guest @name."""
        if name.endswith(".bin"):
            return f"bootrom,{self.guests / name}"
        return f"kexec,{self.guests / name}.elf,,{cmdline}"

    def argv(self, args):
        return [str(self.path)] + [str(a) for a in args]

    def run(self, *args, input=None, stdin=subprocess.DEVNULL, env=None,
            timeout=TIMEOUT, **kw):
        """Run to completion; a hang is a test failure, not a stuck suite."""
        if input is not None:
            stdin = None
        try:
            p = subprocess.run(self.argv(args), input=input, stdin=stdin,
                               capture_output=True, env=khyve_env(env),
                               timeout=timeout, **kw)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"khyve {' '.join(map(str, args))} did not exit "
                        f"within {timeout} s; stderr: {e.stderr!r}")
        return Result(p.returncode, p.stdout.decode(errors="replace"),
                      p.stderr.decode(errors="replace"))

    def start(self, *args, env=None, **kw):
        return Proc(self.argv(args), env=khyve_env(env), **kw)


@pytest.fixture
def khyve(khyve_path, guests_dir):
    k = Khyve(khyve_path, guests_dir)
    yield k
    for p in Proc.live:
        p.kill()
    Proc.live.clear()


class Proc:
    """khyve in the background with its output collected by threads, so a
    test can wait for a line (expect) while the guest runs."""

    live = []

    def __init__(self, argv, env, stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, **kw):
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=stdout,
                                  stderr=subprocess.PIPE, env=env, **kw)
        self.pid = self.p.pid
        self._out = bytearray()
        self._err = bytearray()
        self._cv = threading.Condition()
        self._threads = []
        for f, buf in ((self.p.stdout, self._out), (self.p.stderr, self._err)):
            if f is not None:
                t = threading.Thread(target=self._reader, args=(f, buf),
                                     daemon=True)
                t.start()
                self._threads.append(t)
        Proc.live.append(self)

    def _reader(self, f, buf):
        while True:
            try:
                data = os.read(f.fileno(), 65536)
            except (OSError, ValueError):
                data = b""
            with self._cv:
                if not data:
                    self._cv.notify_all()
                    return
                buf.extend(data)
                self._cv.notify_all()

    @property
    def out(self):
        with self._cv:
            return self._out.decode(errors="replace")

    @property
    def err(self):
        with self._cv:
            return self._err.decode(errors="replace")

    def expect(self, pattern, timeout=TIMEOUT, start=0):
        """Wait until stdout (from offset @start) matches @pattern; returns
        the match. Fails the test on timeout or when khyve exits first."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str)
                        else pattern)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                m = rx.search(self._out, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and
                                 not any(t.is_alive() for t in self._threads)):
                    pytest.fail(f"no {pattern!r} in khyve's output "
                                f"(exit status {self.p.poll()}); "
                                f"stdout {bytes(self._out)[-500:]!r}; "
                                f"stderr {bytes(self._err)[-500:]!r}")
                self._cv.wait(min(left, 0.1))

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def signal(self, sig=signal.SIGTERM):
        self.p.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        """The exit status; fails the test if khyve does not exit."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"khyve did not exit within {timeout} s; "
                        f"stdout {self.out[-500:]!r}; stderr {self.err[-500:]!r}")
        for t in self._threads:
            t.join(5)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for t in self._threads:
            t.join(5)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f:
                try:
                    f.close()
                except OSError:
                    pass


def wait_for(cond, timeout=TIMEOUT, what="condition"):
    """Poll @cond until it is true; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def echo_checksum(data):
    """The echo guest's checksum: sum = sum * 31 + byte, 32-bit."""
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xFFFFFFFF
    return s
