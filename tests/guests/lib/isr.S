/*
 * Entry stubs of vectors 0-31 (see idt.h). Each makes the frame uniform
 * (a 0 error code where the CPU pushes none, then the vector), saves every
 * general register into a struct exc_frame and calls exc_dispatch(frame),
 * which may change frame->rip; iretq then returns there.
 *
 * Stack alignment: the CPU aligns RSP to 16 before pushing SS..RIP (5 words);
 * with the error code, the vector and 15 registers that is 22 words, so RSP
 * is 16-byte aligned at the call, as the ABI wants.
 */
	.text

/* Vectors for which the CPU pushes an error code (SDM Vol 3 §6.15). */
.macro ISR vec
	.balign	16
isr_\vec:
	.if !(\vec == 8 || (\vec >= 10 && \vec <= 14) || \vec == 17 || \vec == 21 || \vec == 29 || \vec == 30)
	pushq	$0
	.endif
	pushq	$\vec
	jmp	isr_common
.endm

.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	ISR	\v
.endr

isr_common:
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rdi
	cld
	call	exc_dispatch
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	addq	$16, %rsp	/* vector and error code */
	iretq

/* The stubs' addresses, for idt_init(). */
	.section .rodata
	.balign	8
	.globl	isr_stubs
isr_stubs:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad	isr_\v
.endr
