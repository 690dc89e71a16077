"""--state-dir DIR: khyve.pid while running, khyve.json with the resolved
configuration (console pty and socket paths included), a `tty` link to
com1's pty, console.log; the pid file and the link go at exit."""
import json
import os
import signal

from conftest import wait_for


def test_state_dir_with_autopty(khyve, kvm, tmp_path):
    d = tmp_path / "a" / "vm1"  # parents are created too
    p = khyve.start("--state-dir", str(d), "-c", "1", "-m", "128M",
                    "-U", "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                    "-l", "com1,autopty", "-s", "0,hostbridge",
                    "-f", khyve.guest("powerbutton"))
    # com1 is the pty: follow the guest through the state folder's log.
    log = d / "console.log"
    wait_for(lambda: log.exists() and "READY" in log.read_text(),
             what="READY in console.log")
    assert (d / "khyve.pid").read_text().strip() == str(p.pid)
    cfg = json.loads((d / "khyve.json").read_text())
    assert cfg["pid"] == p.pid
    assert cfg["memory_bytes"] == 128 << 20
    assert cfg["uuid"] == "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
    assert cfg["boot"]["kind"] == "kexec"
    assert cfg["devices"] == [{"slot": 0, "function": 0,
                               "emulation": "hostbridge"}]
    pty = cfg["consoles"]["com1"]["pty"]
    assert pty.startswith("/dev/pts/")
    assert os.readlink(d / "tty") == pty
    p.signal(signal.SIGTERM)
    assert p.wait() == 0
    assert not (d / "khyve.pid").exists()
    assert not (d / "tty").exists()
    assert "PASS powerbutton" in (d / "console.log").read_text()


def test_state_dir_socket_and_own_log(khyve, kvm, tmp_path):
    d, sock, log = tmp_path / "vm", tmp_path / "c.sock", tmp_path / "own.log"
    r = khyve.run("--state-dir", str(d), "-l", f"com1,socket={sock},log={log}",
                  "-f", khyve.guest("hello"))
    assert r.rc == 0, r
    cfg = json.loads((d / "khyve.json").read_text())
    assert cfg["consoles"]["com1"]["socket"] == str(sock)
    assert "PASS hello" in log.read_text()
    assert not (d / "console.log").exists()


def test_state_dir_without_console_keeps_a_log(khyve, kvm, tmp_path):
    d = tmp_path / "vm"
    r = khyve.run("--state-dir", str(d), "-f", khyve.guest("hello"))
    assert r.rc == 0, r
    assert "PASS hello" in (d / "console.log").read_text()


def test_state_dir_not_a_directory(khyve, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = khyve.run("--state-dir", str(f), "-f", khyve.guest("hello"))
    assert r.rc == 1
    assert "--state-dir" in r.err and len(r.err.splitlines()) == 1, r.err
