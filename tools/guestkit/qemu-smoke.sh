#!/bin/bash
# khyve guest kit: smoke test of a built kit with QEMU/KVM (not with khyve).
#
#   tools/guestkit/qemu-smoke.sh OUTDIR [TEST...]
#
# TESTs: cmd shell powerbutton smp2 (default: all).  Each boots OUTDIR/vmlinux
# + OUTDIR/initramfs.cpio, checks the /init markers, and prints one line:
#   PASS|FAIL <test> <wall seconds> <detail>
# Logs go to OUTDIR/smoke/<test>.log.  A boot takes 25-60 s on a kvm_pvm
# host (more when the other core is busy); each test has a 300 s limit and
# stops early on "KVM internal error" (an emulation failure) or a panic.
# Needs qemu-system-x86 and socat (Debian packages).
# KHYVE_CMDLINE overrides the host-specific part of the kernel command line.
set -u

[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [cmd|shell|powerbutton|smp2...]" >&2; exit 2; }
OUT=$(cd "$1" && pwd); shift
TESTS=${*:-cmd shell powerbutton smp2}
for p in qemu-system-x86_64 socat; do
	command -v $p >/dev/null || { echo "missing $p: apt-get install -y qemu-system-x86 socat" >&2; exit 1; }
done
LOGDIR="$OUT/smoke"; mkdir -p "$LOGDIR"
CMDLINE=${KHYVE_CMDLINE:-"console=ttyS0 panic=-1 noxsave clearcpuid=popcnt,smap,cx16,erms,fsrm tsc=reliable noreplace-smp rodata=off percpu_alloc=page no_int3_selftest"}
LIMIT=300
failed=0

# boot NAME MACHINE SMP APPEND [STDIN]: starts QEMU in the background.
boot() {
	local name=$1 m=$2 smp=$3 append=$4 in=${5:-/dev/null}
	LOG="$LOGDIR/$name.log"; SOCK="$LOGDIR/$name.sock"; rm -f "$SOCK"
	T0=$(date +%s.%N)
	qemu-system-x86_64 -nodefaults -no-user-config -enable-kvm \
		-cpu host,-arch-capabilities -M "$m" -smp "$smp" -m 256 \
		-display none -serial stdio -no-reboot \
		-monitor unix:"$SOCK",server,nowait \
		-kernel "$OUT/vmlinux" -initrd "$OUT/initramfs.cpio" \
		-append "$CMDLINE $append" <"$in" >"$LOG" 2>&1 &
	QPID=$!
}
# wait_for PATTERN: until the log matches, QEMU exits, fails, or the limit.
wait_for() {
	local i
	for ((i = 0; i < LIMIT; i++)); do
		grep -aq -- "$1" "$LOG" && return 0
		grep -aq "KVM internal error\|Kernel panic" "$LOG" && return 1
		kill -0 $QPID 2>/dev/null || { grep -aq -- "$1" "$LOG"; return; }
		sleep 1
	done
	return 1
}
finish() {	# finish NAME OK DETAIL
	local i
	for ((i = 0; i < 30; i++)); do kill -0 $QPID 2>/dev/null || break; sleep 1; done
	kill $QPID 2>/dev/null; wait $QPID 2>/dev/null
	local wall; wall=$(printf %.1f "$(echo "$(date +%s.%N) - $T0" | bc)")
	if [ "$2" = 1 ]; then echo "PASS $1 $wall $3"; else echo "FAIL $1 $wall $3 (log: $LOG)"; failed=1; fi
}

for t in $TESTS; do
	case $t in
	cmd)
		boot cmd microvm 1 "khyve.cmd=echo%20smoke-%24((6*7))"
		ok=0; wait_for "KHYVE-DONE" && grep -aq "^smoke-42" "$LOG" && wait_for "reboot: Power down" && ok=1
		finish cmd $ok "$(grep -a 'KHYVE-DONE' "$LOG" | tr -d '\r')"
		;;
	shell)
		fifo="$LOGDIR/shell.in"; rm -f "$fifo"; mkfifo "$fifo"
		boot shell microvm 1 "khyve.task=shell" "$fifo"
		exec 3>"$fifo"
		ok=0
		if wait_for "KHYVE-READY"; then
			sleep 3
			printf 'sleep 30 &\n' >&3; sleep 3
			printf 'jobs; kill %%1; echo "tty=$(tty)"\n' >&3; sleep 5
			printf 'exit\n' >&3
			wait_for "KHYVE-DONE" && grep -aq "tty=/dev/ttyS0" "$LOG" &&
				grep -aq "Running.*sleep 30" "$LOG" && ok=1
		fi
		exec 3>&-
		finish shell $ok "job control on /dev/ttyS0"
		;;
	powerbutton)
		boot powerbutton q35 1 "khyve.task=none"
		ok=0
		if wait_for "KHYVE-READY"; then
			sleep 3
			echo system_powerdown | socat - unix-connect:"$SOCK" >/dev/null 2>&1
			wait_for "KHYVE-POWERBUTTON" && wait_for "reboot: Power down" && ok=1
		fi
		finish powerbutton $ok "q35 system_powerdown"
		;;
	smp2)
		boot smp2 microvm 2 "kvm_nohypercall khyve.task=info"
		ok=0; wait_for "KHYVE-DONE" && grep -aq "cpus online: 0-1" "$LOG" && ok=1
		finish smp2 $ok "$(grep -a 'cpus online' "$LOG" | tr -d '\r')"
		;;
	*) echo "unknown test $t" >&2; failed=1 ;;
	esac
done
exit $failed
