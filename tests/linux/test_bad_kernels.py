"""Bad kernels and boot parameters (issue 3): truncated or corrupt images,
an initrd too large for memory, a command line over the kernel's limit, a
kernel that does not fit in memory. Each gets one clear line on stderr and
exit status 1 before the guest runs; nothing boots, so these are fast."""
import struct

import pytest

from kit import KIT


@pytest.fixture(scope="module")
def bzimage(kvm):
    path = KIT / "bzImage"
    if not path.exists():
        pytest.fail(f"{path} missing (make guestkit builds it)")
    return path.read_bytes()


def one_error_line(res, *words):
    lines = [l for l in res.err.splitlines()
             if l.strip() and "software-virtualized" not in l]
    assert res.rc == 1, res
    assert len(lines) == 1, res.err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def boot(khyve, kernel, initrd="", cmdline="console=ttyS0", mem="256M"):
    return khyve.run("-m", mem, "-f", f"kexec,{kernel},{initrd},{cmdline}")


def test_truncated_bzimage(khyve, bzimage, tmp_path):
    k = tmp_path / "bzImage"
    k.write_bytes(bzimage[:len(bzimage) // 2])
    one_error_line(boot(khyve, k), str(k), "truncated")
    k.write_bytes(bzimage[:0x300])
    one_error_line(boot(khyve, k), str(k))


def test_corrupt_payload(khyve, bzimage, tmp_path):
    data = bytearray(bzimage)
    setup = (data[0x1f1] or 4) + 1
    off, length = struct.unpack_from("<II", data, 0x248)
    start = setup * 512 + off
    # Scramble the middle of the compressed kernel.
    for i in range(start + length // 2, start + length // 2 + 4096):
        data[i] ^= 0x5a
    k = tmp_path / "bzImage"
    k.write_bytes(bytes(data))
    one_error_line(boot(khyve, k), str(k), "corrupt")


def test_unknown_payload_falls_back_to_own_entry_checks(khyve, bzimage,
                                                          tmp_path):
    """A payload khyve cannot decompress is booted through the bzImage's
    own 64-bit entry; one that does not fit in memory is refused."""
    data = bytearray(bzimage)
    setup = (data[0x1f1] or 4) + 1
    off, _ = struct.unpack_from("<II", data, 0x248)
    data[setup * 512 + off:setup * 512 + off + 4] = b"\0\0\0\0"
    struct.pack_into("<I", data, 0x260, 0x7ff00000)  # init_size: ~2 GiB
    k = tmp_path / "bzImage"
    k.write_bytes(bytes(data))
    one_error_line(boot(khyve, k, mem="128M"), str(k), "more memory")


def test_not_a_kernel(khyve, tmp_path):
    k = tmp_path / "kernel"
    k.write_bytes(b"\x7fELF" + b"\0" * 100)
    one_error_line(boot(khyve, k), str(k), "ELF")
    k.write_bytes(b"just some text\n" * 100)
    one_error_line(boot(khyve, k), str(k), "neither an ELF vmlinux nor a bzImage")


def test_command_line_over_the_kernels_limit(khyve, bzimage, tmp_path):
    limit = struct.unpack_from("<I", bzimage, 0x238)[0]
    one_error_line(boot(khyve, KIT / "bzImage", cmdline="x" * (limit + 1)),
                   "command line too long", str(limit))


def test_initrd_too_large_for_memory(khyve, tmp_path):
    initrd = tmp_path / "initrd"
    with open(initrd, "wb") as f:
        f.truncate(40 << 20)  # under RAM, over what the kernel leaves
    one_error_line(boot(khyve, KIT / "vmlinux", initrd=initrd, mem="64M"),
                   str(initrd), "do not fit")


def test_memory_too_small_for_the_kernel(khyve, tmp_path):
    """An ELF whose segment lies beyond the end of RAM."""
    elf = bytearray(64 + 56 + 16)
    elf[0:4] = b"\x7fELF"
    elf[4], elf[5], elf[6] = 2, 1, 1
    struct.pack_into("<HHIQQQIHHHHHH", elf, 16, 2, 0x3e, 1, 0x10000000,
                     64, 0, 0, 64, 56, 1, 0, 0, 0)
    struct.pack_into("<IIQQQQQQ", elf, 64, 1, 5, 120, 0x10000000,
                     0x10000000, 16, 16, 0x1000)
    k = tmp_path / "vmlinux"
    k.write_bytes(bytes(elf))
    one_error_line(boot(khyve, k, mem="64M"), str(k), "more memory with -m")
