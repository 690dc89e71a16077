/* PCI bus 0; see pci.h. */
#include "bus/pci.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "core/vm.h"

#define CONFIG_ADDRESS_PORT 0xcf8
#define CONFIG_ENABLE 0x80000000U

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

void pci_dev_init(struct pci_dev *dev, const char *name, uint16_t vendor,
		  uint16_t device, uint32_t class_code, uint8_t revision)
{
	memset(dev->cfg, 0, sizeof(dev->cfg));
	memset(dev->wmask, 0, sizeof(dev->wmask));
	memset(dev->w1cmask, 0, sizeof(dev->w1cmask));
	memset(dev->bars, 0, sizeof(dev->bars));
	dev->name = name;
	put16(&dev->cfg[PCI_VENDOR_ID], vendor);
	put16(&dev->cfg[PCI_DEVICE_ID], device);
	dev->cfg[PCI_REVISION] = revision;
	dev->cfg[PCI_CLASS_PROG] = class_code & 0xff;
	put16(&dev->cfg[PCI_CLASS_DEVICE], class_code >> 8);
	put16(&dev->wmask[PCI_COMMAND],
	      PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
		      PCI_COMMAND_INTX_DISABLE);
	/* Status error bits are write-1-to-clear. */
	put16(&dev->w1cmask[PCI_STATUS], 0xf900);
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	dev->cap_end = 0x40;
	dev->last_cap = 0;
	dev->cfg_written = NULL;
	dev->cfg_reading = NULL;
	dev->bar_moved = NULL;
}

int pci_dev_add_cap(struct pci_dev *dev, const void *cap, unsigned int len)
{
	unsigned int at = (dev->cap_end + 3) & ~3U;

	if (len < 2 || at + len > PCI_CFG_SIZE)
		return -ENOSPC;
	memcpy(&dev->cfg[at], cap, len);
	dev->cfg[at + 1] = 0;
	if (dev->last_cap)
		dev->cfg[dev->last_cap + 1] = at;
	else
		dev->cfg[PCI_CAP_PTR] = at;
	dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	dev->last_cap = at;
	dev->cap_end = at + len;
	return at;
}

void pci_dev_add_bar(struct pci_dev *dev, int idx, enum pci_bar_type type,
		     uint64_t size, iobus_fn fn, void *opaque)
{
	struct pci_bar *bar = &dev->bars[idx];
	uint32_t flags = type == PCI_BAR_IO ? 0x1 : type == PCI_BAR_MEM64 ? 0x4 : 0;
	uint64_t mask = ~(size - 1);

	bar->type = type;
	bar->size = size;
	bar->fn = fn;
	bar->opaque = opaque;
	put32(&dev->cfg[PCI_BAR0 + 4 * idx], flags);
	put32(&dev->wmask[PCI_BAR0 + 4 * idx], (uint32_t)mask & ~0xfU);
	if (type == PCI_BAR_IO)
		put32(&dev->wmask[PCI_BAR0 + 4 * idx], (uint32_t)mask & ~0x3U);
	if (type == PCI_BAR_MEM64)
		put32(&dev->wmask[PCI_BAR0 + 4 * idx + 4], (uint32_t)(mask >> 32));
}

uint32_t pci_cfg_read(struct pci_dev *dev, unsigned int offset, unsigned int len)
{
	uint32_t v = 0;

	if (offset + len > PCI_CFG_SIZE || (len != 1 && len != 2 && len != 4))
		return 0xffffffff;
	if (dev->cfg_reading)
		dev->cfg_reading(dev, offset, len);
	memcpy(&v, &dev->cfg[offset], len);
	return v;
}

static uint64_t bar_address(const struct pci_dev *dev, int idx)
{
	uint32_t lo, hi = 0;

	memcpy(&lo, &dev->cfg[PCI_BAR0 + 4 * idx], 4);
	if (dev->bars[idx].type == PCI_BAR_IO)
		return lo & ~0x3U;
	if (dev->bars[idx].type == PCI_BAR_MEM64)
		memcpy(&hi, &dev->cfg[PCI_BAR0 + 4 * idx + 4], 4);
	return ((uint64_t)hi << 32) | (lo & ~0xfU);
}

