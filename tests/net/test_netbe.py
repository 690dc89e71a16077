"""Tier 2 of the network backends, without virtio: netbe_driver plays the
guest's network stack over each backend, opened as virtio-net opens it.

- VPNKit: against vpnkit_server.py (handshake byte for byte, DHCP, ARP,
  ping, malformed frames both ways, backpressure, connection loss), and
  every way the handshake can fail: one clear line at open.
- user (libslirp): DHCP, ARP and ping of the gateway, TCP echo with a
  server on the host's loopback (the host is 10.0.2.2), hostfwd from a
  host client to a guest-side listener the driver emulates.
- tap: created inside a fresh network namespace (unshare -n), configured
  there; ARP, ping and TCP echo with a server in that namespace.
"""
import errno
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from vpnkit_server import VPNKitServer  # noqa: E402

ROOT = HERE.parent.parent
DRIVER = Path(os.environ.get("KHYVE_NETBE_DRIVER",
                             ROOT / "build" / "tests" / "net" / "netbe_driver"))
UUID = "4a3e8cd4-5a2c-4b0b-8e4c-2a7c9f0b6d11"
TIMEOUT = 60


@pytest.fixture(scope="module", autouse=True)
def driver():
    if not DRIVER.exists():
        pytest.skip(f"{DRIVER} not built (ninja -C build)")


def run(*args, timeout=TIMEOUT):
    return subprocess.run([str(DRIVER), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def open_result(emulation, conf):
    """The one line netbe_open gives: (ret, message)."""
    r = run("open", emulation, conf)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    _, ret, msg = (lines[0].split(" ", 2) + [""])[:3]
    return int(ret), msg


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "vpnkit.sock")


# ---- VPNKit ----

def test_vpnkit_frames(tmp_path, sock_path):
    srv = VPNKitServer(sock_path, malformed=True).start()
    macfile = tmp_path / "mac"
    try:
        r = run("vpnkit", sock_path, "02:50:00:00:00:02", "192.168.65.3",
                f"uuid={UUID},macfile={macfile}")
    finally:
        srv.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert not srv.errors
    for check in ("vif mtu 1500 max_frame 1550", "dhcp ack 192.168.65.3",
                  "arp 192.168.65.1 is at 02:50:00:00:00:01",
                  "ping 192.168.65.1",
                  "malformed frames from the device dropped",
                  "malformed frames from the server dropped",
                  "rx paused and resumed", "link down on connection loss"):
        assert f"ok {check}" in r.stdout, r.stdout
    # SPEC.md §4 byte for byte: Init, then command 1 with the UUID.
    assert len(srv.client_init) == 49
    assert srv.client_init[:9] == b"VMN3T" + struct.pack("<I", 22)
    assert srv.command == b"\x01" + UUID.encode() + b"\0" * 4
    # The MAC VPNKit assigned, written for the user.
    assert macfile.read_text() == "02:50:00:00:00:02\n"
    assert not (tmp_path / "mac.tmp").exists()
    # Short frames are padded to the ethernet minimum, as HyperKit does.
    assert srv.frames and all(60 <= len(f) <= 1550 for f in srv.frames)


def test_vpnkit_preferred_ipv4_and_default_uuid(sock_path):
    srv = VPNKitServer(sock_path, malformed=True).start()
    try:
        r = run("vpnkit", sock_path, "02:50:00:00:00:02", "192.168.65.9",
                "preferred_ipv4=192.168.65.9")
    finally:
        srv.close()
    assert r.returncode == 0, r.stdout + r.stderr
    # No uuid=: all NUL, the server picks; the address as a LE u32.
    assert srv.command == b"\x08" + b"\0" * 36 + struct.pack("<I", 0xC0A84109)


@pytest.mark.parametrize("mode,version,err,words", [
    ("vif", 21, errno.EPROTONOSUPPORT,
     "the server speaks protocol version 21, khyve speaks 22"),
    ("disconnect", 22, errno.ECONNREFUSED,
     "the server refused the interface: UUID in use?"),
    ("badmagic", 22, errno.EPROTO, "not a VPNKit socket (bad magic in its Init)"),
    # Never answers: the handshake gives up after 10 s, it does not hang.
    ("silent", 22, errno.ETIMEDOUT,
     "reading the server's Init: no answer from the server"),
])
def test_vpnkit_bad_server(sock_path, mode, version, err, words):
    srv = VPNKitServer(sock_path, mode=mode, version=version).start()
    try:
        ret, msg = open_result("virtio-vpnkit", f"path={sock_path}")
    finally:
        srv.close()
    assert ret == -err
    assert msg == f"virtio-vpnkit: {sock_path}: {words}"


def test_vpnkit_missing_socket(tmp_path):
    path = tmp_path / "nothing.sock"
    ret, msg = open_result("virtio-vpnkit", f"path={path}")
    assert ret == -errno.ENOENT
    assert msg == f"virtio-vpnkit: {path}: No such file or directory"


def test_vpnkit_not_listening(tmp_path):
    path = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # bound, never listening
    try:
        ret, msg = open_result("virtio-vpnkit", f"path={path}")
    finally:
        s.close()
    assert ret == -errno.ECONNREFUSED
    assert msg == f"virtio-vpnkit: {path}: Connection refused"


def test_vpnkit_server_closes_during_handshake(sock_path):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)

    def hang_up():
        conn, _ = srv.accept()
        conn.recv(49)
        conn.close()

    t = threading.Thread(target=hang_up, daemon=True)
    t.start()
    try:
        ret, msg = open_result("virtio-vpnkit", f"path={sock_path}")
    finally:
        t.join(5)
        srv.close()
    assert ret == -errno.ECONNRESET
    assert msg.endswith("reading the server's Init: the server closed the connection")


