/* cmpxchg8b / cmpxchg16b on guest memory, done with the host's own lock cmpxchg. */
#ifndef KHYVE_PVM_CMPXCHG_H
#define KHYVE_PVM_CMPXCHG_H

#include <linux/kvm.h>
#include <stdint.h>

#include "arch/x86/pvm/pvm_insn.h"
#include "arch/x86/pvm/pvm_walk.h"

/*
 * Execute the decoded cmpxchg8b/16b @insn whose operand is at linear
 * address @la (canonical, checked by the caller): alignment, translation
 * for writing, the locked compare-exchange on guest RAM, then ZF and, on a
 * mismatch, RDX:RAX in @regs. RIP is left to the caller. 0, -EFAULT with
 * *exc (#GP(0) misaligned cmpxchg16b, #PF), -ENXIO (operand not in RAM),
 * -ENOSYS (a cmpxchg8b that would be a split lock on the host), or an error
 * of pvm_walk_translate().
 */
int pvm_cmpxchg_emulate(const struct pvm_insn *insn,
			const struct guest_mem *mem, const struct pvm_mmu *mmu,
			uint64_t la, struct kvm_regs *regs,
			struct pvm_exc *exc);

#endif
