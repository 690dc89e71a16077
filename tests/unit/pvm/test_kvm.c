/*
 * The PVM fix-ups against the real /dev/kvm of a PVM host: a tiny 64-bit
 * guest (hand-written below, copied into guest RAM) runs int3, cmpxchg16b,
 * cmpxchg8b, xsave, xsaveopt and xrstor at CPL0, some of them made to
 * fault, and records what it saw; the host loop calls pvm_fixup() on every
 * emulation failure, then checks the guest's records and memory.
 *
 * Registered in the 'kvm' suite, not 'unit': it needs /dev/kvm and skips
 * unless the host is PVM (with VT-x/AMD-V these instructions never fail).
 * Run twice: with KVM_CAP_EXCEPTION_PAYLOAD and without it (the #PF path
 * then sets CR2 with KVM_SET_SREGS).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/pvm/pvm_fixup.h"
#include "core/vcpu.h"
#include "core/vm.h"

#define RAM (4ULL << 20)
#define GDT 0x1000
#define TSS 0x1800
#define IDT 0x2000
#define PML4 0x3000
#define CODE 0x10000
#define MBOX 0x20000
#define XA 0x30000
#define XB 0x31000
#define XC 0x32fc0 /* 64-byte aligned, crosses into the next page */
#define UNMAPPED 0x40000
#define READONLY 0x41000
#define STACK 0x80000
#define BIG 0x200000 /* mapped by a 2 MiB page */

#define RES(n) (MBOX + 0x100 + 8 * (n))
#define CX (MBOX + 0x800)
#define DONE_PORT 0xf4

/*
 * The guest. Mailbox: BP_COUNT, VEC, ERR, CR2 of the last exception,
 * RECOVER (where a faulting test resumes), EXC_COUNT, then RES(n).
 */
