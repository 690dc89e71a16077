/*
 * ACPI fixed hardware (ACPI 6.4 §4.8): the PM1a event block (status and
 * enable, with the power button), the PM1a control block (SCI_EN, and
 * SLP_TYP/SLP_EN for S5 power-off), the 3.579545 MHz PM timer, and the reset
 * register at 0xCF9 that the FADT names. There is no SMI command port: the
 * machine is in ACPI mode from the start (SCI_EN set).
 *
 * The power button raises the SCI (GSI 9, level) while PWRBTN_STS and
 * PWRBTN_EN are both set; the guest acknowledges by writing 1 to the status
 * bit. SIGTERM presses it (main.c).
 */
#ifndef KHYVE_HW_PM_H
#define KHYVE_HW_PM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

#define PM_PM1A_EVT 0x400 /* 4 bytes: PM1_STS (2), PM1_EN (2) */
#define PM_PM1A_CNT 0x404 /* 2 bytes */
#define PM_TMR 0x408      /* 4 bytes, 32-bit counter */
#define PM_RESET_PORT 0xcf9
#define PM_RESET_VALUE 0x06
#define PM_SCI_IRQ 9
#define PM_S5_SLP_TYP 5 /* must match the DSDT's \_S5 package */

#define PM1_STS_TMR 0x0001
#define PM1_STS_PWRBTN 0x0100
#define PM1_STS_WAK 0x8000
#define PM1_EN_PWRBTN 0x0100
#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_EN 0x2000

struct vm;

struct pm_ops {
	void (*set_sci)(void *opaque, int level);
	void (*poweroff)(void *opaque);
	void (*reset)(void *opaque);
};

struct pm {
	pthread_mutex_t lock;
	const struct pm_ops *ops;
	void *opaque;
	uint16_t sts, en, cnt;
	uint8_t reset_ctl;
	int sci_level;
	uint64_t timer_start_ns;
	unsigned long power_button_presses;
};

void pm_init(struct pm *pm, const struct pm_ops *ops, void *opaque);
/* Guest access to the PM ports: @port is the absolute port number. */
uint32_t pm_read(struct pm *pm, unsigned int port, unsigned int len);
void pm_write(struct pm *pm, unsigned int port, unsigned int len, uint32_t value);
/* Press the power button (thread-safe). */
void pm_power_button(struct pm *pm);
/*
 * The reset register's port handler. Port 0xCF9 sits inside the PCI
 * configuration address port 0xCF8-0xCFB, so the PCI host bridge, which owns
 * those ports, forwards byte accesses at 0xCF9 here (@opaque is the pm).
 */
void pm_reset_io(void *opaque, uint64_t offset, void *data, uint32_t len,
		 bool is_write);
/* Claim the PM ports on @vm, wired to its SCI and stop; 0 or -errno. */
int pm_attach(struct pm *pm, struct vm *vm) __must_check;

#endif