# ---- user-mode networking (libslirp) ----

def echo_server():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(TIMEOUT)

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return srv


def udp_echo_server():
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(TIMEOUT)

    def serve():
        try:
            data, peer = srv.recvfrom(65536)
            srv.sendto(data, peer)
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    return srv


def test_user_dhcp_ping_tcp_udp():
    srv, usrv = echo_server(), udp_echo_server()
    try:
        r = run("user", srv.getsockname()[1], usrv.getsockname()[1])
    finally:
        srv.close()
        usrv.close()
    assert r.returncode == 0, r.stdout + r.stderr
    for check in ("dhcp ack 10.0.2.15 router 10.0.2.2",
                  "arp 10.0.2.2 is at", "ping 10.0.2.2",
                  "rx paused and resumed",
                  "malformed frames from the device dropped",
                  "tcp connected to 10.0.2.2", "tcp echo 'hello'",
                  "tcp closed", "udp echo 'hello udp'"):
        assert f"ok {check}" in r.stdout, r.stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_user_hostfwd():
    hport = free_port()
    p = subprocess.Popen([str(DRIVER), "user-hostfwd", str(hport), "8080"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        while line and line.strip() != "ready":
            line = p.stdout.readline()
        assert line.strip() == "ready", p.stderr.read()
        c = socket.create_connection(("127.0.0.1", hport), timeout=10)
        c.sendall(b"ping")
        assert c.recv(4) == b"pong"
        c.shutdown(socket.SHUT_WR)
        assert c.recv(1) == b""
        c.close()
        out, err = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out + err
    assert "ok hostfwd SYN from 10.0.2.2:" in out
    assert "ok hostfwd closed" in out


def test_user_hostfwd_port_in_use():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        ret, msg = open_result("virtio-net", f"user,hostfwd=tcp:127.0.0.1:{port}-:22")
    finally:
        s.close()
    assert ret == -errno.EADDRINUSE
    assert msg == (f"virtio-net: hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:22: "
                   f"cannot listen on host port {port}: Address already in use")


@pytest.mark.parametrize("conf,words", [
    ("user,hostfwd=tcp::99999-:22", "bad host port '99999'"),
    ("user,hostfwd=icmp::22-:22", "protocol 'icmp'"),
    ("user,hostfwd=tcp:1.2.3:22-:22", "bad host address '1.2.3'"),
    ("tap0,hostfwd=tcp::2222-:22", "hostfwd= is for user-mode networking only"),
])
def test_user_bad_rules(conf, words):
    ret, msg = open_result("virtio-net", conf)
    assert ret == -errno.EINVAL
    assert msg.startswith("virtio-net: ") and words in msg, msg


def test_user_dns_forwarded(tmp_path):
    """A query to 10.0.2.3:53 reaches the host's resolver (resolv.conf)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private resolv.conf")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    ready = tmp_path / "ready"
    script = (f"mount --bind {resolv} /etc/resolv.conf && ip link set lo up && "
              f"({sys.executable} {HERE / 'echo_server.py'} udp 127.0.0.1 53 {ready} &) && "
              f"for i in $(seq 100); do [ -e {ready} ] && break; sleep 0.05; done; "
              f"exec {DRIVER} user-dns")
    r = subprocess.run(["unshare", "-n", "-m", "sh", "-c", script],
                       capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode and "unshare" in r.stderr:
        pytest.skip("cannot create namespaces here: " + r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok udp echo 'dns query'" in r.stdout, r.stdout


# ---- tap ----

def test_tap_in_netns(tmp_path):
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("/dev/net/tun is absent: no tap devices on this host")
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip to make a network namespace")
    ready = tmp_path / "ready"
    setup = (f"ip link set lo up && ip link set ktap0 up && "
             f"ip addr add 10.9.0.1/24 dev ktap0 && "
             f"({sys.executable} {HERE / 'echo_server.py'} tcp 10.9.0.1 7777 {ready} 2 &) && "
             f"for i in $(seq 100); do [ -e {ready} ] && break; sleep 0.05; done; "
             f"[ -e {ready} ]")
    r = subprocess.run(["unshare", "-n", str(DRIVER), "tap", "ktap0", setup,
                        "10.9.0.1", "10.9.0.2", "7777"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    if "Operation not permitted" in r.stderr and "unshare" in r.stderr:
        pytest.skip("cannot create a network namespace here: " + r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    for check in ("tap ktap0 open", "arp 10.9.0.1 is at", "ping 10.9.0.1",
                  "malformed frames from the device dropped",
                  "tcp echo 'hello through tap'", "tcp closed",
                  "tso echo 60000 bytes",
                  "link down when the interface is deleted"):
        assert f"ok {check}" in r.stdout, r.stdout


def test_tap_bad_name():
    ret, msg = open_result("virtio-net", "tap=lo")
    assert ret < 0
    assert msg.startswith("virtio-net: tap lo: ")
