/*
 * x86-64 decoder for the PVM fix-ups; see pvm_insn.h.
 *
 * The bytes come from a hostile guest, so the decoder is a cursor that
 * refuses to read past min(size, 15) bytes: a truncated instruction, or one
 * that would be longer than 15 bytes (the CPU raises #GP for those), is
 * -EINVAL, never a read out of bounds. Only 64-bit mode is decoded: REX is
 * a prefix, CS/DS/ES/SS overrides are accepted but have base 0 (SDM Vol 1
 * §3.3.7.1), and the default address size is 64 bits.
 *
 * Accepted: CC (int3); 0F C7 /1 with a memory operand (cmpxchg8b, REX.W
 * makes it cmpxchg16b; LOCK, F2/F3 hints, 66 and segment prefixes are
 * allowed); 0F AE /4 /5 /6 with a memory operand and no 66/F2/F3 (those
 * select ptwrite, clwb and friends), with or without REX.W.
 */
#include "arch/x86/pvm/pvm_insn.h"

#include <errno.h>
#include <string.h>

#define REX_W 0x8
#define REX_R 0x4
#define REX_X 0x2
#define REX_B 0x1

struct cursor {
	const uint8_t *bytes;
	size_t end;
	size_t pos;
};

static int cursor_u8(struct cursor *c, uint8_t *v)
{
	if (c->pos >= c->end)
		return -EINVAL;
	*v = c->bytes[c->pos++];
	return 0;
}

static int cursor_s32(struct cursor *c, int32_t *v)
{
	uint32_t u = 0;
	uint8_t b;
	int i;

	for (i = 0; i < 4; i++) {
		if (cursor_u8(c, &b))
			return -EINVAL;
		u |= (uint32_t)b << (8 * i);
	}
	*v = (int32_t)u;
	return 0;
}

/* ModRM, SIB and displacement of a memory operand (SDM Vol 2 §2.2.1). */
static int decode_modrm(struct pvm_insn *insn, struct cursor *c)
{
	uint8_t mod, rm, sib, b;
	int32_t disp = 0;

	if (cursor_u8(c, &insn->modrm))
		return -EINVAL;
	insn->has_modrm = true;
	mod = insn->modrm >> 6;
	rm = insn->modrm & 7;
	if (mod == 3)
		return 0;

	insn->scale = 1;
	if (rm == 4) {
		if (cursor_u8(c, &sib))
			return -EINVAL;
		insn->scale = 1 << (sib >> 6);
		insn->index = ((sib >> 3) & 7) | (insn->rex & REX_X ? 8 : 0);
		if (insn->index == 4) /* rsp cannot be an index; r12 can */
			insn->index = PVM_REG_NONE;
		if ((sib & 7) == 5 && mod == 0) {
			if (cursor_s32(c, &disp))
				return -EINVAL;
		} else {
			insn->base = (sib & 7) | (insn->rex & REX_B ? 8 : 0);
		}
	} else if (rm == 5 && mod == 0) {
		insn->rip_relative = true;
		if (cursor_s32(c, &disp))
			return -EINVAL;
	} else {
		insn->base = rm | (insn->rex & REX_B ? 8 : 0);
	}

	if (mod == 1) {
		if (cursor_u8(c, &b))
			return -EINVAL;
		disp = (int8_t)b;
	} else if (mod == 2) {
		if (cursor_s32(c, &disp))
			return -EINVAL;
	}
	insn->disp = disp;
	return 0;
}

static unsigned int modrm_reg(const struct pvm_insn *insn)
{
	return (insn->modrm >> 3) & 7;
}

static bool modrm_is_mem(const struct pvm_insn *insn)
{
	return (insn->modrm >> 6) != 3;
}

/* Group 9: 0F C7. */
static int decode_0f_c7(struct pvm_insn *insn, struct cursor *c)
{
	static const char *const mem_names[8] = {
		[1] = "cmpxchg8b", [3] = "xrstors", [4] = "xsavec",
		[5] = "xsaves",    [6] = "vmptrld", [7] = "vmptrst",
	};

	if (decode_modrm(insn, c))
		return -EINVAL;
	if (!modrm_is_mem(insn)) {
		if (modrm_reg(insn) == 6)
			insn->name = "rdrand";
		else if (modrm_reg(insn) == 7)
			insn->name = insn->rep ? "rdpid" : "rdseed";
		return -ENOSYS;
	}
	insn->name = mem_names[modrm_reg(insn)];
	if (modrm_reg(insn) != 1)
		return -ENOSYS;
	if (insn->rex & REX_W) {
		insn->op = PVM_INSN_CMPXCHG16B;
		insn->name = "cmpxchg16b";
	} else {
		insn->op = PVM_INSN_CMPXCHG8B;
	}
	return 0;
}

