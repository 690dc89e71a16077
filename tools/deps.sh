#!/bin/sh
# Install the Debian packages a make target needs: tools/deps.sh SET...
# SET is build, test, bench, fuzz or guestkit. As root, missing packages are
# installed with apt-get; as anyone else, the one command to run is printed.
set -eu

pkgs_build="gcc binutils make meson ninja-build pkg-config libcmocka-dev
 liburing-dev zlib1g-dev libzstd-dev liblz4-dev liblzma-dev libjson-c-dev
 acpica-tools python3 libslirp-dev libglib2.0-dev"
pkgs_test="python3 python3-pytest python3-pexpect socat netcat-openbsd
 qemu-utils e2fsprogs iproute2"
pkgs_bench="qemu-system-x86 qemu-utils fio python3"
pkgs_fuzz="clang libclang-rt-14-dev"
pkgs_guestkit="linux-source-6.1 build-essential bc bison flex libelf-dev
 libssl-dev busybox-static cpio xz-utils"

wanted=""
for set in "$@"; do
	case "$set" in
	build) wanted="$wanted $pkgs_build" ;;
	test) wanted="$wanted $pkgs_test" ;;
	bench) wanted="$wanted $pkgs_bench" ;;
	fuzz) wanted="$wanted $pkgs_fuzz" ;;
	guestkit) wanted="$wanted $pkgs_guestkit" ;;
	*) echo "tools/deps.sh: unknown package set '$set'" >&2; exit 2 ;;
	esac
done

missing=""
for p in $wanted; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "khyve needs these Debian packages; run:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "Installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
