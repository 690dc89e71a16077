"""khyve's qcow2 format against QEMU's own tools (qemu-img, qemu-io).

Images are made by qemu-img/qemu-io, read and written through khyve's
block layer (blk_open, blk_submit) by tests/block/qcow2_tool, then checked
by qemu-img (check, compare, convert). No KVM needed. The tool is found in
KHYVE_BUILD (the build directory; default build/ in the repository).

The storms run with both I/O engines, one or many requests in flight, and
O_DIRECT (IO_MODES). O_DIRECT needs a file system that takes it: tmp_path
if it does, else a directory under KHYVE_DIRECT_DIR, /var/tmp or the build
directory; with none of them those cases are skipped, saying so.
"""
import mmap
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TIMEOUT = 120
MiB = 1 << 20


def build_dir():
    return Path(os.environ.get("KHYVE_BUILD", ROOT / "build")).resolve()


@pytest.fixture(scope="session")
def tool():
    build = build_dir()
    path = build / "tests/block/qcow2_tool"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found: run `make` first or set KHYVE_BUILD")
    if not shutil.which("qemu-img"):
        pytest.fail("qemu-img not found (Debian package qemu-utils)")
    return path


def sh(*args, check=True, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True,
                       timeout=TIMEOUT, **kw)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {p.returncode}: "
                    f"{p.stderr.decode(errors='replace')}")
    return p


def qt(tool, *args, check=True, **kw):
    p = sh(tool, *args, check=check, **kw)
    # A sanitizer build (KHYVE_BUILD=build-asan) must report nothing.
    assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, \
        p.stderr.decode(errors="replace")
    assert p.returncode >= 0, f"killed by signal {-p.returncode}"
    return p


# How a storm drives the image: (engine, queue depth, nocache = O_DIRECT).
IO_MODES = {
    "uring-qd32-direct": ("uring", 32, True),
    "uring-qd32": ("uring", 32, False),
    "uring-qd1": ("uring", 1, False),
    "sync-qd8": ("sync", 8, False),
}


def with_modes(cases):
    """Each case with O_DIRECT at depth 32, and once more with one of the
    other modes in turn: every mode runs, at twice the time, not four."""
    others = [m for m in sorted(IO_MODES) if m != "uring-qd32-direct"]
    return [(c, m) for i, c in enumerate(cases)
            for m in ("uring-qd32-direct", others[i % len(others)])]


def io_args(engine="uring", depth=1, nocache=False):
    """The tool's options (before IMG) for an engine, depth and O_DIRECT."""
    return ["-e", engine, "-q", str(depth)] + (["-d"] if nocache else [])


def direct_io_works(d):
    """Whether a file in @d can be opened and written with O_DIRECT (tmpfs
    before Linux 6.6 refuses the open, some file systems the write)."""
    probe = Path(d) / f".odirect-{os.getpid()}-{random.getrandbits(32)}"
    buf = mmap.mmap(-1, 4096)  # page aligned, as O_DIRECT wants
    try:
        fd = os.open(probe, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o600)
    except OSError:
        return False
    try:
        return os.pwrite(fd, buf, 0) == 4096
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()
        buf.close()


@pytest.fixture
def io(request, tmp_path):
    """(tool options, directory for the images) for the IO_MODES entry the
    test is parametrized with (indirect)."""
    engine, depth, nocache = IO_MODES[request.param]
    args = io_args(engine, depth, nocache)
    if not nocache or direct_io_works(tmp_path):
        yield args, tmp_path
        return
    for base in (os.environ.get("KHYVE_DIRECT_DIR"), "/var/tmp", build_dir()):
        if base and os.path.isdir(base) and direct_io_works(base):
            d = Path(tempfile.mkdtemp(prefix="khyve-odirect-", dir=base))
            try:
                yield args, d
            finally:
                shutil.rmtree(d, ignore_errors=True)
            return
    pytest.skip(f"nocache not tested: no O_DIRECT on {tmp_path}, "
                "$KHYVE_DIRECT_DIR, /var/tmp or the build directory")


