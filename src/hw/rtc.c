/* CMOS RTC; see rtc.h. Register map from the MC146818A data sheet. */
#include "hw/rtc.h"

#include <string.h>

#include "core/vm.h"

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_WEEKDAY 0x06
#define RTC_DAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_MEM_EXT_LO 0x34 /* RAM above 16 MiB in 64 KiB units */
#define RTC_MEM_EXT_HI 0x35
#define RTC_CENTURY 0x32
#define RTC_MEM_HIGH 0x5b /* RAM above 4 GiB in 64 KiB units, 3 bytes */

#define REG_A_UIP 0x80
#define REG_B_SET 0x80
#define REG_B_DM_BINARY 0x04
#define REG_B_24H 0x02
#define REG_D_VRT 0x80
#define NMI_DISABLE 0x80

static time_t host_now(void)
{
	return time(NULL);
}

void rtc_init(struct rtc *rtc, bool utc, uint64_t low_mem, uint64_t high_mem)
{
	uint64_t ext = low_mem > (16ULL << 20) ? (low_mem - (16ULL << 20)) >> 16 : 0;
	uint64_t high = high_mem >> 16;

	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->utc = utc;
	rtc->now = host_now;
	rtc->nvram[RTC_REG_A] = 0x26; /* 32.768 kHz base, 1024 Hz rate */
	rtc->nvram[RTC_REG_B] = REG_B_24H;
	rtc->nvram[RTC_REG_D] = REG_D_VRT;
	if (ext > 0xffff)
		ext = 0xffff;
	rtc->nvram[RTC_MEM_EXT_LO] = ext & 0xff;
	rtc->nvram[RTC_MEM_EXT_HI] = ext >> 8;
	rtc->nvram[RTC_MEM_HIGH] = high & 0xff;
	rtc->nvram[RTC_MEM_HIGH + 1] = (high >> 8) & 0xff;
	rtc->nvram[RTC_MEM_HIGH + 2] = (high >> 16) & 0xff;
}

static uint8_t to_reg(const struct rtc *rtc, unsigned int v)
{
	if (rtc->nvram[RTC_REG_B] & REG_B_DM_BINARY)
		return v;
	return ((v / 10) << 4) | (v % 10);
}

