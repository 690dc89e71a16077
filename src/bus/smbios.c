/* SMBIOS tables; see smbios.h. */
#include "bus/smbios.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/table_checksum.h"

#define EP_SIZE 0x1f
#define TABLES_OFFSET 0x20

struct builder {
	uint8_t *buf;
	size_t size;
	size_t pos;
	unsigned int count;
	unsigned int max_struct;
	int err;
};

static void emit(struct builder *b, const void *data, size_t len)
{
	if (b->err || b->pos + len > b->size) {
		b->err = -ENOSPC;
		return;
	}
	memcpy(b->buf + b->pos, data, len);
	b->pos += len;
}

/* One structure: its formatted part, then its strings, then a double NUL. */
static void structure(struct builder *b, const uint8_t *fmt, size_t len,
		      const char *const *strings, int nstrings)
{
	size_t start = b->pos;
	int i;

	emit(b, fmt, len);
	for (i = 0; i < nstrings; i++)
		emit(b, strings[i], strlen(strings[i]) + 1);
	emit(b, "\0\0", nstrings ? 1 : 2);
	b->count++;
	if (b->pos - start > b->max_struct)
		b->max_struct = b->pos - start;
}

static void bios_information(struct builder *b)
{
	static const char *const strings[] = { "khyve", "0.1.0", "11/25/2026" };
	uint8_t t[0x18] = {
		[0x00] = 0,	/* type */
		[0x01] = 0x18,	/* length */
		[0x04] = 1,	/* vendor */
		[0x05] = 2,	/* version */
		[0x06] = 0x00, [0x07] = 0xe8, /* start segment 0xE800 */
		[0x08] = 3,	/* release date */
		[0x09] = 0,	/* ROM size 64 KiB */
		[0x0a] = 0x08,	/* characteristics: not supported */
		[0x12] = 0,	/* extension byte 1 */
		[0x13] = 0x10,	/* extension byte 2: virtual machine */
		[0x14] = 0, [0x15] = 1, /* BIOS release 0.1 */
		[0x16] = 0xff, [0x17] = 0xff, /* no embedded controller */
	};

	structure(b, t, sizeof(t), strings, 3);
}

static void system_information(struct builder *b, const uint8_t uuid[16])
{
	static const char *const strings[] = { "khyve", "khyve VM", "1.0",
					       "khyve" };
	uint8_t t[0x1b] = {
		[0x00] = 1, [0x01] = 0x1b, [0x02] = 0x01, [0x03] = 0x00,
		[0x04] = 1, /* manufacturer */
		[0x05] = 2, /* product */
		[0x06] = 3, /* version */
		[0x07] = 0, /* no serial */
		[0x18] = 6, /* wake-up: power switch */
		[0x19] = 0, /* SKU */
		[0x1a] = 4, /* family */
	};

	/* SMBIOS 2.6+ stores the first three UUID fields little-endian. */
	t[0x08] = uuid[3];
	t[0x09] = uuid[2];
	t[0x0a] = uuid[1];
	t[0x0b] = uuid[0];
	t[0x0c] = uuid[5];
	t[0x0d] = uuid[4];
	t[0x0e] = uuid[7];
	t[0x0f] = uuid[6];
	memcpy(&t[0x10], uuid + 8, 8);
	structure(b, t, sizeof(t), strings, 4);
}

static void end_of_table(struct builder *b)
{
	uint8_t t[4] = { 127, 4, 0x02, 0x00 };

	structure(b, t, sizeof(t), NULL, 0);
}

int smbios_build(uint8_t *buf, size_t size, uint64_t gpa, const uint8_t uuid[16])
{
	struct builder b = { .buf = buf, .size = size, .pos = TABLES_OFFSET };
	uint32_t table_addr = (uint32_t)(gpa + TABLES_OFFSET);
	uint16_t table_len, max;
	uint8_t *ep = buf;

	if (size < TABLES_OFFSET)
		return -ENOSPC;
	memset(buf, 0, TABLES_OFFSET);
	bios_information(&b);
	system_information(&b, uuid);
	end_of_table(&b);
	if (b.err)
		return b.err;

	table_len = b.pos - TABLES_OFFSET;
	max = b.max_struct;
	memcpy(ep, "_SM_", 4);
	ep[5] = EP_SIZE;
	ep[6] = 2;    /* version 2.8 */
	ep[7] = 8;
	memcpy(&ep[8], &max, 2);
	memcpy(&ep[0x10], "_DMI_", 5);
	memcpy(&ep[0x16], &table_len, 2);
	memcpy(&ep[0x18], &table_addr, 4);
	ep[0x1c] = b.count & 0xff;
	ep[0x1d] = b.count >> 8;
	ep[0x1e] = 0x28;
	ep[0x15] = table_checksum(&ep[0x10], 0x0f);
	ep[4] = table_checksum(ep, EP_SIZE);
	return b.pos;
}

int smbios_install(const struct guest_mem *mem, const uint8_t uuid[16])
{
	size_t size = LAYOUT_MPTABLE - LAYOUT_SMBIOS;
	uint8_t *dst = guest_mem_ptr(mem, LAYOUT_SMBIOS, size);
	int n;

	if (!dst)
		return -EFAULT;
	n = smbios_build(dst, size, LAYOUT_SMBIOS, uuid);
	return n < 0 ? n : 0;
}