/* Group 15: 0F AE. */
static int decode_0f_ae(struct pvm_insn *insn, struct cursor *c)
{
	static const char *const mem_names[8] = {
		"fxsave", "fxrstor", "ldmxcsr",  "stmxcsr",
		"xsave",  "xrstor",  "xsaveopt", "clflush",
	};
	static const char *const reg_names[8] = {
		[5] = "lfence", [6] = "mfence", [7] = "sfence",
	};
	bool plain = !insn->opsize && !insn->rep && !insn->repne;
	bool w = insn->rex & REX_W;

	if (decode_modrm(insn, c))
		return -EINVAL;
	if (!modrm_is_mem(insn)) {
		insn->name = plain ? reg_names[modrm_reg(insn)] : NULL;
		return -ENOSYS;
	}
	if (!plain) {
		if (insn->opsize && modrm_reg(insn) == 6)
			insn->name = "clwb";
		else if (insn->opsize && modrm_reg(insn) == 7)
			insn->name = "clflushopt";
		else if (insn->rep && modrm_reg(insn) == 4)
			insn->name = "ptwrite";
		return -ENOSYS;
	}
	insn->name = mem_names[modrm_reg(insn)];
	switch (modrm_reg(insn)) {
	case 4:
		insn->op = PVM_INSN_XSAVE;
		insn->name = w ? "xsave64" : "xsave";
		return 0;
	case 5:
		insn->op = PVM_INSN_XRSTOR;
		insn->name = w ? "xrstor64" : "xrstor";
		return 0;
	case 6:
		insn->op = PVM_INSN_XSAVEOPT;
		insn->name = w ? "xsaveopt64" : "xsaveopt";
		return 0;
	default:
		return -ENOSYS;
	}
}

/* Names of 0F 01 xx register forms that PVM cannot emulate, for the report. */
static const char *name_0f_01(uint8_t b)
{
	switch (b) {
	case 0xc1: return "vmcall";
	case 0xca: return "clac";
	case 0xcb: return "stac";
	case 0xd0: return "xgetbv";
	case 0xd1: return "xsetbv";
	case 0xd9: return "vmmcall";
	case 0xf9: return "rdtscp";
	default: return NULL;
	}
}

/* Two-byte opcodes: the ones we emulate, and names for a few others. */
static int decode_0f(struct pvm_insn *insn, struct cursor *c)
{
	uint8_t op, b;

	if (cursor_u8(c, &op))
		return -EINVAL;
	switch (op) {
	case 0xc7:
		return decode_0f_c7(insn, c);
	case 0xae:
		return decode_0f_ae(insn, c);
	case 0x01:
		if (!cursor_u8(c, &b))
			insn->name = name_0f_01(b);
		return -ENOSYS;
	case 0x0b:
		insn->name = "ud2";
		return -ENOSYS;
	case 0xb8:
		insn->name = insn->rep ? "popcnt" : NULL;
		return -ENOSYS;
	case 0xbc:
		insn->name = insn->rep ? "tzcnt" : "bsf";
		return -ENOSYS;
	case 0xbd:
		insn->name = insn->rep ? "lzcnt" : "bsr";
		return -ENOSYS;
	case 0x38:
		if (!cursor_u8(c, &b) && b == 0x82 && insn->opsize)
			insn->name = "invpcid";
		return -ENOSYS;
	default:
		return -ENOSYS;
	}
}

