/* The 16550A model on its own: registers, interrupts, FIFO, flow control. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "hw/uart.h"

struct fake {
	int irq;
	int irq_changes;
	uint8_t tx[256];
	size_t ntx;
	const uint8_t *in;
	size_t in_len, in_pos;
};

static void fake_irq(void *o, int level)
{
	struct fake *f = o;

	f->irq = level;
	f->irq_changes++;
}

static void fake_tx(void *o, uint8_t b)
{
	struct fake *f = o;

	f->tx[f->ntx++ % sizeof(f->tx)] = b;
}

static size_t fake_rx(void *o, uint8_t *buf, size_t max)
{
	struct fake *f = o;
	size_t n = 0;

	while (n < max && f->in_pos < f->in_len)
		buf[n++] = f->in[f->in_pos++];
	return n;
}

static const struct uart_ops ops = { fake_irq, fake_tx, fake_rx };

enum { RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR };

static void transmit_and_divisor(void **state)
{
	struct fake f = { 0 };
	struct uart u;

	(void)state;
	uart_init(&u, &ops, &f);
	assert_int_equal(uart_read(&u, LSR) & 0x60, 0x60);
	uart_write(&u, RBR, 'h');
	uart_write(&u, RBR, 'i');
	assert_int_equal(f.ntx, 2);
	assert_memory_equal(f.tx, "hi", 2);
	/* Divisor latch hides THR and IER. */
	uart_write(&u, LCR, 0x80);
	uart_write(&u, RBR, 0x01);
	uart_write(&u, IER, 0x02);
	assert_int_equal(uart_read(&u, RBR), 0x01);
	assert_int_equal(uart_read(&u, IER), 0x02);
	uart_write(&u, LCR, 0x03);
	assert_int_equal(f.ntx, 2);
	assert_int_equal(uart_read(&u, IER), 0);
	uart_write(&u, SCR, 0x5a);
	assert_int_equal(uart_read(&u, SCR), 0x5a);
}

static void thre_interrupt(void **state)
{
	struct fake f = { 0 };
	struct uart u;

	(void)state;
	uart_init(&u, &ops, &f);
	uart_write(&u, MCR, 0x08); /* OUT2 gates the line */
	uart_write(&u, IER, 0x02);
	assert_int_equal(f.irq, 1);
	assert_int_equal(uart_read(&u, IIR) & 0x0f, 0x02);
	/* Reading IIR acknowledged it. */
	assert_int_equal(f.irq, 0);
	assert_int_equal(uart_read(&u, IIR) & 0x0f, 0x01);
	uart_write(&u, RBR, 'x');
	assert_int_equal(f.irq, 1);
	/* Without OUT2 the interrupt does not reach the bus. */
	uart_write(&u, MCR, 0x00);
	assert_int_equal(f.irq, 0);
}

static void receive_fifo_and_flow_control(void **state)
{
	uint8_t in[100];
	struct fake f = { 0 };
	struct uart u;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	f.in = in;
	f.in_len = sizeof(in);
	uart_init(&u, &ops, &f);
	uart_write(&u, IIR, 0xc7); /* FIFO, 14-byte trigger */
	uart_write(&u, MCR, 0x08);
	uart_write(&u, IER, 0x01);
	uart_input_ready(&u);
	/* The FIFO took 16 bytes; the rest waits in the backend. */
	assert_int_equal(f.in_pos, 16);
	assert_int_equal(f.irq, 1);
	assert_int_equal(uart_read(&u, IIR), 0xc4);
	for (i = 0; i < sizeof(in); i++) {
		assert_true(uart_read(&u, LSR) & 0x01);
		assert_int_equal(uart_read(&u, RBR), i);
	}
	assert_false(uart_read(&u, LSR) & 0x01);
	/* No overrun was ever flagged: nothing was lost. */
	assert_false(uart_read(&u, LSR) & 0x02);
	assert_int_equal(f.irq, 0);
}

static void timeout_interrupt_below_trigger(void **state)
{
	static const uint8_t in[] = "ab";
	struct fake f = { .in = in, .in_len = 2 };
	struct uart u;

	(void)state;
	uart_init(&u, &ops, &f);
	uart_write(&u, IIR, 0xc1);
	uart_write(&u, MCR, 0x08);
	uart_write(&u, IER, 0x01);
	uart_input_ready(&u);
	assert_int_equal(uart_read(&u, IIR) & 0x0f, 0x0c);
	assert_int_equal(uart_read(&u, RBR), 'a');
	assert_int_equal(uart_read(&u, RBR), 'b');
	assert_int_equal(uart_read(&u, IIR) & 0x0f, 0x01);
}

