"""Tier 2 of virtio-net over the backends that need something on the host
side: the device test program (dev_virtio_net, a cmocka suite) runs its
VPNKit test against tests/net/vpnkit_server.py on a temporary socket, and
its tap test inside a fresh network namespace (unshare -n) where the tap
gets an address the kernel answers ARP and ping on.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "net"))
from vpnkit_server import VPNKitServer  # noqa: E402

PROG = Path(os.environ.get("KHYVE_DEV_VIRTIO_NET",
                           ROOT / "build" / "tests" / "devices" / "dev_virtio_net"))
TIMEOUT = 60
VPNKIT_MAC = "02:50:00:ab:cd:ef"


@pytest.fixture(scope="module", autouse=True)
def prog():
    if not PROG.exists():
        pytest.skip(f"{PROG} not built (ninja -C build)")


def run(test, env, prefix=()):
    e = dict(os.environ, KHYVE_TEST_ONLY=test, **env)
    return subprocess.run([*prefix, str(PROG)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=e)


def test_vpnkit(tmp_path):
    sock = str(tmp_path / "vpnkit.sock")
    srv = VPNKitServer(sock, mac=bytes.fromhex(VPNKIT_MAC.replace(":", "")))
    srv.start()
    try:
        r = run("test_vpnkit", {"KHYVE_TEST_VPNKIT_SOCK": sock,
                                "KHYVE_TEST_VPNKIT_MAC": VPNKIT_MAC})
    finally:
        srv.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[       OK ] test_vpnkit" in r.stdout, r.stdout
    assert not srv.errors, srv.errors
    # The ARP request and the echo requests reached the server as sent.
    assert any(f[12:14] == b"\x08\x06" for f in srv.frames)


def test_tap_in_netns():
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("/dev/net/tun is absent: no tap devices on this host")
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip to make a network namespace")
    setup = ("ip link set lo up && ip link set kvnet0 up && "
             "ip addr add 10.9.1.1/24 dev kvnet0")
    r = run("test_tap", {"KHYVE_TEST_TAP": "kvnet0",
                         "KHYVE_TEST_TAP_SETUP": setup,
                         "KHYVE_TEST_TAP_PEER": "10.9.1.1",
                         "KHYVE_TEST_TAP_SELF": "10.9.1.2"},
            prefix=("unshare", "-n"))
    if "unshare" in r.stderr and "Operation not permitted" in r.stderr:
        pytest.skip("cannot create a network namespace here: " + r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[       OK ] test_tap" in r.stdout, r.stdout
