/*
 * Serial input: reads lines from COM1 by polling and answers each with
 * "ECHO <length> <checksum> <line>", until a line "quit". The harness pastes
 * long lines and checks that no byte was lost (the FIFO is 16 bytes; the
 * rest must wait in the host).
 */
#include "guest.h"

const char test_name[] = "echo";

static char line[8192];

void guest_main(const void *bp)
{
	(void)bp;
	serial_init();
	puts_serial("ECHO-READY\n");
	for (;;) {
		uint32_t sum = 0;
		size_t n = 0, total = 0;
		int c;

		while ((c = getc_serial()) != '\r' && c != '\n') {
			if (n + 1 < sizeof(line))
				line[n++] = c;
			total++;
			sum = sum * 31 + (uint8_t)c;
		}
		line[n] = '\0';
		if (!total)
			continue;
		if (!str_cmp(line, "quit"))
			guest_pass();
		/* Long lines: length and checksum only. */
		if (total > 60)
			printf_serial("ECHO %u %x\n", (unsigned int)total, sum);
		else
			printf_serial("ECHO %u %x %s\n", (unsigned int)total,
				      sum, line);
	}
}
