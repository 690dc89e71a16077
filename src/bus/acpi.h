/*
 * ACPI tables (ACPI 6.4) for -A: RSDP → XSDT → FADT (with FACS and the
 * iasl-compiled DSDT of dsdt.asl), MADT (one LAPIC per vCPU, the IOAPIC,
 * interrupt overrides for the PIT and the SCI, LINT1 as NMI) and MCFG
 * (MMCONFIG for bus 0). They live in the BIOS area, where the kernel also
 * finds the RSDP by scanning; boot_params carries its address too.
 */
#ifndef KHYVE_BUS_ACPI_H
#define KHYVE_BUS_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"

#define ACPI_IOAPIC_ID 0 /* KVM's in-kernel IOAPIC resets to ID 0 */

/*
 * Build every table for @nr_vcpus into @buf (@size bytes) as if it were
 * placed at guest address @gpa; the RSDP comes first. Returns the bytes
 * used or -ENOSPC.
 */
int acpi_build(uint8_t *buf, size_t size, uint64_t gpa, unsigned int nr_vcpus);
/* Build the tables into the BIOS area of @mem; *rsdp gets its address. */
int acpi_install(const struct guest_mem *mem, unsigned int nr_vcpus,
		 uint64_t *rsdp) __must_check;

#endif
