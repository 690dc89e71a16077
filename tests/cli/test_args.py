"""The command line: every bad input gets exactly one line on stderr that
names what is wrong, exit status 1, and leaves nothing behind (no pidfile,
socket, symlink; the terminal not raw). Also -F, -h, -v and the options
and sizes that must be accepted.

Bad arguments are found before /dev/kvm is opened: those tests take no
`kvm` fixture and run on any host.
"""
import os
import re
import shutil
import signal
import tempfile

import pexpect
import pytest

from conftest import TIMEOUT, khyve_env, wait_for

NOBODY = 65534


def assert_one_line_error(r, *names):
    """Exit 1, nothing on stdout, one "khyve: ..." line naming @names."""
    assert r.rc == 1, r
    assert r.out == "", r
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("khyve: "), r.err
    assert r.err.endswith("\n")
    for name in names:
        assert name in lines[0], (name, lines[0])


@pytest.fixture
def files(tmp_path, guests_dir):
    """Files the cases refer to, by name: {tmp}, {hello}, {text}, ..."""
    (tmp_path / "text").write_text("#!/bin/sh\necho not a kernel\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    return {"tmp": tmp_path, "hello": guests_dir / "hello.elf",
            "rom": guests_dir / "bootrom.bin"}


def fill(args, files):
    return [str(a).format(**files) for a in args]


