/*
 * The PVM emulation-failure fix-up: decode the bytes KVM hands back, run the
 * one instruction, and resume the guest (see pvm_fixup.h, PVM.md).
 *
 * Everything is read from and written to run->s.regs (KVM_CAP_SYNC_REGS),
 * so a fix-up costs no vCPU ioctl except for the xsave family. Instructions
 * are executed on copies and committed only when they complete: a fix-up
 * that is not handled leaves the vCPU untouched for the caller's report.
 *
 * Exceptions go in through the events: #PF as a *pending* exception with
 * CR2 in exception_payload when KVM_CAP_EXCEPTION_PAYLOAD is enabled (KVM
 * then sets CR2 itself when it delivers it; it honours a payload only for a
 * pending exception), every other one as an *injected* exception, which is
 * what PVM.md measured for int3. Without the capability the #PF path sets
 * CR2 with one KVM_SET_SREGS: rare, and it keeps SREGS out of the sync bits.
 *
 * An instruction completed here with RFLAGS.TF set at its start is followed
 * by the single-step #DB trap the CPU would raise (DR6.BS, RIP after it),
 * the way KVM's emulator does it: pending, with DR6 in the payload. An
 * instruction that faults gets none; int3 keeps its plain #BP (a step into
 * the #BP handler is not modelled).
 */
#include "arch/x86/pvm/pvm_fixup.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/pvm/pvm_cmpxchg.h"
#include "arch/x86/pvm/pvm_host.h"
#include "arch/x86/pvm/pvm_insn.h"
#include "arch/x86/pvm/pvm_walk.h"
#include "arch/x86/pvm/pvm_xsave.h"
#include "core/vcpu.h"

#define RFLAGS_TF (1ULL << 8)
#define RFLAGS_RF (1ULL << 16)
#define DR6_BS (1ULL << 14) /* single step */
#define DR6_TRAP_BITS 0xfULL /* B0-B3 */
#define SYNC_ALL (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)
/* flags + the 16 bytes of insn_size/insn_bytes, in u64s (linux/kvm.h) */
#define EMULATION_FAILURE_NDATA 3

/* The fetched bytes of an emulation-failure exit, or -EINVAL. */
static int fixup_bytes(const struct kvm_run *run, const uint8_t **bytes,
		       size_t *size)
{
	if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR ||
	    run->emulation_failure.suberror != KVM_INTERNAL_ERROR_EMULATION ||
	    run->emulation_failure.ndata < EMULATION_FAILURE_NDATA ||
	    !(run->emulation_failure.flags &
	      KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) ||
	    !run->emulation_failure.insn_size)
		return -EINVAL;
	*bytes = run->emulation_failure.insn_bytes;
	*size = run->emulation_failure.insn_size;
	if (*size > sizeof(run->emulation_failure.insn_bytes))
		*size = sizeof(run->emulation_failure.insn_bytes);
	return 0;
}

static bool fixup_long_mode(const struct kvm_sregs *sregs)
{
	return (sregs->efer & PVM_EFER_LMA) && sregs->cs.l;
}

static unsigned int fixup_cpl(const struct kvm_sregs *sregs)
{
	/* KVM reports the CPL as SS.DPL; real mode is CPL 0. */
	return sregs->cr0 & 1 ? sregs->ss.dpl : 0;
}

/* Complete the instruction: next RIP, RF cleared, interrupt shadow over. */
static void fixup_advance(struct vcpu *vcpu, unsigned int len)
{
	struct kvm_sync_regs *s = &vcpu->run->s.regs;
	uint64_t rip = s->regs.rip + len;

	if (!fixup_long_mode(&s->sregs))
		rip = s->sregs.cs.db ? (uint32_t)rip : (uint16_t)rip;
	s->regs.rip = rip;
	s->regs.rflags &= ~RFLAGS_RF;
	vcpu_mark_dirty(vcpu, KVM_SYNC_X86_REGS);
	if (s->events.interrupt.shadow) {
		s->events.interrupt.shadow = 0;
		vcpu_mark_dirty(vcpu, KVM_SYNC_X86_EVENTS);
	}
}

static int fixup_set_cr2(struct vcpu *vcpu, uint64_t cr2)
{
	struct kvm_sregs sregs = vcpu->run->s.regs.sregs;

	sregs.cr2 = cr2;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	vcpu->run->s.regs.sregs.cr2 = cr2;
	return 0;
}

