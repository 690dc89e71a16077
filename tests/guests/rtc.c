/*
 * The CMOS RTC: prints the date and time it reads ("RTC YYYY-MM-DD
 * HH:MM:SS") for the harness to compare with the host's clock, checks the
 * BCD and binary modes agree, and that NVRAM keeps a byte.
 */
#include "guest.h"

const char test_name[] = "rtc";

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static void cmos_write(uint8_t reg, uint8_t v)
{
	outb(0x70, reg);
	outb(0x71, v);
}

static unsigned int bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

void guest_main(const void *bp)
{
	unsigned int sec, min, hour, day, mon, year, cent, bsec;
	uint8_t b;

	(void)bp;
	serial_init();
	while (cmos(0x0a) & 0x80)
		;
	b = cmos(0x0b);
	CHECK(!(b & 0x04)); /* BCD by default */
	CHECK(b & 0x02);    /* 24-hour */
	sec = bcd(cmos(0));
	min = bcd(cmos(2));
	hour = bcd(cmos(4));
	day = bcd(cmos(7));
	mon = bcd(cmos(8));
	year = bcd(cmos(9));
	cent = bcd(cmos(0x32));
	printf_serial("RTC %u%02u-%02u-%02u %02u:%02u:%02u\n", cent, year, mon,
		      day, hour, min, sec);
	CHECK(mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour < 24);

	cmos_write(0x0b, b | 0x04); /* binary mode */
	bsec = cmos(0);
	CHECK(bsec < 60);
	CHECK(bsec == sec || bsec == (sec + 1) % 60 || bsec == (sec + 2) % 60);
	cmos_write(0x0b, b);

	cmos_write(0x40, 0x3c);
	CHECK(cmos(0x40) == 0x3c);
	CHECK(cmos(0x0d) & 0x80); /* valid RAM and time */
	guest_pass();
}