# (id, arguments, words the error line must contain). {hello} stands for a
# working kernel; each case is otherwise complete.
HELLO = "kexec,{hello},,"
BAD = [
    # Files to boot.
    ("kernel-missing", ["-f", "kexec,{tmp}/nokernel,,"],
     ["kernel", "nokernel", "No such file"]),
    ("kernel-empty-path", ["-f", "kexec,,,"], ["-f", "kernel"]),
    ("kernel-not-elf-nor-bzimage", ["-f", "kexec,{tmp}/text,,"],
     ["kernel", "/text", "neither an ELF vmlinux nor a bzImage"]),
    ("kernel-empty-file", ["-f", "kexec,{tmp}/empty,,"],
     ["kernel", "/empty", "empty"]),
    ("kernel-directory", ["-f", "kexec,{tmp}/dir,,"],
     ["kernel", "/dir", "not a regular file"]),
    ("kernel-fifo", ["-f", "kexec,{tmp}/fifo,,"],
     ["kernel", "/fifo", "not a regular file"]),
    ("kernel-device", ["-f", "kexec,/dev/zero,,"],
     ["kernel", "/dev/zero", "not a regular file"]),
    ("bootrom-missing", ["-f", "bootrom,{tmp}/norom"],
     ["bootrom", "norom", "No such file"]),
    ("bootrom-no-file", ["-f", "bootrom"], ["-f", "bootrom"]),
    ("bootrom-empty", ["-f", "bootrom,{tmp}/empty"], ["bootrom", "empty"]),
    ("bootrom-directory", ["-f", "bootrom,{tmp}/dir"],
     ["bootrom", "not a regular file"]),
    ("initrd-missing", ["-f", "kexec,{hello},{tmp}/noinitrd,"],
     ["initrd", "noinitrd", "No such file"]),
    ("initrd-directory", ["-f", "kexec,{hello},{tmp}/dir,"],
     ["initrd", "/dir", "not a regular file"]),
    ("initrd-inside-a-file", ["-f", "kexec,{hello},{tmp}/text/initrd,"],
     ["initrd", "text/initrd", "Not a directory"]),
    ("initrd-fifo", ["-f", "kexec,{hello},{tmp}/fifo,"],
     ["initrd", "/fifo", "not a regular file"]),
    ("boot-unknown-kind", ["-f", "floppy,{hello}"], ["-f floppy"]),
    ("boot-twice", ["-f", HELLO, "-f", HELLO], ["-f", "twice"]),
    ("nothing-to-boot", [], ["nothing to boot", "-f"]),
    # Sizes.
    ("mem-0", ["-m", "0", "-f", HELLO], ["-m 0"]),
    ("mem-12Q", ["-m", "12Q", "-f", HELLO], ["-m 12Q"]),
    ("mem-63M", ["-m", "63M", "-f", HELLO], ["-m 63M", "64M"]),
    ("mem-not-4K-multiple", ["-m", "65537K", "-f", HELLO],
     ["-m 65537K", "4K"]),
    ("mem-negative", ["-m", "-1", "-f", HELLO], ["-m -1"]),
    ("mem-empty", ["-m", "", "-f", HELLO], ["-m"]),
    ("mem-suffix-junk", ["-m", "64MX", "-f", HELLO], ["-m 64MX"]),
    ("mem-too-large", ["-m", "2T", "-f", HELLO], ["-m 2T"]),
    ("mem-overflow", ["-m", "99999999999999999999", "-f", HELLO],
     ["-m 99999999999999999999"]),
    ("mem-missing-argument", ["-f", HELLO, "-m"], ["-m"]),
    # vCPUs.
    ("cpus-0", ["-c", "0", "-f", HELLO], ["-c 0"]),
    ("cpus-word", ["-c", "two", "-f", HELLO], ["-c two"]),
    ("cpus-negative", ["-c", "-1", "-f", HELLO], ["-c -1"]),
    ("cpus-too-many", ["-c", "256", "-f", HELLO], ["-c 256"]),
    ("cpus-junk", ["-c", "2x", "-f", HELLO], ["-c 2x"]),
    # Options.
    ("unknown-option", ["-Z", "-f", HELLO], ["-Z"]),
    ("unknown-long-option", ["--bogus", "-f", HELLO], ["--bogus"]),
    ("stray-argument", ["-f", HELLO, "extra"], ["extra"]),
    # -s
    ("unknown-emulation", ["-s", "2,floppy-drive", "-f", HELLO],
     ["floppy-drive", "unknown emulation"]),
    ("not-supported-yet", ["-s", "2,ahci-hd,{tmp}/disk", "-f", HELLO],
     ["ahci-hd", "not supported yet"]),
    ("slot-used-twice", ["-s", "3,hostbridge", "-s", "3,lpc", "-f", HELLO],
     ["3", "twice"]),
    ("slot-used-twice-spelled-apart",
     ["-s", "3:0,hostbridge", "-s", "0:3:0,lpc", "-f", HELLO], ["twice"]),
    ("slot-32", ["-s", "32,lpc", "-f", HELLO], ["-s 32", "0-31"]),
    ("slot-func-8", ["-s", "0:8,lpc", "-f", HELLO], ["-s 0:8", "0-7"]),
    ("slot-bus-1", ["-s", "1:0:0,lpc", "-f", HELLO], ["-s 1:0:0", "bus"]),
    ("slot-word", ["-s", "x,lpc", "-f", HELLO], ["-s x"]),
    ("slot-empty", ["-s", ",lpc", "-f", HELLO], ["-s"]),
    ("slot-four-parts", ["-s", "0:0:0:0,lpc", "-f", HELLO], ["-s 0:0:0:0"]),
    ("slot-no-emulation", ["-s", "3", "-f", HELLO], ["-s 3", "emulation"]),
    # -l
    ("lpc-com3", ["-l", "com3,stdio", "-f", HELLO], ["com3", "com1"]),
    ("lpc-no-backend", ["-l", "com1", "-f", HELLO], ["-l com1", "backend"]),
    ("lpc-empty-backend", ["-l", "com1,", "-f", HELLO],
     ["-l com1", "backend"]),
    ("lpc-unknown-backend", ["-l", "com1,telnet", "-f", HELLO],
     ["com1,telnet", "backend"]),
    ("lpc-socket-no-path", ["-l", "com1,socket=", "-f", HELLO],
     ["com1,socket=", "path"]),
    ("lpc-socket-path-too-long",
     ["-l", "com1,socket={tmp}/" + "s" * 120, "-f", HELLO],
     ["com1,socket=", "too long"]),
    ("lpc-unknown-console-option", ["-l", "com1,stdio,color=on", "-f", HELLO],
     ["com1,stdio,color=on", "log=FILE"]),
    ("lpc-stdio-argument", ["-l", "com1,stdio=x", "-f", HELLO],
     ["com1,stdio=x", "no argument"]),
    ("lpc-null-argument", ["-l", "com2,null=x", "-f", HELLO],
     ["com2,null=x", "no argument"]),
    ("lpc-com1-twice", ["-l", "com1,null", "-l", "com1,stdio", "-f", HELLO],
     ["com1", "twice"]),
    # -U
    ("uuid-word", ["-U", "xyz", "-f", HELLO], ["-U xyz", "UUID"]),
    ("uuid-short", ["-U", "6ba7b810-9dad-11d1-80b4-00c04fd430c", "-f", HELLO],
     ["-U 6ba7b810-9dad-11d1-80b4-00c04fd430c"]),
    ("uuid-not-hex", ["-U", "6ba7b810-9dad-11d1-80b4-00c04fd430cg", "-f",
                      HELLO], ["-U"]),
    ("uuid-no-dashes", ["-U", "6ba7b8109dad11d180b400c04fd430c8ab", "-f",
                        HELLO], ["-U"]),
]


