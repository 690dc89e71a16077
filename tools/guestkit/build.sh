#!/bin/bash
# khyve guest kit builder.
#
#   tools/guestkit/build.sh OUTDIR
#
# Builds, from Debian packages only:
#   OUTDIR/vmlinux          ELF kernel with a PVH note (boot it directly)
#   OUTDIR/bzImage          the same kernel, LZ4-compressed bzImage
#   OUTDIR/initramfs.cpio   uncompressed newc cpio: busybox + /init
#   OUTDIR/MANIFEST         versions and hashes
#   OUTDIR/kernel.config    the kernel's .config
#
# Cached and idempotent: each stage records the hash of its inputs and is
# skipped when they are unchanged and its output exists.  The kernel key
# covers the linux-source-6.1 package version, the patches and
# kernel.fragment; the initramfs key covers init, fstab and the
# busybox-static version.  Set KHYVE_GUESTKIT_FORCE=1 to rebuild everything.
# Environment: JOBS (default 2), NICE (default 10).
set -euo pipefail

KIT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KIT_FORMAT=1            # bump when the build procedure changes its outputs
SRC_TARBALL=/usr/src/linux-source-6.1.tar.xz
JOBS=${JOBS:-2}
NICE=${NICE:-10}

die() { echo "guestkit: error: $*" >&2; exit 1; }
log() { echo "guestkit: $*" >&2; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

# --- required Debian packages -------------------------------------------
PKGS="linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev busybox-static cpio xz-utils lz4"
missing=
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ]; then
		log "installing:$missing"
		DEBIAN_FRONTEND=noninteractive apt-get install -y $missing ||
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $missing; } ||
			die "apt-get install failed"
	else
		echo "guestkit: missing packages; run:" >&2
		echo "  sudo apt-get install -y$missing" >&2
		exit 1
	fi
fi
[ -r "$SRC_TARBALL" ] || die "$SRC_TARBALL not found (package linux-source-6.1)"

pkgver() { dpkg-query -W -f='${Version}' "$1"; }
sha() { sha256sum "$@" | cut -d' ' -f1; }
LINUX_PKG_VER=$(pkgver linux-source-6.1)
BUSYBOX_PKG_VER=$(pkgver busybox-static)

