/*
 * A minimal virtio 1.x PCI driver for the virtio-rnd device at 0:3.0
 * (khyve -s 3,virtio-rnd), exercising khyve's PCI transport under KVM:
 * the capability list, the BAR khyve placed, the VIRTIO_PCI_CAP_PCI_CFG
 * window, feature negotiation, one queue set up through the common
 * configuration, a notify through the notify address (an ioeventfd in
 * khyve), the used ring filled by the device thread, the ISR (INTx without
 * MSI-X), a hostile descriptor turning into NEEDS_RESET, and reset.
 */
#include "guest.h"

const char test_name[] = "virtio_pci";

#define SLOT 3
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4
#define CAP_PCI_CFG 5

/* struct virtio_pci_common_cfg offsets (virtio 1.2 §4.1.4.3). */
#define C_DFSELECT 0x00
#define C_GFSELECT 0x08
#define C_GF 0x0c
#define C_NUMQ 0x12
#define C_STATUS 0x14
#define C_QSELECT 0x16
#define C_QSIZE 0x18
#define C_QENABLE 0x1c
#define C_QNOFF 0x1e
#define C_QDESC 0x20
#define C_QAVAIL 0x28
#define C_QUSED 0x30

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 64

#define DESC 0x300000ULL
#define AVAIL 0x301000ULL
#define USED 0x302000ULL
#define BUF 0x310000ULL
#define QSIZE 8

static uint32_t cfg_read(unsigned int reg, unsigned int len)
{
	outl(0xcf8, 0x80000000U | (SLOT << 11) | (reg & 0xfc));
	if (len == 1)
		return inb(0xcfc + (reg & 3));
	if (len == 2)
		return inw(0xcfc + (reg & 2));
	return inl(0xcfc);
}

static void cfg_write(unsigned int reg, unsigned int len, uint32_t v)
{
	outl(0xcf8, 0x80000000U | (SLOT << 11) | (reg & 0xfc));
	if (len == 1)
		outb(0xcfc + (reg & 3), v);
	else if (len == 2)
		outw(0xcfc + (reg & 2), v);
	else
		outl(0xcfc, v);
}

static uint8_t rd8(uint64_t a)
{
	return *(volatile uint8_t *)a;
}

static uint16_t rd16(uint64_t a)
{
	return *(volatile uint16_t *)a;
}

static void wr8(uint64_t a, uint8_t v)
{
	*(volatile uint8_t *)a = v;
}

static void wr16(uint64_t a, uint16_t v)
{
	*(volatile uint16_t *)a = v;
}

static void wr64(uint64_t a, uint64_t v)
{
	mmio_write32(a, (uint32_t)v);
	mmio_write32(a + 4, (uint32_t)(v >> 32));
}

struct caps {
	unsigned int at[6];   /* config offset of each virtio cap type */
	uint32_t offset[6];   /* its offset in the BAR */
	uint32_t notify_mult;
	bool msix;
};

static void find_caps(struct caps *c)
{
	unsigned int at, n = 0;

	mem_set(c, 0, sizeof(*c));
	if (!(cfg_read(0x06, 2) & 0x10))
		guest_fail("no capability list");
	for (at = cfg_read(0x34, 1); at; at = cfg_read(at + 1, 1)) {
		unsigned int id = cfg_read(at, 1);

		if (++n > 16 || at < 0x40)
			guest_fail("bad capability list at 0x%x", at);
		if (id == 0x11)
			c->msix = true;
		if (id != 0x09)
			continue;
		unsigned int type = cfg_read(at + 3, 1);

		/* PCI_CFG's bar is the driver's to set; the others name BAR 4. */
		if (type < 1 || type > 5 ||
		    (type != CAP_PCI_CFG && cfg_read(at + 4, 1) != 4))
			guest_fail("cap type %u bar %u", type, cfg_read(at + 4, 1));
		c->at[type] = at;
		c->offset[type] = cfg_read(at + 8, 4);
		if (type == CAP_NOTIFY)
			c->notify_mult = cfg_read(at + 16, 4);
	}
	/* virtio-rnd has no device configuration, so no CAP_DEVICE. */
	for (n = 1; n <= 5; n++)
		if (!c->at[n] && n != CAP_DEVICE)
			guest_fail("virtio capability %u missing", n);
	if (!c->msix)
		guest_fail("no MSI-X capability");
}

/* Read @len bytes at BAR offset @off through the PCI_CFG window. */
static uint32_t window_read(const struct caps *c, uint32_t off,
			    unsigned int len)
{
	unsigned int at = c->at[CAP_PCI_CFG];

	cfg_write(at + 4, 1, 4);
	cfg_write(at + 8, 4, off);
	cfg_write(at + 12, 4, len);
	return cfg_read(at + 16, len);
}