__asm__(
	".pushsection .rodata.pvm_guest, \"a\"\n"
	".balign 16\n"
	".equ M, 0x20000\n"
	".equ BP_COUNT, M + 0x00\n"
	".equ VEC, M + 0x08\n"
	".equ ERR, M + 0x10\n"
	".equ CR2V, M + 0x18\n"
	".equ RECOVER, M + 0x20\n"
	".equ EXC_COUNT, M + 0x28\n"
	".equ RES, M + 0x100\n"
	".equ CX, M + 0x800\n"
	".equ XA, 0x30000\n"
	".equ XB, 0x31000\n"
	".equ XC, 0x32fc0\n"
	".equ UNMAPPED, 0x40000\n"
	".equ READONLY, 0x41000\n"
	".equ BIG, 0x200000\n"
	".globl pvm_guest_start\n"
	"pvm_guest_start:\n"
	/* 1: int3, twice */
	"	int3\n"
	"	int3\n"
	/* 2: cmpxchg16b that succeeds */
	"	movq $1, CX\n"
	"	movq $2, CX + 8\n"
	"	mov $1, %eax\n"
	"	mov $2, %edx\n"
	"	mov $3, %ebx\n"
	"	mov $4, %ecx\n"
	"	lock cmpxchg16b CX\n"
	"	setz %sil\n"
	"	movzbq %sil, %rsi\n"
	"	mov %rsi, RES + 0\n"
	/* 3: ...and again, now a mismatch */
	"	lock cmpxchg16b CX\n"
	"	setz %sil\n"
	"	movzbq %sil, %rsi\n"
	"	mov %rsi, RES + 8\n"
	"	mov %rax, RES + 16\n"
	"	mov %rdx, RES + 24\n"
	/* 4: %gs override, SIB with scale: GS.base = M */
	"	mov $0xc0000101, %ecx\n"
	"	mov $M, %eax\n"
	"	xor %edx, %edx\n"
	"	wrmsr\n"
	"	movq $5, CX + 0x10\n"
	"	movq $6, CX + 0x18\n"
	"	mov $5, %eax\n"
	"	mov $6, %edx\n"
	"	mov $7, %ebx\n"
	"	mov $8, %ecx\n"
	"	mov $0x800, %r9\n"
	"	mov $2, %r10\n"
	"	cmpxchg16b %gs:0x8(%r9, %r10, 4)\n"
	/* 5: RIP-relative, on a slot in the code page */
	"	mov $0x11, %eax\n"
	"	mov $0x22, %edx\n"
	"	mov $0x33, %ebx\n"
	"	mov $0x44, %ecx\n"
	"	lock cmpxchg16b rip_slot(%rip)\n"
	/* 6: misaligned: #GP(0) */
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, RECOVER\n"
	"	lock cmpxchg16b CX + 8\n"
	"1:	mov VEC, %rax\n"
	"	mov %rax, RES + 32\n"
	"	mov ERR, %rax\n"
	"	mov %rax, RES + 40\n"
	/* 7: not present: #PF(W) */
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, RECOVER\n"
	"	lock cmpxchg16b UNMAPPED + 0x20\n"
	"1:	mov VEC, %rax\n"
	"	mov %rax, RES + 48\n"
	"	mov ERR, %rax\n"
	"	mov %rax, RES + 56\n"
	"	mov CR2V, %rax\n"
	"	mov %rax, RES + 64\n"
	/* 8: read-only with CR0.WP: #PF(P|W) */
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, RECOVER\n"
	"	lock cmpxchg16b READONLY + 0x10\n"
	"1:	mov VEC, %rax\n"
	"	mov %rax, RES + 72\n"
	"	mov ERR, %rax\n"
	"	mov %rax, RES + 80\n"
	"	mov CR2V, %rax\n"
	"	mov %rax, RES + 88\n"
	/* 9: through a 2 MiB page */
	"	movq $9, BIG + 0x10\n"
	"	movq $0, BIG + 0x18\n"
	"	mov $9, %eax\n"
	"	xor %edx, %edx\n"
	"	mov $0xa, %ebx\n"
	"	mov $0xb, %ecx\n"
	"	lock cmpxchg16b BIG + 0x10\n"
	/* 10: cmpxchg8b */
	"	movl $1, CX + 0x20\n"
	"	movl $2, CX + 0x24\n"
	"	mov $1, %eax\n"
	"	mov $2, %edx\n"
	"	mov $0x55, %ebx\n"
	"	mov $0x66, %ecx\n"
	"	lock cmpxchg8b CX + 0x20\n"
	"	setz %sil\n"
	"	movzbq %sil, %rsi\n"
	"	mov %rsi, RES + 96\n"
	/* 11: xsave64 of everything */
	"	movdqu xmm_pattern(%rip), %xmm0\n"
	"	movdqu xmm_pattern + 16(%rip), %xmm15\n"
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	xsave64 XA\n"
	/* 12: xrstor64 of a changed XMM0 and a YMM0 upper half */
	"	movq $0x1111, XA + 160\n"
	"	movq $0x2222, XA + 168\n"
	"	orq $6, XA + 512\n"
	"	movq $0x7777, XA + 576\n"
	"	movq $0x8888, XA + 584\n"
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	xrstor64 XA\n"
	"	movdqu %xmm0, RES + 104\n"
	/* 13: xsave (32-bit x87 format) into a zeroed area */
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	xsave XB\n"
	/* 14: xrstor of SSE with XSTATE_BV[1] = 0: XMM back to zero */
	"	andq $-3, XB + 512\n"
	"	mov $2, %eax\n"
	"	xor %edx, %edx\n"
	"	xrstor XB\n"
	"	movdqu %xmm0, RES + 120\n"
	/* 15: xrstor of a compacted/reserved header: #GP(0) */
	"	movq $1, XB + 520\n"
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, RECOVER\n"
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	xrstor XB\n"
	"1:	mov VEC, %rax\n"
	"	mov %rax, RES + 136\n"
	/* 16: xsaveopt misaligned: #GP(0) */
	"	movq $0, VEC\n"
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, RECOVER\n"
	"	xsaveopt XA + 0x20\n"
	"1:	mov VEC, %rax\n"
	"	mov %rax, RES + 144\n"
	/* 17: xsave64 across a page boundary */
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	xsave64 XC\n"
	/* 18: xrstor from a page that is not there: #PF(0) */
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, RECOVER\n"
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	xrstor UNMAPPED\n"
	"1:	mov VEC, %rax\n"
	"	mov %rax, RES + 152\n"
	"	mov ERR, %rax\n"
	"	mov %rax, RES + 160\n"
	"	mov CR2V, %rax\n"
	"	mov %rax, RES + 168\n"
	/* done */
	"	mov $0x42, %al\n"
	"	out %al, $0xf4\n"
	"	hlt\n"
	/* exception handlers */
	".globl pvm_guest_bp\n"
	"pvm_guest_bp:\n"
	"	incq BP_COUNT\n"
	"	iretq\n"
	".globl pvm_guest_ud\n"
	"pvm_guest_ud:\n"
	"	movq $6, VEC\n"
	"	movq $-1, ERR\n"
	"	jmp 2f\n"
	".globl pvm_guest_gp\n"
	"pvm_guest_gp:\n"
	"	movq $13, VEC\n"
	"	jmp 1f\n"
	".globl pvm_guest_ss\n"
	"pvm_guest_ss:\n"
	"	movq $12, VEC\n"
	"	jmp 1f\n"
	".globl pvm_guest_pf\n"
	"pvm_guest_pf:\n"
	"	movq $14, VEC\n"
	"1:	popq ERR\n"
	"2:	push %rax\n"
	"	mov %cr2, %rax\n"
	"	mov %rax, CR2V\n"
	"	mov RECOVER, %rax\n"
	"	mov %rax, 8(%rsp)\n"
	"	pop %rax\n"
	"	incq EXC_COUNT\n"
	"	iretq\n"
	".balign 16\n"
	".globl pvm_guest_rip_slot\n"
	"pvm_guest_rip_slot:\n"
	"rip_slot:\n"
	"	.quad 0x11, 0x22\n"
	"xmm_pattern:\n"
	"	.quad 0x0123456789abcdef, 0xfedcba9876543210\n"
	"	.quad 0x5555aaaa5555aaaa, 0x0f0f0f0ff0f0f0f0\n"
	".globl pvm_guest_end\n"
	"pvm_guest_end:\n"
	".popsection\n");

