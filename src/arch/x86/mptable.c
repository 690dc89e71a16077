/* MP table; see mptable.h. Entry formats from MP spec 1.4 chapter 4. */
#include "arch/x86/mptable.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/table_checksum.h"

#define MP_PROCESSOR 0
#define MP_BUS 1
#define MP_IOAPIC 2
#define MP_IOINT 3
#define MP_LOCALINT 4

#define INT_TYPE_INT 0
#define INT_TYPE_NMI 1
#define INT_TYPE_EXTINT 3
#define IRQ_LEVEL_LOW 0x000f /* polarity low, level-triggered */

#define BUS_PCI 0
#define BUS_ISA 1

struct mp_writer {
	uint8_t *p, *end;
	uint16_t count;
	int err;
};

static uint8_t *entry(struct mp_writer *w, size_t len)
{
	uint8_t *e = w->p;

	if (w->err || (size_t)(w->end - w->p) < len) {
		w->err = -ENOSPC;
		return NULL;
	}
	memset(e, 0, len);
	w->p += len;
	w->count++;
	return e;
}

static void ioint(struct mp_writer *w, uint8_t type, uint16_t flags, uint8_t bus,
		  uint8_t irq, uint8_t ioapic, uint8_t pin)
{
	uint8_t *e = entry(w, 8);

	if (!e)
		return;
	e[0] = MP_IOINT;
	e[1] = type;
	memcpy(e + 2, &flags, 2);
	e[4] = bus;
	e[5] = irq;
	e[6] = ioapic;
	e[7] = pin;
}

static void localint(struct mp_writer *w, uint8_t type, uint8_t lint)
{
	uint8_t *e = entry(w, 8);

	if (!e)
		return;
	e[0] = MP_LOCALINT;
	e[1] = type;
	e[4] = BUS_ISA;
	e[6] = 0xff; /* every local APIC */
	e[7] = lint;
}

int mptable_build(uint8_t *buf, size_t size, uint64_t gpa, unsigned int nr_vcpus)
{
	const uint8_t ioapic_id = nr_vcpus; /* distinct from every LAPIC ID */
	uint8_t *fp = buf, *hdr = buf + 16, *e;
	struct mp_writer w = { buf + 16 + 44, buf + size, 0, 0 };
	uint32_t v32;
	uint16_t v16;
	unsigned int i, slot, pin;

	if (size < 16 + 44)
		return -ENOSPC;
	memset(buf, 0, 16 + 44);
	for (i = 0; i < nr_vcpus; i++) {
		e = entry(&w, 20);
		if (!e)
			break;
		e[0] = MP_PROCESSOR;
		e[1] = i;    /* local APIC ID */
		e[2] = 0x14; /* local APIC version */
		e[3] = 1 | (i == 0 ? 2 : 0); /* enabled, BSP */
		v32 = 0x600;
		memcpy(e + 4, &v32, 4);
		v32 = 0x201; /* FPU, APIC */
		memcpy(e + 8, &v32, 4);
	}
	e = entry(&w, 8);
	if (e) {
		e[0] = MP_BUS;
		e[1] = BUS_PCI;
		memcpy(e + 2, "PCI   ", 6);
	}
	e = entry(&w, 8);
	if (e) {
		e[0] = MP_BUS;
		e[1] = BUS_ISA;
		memcpy(e + 2, "ISA   ", 6);
	}
	e = entry(&w, 8);
	if (e) {
		e[0] = MP_IOAPIC;
		e[1] = ioapic_id;
		e[2] = 0x11;
		e[3] = 1;
		v32 = LAYOUT_IOAPIC;
		memcpy(e + 4, &v32, 4);
	}
	/* ISA IRQs: identity, but the PIT's IRQ 0 reaches input 2. */
	ioint(&w, INT_TYPE_EXTINT, 0, BUS_ISA, 0, ioapic_id, 0);
	for (i = 0; i < 16; i++)
		if (i != 2)
			ioint(&w, INT_TYPE_INT, 0, BUS_ISA, i, ioapic_id,
			      i == 0 ? 2 : i);
	/* PCI INTx as in the DSDT's _PRT: 16 + (slot + pin) % 8. */
	for (slot = 1; slot < 31; slot++)
		for (pin = 0; pin < 4; pin++)
			ioint(&w, INT_TYPE_INT, IRQ_LEVEL_LOW, BUS_PCI,
			      (slot << 2) | pin, ioapic_id,
			      16 + (slot + pin) % 8);
	localint(&w, INT_TYPE_EXTINT, 0);
	localint(&w, INT_TYPE_NMI, 1);
	if (w.err)
		return w.err;

	memcpy(fp, "_MP_", 4);
	v32 = (uint32_t)(gpa + 16);
	memcpy(fp + 4, &v32, 4);
	fp[8] = 1; /* length in 16-byte units */
	fp[9] = 4; /* spec 1.4 */
	fp[10] = table_checksum(fp, 16);

	memcpy(hdr, "PCMP", 4);
	v16 = (uint16_t)(w.p - hdr);
	memcpy(hdr + 4, &v16, 2);
	hdr[6] = 4;
	memcpy(hdr + 8, "KHYVE   ", 8);
	memcpy(hdr + 16, "KHYVE VM    ", 12);
	memcpy(hdr + 34, &w.count, 2);
	v32 = LAYOUT_LAPIC;
	memcpy(hdr + 36, &v32, 4);
	hdr[7] = table_checksum(hdr, v16);
	return (int)(w.p - buf);
}

int mptable_install(const struct guest_mem *mem, unsigned int nr_vcpus)
{
	size_t size = LAYOUT_BIOS_END - LAYOUT_MPTABLE;
	uint8_t *dst = guest_mem_ptr(mem, LAYOUT_MPTABLE, size);
	int n;

	if (!dst)
		return -EFAULT;
	n = mptable_build(dst, size, LAYOUT_MPTABLE, nr_vcpus);
	if (n < 0)
		return n;
	/*
	 * Linux looks for the floating pointer in the last KiB of base memory
	 * before it scans the 64 KiB BIOS area, a scan that takes seconds of
	 * emulated code on a software-virtualized host: put a copy there too.
	 */
	return guest_mem_write(mem, LAYOUT_EBDA, dst, 16);
}
