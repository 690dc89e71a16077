/*
 * A 16550A UART (the "8250" Linux drives as ttyS0/ttyS1): divisor latch,
 * interrupts with the chip's priorities, 16-byte receive FIFO with trigger
 * levels, loopback mode (Linux's probe uses it) and the scratch register.
 *
 * Output goes straight to the console backend: the transmitter is always
 * empty, as if the line were infinitely fast. Input is pulled from the
 * backend only while the receive FIFO has room, so a long pasted line waits
 * in the backend instead of overrunning the FIFO: the guest loses nothing.
 * Nor is input pulled before the guest is ready for it (FIFO or receive
 * interrupt enabled, or LSR polled): Linux's 8250 start-up discards one
 * RBR read and enabling the FIFO clears it, which would eat early input.
 *
 * The model knows neither KVM nor the console: it talks to them through the
 * callbacks in struct uart_ops, which makes it testable on its own.
 */
#ifndef KHYVE_HW_UART_H
#define KHYVE_HW_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UART_FIFO_SIZE 16
#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ 4
#define UART_COM2_BASE 0x2f8
#define UART_COM2_IRQ 3
#define UART_NR_REGS 8

struct uart_ops {
	/* Drive the interrupt line (called only when the level changes). */
	void (*set_irq)(void *opaque, int level);
	/* One transmitted byte. */
	void (*tx)(void *opaque, uint8_t byte);
	/* Up to @max received bytes, without blocking; returns how many. */
	size_t (*rx)(void *opaque, uint8_t *buf, size_t max);
};

struct uart {
	pthread_mutex_t lock;
	const struct uart_ops *ops;
	void *opaque;
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
	bool thre_pending; /* THR-empty interrupt not yet acknowledged */
	uint8_t rx_fifo[UART_FIFO_SIZE];
	unsigned int rx_head, rx_count;
	unsigned int lsr_polls; /* LSR reads since the last RBR read */
	int irq_level;
	uint64_t rx_bytes, tx_bytes;
};

/* Reset state; @ops is kept for the life of the UART. */
void uart_init(struct uart *uart, const struct uart_ops *ops, void *opaque);
/* Register access at @offset (0-7) from the guest. */
uint8_t uart_read(struct uart *uart, unsigned int offset);
void uart_write(struct uart *uart, unsigned int offset, uint8_t value);
/* The backend has new input: pull what fits and update the interrupt. */
void uart_input_ready(struct uart *uart);

#endif