def qemu_raw(img, tmp_path, snapshot=None):
    out = tmp_path / f"conv-{random.getrandbits(32)}.raw"
    extra = ["-l", snapshot] if snapshot else []
    sh("qemu-img", "convert", *extra, "-O", "raw", img, out)
    data = out.read_bytes()
    out.unlink()
    return data


def tool_read(tool, img, size, ro=True):
    args = ["-r"] if ro else []
    return qt(tool, *args, img, "read", 0, size).stdout


def check_clean(img):
    p = sh("qemu-img", "check", img, check=False)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


def pattern(size, seed=1):
    """Random data, zeroes and text: compressible and not."""
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        kind = rnd.randrange(3)
        n = rnd.randrange(1, 300) * 1024
        if kind == 0:
            out += rnd.randbytes(n)
        elif kind == 1:
            out += bytes(n)
        else:
            out += (b"khyve qcow2 %d\n" % rnd.randrange(1000)) * (n // 16)
    return bytes(out[:size])


def header(img):
    return bytearray(Path(img).read_bytes()[:4096])


def patch(img, off, fmt, *vals):
    with open(img, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(fmt, *vals))


def field(img, off, fmt):
    with open(img, "rb") as f:
        f.seek(off)
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


# -- reading what qemu-img made --

@pytest.mark.parametrize("compat", ["0.10", "1.1"])
@pytest.mark.parametrize("cluster", ["512", "64k", "2M"])
def test_read_converted(tool, tmp_path, compat, cluster):
    raw = tmp_path / "src.raw"
    raw.write_bytes(pattern(6 * MiB + 4096))
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "convert", "-O", "qcow2", "-o",
       f"compat={compat},cluster_size={cluster}", raw, img)
    assert tool_read(tool, img, raw.stat().st_size) == raw.read_bytes()


@pytest.mark.parametrize("compat,ctype", [("0.10", "zlib"), ("1.1", "zlib"),
                                          ("1.1", "zstd")])
@pytest.mark.parametrize("cluster", ["4k", "64k", "2M"])
def test_read_compressed(tool, tmp_path, compat, ctype, cluster):
    raw = tmp_path / "src.raw"
    raw.write_bytes(pattern(5 * MiB, seed=2))
    img = tmp_path / "img.qcow2"
    opts = f"compat={compat},cluster_size={cluster}"
    if compat == "1.1":
        opts += f",compression_type={ctype}"
    sh("qemu-img", "convert", "-c", "-O", "qcow2", "-o", opts, raw, img)
    assert "compressed" in sh("qemu-img", "check", img).stdout.decode()
    assert tool_read(tool, img, raw.stat().st_size) == raw.read_bytes()


@pytest.mark.parametrize("ctype", ["zlib", "zstd"])
def test_write_over_compressed(tool, tmp_path, ctype):
    raw = tmp_path / "src.raw"
    data = bytearray(pattern(4 * MiB, seed=3))
    raw.write_bytes(data)
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "convert", "-c", "-O", "qcow2", "-o",
       f"compression_type={ctype}", raw, img)
    qt(tool, img, "write", 100000, 5000, 0x77, "zero", 1 * MiB, 200000,
       "discard", 2 * MiB, 65536, "write", 3 * MiB - 10, 20, 0x99)
    data[100000:105000] = b"\x77" * 5000
    data[MiB:MiB + 200000] = bytes(200000)
    data[2 * MiB:2 * MiB + 65536] = bytes(65536)
    data[3 * MiB - 10:3 * MiB + 10] = b"\x99" * 20
    check_clean(img)
    assert qemu_raw(img, tmp_path) == bytes(data)


