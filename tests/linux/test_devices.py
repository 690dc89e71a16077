"""Tier 4: the guest kit's kernel and busybox using khyve's virtio devices.

Three boots cover issues 4-7 (each boot is 30-120 s here):
1. ext4 root on virtio-blk (rw), a second disk with a host-made partition
   table, virtio-rnd, two NICs (user-mode with ip=dhcp, and tap inside a
   network namespace), 2 vCPUs;
2. ext4 root inside a qcow2 image with a qcow2 backing file, a read-only
   raw disk, then kill -9 after the guest flushed;
3. root over virtio-9p from a host folder, vsock both ways in HyperKit's
   convention, and VPNKit networking with ip=dhcp.
"""
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit import boot_command, finish, kit, unpack_initramfs, wait_log  # noqa: F401

HERE = Path(__file__).resolve().parent
NET_TESTS = HERE.parent / "net"


def need(*tools):
    for t in tools:
        if not shutil.which(t):
            pytest.fail(f"{t} is missing (tools/deps.sh test installs it)")


def make_ext4(path, root_dir, size_mb=64):
    """An ext4 image of @root_dir, made on the host."""
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "kitroot", "-d",
                    str(root_dir), str(path), f"{size_mb}M"], check=True)


def make_partitioned(path, size_mb=16):
    """A disk with an MBR holding one Linux partition from 1 MiB."""
    with open(path, "wb") as f:
        f.truncate(size_mb << 20)
        start, count = 2048, (size_mb << 11) - 2048
        entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0",
                            start, count)
        f.seek(446)
        f.write(entry)
        f.seek(510)
        f.write(b"\x55\xaa")


def superblock(img):
    out = subprocess.run(["dumpe2fs", "-h", str(img)], capture_output=True,
                         text=True, check=True).stdout
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def debugfs_cat(img, path):
    return subprocess.run(["debugfs", "-R", f"cat {path}", str(img)],
                          capture_output=True, text=True).stdout


def console_text(log):
    return Path(log).read_bytes().decode(errors="replace")


def test_disks_rng_and_networks(khyve_path, kit, tmp_path):
    """virtio-blk root rw + partition scan + 2 queues, virtio-rnd as the
    hwrng, user-mode DHCP lease and tap to a namespace peer."""
    need("mkfs.ext4", "dumpe2fs", "e2fsck", "debugfs", "unshare", "ip")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("/dev/net/tun is missing: no tap device on this host")
    root = tmp_path / "root.img"
    make_ext4(root, unpack_initramfs(kit, tmp_path / "rootfs"))
    before = superblock(root)
    parts = tmp_path / "parts.img"
    make_partitioned(parts)
    log = tmp_path / "console.log"
    command = "\n".join([
        "grep ' / ' /proc/mounts",
        "echo RNG=$(cat /sys/class/misc/hw_random/rng_current)",
        "echo MQ=$(ls /sys/block/vda/mq | tr '\\n' ' ')",
        "grep -E ' vd[ab][0-9]*$' /proc/partitions",
        "dmesg | grep -iE 'virtio|vd[ab]|blk' | grep -iE 'warn|error|fail|bug'",
        "echo DMESG-CHECKED",
        "ip addr add 10.0.3.15/24 dev eth1; ip link set eth1 up",
        "ping -c 2 -W 5 10.0.3.1 && echo TAP-PING-OK",
        "grep -c 'PCI-MSI.*virtio' /proc/interrupts | sed 's/^/MSIX-VECTORS=/'",
        "echo persist-me > /persist.txt; sync",
        "mount -o remount,ro / && echo ROOT-RO",
    ])
    # khyve runs in a new network namespace holding the tap's peer.
    netns = ("ip link set lo up && ip tuntap add dev ktap0 mode tap && "
             "ip addr add 10.0.3.1/24 dev ktap0 && ip link set ktap0 up && "
             'exec "$@"')
    proc = boot_command(
        khyve_path, kit, log,
        ["-A", "-c", "2", "-m", "512M",
         "-s", f"2,virtio-blk,{root}", "-s", f"3,virtio-blk,{parts}",
         "-s", "4,virtio-rnd", "-s", "5,virtio-net,user",
         "-s", "6,virtio-net,tap=ktap0"],
        command, kernel_args="root=/dev/vda rw init=/init ip=dhcp",
        initrd=False, wrap=["unshare", "-n", "sh", "-c", netns, "sh"])
    wait_log(log, "KHYVE-DONE", proc)
    assert finish(proc) == 0, log.with_suffix(".stderr").read_text()
    out = console_text(log)
    assert "/dev/root / ext4 rw" in out or "/dev/vda / ext4 rw" in out, out
    assert "RNG=virtio_rng.0" in out, out
    assert "MQ=0 1\r" in out, out
    assert " vdb1" in out, out
    checked = out.split("DMESG-CHECKED")[0].rsplit("vdb1", 1)[1]
    assert not checked.strip(), f"driver complaints: {checked}"
    assert "IP-Config: Got DHCP answer from 10.0.2.2, my address is 10.0.2.15" \
        in out, out
    assert "TAP-PING-OK" in out, out
    assert "ROOT-RO" in out, out
    # MSI-X: a config vector plus one per queue of each device.
    assert int(out.split("MSIX-VECTORS=")[1].split()[0]) >= 10, out
    # The host sees what the guest did: clean fs, mount count and time.
    fsck = subprocess.run(["e2fsck", "-fn", str(root)], capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    after = superblock(root)
    assert int(after["Mount count"]) == int(before["Mount count"]) + 1
    assert after["Last mount time"] != before["Last mount time"]
    assert debugfs_cat(root, "/persist.txt") == "persist-me\n"


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def direct_io_ok(d):
    """Whether files in @d can be opened with O_DIRECT."""
    probe = d / ".odirect-probe"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o600))
        return True
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)


