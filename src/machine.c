/* The PC platform; see machine.h. */
#include "machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "arch/x86/mptable.h"
#include "bus/acpi.h"
#include "bus/smbios.h"
#include "devices/registry.h"

#define PCI_VENDOR_INTEL 0x8086
#define PCI_VENDOR_KHYVE 0x1275 /* bhyve's host bridge IDs */
#define PCI_CLASS_HOST_BRIDGE 0x060000
#define PCI_CLASS_ISA_BRIDGE 0x060100
#define PCI_DEVICE_PIIX3_ISA 0x7000

static int fail(char *err, size_t errlen, int code, const char *what, int e)
{
	snprintf(err, errlen, "%s: %s", what, strerror(-e));
	return code;
}

static int add_pci(struct machine *m, struct pci_dev *dev,
		   const struct slot_config *sc, char *err, size_t errlen)
{
	int r = pci_bus_add(&m->pci, dev);

	/* Only the bridges added by default can meet a taken slot here
	 * (the parser refuses a slot given twice). */
	if (r)
		snprintf(err, errlen, "PCI slot %u:%u is taken, but the %s "
			 "that khyve adds by default goes there: give it "
			 "another slot with -s N,%s",
			 sc->slot, sc->func, sc->emulation, sc->emulation);
	return r;
}

int machine_add_hostbridge(struct machine *m, const struct slot_config *sc,
			   char *err, size_t errlen)
{
	if (m->have_hostbridge) {
		snprintf(err, errlen, "-s %u:%u,%s: there is one host bridge; "
			 "it is already at %u:%u", sc->slot, sc->func,
			 sc->emulation, m->hostbridge.slot, m->hostbridge.func);
		return -EINVAL;
	}
	pci_dev_init(&m->hostbridge, "hostbridge", PCI_VENDOR_KHYVE, 0x1275,
		     PCI_CLASS_HOST_BRIDGE, 0);
	m->hostbridge.slot = sc->slot;
	m->hostbridge.func = sc->func;
	m->have_hostbridge = true;
	return add_pci(m, &m->hostbridge, sc, err, errlen);
}

int machine_add_lpc(struct machine *m, const struct slot_config *sc, char *err,
		    size_t errlen)
{
	if (m->have_lpc) {
		snprintf(err, errlen, "-s %u:%u,%s: there is one LPC bridge; "
			 "it is already at %u:%u", sc->slot, sc->func,
			 sc->emulation, m->lpc.slot, m->lpc.func);
		return -EINVAL;
	}
	pci_dev_init(&m->lpc, "lpc", PCI_VENDOR_INTEL, PCI_DEVICE_PIIX3_ISA,
		     PCI_CLASS_ISA_BRIDGE, 0);
	m->lpc.slot = sc->slot;
	m->lpc.func = sc->func;
	m->have_lpc = true;
	return add_pci(m, &m->lpc, sc, err, errlen);
}

static void com_set_irq(void *opaque, int level)
{
	struct machine_com *com = opaque;

	vm_irq_line(&com->m->vm, com->irq, level);
}

static void com_tx(void *opaque, uint8_t byte)
{
	struct machine_com *com = opaque;

	if (com->has_console)
		console_write(&com->console, &byte, 1);
}

static size_t com_rx(void *opaque, uint8_t *buf, size_t max)
{
	struct machine_com *com = opaque;

	return com->has_console ? console_read(&com->console, buf, max) : 0;
}

static const struct uart_ops com_ops = {
	.set_irq = com_set_irq,
	.tx = com_tx,
	.rx = com_rx,
};

static void com_io(void *opaque, uint64_t offset, void *data, uint32_t len,
		   bool is_write)
{
	struct machine_com *com = opaque;
	uint8_t *b = data;

	if (len != 1)
		return;
	if (is_write)
		uart_write(&com->uart, offset, *b);
	else
		*b = uart_read(&com->uart, offset);
}

static void com_input_ready(void *opaque)
{
	struct machine_com *com = opaque;

	uart_input_ready(&com->uart);
}

