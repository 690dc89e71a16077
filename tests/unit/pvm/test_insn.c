/*
 * The PVM fix-up decoder on real encodings (from GNU as), on what it must
 * reject, and the effective/linear address of the operand.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/pvm/pvm_insn.h"

#define NONE PVM_REG_NONE

struct good {
	const char *what;
	uint8_t bytes[15];
	uint8_t len;
	enum pvm_insn_op op;
	bool lock, addr32, rip_relative;
	enum pvm_seg seg;
	uint8_t base, index, scale;
	int32_t disp;
};

static const struct good goods[] = {
	{ "int3", { 0xcc }, 1, PVM_INSN_INT3, .base = NONE, .index = NONE },
	{ "lock cmpxchg16b (%rsi)", { 0xf0, 0x48, 0x0f, 0xc7, 0x0e }, 5,
	  PVM_INSN_CMPXCHG16B, .lock = true, .base = 6, .index = NONE, .scale = 1 },
	{ "cmpxchg16b (%rsi)", { 0x48, 0x0f, 0xc7, 0x0e }, 4,
	  PVM_INSN_CMPXCHG16B, .base = 6, .index = NONE, .scale = 1 },
	{ "lock cmpxchg16b 0x12345678(%rip)",
	  { 0xf0, 0x48, 0x0f, 0xc7, 0x0d, 0x78, 0x56, 0x34, 0x12 }, 9,
	  PVM_INSN_CMPXCHG16B, .lock = true, .rip_relative = true,
	  .base = NONE, .index = NONE, .scale = 1, .disp = 0x12345678 },
	{ "lock cmpxchg16b 0x10(%rax,%rbx,8)",
	  { 0xf0, 0x48, 0x0f, 0xc7, 0x4c, 0xd8, 0x10 }, 7, PVM_INSN_CMPXCHG16B,
	  .lock = true, .base = 0, .index = 3, .scale = 8, .disp = 0x10 },
	{ "cmpxchg16b -8(%rbp)", { 0x48, 0x0f, 0xc7, 0x4d, 0xf8 }, 5,
	  PVM_INSN_CMPXCHG16B, .base = 5, .index = NONE, .scale = 1, .disp = -8 },
	{ "lock cmpxchg16b %fs:(%rdi)", { 0x64, 0xf0, 0x48, 0x0f, 0xc7, 0x0f },
	  6, PVM_INSN_CMPXCHG16B, .lock = true, .seg = PVM_SEG_FS, .base = 7,
	  .index = NONE, .scale = 1 },
	{ "lock cmpxchg16b %gs:0x40(%r12,%r13,2)",
	  { 0x65, 0xf0, 0x4b, 0x0f, 0xc7, 0x4c, 0x6c, 0x40 }, 8,
	  PVM_INSN_CMPXCHG16B, .lock = true, .seg = PVM_SEG_GS, .base = 12,
	  .index = 13, .scale = 2, .disp = 0x40 },
	{ "addr32 lock cmpxchg16b (%esi)", { 0x67, 0xf0, 0x48, 0x0f, 0xc7, 0x0e },
	  6, PVM_INSN_CMPXCHG16B, .lock = true, .addr32 = true, .base = 6,
	  .index = NONE, .scale = 1 },
	{ "lock cmpxchg8b (%rdi)", { 0xf0, 0x0f, 0xc7, 0x0f }, 4,
	  PVM_INSN_CMPXCHG8B, .lock = true, .base = 7, .index = NONE, .scale = 1 },
	{ "cmpxchg16b (%rsp)", { 0x48, 0x0f, 0xc7, 0x0c, 0x24 }, 5,
	  PVM_INSN_CMPXCHG16B, .base = 4, .index = NONE, .scale = 1 },
	{ "cmpxchg16b 0(%r13)", { 0x49, 0x0f, 0xc7, 0x4d, 0x00 }, 5,
	  PVM_INSN_CMPXCHG16B, .base = 13, .index = NONE, .scale = 1 },
	{ "cmpxchg16b 0x1000 (SIB, no base)",
	  { 0x48, 0x0f, 0xc7, 0x0c, 0x25, 0x00, 0x10, 0x00, 0x00 }, 9,
	  PVM_INSN_CMPXCHG16B, .base = NONE, .index = NONE, .scale = 1,
	  .disp = 0x1000 },
	{ "cmpxchg16b (%rax,%r12,4)", { 0x4a, 0x0f, 0xc7, 0x0c, 0xa0 }, 5,
	  PVM_INSN_CMPXCHG16B, .base = 0, .index = 12, .scale = 4 },
	{ "xsave (%rdi)", { 0x0f, 0xae, 0x27 }, 3, PVM_INSN_XSAVE, .base = 7,
	  .index = NONE, .scale = 1 },
	{ "xsave64 (%rdi)", { 0x48, 0x0f, 0xae, 0x27 }, 4, PVM_INSN_XSAVE,
	  .base = 7, .index = NONE, .scale = 1 },
	{ "xsaveopt 0x40(%rsp)", { 0x0f, 0xae, 0x74, 0x24, 0x40 }, 5,
	  PVM_INSN_XSAVEOPT, .base = 4, .index = NONE, .scale = 1, .disp = 0x40 },
	{ "xsaveopt64 (%r15)", { 0x49, 0x0f, 0xae, 0x37 }, 4, PVM_INSN_XSAVEOPT,
	  .base = 15, .index = NONE, .scale = 1 },
	{ "xrstor (%rdi)", { 0x0f, 0xae, 0x2f }, 3, PVM_INSN_XRSTOR, .base = 7,
	  .index = NONE, .scale = 1 },
	{ "xrstor64 0x100(%rdi,%rcx,1)",
	  { 0x48, 0x0f, 0xae, 0xac, 0x0f, 0x00, 0x01, 0x00, 0x00 }, 9,
	  PVM_INSN_XRSTOR, .base = 7, .index = 1, .scale = 1, .disp = 0x100 },
	/* REX not directly before the opcode is ignored: this is cmpxchg8b. */
	{ "rex.w; lock cmpxchg8b", { 0x48, 0xf0, 0x0f, 0xc7, 0x0f }, 5,
	  PVM_INSN_CMPXCHG8B, .lock = true, .base = 7, .index = NONE, .scale = 1 },
	/* The last REX wins. */
	{ "rex; rex.w cmpxchg16b", { 0x41, 0x48, 0x0f, 0xc7, 0x0f }, 5,
	  PVM_INSN_CMPXCHG16B, .base = 7, .index = NONE, .scale = 1 },
	/* 14 prefixes + 1 opcode byte: exactly 15. */
	{ "14 prefixes int3",
	  { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
	    0x66, 0x66, 0x66, 0xcc },
	  15, PVM_INSN_INT3, .base = NONE, .index = NONE },
	/* CS/DS overrides and a disp32 with SIB index and no base. */
	{ "cmpxchg16b %ds:-4(,%rcx,4)",
	  { 0x3e, 0x48, 0x0f, 0xc7, 0x0c, 0x8d, 0xfc, 0xff, 0xff, 0xff }, 10,
	  PVM_INSN_CMPXCHG16B, .seg = PVM_SEG_DS, .base = NONE, .index = 1,
	  .scale = 4, .disp = -4 },
};

