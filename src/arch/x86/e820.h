/*
 * The e820 memory map the guest sees, derived from the RAM layout of
 * guest_mem.h and the fixed places of layout.h. Linux reads it from
 * boot_params; firmware-less boots have no other source.
 */
#ifndef KHYVE_ARCH_X86_E820_H
#define KHYVE_ARCH_X86_E820_H

#include <stdint.h>

#include "core/guest_mem.h"

#define E820_RAM 1
#define E820_RESERVED 2

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

#define E820_MAX 8

/* Fill @map (E820_MAX entries) for @mem; returns the number of entries. */
int e820_build(const struct guest_mem *mem, struct e820_entry *map);

#endif
