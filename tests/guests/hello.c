/* Prints a greeting on COM1 and powers off: the demo guest and the smallest
 * end-to-end check (serial output, ACPI S5 → exit status 0). */
#include "guest.h"

const char test_name[] = "hello";

void guest_main(const void *bp)
{
	serial_init();
	printf_serial("Hello from a khyve test guest (cmdline: \"%s\")\n",
		      cmdline(bp));
	guest_pass();
}
