/*
 * The checksum of the firmware tables a PC carries (ACPI, SMBIOS, MP):
 * the byte that makes all bytes of the structure sum to zero.
 */
#ifndef KHYVE_ARCH_X86_TABLE_CHECKSUM_H
#define KHYVE_ARCH_X86_TABLE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* The value that, stored in the checksum byte (zero until then), makes the
 * @len bytes at @p sum to zero modulo 256. */
static inline uint8_t table_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

#endif