static void loopback_for_linux_probe(void **state)
{
	struct fake f = { 0 };
	struct uart u;

	(void)state;
	uart_init(&u, &ops, &f);
	/* Linux's autoconfig: loopback with OUT2|RTS must show DCD|CTS. */
	uart_write(&u, MCR, 0x1a);
	assert_int_equal(uart_read(&u, MSR) & 0xf0, 0x90);
	uart_write(&u, MCR, 0x1f);
	assert_int_equal(uart_read(&u, MSR) & 0xf0, 0xf0);
	uart_write(&u, RBR, 'Q');
	assert_int_equal(f.ntx, 0);
	assert_true(uart_read(&u, LSR) & 0x01);
	assert_int_equal(uart_read(&u, RBR), 'Q');
	uart_write(&u, MCR, 0x00);
	assert_int_equal(uart_read(&u, MSR) & 0xf0, 0xb0);
	/* FIFO detection: IIR bits 7:6 set once the FIFO is enabled. */
	uart_write(&u, IIR, 0x01);
	assert_int_equal(uart_read(&u, IIR) & 0xc0, 0xc0);
	uart_write(&u, IIR, 0x00);
	assert_int_equal(uart_read(&u, IIR) & 0xc0, 0x00);
}

static void overrun_without_fifo(void **state)
{
	struct fake f = { 0 };
	struct uart u;

	(void)state;
	uart_init(&u, &ops, &f);
	uart_write(&u, MCR, 0x10); /* loopback, no FIFO: one byte holds */
	uart_write(&u, RBR, '1');
	uart_write(&u, RBR, '2');
	assert_int_equal(uart_read(&u, LSR) & 0x03, 0x03);
	assert_int_equal(uart_read(&u, LSR) & 0x02, 0);
	assert_int_equal(uart_read(&u, RBR), '1');
}

/* Input waiting before the guest is ready survives Linux's 8250 start-up:
 * FIFO cleared and off, one LSR read, one discarded RBR read. */
static void early_input_survives_linux_startup(void **state)
{
	static const uint8_t in[] = "early";
	struct fake f = { .in = in, .in_len = 5 };
	struct uart u;
	int i;

	(void)state;
	uart_init(&u, &ops, &f);
	uart_input_ready(&u);
	assert_int_equal(f.in_pos, 0);
	uart_write(&u, IIR, 0x01);
	uart_write(&u, IIR, 0x07);
	uart_write(&u, IIR, 0x00);
	uart_read(&u, LSR);
	uart_read(&u, RBR);
	uart_read(&u, IIR);
	uart_read(&u, MSR);
	assert_int_equal(f.in_pos, 0);
	/* Then it turns the FIFO and the receive interrupt on. */
	uart_write(&u, IIR, 0xc1);
	uart_write(&u, MCR, 0x0b);
	uart_write(&u, IER, 0x01);
	for (i = 0; i < 5; i++)
		assert_int_equal(uart_read(&u, RBR), in[i]);
}

/* A guest that polls LSR without FIFO or interrupts still gets input. */
static void polling_guest_without_fifo(void **state)
{
	static const uint8_t in[] = "ab";
	struct fake f = { .in = in, .in_len = 2 };
	struct uart u;

	(void)state;
	uart_init(&u, &ops, &f);
	uart_input_ready(&u);
	while (!(uart_read(&u, LSR) & 0x01))
		;
	assert_int_equal(uart_read(&u, RBR), 'a');
	while (!(uart_read(&u, LSR) & 0x01))
		;
	assert_int_equal(uart_read(&u, RBR), 'b');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(transmit_and_divisor),
		cmocka_unit_test(thre_interrupt),
		cmocka_unit_test(receive_fifo_and_flow_control),
		cmocka_unit_test(timeout_interrupt_below_trigger),
		cmocka_unit_test(loopback_for_linux_probe),
		cmocka_unit_test(overrun_without_fifo),
		cmocka_unit_test(early_input_survives_linux_startup),
		cmocka_unit_test(polling_guest_without_fifo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
