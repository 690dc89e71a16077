/*
 * SMBIOS (DMTF DSP0134, version 2.8, 32-bit entry point) in the BIOS area:
 * BIOS information (type 0, flagged as a virtual machine), system
 * information (type 1) with the -U UUID, and the end marker. Linux finds the
 * entry point by scanning 0xF0000-0xFFFFF for "_SM_"; dmidecode and
 * /sys/class/dmi/id/product_uuid then show the UUID.
 */
#ifndef KHYVE_BUS_SMBIOS_H
#define KHYVE_BUS_SMBIOS_H

#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"

/*
 * Build the tables for @uuid (RFC 4122 byte order, as parsed from text)
 * into @buf; returns the bytes used or -ENOSPC. The entry point is at @buf
 * and describes tables placed for guest address @gpa.
 */
int smbios_build(uint8_t *buf, size_t size, uint64_t gpa, const uint8_t uuid[16]);
/* Build and copy the tables to the BIOS area of @mem; 0 or -errno. */
int smbios_install(const struct guest_mem *mem, const uint8_t uuid[16]) __must_check;

#endif
