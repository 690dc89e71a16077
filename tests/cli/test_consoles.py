"""The consoles behind com1 (-l com1,BACKEND[,log=FILE]): socket, autopty,
a device, null, stdio (a pipe, /dev/null, a real terminal) and the log,
driven with the echo guest (answers each line with "ECHO <len> <sum>
<line>", stops on "quit") and the hello guest.
"""
import os
import re
import select
import signal
import socket
import stat
import subprocess
import termios
import time

import pexpect
import pytest

from conftest import TIMEOUT, echo_checksum, khyve_env, wait_for

pytestmark = pytest.mark.usefixtures("kvm")


def echo_answer(line):
    data = line.encode()
    return f"ECHO {len(data)} {echo_checksum(data):x} {line}".encode()


class Stream:
    """Reads a socket or a pty fd with a timeout, keeping what came."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""

    def _read(self, left):
        r, _, _ = select.select([self.fd], [], [], left)
        if not r:
            return None
        try:
            return os.read(self.fd, 65536)
        except OSError:  # EIO: the other side of a pty went away
            return b""

    def expect(self, pattern, timeout=TIMEOUT):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not rx.search(self.buf):
            left = deadline - time.monotonic()
            data = self._read(max(left, 0)) if left > 0 else None
            if not data:
                pytest.fail(f"no {pattern!r} in {self.buf[-500:]!r} "
                            f"({'EOF' if data == b'' else 'timeout'})")
            self.buf += data
        m = rx.search(self.buf)
        self.buf = self.buf[m.end():]
        return m

    def read_to_eof(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            data = self._read(max(deadline - time.monotonic(), 0))
            if data is None:
                pytest.fail(f"no EOF; got {self.buf[-500:]!r}")
            if not data:
                return self.buf
            self.buf += data

    def send(self, data):
        os.write(self.fd, data)


def echo(stream, line):
    stream.send(line.encode() + b"\n")
    stream.expect(re.escape(echo_answer(line)) + rb"\r?\n")


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    return s


def connect_when_listening(path):
    """The first connection: khyve may not be listening yet (or a stale
    socket file is still there)."""
    def attempt():
        try:
            return connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
    return wait_for(attempt, what=f"khyve listening on {path}")


def start_echo(khyve, spec, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    return khyve.start("-l", f"com1,{spec}", "-f", khyve.guest("echo"), **kw)


def quit_echo(p, stream):
    stream.send(b"quit\n")
    assert p.wait() == 0, (p.out, p.err)


def assert_log_has_echo_run(log, lines):
    text = log.read_bytes()
    assert b"ECHO-READY" in text
    for line in lines:
        assert echo_answer(line) in text, text
    assert b"PASS echo" in text, text


# -- socket=PATH --------------------------------------------------------


def test_socket_output_and_input(khyve, tmp_path):
    path = tmp_path / "console.sock"
    p = start_echo(khyve, f"socket={path}")
    with connect_when_listening(path) as s:
        assert stat.S_ISSOCK(path.lstat().st_mode)
        c = Stream(s.fileno())
        # The guest may still be starting: an empty line first, so that if
        # any byte is early, it is one the guest ignores.
        c.send(b"\n")
        echo(c, "hello over a socket")
        quit_echo(p, c)
        assert re.search(rb"PASS echo", c.read_to_eof())
    assert not path.exists(), "the socket file was left behind"


def test_socket_one_client_at_a_time_and_reconnect(khyve, tmp_path):
    path = tmp_path / "console.sock"
    p = start_echo(khyve, f"socket={path}")
    first = connect_when_listening(path)
    c1 = Stream(first.fileno())
    c1.send(b"\n")
    echo(c1, "first client")

    # A second client is told the console is busy and let go.
    with connect(path) as second:
        busy = Stream(second.fileno()).read_to_eof()
        assert b"console in use" in busy, busy
    echo(c1, "first client still served")

    # The first leaves; the next one gets the console at once, again and
    # again.
    first.close()
    for i in range(5):
        with connect(path) as again:
            c = Stream(again.fileno())
            echo(c, f"client {i + 3}")
    with connect(path) as last:
        c = Stream(last.fileno())
        echo(c, "last client")
        quit_echo(p, c)
    assert not path.exists()


def test_socket_with_log(khyve, tmp_path):
    path, log = tmp_path / "console.sock", tmp_path / "console.log"
    p = start_echo(khyve, f"socket={path},log={log}")
    # The log has the output even with no client connected.
    wait_for(lambda: log.exists() and b"ECHO-READY" in log.read_bytes(),
             what="ECHO-READY in the log")
    with connect(path) as s:
        c = Stream(s.fileno())
        echo(c, "logged")
        quit_echo(p, c)
    assert_log_has_echo_run(log, ["logged"])
    assert not path.exists()


def test_socket_replaces_a_stale_socket(khyve, tmp_path):
    path = tmp_path / "console.sock"
    old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old.bind(str(path))
    old.close()  # what a killed khyve leaves behind
    p = start_echo(khyve, f"socket={path}")
    with connect_when_listening(path) as s:
        c = Stream(s.fileno())
        c.send(b"\n")
        echo(c, "after a stale socket")
        quit_echo(p, c)


def test_socket_path_is_a_file(khyve, tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("keep me\n")
    r = khyve.run("-l", f"com1,socket={path}", "-f", khyve.guest("hello"))
    assert r.rc == 1
    assert r.err.count("\n") == 1 and str(path) in r.err, r.err
    assert path.read_text() == "keep me\n"


@pytest.mark.parametrize("backend", ["socket", "autopty"])
def test_nothing_left_when_com2_fails(khyve, tmp_path, backend):
    """com1 creates its socket or link, then com2 cannot be opened: the
    error exit removes what com1 made."""
    path = tmp_path / "com1"
    r = khyve.run("-l", f"com1,{backend}={path}", "-l",
                  f"com2,{tmp_path}/no-such-tty", "-f", khyve.guest("hello"))
    assert r.rc == 1
    assert r.err.count("\n") == 1 and "no-such-tty" in r.err, r.err
    assert not os.path.lexists(path), f"{backend} {path} left behind"


# -- autopty[=LINK] -------------------------------------------------------


def open_pty(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    return Stream(fd)


def test_autopty_link(khyve, tmp_path):
    link = tmp_path / "tty"
    p = start_echo(khyve, f"autopty={link}")
    wait_for(link.is_symlink, what="the autopty symlink")
    target = os.readlink(link)
    assert re.fullmatch(r"/dev/pts/\d+", target), target
    wait_for(lambda: f"com1: {target} linked from {link}" in p.err,
             what="the pty announced on stderr")
    # Output written before anyone opened the pty waits in it.
    c = open_pty(link)
    c.expect(rb"ECHO-READY\r\n")
    echo(c, "through the pty")
    # The client leaves and comes back.
    os.close(c.fd)
    c = open_pty(link)
    echo(c, "back again")
    quit_echo(p, c)
    os.close(c.fd)
    assert not os.path.lexists(link), "the autopty symlink was left behind"


def test_autopty_without_link(khyve):
    p = start_echo(khyve, "autopty")
    m = wait_for(lambda: re.search(r"com1: (/dev/pts/\d+)", p.err),
                 what="the pty's name on stderr")
    c = open_pty(m.group(1))
    c.expect(rb"ECHO-READY\r\n")
    echo(c, "no link")
    quit_echo(p, c)
    os.close(c.fd)


def test_autopty_with_log(khyve, tmp_path):
    link, log = tmp_path / "tty", tmp_path / "pty.log"
    p = start_echo(khyve, f"autopty={link},log={log}")
    wait_for(link.is_symlink, what="the autopty symlink")
    c = open_pty(link)
    c.expect(rb"ECHO-READY\r\n")
    echo(c, "pty logged")
    quit_echo(p, c)
    os.close(c.fd)
    assert_log_has_echo_run(log, ["pty logged"])
    assert not os.path.lexists(link)


def test_autopty_replaces_a_stale_link(khyve, tmp_path):
    link = tmp_path / "tty"
    link.symlink_to("/dev/pts/999999")
    p = start_echo(khyve, f"autopty={link}")
    def replaced():
        try:  # khyve removes the old link, then makes the new one
            return os.readlink(link) != "/dev/pts/999999"
        except FileNotFoundError:
            return False
    wait_for(replaced, what="the new symlink")
    c = open_pty(link)
    c.expect(rb"ECHO-READY\r\n")
    echo(c, "fresh link")
    quit_echo(p, c)
    os.close(c.fd)
    assert not os.path.lexists(link)


def test_autopty_link_is_a_file(khyve, tmp_path):
    link = tmp_path / "tty"
    link.write_text("keep me\n")
    r = khyve.run("-l", f"com1,autopty={link}", "-f", khyve.guest("hello"))
    assert r.rc == 1
    assert r.err.count("\n") == 1 and str(link) in r.err, r.err
    assert link.read_text() == "keep me\n"


# -- /dev/xxx ---------------------------------------------------------------


def test_device_pty(khyve):
    """A terminal device the test owns: khyve puts it in raw mode for the
    run and gives it back as it found it."""
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        p = start_echo(khyve, os.ttyname(slave))
        c = Stream(master)
        c.expect(rb"ECHO-READY\r\n")
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & (termios.ICANON | termios.ECHO), "not raw"
        echo(c, "through a device")
        quit_echo(p, c)
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_device_dev_null(khyve):
    r = khyve.run("-l", "com1,/dev/null", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert r.out == ""


def test_device_dev_null_with_log(khyve, tmp_path):
    log = tmp_path / "log"
    r = khyve.run("-l", f"com1,/dev/null,log={log}", "-f",
                  khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert "PASS hello" in log.read_text()


def test_device_missing(khyve, tmp_path):
    dev = tmp_path / "no-such-tty"
    r = khyve.run("-l", f"com1,{dev}", "-f", khyve.guest("hello"))
    assert r.rc == 1
    assert r.err.count("\n") == 1 and str(dev) in r.err, r.err


# -- null, no console -------------------------------------------------------


def test_null(khyve):
    r = khyve.run("-l", "com1,null", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert r.out == ""


def test_null_with_log(khyve, tmp_path):
    log = tmp_path / "null.log"
    r = khyve.run("-l", f"com1,null,log={log}", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert r.out == ""
    assert "PASS hello" in log.read_text()


def test_no_console(khyve):
    r = khyve.run("-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert r.out == ""


def test_log_appends(khyve, tmp_path):
    log = tmp_path / "append.log"
    log.write_text("earlier run\n")
    r = khyve.run("-l", f"com1,null,log={log}", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    text = log.read_text()
    assert text.startswith("earlier run\n") and "PASS hello" in text


def test_com2(khyve, tmp_path):
    """The test guests print on com1 only: com2's log stays empty."""
    log1, log2 = tmp_path / "com1.log", tmp_path / "com2.log"
    r = khyve.run("-l", f"com1,stdio,log={log1}", "-l",
                  f"com2,null,log={log2}", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert "PASS hello" in r.out and "PASS hello" in log1.read_text()
    assert log2.read_text() == ""


# -- stdio ------------------------------------------------------------------


def test_stdio_stdin_dev_null(khyve):
    r = khyve.run("-l", "com1,stdio", "-f", khyve.guest("hello"),
                  stdin=subprocess.DEVNULL)
    assert r.rc == 0, r.err
    assert "PASS hello" in r.out


def test_stdio_stdin_pipe(khyve):
    p = start_echo(khyve, "stdio", stdin=subprocess.PIPE)
    p.expect(r"ECHO-READY\r?\n")
    p.send(b"from a pipe\n")
    p.expect(re.escape(echo_answer("from a pipe")))
    p.send(b"quit\n")
    assert p.wait() == 0, p.err
    assert "PASS echo" in p.out


def test_stdio_with_log(khyve, tmp_path):
    log = tmp_path / "stdio.log"
    r = khyve.run("-l", f"com1,stdio,log={log}", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert "PASS hello" in r.out
    assert log.read_bytes().decode() == r.out


@pytest.mark.parametrize("closed", [0, 1], ids=["stdin", "stdout"])
def test_stdio_closed_std_fd(khyve, tmp_path, closed):
    """khyve started with stdin or stdout closed: the descriptor must not be
    taken over by /dev/kvm or a log, where console I/O would then go."""
    pidfile = tmp_path / "pid"
    p = khyve.start("-F", pidfile, "-l", "com1,stdio", "-f",
                    khyve.guest("echo"), stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    preexec_fn=lambda: os.close(closed))
    pid_of(pidfile)
    try:
        target = os.readlink(f"/proc/{p.pid}/fd/{closed}")
        assert target == "/dev/null", target
    finally:
        p.signal(signal.SIGTERM)
        # Two signals sent at once may merge into one: wait for the first.
        wait_for(lambda: "power button" in p.err, what="the power button")
        p.signal(signal.SIGTERM)
        assert p.wait() == 1, p.err


def pid_of(pidfile):
    return int(wait_for(lambda: pidfile.exists() and pidfile.read_text(),
                        what="the pidfile"))


# -- stdio on a real terminal ----------------------------------------------

STTY = rb"([0-9a-f]+(?::[0-9a-f]+){10,})\r\n"


class Terminal:
    """khyve run by a shell on a pty, between two `stty -g`."""

    def __init__(self, khyve, *args, env=None):
        script = 'stty -g; echo START; "$@"; echo "rc=$?"; stty -g'
        self.child = pexpect.spawn(
            "/bin/sh", ["-c", script, "sh"] + khyve.argv(args),
            env=khyve_env(env), timeout=TIMEOUT)
        self.child.expect(STTY)
        self.before_mode = self.child.match.group(1)
        self.child.expect(rb"START\r\n")

    def finish(self):
        """Wait for khyve's exit; returns (status, what it printed)."""
        self.child.expect(rb"rc=(\d+)\r\n")
        rc = int(self.child.match.group(1))
        printed = self.child.before
        self.child.expect(STTY)
        after = self.child.match.group(1)
        self.child.expect(pexpect.EOF)
        assert after == self.before_mode, "terminal mode not restored"
        return rc, printed

    def is_raw(self):
        # On Linux the master's termios calls reach the terminal itself.
        lflag = termios.tcgetattr(self.child.child_fd)[3]
        return not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)


def assert_crlf_only(printed):
    """While raw, khyve's own messages must end in CR LF too."""
    assert not re.search(rb"[^\r]\n", printed), printed


def test_terminal_echo(khyve):
    t = Terminal(khyve, "-l", "com1,stdio", "-f", khyve.guest("echo"))
    t.child.expect(rb"ECHO-READY\r\n")
    assert t.is_raw()
    t.child.send(b"typed\r")
    t.child.expect(re.escape(echo_answer("typed")))
    # Raw: ^C is a byte for the guest, not a signal for khyve.
    t.child.send(b"a\x03b\r")
    t.child.expect(re.escape(echo_answer("a\x03b")))
    t.child.send(b"quit\r")
    rc, printed = t.finish()
    assert rc == 0, printed
    assert b"PASS echo" in printed
    assert_crlf_only(printed)


@pytest.mark.parametrize("guest,cmdline,status", [
    ("hello", "", 0),
    ("reset", "how=kbd", 2),
    ("reset", "how=triple", 3),
])
def test_terminal_restored_at_guest_exit(khyve, guest, cmdline, status):
    t = Terminal(khyve, "-l", "com1,stdio", "-f", khyve.guest(guest, cmdline))
    rc, printed = t.finish()
    assert rc == status, printed
    assert_crlf_only(printed)


def test_terminal_restored_after_error(khyve, tmp_path):
    """com1 puts the terminal in raw mode, then com2 cannot be opened."""
    t = Terminal(khyve, "-l", "com1,stdio", "-l",
                 f"com2,{tmp_path}/no-such-tty", "-f", khyve.guest("hello"))
    rc, printed = t.finish()
    assert rc == 1, printed
    assert b"no-such-tty" in printed


def test_terminal_restored_after_sigterm(khyve, tmp_path):
    pidfile = tmp_path / "pid"
    t = Terminal(khyve, "-F", pidfile, "-l", "com1,stdio", "-f",
                 khyve.guest("powerbutton"))
    t.child.expect(rb"READY\r\n")
    assert t.is_raw()
    os.kill(pid_of(pidfile), signal.SIGTERM)
    t.child.expect(rb"POWER BUTTON")
    rc, printed = t.finish()
    assert rc == 0, printed
    assert not pidfile.exists()


def test_terminal_restored_after_hard_stop(khyve, tmp_path):
    pidfile = tmp_path / "pid"
    t = Terminal(khyve, "-F", pidfile, "-l", "com1,stdio", "-f",
                 khyve.guest("echo"))
    t.child.expect(rb"ECHO-READY\r\n")
    pid = pid_of(pidfile)
    os.kill(pid, signal.SIGTERM)
    t.child.expect(rb"pressing the power button\r\n")
    os.kill(pid, signal.SIGTERM)
    rc, printed = t.finish()
    assert rc == 1, printed
    assert_crlf_only(printed)