/* DR6 of a single-step trap, as the CPU leaves it (B0-B3 cleared). */
static int fixup_set_dr6_bs(struct vcpu *vcpu)
{
	struct kvm_debugregs dbg;

	if (ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &dbg) < 0)
		return -errno;
	dbg.dr6 = (dbg.dr6 & ~DR6_TRAP_BITS) | DR6_BS;
	if (ioctl(vcpu->fd, KVM_SET_DEBUGREGS, &dbg) < 0)
		return -errno;
	return 0;
}

static int fixup_inject(struct vcpu *vcpu, const struct pvm_exc *exc)
{
	struct kvm_vcpu_events *ev = &vcpu->run->s.regs.events;
	bool pf = exc->vector == PVM_VEC_PF, db = exc->vector == PVM_VEC_DB;
	bool payload = (pf || db) && (ev->flags & KVM_VCPUEVENT_VALID_PAYLOAD);
	int ret = 0;

	if (pf && !payload)
		ret = fixup_set_cr2(vcpu, exc->cr2);
	else if (db && !payload)
		ret = fixup_set_dr6_bs(vcpu);
	if (ret)
		return ret;
	ev->exception.nr = exc->vector;
	ev->exception.has_error_code = exc->has_error_code;
	ev->exception.error_code = exc->has_error_code ? exc->error_code : 0;
	ev->exception.injected = !payload;
	ev->exception.pending = payload;
	ev->exception_has_payload = payload;
	ev->exception_payload = !payload ? 0 : db ? DR6_BS : exc->cr2;
	vcpu_mark_dirty(vcpu, KVM_SYNC_X86_EVENTS);
	return 0;
}

/* cmpxchg8b/16b on a copy of the registers, committed by the caller. */
static int fixup_cmpxchg(struct vcpu *vcpu, const struct pvm_insn *insn,
			 const struct pvm_mmu *mmu, uint64_t la,
			 struct pvm_exc *exc)
{
	struct kvm_regs regs = vcpu->run->s.regs.regs;
	int ret;

	if (!vcpu->vm)
		return -EINVAL;
	ret = pvm_cmpxchg_emulate(insn, &vcpu->vm->mem, mmu, la, &regs, exc);
	if (!ret)
		vcpu->run->s.regs.regs = regs;
	return ret;
}

/* An instruction with a memory operand: address checks, then emulate. */
static int fixup_memory_insn(struct vcpu *vcpu, const struct pvm_insn *insn,
			     struct pvm_exc *exc)
{
	const struct kvm_sync_regs *s = &vcpu->run->s.regs;
	bool cmpxchg = insn->op == PVM_INSN_CMPXCHG8B ||
		       insn->op == PVM_INSN_CMPXCHG16B;
	struct pvm_mmu mmu;
	uint64_t la;
	int ret;

	pvm_walk_mmu_init(&mmu, &s->sregs, s->regs.rflags,
			  pvm_host_cpu()->maxphyaddr);
	mmu.cpl = fixup_cpl(&s->sregs);
	if (!cmpxchg) {
		ret = pvm_xsave_check_usable(&mmu, exc);
		if (ret)
			return ret;
	}
	la = pvm_insn_linear_addr(insn, &s->regs, &s->sregs);
	if (!pvm_walk_canonical(&mmu, la))
		return pvm_exc_raise(exc, pvm_insn_uses_ss(insn) ? PVM_VEC_SS
								 : PVM_VEC_GP,
				     true, 0);
	if (cmpxchg)
		return fixup_cmpxchg(vcpu, insn, &mmu, la, exc);
	return pvm_xsave_emulate(vcpu, insn, &mmu, la, exc);
}

static int fixup_decode(const struct kvm_sync_regs *s, const uint8_t *bytes,
			size_t size, struct pvm_insn *insn)
{
	if (fixup_long_mode(&s->sregs))
		return pvm_insn_decode(insn, bytes, size);
	/* Outside 64-bit mode only a bare int3 is handled. */
	memset(insn, 0, sizeof(*insn));
	if (bytes[0] != 0xcc)
		return -ENOSYS;
	insn->op = PVM_INSN_INT3;
	insn->name = "int3";
	insn->len = 1;
	return 0;
}

