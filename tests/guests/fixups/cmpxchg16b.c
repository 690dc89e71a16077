/*
 * cmpxchg16b at CPL0 behaves as on hardware (on PVM hosts khyve emulates
 * it, walking the guest's page tables):
 *   - equal: memory := RCX:RBX, ZF=1, RDX:RAX kept; unequal (in either
 *     half): RDX:RAX := memory, ZF=0, memory kept; other flags, RBX and
 *     RCX never change - with and without LOCK, for a base-register, a
 *     RIP-relative and two SIB operands (one with REX.B/REX.X registers),
 *     a GS-relative one (GS base + register, wrapping around 2^64) and
 *     one with a 32-bit address (0x67: the register's upper half unused);
 *   - an operand not 16-byte aligned: #GP(0), nothing changed;
 *   - through this guest's own page tables: an alias of a page is written
 *     (and its PTE gets Accessed and Dirty); a not-present 4 KiB page, a
 *     not-present 2 MiB page and a read-only page (CR0.WP=1) give #PF with
 *     CR2 the operand's address and the error code of a supervisor write;
 *   - with RFLAGS.TF set, the single-step #DB (DR6.BS) comes right after
 *     the instruction;
 *   - cmpxchg8b, its 8-byte form: no alignment needed, and on a mismatch
 *     EDX:EAX are loaded as 32-bit registers (upper halves cleared).
 * Measured on the project's PVM host: KVM's emulator itself raises the
 * misaligned #GP and the not-present #PF (it reads the operand first) and
 * runs cmpxchg8b; khyve completes the rest, read-only #PF included.
 */
#include "guest.h"
#include "idt.h"

const char test_name[] = "cmpxchg16b";

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_ADDR 0x000ffffffffff000ULL
#define PF_PRESENT 0x1
#define PF_WRITE 0x2
#define RFLAGS_TF (1ULL << 8)
#define DR6_BS (1ULL << 14)

/* A 2 MiB page of khyve's identity map that nothing in this guest uses. */
#define ALIAS_LA 0x40000000ULL

struct u128 {
	uint64_t lo, hi;
} __attribute__((aligned(16)));

/* Registers in and out of one cmpxchg; base/idx address the operand. */
struct cx {
	uint64_t rax, rdx, rbx, rcx;
	uint64_t base, idx;
	uint64_t at; /* address of the instruction */
	bool zf, cf;
};

/* The RIP-relative operand. */
struct u128 cx_global __attribute__((used));
/* One page, aliased at ALIAS_LA by the page table pt. */
static struct u128 page[256] __attribute__((aligned(4096)));
static uint64_t pt[512] __attribute__((aligned(4096)));

/*
 * One instruction @insn with CF set before it and read after it; a fault
 * resumes after it (exc_resume_rip is cleared again when it does not). The
 * base and index are in RSI/RDI and in R13/R12.
 */
#define CX_FN(name, insn)                                                     \
	static void name(struct cx *c)                                        \
	{                                                                     \
		register uint64_t r12 __asm__("r12") = c->idx;                \
		register uint64_t r13 __asm__("r13") = c->base;               \
		__asm__ volatile(                                             \
			EXC_RESUME_AT_1F "stc\n"                              \
					 "0:\t" insn "\n"                     \
					 "1:\tsetc %[cf]\n\t"                 \
					 "movq $0, exc_resume_rip(%%rip)\n\t" \
					 "leaq 0b(%%rip), %[at]"              \
			: "=@ccz"(c->zf), [cf] "=&q"(c->cf),                  \
			  [at] "=&r"(c->at), "+a"(c->rax), "+d"(c->rdx),      \
			  "+b"(c->rbx), "+c"(c->rcx)                          \
			: "S"(c->base), "D"(c->idx), "r"(r12), "r"(r13)       \
			: "memory");                                          \
	}

