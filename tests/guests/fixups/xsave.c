/*
 * xsave/xsaveopt/xrstor at CPL0 behave as on hardware (on PVM hosts khyve
 * emulates them through KVM_GET/SET_XSAVE). The XMM registers are written
 * and read with movdqu (inline asm: guests build with -mgeneral-regs-only).
 *   - #UD without CR4.OSXSAVE; #NM with CR0.TS;
 *   - XCR0 = x87|SSE (|AVX when CPUID has it) with xsetbv (never xgetbv:
 *     on PVM it is an emulation failure, PVM.md);
 *   - xsave64 writes the XMM registers and MXCSR where the standard format
 *     puts them, sets XSTATE_BV for them, and writes nothing else: not the
 *     rest of the header, not bytes 464-511, not past the enabled state;
 *   - xrstor64 brings the registers back, only for components in EDX:EAX;
 *     a component whose XSTATE_BV bit is 0 gets its initial state (XMM 0,
 *     FCW 0x37f), while MXCSR is loaded from memory anyway;
 *   - AVX state (when enabled) round-trips through xrstor/xsave at the
 *     offset CPUID leaf 0xD gives;
 *   - xsaveopt64 saves changed registers; the non-REX.W forms work too;
 *   - a misaligned area (not 64-byte aligned) gives #GP(0) for all three,
 *     and a bad xrstor header (XSTATE_BV bit outside XCR0, reserved header
 *     bytes set) gives #GP(0) and changes nothing;
 *   - with RFLAGS.TF set, xrstor64 is followed by the single-step #DB;
 *   - an area that is not mapped gives #PF: a write for xsave, a read for
 *     xrstor, CR2 inside the area.
 */
#include "guest.h"
#include "idt.h"

const char test_name[] = "xsave";

#define CR0_MP (1ULL << 1)
#define CR0_EM (1ULL << 2)
#define CR0_TS (1ULL << 3)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define CR4_OSXSAVE (1ULL << 18)
#define CPUID1_XSAVE (1u << 26)
#define CPUID1_AVX (1u << 28)

#define XF_X87 1ULL
#define XF_SSE 2ULL
#define XF_AVX 4ULL

/* Offsets in the standard-format area (SDM Vol 1 §13.4). */
#define OFF_FCW 0
#define OFF_FSW 2
#define OFF_FTW 4
#define OFF_MXCSR 24
#define OFF_XMM 160
#define OFF_SW_AVAIL 464 /* bytes 464-511 are never written */
#define OFF_HDR 512
#define AREA_SIZE 4096
#define SENTINEL 0xa5
#define MXCSR_DEFAULT 0x1f80
#define MXCSR_RC_DOWN 0x3f80
#define PF_WRITE 0x2
#define RFLAGS_TF (1ULL << 8)
#define DR6_BS (1ULL << 14)
/* khyve's boot page tables map 0-4 GiB only: 4 GiB is not present. */
#define UNMAPPED_LA 0x100000000ULL

static uint8_t area_s[AREA_SIZE] __attribute__((aligned(64)));
static uint8_t area_r[AREA_SIZE] __attribute__((aligned(64)));
static uint8_t area_z[AREA_SIZE] __attribute__((aligned(64)));
static uint8_t fxarea[512] __attribute__((aligned(16)));
static uint8_t xmm_p[256], xmm_q[256], xmm_out[256];

static uint64_t xcr0, avx_off, avx_size, xsave_size;
static bool has_xsaveopt; /* CPUID.(0xD,1):EAX[0] */