/* One-byte opcodes that are not prefixes. */
static int decode_opcode(struct pvm_insn *insn, struct cursor *c, uint8_t op)
{
	switch (op) {
	case 0xcc:
		insn->op = PVM_INSN_INT3;
		insn->name = "int3";
		return 0;
	case 0x0f:
		return decode_0f(insn, c);
	case 0xcd:
		insn->name = "int";
		return -ENOSYS;
	case 0xc4:
	case 0xc5:
		insn->name = "VEX-encoded (AVX)";
		return -ENOSYS;
	case 0x62:
		insn->name = "EVEX-encoded (AVX-512)";
		return -ENOSYS;
	case 0x9b:
		insn->name = "fwait";
		return -ENOSYS;
	case 0xd8 ... 0xdf:
		insn->name = "x87";
		return -ENOSYS;
	default:
		return -ENOSYS;
	}
}

int pvm_insn_decode(struct pvm_insn *insn, const uint8_t *bytes, size_t size)
{
	struct cursor c = {
		.bytes = bytes,
		.end = size < PVM_INSN_MAX_LEN ? size : PVM_INSN_MAX_LEN,
	};
	uint8_t b;
	int ret;

	memset(insn, 0, sizeof(*insn));
	insn->base = PVM_REG_NONE;
	insn->index = PVM_REG_NONE;

	for (;;) {
		if (cursor_u8(&c, &b))
			return -EINVAL;
		/* REX only counts right before the opcode (SDM Vol 2 §2.2.1). */
		if (b >= 0x40 && b <= 0x4f) {
			insn->rex = b;
			continue;
		}
		switch (b) {
		case 0xf0: insn->lock = true; break;
		case 0xf2: insn->repne = true; insn->rep = false; break;
		case 0xf3: insn->rep = true; insn->repne = false; break;
		case 0x26: insn->seg = PVM_SEG_ES; break;
		case 0x2e: insn->seg = PVM_SEG_CS; break;
		case 0x36: insn->seg = PVM_SEG_SS; break;
		case 0x3e: insn->seg = PVM_SEG_DS; break;
		case 0x64: insn->seg = PVM_SEG_FS; break;
		case 0x65: insn->seg = PVM_SEG_GS; break;
		case 0x66: insn->opsize = true; break;
		case 0x67: insn->addr32 = true; break;
		default:
			goto opcode;
		}
		insn->rex = 0;
	}

opcode:
	ret = decode_opcode(insn, &c, b);
	if (ret) {
		insn->op = PVM_INSN_NONE;
		return ret;
	}
	insn->len = (uint8_t)c.pos;
	return 0;
}

static uint64_t reg_value(const struct kvm_regs *regs, unsigned int nr)
{
	switch (nr) {
	case 0: return regs->rax;
	case 1: return regs->rcx;
	case 2: return regs->rdx;
	case 3: return regs->rbx;
	case 4: return regs->rsp;
	case 5: return regs->rbp;
	case 6: return regs->rsi;
	case 7: return regs->rdi;
	case 8: return regs->r8;
	case 9: return regs->r9;
	case 10: return regs->r10;
	case 11: return regs->r11;
	case 12: return regs->r12;
	case 13: return regs->r13;
	case 14: return regs->r14;
	case 15: return regs->r15;
	default: return 0;
	}
}

uint64_t pvm_insn_effective_addr(const struct pvm_insn *insn,
				 const struct kvm_regs *regs)
{
	uint64_t ea = (uint64_t)(int64_t)insn->disp;

	if (insn->rip_relative) {
		ea += regs->rip + insn->len;
	} else {
		if (insn->base != PVM_REG_NONE)
			ea += reg_value(regs, insn->base);
		if (insn->index != PVM_REG_NONE)
			ea += reg_value(regs, insn->index) * insn->scale;
	}
	/* Wrapping the 64-bit sum equals summing the 32-bit registers. */
	if (insn->addr32)
		ea &= 0xffffffffULL;
	return ea;
}

uint64_t pvm_insn_linear_addr(const struct pvm_insn *insn,
			      const struct kvm_regs *regs,
			      const struct kvm_sregs *sregs)
{
	uint64_t la = pvm_insn_effective_addr(insn, regs);

	if (insn->seg == PVM_SEG_FS)
		la += sregs->fs.base;
	else if (insn->seg == PVM_SEG_GS)
		la += sregs->gs.base;
	return la;
}

bool pvm_insn_uses_ss(const struct pvm_insn *insn)
{
	if (insn->seg != PVM_SEG_DEFAULT)
		return insn->seg == PVM_SEG_SS;
	return !insn->rip_relative && (insn->base == 4 || insn->base == 5);
}
