/*
 * pvm_fixup() end to end on a fake vCPU (calloc'ed kvm_run, fake guest RAM
 * with page tables, no KVM): int3, cmpxchg16b/8b success, mismatch, #GP,
 * #SS, #PF with and without the payload capability, the checks that make a
 * fix-up refuse, and the failure report.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "arch/x86/pvm/pvm_fixup.h"
#include "pvm_test.h"

#define RIP 0xffffffff81000000ULL
#define LA 0xffff888000201000ULL
#define DATA 0x400000ULL
#define ZF (1ULL << 6)
#define CF (1ULL << 0)
#define RF (1ULL << 16)
#define TF (1ULL << 8)
#define DR6_BS (1ULL << 14)

static const uint8_t lock_cmpxchg16b_rsi[] = { 0xf0, 0x48, 0x0f, 0xc7, 0x0e };

static int setup(void **state)
{
	struct test_vcpu *t = calloc(1, sizeof(*t));

	test_vcpu_init(t, 4);
	t->vcpu.run->s.regs.regs.rip = RIP;
	test_guest_map(&t->g, LA, DATA, 1, PT_P | PT_RW);
	t->vm.mem = t->g.mem;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct test_vcpu *t = *state;

	test_vcpu_exit(t);
	free(t);
	return 0;
}

static struct kvm_sync_regs *sregs_of(struct test_vcpu *t)
{
	return &t->vcpu.run->s.regs;
}

static uint64_t *guest_u64(struct test_vcpu *t, uint64_t gpa)
{
	return test_guest_u64(&t->g, gpa);
}

static uint64_t guest_get(struct test_vcpu *t, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, t->g.mem.host + gpa, sizeof(v));
	return v;
}

static void guest_put(struct test_vcpu *t, uint64_t gpa, uint64_t v)
{
	memcpy(t->g.mem.host + gpa, &v, sizeof(v));
}

/* The fix-up injected @vector (error code @ec, or none if < 0), RIP unchanged. */
static void expect_injected(struct test_vcpu *t, uint8_t vector, int64_t ec)
{
	struct kvm_sync_regs *s = sregs_of(t);

	assert_int_equal(s->events.exception.injected, 1);
	assert_int_equal(s->events.exception.pending, 0);
	assert_int_equal(s->events.exception.nr, vector);
	assert_int_equal(s->events.exception.has_error_code, ec >= 0);
	if (ec >= 0)
		assert_int_equal(s->events.exception.error_code, ec);
	assert_int_equal(s->events.exception_has_payload, 0);
	assert_int_equal(s->regs.rip, RIP);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs, KVM_SYNC_X86_EVENTS);
}

static void test_int3(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	uint8_t int3 = 0xcc;

	s->regs.rflags |= RF;
	s->events.interrupt.shadow = KVM_X86_SHADOW_INT_STI;
	test_vcpu_fail(t, &int3, 1);
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(s->regs.rip, RIP + 1);
	assert_false(s->regs.rflags & RF);
	assert_int_equal(s->events.interrupt.shadow, 0);
	assert_int_equal(s->events.exception.injected, 1);
	assert_int_equal(s->events.exception.nr, 3);
	assert_int_equal(s->events.exception.has_error_code, 0);
	assert_int_equal(s->events.exception.pending, 0);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs,
			 KVM_SYNC_X86_REGS | KVM_SYNC_X86_EVENTS);
}

static void test_int3_legacy_modes(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	uint8_t int3 = 0xcc;

	/* 32-bit protected mode: EIP wraps at 4 GiB. */
	s->sregs.efer = 0;
	s->sregs.cs.l = 0;
	s->sregs.cs.db = 1;
	s->regs.rip = 0xffffffff;
	test_vcpu_fail(t, &int3, 1);
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(s->regs.rip, 0);
	assert_int_equal(s->events.exception.nr, 3);
	/* 16-bit code: IP wraps at 64 KiB. Other bytes are not decoded there. */
	s->sregs.cs.db = 0;
	s->regs.rip = 0xffff;
	s->events.exception.injected = 0;
	test_vcpu_fail(t, &int3, 1);
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(s->regs.rip, 0);
	s->events.exception.injected = 0;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), -ENOSYS);
}

