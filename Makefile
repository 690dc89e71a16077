# A thin wrapper around Meson: see README.md.
BUILD ?= build
ASAN_BUILD ?= build-asan
PYTHON ?= /usr/bin/python3
KHYVE = $(BUILD)/src/khyve
GUESTS = $(BUILD)/tests/guests
GUESTKIT = $(BUILD)/guestkit
# The kernel command line the guest kit needs on any host (see
# tools/guestkit/README.md: the extra parameters matter on PVM hosts only).
KIT_CMDLINE = $(shell cat tools/guestkit/cmdline)

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = tests/fuzz/fuzz_kernel_image tests/unit/pvm/fuzz_pvm_insn
FUZZ_TARGETS += tests/fuzz/fuzz_virtqueue
FUZZ_TARGETS += tests/fuzz/fuzz_netbe
FUZZ_TARGETS += tests/fuzz/fuzz_p9
FUZZ_TARGETS += tests/fuzz/fuzz_qcow2
FUZZ_TARGETS += tests/fuzz/fuzz_blk_conf
FUZZ_TARGETS += tests/fuzz/fuzz_vsock

.PHONY: all check demo bench fuzz guestkit deps-build deps-test clean

all: deps-build $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps-build:
	@tools/deps.sh build

deps-test:
	@tools/deps.sh build test

$(BUILD)/build.ninja:
	meson setup $(BUILD)

# The sanitizer build runs the unit tests (the test guests need no
# sanitizer and are not built there).
$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined \
		-Db_lundef=false -Dguests=false

check: deps-test $(BUILD)/build.ninja $(ASAN_BUILD)/build.ninja guestkit
	ninja -C $(BUILD)
	meson test -C $(BUILD) --print-errorlogs --suite unit
	ninja -C $(ASAN_BUILD)
	meson test -C $(ASAN_BUILD) --print-errorlogs --suite unit
	# The image formats' interoperability storms, under the sanitizers too.
	KHYVE_BUILD=$(abspath $(ASAN_BUILD)) $(PYTHON) -m pytest -q tests/block
	KHYVE=$(abspath $(KHYVE)) KHYVE_GUESTS=$(abspath $(GUESTS)) \
		KHYVE_GUESTKIT=$(abspath $(GUESTKIT)) \
		$(PYTHON) -m pytest -q tests

# The default guest: the guest kit's Linux with a busybox shell on the
# terminal (exit with `poweroff -f`).
demo: all guestkit
	$(KHYVE) -A -m 512M -l com1,stdio \
		-f kexec,$(GUESTKIT)/vmlinux,$(GUESTKIT)/initramfs.cpio,"$(KIT_CMDLINE) khyve.task=shell"

# The boot benchmarks (run.py), then the device paths through the tier-2
# harness (devices.py: disk, qcow2, 9P, net, vsock); both always run.
bench: all
	@tools/deps.sh bench
	$(PYTHON) tools/bench/run.py --khyve $(KHYVE) --guests $(GUESTS); \
	rc=$$?; \
	$(PYTHON) tools/bench/devices.py --devbench $(BUILD)/tools/bench/devbench \
		--khyve $(KHYVE) || rc=1; \
	exit $$rc

# Each libFuzzer target for FUZZ_SECONDS (clang; not part of make check).
fuzz: deps-build
	@tools/deps.sh fuzz
	[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) -Dguests=false
	ninja -C $(FUZZ_BUILD) $(FUZZ_TARGETS)
	set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$(basename $$t); \
		seeds=tests/fuzz/corpus/$$(basename $$t); [ -d $$seeds ] || seeds=; \
		$(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
			$(FUZZ_BUILD)/corpus/$$(basename $$t) $$seeds; \
	done

guestkit:
	@tools/deps.sh guestkit
	tools/guestkit/build.sh $(GUESTKIT)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
