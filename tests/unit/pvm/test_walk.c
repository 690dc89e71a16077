/*
 * The PVM page walker and area mapping on page tables built in fake guest
 * RAM: permissions, large pages, A/D bits, reserved bits, tables outside
 * RAM, and the #PF error codes and CR2 they produce.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "arch/x86/pvm/pvm_area.h"
#include "pvm_test.h"

#define LA 0xffff888000201000ULL /* a canonical kernel address */
#define DATA 0x400000ULL         /* guest physical data pages */

struct fixture {
	struct test_guest g;
	struct pvm_mmu mmu;
};

static int setup4(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	test_guest_init(&f->g, 4);
	test_guest_mmu(&f->g, &f->mmu);
	*state = f;
	return 0;
}

static int setup5(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	test_guest_init(&f->g, 5);
	test_guest_mmu(&f->g, &f->mmu);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_guest_exit(&f->g);
	free(f);
	return 0;
}

/* Translate and expect a #PF with @err at @la. */
static void expect_pf(struct fixture *f, uint64_t la, bool write, uint32_t err)
{
	struct pvm_exc exc;
	uint64_t gpa = 0;

	assert_int_equal(pvm_walk_translate(&f->g.mem, &f->mmu, la, write, &gpa, &exc),
			 -EFAULT);
	assert_int_equal(exc.vector, PVM_VEC_PF);
	assert_true(exc.has_error_code);
	assert_int_equal(exc.error_code, err);
	assert_int_equal(exc.cr2, la);
}

static uint64_t expect_ok(struct fixture *f, uint64_t la, bool write)
{
	struct pvm_exc exc;
	uint64_t gpa = 0;

	assert_int_equal(pvm_walk_translate(&f->g.mem, &f->mmu, la, write, &gpa, &exc), 0);
	return gpa;
}

static void test_walk_4k(void **state)
{
	struct fixture *f = *state;
	uint64_t *pte = test_guest_map(&f->g, LA, DATA, 1, PT_P | PT_RW);
	uint64_t *pde = test_guest_entry(&f->g, LA, 2);

	*pde &= ~PT_A;
	assert_int_equal(expect_ok(f, LA + 0x123, false), DATA + 0x123);
	/* A set on the leaf and on the table entries used, D only on a write. */
	assert_true(*pte & PT_A);
	assert_true(*pde & PT_A);
	assert_false(*pte & PT_D);
	assert_false(*pde & PT_D);
	assert_int_equal(expect_ok(f, LA + 0xff0, true), DATA + 0xff0);
	assert_true(*pte & PT_D);
	assert_false(*pde & PT_D);
}

static void test_walk_not_present(void **state)
{
	struct fixture *f = *state;
	uint64_t *pte = test_guest_map(&f->g, LA, DATA, 1, PT_RW);

	expect_pf(f, LA, false, 0);
	expect_pf(f, LA + 8, true, PVM_PF_WRITE);
	assert_false(*pte & PT_A);
	/* Nothing at all mapped in another PML4 slot. */
	expect_pf(f, 0xffffc90000000000ULL, false, 0);
	/* At CPL3 the U bit is in the error code. */
	f->mmu.cpl = 3;
	expect_pf(f, LA, true, PVM_PF_WRITE | PVM_PF_USER);
}

static void test_walk_write_protect(void **state)
{
	struct fixture *f = *state;
	uint64_t *pte = test_guest_map(&f->g, LA, DATA, 1, PT_P);

	expect_pf(f, LA, true, PVM_PF_PRESENT | PVM_PF_WRITE);
	assert_false(*pte & (PT_A | PT_D));
	assert_int_equal(expect_ok(f, LA, false), DATA);
	/* CR0.WP=0: supervisor writes ignore R/W. */
	f->mmu.cr0 &= ~PVM_CR0_WP;
	assert_int_equal(expect_ok(f, LA, true), DATA);
	assert_true(*pte & PT_D);
	/* ...but user writes do not. */
	*pte |= PT_US;
	f->mmu.cpl = 3;
	expect_pf(f, LA, true, PVM_PF_PRESENT | PVM_PF_WRITE | PVM_PF_USER);
}

static void test_walk_upper_level_rw(void **state)
{
	struct fixture *f = *state;
	uint64_t *pdpte;

	test_guest_map(&f->g, LA, DATA, 1, PT_P | PT_RW);
	pdpte = test_guest_entry(&f->g, LA, 3);
	*pdpte &= ~PT_RW;
	expect_pf(f, LA, true, PVM_PF_PRESENT | PVM_PF_WRITE);
	*pdpte |= PT_RW;
	expect_ok(f, LA, true);
}