static void test_lock_int3_is_ud(void **state)
{
	struct test_vcpu *t = *state;
	static const uint8_t lock_int3[] = { 0xf0, 0xcc };

	test_vcpu_fail(t, lock_int3, sizeof(lock_int3));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_UD, -1);
}

static void test_cmpxchg16b_success(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	uint64_t *pte = test_guest_entry(&t->g, LA, 1);

	guest_u64(t, DATA + 0x10)[0] = 0x1111;
	guest_u64(t, DATA + 0x10)[1] = 0x2222;
	s->regs.rsi = LA + 0x10;
	s->regs.rax = 0x1111;
	s->regs.rdx = 0x2222;
	s->regs.rbx = 0xaaaa;
	s->regs.rcx = 0xbbbb;
	s->regs.rflags = 0x2 | CF;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(guest_u64(t, DATA + 0x10)[0], 0xaaaa);
	assert_int_equal(guest_u64(t, DATA + 0x10)[1], 0xbbbb);
	assert_int_equal(s->regs.rflags, 0x2 | CF | ZF);
	assert_int_equal(s->regs.rax, 0x1111);
	assert_int_equal(s->regs.rdx, 0x2222);
	assert_int_equal(s->regs.rip, RIP + 5);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs, KVM_SYNC_X86_REGS);
	assert_int_equal(s->events.exception.injected, 0);
	assert_true(*pte & PT_A);
	assert_true(*pte & PT_D);
}

static void test_cmpxchg16b_mismatch(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	uint64_t *pte = test_guest_entry(&t->g, LA, 1);

	guest_u64(t, DATA + 0x20)[0] = 0x1234;
	guest_u64(t, DATA + 0x20)[1] = 0x5678;
	s->regs.rsi = LA + 0x20;
	s->regs.rax = 0x1234;
	s->regs.rdx = 0x9999;
	s->regs.rbx = 0xaaaa;
	s->regs.rcx = 0xbbbb;
	s->regs.rflags = 0x2 | ZF | CF;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi + 1, sizeof(lock_cmpxchg16b_rsi) - 1);
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(guest_u64(t, DATA + 0x20)[0], 0x1234);
	assert_int_equal(guest_u64(t, DATA + 0x20)[1], 0x5678);
	assert_int_equal(s->regs.rflags, 0x2 | CF);
	assert_int_equal(s->regs.rax, 0x1234);
	assert_int_equal(s->regs.rdx, 0x5678);
	assert_int_equal(s->regs.rip, RIP + 4);
	/* The CPU writes even when the compare fails. */
	assert_true(*pte & PT_D);
}

static void test_cmpxchg16b_misaligned(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);

	s->regs.rsi = LA + 0x18;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_GP, 0);
}

static void test_cmpxchg16b_page_fault_payload(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	uint64_t before = guest_u64(t, DATA)[0];

	s->regs.rsi = LA + 0x1000; /* the next page is not mapped */
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(s->events.exception.pending, 1);
	assert_int_equal(s->events.exception.injected, 0);
	assert_int_equal(s->events.exception.nr, PVM_VEC_PF);
	assert_int_equal(s->events.exception.has_error_code, 1);
	assert_int_equal(s->events.exception.error_code, PVM_PF_WRITE);
	assert_int_equal(s->events.exception_has_payload, 1);
	assert_int_equal(s->events.exception_payload, LA + 0x1000);
	assert_int_equal(s->regs.rip, RIP);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs, KVM_SYNC_X86_EVENTS);
	assert_int_equal(guest_u64(t, DATA)[0], before);

	/* A read-only page: protection fault. */
	*test_guest_entry(&t->g, LA, 1) &= ~PT_RW;
	s->events.exception.pending = 0;
	s->regs.rsi = LA;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(s->events.exception.error_code, PVM_PF_PRESENT | PVM_PF_WRITE);
	assert_int_equal(s->events.exception_payload, LA);
}

