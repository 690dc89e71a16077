/*
 * Resets the machine the ways a PC can, chosen by "how=" on the command
 * line: kbd (i8042 command 0xFE), outport (i8042 output port with the reset
 * line low), cf9 (reset control register), triple (a triple fault). khyve
 * must exit with 2 for the first three and 3 for the last.
 */
#include "guest.h"

const char test_name[] = "reset";

void guest_main(const void *bp)
{
	char how[16] = "kbd";

	serial_init();
	cmdline_get(cmdline(bp), "how", how, sizeof(how));
	printf_serial("RESET via %s\n", how);
	if (!str_cmp(how, "kbd")) {
		outb(0x64, 0xfe);
	} else if (!str_cmp(how, "outport")) {
		outb(0x64, 0xd1);
		outb(0x60, 0x00);
	} else if (!str_cmp(how, "cf9")) {
		outb(0xcf9, 0x02);
		outb(0xcf9, 0x06);
	} else if (!str_cmp(how, "triple")) {
		guest_triple_fault();
	}
	guest_fail("still running after reset via %s", how);
}
