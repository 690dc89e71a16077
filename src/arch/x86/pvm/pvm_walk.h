/*
 * The guest's page tables, walked in software from CR3 the way the CPU
 * does for a data access (SDM Vol 3 §4.5 4-level and 5-level paging).
 */
#ifndef KHYVE_PVM_WALK_H
#define KHYVE_PVM_WALK_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/pvm/pvm_exc.h"
#include "core/guest_mem.h"

/* #PF error code bits (SDM Vol 3 §4.7). */
#define PVM_PF_PRESENT (1u << 0)
#define PVM_PF_WRITE (1u << 1)
#define PVM_PF_USER (1u << 2)
#define PVM_PF_RSVD (1u << 3)

#define PVM_CR0_WP (1ULL << 16)
#define PVM_CR0_TS (1ULL << 3)
#define PVM_CR0_PG (1ULL << 31)
#define PVM_CR4_LA57 (1ULL << 12)
#define PVM_CR4_OSXSAVE (1ULL << 18)
#define PVM_CR4_SMAP (1ULL << 21)
#define PVM_EFER_LMA (1ULL << 10)
#define PVM_EFER_NXE (1ULL << 11)
#define PVM_RFLAGS_AC (1ULL << 18)

/* What the walk depends on: a snapshot of the vCPU's paging state. */
struct pvm_mmu {
	uint64_t cr0;
	uint64_t cr3;
	uint64_t cr4;
	uint64_t efer;
	uint64_t rflags;         /* AC, for SMAP */
	unsigned int cpl;        /* 3 makes the access a user-mode access */
	unsigned int maxphyaddr; /* physical address width, 32..52 */
};

/* Snapshot the paging state of a vCPU from its sync registers. */
void pvm_walk_mmu_init(struct pvm_mmu *mmu, const struct kvm_sregs *sregs,
		       uint64_t rflags, unsigned int maxphyaddr);
/* True when @la is canonical for the paging mode (48 or 57 bits). */
bool pvm_walk_canonical(const struct pvm_mmu *mmu, uint64_t la);
/*
 * Translate the linear address @la for a data read or (@write) write.
 * On success store the guest physical address in *gpa, set the Accessed
 * bits of the entries used and, for a write, the Dirty bit of the leaf, and
 * return 0. -EFAULT with *exc filled: the guest takes that #PF (or #GP(0)
 * for a non-canonical address). -ENXIO: a paging structure lies outside
 * guest RAM. -EAGAIN: the entries kept changing under us. -ENOSYS: paging
 * is not in 4- or 5-level mode.
 */
int pvm_walk_translate(const struct guest_mem *mem, const struct pvm_mmu *mmu,
		       uint64_t la, bool write, uint64_t *gpa,
		       struct pvm_exc *exc);

#endif
