/* Guest memory layout, e820 map, zero page and SMBIOS tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "boot/boot_params.h"
#include "bus/smbios.h"
#include "core/guest_mem.h"

static void check_sorted_disjoint(const struct e820_entry *map, int n)
{
	int i;

	for (i = 1; i < n; i++)
		assert_true(map[i - 1].addr + map[i - 1].size <= map[i].addr);
}

static uint64_t ram_total(const struct e820_entry *map, int n)
{
	uint64_t total = 0;
	int i;

	for (i = 0; i < n; i++)
		if (map[i].type == E820_RAM)
			total += map[i].size;
	return total;
}

static void e820_small(void **state)
{
	struct e820_entry map[E820_MAX];
	struct guest_mem mem;
	int n;

	(void)state;
	guest_mem_layout(&mem, 256ULL << 20);
	assert_int_equal(mem.low_size, 256ULL << 20);
	assert_int_equal(mem.high_size, 0);
	n = e820_build(&mem, map);
	assert_int_equal(n, 5);
	check_sorted_disjoint(map, n);
	assert_int_equal(map[0].addr, 0);
	assert_int_equal(map[0].type, E820_RAM);
	assert_int_equal(map[3].addr, 0x100000);
	assert_int_equal(map[3].addr + map[3].size, 256ULL << 20);
	/* Everything but the EBDA, VGA hole and BIOS area is usable RAM. */
	assert_int_equal(ram_total(map, n),
			 (256ULL << 20) - (LAYOUT_BIOS_END - LAYOUT_EBDA));
	assert_int_equal(map[4].addr, LAYOUT_MMCONFIG);
	assert_int_equal(map[4].type, E820_RESERVED);
}

static void e820_above_4g(void **state)
{
	struct e820_entry map[E820_MAX];
	struct guest_mem mem;
	int n;

	(void)state;
	guest_mem_layout(&mem, 8ULL << 30);
	assert_int_equal(mem.low_size, GUEST_PCI_HOLE_START);
	assert_int_equal(mem.high_size, (8ULL << 30) - GUEST_PCI_HOLE_START);
	n = e820_build(&mem, map);
	assert_int_equal(n, 6);
	check_sorted_disjoint(map, n);
	assert_int_equal(map[5].addr, GUEST_4G);
	assert_int_equal(map[5].size, mem.high_size);
	assert_int_equal(map[5].type, E820_RAM);
	/* The hole holds no RAM. */
	assert_true(map[3].addr + map[3].size <= GUEST_PCI_HOLE_START);
}

static void guest_mem_bounds(void **state)
{
	struct guest_mem mem;

	(void)state;
	assert_int_equal(guest_mem_init(&mem, 5ULL << 30), 0);
	assert_non_null(guest_mem_ptr(&mem, 0, 4096));
	assert_non_null(guest_mem_ptr(&mem, GUEST_PCI_HOLE_START - 4096, 4096));
	assert_null(guest_mem_ptr(&mem, GUEST_PCI_HOLE_START - 4096, 4097));
	assert_null(guest_mem_ptr(&mem, GUEST_PCI_HOLE_START, 1));
	assert_non_null(guest_mem_ptr(&mem, GUEST_4G, 1));
	assert_non_null(guest_mem_ptr(&mem, GUEST_4G + mem.high_size - 1, 1));
	assert_null(guest_mem_ptr(&mem, GUEST_4G + mem.high_size, 1));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&mem, 16, UINT64_MAX));
	/* Low and high RAM are distinct host bytes. */
	*(uint8_t *)guest_mem_ptr(&mem, 0, 1) = 1;
	*(uint8_t *)guest_mem_ptr(&mem, GUEST_4G, 1) = 2;
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&mem, 0, 1), 1);
	guest_mem_exit(&mem);
}

static void zero_page(void **state)
{
	struct e820_entry map[E820_MAX];
	struct boot_params_info info = { 0 };
	struct guest_mem mem;
	uint8_t *bp = calloc(1, BP_SIZE);
	uint32_t v32;
	uint16_t v16;

	(void)state;
	guest_mem_layout(&mem, 512ULL << 20);
	info.cmdline_gpa = LAYOUT_CMDLINE;
	info.cmdline_len = 20;
	info.initrd_gpa = 0x1f000000;
	info.initrd_size = 12345;
	info.e820 = map;
	info.e820_count = e820_build(&mem, map);
	boot_params_fill(bp, &info, NULL, 0);
	memcpy(&v16, bp + BP_BOOT_FLAG, 2);
	assert_int_equal(v16, 0xaa55);
	memcpy(&v32, bp + BP_HEADER, 4);
	assert_int_equal(v32, BP_HDRS_MAGIC);
	memcpy(&v32, bp + BP_CMD_LINE_PTR, 4);
	assert_int_equal(v32, LAYOUT_CMDLINE);
	memcpy(&v32, bp + BP_RAMDISK_IMAGE, 4);
	assert_int_equal(v32, 0x1f000000);
	memcpy(&v32, bp + BP_RAMDISK_SIZE, 4);
	assert_int_equal(v32, 12345);
	assert_int_equal(bp[BP_E820_ENTRIES], info.e820_count);
	assert_memory_equal(bp + BP_E820_TABLE, map,
			    info.e820_count * sizeof(map[0]));
	assert_int_equal(bp[BP_TYPE_OF_LOADER], 0xff);
	assert_true(bp[BP_LOADFLAGS] & BP_LOADFLAGS_LOADED_HIGH);
	free(bp);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static void smbios_tables(void **state)
{
	static const uint8_t uuid[16] = { 0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad,
					  0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0,
					  0x4f, 0xd4, 0x30, 0xc8 };
	uint8_t buf[4096];
	const uint8_t *t, *end;
	uint32_t addr;
	uint16_t len;
	int n, count = 0, seen_type1 = 0;

	(void)state;
	n = smbios_build(buf, sizeof(buf), LAYOUT_SMBIOS, uuid);
	assert_true(n > 0x20);
	assert_memory_equal(buf, "_SM_", 4);
	assert_int_equal(sum(buf, buf[5]), 0);
	assert_memory_equal(buf + 0x10, "_DMI_", 5);
	assert_int_equal(sum(buf + 0x10, 0x0f), 0);
	memcpy(&addr, buf + 0x18, 4);
	memcpy(&len, buf + 0x16, 2);
	assert_int_equal(addr, LAYOUT_SMBIOS + 0x20);
	t = buf + (addr - LAYOUT_SMBIOS);
	end = t + len;
	assert_int_equal(end - buf, n);
	while (t < end) {
		if (t[0] == 1) {
			seen_type1 = 1;
			/* Little-endian first fields, per SMBIOS 2.6+. */
			assert_int_equal(t[8], 0x10);
			assert_int_equal(t[11], 0x6b);
			assert_memory_equal(t + 16, uuid + 8, 8);
		}
		count++;
		if (t[0] == 127)
			break;
		t += t[1];
		while (t[0] || t[1])
			t++;
		t += 2;
	}
	assert_true(seen_type1);
	assert_int_equal(count, buf[0x1c]);
	assert_int_equal(smbios_build(buf, 40, LAYOUT_SMBIOS, uuid), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(e820_small),
		cmocka_unit_test(e820_above_4g),
		cmocka_unit_test(guest_mem_bounds),
		cmocka_unit_test(zero_page),
		cmocka_unit_test(smbios_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
