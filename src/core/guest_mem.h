/*
 * Guest RAM: one memfd, mapped once in khyve, registered with KVM as two
 * slots around the 32-bit PCI hole:
 *
 *   [0, low_size)                 RAM (low_size = min(size, 3 GiB))
 *   [3 GiB, 4 GiB)                PCI hole: MMCONFIG, BARs, IOAPIC, LAPIC, bootrom
 *   [4 GiB, 4 GiB + high_size)    RAM (the rest)
 *
 * guest_mem_ptr() is the one place where a guest physical range is turned
 * into a host pointer; every device goes through it, so every guest-supplied
 * address and length is checked here.
 */
#ifndef KHYVE_CORE_GUEST_MEM_H
#define KHYVE_CORE_GUEST_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

#define GUEST_MEM_MIN (64ULL << 20)
#define GUEST_MEM_MAX (1ULL << 40)
#define GUEST_PCI_HOLE_START 0xC0000000ULL
#define GUEST_4G 0x100000000ULL

struct guest_mem {
	int fd;
	uint8_t *host;      /* low RAM at host[0], high RAM at host[low_size] */
	uint64_t size;      /* total RAM bytes */
	uint64_t low_size;  /* RAM below the PCI hole */
	uint64_t high_size; /* RAM from 4 GiB up */
};

/* Split a RAM size into low and high parts (no allocation). */
void guest_mem_layout(struct guest_mem *mem, uint64_t size);
/* Create and map the memfd for @size bytes of RAM; 0 or -errno. */
int guest_mem_init(struct guest_mem *mem, uint64_t size) __must_check;
/* Unmap and close. */
void guest_mem_exit(struct guest_mem *mem);
/*
 * Host pointer for guest physical [gpa, gpa + len), or NULL unless the whole
 * range is RAM inside one slot (len 0 is allowed and checks gpa alone).
 */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Copy to and from guest RAM; 0 or -EFAULT when the range is not RAM. */
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src,
		    uint64_t len) __must_check;
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst,
		   uint64_t len) __must_check;

#endif