int pvm_fixup(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	const struct kvm_sync_regs *s = &run->s.regs;
	struct pvm_insn insn;
	struct pvm_exc exc;
	const uint8_t *bytes;
	size_t size;
	int ret;

	ret = fixup_bytes(run, &bytes, &size);
	if (ret)
		return ret;
	if ((run->kvm_valid_regs & SYNC_ALL) != SYNC_ALL)
		return -EINVAL;
	/* An exception already on its way cannot be stacked with ours. */
	if (s->events.exception.injected || s->events.exception.pending)
		return -EINVAL;
	ret = fixup_decode(s, bytes, size, &insn);
	if (ret)
		return ret;

	if (insn.lock && insn.op != PVM_INSN_CMPXCHG8B &&
	    insn.op != PVM_INSN_CMPXCHG16B)
		ret = pvm_exc_raise(&exc, PVM_VEC_UD, false, 0);
	else if (insn.op == PVM_INSN_INT3)
		ret = 0;
	else
		ret = fixup_memory_insn(vcpu, &insn, &exc);

	if (ret == -EFAULT) {
		ret = fixup_inject(vcpu, &exc);
	} else if (!ret) {
		bool step = s->regs.rflags & RFLAGS_TF;

		fixup_advance(vcpu, insn.len);
		/* #BP is a trap: it is delivered with RIP after the int3. */
		if (insn.op == PVM_INSN_INT3)
			ret = fixup_inject(vcpu, &(struct pvm_exc){
							 .vector = PVM_VEC_BP });
		else if (step)
			ret = fixup_inject(vcpu, &(struct pvm_exc){
							 .vector = PVM_VEC_DB });
	} else if (ret == -ENXIO || ret == -EAGAIN || ret == -E2BIG) {
		ret = -ENOSYS; /* operand not in RAM, or too odd to emulate */
	}
	return ret;
}

__attribute__((format(printf, 4, 5)))
static void buf_append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

/* What the guest kernel's command line needs to avoid an instruction. */
static const char *fixup_hint(const char *name)
{
	static const struct {
		const char *name;
		const char *hint;
	} hints[] = {
		{ "xgetbv", "noxsave" },
		{ "xsetbv", "noxsave" },
		{ "xsavec", "noxsave" },
		{ "xsaves", "noxsave" },
		{ "xrstors", "noxsave" },
		{ "VEX-encoded (AVX)", "noxsave" },
		{ "EVEX-encoded (AVX-512)", "noxsave" },
		{ "popcnt", "clearcpuid=popcnt" },
		{ "stac", "clearcpuid=smap" },
		{ "clac", "clearcpuid=smap" },
	};
	size_t i;

	for (i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		if (!strcmp(hints[i].name, name))
			return hints[i].hint;
	}
	return NULL;
}

void pvm_describe_failure(struct vcpu *vcpu, char *buf, size_t len)
{
	const struct kvm_run *run = vcpu->run;
	const struct kvm_sync_regs *s = &run->s.regs;
	struct pvm_insn insn;
	const uint8_t *bytes;
	const char *hint;
	size_t size, i, pos = 0;

	if (!len)
		return;
	buf[0] = '\0';
	if ((run->kvm_valid_regs & SYNC_ALL) == SYNC_ALL)
		buf_append(buf, len, &pos, "emulation failure at RIP 0x%llx (CPL %u)",
			   (unsigned long long)s->regs.rip, fixup_cpl(&s->sregs));
	else
		buf_append(buf, len, &pos, "emulation failure (registers not synced)");
	if (fixup_bytes(run, &bytes, &size)) {
		buf_append(buf, len, &pos, ": no instruction bytes");
		return;
	}

	memset(&insn, 0, sizeof(insn));
	if (fixup_long_mode(&s->sregs))
		(void)pvm_insn_decode(&insn, bytes, size);
	if (insn.len)
		size = insn.len;
	buf_append(buf, len, &pos, ": bytes");
	for (i = 0; i < size; i++)
		buf_append(buf, len, &pos, " %02x", bytes[i]);
	if (!insn.name)
		return;
	hint = fixup_hint(insn.name);
	if (hint)
		buf_append(buf, len, &pos, " (%s; guest kernel needs %s)",
			   insn.name, hint);
	else
		buf_append(buf, len, &pos, " (%s)", insn.name);
}