def test_zero_clusters(tool, tmp_path):
    """Zero clusters made by qemu-io (plain and allocated) read as zeroes,
    also over a backing file; in v2 an unallocated cluster shows the
    backing file."""
    base = tmp_path / "base.raw"
    base.write_bytes(pattern(4 * MiB, seed=4))
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw",
       img, "4M", cwd=tmp_path)
    sh("qemu-io", "-c", "write -P 0x5a 0 1M", "-c", "write -z 64k 128k",
       "-c", "write -z -u 512k 64k", "-c", "write -z 2M 64k", img)
    assert "zero" in sh("qemu-img", "map", "--output=json",
                        img).stdout.decode()
    assert tool_read(tool, img, 4 * MiB) == qemu_raw(img, tmp_path)
    v2 = tmp_path / "v2.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", "-b",
       "base.raw", "-F", "raw", v2, "4M", cwd=tmp_path)
    sh("qemu-io", "-c", "write -P 0x5a 0 64k", "-c", "write -z 1M 64k", v2)
    assert tool_read(tool, v2, 4 * MiB) == qemu_raw(v2, tmp_path)


# -- backing files --

@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_backing_file(tool, tmp_path, fmt):
    """A chain base <- mid <- top with relative names, opened from another
    folder; writes go to the top only, the base is untouched."""
    d = tmp_path / "imgs"
    d.mkdir()
    base_raw = d / "base.raw"
    base_raw.write_bytes(pattern(3 * MiB, seed=5))
    base = d / f"base.{fmt}"
    if fmt == "qcow2":
        sh("qemu-img", "convert", "-O", "qcow2", base_raw, base)
    sh("qemu-img", "create", "-f", "qcow2", "-b", base.name, "-F", fmt,
       "mid.qcow2", cwd=d)
    sh("qemu-io", "-c", "write -P 0x11 1M 300k", d / "mid.qcow2")
    sh("qemu-img", "create", "-f", "qcow2", "-b", "mid.qcow2", "-F",
       "qcow2", "top.qcow2", cwd=d)
    # Without the backing format extension the format is probed.
    h = header(d / "top.qcow2")
    pos = h.find(struct.pack(">I", 0xe2792aca))
    assert pos > 0
    patch(d / "top.qcow2", pos, ">I", 0x6b687976)
    before = base.read_bytes()
    top = d / "top.qcow2"
    qt(tool, top, "write", 4096, 70000, 0x22, "zero", 2 * MiB, 65536,
       "write", 2 * MiB + 65536 + 100, 50, 0x33, "discard", 1 * MiB + 65536,
       131072, cwd="/")
    assert base.read_bytes() == before
    check_clean(top)
    assert qt(tool, "-r", top.relative_to(tmp_path), "read", 0, 3 * MiB,
              cwd=tmp_path).stdout == qemu_raw(top, tmp_path)


def test_backing_size_smaller(tool, tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"\xab" * 100000)
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-b", base, "-F", "raw", img,
       "1M")
    got = tool_read(tool, img, MiB)
    assert got == b"\xab" * 100000 + bytes(MiB - 100000)


def test_backing_opened_read_only(tool, tmp_path):
    base = tmp_path / "base.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", base, "1M")
    os.chmod(base, 0o444)
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-b", base, "-F", "qcow2", img)
    qt(tool, img, "write", 0, 4096, 1)
    check_clean(img)


# -- writing --

STORMS = {
    "v3-64k": "cluster_size=64k",
    "v2-64k": "compat=0.10",
    "v3-512": "cluster_size=512",
    "v3-2M": "cluster_size=2M",
    "v3-4k-refcount1": "cluster_size=4k,refcount_bits=1",
    "v3-4k-refcount64": "cluster_size=4k,refcount_bits=64",
    # Refcount blocks of 64 entries: the refcount table grows many times.
    "v3-512-refcount64": "cluster_size=512,refcount_bits=64",
    "v3-lazy": "lazy_refcounts=on",
}


@pytest.mark.parametrize("name,io", with_modes(sorted(STORMS)),
                         indirect=["io"])
def test_storm_matches_mirror(tool, io, name):
    args, d = io
    img = d / "img.qcow2"
    mirror = d / "mirror.raw"
    sh("qemu-img", "create", "-f", "qcow2", "-o", STORMS[name], img, "48M")
    qt(tool, *args, img, "storm", 11, 1200, mirror)
    check_clean(img)
    p = sh("qemu-img", "compare", img, mirror, check=False)
    assert p.returncode == 0, p.stdout.decode()