void guest_main(const void *bp)
{
	uint64_t bar, common, notify, isr;
	volatile uint8_t *buf = (volatile uint8_t *)BUF;
	volatile uint16_t *avail = (volatile uint16_t *)AVAIL;
	volatile uint16_t *used = (volatile uint16_t *)USED;
	volatile uint64_t *desc = (volatile uint64_t *)DESC;
	unsigned int i, nonzero = 0;
	struct caps c;
	uint16_t qsize;

	(void)bp;
	serial_init();
	if (cfg_read(0, 4) != 0x10441af4)
		guest_fail("0:3.0 is %08x, not virtio-rnd", cfg_read(0, 4));
	if (cfg_read(0x08, 1) < 1)
		guest_fail("modern devices have revision >= 1");
	find_caps(&c);
	bar = (cfg_read(0x20, 4) & ~0xfULL) | ((uint64_t)cfg_read(0x24, 4) << 32);
	if (!bar)
		guest_fail("BAR4 not assigned");
	cfg_write(0x04, 2, cfg_read(0x04, 2) | 0x6); /* memory, bus master */
	common = bar + c.offset[CAP_COMMON];
	isr = bar + c.offset[CAP_ISR];
	if (rd16(common + C_NUMQ) != 1)
		guest_fail("num_queues %u", rd16(common + C_NUMQ));
	if (window_read(&c, c.offset[CAP_COMMON] + C_NUMQ, 2) != 1)
		guest_fail("PCI_CFG window read of num_queues");

	/* §3.1.1 driver initialisation. */
	wr8(common + C_STATUS, 0);
	if (rd8(common + C_STATUS))
		guest_fail("status after reset");
	wr8(common + C_STATUS, S_ACK | S_DRIVER);
	mmio_write32(common + C_DFSELECT, 1);
	if (!(mmio_read32(common + C_DFSELECT + 4) & 1))
		guest_fail("VERSION_1 not offered");
	mmio_write32(common + C_GFSELECT, 1);
	mmio_write32(common + C_GF, 1); /* VERSION_1 only */
	mmio_write32(common + C_GFSELECT, 0);
	mmio_write32(common + C_GF, 0);
	wr8(common + C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(rd8(common + C_STATUS) & S_FEATURES_OK))
		guest_fail("FEATURES_OK refused");

	wr16(common + C_QSELECT, 0);
	qsize = rd16(common + C_QSIZE);
	if (qsize < QSIZE || (qsize & (qsize - 1)))
		guest_fail("queue size %u", qsize);
	wr16(common + C_QSIZE, QSIZE);
	mem_set((void *)DESC, 0, 0x3000);
	wr64(common + C_QDESC, DESC);
	wr64(common + C_QAVAIL, AVAIL);
	wr64(common + C_QUSED, USED);
	wr16(common + C_QENABLE, 1);
	notify = bar + c.offset[CAP_NOTIFY] +
		 rd16(common + C_QNOFF) * c.notify_mult;
	wr8(common + C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);

	/* One 64-byte writable buffer for entropy. */
	mem_set((void *)BUF, 0, 64);
	desc[0] = BUF;
	desc[1] = 64 | (2ULL << 32); /* len 64, flags WRITE */
	avail[2] = 0;                 /* ring[0] = head 0 */
	__asm__ volatile("" ::: "memory");
	avail[1] = 1;                 /* idx */
	wr16(notify, 0);
	for (i = 0; i < 100000000 && used[1] != 1; i++)
		__asm__ volatile("pause");
	if (used[1] != 1)
		guest_fail("no used buffer");
	if (*(volatile uint32_t *)(USED + 8) != 64)
		guest_fail("used len %u", *(volatile uint32_t *)(USED + 8));
	for (i = 0; i < 64; i++)
		nonzero += buf[i] != 0;
	if (nonzero < 32)
		guest_fail("entropy looks empty (%u nonzero bytes)", nonzero);
	/* No MSI-X enabled: the interrupt is INTx, latched in the ISR. */
	if (!(rd8(isr) & 1))
		guest_fail("ISR queue bit not set");
	if (rd8(isr))
		guest_fail("ISR not cleared by reading");

	/* A buffer in the PCI hole: the device must refuse, not crash. */
	desc[2] = 0xD0000000ULL;
	desc[3] = 64 | (2ULL << 32);
	avail[3] = 1;
	__asm__ volatile("" ::: "memory");
	avail[1] = 2;
	wr16(notify, 0);
	for (i = 0; i < 100000000 && !(rd8(common + C_STATUS) & S_NEEDS_RESET); i++)
		__asm__ volatile("pause");
	if (!(rd8(common + C_STATUS) & S_NEEDS_RESET))
		guest_fail("hostile descriptor: no NEEDS_RESET");
	wr8(common + C_STATUS, 0);
	if (rd8(common + C_STATUS) || rd16(common + C_QENABLE))
		guest_fail("reset did not clear the device");
	printf_serial("virtio-rnd: 64 bytes, caps ok, window ok\n");
	guest_pass();
}