extern const uint8_t pvm_guest_start[], pvm_guest_end[], pvm_guest_bp[],
	pvm_guest_ud[], pvm_guest_gp[], pvm_guest_ss[], pvm_guest_pf[],
	pvm_guest_rip_slot[];

struct kvm_env {
	int kvm_fd;
	struct vm vm;
	struct vcpu vcpu;
};

static uint64_t guest_code_addr(const uint8_t *sym)
{
	return CODE + (uint64_t)(sym - pvm_guest_start);
}

static uint64_t rd64(struct kvm_env *e, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, e->vm.mem.host + gpa, 8);
	return v;
}

static uint32_t rd32(struct kvm_env *e, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, e->vm.mem.host + gpa, 4);
	return v;
}

static void wr64(struct kvm_env *e, uint64_t gpa, uint64_t v)
{
	memcpy(e->vm.mem.host + gpa, &v, 8);
}

static void set_gate(struct kvm_env *e, unsigned int vec, const uint8_t *handler)
{
	uint64_t off = guest_code_addr(handler);
	uint64_t lo = (off & 0xffff) | (0x08ULL << 16) | (0x8eULL << 40) |
		      ((off >> 16 & 0xffff) << 48);

	wr64(e, IDT + 16 * vec, lo);
	wr64(e, IDT + 16 * vec + 8, off >> 32);
}