CX_FN(cx_base, "cmpxchg16b (%%rsi)")
CX_FN(cx_base_lock, "lock cmpxchg16b (%%rsi)")
CX_FN(cx_rip, "cmpxchg16b cx_global(%%rip)")
CX_FN(cx_rip_lock, "lock cmpxchg16b cx_global(%%rip)")
CX_FN(cx_sib, "cmpxchg16b 16(%%rsi,%%rdi,8)")
CX_FN(cx_sib_lock, "lock cmpxchg16b 16(%%rsi,%%rdi,8)")
CX_FN(cx_sib_rex, "cmpxchg16b -32(%%r13,%%r12,2)")
CX_FN(cx_sib_rex_lock, "lock cmpxchg16b -32(%%r13,%%r12,2)")
CX_FN(cx_gs, "cmpxchg16b %%gs:(%%rsi)")
CX_FN(cx_gs_lock, "lock cmpxchg16b %%gs:(%%rsi)")
CX_FN(cx_addr32, "cmpxchg16b (%%esi)")
CX_FN(cx_addr32_lock, "lock cmpxchg16b (%%esi)")
CX_FN(cx8_base, "cmpxchg8b (%%rsi)")
CX_FN(cx8_base_lock, "lock cmpxchg8b (%%rsi)")

struct form {
	const char *name;
	void (*fn)(struct cx *c);
	int kind; /* how base/idx make the address: see set_operand() */
};

enum { BASE, RIP, SIB, SIB_REX, GS, ADDR32 };

/* GS base while the GS forms run: base + RSI wraps around to the operand. */
#define GS_BASE 0x0000700000000000ULL
#define MSR_GS_BASE 0xc0000101

static const struct form forms[] = {
	{ "base", cx_base, BASE },
	{ "lock base", cx_base_lock, BASE },
	{ "rip", cx_rip, RIP },
	{ "lock rip", cx_rip_lock, RIP },
	{ "sib", cx_sib, SIB },
	{ "lock sib", cx_sib_lock, SIB },
	{ "sib rex", cx_sib_rex, SIB_REX },
	{ "lock sib rex", cx_sib_rex_lock, SIB_REX },
	{ "gs", cx_gs, GS },
	{ "lock gs", cx_gs_lock, GS },
	{ "addr32", cx_addr32, ADDR32 },
	{ "lock addr32", cx_addr32_lock, ADDR32 },
};

/* Base and index registers so that form @kind addresses @addr. */
static void set_operand(struct cx *c, int kind, uint64_t addr)
{
	switch (kind) {
	case SIB:
		c->idx = 3;
		c->base = addr - 16 - 3 * 8;
		break;
	case SIB_REX:
		c->idx = 5;
		c->base = addr + 32 - 5 * 2;
		break;
	case GS:
		c->idx = 0x1d1d;
		c->base = addr - GS_BASE;
		break;
	case ADDR32:
		c->idx = 0x1d1d;
		c->base = addr | 0xdead000000000000ULL;
		break;
	default:
		c->idx = 0x1d1d;
		c->base = addr;
		break;
	}
}

static uint64_t cx_call(const struct form *f, volatile struct u128 *m,
			struct cx *c)
{
	set_operand(c, f->kind, (uint64_t)m);
	f->fn(c);
	return c->at;
}

#define NEW_LO 0x0123456789abcdefULL
#define NEW_HI 0xfedcba9876543210ULL

/* Success, then a mismatch in the high half and one in the low half. */
static void check_form(const struct form *f, volatile struct u128 *m)
{
	struct cx c;

	printf_serial("cmpxchg16b %s\n", f->name);
	m->lo = 0x1111;
	m->hi = 0x2222;
	c = (struct cx){
		.rax = 0x1111, .rdx = 0x2222, .rbx = NEW_LO, .rcx = NEW_HI
	};
	cx_call(f, m, &c);
	CHECK(c.zf && c.cf);
	CHECK(m->lo == NEW_LO && m->hi == NEW_HI);
	CHECK(c.rax == 0x1111 && c.rdx == 0x2222);
	CHECK(c.rbx == NEW_LO && c.rcx == NEW_HI);

	c = (struct cx){ .rax = NEW_LO, .rdx = 0x3333, .rbx = 7, .rcx = 8 };
	cx_call(f, m, &c);
	CHECK(!c.zf && c.cf);
	CHECK(c.rax == NEW_LO && c.rdx == NEW_HI);
	CHECK(m->lo == NEW_LO && m->hi == NEW_HI);
	CHECK(c.rbx == 7 && c.rcx == 8);

	c = (struct cx){ .rax = 0x4444, .rdx = NEW_HI, .rbx = 7, .rcx = 8 };
	cx_call(f, m, &c);
	CHECK(!c.zf && c.cf);
	CHECK(c.rax == NEW_LO && c.rdx == NEW_HI);
	CHECK(m->lo == NEW_LO && m->hi == NEW_HI);
}

