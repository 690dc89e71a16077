/*
 * SMBIOS: finds the "_SM_" entry point in 0xF0000-0xFFFFF, checks both
 * checksums, walks the table to the system information (type 1) and prints
 * its UUID in the usual text form for the harness to compare with -U.
 */
#include "guest.h"

const char test_name[] = "smbios";

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

void guest_main(const void *bp)
{
	const uint8_t *ep = NULL, *t, *end;
	uint64_t a;

	(void)bp;
	serial_init();
	for (a = 0xf0000; a < 0x100000; a += 16) {
		if (!mem_cmp((const void *)a, "_SM_", 4)) {
			ep = (const uint8_t *)a;
			break;
		}
	}
	CHECK(ep != NULL);
	CHECK(sum(ep, ep[5]) == 0);
	CHECK(!mem_cmp(ep + 0x10, "_DMI_", 5));
	CHECK(sum(ep + 0x10, 0x0f) == 0);
	t = (const uint8_t *)(uint64_t)*(const uint32_t *)(ep + 0x18);
	end = t + *(const uint16_t *)(ep + 0x16);
	while (t < end && t[0] != 1) {
		t += t[1];
		while (t[0] || t[1]) /* skip the strings */
			t++;
		t += 2;
	}
	CHECK(t < end && t[0] == 1);
	/* The first three fields are stored little-endian (SMBIOS 2.6+). */
	printf_serial("UUID %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		      "%02x%02x%02x%02x%02x%02x\n",
		      t[11], t[10], t[9], t[8], t[13], t[12], t[15], t[14], t[16],
		      t[17], t[18], t[19], t[20], t[21], t[22], t[23]);
	guest_pass();
}