@pytest.mark.parametrize("compat,backing,io",
                         [("0.10", "raw", "uring-qd32-direct"),
                          ("1.1", "raw", "sync-qd8"),
                          ("0.10", "qcow2", "uring-qd32"),
                          ("1.1", "qcow2", "uring-qd32-direct")],
                         indirect=["io"])
def test_storm_over_backing(tool, io, compat, backing):
    args, d = io
    base = d / f"base.{backing}"
    raw = d / "base.raw"
    raw.write_bytes(pattern(24 * MiB, seed=8))
    if backing == "qcow2":
        sh("qemu-img", "convert", "-O", "qcow2", raw, base)
    before = base.read_bytes()
    img = d / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-o", f"compat={compat}", "-b",
       base.name, "-F", backing, img, "32M", cwd=d)
    mirror = d / "mirror.raw"
    qt(tool, *args, img, "storm", 12, 800, mirror)
    check_clean(img)
    assert sh("qemu-img", "compare", img, mirror,
              check=False).returncode == 0
    assert base.read_bytes() == before


@pytest.mark.parametrize("ctype,io", [("zlib", "uring-qd32-direct"),
                                      ("zstd", "uring-qd1")],
                         indirect=["io"])
def test_storm_over_compressed(tool, io, ctype):
    args, d = io
    raw = d / "src.raw"
    raw.write_bytes(pattern(24 * MiB, seed=9))
    img = d / "img.qcow2"
    sh("qemu-img", "convert", "-c", "-O", "qcow2", "-o",
       f"compression_type={ctype},cluster_size=16k", raw, img)
    mirror = d / "mirror.raw"
    qt(tool, *args, img, "storm", 13, 800, mirror)
    check_clean(img)
    assert sh("qemu-img", "compare", img, mirror,
              check=False).returncode == 0


@pytest.mark.parametrize("io", ["uring-qd32-direct", "uring-qd32"],
                         indirect=True)
def test_storm_over_allocated(tool, io):
    """Every cluster allocated already: writes change no mapping, the most
    requests in flight at once."""
    args, d = io
    img = d / "img.qcow2"
    mirror = d / "mirror.raw"
    sh("qemu-img", "create", "-f", "qcow2", img, "32M")
    sh("qemu-io", "-c", "write -P 0x5a 0 32M", img)
    qt(tool, *args, img, "storm", 14, 1000, mirror)
    check_clean(img)
    assert sh("qemu-img", "compare", img, mirror,
              check=False).returncode == 0


@pytest.mark.parametrize("opts,backing", [("cluster_size=64k", False),
                                          ("cluster_size=4k", False),
                                          ("cluster_size=64k", True)])
@pytest.mark.parametrize("io", ["uring-qd32-direct", "uring-qd32"],
                         indirect=True)
def test_storm_deep_queue(tool, io, opts, backing):
    """No flushes: the queue fills up, allocating writes are in flight
    together and writes to clusters being allocated wait for them."""
    args, d = io
    img = d / "img.qcow2"
    mirror = d / "mirror.raw"
    extra = []
    if backing:
        base = d / "base.raw"
        base.write_bytes(pattern(16 * MiB, seed=3))
        extra = ["-b", base, "-F", "raw"]
    # Large enough that the storm's requests seldom overlap (and wait).
    sh("qemu-img", "create", "-f", "qcow2", "-o", opts, *extra, img, "64M")
    out = qt(tool, *args, "-n", img, "storm", 17, 3000, mirror).stdout
    deepest = int(re.findall(rb"max in flight (\d+)", out)[-1])
    assert deepest >= 8, f"only {deepest} requests were in flight at once"
    check_clean(img)
    p = sh("qemu-img", "compare", "-F", "raw", img, mirror, check=False)
    assert p.returncode == 0, p.stdout.decode()