shopt -s nullglob
PATCHES=("$KIT_DIR"/patches/*.patch)
shopt -u nullglob

# Hash of the patch series (names and contents, in order).
patches_hash() {
	local p
	for p in "${PATCHES[@]}"; do
		printf '%s %s\n' "$(basename "$p")" "$(sha "$p")"
	done | sha256sum | cut -d' ' -f1
}

FORCE=${KHYVE_GUESTKIT_FORCE:-0}
SRC_KEY=$(printf 'format=%s\nlinux-source-6.1=%s\npatches=%s\n' \
	"$KIT_FORMAT" "$LINUX_PKG_VER" "$(patches_hash)" | sha256sum | cut -d' ' -f1)
KERNEL_KEY=$(printf 'src=%s\nfragment=%s\n' \
	"$SRC_KEY" "$(sha "$KIT_DIR/kernel.fragment")" | sha256sum | cut -d' ' -f1)
INITRAMFS_KEY=$(printf 'format=%s\ninit=%s\nfstab=%s\nbusybox-static=%s\nvsock=%s\n' \
	"$KIT_FORMAT" "$(sha "$KIT_DIR/init")" "$(sha "$KIT_DIR/fstab")" "$BUSYBOX_PKG_VER" \
	"$(sha "$KIT_DIR/khyve-vsock.c")" |
	sha256sum | cut -d' ' -f1)

SRC="$OUT/src"
LOGS="$OUT/logs"
mkdir -p "$LOGS"

key_is() { [ "$FORCE" != 1 ] && [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# Reproducible kernel build metadata.
export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 1970"
export KBUILD_BUILD_USER=khyve KBUILD_BUILD_HOST=guestkit KBUILD_BUILD_VERSION=1
kmake() { nice -n "$NICE" make -C "$SRC" -j"$JOBS" "$@"; }

# --- stage 1: source tree ------------------------------------------------
if key_is "$OUT/.src.key" "$SRC_KEY" && [ -f "$SRC/Makefile" ]; then
	log "source tree up to date"
else
	log "unpacking $SRC_TARBALL ($LINUX_PKG_VER)"
	rm -rf "$SRC" "$SRC.tmp" "$OUT/.src.key" "$OUT/.config.key" "$OUT/.kernel.key"
	mkdir -p "$SRC.tmp"
	nice -n "$NICE" tar -xf "$SRC_TARBALL" -C "$SRC.tmp" --strip-components=1
	for p in "${PATCHES[@]}"; do
		log "applying $(basename "$p")"
		patch -p1 -N -s -d "$SRC.tmp" <"$p" || die "patch $(basename "$p") failed"
	done
	mv "$SRC.tmp" "$SRC"
	echo "$SRC_KEY" >"$OUT/.src.key"
fi

# --- stage 2: configuration ----------------------------------------------
verify_config() {
	local cfg="$SRC/.config" bad=0 line sym
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			if ! grep -qxF -- "$line" "$cfg"; then
				echo "guestkit: config: wanted '$line', got '$(grep -E "^(# )?${line%%=*}[= ]" "$cfg" || echo "${line%%=*} absent")'" >&2
				bad=1
			fi ;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }; sym=${sym%% *}
			if grep -qE "^$sym=" "$cfg"; then
				echo "guestkit: config: wanted '$line', got '$(grep -E "^$sym=" "$cfg")'" >&2
				bad=1
			fi ;;
		esac
	done <"$KIT_DIR/kernel.fragment"
	return $bad
}

if key_is "$OUT/.config.key" "$KERNEL_KEY" && [ -f "$SRC/.config" ]; then
	log "kernel config up to date"
else
	log "configuring: tinyconfig + kernel.fragment"
	rm -f "$OUT/.config.key" "$OUT/.kernel.key"
	kmake tinyconfig >"$LOGS/config.log" 2>&1 || die "make tinyconfig failed (see $LOGS/config.log)"
	(cd "$SRC" && ./scripts/kconfig/merge_config.sh -m .config "$KIT_DIR/kernel.fragment") \
		>>"$LOGS/config.log" 2>&1 || die "merge_config.sh failed (see $LOGS/config.log)"
	kmake olddefconfig >>"$LOGS/config.log" 2>&1 || die "make olddefconfig failed (see $LOGS/config.log)"
	verify_config || die "kernel.fragment did not take (dependencies missing?)"
	echo "$KERNEL_KEY" >"$OUT/.config.key"
fi

# --- stage 3: kernel -----------------------------------------------------
if key_is "$OUT/.kernel.key" "$KERNEL_KEY" && [ -f "$OUT/vmlinux" ] && [ -f "$OUT/bzImage" ]; then
	log "kernel up to date"
else
	log "building kernel (make -j$JOBS bzImage vmlinux; ~5 min on 2 cores; log: $LOGS/kernel.log)"
	rm -f "$OUT/.kernel.key"
	t0=$(date +%s)
	if ! kmake bzImage vmlinux >"$LOGS/kernel.log" 2>&1; then
		tail -n 30 "$LOGS/kernel.log" >&2
		die "kernel build failed (see $LOGS/kernel.log)"
	fi
	log "kernel built in $(( $(date +%s) - t0 )) s"
	cp "$SRC/vmlinux" "$OUT/vmlinux.tmp" && mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
	cp "$SRC/arch/x86/boot/bzImage" "$OUT/bzImage.tmp" && mv "$OUT/bzImage.tmp" "$OUT/bzImage"
	cp "$SRC/.config" "$OUT/kernel.config"
	echo "$KERNEL_KEY" >"$OUT/.kernel.key"
fi

# --- stage 4: initramfs --------------------------------------------------
if key_is "$OUT/.initramfs.key" "$INITRAMFS_KEY" && [ -f "$OUT/initramfs.cpio" ]; then
	log "initramfs up to date"
else
	log "building initramfs.cpio"
	rm -f "$OUT/.initramfs.key"
	R="$OUT/initramfs.root"
	rm -rf "$R"
	mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,mnt}
	install -m 0755 /bin/busybox "$R/bin/busybox"
	install -m 0755 "$KIT_DIR/init" "$R/init"
	install -m 0644 "$KIT_DIR/fstab" "$R/etc/fstab"
	# busybox has no vsock client: a small static one for the tests.
	gcc -static -O2 -s -o "$R/bin/khyve-vsock" "$KIT_DIR/khyve-vsock.c" ||
		die "building khyve-vsock failed"
	ln -s busybox "$R/bin/sh"
	chmod 0755 "$R"/{bin,sbin,usr,usr/bin,usr/sbin,dev,proc,sys,root,etc,mnt}
	chmod 1777 "$R/tmp"
	# Applets are run by busybox sh directly (standalone shell); only sh is
	# linked, so the archive stays a few entries long (each costs boot time).
	find "$R" -exec touch -h -d @0 {} +
	(cd "$R" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) >"$OUT/initramfs.cpio.tmp"
	mv "$OUT/initramfs.cpio.tmp" "$OUT/initramfs.cpio"
	rm -rf "$R"
	echo "$INITRAMFS_KEY" >"$OUT/.initramfs.key"
fi

# --- stage 5: manifest ---------------------------------------------------
{
	echo "# khyve guest kit build manifest"
	echo "kit-format: $KIT_FORMAT"
	echo "linux-source-6.1: $LINUX_PKG_VER"
	echo "kernel-release: $(cat "$SRC/include/config/kernel.release" 2>/dev/null || echo unknown)"
	echo "busybox-static: $BUSYBOX_PKG_VER"
	echo "gcc: $(gcc -dumpfullversion 2>/dev/null || echo unknown) ($(pkgver gcc 2>/dev/null || echo ?))"
	echo "binutils: $(pkgver binutils 2>/dev/null || echo ?)"
	echo "kernel-key: $KERNEL_KEY"
	echo "initramfs-key: $INITRAMFS_KEY"
	echo "fragment-sha256: $(sha "$KIT_DIR/kernel.fragment")"
	echo "init-sha256: $(sha "$KIT_DIR/init")"
	echo "fstab-sha256: $(sha "$KIT_DIR/fstab")"
	for p in "${PATCHES[@]}"; do
		echo "patch: $(basename "$p") $(sha "$p")"
	done
	for f in vmlinux bzImage initramfs.cpio kernel.config; do
		echo "file: $f $(stat -c %s "$OUT/$f") $(sha "$OUT/$f")"
	done
} >"$OUT/MANIFEST.tmp"
mv "$OUT/MANIFEST.tmp" "$OUT/MANIFEST"
log "done: $OUT/{vmlinux,bzImage,initramfs.cpio,MANIFEST}"