/* No xmm clobbers: the compiler never uses them (-mgeneral-regs-only). */
static void xmm_load(const uint8_t *src)
{
	__asm__ volatile("movdqu 0(%0), %%xmm0\n\t"
			 "movdqu 16(%0), %%xmm1\n\t"
			 "movdqu 32(%0), %%xmm2\n\t"
			 "movdqu 48(%0), %%xmm3\n\t"
			 "movdqu 64(%0), %%xmm4\n\t"
			 "movdqu 80(%0), %%xmm5\n\t"
			 "movdqu 96(%0), %%xmm6\n\t"
			 "movdqu 112(%0), %%xmm7\n\t"
			 "movdqu 128(%0), %%xmm8\n\t"
			 "movdqu 144(%0), %%xmm9\n\t"
			 "movdqu 160(%0), %%xmm10\n\t"
			 "movdqu 176(%0), %%xmm11\n\t"
			 "movdqu 192(%0), %%xmm12\n\t"
			 "movdqu 208(%0), %%xmm13\n\t"
			 "movdqu 224(%0), %%xmm14\n\t"
			 "movdqu 240(%0), %%xmm15"
			 :
			 : "r"(src)
			 : "memory");
}

static void xmm_store(uint8_t *dst)
{
	__asm__ volatile("movdqu %%xmm0, 0(%0)\n\t"
			 "movdqu %%xmm1, 16(%0)\n\t"
			 "movdqu %%xmm2, 32(%0)\n\t"
			 "movdqu %%xmm3, 48(%0)\n\t"
			 "movdqu %%xmm4, 64(%0)\n\t"
			 "movdqu %%xmm5, 80(%0)\n\t"
			 "movdqu %%xmm6, 96(%0)\n\t"
			 "movdqu %%xmm7, 112(%0)\n\t"
			 "movdqu %%xmm8, 128(%0)\n\t"
			 "movdqu %%xmm9, 144(%0)\n\t"
			 "movdqu %%xmm10, 160(%0)\n\t"
			 "movdqu %%xmm11, 176(%0)\n\t"
			 "movdqu %%xmm12, 192(%0)\n\t"
			 "movdqu %%xmm13, 208(%0)\n\t"
			 "movdqu %%xmm14, 224(%0)\n\t"
			 "movdqu %%xmm15, 240(%0)"
			 :
			 : "r"(dst)
			 : "memory");
}

/*
 * One xsave-family instruction on @area with EDX:EAX = @rfbm; returns its
 * address. A fault resumes after it (the resume RIP is cleared if not).
 */
#define XS_FN(name, insn)                                                 \
	static uint64_t name(void *area, uint64_t rfbm)                   \
	{                                                                 \
		uint64_t at;                                              \
		__asm__ volatile(EXC_RESUME_AT_1F                         \
				 "0:\t" insn " (%[p])\n"                  \
				 "1:\tmovq $0, exc_resume_rip(%%rip)\n\t" \
				 "leaq 0b(%%rip), %[at]"                  \
				 : [at] "=&r"(at)                         \
				 : [p] "r"(area), "a"((uint32_t)rfbm),    \
				   "d"((uint32_t)(rfbm >> 32))            \
				 : "memory");                             \
		return at;                                                \
	}

XS_FN(xsave64, "xsave64")
XS_FN(xrstor64, "xrstor64")
XS_FN(xsaveopt64, "xsaveopt64")
XS_FN(xsave32, "xsave")
XS_FN(xrstor32, "xrstor")

