/*
 * The PC platform khyve builds around the VM: PCI bus 0 with the host
 * bridge (slot 0) and the LPC bridge (slot 31) unless -s places them
 * elsewhere, and behind the LPC bridge the legacy devices: com1/com2 with
 * their consoles, the CMOS RTC, the i8042, and the ACPI PM block; then the
 * -s devices and the SMBIOS tables.
 */
#ifndef KHYVE_MACHINE_H
#define KHYVE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>

#include "bus/pci.h"
#include "config/config.h"
#include "console/console.h"
#include "core/evloop.h"
#include "core/vm.h"
#include "hw/i8042.h"
#include "hw/pm.h"
#include "hw/rtc.h"
#include "hw/uart.h"

#define MACHINE_HOSTBRIDGE_SLOT 0
#define MACHINE_LPC_SLOT 31

struct machine;

/* A device's tear-down, run by machine_close() in reverse order of adding. */
struct machine_closer {
	void (*close)(void *opaque);
	void *opaque;
	struct machine_closer *next;
};

struct machine_com {
	struct machine *m;
	unsigned int irq;
	struct uart uart;
	struct console console;
	bool has_console;
};

struct machine {
	struct vm vm;
	struct evloop loop;
	const struct config *cfg;
	struct pci_bus pci;
	struct pci_dev hostbridge, lpc;
	bool have_hostbridge, have_lpc;
	struct machine_com com[2];
	struct rtc rtc;
	struct i8042 kbc;
	struct pm pm;
	uint64_t rsdp_gpa; /* ACPI RSDP with -A, else 0 */
	struct machine_closer *closers;
};

/* Attach the platform and the -s devices to m->vm; 0 or -errno with @err. */
int machine_build(struct machine *m, const struct config *cfg, char *err,
		  size_t errlen) __must_check;
/* Open the -l consoles (after every check that could still fail). */
int machine_open_consoles(struct machine *m, char *err, size_t errlen) __must_check;
/* Close consoles and unmap devices. */
void machine_close(struct machine *m);
/*
 * Have machine_close() call close(opaque) (after the vCPUs stopped, before
 * the buses go). 0 or -ENOMEM.
 */
int machine_on_close(struct machine *m, void (*close)(void *opaque),
		     void *opaque) __must_check;

/* -s emulations provided by the platform itself (see registry.c). */
int machine_add_hostbridge(struct machine *m, const struct slot_config *sc,
			   char *err, size_t errlen);
int machine_add_lpc(struct machine *m, const struct slot_config *sc, char *err,
		    size_t errlen);

#endif
