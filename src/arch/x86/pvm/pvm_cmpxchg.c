/*
 * cmpxchg8b/cmpxchg16b emulation; see pvm_cmpxchg.h.
 *
 * The guest's other vCPUs keep running, so the operation must be atomic
 * against them: it is the host's lock cmpxchg8b/16b on the host mapping of
 * the guest's RAM, which is the same memory (shared memfd) they use. The
 * CPU always performs the write cycle, so the operand is translated as a
 * write (W in the #PF error code, Dirty bit set) even when the compare
 * fails (SDM Vol 2 CMPXCHG8B/CMPXCHG16B).
 */
#include "arch/x86/pvm/pvm_cmpxchg.h"

#include <stdbool.h>

#define RFLAGS_ZF (1ULL << 6)

struct u128 {
	uint64_t lo;
	uint64_t hi;
} __attribute__((aligned(16)));

static bool host_cmpxchg16b(struct u128 *p, uint64_t *lo, uint64_t *hi,
			    uint64_t new_lo, uint64_t new_hi)
{
	bool zf;

	asm volatile("lock cmpxchg16b %[m]"
		     : [m] "+m"(*p), "=@ccz"(zf), "+a"(*lo), "+d"(*hi)
		     : "b"(new_lo), "c"(new_hi)
		     : "memory");
	return zf;
}

/* cmpxchg8b has no alignment requirement. */
typedef uint64_t u64_any_align __attribute__((aligned(1)));

static bool host_cmpxchg8b(u64_any_align *p, uint32_t *lo, uint32_t *hi,
			   uint32_t new_lo, uint32_t new_hi)
{
	bool zf;

	asm volatile("lock cmpxchg8b %[m]"
		     : [m] "+m"(*p), "=@ccz"(zf), "+a"(*lo), "+d"(*hi)
		     : "b"(new_lo), "c"(new_hi)
		     : "memory");
	return zf;
}

int pvm_cmpxchg_emulate(const struct pvm_insn *insn,
			const struct guest_mem *mem, const struct pvm_mmu *mmu,
			uint64_t la, struct kvm_regs *regs,
			struct pvm_exc *exc)
{
	bool wide = insn->op == PVM_INSN_CMPXCHG16B;
	uint64_t size = wide ? 16 : 8, gpa;
	bool zf;
	void *p;
	int ret;

	if (wide && (la & 15))
		return pvm_exc_raise(exc, PVM_VEC_GP, true, 0);
	/*
	 * An unaligned cmpxchg8b that crosses a cache line would be a split
	 * lock on the host (SIGBUS under split_lock_detect=fatal), and one
	 * that crosses a page would need two translations: not handled.
	 */
	if ((la & 63) > 64 - size)
		return -ENOSYS;
	ret = pvm_walk_translate(mem, mmu, la, true, &gpa, exc);
	if (ret)
		return ret;
	p = guest_mem_ptr(mem, gpa, size);
	if (!p)
		return -ENXIO;
	/* Guest RAM is page-aligned on the host, so these hold; never fault. */
	if (wide ? (uintptr_t)p & 15 : ((uintptr_t)p & 63) > 64 - size)
		return -ENOSYS;

	if (wide) {
		uint64_t lo = regs->rax, hi = regs->rdx;

		zf = host_cmpxchg16b(p, &lo, &hi, regs->rbx, regs->rcx);
		if (!zf) {
			regs->rax = lo;
			regs->rdx = hi;
		}
	} else {
		uint32_t lo = (uint32_t)regs->rax, hi = (uint32_t)regs->rdx;

		zf = host_cmpxchg8b(p, &lo, &hi, (uint32_t)regs->rbx,
				    (uint32_t)regs->rcx);
		/* A 32-bit register write zero-extends (SDM Vol 1 §3.4.1.1). */
		if (!zf) {
			regs->rax = lo;
			regs->rdx = hi;
		}
	}
	regs->rflags = (regs->rflags & ~RFLAGS_ZF) | (zf ? RFLAGS_ZF : 0);
	return 0;
}