static void build_guest(struct kvm_env *e)
{
	uint64_t i;

	memcpy(e->vm.mem.host + CODE, pvm_guest_start,
	       (size_t)(pvm_guest_end - pvm_guest_start));
	wr64(e, GDT + 8, 0x00af9a000000ffffULL);  /* 0x08: 64-bit code */
	wr64(e, GDT + 16, 0x00cf92000000ffffULL); /* 0x10: data */
	set_gate(e, 3, pvm_guest_bp);
	set_gate(e, 6, pvm_guest_ud);
	set_gate(e, 12, pvm_guest_ss);
	set_gate(e, 13, pvm_guest_gp);
	set_gate(e, 14, pvm_guest_pf);
	/* PML4 -> PDPT -> PD: [0, 2M) in 4 KiB pages, [2M, 4M) one 2 MiB page. */
	wr64(e, PML4, (PML4 + 0x1000) | 3);
	wr64(e, PML4 + 0x1000, (PML4 + 0x2000) | 3);
	wr64(e, PML4 + 0x2000, (PML4 + 0x3000) | 3);
	wr64(e, PML4 + 0x2000 + 8, BIG | 0x83);
	for (i = 0; i < 512; i++)
		wr64(e, PML4 + 0x3000 + 8 * i, (i << 12) | 3);
	wr64(e, PML4 + 0x3000 + 8 * (UNMAPPED >> 12), 0);
	wr64(e, PML4 + 0x3000 + 8 * (READONLY >> 12), READONLY | 1);
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

static int set_cpu_state(struct kvm_env *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_xcrs xcrs;
	uint32_t a, d;

	if (ioctl(e->vcpu.fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	seg(&sregs.cs, 0x08, 0xb, true);
	seg(&sregs.ds, 0x10, 3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = TSS;
	sregs.tr.limit = 0x67;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	sregs.gdt.base = GDT;
	sregs.gdt.limit = 23;
	sregs.idt.base = IDT;
	sregs.idt.limit = 16 * 256 - 1;
	sregs.cr0 = 0x80050033; /* PG WP NE ET MP PE */
	sregs.cr3 = PML4;
	sregs.cr4 = 0x40620; /* OSXSAVE OSXMMEXCPT OSFXSR PAE */
	sregs.efer = 0xd00;  /* NXE LMA LME */
	if (ioctl(e->vcpu.fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE;
	regs.rsp = STACK;
	regs.rflags = 2;
	if (ioctl(e->vcpu.fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	/* XCR0 = x87 | SSE | AVX where the host has them. */
	__asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
	memset(&xcrs, 0, sizeof(xcrs));
	xcrs.nr_xcrs = 1;
	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = a & 7;
	if (ioctl(e->vcpu.fd, KVM_SET_XCRS, &xcrs) < 0)
		return -errno;
	return 0;
}

static int set_cpuid(struct kvm_env *e)
{
	struct kvm_cpuid2 *cpuid;
	int ret = 0;

	cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));
	cpuid->nent = 256;
	if (ioctl(e->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0 ||
	    ioctl(e->vcpu.fd, KVM_SET_CPUID2, cpuid) < 0)
		ret = -errno;
	free(cpuid);
	return ret;
}

static int env_create(struct kvm_env *e, bool payload)
{
	struct kvm_enable_cap cap = { .args = { 1 } };
	struct kvm_userspace_memory_region region;
	int run_size;

	memset(e, 0, sizeof(*e));
	e->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (e->kvm_fd < 0)
		return -errno;
	e->vm.vm_fd = ioctl(e->kvm_fd, KVM_CREATE_VM, 0);
	if (e->vm.vm_fd < 0)
		return -errno;
	cap.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE;
	if (ioctl(e->vm.vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return -errno;
	cap.cap = KVM_CAP_EXCEPTION_PAYLOAD;
	if (payload && ioctl(e->vm.vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return -errno;
	if (guest_mem_init(&e->vm.mem, RAM))
		return -ENOMEM;
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = RAM,
		.userspace_addr = (uintptr_t)e->vm.mem.host,
	};
	if (ioctl(e->vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return -errno;
	e->vcpu.vm = &e->vm;
	e->vcpu.fd = ioctl(e->vm.vm_fd, KVM_CREATE_VCPU, 0);
	if (e->vcpu.fd < 0)
		return -errno;
	run_size = ioctl(e->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	e->vcpu.run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE,
			   MAP_SHARED, e->vcpu.fd, 0);
	if (e->vcpu.run == MAP_FAILED)
		return -errno;
	e->vcpu.run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS |
				      KVM_SYNC_X86_EVENTS;
	build_guest(e);
	if (set_cpuid(e))
		return -EIO;
	return set_cpu_state(e);
}

static void env_destroy(struct kvm_env *e)
{
	close(e->vcpu.fd);
	close(e->vm.vm_fd);
	close(e->kvm_fd);
	guest_mem_exit(&e->vm.mem);
}

/* Run until the guest writes DONE_PORT; fix up every emulation failure. */
static void run_guest(struct kvm_env *e, unsigned int *fixups)
{
	struct kvm_run *run = e->vcpu.run;
	struct timespec t0, t1;
	unsigned int exits;
	char what[256];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (exits = 0; exits < 10000; exits++) {
		assert_int_equal(ioctl(e->vcpu.fd, KVM_RUN, 0), 0);
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == DONE_PORT)
			break;
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
		    run->emulation_failure.suberror == KVM_INTERNAL_ERROR_EMULATION) {
			int ret;

			if (getenv("PVM_TEST_VERBOSE")) {
				pvm_describe_failure(&e->vcpu, what, sizeof(what));
				print_message("  %s\n", what);
			}
			ret = pvm_fixup(&e->vcpu);
			if (ret) {
				pvm_describe_failure(&e->vcpu, what, sizeof(what));
				fail_msg("pvm_fixup: %d: %s", ret, what);
			}
			(*fixups)++;
			continue;
		}
		fail_msg("unexpected exit %u at RIP 0x%llx", run->exit_reason,
			 (unsigned long long)run->s.regs.regs.rip);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("  %u fix-ups, %u exits, %.1f ms in KVM_RUN\n", *fixups,
		      exits, (t1.tv_sec - t0.tv_sec) * 1e3 +
				     (t1.tv_nsec - t0.tv_nsec) / 1e6);
}

static void check_results(struct kvm_env *e)
{
	uint64_t rip_slot = guest_code_addr(pvm_guest_rip_slot);
	uint32_t xcr0_a, xcr0_d;

	__asm__ volatile("xgetbv" : "=a"(xcr0_a), "=d"(xcr0_d) : "c"(0));

	assert_int_equal(rd64(e, MBOX), 2);               /* 1: two #BP */
	assert_int_equal(rd64(e, RES(0)), 1);             /* 2: ZF */
	assert_int_equal(rd64(e, CX), 3);
	assert_int_equal(rd64(e, CX + 8), 4);
	assert_int_equal(rd64(e, RES(1)), 0);             /* 3: mismatch */
	assert_int_equal(rd64(e, RES(2)), 3);
	assert_int_equal(rd64(e, RES(3)), 4);
	assert_int_equal(rd64(e, CX + 0x10), 7);          /* 4: %gs */
	assert_int_equal(rd64(e, CX + 0x18), 8);
	assert_int_equal(rd64(e, rip_slot), 0x33);        /* 5: RIP-relative */
	assert_int_equal(rd64(e, rip_slot + 8), 0x44);
	assert_int_equal(rd64(e, RES(4)), 13);            /* 6: #GP(0) */
	assert_int_equal(rd64(e, RES(5)), 0);
	assert_int_equal(rd64(e, RES(6)), 14);            /* 7: #PF(W) */
	assert_int_equal(rd64(e, RES(7)), 2);
	assert_int_equal(rd64(e, RES(8)), UNMAPPED + 0x20);
	assert_int_equal(rd64(e, RES(9)), 14);            /* 8: #PF(P|W) */
	assert_int_equal(rd64(e, RES(10)), 3);
	assert_int_equal(rd64(e, RES(11)), READONLY + 0x10);
	assert_int_equal(rd64(e, BIG + 0x10), 0xa);       /* 9: 2 MiB page */
	assert_int_equal(rd64(e, BIG + 0x18), 0xb);
	assert_int_equal(rd64(e, RES(12)), 1);            /* 10: cmpxchg8b */
	assert_int_equal(rd64(e, CX + 0x20), 0x0000006600000055ULL);
	/* 11: xsave64 saw XMM0, XMM15 and the default MXCSR */
	assert_int_equal(rd64(e, XA + 160 + 16 * 15), 0x5555aaaa5555aaaaULL);
	assert_int_equal(rd32(e, XA + 24), 0x1f80);
	/* 12: xrstor64 loaded XMM0; 13: xsave got it and YMM0's upper half */
	assert_int_equal(rd64(e, RES(13)), 0x1111);
	assert_int_equal(rd64(e, RES(14)), 0x2222);
	assert_int_equal(rd64(e, XB + 160), 0x1111);
	if (xcr0_a & 4) {
		assert_int_equal(rd64(e, XB + 576), 0x7777);
		assert_int_equal(rd64(e, XB + 584), 0x8888);
		assert_int_equal(rd64(e, XC + 576), 0x7777);
	}
	assert_int_equal(rd64(e, RES(15)), 0);            /* 14: XMM0 init */
	assert_int_equal(rd64(e, RES(16)), 0);
	assert_int_equal(rd64(e, RES(17)), 13);           /* 15: bad header */
	assert_int_equal(rd64(e, RES(18)), 13);           /* 16: misaligned */
	/* 17: across a page: MXCSR on the first page, the rest on the next */
	assert_int_equal(rd32(e, XC + 24), 0x1f80);
	assert_int_equal(rd64(e, XC + 160), 0);
	if (xcr0_a & 4)
		assert_true(rd64(e, XC + 512) & 4);
	/* Only the emulated xsave64 wrote to the second page: A and D set. */
	assert_int_equal(rd64(e, PML4 + 0x3000 + 8 * ((XC + 0x40) >> 12)) & 0x60, 0x60);
	assert_int_equal(rd64(e, RES(19)), 14);           /* 18: #PF(read) */
	assert_int_equal(rd64(e, RES(20)), 0);
	assert_int_equal(rd64(e, RES(21)), UNMAPPED);
}

static void kvm_run_test(bool payload)
{
	unsigned int fixups = 0;
	struct kvm_env e;
	int ret;

	if (access("/dev/kvm", R_OK | W_OK) || !pvm_host_detect())
		skip();
	ret = env_create(&e, payload);
	if (ret)
		fail_msg("setting up the VM: %s", strerror(-ret));
	run_guest(&e, &fixups);
	check_results(&e);
	/*
	 * 2 int3, 6 cmpxchg16b, 8 xsave family. KVM's emulator itself raises
	 * the #GP/#PF of cmpxchg16b (steps 6, 7, 8) and runs cmpxchg8b; it
	 * fails only when it gets to the 16-byte write.
	 */
	assert_int_equal(fixups, 16);
	env_destroy(&e);
}

static void test_kvm_payload(void **state)
{
	(void)state;
	kvm_run_test(true);
}

static void test_kvm_no_payload(void **state)
{
	(void)state;
	kvm_run_test(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvm_payload),
		cmocka_unit_test(test_kvm_no_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
