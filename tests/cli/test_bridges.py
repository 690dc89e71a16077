"""The host and LPC bridges: one of each, at the slot -s gives or at the
default one; a clash with a default slot is explained (regressions: a
second bridge used to reuse the first's device at two slots, and a taken
slot 0 was reported as an -s the user never typed)."""
import pytest

from test_args import assert_one_line_error


@pytest.mark.parametrize("args,names", [
    (["-s", "5,lpc", "-s", "31,lpc"], ["-s 31:0,lpc", "one LPC bridge", "5:0"]),
    (["-s", "0,hostbridge", "-s", "3,amd_hostbridge"],
     ["-s 3:0,amd_hostbridge", "one host bridge"]),
    (["-s", "0,lpc"], ["slot 0:0", "hostbridge", "-s N,hostbridge"]),
])
def test_bridge_errors(khyve, kvm, args, names):
    r = khyve.run(*args, "-f", khyve.guest("pci"))
    assert_one_line_error(r, *names)


def test_bridges_elsewhere(khyve, kvm):
    """-s 0,lpc with the host bridge moved: the LPC bridge answers at 0:0
    (the pci guest, which expects the defaults, then fails on purpose)."""
    r = khyve.run("-s", "3,hostbridge", "-s", "0,lpc", "-l", "com1,stdio",
                  "-f", khyve.guest("pci"))
    assert "PCI 00:00.0 8086:7000 class 060100" in r.out, r
    assert r.rc == 3