static void test_walk_user_supervisor(void **state)
{
	struct fixture *f = *state;
	uint64_t *pte = test_guest_map(&f->g, LA, DATA, 1, PT_P | PT_RW);

	f->mmu.cpl = 3;
	expect_pf(f, LA, false, PVM_PF_PRESENT | PVM_PF_USER);
	*pte |= PT_US;
	assert_int_equal(expect_ok(f, LA, true), DATA);
	/* U/S clear in a table entry makes the whole range supervisor. */
	*test_guest_entry(&f->g, LA, 4) &= ~PT_US;
	expect_pf(f, LA, false, PVM_PF_PRESENT | PVM_PF_USER);
	/* Supervisor code may use user pages unless SMAP says no. */
	*test_guest_entry(&f->g, LA, 4) |= PT_US;
	f->mmu.cpl = 0;
	expect_ok(f, LA, true);
	f->mmu.cr4 |= PVM_CR4_SMAP;
	expect_pf(f, LA, false, PVM_PF_PRESENT);
	expect_pf(f, LA, true, PVM_PF_PRESENT | PVM_PF_WRITE);
	f->mmu.rflags |= PVM_RFLAGS_AC;
	expect_ok(f, LA, true);
}

static void test_walk_large_pages(void **state)
{
	struct fixture *f = *state;
	uint64_t la2m = 0xffff888000400000ULL, la1g = 0xffff888040000000ULL;
	uint64_t *pde = test_guest_map(&f->g, la2m, 0x200000, 2, PT_P | PT_RW);
	uint64_t *pdpte = test_guest_map(&f->g, la1g, 0, 3, PT_P | PT_RW);

	assert_int_equal(expect_ok(f, la2m + 0x1ff008, true), 0x3ff008);
	assert_true(*pde & PT_A);
	assert_true(*pde & PT_D);
	assert_int_equal(expect_ok(f, la1g + 0x654321, false), 0x654321);
	assert_true(*pdpte & PT_A);
	assert_false(*pdpte & PT_D);
	/* PAT (bit 12) is fine in a large page, bits 20:13 are reserved. */
	*pde |= 1ULL << 12;
	expect_ok(f, la2m, false);
	*pde |= 1ULL << 13;
	expect_pf(f, la2m, false, PVM_PF_PRESENT | PVM_PF_RSVD);
	*pdpte |= 1ULL << 29;
	expect_pf(f, la1g, true, PVM_PF_PRESENT | PVM_PF_RSVD | PVM_PF_WRITE);
}

static void test_walk_reserved_bits(void **state)
{
	struct fixture *f = *state;
	uint64_t *pte = test_guest_map(&f->g, LA, DATA, 1, PT_P | PT_RW);
	uint64_t *pml4e = test_guest_entry(&f->g, LA, 4);

	/* Above MAXPHYADDR (46). */
	*pte |= 1ULL << 47;
	expect_pf(f, LA, false, PVM_PF_PRESENT | PVM_PF_RSVD);
	*pte &= ~(1ULL << 47);
	/* XD without EFER.NXE. */
	*pte |= 1ULL << 63;
	expect_ok(f, LA, false);
	f->mmu.efer &= ~PVM_EFER_NXE;
	expect_pf(f, LA, false, PVM_PF_PRESENT | PVM_PF_RSVD);
	f->mmu.efer |= PVM_EFER_NXE;
	/* PS in a PML4E. */
	*pml4e |= PT_PS;
	expect_pf(f, LA, true, PVM_PF_PRESENT | PVM_PF_RSVD | PVM_PF_WRITE);
	*pml4e &= ~PT_PS;
	/* Not present beats reserved: reserved bits in a non-present entry are free. */
	*pte = 1ULL << 50;
	expect_pf(f, LA, false, 0);
}

static void test_walk_outside_ram(void **state)
{
	struct fixture *f = *state;
	struct pvm_exc exc;
	struct pvm_area area;
	uint64_t gpa;

	test_guest_map(&f->g, LA, DATA, 1, PT_P | PT_RW);
	/* A table beyond the end of RAM: not handled, no host access. */
	*test_guest_entry(&f->g, LA, 2) = 0x80000000ULL | PT_P | PT_RW;
	assert_int_equal(pvm_walk_translate(&f->g.mem, &f->mmu, LA, false, &gpa, &exc),
			 -ENXIO);
	*test_guest_entry(&f->g, LA, 2) = TEST_RAM_SIZE | PT_P | PT_RW;
	assert_int_equal(pvm_walk_translate(&f->g.mem, &f->mmu, LA, false, &gpa, &exc),
			 -ENXIO);
	/* CR3 outside RAM. */
	f->mmu.cr3 = 0x3fff0000000ULL;
	assert_int_equal(pvm_walk_translate(&f->g.mem, &f->mmu, LA, false, &gpa, &exc),
			 -ENXIO);
	/* A leaf pointing at MMIO translates, but the area is not RAM. */
	f->mmu.cr3 = f->g.cr3;
	*test_guest_entry(&f->g, LA, 2) = 0;
	test_guest_map(&f->g, LA, 0xfee00000ULL, 1, PT_P | PT_RW);
	assert_int_equal(pvm_walk_translate(&f->g.mem, &f->mmu, LA, false, &gpa, &exc), 0);
	assert_int_equal(gpa, 0xfee00000ULL);
	assert_int_equal(pvm_area_map(&area, &f->g.mem, &f->mmu, LA, 16, true, &exc),
			 -ENXIO);
}