@pytest.mark.parametrize("io", ["uring-qd32-direct"], indirect=True)
def test_storm_after_snapshot(tool, io):
    """Clusters shared with a snapshot are copied on write; the snapshot
    keeps its data."""
    args, d = io
    img = d / "img.qcow2"
    mirror = d / "mirror.raw"
    sh("qemu-img", "create", "-f", "qcow2", img, "16M")
    sh("qemu-io", "-c", "write -P 0x44 0 16M", img)
    sh("qemu-img", "snapshot", "-c", "s1", img)
    qt(tool, *args, img, "storm", 5, 400, mirror)
    check_clean(img)
    assert sh("qemu-img", "compare", img, mirror,
              check=False).returncode == 0
    assert qemu_raw(img, d, snapshot="s1") == b"\x44" * (16 * MiB)
    sh("qemu-img", "snapshot", "-d", "s1", img)
    check_clean(img)


def test_discard_shrinks_file(tool, tmp_path):
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", img, "256M")
    qt(tool, img, "write", 0, 64 * MiB, 0x5a, "flush")
    full = img.stat().st_blocks * 512
    assert full >= 64 * MiB
    qt(tool, img, "discard", 0, 64 * MiB)
    assert img.stat().st_blocks * 512 < full - 60 * MiB
    check_clean(img)
    assert tool_read(tool, img, MiB) == bytes(MiB)


def test_file_grown_ahead_is_given_back(tool, tmp_path):
    """New clusters grow the file ahead in steps of 8 MiB (no appending
    writes); closing gives back what nothing uses. The zeroes a crash left
    past the last cluster are used for the next clusters, not added to."""
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", img, "64M")
    qt(tool, img, "write", 0, 4096, 0x33)
    assert img.stat().st_size < MiB
    check_clean(img)
    # As after a crash: 8 MiB of zeroes past the last cluster.
    with open(img, "r+b") as f:
        f.truncate(img.stat().st_size + 8 * MiB)
    crashed = img.stat().st_size
    qt(tool, img, "write", 65536, 4096, 0x44)
    assert img.stat().st_size == crashed
    check_clean(img)
    data = tool_read(tool, img, 2 * 65536)
    assert data[:4096] == b"\x33" * 4096 and data[4096:65536] == bytes(61440)
    assert data[65536:69632] == b"\x44" * 4096


