/*
 * ACPI tables and the MP table: checksums, the RSDP → XSDT → table chain,
 * the values Linux reads (PM blocks, SCI, reset register, one LAPIC per
 * vCPU, MMCONFIG), and what `iasl -d` (acpica-tools) makes of each table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "bus/acpi.h"
#include "hw/pm.h"

#define GPA 0xe0000

static uint8_t buf[65536];

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static const uint8_t *at(uint64_t gpa)
{
	assert_true(gpa >= GPA && gpa < GPA + sizeof(buf));
	return buf + (gpa - GPA);
}

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* The table named @sig reached from the RSDP, checksum verified. */
static const uint8_t *find(const char *sig)
{
	const uint8_t *rsdp = buf, *xsdt = at(u64(rsdp + 24));
	uint32_t i, n = (u32(xsdt + 4) - 36) / 8;

	for (i = 0; i < n; i++) {
		const uint8_t *t = at(u64(xsdt + 36 + 8 * i));

		if (!memcmp(t, sig, 4)) {
			assert_int_equal(sum(t, u32(t + 4)), 0);
			return t;
		}
	}
	return NULL;
}

static void chain_and_checksums(void **state)
{
	const uint8_t *xsdt, *fadt, *dsdt;
	int n;

	(void)state;
	n = acpi_build(buf, sizeof(buf), GPA, 4);
	assert_true(n > 0);
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(sum(buf, 20), 0);
	assert_int_equal(sum(buf, 36), 0);
	assert_int_equal(buf[15], 2);
	xsdt = at(u64(buf + 24));
	assert_memory_equal(xsdt, "XSDT", 4);
	assert_int_equal(sum(xsdt, u32(xsdt + 4)), 0);
	fadt = find("FACP");
	assert_non_null(fadt);
	assert_non_null(find("APIC"));
	assert_non_null(find("MCFG"));
	dsdt = at(u64(fadt + 140));
	assert_int_equal(u32(fadt + 40), u64(fadt + 140));
	assert_memory_equal(dsdt, "DSDT", 4);
	assert_int_equal(sum(dsdt, u32(dsdt + 4)), 0);
	assert_memory_equal(at(u64(fadt + 132)), "FACS", 4);
	assert_int_equal(u32(fadt + 36), 0); /* X_FIRMWARE_CTRL only */
	assert_int_equal(acpi_build(buf, 100, GPA, 4), -ENOSPC);
}

static void fadt_values(void **state)
{
	const uint8_t *fadt;

	(void)state;
	assert_true(acpi_build(buf, sizeof(buf), GPA, 1) > 0);
	fadt = find("FACP");
	assert_int_equal(u32(fadt + 4), 276);
	assert_int_equal(fadt[46], PM_SCI_IRQ);
	assert_int_equal(u32(fadt + 48), 0); /* no SMI command port */
	assert_int_equal(u32(fadt + 56), PM_PM1A_EVT);
	assert_int_equal(u32(fadt + 64), PM_PM1A_CNT);
	assert_int_equal(u32(fadt + 76), PM_TMR);
	assert_int_equal(u64(fadt + 120), PM_RESET_PORT);
	assert_int_equal(fadt[128], PM_RESET_VALUE);
	/* The fixed power button is present (flag bit 4 clear). */
	assert_false(u32(fadt + 112) & (1U << 4));
	assert_true(u32(fadt + 112) & (1U << 10));
}

static void madt_per_vcpu(void **state)
{
	unsigned int cpus[] = { 1, 2, 8, 255 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cpus) / sizeof(cpus[0]); i++) {
		const uint8_t *madt, *e, *end;
		unsigned int lapics = 0, ioapics = 0, isos = 0;

		assert_true(acpi_build(buf, sizeof(buf), GPA, cpus[i]) > 0);
		madt = find("APIC");
		assert_int_equal(u32(madt + 36), LAYOUT_LAPIC);
		end = madt + u32(madt + 4);
		for (e = madt + 44; e < end; e += e[1]) {
			assert_true(e[1] >= 2);
			if (e[0] == 0) {
				assert_int_equal(e[3], lapics);
				lapics++;
			}
			if (e[0] == 1) {
				assert_int_equal(u32(e + 4), LAYOUT_IOAPIC);
				ioapics++;
			}
			if (e[0] == 2)
				isos++;
		}
		assert_true(e == end);
		assert_int_equal(lapics, cpus[i]);
		assert_int_equal(ioapics, 1);
		assert_int_equal(isos, 2);
	}
}

static void mcfg_values(void **state)
{
	const uint8_t *mcfg;

	(void)state;
	assert_true(acpi_build(buf, sizeof(buf), GPA, 1) > 0);
	mcfg = find("MCFG");
	assert_int_equal(u64(mcfg + 44), LAYOUT_MMCONFIG);
	assert_int_equal(mcfg[54], 0);
	assert_int_equal(mcfg[55], 0);
}

