/* ACPI fixed hardware and the 0xCF9 reset register; see pm.h. */
#include "hw/pm.h"

#include <string.h>
#include <time.h>

#include "core/vm.h"

#define PM_TIMER_HZ 3579545ULL
#define CF9_RST_CPU 0x04
#define CF9_SYS_RST 0x02

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void pm_init(struct pm *pm, const struct pm_ops *ops, void *opaque)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	pm->ops = ops;
	pm->opaque = opaque;
	pm->cnt = PM1_CNT_SCI_EN;
	pm->timer_start_ns = now_ns();
}

static void update_sci(struct pm *pm)
{
	int level = (pm->sts & pm->en & PM1_EN_PWRBTN) != 0;

	if (level != pm->sci_level) {
		pm->sci_level = level;
		pm->ops->set_sci(pm->opaque, level);
	}
}

static uint32_t timer_value(const struct pm *pm)
{
	uint64_t ns = now_ns() - pm->timer_start_ns;

	return (uint32_t)((ns / 1000) * PM_TIMER_HZ / 1000000ULL +
			  (ns % 1000) * PM_TIMER_HZ / 1000000000ULL);
}

uint32_t pm_read(struct pm *pm, unsigned int port, unsigned int len)
{
	uint32_t v = 0xffffffff;

	pthread_mutex_lock(&pm->lock);
	if (port == PM_PM1A_EVT)
		v = pm->sts | ((uint32_t)pm->en << 16);
	else if (port == PM_PM1A_EVT + 2)
		v = pm->en;
	else if (port == PM_PM1A_CNT)
		v = pm->cnt;
	else if (port == PM_TMR)
		v = timer_value(pm);
	else if (port == PM_RESET_PORT)
		v = pm->reset_ctl;
	pthread_mutex_unlock(&pm->lock);
	if (len < 4)
		v &= (1U << (len * 8)) - 1;
	return v;
}

static void write_cnt(struct pm *pm, uint16_t value)
{
	/* SCI_EN stays set: there is no legacy (SMI) mode to go back to. */
	pm->cnt = (value & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN;
	if ((value & PM1_CNT_SLP_EN) &&
	    ((value >> 10) & 7) == PM_S5_SLP_TYP)
		pm->ops->poweroff(pm->opaque);
}

void pm_write(struct pm *pm, unsigned int port, unsigned int len, uint32_t value)
{
	pthread_mutex_lock(&pm->lock);
	if (port == PM_PM1A_EVT) {
		/* Status bits are cleared by writing 1 to them. */
		pm->sts &= ~(value & 0xffff);
		if (len == 4)
			pm->en = value >> 16;
	} else if (port == PM_PM1A_EVT + 2) {
		pm->en = value & 0xffff;
	} else if (port == PM_PM1A_CNT) {
		write_cnt(pm, value & 0xffff);
	} else if (port == PM_RESET_PORT) {
		/* Linux writes 0x02 then 0x06: RST_CPU set means reset now. */
		pm->reset_ctl = value & (CF9_SYS_RST | CF9_RST_CPU);
		if (value & CF9_RST_CPU)
			pm->ops->reset(pm->opaque);
	}
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void pm_power_button(struct pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= PM1_STS_PWRBTN;
	pm->power_button_presses++;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void pm_io(void *opaque, uint64_t offset, void *data, uint32_t len,
		  bool is_write)
{
	struct pm *pm = opaque;
	unsigned int port = PM_PM1A_EVT + offset;
	uint32_t v = 0;

	if (len > 4)
		return;
	if (is_write) {
		memcpy(&v, data, len);
		pm_write(pm, port, len, v);
	} else {
		v = pm_read(pm, port, len);
		memcpy(data, &v, len);
	}
}

void pm_reset_io(void *opaque, uint64_t offset, void *data, uint32_t len,
		 bool is_write)
{
	uint8_t *b = data;

	(void)offset;
	if (len != 1)
		return;
	if (is_write)
		pm_write(opaque, PM_RESET_PORT, 1, *b);
	else
		*b = pm_read(opaque, PM_RESET_PORT, 1);
}

static void vm_set_sci(void *opaque, int level)
{
	vm_irq_line(opaque, PM_SCI_IRQ, level);
}

static void vm_poweroff(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_POWEROFF);
}

static void vm_reset(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_RESET);
}

static const struct pm_ops vm_pm_ops = {
	.set_sci = vm_set_sci,
	.poweroff = vm_poweroff,
	.reset = vm_reset,
};

int pm_attach(struct pm *pm, struct vm *vm)
{
	int err;

	pm_init(pm, &vm_pm_ops, vm);
	err = iobus_register(&vm->pio, PM_PM1A_EVT, 12, pm_io, pm, "acpi-pm");
	return err;
}
