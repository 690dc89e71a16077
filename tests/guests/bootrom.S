/*
 * A 64 KiB firmware image for -f bootrom (khyve) and -bios (QEMU): starts at
 * the reset vector in real mode, prints "GUEST-READY", optionally does
 * LOOPS port writes to 0x80 (an exit each: the port-I/O benchmark), prints
 * "GUEST-DONE", then asks to stop: ACPI S5 on khyve, isa-debug-exit on QEMU.
 * Build: as --32 [--defsym LOOPS=N] then ld -Ttext=0 --oformat=binary.
 */
	.code16
	.text
	.globl	_start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ss
	mov	$0x7000, %sp
	/* COM1: 115200 8N1 */
	mov	$0x3fb, %dx
	mov	$0x80, %al
	out	%al, %dx
	mov	$0x3f8, %dx
	mov	$1, %al
	out	%al, %dx
	mov	$0x3fb, %dx
	mov	$3, %al
	out	%al, %dx
	mov	$ready, %si
	call	print
.ifdef LOOPS
	mov	$LOOPS, %ecx
1:	out	%al, $0x80
	dec	%ecx
	jnz	1b
.endif
	mov	$done, %si
	call	print
	/* ACPI S5: SLP_TYP=5, SLP_EN */
	mov	$0x404, %dx
	mov	$0x3400, %ax
	out	%ax, %dx
	/* QEMU isa-debug-exit (iobase 0xf4) */
	mov	$0, %al
	out	%al, $0xf4
2:	hlt
	jmp	2b

print:
	mov	$0x3fd, %dx
3:	in	%dx, %al
	test	$0x20, %al
	jz	3b
	cs lodsb
	test	%al, %al
	jz	4f
	mov	$0x3f8, %dx
	out	%al, %dx
	jmp	print
4:	ret

ready:	.asciz	"GUEST-READY\r\n"
done:	.asciz	"GUEST-DONE\r\n"

	.org	0xfff0
reset_vector:
	jmp	_start
	.org	0x10000