@pytest.mark.parametrize("args,names", [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])
def test_bad_input(khyve, files, args, names):
    """Each with -F and a socket console that must not be created, so
    "nothing left behind" is checked too; /dev/kvm is never reached."""
    tmp = files["tmp"]
    before = sorted(os.listdir(tmp))
    extra = ["-F", tmp / "khyve.pid", "-l", f"com2,socket={tmp}/com2.sock"]
    if any(a.startswith("com2") for a in args):
        extra = extra[:2]
    r = khyve.run(*extra, *fill(args, files),
                  env={"KHYVE_KVM_PATH": str(tmp / "kvm-must-not-be-opened")},
                  timeout=10)
    assert_one_line_error(r, *fill(names, files))
    assert "kvm-must-not-be-opened" not in r.err
    assert sorted(os.listdir(tmp)) == before


def bad_images(tmp, hello):
    """Images that pass the first look (ELF or bzImage magic) but that the
    loader must refuse: name -> (path, -f argument, words of the error)."""
    elf = hello.read_bytes()
    bz = bytearray(0x2000)
    bz[0x1fe:0x200] = b"\x55\xaa"
    bz[0x202:0x208] = b"HdrS\x00\x02"  # boot protocol 2.00
    images = {
        "elf-truncated-headers": (elf[:64], "program headers"),
        "elf-truncated-segment": (elf[:2000], "segment"),
        "elf-32-bit": (elf[:4] + b"\x01" + elf[5:], "64-bit"),
        "bzimage-protocol-2.00": (bytes(bz), "2.06"),
    }
    out = {}
    for name, (data, words) in images.items():
        path = tmp / name
        path.write_bytes(data)
        out[name] = (path, f"kexec,{path},,", words)
    rom = tmp / "rom-too-large"
    with open(rom, "wb") as f:
        f.truncate(17 << 20)
    out["bootrom-too-large"] = (rom, f"bootrom,{rom}", "too large")
    return out


@pytest.mark.usefixtures("kvm")
@pytest.mark.parametrize("name", ["elf-truncated-headers",
                                  "elf-truncated-segment", "elf-32-bit",
                                  "bzimage-protocol-2.00",
                                  "bootrom-too-large"])
def test_bad_image(khyve, tmp_path, guests_dir, name):
    """Found while loading, after /dev/kvm is open: still one line, exit 1,
    and no pidfile or console socket left."""
    path, boot, words = bad_images(tmp_path, guests_dir / "hello.elf")[name]
    before = sorted(os.listdir(tmp_path))
    r = khyve.run("-F", tmp_path / "pid", "-l",
                  f"com1,socket={tmp_path}/sock", "-f", boot)
    assert_one_line_error(r, str(path), words)
    assert sorted(os.listdir(tmp_path)) == before


def test_existing_pidfile_left_untouched(khyve, files):
    pidfile = files["tmp"] / "khyve.pid"
    pidfile.write_text("12345\n")
    r = khyve.run("-F", pidfile, "-f", khyve.guest("hello"))
    assert_one_line_error(r, str(pidfile), "exists")
    assert pidfile.read_text() == "12345\n"


# /dev/kvm missing or not usable: KHYVE_KVM_PATH points elsewhere. These
# reach vm_create(), but need no working KVM.


def test_kvm_missing(khyve, tmp_path):
    kvm = tmp_path / "kvm"
    r = khyve.run("-F", tmp_path / "pid", "-f", khyve.guest("hello"),
                  env={"KHYVE_KVM_PATH": str(kvm)})
    assert_one_line_error(r, str(kvm), "not found", "kvm_intel", "kvm_amd")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["regular-file", "dev-null"])
def test_kvm_not_a_kvm_device(khyve, tmp_path, kind):
    kvm = tmp_path / "kvm"
    if kind == "dev-null":
        kvm = "/dev/null"
    else:
        kvm.write_text("not a device\n")
    r = khyve.run("-f", khyve.guest("hello"),
                  env={"KHYVE_KVM_PATH": str(kvm)})
    assert_one_line_error(r, str(kvm), "not a KVM device")


@pytest.fixture
def world_dir():
    """A directory another user can enter (pytest's tmp_path is 0700)."""
    d = tempfile.mkdtemp(prefix="khyve-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


def as_nobody():
    """preexec_fn that drops root: root ignores file permissions."""
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def test_kvm_not_permitted(khyve, world_dir):
    kvm = os.path.join(world_dir, "kvm")
    with open(kvm, "w"):
        pass
    os.chmod(kvm, 0o600)
    if os.getuid() != 0:
        os.chmod(kvm, 0)
    r = khyve.run("-f", khyve.guest("hello"), env={"KHYVE_KVM_PATH": kvm},
                  preexec_fn=as_nobody)
    assert_one_line_error(r, kvm, "permission denied", "kvm group")


def test_unreadable_initrd(khyve, world_dir):
    initrd = os.path.join(world_dir, "initrd")
    with open(initrd, "w") as f:
        f.write("data")
    os.chmod(initrd, 0)
    r = khyve.run("-f", f"kexec,{khyve.guests}/hello.elf,{initrd},",
                  preexec_fn=as_nobody,
                  env={"KHYVE_KVM_PATH": os.path.join(world_dir, "nokvm")})
    assert_one_line_error(r, "initrd", initrd, "Permission denied")


# -- a bad argument on a real terminal: never left raw ---------------------

STTY = rb"([0-9a-f]+(?::[0-9a-f]+){10,})\r\n"


@pytest.mark.parametrize("args", [
    ["-l", "com1,stdio", "-m", "12Q", "-f", HELLO],
    ["-l", "com1,stdio", "-f", "kexec,{tmp}/nokernel,,"],
    ["-l", "com1,stdio", "-s", "2,ahci-hd,x", "-f", HELLO],
], ids=["bad-size", "missing-kernel", "not-supported-yet"])
def test_bad_input_on_a_terminal(khyve, files, args):
    script = 'stty -g; "$@"; echo "rc=$?"; stty -g'
    child = pexpect.spawn("/bin/sh", ["-c", script, "sh"] +
                          khyve.argv(fill(args, files)),
                          env=khyve_env(), timeout=TIMEOUT)
    child.expect(STTY)
    before = child.match.group(1)
    child.expect(rb"rc=(\d+)\r\n")
    assert child.match.group(1) == b"1"
    assert child.before.count(b"khyve: ") == 1, child.before
    child.expect(STTY)
    assert child.match.group(1) == before
    child.expect(pexpect.EOF)


# -- what must work --------------------------------------------------------


@pytest.mark.parametrize("opt", ["-h", "--help"])
def test_help(khyve, opt):
    r = khyve.run(opt)
    assert r.rc == 0 and r.err == ""
    assert r.out.startswith("Usage: khyve")
    for word in ["-f kexec", "-l comN", "-s SLOT", "-m SIZE", "-F FILE"]:
        assert word in r.out


@pytest.mark.parametrize("opt", ["-v", "--version"])
def test_version(khyve, opt):
    r = khyve.run(opt)
    assert r.rc == 0 and r.err == ""
    assert re.fullmatch(r"khyve \d+\.\d+\.\d+\n", r.out), r.out


SIZES = ["1G", "1g", "1024", "65536K", "65536k", "64M", "512m", "1GB",
         "2048M"]


@pytest.mark.parametrize("size", SIZES)
def test_size_accepted_without_kvm(khyve, tmp_path, size):
    """An accepted size gets as far as /dev/kvm (here: missing)."""
    r = khyve.run("-m", size, "-f", khyve.guest("hello"),
                  env={"KHYVE_KVM_PATH": str(tmp_path / "nokvm")})
    assert_one_line_error(r, "nokvm")


@pytest.mark.usefixtures("kvm")
@pytest.mark.parametrize("size", ["1G", "1g", "1024", "65536K"])
def test_size_boots(khyve, size):
    r = khyve.run("-m", size, "-l", "com1,stdio", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert "PASS hello" in r.out


@pytest.mark.usefixtures("kvm")
def test_flags_accepted(khyve):
    r = khyve.run("-A", "-u", "-H", "-P", "-w", "-W", "-x", "-Y", "-c", "2",
                  "-l", "com1,stdio", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert "PASS hello" in r.out


@pytest.mark.usefixtures("kvm")
def test_grouped_flags_accepted(khyve):
    r = khyve.run("-AuHPwWxY", "-l", "com1,stdio", "-f", khyve.guest("hello"))
    assert r.rc == 0, r.err
    assert "PASS hello" in r.out


@pytest.mark.usefixtures("kvm")
def test_bhyve_bootrom_spelling(khyve):
    """bhyve spells firmware `-l bootrom,FILE`."""
    r = khyve.run("-l", "com1,stdio", "-l",
                  f"bootrom,{khyve.guests}/bootrom.bin")
    assert r.rc == 0, r.err
    assert "GUEST-DONE" in r.out


@pytest.mark.usefixtures("kvm")
def test_pidfile_while_running(khyve, tmp_path):
    pidfile = tmp_path / "khyve.pid"
    p = khyve.start("-F", pidfile, "-l", "com1,stdio", "-f",
                    khyve.guest("powerbutton"))
    p.expect("READY")
    assert pidfile.read_text() == f"{p.pid}\n"
    p.signal(signal.SIGTERM)
    assert p.wait() == 0, p.err
    assert not pidfile.exists()


@pytest.mark.usefixtures("kvm")
@pytest.mark.parametrize("cmdline,status", [("", 0), ("how=kbd", 2),
                                            ("how=triple", 3)])
def test_pidfile_removed_at_exit(khyve, tmp_path, cmdline, status):
    pidfile = tmp_path / "khyve.pid"
    guest = "reset" if cmdline else "hello"
    r = khyve.run("-F", pidfile, "-f", khyve.guest(guest, cmdline))
    assert r.rc == status, r.err
    assert not pidfile.exists()


@pytest.mark.usefixtures("kvm")
def test_pidfile_removed_after_hard_stop(khyve, tmp_path):
    pidfile = tmp_path / "khyve.pid"
    p = khyve.start("-F", pidfile, "-l", "com1,stdio", "-f",
                    khyve.guest("echo"))
    p.expect("ECHO-READY")
    p.signal(signal.SIGTERM)
    wait_for(lambda: "power button" in p.err, what="the power button")
    p.signal(signal.SIGTERM)
    assert p.wait() == 1
    assert not pidfile.exists()


@pytest.mark.usefixtures("kvm")
def test_pidfile_in_missing_directory(khyve, tmp_path):
    """The pidfile is created last: its error leaves no console behind."""
    sock = tmp_path / "com1.sock"
    r = khyve.run("-F", tmp_path / "no/dir/pid", "-l", f"com1,socket={sock}",
                  "-f", khyve.guest("hello"))
    assert_one_line_error(r, "-F", "no/dir/pid")
    assert not sock.exists()


@pytest.mark.usefixtures("kvm")
def test_default_bridge_slot_taken(khyve):
    """-s 0,lpc leaves no room for the host bridge khyve adds at slot 0."""
    r = khyve.run("-s", "0,lpc", "-f", khyve.guest("hello"))
    assert_one_line_error(r, "slot")