/* Put every BAR where the guest says, if decoding of its kind is enabled. */
static void update_bars(struct pci_bus *bus, struct pci_dev *dev)
{
	uint16_t cmd;
	int i;

	memcpy(&cmd, &dev->cfg[PCI_COMMAND], 2);
	for (i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *bar = &dev->bars[i];
		bool is_io = bar->type == PCI_BAR_IO;
		struct iobus *iob = is_io ? &bus->vm->pio : &bus->vm->mmio;
		bool enabled = cmd & (is_io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
		uint64_t addr;

		if (bar->type == PCI_BAR_NONE)
			continue;
		addr = bar_address(dev, i);
		/* All-ones while sizing, or zero: not a place to decode. */
		if (!enabled || !addr || addr == (~(bar->size - 1) & (is_io ? 0xfffcULL : ~0xfULL)))
			addr = 0;
		if (addr == bar->mapped_at)
			continue;
		if (bar->mapped_at)
			iobus_unregister(iob, bar->mapped_at);
		bar->mapped_at = 0;
		if (addr && iobus_register(iob, addr, bar->size, bar->fn,
					   bar->opaque, dev->name) == 0)
			bar->mapped_at = addr;
		else if (addr)
			warn_ratelimited("%s: BAR%d at 0x%llx overlaps another "
					 "device: not mapped",
					 dev->name, i, (unsigned long long)addr);
		if (dev->bar_moved)
			dev->bar_moved(dev, i, bar->mapped_at);
	}
}

void pci_cfg_write(struct pci_bus *bus, struct pci_dev *dev, unsigned int offset,
		   unsigned int len, uint32_t value)
{
	unsigned int i;

	if (offset + len > PCI_CFG_SIZE || (len != 1 && len != 2 && len != 4))
		return;
	for (i = 0; i < len; i++) {
		uint8_t b = value >> (8 * i);
		unsigned int o = offset + i;

		dev->cfg[o] = (dev->cfg[o] & ~dev->wmask[o]) | (b & dev->wmask[o]);
		dev->cfg[o] &= ~(b & dev->w1cmask[o]);
	}
	if (offset < PCI_BAR0 + 4 * PCI_NR_BARS && offset + len > PCI_COMMAND)
		update_bars(bus, dev);
	if (dev->cfg_written)
		dev->cfg_written(dev, offset, len);
}

struct pci_dev *pci_bus_find(struct pci_bus *bus, unsigned int slot,
			     unsigned int func)
{
	if (slot >= PCI_SLOTS || func >= PCI_FUNCS)
		return NULL;
	return bus->devs[slot][func];
}

/* Config access by bus/slot/function/offset, common to both mechanisms. */
static void config_access(struct pci_bus *bus, unsigned int busnr,
			  unsigned int slot, unsigned int func,
			  unsigned int offset, void *data, uint32_t len,
			  bool is_write)
{
	struct pci_dev *dev = busnr ? NULL : pci_bus_find(bus, slot, func);
	uint32_t v = 0;

	/* Accesses must be naturally aligned and inside the header. */
	if (!dev || (offset & (len - 1)) || len > 4)
		return; /* reads stay all-ones: no device */
	pthread_mutex_lock(&bus->lock);
	if (is_write) {
		memcpy(&v, data, len);
		pci_cfg_write(bus, dev, offset, len, v);
	} else {
		v = pci_cfg_read(dev, offset, len);
		memcpy(data, &v, len);
	}
	pthread_mutex_unlock(&bus->lock);
}

static void cf8_io(void *opaque, uint64_t offset, void *data, uint32_t len,
		   bool is_write)
{
	struct pci_bus *bus = opaque;

	if (offset == 0 && len == 4) {
		if (is_write)
			memcpy(&bus->config_address, data, 4);
		else
			memcpy(data, &bus->config_address, 4);
	} else if (offset == 1 && len == 1 && bus->cf9_fn) {
		bus->cf9_fn(bus->cf9_opaque, 0, data, len, is_write);
	}
}

static void cfc_io(void *opaque, uint64_t offset, void *data, uint32_t len,
		   bool is_write)
{
	struct pci_bus *bus = opaque;
	uint32_t a = bus->config_address;

	if (!(a & CONFIG_ENABLE))
		return;
	config_access(bus, (a >> 16) & 0xff, (a >> 11) & 0x1f, (a >> 8) & 7,
		      (a & 0xfc) + offset, data, len, is_write);
}

static void ecam_io(void *opaque, uint64_t offset, void *data, uint32_t len,
		    bool is_write)
{
	unsigned int reg = offset & 0xfff;

	/* Extended config space (256-4095) reads as zeros: no capabilities. */
	if (reg >= PCI_CFG_SIZE) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	config_access(opaque, offset >> 20, (offset >> 15) & 0x1f,
		      (offset >> 12) & 7, reg, data, len, is_write);
}

int pci_bus_attach(struct pci_bus *bus, struct vm *vm, iobus_fn cf9_fn,
		   void *cf9_opaque)
{
	int err;

	memset(bus, 0, sizeof(*bus));
	pthread_mutex_init(&bus->lock, NULL);
	bus->vm = vm;
	bus->cf9_fn = cf9_fn;
	bus->cf9_opaque = cf9_opaque;
	err = iobus_register(&vm->pio, CONFIG_ADDRESS_PORT, 4, cf8_io, bus,
			     "pci-config-address");
	if (!err)
		err = iobus_register(&vm->pio, 0xcfc, 4, cfc_io, bus,
				     "pci-config-data");
	if (!err)
		err = iobus_register(&vm->mmio, LAYOUT_MMCONFIG,
				     LAYOUT_MMCONFIG_SIZE, ecam_io, bus,
				     "pci-mmconfig");
	return err;
}

int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev)
{
	struct pci_dev *f0;
	unsigned int f;

	if (dev->slot >= PCI_SLOTS || dev->func >= PCI_FUNCS)
		return -EINVAL;
	if (bus->devs[dev->slot][dev->func])
		return -EBUSY;
	bus->devs[dev->slot][dev->func] = dev;
	/* Function 0 says whether the slot is multi-function. */
	f0 = bus->devs[dev->slot][0];
	for (f = 1; f0 && f < PCI_FUNCS; f++)
		if (bus->devs[dev->slot][f])
			f0->cfg[PCI_HEADER_TYPE] |= PCI_HEADER_MULTIFUNCTION;
	return 0;
}