static unsigned int from_reg(const struct rtc *rtc, uint8_t v)
{
	if (rtc->nvram[RTC_REG_B] & REG_B_DM_BINARY)
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

static void guest_tm(const struct rtc *rtc, struct tm *tm)
{
	time_t t = rtc->now() + rtc->offset;

	if (rtc->utc)
		gmtime_r(&t, tm);
	else
		localtime_r(&t, tm);
}

static uint8_t hour_reg(const struct rtc *rtc, int hour)
{
	int h12;

	if (rtc->nvram[RTC_REG_B] & REG_B_24H)
		return to_reg(rtc, hour);
	/* 12-hour mode: 12, 1..11 with bit 7 for PM. */
	h12 = hour % 12 ? hour % 12 : 12;
	return to_reg(rtc, h12) | (hour >= 12 ? 0x80 : 0);
}

static uint8_t read_reg(struct rtc *rtc, uint8_t index)
{
	struct tm tm;
	uint8_t v;

	if (index > RTC_YEAR && index != RTC_CENTURY) {
		v = rtc->nvram[index];
		if (index == RTC_REG_C)
			rtc->nvram[RTC_REG_C] = 0; /* read clears flags */
		return v;
	}
	/* While the guest holds SET, it reads back what it wrote. */
	if (rtc->nvram[RTC_REG_B] & REG_B_SET)
		return rtc->nvram[index];
	guest_tm(rtc, &tm);
	switch (index) {
	case RTC_SECONDS:
		return to_reg(rtc, tm.tm_sec);
	case RTC_MINUTES:
		return to_reg(rtc, tm.tm_min);
	case RTC_HOURS:
		return hour_reg(rtc, tm.tm_hour);
	case RTC_WEEKDAY:
		return to_reg(rtc, tm.tm_wday + 1);
	case RTC_DAY:
		return to_reg(rtc, tm.tm_mday);
	case RTC_MONTH:
		return to_reg(rtc, tm.tm_mon + 1);
	case RTC_YEAR:
		return to_reg(rtc, tm.tm_year % 100);
	case RTC_CENTURY:
		return to_reg(rtc, (tm.tm_year + 1900) / 100);
	default:
		return rtc->nvram[index]; /* alarm registers */
	}
}

/* The guest finished setting the clock: keep the difference to the host. */
static void commit_time(struct rtc *rtc)
{
	struct tm tm = { 0 };
	unsigned int hour = rtc->nvram[RTC_HOURS];
	time_t t;

	tm.tm_sec = from_reg(rtc, rtc->nvram[RTC_SECONDS]);
	tm.tm_min = from_reg(rtc, rtc->nvram[RTC_MINUTES]);
	if (rtc->nvram[RTC_REG_B] & REG_B_24H) {
		tm.tm_hour = from_reg(rtc, hour);
	} else {
		tm.tm_hour = from_reg(rtc, hour & 0x7f) % 12;
		if (hour & 0x80)
			tm.tm_hour += 12;
	}
	tm.tm_mday = from_reg(rtc, rtc->nvram[RTC_DAY]);
	tm.tm_mon = from_reg(rtc, rtc->nvram[RTC_MONTH]) - 1;
	tm.tm_year = from_reg(rtc, rtc->nvram[RTC_CENTURY]) * 100 +
		     from_reg(rtc, rtc->nvram[RTC_YEAR]) - 1900;
	tm.tm_isdst = -1;
	t = rtc->utc ? timegm(&tm) : mktime(&tm);
	if (t != (time_t)-1)
		rtc->offset = (int64_t)t - (int64_t)rtc->now();
}

static void snapshot_time(struct rtc *rtc)
{
	static const uint8_t regs[] = { RTC_SECONDS, RTC_MINUTES, RTC_HOURS,
					RTC_WEEKDAY, RTC_DAY,	  RTC_MONTH,
					RTC_YEAR,    RTC_CENTURY };
	size_t i;

	for (i = 0; i < sizeof(regs); i++)
		rtc->nvram[regs[i]] = read_reg(rtc, regs[i]);
}

static void write_reg(struct rtc *rtc, uint8_t index, uint8_t value)
{
	switch (index) {
	case RTC_REG_A:
		rtc->nvram[index] = value & ~REG_A_UIP;
		break;
	case RTC_REG_B:
		if ((value & REG_B_SET) && !(rtc->nvram[index] & REG_B_SET))
			snapshot_time(rtc);
		if (!(value & REG_B_SET) && (rtc->nvram[index] & REG_B_SET)) {
			rtc->nvram[index] = value;
			commit_time(rtc);
		}
		rtc->nvram[index] = value;
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		rtc->nvram[index] = value;
		if (index <= RTC_YEAR || index == RTC_CENTURY) {
			/* A write outside SET mode sets that field at once. */
			if (!(rtc->nvram[RTC_REG_B] & REG_B_SET)) {
				uint8_t saved = rtc->nvram[index];

				snapshot_time(rtc);
				rtc->nvram[index] = saved;
				commit_time(rtc);
			}
		}
		break;
	}
}

uint8_t rtc_read(struct rtc *rtc, unsigned int port_offset)
{
	uint8_t v;

	if (port_offset == 0)
		return 0xff; /* the index port is write-only */
	pthread_mutex_lock(&rtc->lock);
	v = read_reg(rtc, rtc->index);
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

void rtc_write(struct rtc *rtc, unsigned int port_offset, uint8_t value)
{
	pthread_mutex_lock(&rtc->lock);
	if (port_offset == 0)
		rtc->index = value & ~NMI_DISABLE & 0x7f;
	else
		write_reg(rtc, rtc->index, value);
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_io(void *opaque, uint64_t offset, void *data, uint32_t len,
		   bool is_write)
{
	uint8_t *b = data;

	if (len != 1)
		return;
	if (is_write)
		rtc_write(opaque, offset, *b);
	else
		*b = rtc_read(opaque, offset);
}

int rtc_attach(struct rtc *rtc, struct vm *vm)
{
	return iobus_register(&vm->pio, 0x70, 2, rtc_io, rtc, "rtc");
}
