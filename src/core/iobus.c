/* Port-I/O and MMIO dispatch; see iobus.h. */
#include "core/iobus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PIO_PORTS 0x10000
#define PAGE_SHIFT 12

/* One MMIO page and the regions overlapping it (usually exactly one). */
struct iobus_page {
	struct iobus_page *next;
	uint64_t pfn;
	unsigned int nr;
	struct iobus_region *regions[4];
};

int iobus_init(struct iobus *bus, const char *name, bool is_pio)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	bus->is_pio = is_pio;
	if (is_pio) {
		bus->ports = calloc(PIO_PORTS, sizeof(*bus->ports));
		if (!bus->ports)
			return -ENOMEM;
	} else {
		bus->nr_buckets = 1024;
		bus->buckets = calloc(bus->nr_buckets, sizeof(*bus->buckets));
		if (!bus->buckets)
			return -ENOMEM;
	}
	pthread_rwlock_init(&bus->lock, NULL);
	return 0;
}

static unsigned int page_hash(const struct iobus *bus, uint64_t pfn)
{
	return (unsigned int)((pfn * 0x9E3779B97F4A7C15ULL) >> 40) %
	       bus->nr_buckets;
}

static struct iobus_page *page_find(const struct iobus *bus, uint64_t pfn)
{
	struct iobus_page *p = bus->buckets[page_hash(bus, pfn)];

	while (p && p->pfn != pfn)
		p = p->next;
	return p;
}

static struct iobus_region *region_at(const struct iobus *bus, uint64_t addr)
{
	struct iobus_page *p;
	unsigned int i;

	if (bus->is_pio)
		return addr < PIO_PORTS ? bus->ports[addr] : NULL;
	p = page_find(bus, addr >> PAGE_SHIFT);
	if (!p)
		return NULL;
	for (i = 0; i < p->nr; i++) {
		struct iobus_region *r = p->regions[i];

		if (addr >= r->base && addr - r->base < r->len)
			return r;
	}
	return NULL;
}

static bool range_free(const struct iobus *bus, uint64_t base, uint64_t len)
{
	uint64_t a;

	if (bus->is_pio) {
		for (a = base; a < base + len; a++)
			if (bus->ports[a])
				return false;
		return true;
	}
	for (a = base >> PAGE_SHIFT; a <= (base + len - 1) >> PAGE_SHIFT; a++) {
		struct iobus_page *p = page_find(bus, a);
		unsigned int i;

		for (i = 0; p && i < p->nr; i++) {
			struct iobus_region *r = p->regions[i];

			if (base < r->base + r->len && r->base < base + len)
				return false;
		}
	}
	return true;
}

static int page_add(struct iobus *bus, uint64_t pfn, struct iobus_region *r)
{
	struct iobus_page *p = page_find(bus, pfn);

	if (!p) {
		unsigned int h = page_hash(bus, pfn);

		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->pfn = pfn;
		p->next = bus->buckets[h];
		bus->buckets[h] = p;
	}
	if (p->nr == sizeof(p->regions) / sizeof(p->regions[0]))
		return -ENOSPC;
	p->regions[p->nr++] = r;
	return 0;
}

static void page_del(struct iobus *bus, uint64_t pfn, struct iobus_region *r)
{
	struct iobus_page **pp = &bus->buckets[page_hash(bus, pfn)];
	struct iobus_page *p;
	unsigned int i;

	while (*pp && (*pp)->pfn != pfn)
		pp = &(*pp)->next;
	p = *pp;
	if (!p)
		return;
	for (i = 0; i < p->nr; i++) {
		if (p->regions[i] == r) {
			p->regions[i] = p->regions[--p->nr];
			break;
		}
	}
	if (!p->nr) {
		*pp = p->next;
		free(p);
	}
}

static void region_unlink(struct iobus *bus, struct iobus_region *r)
{
	uint64_t a;

	if (bus->is_pio) {
		for (a = r->base; a < r->base + r->len; a++)
			if (bus->ports[a] == r)
				bus->ports[a] = NULL;
		return;
	}
	for (a = r->base >> PAGE_SHIFT; a <= (r->base + r->len - 1) >> PAGE_SHIFT;
	     a++)
		page_del(bus, a, r);
}

int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, iobus_fn fn,
		   void *opaque, const char *name)
{
	struct iobus_region *r;
	uint64_t a;
	int err = 0;

	if (!len || base + len < base)
		return -EINVAL;
	if (bus->is_pio && base + len > PIO_PORTS)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (struct iobus_region){ base, len, fn, opaque, name };

	pthread_rwlock_wrlock(&bus->lock);
	if (!range_free(bus, base, len)) {
		err = -EBUSY;
		goto out;
	}
	if (bus->is_pio) {
		for (a = base; a < base + len; a++)
			bus->ports[a] = r;
	} else {
		for (a = base >> PAGE_SHIFT; a <= (base + len - 1) >> PAGE_SHIFT;
		     a++) {
			err = page_add(bus, a, r);
			if (err) {
				region_unlink(bus, r);
				break;
			}
		}
	}
out:
	pthread_rwlock_unlock(&bus->lock);
	if (err)
		free(r);
	return err;
}

int iobus_unregister(struct iobus *bus, uint64_t base)
{
	struct iobus_region *r;

	pthread_rwlock_wrlock(&bus->lock);
	r = region_at(bus, base);
	if (!r || r->base != base) {
		pthread_rwlock_unlock(&bus->lock);
		return -ENOENT;
	}
	region_unlink(bus, r);
	pthread_rwlock_unlock(&bus->lock);
	free(r);
	return 0;
}

bool iobus_dispatch(struct iobus *bus, uint64_t addr, void *data, uint32_t len,
		    bool is_write)
{
	struct iobus_region *r;
	struct iobus_region copy;

	if (!is_write)
		memset(data, 0xff, len);
	pthread_rwlock_rdlock(&bus->lock);
	r = region_at(bus, addr);
	if (r)
		copy = *r;
	pthread_rwlock_unlock(&bus->lock);
	if (!r) {
		__atomic_add_fetch(&bus->unhandled, 1, __ATOMIC_RELAXED);
		return false;
	}
	/* Called unlocked, so a handler may move regions on any bus. */
	copy.fn(copy.opaque, addr - copy.base, data, len, is_write);
	return true;
}

void iobus_exit(struct iobus *bus)
{
	unsigned int i;

	if (bus->is_pio) {
		/* A region covers a contiguous run of ports: free it once. */
		for (i = 0; i < PIO_PORTS; i++) {
			struct iobus_region *r = bus->ports[i];

			if (r && r->base == i) {
				region_unlink(bus, r);
				free(r);
			}
		}
		free(bus->ports);
	} else {
		for (i = 0; i < bus->nr_buckets; i++) {
			while (bus->buckets[i]) {
				struct iobus_region *r =
					bus->buckets[i]->regions[0];

				region_unlink(bus, r);
				free(r);
			}
		}
		free(bus->buckets);
	}
	pthread_rwlock_destroy(&bus->lock);
}
