/* e820 map; see e820.h. */
#include "arch/x86/e820.h"

#include "arch/x86/layout.h"

static int add(struct e820_entry *map, int n, uint64_t addr, uint64_t size,
	       uint32_t type)
{
	map[n].addr = addr;
	map[n].size = size;
	map[n].type = type;
	return n + 1;
}

int e820_build(const struct guest_mem *mem, struct e820_entry *map)
{
	int n = 0;

	/* Conventional memory, then the EBDA the kernel must not touch. */
	n = add(map, n, 0, LAYOUT_EBDA, E820_RAM);
	n = add(map, n, LAYOUT_EBDA, LAYOUT_VGA - LAYOUT_EBDA, E820_RESERVED);
	/* The BIOS area holds ACPI, MP and SMBIOS tables. */
	n = add(map, n, LAYOUT_BIOS, LAYOUT_BIOS_END - LAYOUT_BIOS,
		E820_RESERVED);
	n = add(map, n, LAYOUT_HIGH_MEM, mem->low_size - LAYOUT_HIGH_MEM,
		E820_RAM);
	/* MMCONFIG must be reserved in e820 or Linux refuses to use it. */
	n = add(map, n, LAYOUT_MMCONFIG, LAYOUT_MMCONFIG_SIZE, E820_RESERVED);
	if (mem->high_size)
		n = add(map, n, GUEST_4G, mem->high_size, E820_RAM);
	return n;
}
