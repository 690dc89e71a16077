/*
 * ACPI table builder; see acpi.h. Offsets are those of the ACPI 6.4
 * specification's tables (§5.2); every table is checksummed last.
 */
#include "bus/acpi.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/table_checksum.h"
#include "hw/pm.h"
#include "hw/uart.h"

extern const unsigned char acpi_dsdt_aml[];
extern const unsigned int acpi_dsdt_aml_len;

#define HDR_LEN 36
#define FADT_LEN 276
#define FACS_LEN 64
#define RSDP_LEN 36

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2
#define GAS_ACCESS_DWORD 3

#define FADT_F_WBINVD (1U << 0)
#define FADT_F_PROC_C1 (1U << 2)
#define FADT_F_SLP_BUTTON (1U << 5)  /* no fixed sleep button */
#define FADT_F_TMR_VAL_EXT (1U << 8) /* 32-bit PM timer */
#define FADT_F_RESET_REG_SUP (1U << 10)
#define BOOT_ARCH_LEGACY_DEVICES (1U << 0)
#define BOOT_ARCH_8042 (1U << 1)
#define BOOT_ARCH_NO_VGA (1U << 2)

#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MADT_PCAT_COMPAT 1
#define ISO_LEVEL_HIGH 0x000d /* level-triggered, active high */

struct acpi_builder {
	uint8_t *buf;
	size_t size;
	size_t pos;
	uint64_t gpa;
	int err;
};