void pci_bus_detach(struct pci_bus *bus)
{
	unsigned int s, f;
	int i;

	for (s = 0; s < PCI_SLOTS; s++) {
		for (f = 0; f < PCI_FUNCS; f++) {
			struct pci_dev *dev = bus->devs[s][f];

			for (i = 0; dev && i < PCI_NR_BARS; i++) {
				struct pci_bar *bar = &dev->bars[i];

				if (!bar->mapped_at)
					continue;
				iobus_unregister(bar->type == PCI_BAR_IO ?
							 &bus->vm->pio :
							 &bus->vm->mmio,
						 bar->mapped_at);
				bar->mapped_at = 0;
				if (dev->bar_moved)
					dev->bar_moved(dev, i, 0);
			}
		}
	}
}

int pci_bus_assign_bars(struct pci_bus *bus)
{
	uint64_t next = LAYOUT_PCI_MMIO;
	unsigned int s, f;
	int i;

	for (s = 0; s < PCI_SLOTS; s++) {
		for (f = 0; f < PCI_FUNCS; f++) {
			struct pci_dev *dev = bus->devs[s][f];

			for (i = 0; dev && i < PCI_NR_BARS; i++) {
				struct pci_bar *bar = &dev->bars[i];
				uint64_t at;

				if (bar->type != PCI_BAR_MEM32 &&
				    bar->type != PCI_BAR_MEM64)
					continue;
				if (bar_address(dev, i))
					continue;
				at = (next + bar->size - 1) & ~(bar->size - 1);
				if (at + bar->size > LAYOUT_PCI_MMIO_END)
					return -ENOSPC;
				put32(&dev->cfg[PCI_BAR0 + 4 * i],
				      (uint32_t)at |
					      (bar->type == PCI_BAR_MEM64 ? 4 : 0));
				if (bar->type == PCI_BAR_MEM64)
					put32(&dev->cfg[PCI_BAR0 + 4 * i + 4], 0);
				next = at + bar->size;
			}
		}
	}
	return 0;
}
