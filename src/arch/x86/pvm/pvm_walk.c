/*
 * Software page walk for the PVM fix-ups; see pvm_walk.h.
 *
 * Entries are read through guest_mem_ptr(), the one checked place for
 * guest physical addresses: a table outside RAM ends the walk (-ENXIO), it
 * never reaches host memory. Each entry is loaded once (the guest's other
 * vCPUs may be rewriting it) and the walk decides on those copies. Only a
 * successful translation sets Accessed/Dirty bits, with a compare-exchange
 * against the value the walk used, so a bit is never ORed into an entry the
 * guest has meanwhile turned into something else (a non-present entry may
 * hold a swap entry); on a lost race the walk starts again.
 *
 * Checked: P, R/W (with CR0.WP for supervisor writes), U/S against CPL,
 * SMAP (CR4.SMAP, RFLAGS.AC), reserved bits (above MAXPHYADDR, XD without
 * EFER.NXE, PS in PML4E/PML5E, the low bits of 2 MiB / 1 GiB frames).
 * Not modelled: protection keys (CR4.PKE/PKS) and shadow stacks.
 */
#include "arch/x86/pvm/pvm_walk.h"

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_XD (1ULL << 63)
#define PTE_ADDR 0x000ffffffffff000ULL

#define WALK_MAX_LEVELS 5
#define WALK_MAX_TRIES 8

struct walk_entry {
	uint64_t *host;
	uint64_t val;
};

void pvm_walk_mmu_init(struct pvm_mmu *mmu, const struct kvm_sregs *sregs,
		       uint64_t rflags, unsigned int maxphyaddr)
{
	mmu->cr0 = sregs->cr0;
	mmu->cr3 = sregs->cr3;
	mmu->cr4 = sregs->cr4;
	mmu->efer = sregs->efer;
	mmu->rflags = rflags;
	mmu->cpl = sregs->ss.dpl;
	mmu->maxphyaddr = maxphyaddr;
}

static unsigned int walk_va_bits(const struct pvm_mmu *mmu)
{
	return mmu->cr4 & PVM_CR4_LA57 ? 57 : 48;
}

bool pvm_walk_canonical(const struct pvm_mmu *mmu, uint64_t la)
{
	unsigned int shift = 64 - walk_va_bits(mmu);

	return (uint64_t)((int64_t)(la << shift) >> shift) == la;
}

static uint64_t walk_phys_mask(const struct pvm_mmu *mmu)
{
	unsigned int bits = mmu->maxphyaddr;

	if (bits < 32 || bits > 52)
		bits = 52;
	return (1ULL << bits) - 1;
}

static uint64_t walk_rsvd_bits(const struct pvm_mmu *mmu, unsigned int level,
			       uint64_t pte)
{
	uint64_t rsvd = PTE_ADDR & ~walk_phys_mask(mmu);

	if (!(mmu->efer & PVM_EFER_NXE))
		rsvd |= PTE_XD;
	if (level >= 4)
		rsvd |= PTE_PS;
	else if (level == 3 && (pte & PTE_PS))
		rsvd |= 0x3fffe000ULL; /* bits 29:13 */
	else if (level == 2 && (pte & PTE_PS))
		rsvd |= 0x1fe000ULL; /* bits 20:13 */
	return rsvd;
}

static int walk_fault(struct pvm_exc *exc, uint64_t la, uint32_t err)
{
	pvm_exc_raise(exc, PVM_VEC_PF, true, err);
	exc->cr2 = la;
	return -EFAULT;
}

/* The permission checks of SDM Vol 3 §4.6 on the combined R/W and U/S. */
static bool walk_allowed(const struct pvm_mmu *mmu, bool write, bool all_rw,
			 bool all_us)
{
	bool user = mmu->cpl == 3;

	if (user)
		return all_us && (!write || all_rw);
	if (all_us && (mmu->cr4 & PVM_CR4_SMAP) &&
	    !(mmu->rflags & PVM_RFLAGS_AC))
		return false;
	return !write || all_rw || !(mmu->cr0 & PVM_CR0_WP);
}

/* Set A on every entry used and D on the leaf; false if one changed. */
static bool walk_commit(struct walk_entry *e, unsigned int n, bool write)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint64_t want = e[i].val | PTE_A;
		uint64_t expect = e[i].val;

		if (i == n - 1 && write)
			want |= PTE_D;
		if (want == e[i].val)
			continue;
		if (!__atomic_compare_exchange_n(e[i].host, &expect, want,
						 false, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST))
			return false;
	}
	return true;
}

static int walk_once(const struct guest_mem *mem, const struct pvm_mmu *mmu,
		     uint64_t la, bool write, uint64_t *gpa,
		     struct pvm_exc *exc)
{
	struct walk_entry e[WALK_MAX_LEVELS];
	unsigned int levels = mmu->cr4 & PVM_CR4_LA57 ? 5 : 4;
	uint32_t err = (write ? PVM_PF_WRITE : 0) | (mmu->cpl == 3 ? PVM_PF_USER : 0);
	uint64_t table = mmu->cr3 & PTE_ADDR & walk_phys_mask(mmu);
	bool all_rw = true, all_us = true;
	unsigned int level, n = 0;

	for (level = levels; level >= 1; level--) {
		unsigned int shift = 12 + 9 * (level - 1);
		uint64_t entry_gpa = table + ((la >> shift) & 511) * 8;
		uint64_t pte, page_mask;

		e[n].host = guest_mem_ptr(mem, entry_gpa, 8);
		if (!e[n].host)
			return -ENXIO;
		pte = __atomic_load_n(e[n].host, __ATOMIC_ACQUIRE);
		e[n++].val = pte;

		if (!(pte & PTE_P))
			return walk_fault(exc, la, err);
		if (pte & walk_rsvd_bits(mmu, level, pte))
			return walk_fault(exc, la, err | PVM_PF_PRESENT | PVM_PF_RSVD);
		all_rw &= !!(pte & PTE_RW);
		all_us &= !!(pte & PTE_US);

		if (level > 1 && !(level <= 3 && (pte & PTE_PS))) {
			table = pte & PTE_ADDR;
			continue;
		}
		if (!walk_allowed(mmu, write, all_rw, all_us))
			return walk_fault(exc, la, err | PVM_PF_PRESENT);
		if (!walk_commit(e, n, write))
			return -EAGAIN;
		page_mask = (1ULL << shift) - 1;
		*gpa = (pte & PTE_ADDR & ~page_mask) | (la & page_mask);
		return 0;
	}
	return -ENOSYS; /* not reached: level 1 is always a leaf */
}

int pvm_walk_translate(const struct guest_mem *mem, const struct pvm_mmu *mmu,
		       uint64_t la, bool write, uint64_t *gpa,
		       struct pvm_exc *exc)
{
	int tries, ret = -EAGAIN;

	if (!(mmu->cr0 & PVM_CR0_PG) || !(mmu->efer & PVM_EFER_LMA))
		return -ENOSYS;
	if (!pvm_walk_canonical(mmu, la))
		return pvm_exc_raise(exc, PVM_VEC_GP, true, 0);
	for (tries = 0; tries < WALK_MAX_TRIES && ret == -EAGAIN; tries++)
		ret = walk_once(mem, mmu, la, write, gpa, exc);
	return ret;
}