/* Each table through `iasl -d`: it must parse, with no checksum complaint. */
static void iasl_disassembles(void **state)
{
	static const char *const sigs[] = { "FACP", "APIC", "MCFG", "XSDT",
					    "DSDT" };
	char dir[] = "/tmp/khyve-acpi-XXXXXX", cmd[512], path[300], line[512];
	size_t i;

	(void)state;
	if (system("command -v iasl >/dev/null 2>&1") != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	assert_true(acpi_build(buf, sizeof(buf), GPA, 2) > 0);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		const uint8_t *t = !strcmp(sigs[i], "DSDT") ?
					   at(u64(find("FACP") + 140)) :
				   !strcmp(sigs[i], "XSDT") ? at(u64(buf + 24)) :
							       find(sigs[i]);
		FILE *f;
		bool bad = false;

		snprintf(path, sizeof(path), "%s/%s.dat", dir, sigs[i]);
		f = fopen(path, "wb");
		assert_non_null(f);
		fwrite(t, 1, u32(t + 4), f);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat >/dev/null 2>&1",
			 dir, sigs[i]);
		assert_int_equal(system(cmd), 0);
		snprintf(path, sizeof(path), "%s/%s.dsl", dir, sigs[i]);
		f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "Incorrect") || strstr(line, "Invalid"))
				bad = true;
		fclose(f);
		assert_false(bad);
	}
	snprintf(cmd, sizeof(cmd), "grep -q 'PM1A Event Block Address : 00000400' %s/FACP.dsl && grep -q PNP0A08 %s/DSDT.dsl && rm -rf %s",
		 dir, dir, dir);
	assert_int_equal(system(cmd), 0);
}

static void mp_table(void **state)
{
	uint8_t mp[32768];
	const uint8_t *hdr, *e, *end;
	unsigned int cpus = 0, ioapic = 0, irq0_pin = 0xff;
	uint16_t len, count;
	int n;

	(void)state;
	n = mptable_build(mp, sizeof(mp), LAYOUT_MPTABLE, 3);
	assert_true(n > 0);
	assert_memory_equal(mp, "_MP_", 4);
	assert_int_equal(sum(mp, 16), 0);
	assert_int_equal(u32(mp + 4), LAYOUT_MPTABLE + 16);
	hdr = mp + 16;
	assert_memory_equal(hdr, "PCMP", 4);
	memcpy(&len, hdr + 4, 2);
	memcpy(&count, hdr + 34, 2);
	assert_int_equal(sum(hdr, len), 0);
	end = hdr + len;
	for (e = hdr + 44; e < end; e += e[0] == 0 ? 20 : 8, count--) {
		if (e[0] == 0) {
			assert_int_equal(e[1], cpus);
			assert_int_equal(!!(e[3] & 2), cpus == 0);
			cpus++;
		} else if (e[0] == 2) {
			ioapic = e[1];
		} else if (e[0] == 3 && e[1] == 0 && e[4] == 1 && e[5] == 0) {
			irq0_pin = e[7];
		}
	}
	assert_int_equal(count, 0);
	assert_int_equal(cpus, 3);
	assert_int_equal(ioapic, 3);
	assert_int_equal(irq0_pin, 2);
	assert_int_equal(mptable_build(mp, 64, LAYOUT_MPTABLE, 3), -ENOSPC);
}

/* The floating pointer also sits in the last KiB of base memory, where
 * Linux looks first (regression: a 7 s emulated scan of the BIOS area). */
static void mp_table_found_early(void **state)
{
	struct guest_mem mem;
	uint32_t table;

	(void)state;
	guest_mem_layout(&mem, 64ULL << 20);
	mem.host = calloc(1, mem.size);
	assert_int_equal(mptable_install(&mem, 2), 0);
	assert_memory_equal(mem.host + LAYOUT_EBDA, "_MP_", 4);
	assert_int_equal(sum(mem.host + LAYOUT_EBDA, 16), 0);
	memcpy(&table, mem.host + LAYOUT_EBDA + 4, 4);
	assert_int_equal(table, LAYOUT_MPTABLE + 16);
	assert_memory_equal(mem.host + table, "PCMP", 4);
	free(mem.host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chain_and_checksums),
		cmocka_unit_test(fadt_values),
		cmocka_unit_test(madt_per_vcpu),
		cmocka_unit_test(mcfg_values),
		cmocka_unit_test(iasl_disassembles),
		cmocka_unit_test(mp_table),
		cmocka_unit_test(mp_table_found_early),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
