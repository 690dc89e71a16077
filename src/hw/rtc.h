/*
 * MC146818 CMOS real-time clock and NVRAM at ports 0x70/0x71. The time is the
 * host's (local time, or UTC with -u) plus whatever offset the guest sets;
 * the NVRAM carries the memory-size bytes a PC firmware would leave there.
 * Periodic, alarm and update interrupts are not generated (Linux keeps time
 * with kvmclock and reads the RTC only at boot and for hwclock).
 */
#ifndef KHYVE_HW_RTC_H
#define KHYVE_HW_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/log.h"

struct vm;

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t nvram[128];
	bool utc;
	int64_t offset;  /* guest time - host time, seconds */
	time_t (*now)(void); /* host clock, replaceable in tests */
};

/* Reset state with the memory-size bytes for @low_mem/@high_mem RAM. */
void rtc_init(struct rtc *rtc, bool utc, uint64_t low_mem, uint64_t high_mem);
uint8_t rtc_read(struct rtc *rtc, unsigned int port_offset);
void rtc_write(struct rtc *rtc, unsigned int port_offset, uint8_t value);
/* Claim ports 0x70-0x71 on @vm; 0 or -errno. */
int rtc_attach(struct rtc *rtc, struct vm *vm) __must_check;

#endif
