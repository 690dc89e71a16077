"""virtio-blk's -s conf from the command line: every bad disk gets one line
naming the slot and the file or option, exit 1; good disks (both conf forms,
several at once) let a test guest boot and power off. The disks are found
at device creation, after /dev/kvm is open: these tests need KVM."""
import os

import pytest

from test_args import assert_one_line_error


@pytest.fixture
def disks(tmp_path):
    with open(tmp_path / "disk.img", "wb") as f:
        f.truncate(1 << 20)
    with open(tmp_path / "odd.img", "wb") as f:
        f.truncate(1000)
    with open(tmp_path / "three-k.img", "wb") as f:
        f.truncate(3 * 1024)
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


BAD = [
    ("missing", "{d}/nope.img", ["-s 2:0,virtio-blk", "nope.img",
                                  "no such file"]),
    ("directory", "{d}/dir", ["{d}/dir", "is a directory"]),
    ("fifo", "{d}/fifo", ["{d}/fifo", "not a regular file or block device"]),
    ("not-whole-sectors", "{d}/odd.img",
     ["{d}/odd.img", "not a multiple of the 512-byte sector size"]),
    ("not-whole-4k-sectors", "{d}/three-k.img,sectorsize=4096",
     ["three-k.img", "4096-byte sector size"]),
    ("no-path", "", ["virtio-blk", "path is required"]),
    ("unknown-option", "{d}/disk.img,frobnicate",
     ["virtio-blk", "unknown disk option 'frobnicate'"]),
    ("bad-sectorsize", "{d}/disk.img,sectorsize=1000",
     ["sectorsize", "'1000'"]),
    ("bad-discard", "{d}/disk.img,discard=maybe", ["discard", "'maybe'"]),
    ("bad-uri-parameter", "file://{d}/disk.img?cache=none", ["'cache'"]),
    ("bad-qcow-config", "file://{d}/disk.img,qcow-config=frob=1",
     ["qcow-config", "'frob'"]),
]


@pytest.mark.usefixtures("kvm")
@pytest.mark.parametrize("conf,words", [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_disk(khyve, disks, conf, words):
    slot = "2,virtio-blk" + ("," + conf.format(d=disks) if conf else "")
    r = khyve.run("-s", slot, "-f", khyve.guest("hello"))
    assert_one_line_error(r, *[w.format(d=disks) for w in words])


@pytest.mark.usefixtures("kvm")
def test_good_disks_boot(khyve, disks):
    """Two disks in bhyve's form and one in HyperKit's, two vCPUs (two
    queues each): created, served, torn down at power-off."""
    img = disks / "disk.img"
    r = khyve.run("-c", "2", "-l", "com1,stdio",
                  "-s", f"2,virtio-blk,{img}",
                  "-s", f"3,virtio-blk,{img},ro,sectorsize=512/4096",
                  "-s", f"4,virtio-blk,file://{img}?sync=os&buffered=1",
                  "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert "PASS hello" in r.out
