/*
 * libFuzzer target for the PVM fix-ups: the decoder on any bytes, then the
 * whole pvm_fixup() on a fake 64-bit vCPU whose registers, control
 * registers and guest RAM (page tables included) come from the input.
 * Invariants checked: a decoded length never exceeds the bytes given or 15,
 * and a fix-up that is refused changes nothing in the vCPU state.
 *
 * Built by meson when the C compiler is clang (CC=clang meson setup ...):
 *   ninja -C build tests/unit/pvm/fuzz_pvm_insn
 *   build/tests/unit/pvm/fuzz_pvm_insn -max_total_time=60
 * Standalone, from the top of the tree:
 *   clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *     -Iinclude/uapi -Isrc tests/unit/pvm/fuzz_insn.c src/arch/x86/pvm/[a-z]*.c \
 *     src/core/guest_mem.c src/core/log.c -lpthread -o fuzz_pvm_insn
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/pvm/pvm_fixup.h"
#include "arch/x86/pvm/pvm_insn.h"
#include "arch/x86/pvm/pvm_walk.h"
#include "core/vcpu.h"
#include "core/vm.h"

#define RAM_SIZE (1ULL << 20)

struct fuzz_head {
	uint8_t insn[15];
	uint8_t insn_size;
	uint8_t mode;      /* bits: LA57, SMAP, WP, AC, CPL3, OSXSAVE, NXE, no-payload */
	uint8_t pad[7];
	uint64_t gpr[6];   /* rax rbx rcx rdx rsi rdi */
	uint64_t rip;
	uint64_t cr3;
	uint64_t fs_base;
	uint64_t gs_base;
};

static struct vm vm;
static struct vcpu vcpu;
static struct kvm_run run;

static void fuzz_decoder(const uint8_t *data, size_t size)
{
	struct pvm_insn insn;
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	memset(&regs, 0x5a, sizeof(regs));
	memset(&sregs, 0xa5, sizeof(sregs));
	if (pvm_insn_decode(&insn, data, size) == 0) {
		if (insn.op == PVM_INSN_NONE || !insn.len || insn.len > size ||
		    insn.len > PVM_INSN_MAX_LEN)
			abort();
		(void)pvm_insn_linear_addr(&insn, &regs, &sregs);
		(void)pvm_insn_uses_ss(&insn);
	} else if (insn.len || insn.op != PVM_INSN_NONE) {
		abort();
	}
}

static void fuzz_fixup(const uint8_t *data, size_t size)
{
	struct kvm_sync_regs *s = &run.s.regs;
	struct kvm_sync_regs before;
	struct fuzz_head h;
	char report[256];
	int ret;

	if (size < sizeof(h))
		return;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	size -= sizeof(h);

	if (!vm.mem.host) {
		guest_mem_layout(&vm.mem, RAM_SIZE);
		vm.mem.host = malloc(RAM_SIZE);
		vm.mem.fd = -1;
		vm.vm_fd = -1;
		vcpu.vm = &vm;
		vcpu.fd = -1;
		vcpu.run = &run;
	}
	memset(vm.mem.host, 0, RAM_SIZE);
	memcpy(vm.mem.host, data, size < RAM_SIZE ? size : RAM_SIZE);

	memset(&run, 0, sizeof(run));
	run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run.kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS |
			     KVM_SYNC_X86_EVENTS;
	run.emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run.emulation_failure.ndata = 3;
	run.emulation_failure.flags =
		KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
	run.emulation_failure.insn_size = h.insn_size;
	memcpy(run.emulation_failure.insn_bytes, h.insn, sizeof(h.insn));

	s->regs.rax = h.gpr[0];
	s->regs.rbx = h.gpr[1];
	s->regs.rcx = h.gpr[2];
	s->regs.rdx = h.gpr[3];
	s->regs.rsi = h.gpr[4];
	s->regs.rdi = h.gpr[5];
	s->regs.rip = h.rip;
	s->regs.rflags = 0x2 | (h.mode & 8 ? PVM_RFLAGS_AC : 0);
	s->sregs.cr0 = PVM_CR0_PG | 1 | (h.mode & 4 ? PVM_CR0_WP : 0);
	s->sregs.cr3 = h.cr3 % RAM_SIZE;
	s->sregs.cr4 = (h.mode & 1 ? PVM_CR4_LA57 : 0) |
		       (h.mode & 2 ? PVM_CR4_SMAP : 0) |
		       (h.mode & 32 ? PVM_CR4_OSXSAVE : 0);
	s->sregs.efer = PVM_EFER_LMA | (h.mode & 64 ? PVM_EFER_NXE : 0);
	s->sregs.cs.l = 1;
	s->sregs.ss.dpl = h.mode & 16 ? 3 : 0;
	s->sregs.fs.base = h.fs_base;
	s->sregs.gs.base = h.gs_base;
	s->events.flags = h.mode & 128 ? 0 : KVM_VCPUEVENT_VALID_PAYLOAD;

	before = *s;
	ret = pvm_fixup(&vcpu);
	if (ret && (run.kvm_dirty_regs || memcmp(&before, s, sizeof(before))))
		abort();
	pvm_describe_failure(&vcpu, report, sizeof(report));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decoder(data, size);
	fuzz_fixup(data, size);
	return 0;
}
