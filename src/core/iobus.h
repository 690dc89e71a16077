/*
 * Port-I/O and MMIO buses: a device registers a range and a handler; a vCPU
 * exit is dispatched to it in O(1). Port I/O uses a flat table of the 64 Ki
 * ports. MMIO uses a hash table keyed by 4 KiB page, each page pointing at the
 * regions that touch it, so lookup cost does not grow with the number of
 * devices. Registration may happen while vCPUs run (a guest moving a PCI
 * BAR), so both buses are guarded by a read-write lock.
 *
 * A handler gets the offset inside its region, not the absolute address.
 * It is called without the bus lock held (the region is copied out under
 * the lock), so it may (un)register regions, as a PCI BAR move does. The
 * device behind a region must therefore outlive the VM's vCPUs.
 */
#ifndef KHYVE_CORE_IOBUS_H
#define KHYVE_CORE_IOBUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

/*
 * @data holds @len bytes (1, 2, 4 or 8): the value written, or where to put
 * the value read. Reads start from all-ones so an unhandled width reads as
 * an absent device.
 */
typedef void (*iobus_fn)(void *opaque, uint64_t offset, void *data,
			 uint32_t len, bool is_write);

struct iobus_region {
	uint64_t base;
	uint64_t len;
	iobus_fn fn;
	void *opaque;
	const char *name;
};

struct iobus_page;

struct iobus {
	const char *name;
	bool is_pio;
	pthread_rwlock_t lock;
	struct iobus_region **ports;   /* PIO: 65536 entries */
	struct iobus_page **buckets;   /* MMIO: hash of page -> regions */
	unsigned int nr_buckets;
	unsigned long unhandled;       /* accesses nobody claimed */
};

/* Set up a port-I/O bus (@is_pio) or an MMIO bus; 0 or -errno. */
int iobus_init(struct iobus *bus, const char *name, bool is_pio) __must_check;
void iobus_exit(struct iobus *bus);
/*
 * Claim [base, base + len) for @fn. -EBUSY if any part is taken,
 * -EINVAL for an empty range or one beyond the bus. 0 on success.
 */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, iobus_fn fn,
		   void *opaque, const char *name) __must_check;
/* Release the region that starts at @base; -ENOENT if none. */
int iobus_unregister(struct iobus *bus, uint64_t base);
/*
 * Dispatch one access. Returns false when nobody claims @addr: reads then
 * return all-ones and writes are dropped (as on a PC's bus), and the caller
 * logs it rate-limited.
 */
bool iobus_dispatch(struct iobus *bus, uint64_t addr, void *data, uint32_t len,
		    bool is_write);

#endif
