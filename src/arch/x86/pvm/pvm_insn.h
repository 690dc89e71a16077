/*
 * Decoder for the x86-64 instructions that PVM's in-kernel emulator gives up
 * on and khyve completes in user space (PVM.md, "Emulation failures"): int3,
 * cmpxchg8b/cmpxchg16b and the standard-format xsave family. Everything
 * else is rejected, though a few well-known failing instructions get a name
 * so the report on the way out can say what the guest ran.
 */
#ifndef KHYVE_PVM_INSN_H
#define KHYVE_PVM_INSN_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PVM_INSN_MAX_LEN 15 /* SDM Vol 2 §2.3.11 */
#define PVM_REG_NONE 0xff

enum pvm_insn_op {
	PVM_INSN_NONE,
	PVM_INSN_INT3,
	PVM_INSN_CMPXCHG8B,
	PVM_INSN_CMPXCHG16B,
	PVM_INSN_XSAVE,
	PVM_INSN_XSAVEOPT,
	PVM_INSN_XRSTOR,
};

enum pvm_seg {
	PVM_SEG_DEFAULT,
	PVM_SEG_ES,
	PVM_SEG_CS,
	PVM_SEG_SS,
	PVM_SEG_DS,
	PVM_SEG_FS,
	PVM_SEG_GS,
};

struct pvm_insn {
	enum pvm_insn_op op;
	const char *name;  /* mnemonic; also set for known but unhandled ones */
	uint8_t len;       /* decoded length, 0 unless op != PVM_INSN_NONE */
	bool lock;
	bool rep;          /* F3, the last of F2/F3 wins */
	bool repne;        /* F2 */
	bool opsize;       /* 66 */
	bool addr32;       /* 67: 32-bit effective address */
	uint8_t rex;       /* the REX byte right before the opcode, or 0 */
	enum pvm_seg seg;  /* last segment-override prefix */
	/* The memory operand (ModRM forms). */
	bool has_modrm;
	uint8_t modrm;
	bool rip_relative;
	uint8_t base;      /* 0-15 (rax..r15) or PVM_REG_NONE */
	uint8_t index;     /* 0-15 or PVM_REG_NONE */
	uint8_t scale;     /* 1, 2, 4 or 8 */
	int32_t disp;
};

/*
 * Decode the instruction at the start of @bytes (@size bytes fetched, at
 * most 15 are looked at) as 64-bit-mode code. 0 and @insn filled when it is
 * one we emulate; -ENOSYS when it is something else (insn->name may still
 * say what); -EINVAL when the bytes end or the 15-byte limit is reached
 * before the instruction does. Never reads beyond @size.
 */
int pvm_insn_decode(struct pvm_insn *insn, const uint8_t *bytes, size_t size);
/*
 * The effective address (offset in the segment) of the memory operand:
 * base + index * scale + disp, RIP-relative to the next instruction, and
 * truncated to 32 bits under an address-size prefix.
 */
uint64_t pvm_insn_effective_addr(const struct pvm_insn *insn,
				 const struct kvm_regs *regs);
/*
 * The linear address of the memory operand in 64-bit mode: the effective
 * address plus the FS or GS base (the other segment bases are 0 there).
 */
uint64_t pvm_insn_linear_addr(const struct pvm_insn *insn,
			      const struct kvm_regs *regs,
			      const struct kvm_sregs *sregs);
/* True when the operand is addressed through SS (faults are then #SS). */
bool pvm_insn_uses_ss(const struct pvm_insn *insn);

#endif