static void test_walk_canonical(void **state)
{
	struct fixture *f = *state;
	struct pvm_exc exc;
	uint64_t gpa;

	assert_true(pvm_walk_canonical(&f->mmu, 0x00007fffffffffffULL));
	assert_true(pvm_walk_canonical(&f->mmu, 0xffff800000000000ULL));
	assert_false(pvm_walk_canonical(&f->mmu, 0x0000800000000000ULL));
	assert_false(pvm_walk_canonical(&f->mmu, 0x00ff000000000000ULL));
	assert_int_equal(pvm_walk_translate(&f->g.mem, &f->mmu, 0x0000800000000000ULL,
					    false, &gpa, &exc), -EFAULT);
	assert_int_equal(exc.vector, PVM_VEC_GP);
	assert_int_equal(exc.error_code, 0);
	/* Paging off is not something the walker handles. */
	f->mmu.cr0 &= ~PVM_CR0_PG;
	assert_int_equal(pvm_walk_translate(&f->g.mem, &f->mmu, LA, false, &gpa, &exc),
			 -ENOSYS);
}

static void test_walk_la57(void **state)
{
	struct fixture *f = *state;
	uint64_t la = 0x00ff000000003000ULL; /* canonical only with 57 bits */
	uint64_t *pml5e;

	assert_true(pvm_walk_canonical(&f->mmu, la));
	assert_false(pvm_walk_canonical(&f->mmu, 0x0100000000000000ULL));
	test_guest_map(&f->g, la, DATA + 0x3000, 1, PT_P | PT_RW);
	pml5e = test_guest_entry(&f->g, la, 5);
	*pml5e &= ~PT_A;
	assert_int_equal(expect_ok(f, la + 0x10, true), DATA + 0x3010);
	assert_true(*pml5e & PT_A);
	/* An unused PML5 slot. */
	expect_pf(f, 0xffff888000000000ULL, false, 0);
	*pml5e |= PT_PS;
	expect_pf(f, la, false, PVM_PF_PRESENT | PVM_PF_RSVD);
}

static void test_area_cross_page(void **state)
{
	struct fixture *f = *state;
	uint64_t la = LA + 0xff8, out = 0, in = 0x1122334455667788ULL;
	struct pvm_area area;
	struct pvm_exc exc;

	/* Two virtually adjacent pages on non-adjacent frames. */
	test_guest_map(&f->g, LA, DATA + 0x5000, 1, PT_P | PT_RW);
	test_guest_map(&f->g, LA + 0x1000, DATA, 1, PT_P | PT_RW);
	assert_int_equal(pvm_area_map(&area, &f->g.mem, &f->mmu, la, 16, true, &exc), 0);
	assert_int_equal(area.nr_segs, 2);
	pvm_area_write(&area, 4, &in, 8);
	pvm_area_read(&area, 4, &out, 8);
	assert_int_equal(out, in);
	assert_memory_equal(f->g.mem.host + DATA + 0x5ffc, &in, 4);
	assert_memory_equal(f->g.mem.host + DATA, (uint8_t *)&in + 4, 4);

	/* The second page read-only: #PF on it, CR2 its first byte. */
	*test_guest_entry(&f->g, LA + 0x1000, 1) &= ~PT_RW;
	assert_int_equal(pvm_area_map(&area, &f->g.mem, &f->mmu, la, 16, true, &exc),
			 -EFAULT);
	assert_int_equal(exc.vector, PVM_VEC_PF);
	assert_int_equal(exc.error_code, PVM_PF_PRESENT | PVM_PF_WRITE);
	assert_int_equal(exc.cr2, LA + 0x1000);
	/* Reading is fine. */
	assert_int_equal(pvm_area_map(&area, &f->g.mem, &f->mmu, la, 16, false, &exc), 0);
	assert_int_equal(pvm_area_map(&area, &f->g.mem, &f->mmu, la, 0, false, &exc), -E2BIG);
	assert_int_equal(pvm_area_map(&area, &f->g.mem, &f->mmu, la,
				      PVM_AREA_MAX_LEN + 1, false, &exc), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walk_4k, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_not_present, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_write_protect, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_upper_level_rw, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_user_supervisor, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_large_pages, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_reserved_bits, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_outside_ram, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_canonical, setup4, teardown),
		cmocka_unit_test_setup_teardown(test_walk_la57, setup5, teardown),
		cmocka_unit_test_setup_teardown(test_area_cross_page, setup4, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
