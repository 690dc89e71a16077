/* I/O buses, PCI config space, RTC, i8042 and the ACPI PM block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/iobus.h"
#include "hw/i8042.h"
#include "hw/pm.h"
#include "hw/rtc.h"

static int hits;
static uint64_t last_offset;

static void count_fn(void *opaque, uint64_t offset, void *data, uint32_t len,
		     bool is_write)
{
	(void)opaque;
	hits++;
	last_offset = offset;
	if (!is_write)
		memset(data, 0x42, len);
}

static void pio_bus(void **state)
{
	struct iobus bus;
	uint8_t b;

	(void)state;
	assert_int_equal(iobus_init(&bus, "pio", true), 0);
	assert_int_equal(iobus_register(&bus, 0x3f8, 8, count_fn, NULL, "a"), 0);
	assert_int_equal(iobus_register(&bus, 0x3fc, 2, count_fn, NULL, "b"), -EBUSY);
	assert_int_equal(iobus_register(&bus, 0xfffe, 4, count_fn, NULL, "c"), -EINVAL);
	assert_int_equal(iobus_register(&bus, 0x10, 0, count_fn, NULL, "d"), -EINVAL);
	hits = 0;
	assert_true(iobus_dispatch(&bus, 0x3fd, &b, 1, false));
	assert_int_equal(last_offset, 5);
	assert_int_equal(b, 0x42);
	assert_false(iobus_dispatch(&bus, 0x400, &b, 1, false));
	assert_int_equal(b, 0xff);
	assert_int_equal(iobus_unregister(&bus, 0x3fa), -ENOENT);
	assert_int_equal(iobus_unregister(&bus, 0x3f8), 0);
	assert_false(iobus_dispatch(&bus, 0x3f8, &b, 1, true));
	assert_int_equal(hits, 1);
	iobus_exit(&bus);
}

static void mmio_bus(void **state)
{
	struct iobus bus;
	uint32_t v;
	int i;

	(void)state;
	assert_int_equal(iobus_init(&bus, "mmio", false), 0);
	/* Two small regions sharing one page, and a multi-page one. */
	assert_int_equal(iobus_register(&bus, 0xfe000000, 0x100, count_fn, NULL, "a"), 0);
	assert_int_equal(iobus_register(&bus, 0xfe000100, 0x100, count_fn, NULL, "b"), 0);
	assert_int_equal(iobus_register(&bus, 0xfe0000f0, 0x20, count_fn, NULL, "c"), -EBUSY);
	assert_int_equal(iobus_register(&bus, 0xe0000000, 1 << 20, count_fn, NULL, "d"), 0);
	assert_true(iobus_dispatch(&bus, 0xfe000104, &v, 4, false));
	assert_int_equal(last_offset, 4);
	assert_true(iobus_dispatch(&bus, 0xe00ffffc, &v, 4, false));
	assert_int_equal(last_offset, 0xffffc);
	assert_false(iobus_dispatch(&bus, 0xe0100000, &v, 4, false));
	assert_int_equal(v, 0xffffffff);
	assert_false(iobus_dispatch(&bus, 0xfe000200, &v, 4, false));
	/* Many registrations and removals leave the table consistent. */
	for (i = 0; i < 200; i++)
		assert_int_equal(iobus_register(&bus, 0x100000000ULL + i * 0x10000ULL,
						0x1000, count_fn, NULL, "x"), 0);
	for (i = 0; i < 200; i += 2)
		assert_int_equal(iobus_unregister(&bus, 0x100000000ULL + i * 0x10000ULL), 0);
	assert_false(iobus_dispatch(&bus, 0x100000000ULL, &v, 4, false));
	assert_true(iobus_dispatch(&bus, 0x100010000ULL + 8, &v, 4, false));
	assert_int_equal(iobus_unregister(&bus, 0xfe000000), 0);
	assert_true(iobus_dispatch(&bus, 0xfe000100, &v, 4, false));
	iobus_exit(&bus);
}

static time_t fixed_now(void)
{
	/* 2026-11-25 10:20:30 UTC, a Wednesday. */
	return 1795602030;
}

static uint8_t cmos(struct rtc *rtc, uint8_t reg)
{
	rtc_write(rtc, 0, reg);
	return rtc_read(rtc, 1);
}

static void cmos_set(struct rtc *rtc, uint8_t reg, uint8_t v)
{
	rtc_write(rtc, 0, reg);
	rtc_write(rtc, 1, v);
}

