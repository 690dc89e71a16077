/*
 * The Intel MultiProcessor Specification 1.4 table: how a guest without
 * ACPI finds its CPUs, the IOAPIC and the interrupt routing of the ISA IRQs
 * and PCI slots. Written unless -Y; Linux prefers ACPI when -A is given.
 */
#ifndef KHYVE_ARCH_X86_MPTABLE_H
#define KHYVE_ARCH_X86_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"

/* Build the floating pointer and table for @gpa into @buf; bytes or -ENOSPC. */
int mptable_build(uint8_t *buf, size_t size, uint64_t gpa, unsigned int nr_vcpus);
/* Build it into the BIOS area of @mem. */
int mptable_install(const struct guest_mem *mem, unsigned int nr_vcpus) __must_check;

#endif
