/*
 * PCI bus 0: configuration mechanism #1 (ports 0xCF8 address, 0xCFC-0xCFF
 * data) and the same configuration space through MMCONFIG (ECAM) in the
 * 32-bit hole, a table of slot/function → device, and generic handling of
 * the standard header: read-only and write-1-to-clear bits via a write
 * mask, BAR sizing, and mapping BARs on the I/O buses when the guest
 * enables decoding in the command register.
 *
 * Devices fill a struct pci_dev (pci_dev_init + pci_dev_add_bar) and never
 * touch the buses themselves.
 */
#ifndef KHYVE_BUS_PCI_H
#define KHYVE_BUS_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/iobus.h"
#include "core/log.h"

#define PCI_SLOTS 32
#define PCI_FUNCS 8
#define PCI_CFG_SIZE 256
#define PCI_NR_BARS 6

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_HEADER_MULTIFUNCTION 0x80

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_type type;
	uint64_t size;      /* power of two */
	uint64_t mapped_at; /* 0 when not on a bus */
	iobus_fn fn;
	void *opaque;
};

struct pci_dev {
	uint8_t slot, func;
	const char *name;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];  /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* bits cleared by writing 1 */
	struct pci_bar bars[PCI_NR_BARS];
	/* Optional: called after a guest write to config space. */
	void (*cfg_written)(struct pci_dev *dev, unsigned int offset,
			    unsigned int len);
	/* Optional: the guest is about to read config bytes [offset, +len). */
	void (*cfg_reading)(struct pci_dev *dev, unsigned int offset,
			    unsigned int len);
	/* Optional: BAR @idx now decodes at @addr (0: no longer decoded). */
	void (*bar_moved)(struct pci_dev *dev, int idx, uint64_t addr);
	uint8_t cap_end;  /* next free config byte for capabilities */
	uint8_t last_cap; /* offset of the last capability, 0 if none */
	void *opaque;
};

struct vm;

struct pci_bus {
	pthread_mutex_t lock;
	struct vm *vm;
	uint32_t config_address;
	struct pci_dev *devs[PCI_SLOTS][PCI_FUNCS];
	iobus_fn cf9_fn;   /* byte accesses to 0xCF9 (reset register) */
	void *cf9_opaque;
};

/* Fill the standard header of a type-0 device. */
void pci_dev_init(struct pci_dev *dev, const char *name, uint16_t vendor,
		  uint16_t device, uint32_t class_code, uint8_t revision);
/* Give BAR @idx a @size-byte region served by @fn (MEM64 uses idx and idx+1). */
void pci_dev_add_bar(struct pci_dev *dev, int idx, enum pci_bar_type type,
		     uint64_t size, iobus_fn fn, void *opaque);
/*
 * Append a capability (@len bytes starting with its ID byte; the next
 * pointer is filled in) to the list; returns its config offset, or -ENOSPC.
 */
int pci_dev_add_cap(struct pci_dev *dev, const void *cap, unsigned int len);
/* Read @len (1, 2, 4) bytes of config space at @offset, little-endian. */
uint32_t pci_cfg_read(struct pci_dev *dev, unsigned int offset, unsigned int len);
/* Guest write: honours the masks, moves BARs, calls cfg_written. */
void pci_cfg_write(struct pci_bus *bus, struct pci_dev *dev, unsigned int offset,
		   unsigned int len, uint32_t value);

/* Set up bus 0 on @vm and claim 0xCF8-0xCFF and the MMCONFIG window. */
int pci_bus_attach(struct pci_bus *bus, struct vm *vm, iobus_fn cf9_fn,
		   void *cf9_opaque) __must_check;
/* Plug @dev in at dev->slot/func; -EBUSY if taken, -EINVAL if out of range. */
int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev) __must_check;
/* The device at @slot/@func or NULL. */
struct pci_dev *pci_bus_find(struct pci_bus *bus, unsigned int slot,
			     unsigned int func);
/*
 * Give every memory BAR not yet placed an address in the 32-bit PCI window,
 * as firmware would, so the guest finds its devices ready to use.
 */
int pci_bus_assign_bars(struct pci_bus *bus) __must_check;
/* Unmap BARs (at exit). */
void pci_bus_detach(struct pci_bus *bus);

#endif