/* An instruction that must fault: the record, and no register changed. */
static void check_fault(const struct cx *c, const struct cx *before,
			unsigned int n, uint64_t vector, uint64_t error_code,
			uint64_t cr2)
{
	const volatile struct exc_record *r = exc_last();

	CHECK(exc_count == n + 1);
	CHECK(r->vector == vector);
	CHECK(r->error_code == error_code);
	CHECK(r->rip == c->at);
	if (vector == VEC_PF)
		CHECK(r->cr2 == cr2);
	CHECK(c->rax == before->rax && c->rdx == before->rdx);
	CHECK(c->rbx == before->rbx && c->rcx == before->rcx);
}

/*
 * 8 bytes past a 16-byte boundary: #GP(0) for every form but RIP's, though
 * the compare would succeed; memory and registers stay as they were.
 */
static void check_misaligned(const struct form *f)
{
	volatile struct u128 *m = &page[10];
	unsigned int n = exc_count;
	struct cx c = { .rax = 0x5555, .rdx = 0x6666, .rbx = 7, .rcx = 8 };
	struct cx before = c;

	if (f->kind == RIP)
		return;
	m->hi = 0x5555;
	(m + 1)->lo = 0x6666;
	set_operand(&c, f->kind, (uint64_t)m + 8);
	f->fn(&c);
	check_fault(&c, &before, n, VEC_GP, 0, 0);
	CHECK(m->hi == 0x5555 && (m + 1)->lo == 0x6666);
}

static uint64_t read_cr3(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static void flush_tlb(void)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(read_cr3()) : "memory");
}

/* The PD entry of @la in the current (identity-mapped) page tables. */
static volatile uint64_t *pde_of(uint64_t la)
{
	uint64_t *pml4 = (uint64_t *)(read_cr3() & PTE_ADDR), *pdpt, *pd;

	CHECK(pml4[(la >> 39) & 511] & PTE_P);
	pdpt = (uint64_t *)(pml4[(la >> 39) & 511] & PTE_ADDR);
	CHECK((pdpt[(la >> 30) & 511] & (PTE_P | PTE_PS)) == PTE_P);
	pd = (uint64_t *)(pdpt[(la >> 30) & 511] & PTE_ADDR);
	return &pd[(la >> 21) & 511];
}

/* #PF for @la with @error_code, with and without LOCK; @m is the memory
 * behind @la (unchanged afterwards), or NULL. */
static void check_pf(uint64_t la, uint64_t error_code, volatile struct u128 *m)
{
	const struct cx before = {
		.rax = 0x5555, .rdx = 0x6666, .rbx = 7, .rcx = 8
	};
	unsigned int n = exc_count;
	struct cx c;

	if (m) {
		m->lo = 0x5555; /* the compare would succeed */
		m->hi = 0x6666;
	}
	c = before;
	set_operand(&c, BASE, la);
	cx_base_lock(&c);
	check_fault(&c, &before, n, VEC_PF, error_code, la);

	c = before;
	set_operand(&c, BASE, la);
	cx_base(&c);
	check_fault(&c, &before, n + 1, VEC_PF, error_code, la);
	if (m)
		CHECK(m->lo == 0x5555 && m->hi == 0x6666);
}

/*
 * The 2 MiB page at ALIAS_LA becomes a page table of our own: page 0 maps
 * `page` writable, page 1 is not present, page 2 maps `page` read-only.
 */
static void check_paging(void)
{
	volatile uint64_t *pde = pde_of(ALIAS_LA);
	uint64_t saved = *pde;
	volatile struct u128 *alias = (volatile struct u128 *)ALIAS_LA;
	struct cx c;

	puts_serial("cmpxchg16b through page tables\n");
	mem_set(pt, 0, sizeof(pt));
	pt[0] = (uint64_t)page | PTE_P | PTE_RW;
	pt[2] = (uint64_t)page | PTE_P;
	*pde = (uint64_t)pt | PTE_P | PTE_RW;
	flush_tlb();

	/* An alias: the write lands in `page`, and sets A and D. */
	page[3].lo = 0x1234;
	page[3].hi = 0x5678;
	c = (struct cx){ .rax = 0x1234, .rdx = 0x5678, .rbx = 1, .rcx = 2 };
	set_operand(&c, BASE, (uint64_t)&alias[3]);
	cx_base_lock(&c);
	CHECK(c.zf);
	CHECK(page[3].lo == 1 && page[3].hi == 2);
	CHECK((pt[0] & (PTE_A | PTE_D)) == (PTE_A | PTE_D));

	check_pf(ALIAS_LA + 0x1000 + 0x30, PF_WRITE, NULL);
	check_pf(ALIAS_LA + 0x2000 + 0x40, PF_WRITE | PF_PRESENT, &page[4]);

	/* The whole 2 MiB page not present. */
	*pde = 0;
	flush_tlb();
	check_pf(ALIAS_LA + 0x1ff0, PF_WRITE, NULL);

	*pde = saved;
	flush_tlb();
}

