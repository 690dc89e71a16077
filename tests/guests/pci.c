/*
 * PCI enumeration through configuration mechanism #1: bus 0 holds exactly
 * the host bridge (0:0.0, class 0600) and the LPC bridge (0:31.0, class
 * 0601) when the command line adds nothing, and config space behaves (read-
 * only IDs, writable command register, aligned sub-dword reads).
 */
#include "guest.h"

const char test_name[] = "pci";

static uint32_t cfg_read(unsigned int dev, unsigned int fn, unsigned int reg)
{
	outl(0xcf8, 0x80000000U | (dev << 11) | (fn << 8) | (reg & 0xfc));
	return inl(0xcfc);
}

static void cfg_write16(unsigned int dev, unsigned int fn, unsigned int reg,
			uint16_t v)
{
	outl(0xcf8, 0x80000000U | (dev << 11) | (fn << 8) | (reg & 0xfc));
	outw(0xcfc + (reg & 2), v);
}

void guest_main(const void *bp)
{
	unsigned int dev, fn, found = 0;
	uint32_t id;

	(void)bp;
	serial_init();
	for (dev = 0; dev < 32; dev++) {
		for (fn = 0; fn < 8; fn++) {
			uint32_t cls;

			id = cfg_read(dev, fn, 0);
			if (id == 0xffffffff)
				continue;
			cls = cfg_read(dev, fn, 8) >> 8;
			printf_serial("PCI 00:%02x.%u %04x:%04x class %06x\n", dev,
				      fn, id & 0xffff, id >> 16, cls);
			if (dev == 0 && fn == 0)
				CHECK((cls >> 8) == 0x0600);
			else if (dev == 31 && fn == 0)
				CHECK((cls >> 8) == 0x0601);
			found++;
		}
	}
	CHECK(found == 2);
	/* Vendor/device IDs are read-only. */
	id = cfg_read(31, 0, 0);
	outl(0xcf8, 0x80000000U | (31 << 11));
	outl(0xcfc, 0);
	CHECK(cfg_read(31, 0, 0) == id);
	/* Command register: bus master is writable. */
	cfg_write16(31, 0, 4, 0x4);
	CHECK((cfg_read(31, 0, 4) & 0xffff) == 0x4);
	/* Byte read of the device ID's high byte. */
	outl(0xcf8, 0x80000000U | (31 << 11));
	CHECK(inb(0xcfc + 3) == (uint8_t)(id >> 24));
	/* Mechanism #1 disabled: no device answers. */
	outl(0xcf8, 31 << 11);
	CHECK(inl(0xcfc) == 0xffffffff);
	guest_pass();
}
