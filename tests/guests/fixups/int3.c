/*
 * int3 at CPL0 behaves as on hardware (on PVM hosts through khyve's fix-up:
 * RIP + 1, #BP injected): the #BP handler runs exactly once per int3, the
 * CPU pushed no error code, the pushed RIP is the byte after the int3, CS,
 * RSP and RFLAGS are those of the interrupted code, no register changes,
 * and iretq resumes right after the int3 - also for several in a row.
 */
#include "guest.h"
#include "idt.h"

const char test_name[] = "int3";

#define RFLAGS_RF (1ULL << 16)
#define GUEST_CS 0x10

/* One int3, and what the handler must have seen for it. */
static void one_int3(void)
{
	uint64_t after, rsp, rflags;
	unsigned int n = exc_count;
	const volatile struct exc_record *r;

	__asm__ volatile(
		"pushfq\n\t"
		"popq %[fl]\n\t"
		"movq %%rsp, %[sp]\n\t"
		"int3\n"
		"1:\tleaq 1b(%%rip), %[after]"
		: [after] "=r"(after), [sp] "=&r"(rsp), [fl] "=&r"(rflags)
		:
		: "memory", "cc");
	CHECK(exc_count == n + 1);
	r = exc_last();
	CHECK(r->vector == VEC_BP);
	/* Had an error code been pushed, every field would be shifted. */
	CHECK(r->rip == after);
	CHECK(r->cs == GUEST_CS);
	CHECK(r->rsp == rsp);
	CHECK((r->rflags & ~RFLAGS_RF) == (rflags & ~RFLAGS_RF));
}

/* int3 with every general register live: none may change. */
static void registers_survive(void)
{
	register uint64_t r8 __asm__("r8") = 0x0808080808080808;
	register uint64_t r9 __asm__("r9") = 0x0909090909090909;
	register uint64_t r10 __asm__("r10") = 0x1010101010101010;
	register uint64_t r11 __asm__("r11") = 0x1111111111111111;
	register uint64_t r12 __asm__("r12") = 0x1212121212121212;
	register uint64_t r13 __asm__("r13") = 0x1313131313131313;
	register uint64_t r14 __asm__("r14") = 0x1414141414141414;
	register uint64_t r15 __asm__("r15") = 0x1515151515151515;
	uint64_t a = 0xa0a0a0a0a0a0a0a0, b = 0xb0b0b0b0b0b0b0b0;
	uint64_t c = 0xc0c0c0c0c0c0c0c0, d = 0xd0d0d0d0d0d0d0d0;
	uint64_t si = 0x5151515151515151, di = 0xd1d1d1d1d1d1d1d1;
	unsigned int n = exc_count;

	__asm__ volatile("int3"
			 : "+a"(a), "+b"(b), "+c"(c), "+d"(d), "+S"(si),
			   "+D"(di), "+r"(r8), "+r"(r9), "+r"(r10), "+r"(r11),
			   "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15)
			 :
			 : "memory");
	CHECK(exc_count == n + 1);
	CHECK(a == 0xa0a0a0a0a0a0a0a0 && b == 0xb0b0b0b0b0b0b0b0);
	CHECK(c == 0xc0c0c0c0c0c0c0c0 && d == 0xd0d0d0d0d0d0d0d0);
	CHECK(si == 0x5151515151515151 && di == 0xd1d1d1d1d1d1d1d1);
	CHECK(r8 == 0x0808080808080808 && r9 == 0x0909090909090909);
	CHECK(r10 == 0x1010101010101010 && r11 == 0x1111111111111111);
	CHECK(r12 == 0x1212121212121212 && r13 == 0x1313131313131313);
	CHECK(r14 == 0x1414141414141414 && r15 == 0x1515151515151515);
}

/* Four int3 back to back: four #BP, each pushing the next byte's address. */
static void int3_in_a_row(void)
{
	uint64_t at[4];
	unsigned int i, n;

	exc_reset();
	__asm__ volatile("int3\n0:\tint3\n1:\tint3\n2:\tint3\n3:\n\t"
			 "leaq 0b(%%rip), %0\n\t"
			 "leaq 1b(%%rip), %1\n\t"
			 "leaq 2b(%%rip), %2\n\t"
			 "leaq 3b(%%rip), %3"
			 : "=r"(at[0]), "=r"(at[1]), "=r"(at[2]), "=r"(at[3])
			 :
			 : "memory");
	n = exc_count;
	CHECK(n == 4);
	for (i = 0; i < 4; i++) {
		CHECK(exc_log[i].vector == VEC_BP);
		CHECK(exc_log[i].rip == at[i]);
	}
}

void guest_main(const void *bp)
{
	unsigned int i;

	(void)bp;
	serial_init();
	idt_init();

	one_int3();
	registers_survive();
	int3_in_a_row();
	exc_reset();
	for (i = 0; i < 100; i++)
		one_int3();
	CHECK(exc_count == 100);
	guest_pass();
}
