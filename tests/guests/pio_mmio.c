/*
 * Port-I/O and MMIO exits: the UART scratch register keeps a value, an
 * unclaimed port reads all-ones, a PCI config read through MMCONFIG (an MMIO
 * exit) agrees with the same read through ports 0xCF8/0xCFC, and an
 * unclaimed MMIO address reads all-ones and ignores writes.
 */
#include "guest.h"

const char test_name[] = "pio_mmio";

#define MMCONFIG 0xe0000000ULL
#define UNCLAIMED_MMIO 0xd0000000ULL

void guest_main(const void *bp)
{
	uint32_t via_ports, via_mmio;

	(void)bp;
	serial_init();
	outb(COM1 + 7, 0xa5);
	CHECK(inb(COM1 + 7) == 0xa5);
	outb(COM1 + 7, 0x5a);
	CHECK(inb(COM1 + 7) == 0x5a);
	CHECK(inb(0x3e0) == 0xff);
	CHECK(inw(0x3e0) == 0xffff);
	CHECK(inl(0x3e0) == 0xffffffff);

	outl(0xcf8, 0x80000000);
	via_ports = inl(0xcfc);
	via_mmio = mmio_read32(MMCONFIG);
	printf_serial("host bridge id ports %x mmio %x\n", via_ports, via_mmio);
	CHECK(via_ports == via_mmio);
	CHECK(via_ports != 0xffffffff);
	/* Function 0 of slot 31 (LPC) through MMCONFIG: bus 0, dev 31. */
	CHECK(mmio_read32(MMCONFIG + (31 << 15)) != 0xffffffff);
	/* An empty slot. */
	CHECK(mmio_read32(MMCONFIG + (7 << 15)) == 0xffffffff);

	mmio_write32(UNCLAIMED_MMIO, 0x12345678);
	CHECK(mmio_read32(UNCLAIMED_MMIO) == 0xffffffff);
	guest_pass();
}