def test_qcow2_root_with_backing_ro_disk_and_kill9(khyve_path, kit,
                                                   tmp_path):
    """Root rw from a qcow2 overlay on a qcow2 base; a read-only raw disk
    mounts read-only; kill -9 after the guest's sync loses nothing and
    leaves the overlay clean for qemu-img, the base untouched."""
    need("mkfs.ext4", "e2fsck", "debugfs", "qemu-img")
    raw = tmp_path / "base.raw"
    make_ext4(raw, unpack_initramfs(kit, tmp_path / "rootfs"))
    base, overlay = tmp_path / "base.qcow2", tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw),
                    str(base)], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                    "base.qcow2", "-F", "qcow2", str(overlay)], check=True,
                   cwd=tmp_path)
    base_sum = sha256(base)
    data = tmp_path / "data.img"
    make_ext4(data, tmp_path / "rootfs", size_mb=16)
    log = tmp_path / "console.log"
    command = "\n".join([
        "grep ' / ' /proc/mounts",
        "echo ro=$(cat /sys/block/vdb/ro)",
        "mount /dev/vdb /mnt; grep ' /mnt ' /proc/mounts",
        "touch /mnt/x 2>/dev/null || echo WRITE-REFUSED",
        "dd if=/dev/urandom of=/crash.bin bs=64k count=16 2>/dev/null",
        "md5sum /crash.bin; sync; echo FLUSHED-MARKER",
        "sleep 3600",
    ])
    # nocache: the overlay's data clusters through O_DIRECT, where the
    # file system takes it (tmpfs before Linux 6.6 does not).
    nocache = ",nocache" if direct_io_ok(tmp_path) else ""
    proc = boot_command(
        khyve_path, kit, log,
        ["-A", "-m", "384M", "-s", f"2,virtio-blk,{overlay}{nocache}",
         "-s", f"3,virtio-blk,{data},ro"],
        command, kernel_args="root=/dev/vda rw init=/init", initrd=False)
    out = wait_log(log, "FLUSHED-MARKER", proc)
    proc.kill()
    proc.wait()
    assert " / ext4 rw" in out, out
    assert "ro=1" in out, out
    assert " /mnt ext4 ro" in out, out
    assert "WRITE-REFUSED" in out, out
    md5 = out.split("/crash.bin")[0].split()[-1]
    check = subprocess.run(["qemu-img", "check", str(overlay)],
                           capture_output=True, text=True)
    # 0: clean; 3: leaked clusters only (allowed after a crash).
    assert check.returncode in (0, 3), check.stdout + check.stderr
    assert sha256(base) == base_sum, "the backing file was written"
    flat = tmp_path / "flat.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(overlay),
                    str(flat)], check=True)
    # Replay the journal as the next mount would, then read the file.
    subprocess.run(["e2fsck", "-fy", str(flat)], capture_output=True)
    got = subprocess.run(["debugfs", "-R", "dump /crash.bin /dev/stdout",
                          str(flat)], capture_output=True).stdout
    assert hashlib.md5(got).hexdigest() == md5