static void test_decode_good(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		struct pvm_insn insn;

		print_message("  %s\n", g->what);
		assert_int_equal(pvm_insn_decode(&insn, g->bytes, 15), 0);
		assert_int_equal(insn.op, g->op);
		assert_int_equal(insn.len, g->len);
		assert_int_equal(insn.lock, g->lock);
		assert_int_equal(insn.addr32, g->addr32);
		assert_int_equal(insn.seg, g->seg);
		assert_non_null(insn.name);
		if (g->op == PVM_INSN_INT3)
			continue;
		assert_int_equal(insn.rip_relative, g->rip_relative);
		assert_int_equal(insn.base, g->base);
		assert_int_equal(insn.index, g->index);
		assert_int_equal(insn.scale, g->scale);
		assert_int_equal(insn.disp, g->disp);
		/* The same bytes cut to their exact length still decode. */
		assert_int_equal(pvm_insn_decode(&insn, g->bytes, g->len), 0);
		assert_int_equal(insn.len, g->len);
	}
}

static void test_decode_names(void **state)
{
	static const struct {
		uint8_t bytes[5];
		const char *name;
	} named[] = {
		{ { 0x0f, 0xae, 0xe8 }, "lfence" },
		{ { 0x0f, 0xae, 0xf0 }, "mfence" },
		{ { 0x0f, 0xae, 0xf8 }, "sfence" },
		{ { 0x0f, 0x01, 0xd0 }, "xgetbv" },
		{ { 0xf3, 0x48, 0x0f, 0xb8, 0xd8 }, "popcnt" },
		{ { 0x0f, 0x01, 0xca }, "clac" },
		{ { 0x0f, 0x01, 0xcb }, "stac" },
		{ { 0x0f, 0x01, 0xc1 }, "vmcall" },
		{ { 0x66, 0x0f, 0xae, 0x37 }, "clwb" },
		{ { 0x0f, 0xc7, 0x27 }, "xsavec" },
		{ { 0x0f, 0xc7, 0x1f }, "xrstors" },
		{ { 0x0f, 0x01, 0xf9 }, "rdtscp" },
		{ { 0xc5, 0xf4, 0x58, 0xd0 }, "VEX-encoded (AVX)" },
		{ { 0x0f, 0xae, 0x17 }, "ldmxcsr" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		struct pvm_insn insn;

		assert_int_equal(pvm_insn_decode(&insn, named[i].bytes, 15), -ENOSYS);
		assert_int_equal(insn.op, PVM_INSN_NONE);
		assert_int_equal(insn.len, 0);
		assert_non_null(insn.name);
		assert_string_equal(insn.name, named[i].name);
	}
}

static void test_decode_reject(void **state)
{
	static const struct {
		const char *what;
		uint8_t bytes[15];
		size_t size;
		int err;
	} bad[] = {
		{ "cmpxchg16b register form", { 0x48, 0x0f, 0xc7, 0xc8 }, 15, -ENOSYS },
		{ "66 xsave (no such form)", { 0x66, 0x0f, 0xae, 0x27 }, 15, -ENOSYS },
		{ "f3 xsave = ptwrite", { 0xf3, 0x0f, 0xae, 0x27 }, 15, -ENOSYS },
		{ "f2 xrstor", { 0xf2, 0x0f, 0xae, 0x2f }, 15, -ENOSYS },
		{ "0f c7 /0", { 0x0f, 0xc7, 0x07 }, 15, -ENOSYS },
		{ "nop", { 0x90 }, 15, -ENOSYS },
		{ "empty", { 0 }, 0, -EINVAL },
		{ "prefix only", { 0xf0 }, 1, -EINVAL },
		{ "0f only", { 0x0f }, 1, -EINVAL },
		{ "no modrm", { 0x48, 0x0f, 0xc7 }, 3, -EINVAL },
		{ "no sib", { 0x48, 0x0f, 0xc7, 0x0c }, 4, -EINVAL },
		{ "short disp8", { 0x48, 0x0f, 0xc7, 0x4d }, 4, -EINVAL },
		{ "short disp32", { 0x48, 0x0f, 0xc7, 0x0d, 0x78, 0x56, 0x34 }, 7, -EINVAL },
		{ "short sib disp32", { 0x48, 0x0f, 0xc7, 0x0c, 0x25, 0x00, 0x10 }, 7, -EINVAL },
		{ "15 prefixes", { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
				   0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66 }, 15, -EINVAL },
		{ "16 bytes long", { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0xf0, 0x48,
				     0x0f, 0xc7, 0x8c, 0x24, 0x00, 0x00, 0x00 }, 15, -EINVAL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pvm_insn insn;

		print_message("  %s\n", bad[i].what);
		assert_int_equal(pvm_insn_decode(&insn, bad[i].bytes, bad[i].size),
				 bad[i].err);
		assert_int_equal(insn.op, PVM_INSN_NONE);
		assert_int_equal(insn.len, 0);
	}
}

static void test_decode_never_reads_past_size(void **state)
{
	/* An instruction cut at every length, copied to the end of a buffer. */
	static const uint8_t full[] = { 0x65, 0xf0, 0x4b, 0x0f, 0xc7, 0x8c,
					0x6c, 0x78, 0x56, 0x34, 0x12 };
	size_t n;

	(void)state;
	for (n = 0; n < sizeof(full); n++) {
		uint8_t *heap = malloc(n ? n : 1);
		struct pvm_insn insn;

		memcpy(heap, full, n);
		assert_int_equal(pvm_insn_decode(&insn, heap, n), -EINVAL);
		free(heap);
	}
}

static void test_effective_addr(void **state)
{
	struct kvm_regs regs = {
		.rax = 0x1000, .rbx = 0x20, .rcx = 3, .rsi = 0xffff800000001230ULL,
		.rdi = 0x7000, .rbp = 0x8010, .r12 = 0x100000, .r13 = 0x5,
		.rip = 0xffffffff81000000ULL,
	};
	struct kvm_sregs sregs = {
		.fs = { .base = 0x7f0000000000ULL },
		.gs = { .base = 0xffff888000000000ULL },
		.ds = { .base = 0x12345 }, /* ignored in 64-bit mode */
	};
	struct pvm_insn insn;

	(void)state;
	/* [rsi] */
	assert_int_equal(pvm_insn_decode(&insn, goods[1].bytes, 15), 0);
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs), regs.rsi);
	assert_int_equal(pvm_insn_linear_addr(&insn, &regs, &sregs), regs.rsi);
	assert_false(pvm_insn_uses_ss(&insn));
	/* [rip + 0x12345678] is relative to the next instruction. */
	assert_int_equal(pvm_insn_decode(&insn, goods[3].bytes, 15), 0);
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs),
			 regs.rip + 9 + 0x12345678);
	/* 0x10(%rax,%rbx,8) */
	assert_int_equal(pvm_insn_decode(&insn, goods[4].bytes, 15), 0);
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs), 0x1000 + 0x20 * 8 + 0x10);
	/* -8(%rbp) uses SS */
	assert_int_equal(pvm_insn_decode(&insn, goods[5].bytes, 15), 0);
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs), 0x8008);
	assert_true(pvm_insn_uses_ss(&insn));
	/* %fs:(%rdi) */
	assert_int_equal(pvm_insn_decode(&insn, goods[6].bytes, 15), 0);
	assert_int_equal(pvm_insn_linear_addr(&insn, &regs, &sregs),
			 0x7f0000000000ULL + 0x7000);
	/* %gs:0x40(%r12,%r13,2) */
	assert_int_equal(pvm_insn_decode(&insn, goods[7].bytes, 15), 0);
	assert_int_equal(pvm_insn_linear_addr(&insn, &regs, &sregs),
			 0xffff888000000000ULL + 0x100000 + 5 * 2 + 0x40);
	/* addr32 (%esi): the high half of rsi is dropped */
	assert_int_equal(pvm_insn_decode(&insn, goods[8].bytes, 15), 0);
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs), 0x1230);
	/* (%rsp) uses SS, a %ds override does not */
	assert_int_equal(pvm_insn_decode(&insn, goods[10].bytes, 15), 0);
	assert_true(pvm_insn_uses_ss(&insn));
	/* absolute 0x1000 */
	assert_int_equal(pvm_insn_decode(&insn, goods[12].bytes, 15), 0);
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs), 0x1000);
	/* %ds:-4(,%rcx,4): no base, DS base ignored */
	assert_int_equal(pvm_insn_decode(&insn, goods[23].bytes, 15), 0);
	assert_int_equal(pvm_insn_linear_addr(&insn, &regs, &sregs), 3 * 4 - 4);
	assert_false(pvm_insn_uses_ss(&insn));
}