static void put8(uint8_t *p, uint8_t v)
{
	*p = v;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* Reserve @len zeroed bytes aligned to @align; NULL when out of room. */
static uint8_t *reserve(struct acpi_builder *b, size_t len, size_t align)
{
	size_t start = (b->pos + align - 1) & ~(align - 1);
	uint8_t *p;

	if (b->err || start + len > b->size) {
		b->err = -ENOSPC;
		return NULL;
	}
	p = b->buf + start;
	memset(p, 0, len);
	b->pos = start + len;
	return p;
}

static uint64_t gpa_of(const struct acpi_builder *b, const uint8_t *p)
{
	return b->gpa + (uint64_t)(p - b->buf);
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	put8(t + 8, rev);
	memcpy(t + 10, "KHYVE ", 6);
	memcpy(t + 16, "KHYVE   ", 8);
	put32(t + 24, 1);
	memcpy(t + 28, "KHYV", 4);
	put32(t + 32, 1);
}

static void finish(uint8_t *t)
{
	uint32_t len;

	memcpy(&len, t + 4, 4);
	t[9] = 0;
	t[9] = table_checksum(t, len);
}

static void gas(uint8_t *p, uint8_t bits, uint8_t access, uint64_t port)
{
	put8(p, GAS_SYSTEM_IO);
	put8(p + 1, bits);
	put8(p + 2, 0);
	put8(p + 3, access);
	put64(p + 4, port);
}

static uint8_t *build_fadt(struct acpi_builder *b, uint64_t facs,
			   uint64_t dsdt)
{
	uint8_t *t = reserve(b, FADT_LEN, 16);

	if (!t)
		return NULL;
	header(t, "FACP", FADT_LEN, 6);
	/* The 64-bit X_ fields below are used; ACPI 6.4 §5.2.9 wants the
	 * 32-bit FIRMWARE_CTRL zero when X_FIRMWARE_CTRL is set. */
	put32(t + 40, (uint32_t)dsdt);
	put16(t + 46, PM_SCI_IRQ);
	/* SMI_CMD 0: no legacy mode, ACPI is enabled from the start. */
	put32(t + 56, PM_PM1A_EVT);
	put32(t + 64, PM_PM1A_CNT);
	put32(t + 76, PM_TMR);
	put8(t + 88, 4);
	put8(t + 89, 2);
	put8(t + 91, 4);
	put16(t + 96, 101);  /* no C2 */
	put16(t + 98, 1001); /* no C3 */
	put8(t + 108, 0x32); /* RTC century register */
	put16(t + 109, BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 |
			       BOOT_ARCH_NO_VGA);
	put32(t + 112, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON |
			       FADT_F_TMR_VAL_EXT | FADT_F_RESET_REG_SUP);
	gas(t + 116, 8, GAS_ACCESS_BYTE, PM_RESET_PORT);
	put8(t + 128, PM_RESET_VALUE);
	put8(t + 131, 4); /* FADT minor version: ACPI 6.4 */
	put64(t + 132, facs);
	put64(t + 140, dsdt);
	gas(t + 148, 32, GAS_ACCESS_WORD, PM_PM1A_EVT);
	gas(t + 172, 16, GAS_ACCESS_WORD, PM_PM1A_CNT);
	gas(t + 208, 32, GAS_ACCESS_DWORD, PM_TMR);
	memcpy(t + 268, "KHYVE\0\0\0", 8); /* hypervisor vendor identity */
	finish(t);
	return t;
}

static uint8_t *build_facs(struct acpi_builder *b)
{
	uint8_t *t = reserve(b, FACS_LEN, 64);

	if (!t)
		return NULL;
	memcpy(t, "FACS", 4);
	put32(t + 4, FACS_LEN);
	put8(t + 32, 2); /* version */
	return t;
}

static uint8_t *build_dsdt(struct acpi_builder *b)
{
	uint8_t *t = reserve(b, acpi_dsdt_aml_len, 16);

	if (t)
		memcpy(t, acpi_dsdt_aml, acpi_dsdt_aml_len);
	return t;
}

static uint8_t *build_madt(struct acpi_builder *b, unsigned int nr_vcpus)
{
	uint32_t len = HDR_LEN + 8 + nr_vcpus * 8 + 12 + 2 * 10 + 6;
	uint8_t *t = reserve(b, len, 16), *e;
	unsigned int i;

	if (!t)
		return NULL;
	header(t, "APIC", len, 5);
	put32(t + 36, LAYOUT_LAPIC);
	put32(t + 40, MADT_PCAT_COMPAT);
	e = t + 44;
	for (i = 0; i < nr_vcpus; i++, e += 8) {
		put8(e, MADT_LAPIC);
		put8(e + 1, 8);
		put8(e + 2, i); /* ACPI processor UID */
		put8(e + 3, i); /* APIC ID, as CPUID reports (cpu_setup.c) */
		put32(e + 4, 1); /* enabled */
	}
	put8(e, MADT_IOAPIC);
	put8(e + 1, 12);
	put8(e + 2, ACPI_IOAPIC_ID);
	put32(e + 4, LAYOUT_IOAPIC);
	put32(e + 8, 0);
	e += 12;
	/* The PIT's IRQ 0 reaches IOAPIC input 2 (KVM's default routing). */
	put8(e, MADT_ISO);
	put8(e + 1, 10);
	put8(e + 3, 0);
	put32(e + 4, 2);
	put16(e + 8, 0);
	e += 10;
	put8(e, MADT_ISO);
	put8(e + 1, 10);
	put8(e + 3, PM_SCI_IRQ);
	put32(e + 4, PM_SCI_IRQ);
	put16(e + 8, ISO_LEVEL_HIGH);
	e += 10;
	put8(e, MADT_LAPIC_NMI);
	put8(e + 1, 6);
	put8(e + 2, 0xff); /* all processors */
	put16(e + 3, 0);
	put8(e + 5, 1);    /* LINT1 */
	finish(t);
	return t;
}

static uint8_t *build_mcfg(struct acpi_builder *b)
{
	uint32_t len = HDR_LEN + 8 + 16;
	uint8_t *t = reserve(b, len, 16);

	if (!t)
		return NULL;
	header(t, "MCFG", len, 1);
	put64(t + 44, LAYOUT_MMCONFIG);
	put16(t + 52, 0);  /* segment */
	put8(t + 54, 0);   /* first bus */
	put8(t + 55, (LAYOUT_MMCONFIG_SIZE >> 20) - 1); /* last bus */
	finish(t);
	return t;
}

static uint8_t *build_xsdt(struct acpi_builder *b, uint8_t *const *tables,
			   int n)
{
	uint32_t len = HDR_LEN + 8 * n;
	uint8_t *t = reserve(b, len, 16);
	int i;

	if (!t)
		return NULL;
	header(t, "XSDT", len, 1);
	for (i = 0; i < n; i++)
		put64(t + HDR_LEN + 8 * i, gpa_of(b, tables[i]));
	finish(t);
	return t;
}

int acpi_build(uint8_t *buf, size_t size, uint64_t gpa, unsigned int nr_vcpus)
{
	struct acpi_builder b = { .buf = buf, .size = size, .gpa = gpa };
	uint8_t *rsdp = reserve(&b, RSDP_LEN, 16);
	uint8_t *facs = build_facs(&b);
	uint8_t *dsdt = build_dsdt(&b);
	uint8_t *tables[3], *xsdt;

	if (b.err)
		return b.err;
	tables[0] = build_fadt(&b, gpa_of(&b, facs), gpa_of(&b, dsdt));
	tables[1] = build_madt(&b, nr_vcpus);
	tables[2] = build_mcfg(&b);
	if (b.err)
		return b.err;
	xsdt = build_xsdt(&b, tables, 3);
	if (b.err)
		return b.err;

	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "KHYVE ", 6);
	put8(rsdp + 15, 2); /* ACPI 2.0+: use the XSDT */
	put32(rsdp + 20, RSDP_LEN);
	put64(rsdp + 24, gpa_of(&b, xsdt));
	rsdp[8] = table_checksum(rsdp, 20);
	rsdp[32] = table_checksum(rsdp, RSDP_LEN);
	return (int)b.pos;
}

int acpi_install(const struct guest_mem *mem, unsigned int nr_vcpus,
		 uint64_t *rsdp)
{
	size_t size = LAYOUT_SMBIOS - LAYOUT_BIOS;
	uint8_t *dst = guest_mem_ptr(mem, LAYOUT_BIOS, size);
	int n;

	if (!dst)
		return -EFAULT;
	n = acpi_build(dst, size, LAYOUT_BIOS, nr_vcpus);
	if (n < 0)
		return n;
	*rsdp = LAYOUT_BIOS;
	return 0;
}