static void rtc_time(void **state)
{
	struct rtc rtc;

	(void)state;
	rtc_init(&rtc, true, 512ULL << 20, 0);
	rtc.now = fixed_now;
	assert_int_equal(cmos(&rtc, 0), 0x30);
	assert_int_equal(cmos(&rtc, 2), 0x20);
	assert_int_equal(cmos(&rtc, 4), 0x10);
	assert_int_equal(cmos(&rtc, 6), 4); /* Wednesday = 4 (Sunday = 1) */
	assert_int_equal(cmos(&rtc, 7), 0x25);
	assert_int_equal(cmos(&rtc, 8), 0x11);
	assert_int_equal(cmos(&rtc, 9), 0x26);
	assert_int_equal(cmos(&rtc, 0x32), 0x20);
	/* Binary mode, then 12-hour mode. */
	cmos_set(&rtc, 0x0b, 0x06);
	assert_int_equal(cmos(&rtc, 4), 10);
	cmos_set(&rtc, 0x0b, 0x04);
	assert_int_equal(cmos(&rtc, 4), 10);
	cmos_set(&rtc, 0x0b, 0x02);
	/* Memory above 16 MiB in 64 KiB units. */
	assert_int_equal(cmos(&rtc, 0x34) | cmos(&rtc, 0x35) << 8,
			 (512 - 16) * 16);
	/* Setting the clock: SET, write, clear SET → offset kept. */
	cmos_set(&rtc, 0x0b, 0x82);
	cmos_set(&rtc, 9, 0x30);
	cmos_set(&rtc, 0x0b, 0x02);
	assert_int_equal(cmos(&rtc, 9), 0x30);
	assert_int_equal(cmos(&rtc, 8), 0x11);
	assert_int_equal(cmos(&rtc, 0), 0x30);
	/* Register C clears on read; D reports valid time. */
	assert_int_equal(cmos(&rtc, 0x0c), 0);
	assert_int_equal(cmos(&rtc, 0x0d), 0x80);
	/* Index 0x80 (NMI disable bit) addresses register 0. */
	assert_int_equal(cmos(&rtc, 0x80), 0x30);
	cmos_set(&rtc, 0x7f, 0xee);
	assert_int_equal(cmos(&rtc, 0x7f), 0xee);
}

static int resets;

static void count_reset(struct vm *vm)
{
	(void)vm;
	resets++;
}

static void i8042_commands(void **state)
{
	struct i8042 kbc;

	(void)state;
	i8042_init(&kbc, NULL);
	kbc.reset = count_reset;
	resets = 0;
	i8042_write(&kbc, 0x64, 0xaa);
	assert_true(i8042_read(&kbc, 0x64) & 1);
	assert_int_equal(i8042_read(&kbc, 0x60), 0x55);
	assert_false(i8042_read(&kbc, 0x64) & 1);
	i8042_write(&kbc, 0x64, 0x60);
	i8042_write(&kbc, 0x60, 0x45);
	i8042_write(&kbc, 0x64, 0x20);
	assert_int_equal(i8042_read(&kbc, 0x60), 0x45);
	assert_int_equal(resets, 0);
	i8042_write(&kbc, 0x64, 0xd1);
	i8042_write(&kbc, 0x60, 0x03); /* reset line high: nothing */
	assert_int_equal(resets, 0);
	i8042_write(&kbc, 0x64, 0xd1);
	i8042_write(&kbc, 0x60, 0x02);
	assert_int_equal(resets, 1);
	i8042_write(&kbc, 0x64, 0xfe);
	assert_int_equal(resets, 2);
}

static int sci, powered_off, pm_resets;

static void t_sci(void *o, int level)
{
	(void)o;
	sci = level;
}

static void t_off(void *o)
{
	(void)o;
	powered_off++;
}

static void t_reset(void *o)
{
	(void)o;
	pm_resets++;
}

static const struct pm_ops t_ops = { t_sci, t_off, t_reset };

static void pm_block(void **state)
{
	struct pm pm;
	uint32_t t1, t2;

	(void)state;
	pm_init(&pm, &t_ops, NULL);
	assert_int_equal(pm_read(&pm, PM_PM1A_CNT, 2) & PM1_CNT_SCI_EN, 1);
	/* Power button without the enable bit: status only, no SCI. */
	pm_power_button(&pm);
	assert_int_equal(sci, 0);
	assert_true(pm_read(&pm, PM_PM1A_EVT, 2) & PM1_STS_PWRBTN);
	pm_write(&pm, PM_PM1A_EVT + 2, 2, PM1_EN_PWRBTN);
	assert_int_equal(sci, 1);
	pm_write(&pm, PM_PM1A_EVT, 2, PM1_STS_PWRBTN);
	assert_int_equal(sci, 0);
	assert_false(pm_read(&pm, PM_PM1A_EVT, 2) & PM1_STS_PWRBTN);
	/* A 32-bit access covers status and enable at once. */
	assert_int_equal(pm_read(&pm, PM_PM1A_EVT, 4) >> 16, PM1_EN_PWRBTN);
	/* Sleep types other than S5 do not power off. */
	pm_write(&pm, PM_PM1A_CNT, 2, (1 << 10) | PM1_CNT_SLP_EN);
	assert_int_equal(powered_off, 0);
	pm_write(&pm, PM_PM1A_CNT, 2, (PM_S5_SLP_TYP << 10));
	assert_int_equal(powered_off, 0);
	pm_write(&pm, PM_PM1A_CNT, 2, (PM_S5_SLP_TYP << 10) | PM1_CNT_SLP_EN);
	assert_int_equal(powered_off, 1);
	/* The PM timer runs forward. */
	t1 = pm_read(&pm, PM_TMR, 4);
	{
		struct timespec ts = { 0, 2000000 };

		nanosleep(&ts, NULL);
	}
	t2 = pm_read(&pm, PM_TMR, 4);
	assert_true(t2 - t1 >= 3579545 / 1000);
	/* 0xCF9: 0x02 only arms, 0x06 resets. */
	pm_write(&pm, PM_RESET_PORT, 1, 0x02);
	assert_int_equal(pm_resets, 0);
	assert_int_equal(pm_read(&pm, PM_RESET_PORT, 1), 0x02);
	pm_write(&pm, PM_RESET_PORT, 1, 0x06);
	assert_int_equal(pm_resets, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pio_bus),
		cmocka_unit_test(mmio_bus),
		cmocka_unit_test(rtc_time),
		cmocka_unit_test(i8042_commands),
		cmocka_unit_test(pm_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
