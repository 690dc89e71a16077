/*
 * Entry of a test guest: khyve enters in 64-bit mode with RSI pointing at
 * the Linux zero page (boot_params). Set up our own stack and call
 * guest_main(boot_params); returning from it is a failure.
 */
	.section .text.start, "ax"
	.globl _start
_start:
	cli
	lea	stack_top(%rip), %rsp
	mov	%rsi, %rdi
	call	guest_main
	lea	returned(%rip), %rdi
	call	guest_fail
1:	hlt
	jmp	1b

	.section .rodata
returned:
	.asciz	"guest_main returned"

	.section .bss
	.balign	16
	.space	65536
stack_top:
