/*
 * The Linux "zero page" (struct boot_params, Documentation/arch/x86/
 * zero-page.rst and boot.rst) that a 64-bit entry receives in RSI: the e820
 * map, the command line pointer, the initrd, and for a bzImage its setup
 * header. Written by byte offset so that no kernel header is needed.
 */
#ifndef KHYVE_BOOT_BOOT_PARAMS_H
#define KHYVE_BOOT_BOOT_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/e820.h"

#define BP_SIZE 4096
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1 /* setup header, as found at 0x1f1 in a bzImage */
#define BP_BOOT_FLAG 0x1fe
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_HEAP_END_PTR 0x224
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_CMDLINE_SIZE 0x238
#define BP_HDR_END 0x290
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

#define BP_LOADFLAGS_LOADED_HIGH 0x01
#define BP_LOADFLAGS_CAN_USE_HEAP 0x80
#define BP_LOADER_UNDEFINED 0xff
#define BP_HDRS_MAGIC 0x53726448 /* "HdrS" */

struct boot_params_info {
	uint64_t cmdline_gpa;
	uint32_t cmdline_len;   /* without the NUL */
	uint64_t initrd_gpa;
	uint64_t initrd_size;
	uint64_t rsdp_gpa;      /* 0: none */
	const struct e820_entry *e820;
	int e820_count;
};

/*
 * Fill the zero page @bp (BP_SIZE bytes). @setup_hdr, when not NULL, is a
 * bzImage's setup header (bytes 0x1f1 up to @hdr_len) copied in first, as
 * the boot protocol asks.
 */
void boot_params_fill(uint8_t *bp, const struct boot_params_info *info,
		      const uint8_t *setup_hdr, size_t hdr_len);

#endif
