/*
 * Exceptions for the test guests: a 64-bit IDT whose handlers for vectors
 * 0-31 record what the CPU pushed (vector, error code, RIP, RSP, RFLAGS)
 * and CR2, then either
 *   - resume at exc_resume_rip when a test has set it (a fault the test
 *     provoked on purpose: the handler skips the faulting instruction), or
 *   - return to the pushed RIP for #BP and #OF, which are traps (RIP is
 *     already past the instruction), and for #DB, taken as the single-step
 *     trap: DR6 is recorded (then reset) and TF cleared in the RFLAGS the
 *     handler returns to, so setting TF steps exactly one instruction, or
 *   - FAIL the test for anything else, saying what happened where.
 */
#ifndef KHYVE_TEST_IDT_H
#define KHYVE_TEST_IDT_H

#include <stdint.h>

#define VEC_DE 0
#define VEC_DB 1
#define VEC_BP 3
#define VEC_UD 6
#define VEC_NM 7
#define VEC_GP 13
#define VEC_PF 14

/* What the handler saw, in the layout isr.S builds on the stack. */
struct exc_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector;
	uint64_t error_code; /* 0 for vectors without one */
	uint64_t rip, cs, rflags, rsp, ss;
};

/* One handled exception. */
struct exc_record {
	uint64_t vector, error_code, cr2, rip, cs, rflags, rsp;
	uint64_t dr6; /* #DB only */
};

#define EXC_LOG_LEN 16

/* Exceptions handled since idt_init()/exc_reset(), and the last ones. */
extern volatile unsigned int exc_count;
extern volatile struct exc_record exc_log[EXC_LOG_LEN]; /* [n % LEN] */
/* Where the next exception resumes, once; 0: see above. */
extern volatile uint64_t exc_resume_rip;

/* Build the IDT (interrupt gates, CS 0x10) and load it. */
void idt_init(void);
/* Forget the recorded exceptions. */
void exc_reset(void);
/* The last recorded exception (exc_count must be > 0). */
static inline const volatile struct exc_record *exc_last(void)
{
	return &exc_log[(exc_count - 1) % EXC_LOG_LEN];
}

/*
 * Inline-asm text (extended asm, hence %%) that makes the next exception
 * resume at the local label "1:", which the test puts right after the
 * instruction expected to fault. Guests are linked below 2 GiB, so the
 * label's address fits a sign-extended 32-bit immediate.
 */
#define EXC_RESUME_AT_1F "movq $1f, exc_resume_rip(%%rip)\n\t"

#endif