static void test_cmpxchg16b_page_fault_no_payload(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);

	/* Without KVM_CAP_EXCEPTION_PAYLOAD CR2 needs KVM_SET_SREGS: no fd here. */
	s->events.flags &= ~KVM_VCPUEVENT_VALID_PAYLOAD;
	s->regs.rsi = LA + 0x1000;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), -EBADF);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs, 0);
	assert_int_equal(s->events.exception.injected, 0);
}

/*
 * RFLAGS.TF: an instruction completed in user space is followed by the
 * single-step #DB trap (DR6.BS, RIP after it), pending with its DR6 in the
 * payload as KVM's emulator queues it; a faulting one gets only its fault;
 * int3 keeps its plain #BP (stepping into the handler is not modelled).
 */
static void test_single_step(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	uint8_t int3 = 0xcc;

	s->regs.rsi = LA + 0x10;
	s->regs.rflags = 0x2 | TF;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(s->regs.rip, RIP + 5);
	assert_true(s->regs.rflags & TF);
	assert_int_equal(s->events.exception.pending, 1);
	assert_int_equal(s->events.exception.injected, 0);
	assert_int_equal(s->events.exception.nr, PVM_VEC_DB);
	assert_int_equal(s->events.exception.has_error_code, 0);
	assert_int_equal(s->events.exception_has_payload, 1);
	assert_int_equal(s->events.exception_payload, DR6_BS);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs,
			 KVM_SYNC_X86_REGS | KVM_SYNC_X86_EVENTS);

	/* A fault: no trap. */
	s->events.exception.pending = 0;
	s->events.exception_has_payload = 0;
	t->vcpu.run->kvm_dirty_regs = 0;
	s->regs.rip = RIP;
	s->regs.rsi = LA + 0x18;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_GP, 0);

	/* int3: its #BP, nothing else. */
	s->events.exception.injected = 0;
	t->vcpu.run->kvm_dirty_regs = 0;
	test_vcpu_fail(t, &int3, 1);
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(s->events.exception.nr, PVM_VEC_BP);
	assert_int_equal(s->events.exception.injected, 1);
	assert_int_equal(s->events.exception.pending, 0);

	/* Without KVM_CAP_EXCEPTION_PAYLOAD DR6 needs KVM_SET_DEBUGREGS. */
	s->events.exception.injected = 0;
	s->events.flags &= ~KVM_VCPUEVENT_VALID_PAYLOAD;
	s->regs.rip = RIP;
	s->regs.rsi = LA + 0x10;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), -EBADF);
	assert_int_equal(s->events.exception.pending, 0);
	assert_int_equal(s->events.exception.injected, 0);
}

static void test_cmpxchg16b_noncanonical(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	static const uint8_t rsp_based[] = { 0x48, 0x0f, 0xc7, 0x0c, 0x24 };

	s->regs.rsi = 0x0000800000000000ULL;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_GP, 0);

	s->events.exception.injected = 0;
	s->regs.rsp = 0x0000800000000000ULL;
	test_vcpu_fail(t, rsp_based, sizeof(rsp_based));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_SS, 0);
}

