/*
 * The ACPI power button: enables PWRBTN_EN, says "READY", and waits for
 * PWRBTN_STS (khyve sets it on SIGTERM); then acknowledges it, checks the
 * acknowledgement cleared it, and powers off through S5 → exit 0.
 */
#include "guest.h"

const char test_name[] = "powerbutton";

#define PWRBTN 0x0100

void guest_main(const void *bp)
{
	(void)bp;
	serial_init();
	CHECK(inw(PM1A_CNT) & 1); /* SCI_EN: ACPI mode from the start */
	outw(PM1A_EVT + 2, PWRBTN);
	CHECK(inw(PM1A_EVT + 2) == PWRBTN);
	CHECK(!(inw(PM1A_EVT) & PWRBTN));
	puts_serial("READY\n");
	while (!(inw(PM1A_EVT) & PWRBTN))
		__asm__ volatile("pause");
	puts_serial("POWER BUTTON\n");
	outw(PM1A_EVT, PWRBTN);
	CHECK(!(inw(PM1A_EVT) & PWRBTN));
	guest_pass();
}