static uint64_t read_cr0(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static void write_cr0(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}

static uint64_t read_cr4(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static void write_cr4(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	__builtin_memcpy(p, &v, sizeof(v));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t get_u16(const uint8_t *p)
{
	uint16_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	while (n--)
		if (*p++ != v)
			return false;
	return true;
}

/* The exception an instruction at @at must have raised just now. */
static void check_exc(unsigned int n, uint64_t at, uint64_t vector)
{
	const volatile struct exc_record *r = exc_last();

	CHECK(exc_count == n + 1);
	CHECK(r->vector == vector);
	CHECK(r->error_code == 0);
	CHECK(r->rip == at);
}

/* A clean copy of a saved area to restore from: the header as XSAVE left
 * it but for XSTATE_BV, which is @bv. */
static void make_restore_area(uint8_t *dst, const uint8_t *saved, uint64_t bv)
{
	__builtin_memcpy(dst, saved, AREA_SIZE);
	mem_set(dst + OFF_HDR, 0, 64);
	put_u64(dst + OFF_HDR, bv);
}

/* Without CR4.OSXSAVE: #UD. With CR0.TS: #NM. Then XCR0 is set. */
static void setup(void)
{
	uint32_t r[4];
	unsigned int n;
	uint64_t at;

	cpuid(1, 0, r);
	if (!(r[2] & CPUID1_XSAVE))
		guest_fail("CPUID.1:ECX.XSAVE is 0: this CPU has no xsave");
	write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP);
	write_cr4((read_cr4() & ~CR4_OSXSAVE) | CR4_OSFXSR | CR4_OSXMMEXCPT);
	n = exc_count;
	at = xsave64(area_s, ~0ULL);
	check_exc(n, at, VEC_UD);

	write_cr4(read_cr4() | CR4_OSXSAVE);
	xcr0 = XF_X87 | XF_SSE | (r[2] & CPUID1_AVX ? XF_AVX : 0);
	__asm__ volatile("xsetbv"
			 :
			 : "c"(0), "a"((uint32_t)xcr0), "d"(0)
			 : "memory");

	write_cr0(read_cr0() | CR0_TS);
	n = exc_count;
	at = xsave64(area_s, ~0ULL);
	check_exc(n, at, VEC_NM);
	__asm__ volatile("clts" ::: "memory");

	cpuid(0xd, 1, r);
	has_xsaveopt = r[0] & 1;
	cpuid(0xd, 0, r);
	xsave_size = r[1];
	printf_serial("XCR0 %lx, xsave area %lu bytes (CPUID.0xD: %x %x %x)\n",
		      xcr0, xsave_size, r[0], r[1], r[2]);
	CHECK((r[0] & xcr0) == xcr0);
	CHECK(xsave_size >= 576 && xsave_size <= AREA_SIZE);
	if (xcr0 & XF_AVX) {
		cpuid(0xd, 2, r);
		avx_size = r[0];
		avx_off = r[1];
		CHECK(avx_size == 256 && avx_off >= 576 &&
		      avx_off + avx_size <= xsave_size);
	}
}

/* Save: exactly the state components, nothing else written. */
static void check_save(void)
{
	puts_serial("xsave64\n");
	xmm_load(xmm_p);
	mem_set(area_s, SENTINEL, AREA_SIZE);
	xsave64(area_s, ~0ULL);
	CHECK(!mem_cmp(area_s + OFF_XMM, xmm_p, 256));
	CHECK(get_u32(area_s + OFF_MXCSR) == MXCSR_DEFAULT);
	CHECK(get_u64(area_s + OFF_HDR) & XF_SSE);
	/* XSTATE_BV bits outside RFBM keep what memory had. */
	CHECK((get_u64(area_s + OFF_HDR) & ~xcr0) ==
	      (0xa5a5a5a5a5a5a5a5ULL & ~xcr0));
	CHECK(all_bytes(area_s + OFF_SW_AVAIL, 512 - OFF_SW_AVAIL, SENTINEL));
	CHECK(all_bytes(area_s + OFF_HDR + 8, 56, SENTINEL));
	CHECK(all_bytes(area_s + xsave_size, AREA_SIZE - xsave_size, SENTINEL));
	xmm_store(xmm_out);
	CHECK(!mem_cmp(xmm_out, xmm_p, 256));
}

/* Restore: only components in EDX:EAX; XSTATE_BV 0 gives the init state. */
static void check_restore(void)
{
	uint64_t bv = get_u64(area_s + OFF_HDR) & xcr0;

	puts_serial("xrstor64\n");
	make_restore_area(area_r, area_s, bv | XF_X87);
	area_r[OFF_FCW] = 0x7f; /* FCW 0x027f: 53-bit precision */
	area_r[OFF_FCW + 1] = 0x02;

	xmm_load(xmm_q);
	xrstor64(area_r, XF_X87);
	xmm_store(xmm_out);
	CHECK(!mem_cmp(xmm_out, xmm_q, 256));
	__asm__ volatile("fxsave64 %0" : "=m"(fxarea));
	CHECK(get_u16(fxarea + OFF_FCW) == 0x027f);

	xrstor64(area_r, ~0ULL);
	xmm_store(xmm_out);
	CHECK(!mem_cmp(xmm_out, xmm_p, 256));

	/* Nothing in use: initial x87 and XMM; MXCSR from memory regardless. */
	puts_serial("xrstor64 with XSTATE_BV 0\n");
	make_restore_area(area_z, area_r, 0);
	put_u64(area_z + OFF_MXCSR, MXCSR_RC_DOWN); /* and MXCSR_MASK 0 */
	xrstor64(area_z, ~0ULL);
	xmm_store(xmm_out);
	CHECK(all_bytes(xmm_out, 256, 0));
	__asm__ volatile("fxsave64 %0" : "=m"(fxarea));
	CHECK(get_u16(fxarea + OFF_FCW) == 0x037f);
	CHECK(get_u16(fxarea + OFF_FSW) == 0);
	CHECK(fxarea[OFF_FTW] == 0); /* abridged: all empty */
	CHECK(get_u32(fxarea + OFF_MXCSR) == MXCSR_RC_DOWN);
	CHECK(all_bytes(fxarea + OFF_XMM, 256, 0));
	xrstor64(area_r, ~0ULL); /* MXCSR back to its default */
}

/* The AVX component round-trips through memory at CPUID's offset. */
static void check_avx(void)
{
	unsigned int i;

	if (!(xcr0 & XF_AVX))
		return;
	puts_serial("xrstor64/xsave64 of AVX state\n");
	make_restore_area(area_r, area_s, XF_SSE | XF_AVX);
	for (i = 0; i < avx_size; i++)
		area_r[avx_off + i] = (uint8_t)(0x80 + i * 3);
	xrstor64(area_r, ~0ULL);
	mem_set(area_s, SENTINEL, AREA_SIZE);
	xsave64(area_s, ~0ULL);
	CHECK(get_u64(area_s + OFF_HDR) & XF_AVX);
	CHECK(!mem_cmp(area_s + avx_off, area_r + avx_off, avx_size));
	CHECK(!mem_cmp(area_s + OFF_XMM, xmm_p, 256));

	/* AVX not in XSTATE_BV: its initial state, all zero. */
	make_restore_area(area_z, area_r, XF_SSE);
	xrstor64(area_z, ~0ULL);
	mem_set(area_s, SENTINEL, AREA_SIZE);
	xsave64(area_s, ~0ULL);
	CHECK(all_bytes(area_s + avx_off, avx_size, 0));
	CHECK(!mem_cmp(area_s + OFF_XMM, xmm_p, 256));
}

/* xsaveopt64, and the forms without REX.W. */
static void check_other_forms(void)
{
	if (has_xsaveopt) {
		puts_serial("xsaveopt64\n");
		xmm_load(xmm_q);
		mem_set(area_s, 0, AREA_SIZE);
		xsaveopt64(area_s, ~0ULL);
		CHECK(get_u64(area_s + OFF_HDR) & XF_SSE);
		CHECK(!mem_cmp(area_s + OFF_XMM, xmm_q, 256));
	}

	puts_serial("xsave/xrstor\n");
	xmm_load(xmm_p);
	mem_set(area_s, 0, AREA_SIZE);
	xsave32(area_s, XF_SSE);
	CHECK(!mem_cmp(area_s + OFF_XMM, xmm_p, 256));
	CHECK(get_u64(area_s + OFF_HDR) == XF_SSE);
	xmm_load(xmm_q);
	xrstor32(area_s, XF_SSE);
	xmm_store(xmm_out);
	CHECK(!mem_cmp(xmm_out, xmm_p, 256));
}

/* #GP(0) for a misaligned area and for a bad header; nothing changes. */
static void check_gp(void)
{
	unsigned int n;
	uint64_t at;

	puts_serial("misaligned areas, bad headers\n");
	xmm_load(xmm_p);
	mem_set(area_s, SENTINEL, AREA_SIZE);
	n = exc_count;
	at = xsave64(area_s + 16, ~0ULL);
	check_exc(n, at, VEC_GP);
	CHECK(all_bytes(area_s, AREA_SIZE, SENTINEL));
	if (has_xsaveopt) {
		n = exc_count;
		at = xsaveopt64(area_s + 32, ~0ULL);
		check_exc(n, at, VEC_GP);
		CHECK(all_bytes(area_s, AREA_SIZE, SENTINEL));
	}

	make_restore_area(area_r, area_z, 0); /* all initial: zeroes */
	__builtin_memcpy(area_s + 48, area_r, 1024);
	n = exc_count;
	at = xrstor64(area_s + 48, ~0ULL);
	check_exc(n, at, VEC_GP);

	put_u64(area_r + OFF_HDR, 1ULL << 30); /* not in XCR0 */
	n = exc_count;
	at = xrstor64(area_r, ~0ULL);
	check_exc(n, at, VEC_GP);
	put_u64(area_r + OFF_HDR, 0);
	put_u64(area_r + OFF_HDR + 16, 1); /* reserved bytes 23:16 */
	n = exc_count;
	at = xrstor64(area_r, ~0ULL);
	check_exc(n, at, VEC_GP);

	xmm_store(xmm_out);
	CHECK(!mem_cmp(xmm_out, xmm_p, 256));
}

/* With TF set by popfq, the xrstor64 after it is single-stepped. */
static void check_single_step(void)
{
	const volatile struct exc_record *r;
	unsigned int n;
	uint64_t after;

	puts_serial("xrstor64 single-stepped\n");
	xmm_load(xmm_p);
	xsave64(area_s, ~0ULL);
	make_restore_area(area_r, area_s, XF_SSE);
	xmm_load(xmm_q);
	n = exc_count;
	__asm__ volatile("pushfq\n\t"
			 "orq $0x100, (%%rsp)\n\t"
			 "popfq\n\t"
			 "xrstor64 (%[p])\n"
			 "1:\tleaq 1b(%%rip), %[after]"
			 : [after] "=r"(after)
			 : [p] "r"(area_r), "a"((uint32_t)xcr0), "d"(0)
			 : "memory", "cc");
	r = exc_last();
	CHECK(exc_count == n + 1);
	CHECK(r->vector == VEC_DB && r->rip == after);
	CHECK(r->dr6 & DR6_BS);
	xmm_store(xmm_out);
	CHECK(!mem_cmp(xmm_out, xmm_p, 256));
}

/* #PF for an area that is not mapped, with CR2 inside it. */
static void check_pf(void)
{
	const volatile struct exc_record *r;
	unsigned int n;
	uint64_t at;

	puts_serial("unmapped areas\n");
	xmm_load(xmm_p);
	n = exc_count;
	at = xsave64((void *)UNMAPPED_LA, ~0ULL);
	r = exc_last();
	CHECK(exc_count == n + 1 && r->vector == VEC_PF && r->rip == at);
	CHECK(r->error_code == PF_WRITE);
	CHECK(r->cr2 >= UNMAPPED_LA && r->cr2 < UNMAPPED_LA + xsave_size);

	n = exc_count;
	at = xrstor64((void *)UNMAPPED_LA, ~0ULL);
	r = exc_last();
	CHECK(exc_count == n + 1 && r->vector == VEC_PF && r->rip == at);
	CHECK(r->error_code == 0);
	CHECK(r->cr2 >= UNMAPPED_LA && r->cr2 < UNMAPPED_LA + xsave_size);
	xmm_store(xmm_out);
	CHECK(!mem_cmp(xmm_out, xmm_p, 256));
}

void guest_main(const void *bp)
{
	unsigned int i;

	(void)bp;
	serial_init();
	idt_init();
	for (i = 0; i < 256; i++) {
		xmm_p[i] = (uint8_t)(i + 1);
		xmm_q[i] = (uint8_t)(0xff - i);
	}

	setup();
	check_save();
	check_restore();
	check_avx();
	check_other_forms();
	check_gp();
	check_pf();
	check_single_step();
	guest_pass();
}