static void test_effective_addr_wraps(void **state)
{
	/* 67 + rip-relative: EIP + disp, truncated to 32 bits. */
	static const uint8_t eip_rel[] = { 0x67, 0x48, 0x0f, 0xc7, 0x0d,
					   0x00, 0x00, 0x00, 0x80 };
	/* 67 + base + disp8 wraps at 4 GiB. */
	static const uint8_t wrap32[] = { 0x67, 0x48, 0x0f, 0xc7, 0x4e, 0x10 };
	struct kvm_regs regs = { .rsi = 0xfffffff8, .rip = 0x7ffffff0 };
	struct pvm_insn insn;

	(void)state;
	assert_int_equal(pvm_insn_decode(&insn, eip_rel, sizeof(eip_rel)), 0);
	assert_true(insn.rip_relative && insn.addr32);
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs),
			 (0x7ffffff0ULL + 9 + 0x80000000ULL) & 0xffffffffULL);
	assert_int_equal(pvm_insn_decode(&insn, wrap32, sizeof(wrap32)), 0);
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs), 0x8);
	/* Without 67 the 64-bit sum wraps at 2^64. */
	regs.rsi = ~0ULL;
	assert_int_equal(pvm_insn_decode(&insn, goods[5].bytes, 15), 0);
	regs.rbp = 4;
	assert_int_equal(pvm_insn_effective_addr(&insn, &regs), (uint64_t)-4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_good),
		cmocka_unit_test(test_decode_names),
		cmocka_unit_test(test_decode_reject),
		cmocka_unit_test(test_decode_never_reads_past_size),
		cmocka_unit_test(test_effective_addr),
		cmocka_unit_test(test_effective_addr_wraps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