static int attach_legacy(struct machine *m, char *err, size_t errlen)
{
	static const uint16_t bases[2] = { UART_COM1_BASE, UART_COM2_BASE };
	static const unsigned int irqs[2] = { UART_COM1_IRQ, UART_COM2_IRQ };
	int i, r;

	for (i = 0; i < 2; i++) {
		struct machine_com *com = &m->com[i];

		com->m = m;
		com->irq = irqs[i];
		uart_init(&com->uart, &com_ops, com);
		r = iobus_register(&m->vm.pio, bases[i], UART_NR_REGS, com_io,
				   com, i ? "com2" : "com1");
		if (r)
			return fail(err, errlen, r, "com ports", r);
	}
	rtc_init(&m->rtc, m->cfg->utc, m->vm.mem.low_size, m->vm.mem.high_size);
	r = rtc_attach(&m->rtc, &m->vm);
	if (!r) {
		i8042_init(&m->kbc, &m->vm);
		r = i8042_attach(&m->kbc, &m->vm);
	}
	if (!r)
		r = pm_attach(&m->pm, &m->vm);
	return r ? fail(err, errlen, r, "legacy devices", r) : 0;
}

static int add_slot_devices(struct machine *m, char *err, size_t errlen)
{
	static const struct slot_config default_hostbridge = {
		MACHINE_HOSTBRIDGE_SLOT, 0, "hostbridge", NULL
	};
	static const struct slot_config default_lpc = { MACHINE_LPC_SLOT, 0,
							 "lpc", NULL };
	unsigned int i;
	int r;

	r = registry_check(m->cfg, err, errlen);
	for (i = 0; !r && i < m->cfg->nr_slots; i++) {
		const struct slot_config *sc = &m->cfg->slots[i];

		r = registry_find(sc->emulation)->create(m, sc, err, errlen);
	}
	/* HyperKit adds the bridges the command line leaves out. */
	if (!r && !m->have_hostbridge)
		r = machine_add_hostbridge(m, &default_hostbridge, err, errlen);
	if (!r && !m->have_lpc)
		r = machine_add_lpc(m, &default_lpc, err, errlen);
	return r;
}

int machine_build(struct machine *m, const struct config *cfg, char *err,
		  size_t errlen)
{
	uint8_t uuid[16];
	int r;

	m->cfg = cfg;
	r = pci_bus_attach(&m->pci, &m->vm, pm_reset_io, &m->pm);
	if (r)
		return fail(err, errlen, r, "PCI bus", r);
	r = attach_legacy(m, err, errlen);
	if (!r)
		r = add_slot_devices(m, err, errlen);
	if (r)
		return r;
	r = pci_bus_assign_bars(&m->pci);
	if (r)
		return fail(err, errlen, r, "PCI BARs (too many devices)", r);
	if (cfg->have_uuid) {
		memcpy(uuid, cfg->uuid, sizeof(uuid));
	} else {
		/* No -U: a random version-4 UUID. */
		if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid))
			memset(uuid, 0x5a, sizeof(uuid));
		uuid[6] = (uuid[6] & 0x0f) | 0x40;
		uuid[8] = (uuid[8] & 0x3f) | 0x80;
	}
	r = smbios_install(&m->vm.mem, uuid);
	if (r)
		return fail(err, errlen, r, "SMBIOS tables", r);
	if (!cfg->no_mptable) {
		r = mptable_install(&m->vm.mem, cfg->nr_vcpus);
		if (r)
			return fail(err, errlen, r, "MP table", r);
	}
	if (cfg->acpi) {
		r = acpi_install(&m->vm.mem, cfg->nr_vcpus, &m->rsdp_gpa);
		if (r)
			return fail(err, errlen, r, "ACPI tables", r);
	}
	return 0;
}

int machine_open_consoles(struct machine *m, char *err, size_t errlen)
{
	int i, r;

	for (i = 0; i < 2; i++) {
		struct machine_com *com = &m->com[i];
		const char *why = "";

		if (!m->cfg->com[i])
			continue;
		r = console_open(&com->console, &m->loop, i ? "com2" : "com1",
				 m->cfg->com[i], &why);
		if (r) {
			snprintf(err, errlen, "-l com%d,%s: %s", i + 1,
				 m->cfg->com[i], why);
			return r;
		}
		console_set_input_ready(&com->console, com_input_ready, com);
		com->has_console = true;
	}
	return 0;
}

int machine_on_close(struct machine *m, void (*close)(void *opaque),
		     void *opaque)
{
	struct machine_closer *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->close = close;
	c->opaque = opaque;
	c->next = m->closers;
	m->closers = c;
	return 0;
}

void machine_close(struct machine *m)
{
	int i;

	while (m->closers) {
		struct machine_closer *c = m->closers;

		m->closers = c->next;
		c->close(c->opaque);
		free(c);
	}

	for (i = 0; i < 2; i++) {
		if (m->com[i].has_console) {
			m->com[i].has_console = false;
			console_close(&m->com[i].console);
		}
	}
	pci_bus_detach(&m->pci);
}