def test_9p_root_vsock_and_vpnkit(khyve_path, kit, tmp_path):
    """Root over 9P from a host folder (the guest's writes land in it),
    the vsock transport binds with our CID, guest → host and host → guest
    connections through HyperKit's socket directory, DHCP over VPNKit;
    with -W (single MSI, no MSI-X) the devices interrupt through INTx."""
    share = unpack_initramfs(kit, tmp_path / "share")
    (share / "marker.txt").write_text("from-the-host\n")
    vsock_dir = tmp_path / "vsock"
    vsock_dir.mkdir()
    # The host service the guest connects to: port 1524 (0x5f4).
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(vsock_dir / "00000002.000005f4"))
    listener.listen(1)
    vpnkit_sock = tmp_path / "vpnkit.sock"
    server = subprocess.Popen(
        [sys.executable, str(NET_TESTS / "vpnkit_server.py"),
         str(vpnkit_sock)],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "vpnkit.err", "wb"))
    try:
        deadline = time.monotonic() + 10
        while not vpnkit_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = tmp_path / "console.log"
        command = "\n".join([
            "grep ' / ' /proc/mounts",
            "cat /marker.txt",
            "echo written-by-guest > /root/from-guest.txt",
            "khyve-vsock cid",
            "grep virtio /proc/interrupts",
            "khyve-vsock send 1524 ping-from-guest; echo",
            "khyve-vsock echo 5000 &",
            "wait; echo ECHO-DONE",
        ])
        proc = boot_command(
            khyve_path, kit, log,
            ["-A", "-W", "-m", "384M",
             "-s", f"2,virtio-9p,tag=kitroot,share={share}",
             "-s", f"3,virtio-sock,guest_cid=7,path={vsock_dir}",
             "-s", f"4,virtio-vpnkit,path={vpnkit_sock}"],
            command,
            kernel_args="root=kitroot rootfstype=9p "
            "rootflags=trans=virtio,version=9p2000.L,msize=524288 rw "
            "init=/init ip=dhcp",
            initrd=False)
        listener.settimeout(600)
        conn, _ = listener.accept()
        conn.settimeout(60)
        got = b""
        while not got.endswith(b"ping-from-guest"):
            chunk = conn.recv(100)
            if not chunk:
                break
            got += chunk
        assert got == b"ping-from-guest"
        conn.sendall(b"pong-from-host")
        conn.close()
        # The guest's listener is up once it says so (its own line).
        wait_log(log, "LISTENING 5000", proc)
        host = socket.socket(socket.AF_UNIX)
        host.connect(str(vsock_dir / "connect"))
        host.sendall(b"%08x.%08x\n" % (7, 5000))
        host.sendall(b"echo-me")
        host.shutdown(socket.SHUT_WR)
        host.settimeout(60)
        echoed = b""
        while True:
            chunk = host.recv(100)
            if not chunk:
                break
            echoed += chunk
        assert echoed == b"echo-me"
        wait_log(log, "KHYVE-DONE", proc)
        assert finish(proc) == 0
    finally:
        server.terminate()
        server.wait()
    out = console_text(log)
    assert "kitroot / 9p rw" in out, out
    assert "from-the-host" in out, out
    assert "CID=7" in out, out
    # -W: no MSI-X, so Linux's virtio-pci takes the INTx lines (_PRT).
    assert "IO-APIC  18-fasteoi   virtio" in out, out
    assert "pong-from-host" in out, out
    assert "ECHO-DONE" in out, out
    assert "IP-Config: Got DHCP answer from 192.168.65.1, my address is " \
        "192.168.65.3" in out, out
    assert (share / "root/from-guest.txt").read_text() == "written-by-guest\n"