/* With TF set by popfq, the instruction after it is single-stepped. */
static void check_single_step(void)
{
	volatile struct u128 *m = &page[30];
	const volatile struct exc_record *r;
	unsigned int n = exc_count;
	uint64_t a = 1, d = 2, after;

	puts_serial("cmpxchg16b single-stepped\n");
	m->lo = 1;
	m->hi = 2;
	__asm__ volatile("pushfq\n\t"
			 "orq $0x100, (%%rsp)\n\t"
			 "popfq\n\t"
			 "lock cmpxchg16b (%[p])\n"
			 "1:\tleaq 1b(%%rip), %[after]"
			 : [after] "=r"(after), "+a"(a), "+d"(d)
			 : [p] "r"(m), "b"(3), "c"(4)
			 : "memory", "cc");
	r = exc_last();
	CHECK(exc_count == n + 1);
	CHECK(r->vector == VEC_DB && r->rip == after);
	CHECK(r->dr6 & DR6_BS);
	CHECK(r->rflags & RFLAGS_TF);
	CHECK(m->lo == 3 && m->hi == 4);
}

/* cmpxchg8b at an address that is 4 mod 8 (it needs no alignment). */
static void check_cmpxchg8b(void)
{
	void (*const fns[2])(struct cx *) = { cx8_base, cx8_base_lock };
	volatile uint32_t *m = (volatile uint32_t *)&page[20] + 1;
	unsigned int i;
	struct cx c;

	puts_serial("cmpxchg8b\n");
	for (i = 0; i < 2; i++) {
		m[0] = 0x11111111;
		m[1] = 0x22222222;
		/* Only EDX:EAX are compared; the upper halves are ignored. */
		c = (struct cx){ .rax = 0xaaaaaaaa11111111,
				 .rdx = 0xbbbbbbbb22222222,
				 .rbx = 0xcccccccc33333333,
				 .rcx = 0xdddddddd44444444 };
		set_operand(&c, BASE, (uint64_t)m);
		fns[i](&c);
		CHECK(c.zf && c.cf);
		CHECK(m[0] == 0x33333333 && m[1] == 0x44444444);
		CHECK((uint32_t)c.rax == 0x11111111 &&
		      (uint32_t)c.rdx == 0x22222222);

		c = (struct cx){ .rax = 0xaaaaaaaa33333333,
				 .rdx = 0xbbbbbbbb55555555,
				 .rbx = 9,
				 .rcx = 9 };
		set_operand(&c, BASE, (uint64_t)m);
		fns[i](&c);
		CHECK(!c.zf && c.cf);
		CHECK(c.rax == 0x33333333 && c.rdx == 0x44444444);
		CHECK(m[0] == 0x33333333 && m[1] == 0x44444444);
	}
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr"
			 :
			 : "c"(msr), "a"((uint32_t)v),
			   "d"((uint32_t)(v >> 32)));
}

void guest_main(const void *bp)
{
	const unsigned int nr_forms = sizeof(forms) / sizeof(forms[0]);
	unsigned int i;

	(void)bp;
	serial_init();
	idt_init();

	wrmsr(MSR_GS_BASE, GS_BASE);
	for (i = 0; i < nr_forms; i++) {
		check_form(&forms[i],
			   forms[i].kind == RIP ? &cx_global : &page[1]);
		check_misaligned(&forms[i]);
	}
	wrmsr(MSR_GS_BASE, 0);
	check_paging();
	check_single_step();
	check_cmpxchg8b();
	/* A #GP for each form but the 2 RIP ones, 3 x 2 #PF, one #DB. */
	CHECK(exc_count == nr_forms - 2 + 3 * 2 + 1);
	guest_pass();
}