static void test_cmpxchg16b_addressing(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	/* lock cmpxchg16b %fs:0x40(%rdi) and lock cmpxchg16b 0x100(%rip) */
	static const uint8_t fs_rdi[] = { 0x64, 0xf0, 0x48, 0x0f, 0xc7, 0x4f, 0x40 };
	static const uint8_t rip_rel[] = { 0xf0, 0x48, 0x0f, 0xc7, 0x0d,
					   0x00, 0x01, 0x00, 0x00 };

	s->sregs.fs.base = LA;
	s->regs.rdi = 0x100;
	s->regs.rbx = 7;
	test_vcpu_fail(t, fs_rdi, sizeof(fs_rdi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(guest_u64(t, DATA + 0x140)[0], 7);
	assert_int_equal(s->regs.rip, RIP + sizeof(fs_rdi));

	/* Code and data in the same page: RIP-relative to the next insn. */
	s->regs.rip = LA + 0x800 - sizeof(rip_rel);
	s->regs.rbx = 9;
	test_vcpu_fail(t, rip_rel, sizeof(rip_rel));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(guest_u64(t, DATA + 0x900)[0], 9);
	assert_int_equal(s->regs.rip, LA + 0x800);
}

static void test_cmpxchg8b(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	static const uint8_t lock_cmpxchg8b_rdi[] = { 0xf0, 0x0f, 0xc7, 0x0f };

	guest_put(t, DATA + 0x44, 0x0000000200000001ULL);
	s->regs.rdi = LA + 0x44; /* unaligned, inside one cache line */
	s->regs.rax = 0xffffffff00000001ULL;
	s->regs.rdx = 0xffffffff00000002ULL;
	s->regs.rbx = 0x5;
	s->regs.rcx = 0x6;
	test_vcpu_fail(t, lock_cmpxchg8b_rdi, sizeof(lock_cmpxchg8b_rdi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_int_equal(guest_get(t, DATA + 0x44), 0x0000000600000005ULL);
	assert_true(s->regs.rflags & ZF);
	/* Success writes no register: the high halves stay. */
	assert_int_equal(s->regs.rax, 0xffffffff00000001ULL);

	/* Mismatch: EDX:EAX loaded, zero-extended. */
	test_vcpu_fail(t, lock_cmpxchg8b_rdi, sizeof(lock_cmpxchg8b_rdi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	assert_false(s->regs.rflags & ZF);
	assert_int_equal(s->regs.rax, 5);
	assert_int_equal(s->regs.rdx, 6);

	/* Crossing a cache line would be a host split lock: refused. */
	s->regs.rdi = LA + 0x3c;
	s->regs.rip = RIP;
	test_vcpu_fail(t, lock_cmpxchg8b_rdi, sizeof(lock_cmpxchg8b_rdi));
	assert_int_equal(pvm_fixup(&t->vcpu), -ENOSYS);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs, 0);
}

static void test_cmpxchg16b_not_ram(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);

	*test_guest_entry(&t->g, LA, 1) = 0xfee00000ULL | PT_P | PT_RW;
	s->regs.rsi = LA;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), -ENOSYS);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs, 0);
	/* A page table outside RAM. */
	*test_guest_entry(&t->g, LA, 2) = 0x40000000ULL | PT_P | PT_RW;
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	assert_int_equal(pvm_fixup(&t->vcpu), -ENOSYS);
}

static void test_xsave_checks_before_ioctls(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_sync_regs *s = sregs_of(t);
	static const uint8_t xsave_rdi[] = { 0x0f, 0xae, 0x27 };
	static const uint8_t xrstor64_rdi[] = { 0x48, 0x0f, 0xae, 0x2f };
	static const uint8_t lock_xsave[] = { 0xf0, 0x0f, 0xae, 0x27 };

	/* CR4.OSXSAVE clear: #UD, even before a non-canonical address. */
	s->regs.rdi = 0x0000800000000000ULL;
	test_vcpu_fail(t, xsave_rdi, sizeof(xsave_rdi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_UD, -1);
	s->regs.rdi = LA;

	s->sregs.cr4 |= PVM_CR4_OSXSAVE;
	s->sregs.cr0 |= PVM_CR0_TS;
	s->events.exception.injected = 0;
	test_vcpu_fail(t, xrstor64_rdi, sizeof(xrstor64_rdi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_NM, -1);

	s->sregs.cr0 &= ~PVM_CR0_TS;
	s->events.exception.injected = 0;
	s->regs.rdi = LA + 0x20;
	test_vcpu_fail(t, xrstor64_rdi, sizeof(xrstor64_rdi));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_GP, 0);

	s->events.exception.injected = 0;
	test_vcpu_fail(t, lock_xsave, sizeof(lock_xsave));
	assert_int_equal(pvm_fixup(&t->vcpu), 0);
	expect_injected(t, PVM_VEC_UD, -1);

	/* Aligned: now KVM_GET_XCRS is needed, and there is no vCPU fd. */
	s->events.exception.injected = 0;
	s->regs.rdi = LA;
	test_vcpu_fail(t, xsave_rdi, sizeof(xsave_rdi));
	assert_int_equal(pvm_fixup(&t->vcpu), -EBADF);
	assert_int_equal(t->vcpu.run->kvm_dirty_regs, 0);
}

static void test_refusals(void **state)
{
	struct test_vcpu *t = *state;
	struct kvm_run *run = t->vcpu.run;
	static const uint8_t xgetbv[] = { 0x0f, 0x01, 0xd0 };
	uint8_t int3 = 0xcc;

	test_vcpu_fail(t, xgetbv, sizeof(xgetbv));
	assert_int_equal(pvm_fixup(&t->vcpu), -ENOSYS);

	test_vcpu_fail(t, &int3, 1);
	run->emulation_failure.suberror = KVM_INTERNAL_ERROR_DELIVERY_EV;
	assert_int_equal(pvm_fixup(&t->vcpu), -EINVAL);

	test_vcpu_fail(t, &int3, 1);
	run->emulation_failure.flags = 0;
	assert_int_equal(pvm_fixup(&t->vcpu), -EINVAL);

	test_vcpu_fail(t, &int3, 1);
	run->exit_reason = KVM_EXIT_IO;
	assert_int_equal(pvm_fixup(&t->vcpu), -EINVAL);

	test_vcpu_fail(t, &int3, 1);
	run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	assert_int_equal(pvm_fixup(&t->vcpu), -EINVAL);
	run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS |
			      KVM_SYNC_X86_EVENTS;

	test_vcpu_fail(t, &int3, 1);
	run->s.regs.events.exception.pending = 1;
	assert_int_equal(pvm_fixup(&t->vcpu), -EINVAL);
	run->s.regs.events.exception.pending = 0;

	/* A truncated fetch window. */
	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	run->emulation_failure.insn_size = 3;
	assert_int_equal(pvm_fixup(&t->vcpu), -EINVAL);

	assert_int_equal(run->kvm_dirty_regs, 0);
	assert_int_equal(run->s.regs.regs.rip, RIP);
}

static void test_describe(void **state)
{
	struct test_vcpu *t = *state;
	static const uint8_t xgetbv[] = { 0x0f, 0x01, 0xd0 };
	char buf[256], tiny[24];

	test_vcpu_fail(t, lock_cmpxchg16b_rsi, sizeof(lock_cmpxchg16b_rsi));
	pvm_describe_failure(&t->vcpu, buf, sizeof(buf));
	assert_string_equal(buf, "emulation failure at RIP 0xffffffff81000000 (CPL 0): "
				 "bytes f0 48 0f c7 0e (cmpxchg16b)");

	test_vcpu_fail(t, xgetbv, sizeof(xgetbv));
	pvm_describe_failure(&t->vcpu, buf, sizeof(buf));
	assert_string_equal(buf, "emulation failure at RIP 0xffffffff81000000 (CPL 0): "
				 "bytes 0f 01 d0 90 90 90 90 90 90 90 90 90 90 90 90 "
				 "(xgetbv; guest kernel needs noxsave)");

	t->vcpu.run->s.regs.sregs.cr0 |= 1;
	t->vcpu.run->s.regs.sregs.ss.dpl = 3;
	t->vcpu.run->emulation_failure.flags = 0;
	pvm_describe_failure(&t->vcpu, buf, sizeof(buf));
	assert_string_equal(buf, "emulation failure at RIP 0xffffffff81000000 (CPL 3): "
				 "no instruction bytes");

	pvm_describe_failure(&t->vcpu, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_int3),
		T(test_int3_legacy_modes),
		T(test_lock_int3_is_ud),
		T(test_cmpxchg16b_success),
		T(test_cmpxchg16b_mismatch),
		T(test_cmpxchg16b_misaligned),
		T(test_cmpxchg16b_page_fault_payload),
		T(test_cmpxchg16b_page_fault_no_payload),
		T(test_cmpxchg16b_noncanonical),
		T(test_single_step),
		T(test_cmpxchg16b_addressing),
		T(test_cmpxchg8b),
		T(test_cmpxchg16b_not_ram),
		T(test_xsave_checks_before_ioctls),
		T(test_refusals),
		T(test_describe),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
