/* Zero page; see boot_params.h. */
#include "boot/boot_params.h"

#include <string.h>

static void put8(uint8_t *bp, size_t off, uint8_t v)
{
	bp[off] = v;
}

static void put16(uint8_t *bp, size_t off, uint16_t v)
{
	memcpy(bp + off, &v, 2);
}

static void put32(uint8_t *bp, size_t off, uint32_t v)
{
	memcpy(bp + off, &v, 4);
}

static void put64(uint8_t *bp, size_t off, uint64_t v)
{
	memcpy(bp + off, &v, 8);
}

void boot_params_fill(uint8_t *bp, const struct boot_params_info *info,
		      const uint8_t *setup_hdr, size_t hdr_len)
{
	int i, n = info->e820_count;

	memset(bp, 0, BP_SIZE);
	if (setup_hdr) {
		if (hdr_len > BP_HDR_END - BP_HDR)
			hdr_len = BP_HDR_END - BP_HDR;
		memcpy(bp + BP_HDR, setup_hdr, hdr_len);
	} else {
		/* An ELF kernel has no header: describe a 2.15 loader. */
		put16(bp, BP_BOOT_FLAG, 0xaa55);
		put32(bp, BP_HEADER, BP_HDRS_MAGIC);
		put16(bp, BP_VERSION, 0x020f);
	}
	put8(bp, BP_TYPE_OF_LOADER, BP_LOADER_UNDEFINED);
	put8(bp, BP_LOADFLAGS, bp[BP_LOADFLAGS] | BP_LOADFLAGS_LOADED_HIGH |
				       BP_LOADFLAGS_CAN_USE_HEAP);
	put16(bp, BP_HEAP_END_PTR, 0xfe00);
	put32(bp, BP_CMD_LINE_PTR, (uint32_t)info->cmdline_gpa);
	put32(bp, BP_EXT_CMD_LINE_PTR, (uint32_t)(info->cmdline_gpa >> 32));
	if (!setup_hdr)
		put32(bp, BP_CMDLINE_SIZE, info->cmdline_len);
	put32(bp, BP_RAMDISK_IMAGE, (uint32_t)info->initrd_gpa);
	put32(bp, BP_EXT_RAMDISK_IMAGE, (uint32_t)(info->initrd_gpa >> 32));
	put32(bp, BP_RAMDISK_SIZE, (uint32_t)info->initrd_size);
	put32(bp, BP_EXT_RAMDISK_SIZE, (uint32_t)(info->initrd_size >> 32));
	put64(bp, BP_ACPI_RSDP_ADDR, info->rsdp_gpa);
	if (n > BP_E820_MAX)
		n = BP_E820_MAX;
	put8(bp, BP_E820_ENTRIES, n);
	for (i = 0; i < n; i++)
		memcpy(bp + BP_E820_TABLE + i * sizeof(struct e820_entry),
		       &info->e820[i], sizeof(struct e820_entry));
}