def limit_file_size(nbytes):
    """preexec_fn: writes past @nbytes fail with EFBIG (as a full disk
    fails them) instead of raising SIGXFSZ."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


@pytest.mark.parametrize("io", ["uring-qd32-direct", "sync-qd8"],
                         indirect=True)
def test_file_full_is_an_io_error_and_loses_nothing(tool, io):
    """An allocating write the file system refuses fails with an I/O
    error; the image stays consistent and what was written before stays."""
    args, d = io
    img = d / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", img, "64M")
    qt(tool, *args, img, "write", 0, MiB, 0x61, "flush")
    limit = img.stat().st_size + 256 * 1024
    p = subprocess.run([str(a) for a in (tool, *args, img, "write", 8 * MiB,
                                         4 * MiB, 0x62)],
                       capture_output=True,
                       timeout=TIMEOUT, preexec_fn=limit_file_size(limit))
    assert p.returncode == 2, p.stderr.decode()
    assert b"Sanitizer" not in p.stderr, p.stderr.decode()
    c = sh("qemu-img", "check", img, check=False)
    # 0: clean; 3: leaked clusters only (the refused write's, at most).
    assert c.returncode in (0, 3), c.stdout.decode() + c.stderr.decode()
    data = tool_read(tool, img, 16 * MiB)
    assert data[:MiB] == b"\x61" * MiB
    # The refused range: old content (zeroes) or the new, never other.
    for off in range(8 * MiB, 12 * MiB, 65536):
        assert data[off:off + 65536] in (bytes(65536), b"\x62" * 65536)
    assert data[12 * MiB:] == bytes(4 * MiB)


@pytest.mark.parametrize("compat", ["0.10", "1.1"])
def test_write_zeroes_does_not_allocate(tool, tmp_path, compat):
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-o", f"compat={compat}", img,
       "64M")
    qt(tool, img, "zero", 0, 64 * MiB)
    assert img.stat().st_size < MiB
    qt(tool, img, "write", 0, 8 * MiB, 0x77, "flush")
    used = img.stat().st_blocks * 512
    qt(tool, img, "zero", 0, 8 * MiB)
    assert img.stat().st_blocks * 512 < used - 7 * MiB
    check_clean(img)
    assert tool_read(tool, img, 8 * MiB) == bytes(8 * MiB)


def test_write_zeroes_over_backing_v3(tool, tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"\x66" * (4 * MiB))
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-b", base, "-F", "raw", img)
    qt(tool, img, "zero", 0, 2 * MiB + 100)
    assert img.stat().st_size < MiB
    data = tool_read(tool, img, 4 * MiB)
    assert data == bytes(2 * MiB + 100) + b"\x66" * (2 * MiB - 100)
    check_clean(img)
    assert qemu_raw(img, tmp_path) == data


# -- crash safety --

def parse_log(out):
    flushed = [int(m) for m in re.findall(rb"flushed (\d+)", out)]
    ops = [int(m) for m in re.findall(rb"op (\d+)", out)]
    return (flushed[-1] if flushed else 0), (ops[-1] if ops else 0)


KILL_OPTS = ["lazy_refcounts=off", "lazy_refcounts=on", "cluster_size=4k",
             "compat=0.10,cluster_size=512"]


@pytest.mark.parametrize(
    "opts,io,delay",
    # Every image in every mode; each image killed early and late.
    [(o, m, (0.3, 0.9)[(i + j) % 2]) for i, o in enumerate(KILL_OPTS)
     for j, m in enumerate(sorted(IO_MODES))],
    indirect=["io"])
def test_kill_mid_storm(tool, io, opts, delay):
    args, d = io
    img = d / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-o", opts, img, "48M")
    out = d / "log"
    with open(out, "wb") as f:
        p = subprocess.Popen([str(tool), *args, str(img), "storm", "21",
                              "1000000", str(d / "m.raw")], stdout=f)
        # Kill it some time after its first flush.
        deadline = time.monotonic() + TIMEOUT
        while b"flushed" not in out.read_bytes():
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
    k, j = parse_log(out.read_bytes())
    assert k > 0, "no flush happened before the kill"
    c = sh("qemu-img", "check", img, check=False)
    if field(img, 72, ">Q") & 1:
        # Lazy refcounts: the dirty bit says the refcounts on disk are
        # stale by design; the next open rebuilds them.
        assert "lazy_refcounts=on" in opts
    else:
        # 0: clean, 3: leaked clusters only; 2 would be corruption.
        assert c.returncode in (0, 3), c.stdout.decode() + c.stderr.decode()
    # Reopening (a dirty image: refcounts rebuilt) leaves it clean.
    qt(tool, *args, img, "info")
    c = sh("qemu-img", "check", "-r", "leaks", img, check=False)
    assert c.returncode == 0, c.stdout.decode()
    mirror, unc = d / "expect.raw", d / "uncertain"
    qt(tool, "-r", img, "replay", 21, k, j, mirror, unc)
    got = qemu_raw(img, d)
    want = mirror.read_bytes()
    u = unc.read_bytes()
    for s in range(len(u)):
        if not u[s] and got[s * 512:(s + 1) * 512] != \
                want[s * 512:(s + 1) * 512]:
            pytest.fail(f"sector {s} lost a flushed write (flushed {k}, "
                        f"last op {j})")


# -- header handling --

def test_unknown_extension_kept_and_autoclear_cleared(tool, tmp_path):
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", img, "1M")
    h = header(img)
    hlen = struct.unpack(">I", h[100:104])[0]
    ext = struct.pack(">II", 0x12345678, 12) + b"khyve-ext-12" + bytes(4)
    rest = h[hlen:]
    h[hlen:hlen + len(ext) + len(rest)] = ext + rest
    Path(img).write_bytes(bytes(h[:4096]) + img.read_bytes()[4096:])
    patch(img, 88, ">Q", 1 << 5)
    qt(tool, "-r", img, "read", 0, 512)
    assert field(img, 88, ">Q") == 1 << 5
    qt(tool, img, "write", 0, 4096, 7)
    assert field(img, 88, ">Q") == 0
    assert header(img)[hlen:hlen + len(ext)] == ext
    check_clean(img)


def test_corrupt_bit_opens_read_only(tool, tmp_path):
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", img, "1M")
    patch(img, 72, ">Q", 2)
    p = qt(tool, img, "info")
    assert b"read_only 1" in p.stdout
    assert b"corrupt" in p.stderr
    p = qt(tool, img, "write", 0, 512, 1, check=False)
    assert p.returncode == 2 and b"Read-only" in p.stderr


def test_dirty_image_rebuilt(tool, tmp_path):
    """A dirty image whose refcounts are wrong is repaired at open."""
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-o", "lazy_refcounts=on", img,
       "8M")
    sh("qemu-io", "-c", "write -P 9 0 3M", img)
    # Zero the refcount block, set the dirty bit.
    rt = field(img, 48, ">Q")
    rb = field(img, rt, ">Q")
    with open(img, "r+b") as f:
        f.seek(rb)
        f.write(bytes(65536))
    patch(img, 72, ">Q", 1)
    qt(tool, img, "read", 0, 512)
    assert field(img, 72, ">Q") == 0
    check_clean(img)
    assert qemu_raw(img, tmp_path)[:3 * MiB] == b"\x09" * (3 * MiB)


# -- refusals and bad images: an error naming the problem, never a crash --

def make(tmp_path, *opts, size="4M"):
    img = tmp_path / "img.qcow2"
    if img.exists():
        img.unlink()
    sh("qemu-img", "create", "-f", "qcow2", *opts, img, size)
    return img


def refused(tool, img, words):
    p = qt(tool, img, "read", 0, 512, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    err = p.stderr.decode()
    assert re.search(words, err, re.I), err
    return err


def test_refuse_encryption(tool, tmp_path):
    img = make(tmp_path)
    patch(img, 32, ">I", 1)
    refused(tool, img, "encrypt")


def test_refuse_extended_l2(tool, tmp_path):
    refused(tool, make(tmp_path, "-o", "extended_l2=on"), "extended L2")


def test_refuse_external_data_file(tool, tmp_path):
    refused(tool, make(tmp_path, "-o", f"data_file={tmp_path}/data.raw"),
            "external data file")


def test_refuse_unknown_incompatible_feature(tool, tmp_path):
    img = make(tmp_path)
    patch(img, 72, ">Q", 1 << 40)
    refused(tool, img, "incompatible feature.*40")
    img = make(tmp_path, "-o", "compat=1.1")
    patch(img, 72, ">Q", 1 << 3)
    refused(tool, img, "compression type")


def test_truncated(tool, tmp_path):
    img = make(tmp_path)
    data = img.read_bytes()
    for n in (0, 10, 80, 100, 70000):
        img.write_bytes(data[:n])
        refused(tool, img, "truncated|beyond the end|not a qcow2")


def test_l1_beyond_eof(tool, tmp_path):
    img = make(tmp_path)
    patch(img, 40, ">Q", 1 << 40)
    refused(tool, img, "L1 table.*beyond the end")


def test_tables_over_header_or_each_other(tool, tmp_path):
    img = make(tmp_path)
    patch(img, 48, ">Q", 0)
    refused(tool, img, "refcount table overlaps the header")
    img = make(tmp_path)
    patch(img, 40, ">Q", field(img, 48, ">Q"))
    refused(tool, img, "overlaps")
    img = make(tmp_path)
    patch(img, 40, ">Q", 4096)
    refused(tool, img, "not cluster aligned")


def test_absurd_sizes(tool, tmp_path):
    img = make(tmp_path)
    patch(img, 24, ">Q", 1 << 62)
    refused(tool, img, "virtual size")
    img = make(tmp_path)
    patch(img, 36, ">I", 0xFFFFFFFF)
    refused(tool, img, "L1 table too large")
    img = make(tmp_path)
    patch(img, 20, ">I", 31)
    refused(tool, img, "cluster size")
    img = make(tmp_path)
    patch(img, 56, ">I", 0x7FFFFFFF)
    refused(tool, img, "refcount table size")
    img = make(tmp_path)
    patch(img, 96, ">I", 7)
    refused(tool, img, "refcount width")


def test_backing_loop(tool, tmp_path):
    sh("qemu-img", "create", "-f", "qcow2", tmp_path / "a.qcow2", "1M")
    sh("qemu-img", "create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2",
       tmp_path / "b.qcow2", cwd=tmp_path)
    sh("qemu-img", "rebase", "-u", "-b", "b.qcow2", "-F", "qcow2",
       tmp_path / "a.qcow2", cwd=tmp_path)
    refused(tool, tmp_path / "b.qcow2", "loop")
    sh("qemu-img", "rebase", "-u", "-b", "a.qcow2", "-F", "qcow2",
       tmp_path / "a.qcow2", cwd=tmp_path)
    refused(tool, tmp_path / "a.qcow2", "loop")


def test_missing_backing_file(tool, tmp_path):
    img = tmp_path / "img.qcow2"
    sh("qemu-img", "create", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F",
       "qcow2", img, "1M")
    refused(tool, img, "gone.qcow2.*No such file")


def test_bad_l2_offset_is_an_io_error(tool, tmp_path):
    img = make(tmp_path)
    sh("qemu-io", "-c", "write -P 1 0 64k", img)
    l1 = field(img, 40, ">Q")
    for bad in (0x8000000000000000 | (1 << 50), 0x8000000000000000 | 512,
                0x8000000000000000 | l1, 0x8000000000000000):
        patch(img, l1, ">Q", bad)
        p = qt(tool, img, "read", 0, 4096, check=False)
        if bad == 0x8000000000000000:
            assert p.returncode == 0 and p.stdout == bytes(4096)
        else:
            assert p.returncode == 2, p.stderr
            assert b"Input/output error" in p.stderr


def test_bad_data_cluster_is_an_io_error(tool, tmp_path):
    img = make(tmp_path)
    sh("qemu-io", "-c", "write -P 1 0 64k", img)
    l2 = field(img, field(img, 40, ">Q"), ">Q") & 0x00fffffffffffe00
    rt = field(img, 48, ">Q")
    copied, compressed = 1 << 63, 1 << 62
    for bad, rc in ((copied | 0x10200, 2), (copied | 0x100, 2),
                    (copied | rt, 2), (copied | 65536 | (1 << 57), 2),
                    (compressed | (1 << 48), 2), (compressed | 100, 2),
                    (compressed | 70000, 2)):
        patch(img, l2, ">Q", bad)
        p = qt(tool, img, "read", 0, 4096, check=False)
        assert p.returncode == rc, (hex(bad), p.stderr)
        p = qt(tool, img, "write", 0, 512, 3, check=False)
        assert p.returncode in (0, 2), (hex(bad), p.stderr)


def test_fuzzed_headers_never_crash(tool, tmp_path):
    """Random bytes over the header and tables: errors, never signals."""
    src = make(tmp_path, size="2M")
    sh("qemu-io", "-c", "write -P 1 0 1M", src)
    data = src.read_bytes()
    rnd = random.Random(7)
    img = tmp_path / "fuzz.qcow2"
    for _ in range(150):
        b = bytearray(data)
        for _ in range(rnd.randrange(1, 8)):
            pos = rnd.choice([rnd.randrange(0, 128),
                              rnd.randrange(0, len(b))])
            b[pos] = rnd.randrange(256)
        img.write_bytes(bytes(b))
        p = qt(tool, img, "read", 0, 65536, "write", 0, 4096, 5, "flush",
               check=False)
        assert p.returncode in (0, 1, 2), p.stderr
