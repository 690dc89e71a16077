/*
 * Helpers for the PVM fix-up unit tests: guest RAM in a calloc'ed buffer
 * (struct guest_mem with low RAM at host[0], no memfd), page tables built
 * in it with a bump allocator, and a fake vCPU whose kvm_run is calloc'ed.
 */
#ifndef KHYVE_TEST_PVM_H
#define KHYVE_TEST_PVM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/pvm/pvm_walk.h"
#include "core/guest_mem.h"
#include "core/vcpu.h"
#include "core/vm.h"

#define PT_P (1ULL << 0)
#define PT_RW (1ULL << 1)
#define PT_US (1ULL << 2)
#define PT_A (1ULL << 5)
#define PT_D (1ULL << 6)
#define PT_PS (1ULL << 7)
#define PT_ADDR 0x000ffffffffff000ULL

#define TEST_RAM_SIZE (8ULL << 20)
#define TEST_TABLES 0x100000ULL /* page tables live in [1 MiB, 2 MiB) */

struct test_guest {
	struct guest_mem mem;
	uint64_t cr3;
	uint64_t next_table;
	unsigned int levels;
};

static inline void test_guest_init(struct test_guest *g, unsigned int levels)
{
	memset(g, 0, sizeof(*g));
	guest_mem_layout(&g->mem, TEST_RAM_SIZE);
	g->mem.fd = -1;
	g->mem.host = aligned_alloc(4096, TEST_RAM_SIZE);
	memset(g->mem.host, 0, TEST_RAM_SIZE);
	g->levels = levels;
	g->cr3 = TEST_TABLES;
	g->next_table = TEST_TABLES + 4096;
}

static inline void test_guest_exit(struct test_guest *g)
{
	free(g->mem.host);
}

static inline uint64_t *test_guest_u64(struct test_guest *g, uint64_t gpa)
{
	return (uint64_t *)(g->mem.host + gpa);
}

/*
 * The entry for @la at @level (5..1), creating the tables above it with
 * P|RW|US|A. Returns the host pointer to the entry.
 */
static inline uint64_t *test_guest_entry(struct test_guest *g, uint64_t la,
					 unsigned int level)
{
	uint64_t table = g->cr3;
	unsigned int l;

	for (l = g->levels;; l--) {
		uint64_t *e = test_guest_u64(g, table + ((la >> (12 + 9 * (l - 1))) & 511) * 8);

		if (l == level)
			return e;
		if (!(*e & PT_P)) {
			*e = g->next_table | PT_P | PT_RW | PT_US | PT_A;
			g->next_table += 4096;
		}
		table = *e & PT_ADDR;
	}
}

/* Map @la to @gpa with a leaf at @level (1: 4 KiB, 2: 2 MiB, 3: 1 GiB). */
static inline uint64_t *test_guest_map(struct test_guest *g, uint64_t la,
				       uint64_t gpa, unsigned int level,
				       uint64_t flags)
{
	uint64_t *e = test_guest_entry(g, la, level);

	*e = gpa | flags | (level > 1 ? PT_PS : 0);
	return e;
}

/* Paging state of a 64-bit CPL0 vCPU with CR0.WP set. */
static inline void test_guest_mmu(struct test_guest *g, struct pvm_mmu *mmu)
{
	memset(mmu, 0, sizeof(*mmu));
	mmu->cr0 = PVM_CR0_PG | PVM_CR0_WP | 1;
	mmu->cr3 = g->cr3;
	mmu->cr4 = g->levels == 5 ? PVM_CR4_LA57 : 0;
	mmu->efer = PVM_EFER_LMA | PVM_EFER_NXE | (1ULL << 8);
	mmu->cpl = 0;
	mmu->maxphyaddr = 46;
}

struct test_vcpu {
	struct vm vm;
	struct vcpu vcpu;
	struct test_guest g;
};

/* A vCPU in 64-bit mode at CPL0 with all sync regs valid and no fd. */
static inline void test_vcpu_init(struct test_vcpu *t, unsigned int levels)
{
	struct kvm_sync_regs *s;
	struct pvm_mmu mmu;

	memset(t, 0, sizeof(*t));
	test_guest_init(&t->g, levels);
	t->vm.mem = t->g.mem;
	t->vm.vm_fd = -1;
	t->vcpu.vm = &t->vm;
	t->vcpu.fd = -1;
	t->vcpu.run = calloc(1, sizeof(struct kvm_run));
	t->vcpu.run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS |
				      KVM_SYNC_X86_EVENTS;
	s = &t->vcpu.run->s.regs;
	test_guest_mmu(&t->g, &mmu);
	s->sregs.cr0 = mmu.cr0;
	s->sregs.cr3 = mmu.cr3;
	s->sregs.cr4 = mmu.cr4;
	s->sregs.efer = mmu.efer;
	s->sregs.cs.l = 1;
	s->sregs.cs.selector = 0x10;
	s->sregs.ss.selector = 0x18;
	s->regs.rflags = 0x2;
	s->events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING |
			  KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
			  KVM_VCPUEVENT_VALID_PAYLOAD;
}

/* Make the exit an emulation failure on @bytes (the window is 15 bytes). */
static inline void test_vcpu_fail(struct test_vcpu *t, const void *bytes,
				  size_t len)
{
	struct kvm_run *run = t->vcpu.run;

	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->emulation_failure.ndata = 3;
	run->emulation_failure.flags =
		KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
	run->emulation_failure.insn_size = 15;
	memset(run->emulation_failure.insn_bytes, 0x90, 15);
	memcpy(run->emulation_failure.insn_bytes, bytes, len);
	run->kvm_dirty_regs = 0;
}

static inline void test_vcpu_exit(struct test_vcpu *t)
{
	free(t->vcpu.run);
	test_guest_exit(&t->g);
}

#endif
