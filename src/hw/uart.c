/*
 * 16550A model; see uart.h. Register names and bits follow the National
 * Semiconductor PC16550D data sheet.
 */
#include "hw/uart.h"

#include <string.h>

#define REG_RBR_THR 0
#define REG_IER 1
#define REG_IIR_FCR 2
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_ERDAI 0x01 /* received data available */
#define IER_ETHREI 0x02 /* transmitter holding register empty */
#define IER_ELSI 0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */

#define IIR_NONE 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_TRIGGER_MASK 0xc0

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
#define MSR_DELTAS 0x0f

static unsigned int fifo_capacity(const struct uart *uart)
{
	return (uart->fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1;
}

static unsigned int rx_trigger(const struct uart *uart)
{
	static const unsigned int levels[] = { 1, 4, 8, 14 };

	if (!(uart->fcr & FCR_ENABLE))
		return 1;
	return levels[(uart->fcr & FCR_TRIGGER_MASK) >> 6];
}

static void rx_push(struct uart *uart, uint8_t byte)
{
	if (uart->rx_count == fifo_capacity(uart)) {
		uart->lsr |= LSR_OE;
		return;
	}
	uart->rx_fifo[(uart->rx_head + uart->rx_count) % UART_FIFO_SIZE] = byte;
	uart->rx_count++;
	uart->rx_bytes++;
}

/* The modem lines as the guest sees them: a connected terminal, or in
 * loopback mode its own outputs (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2). */
static uint8_t modem_lines(const struct uart *uart)
{
	uint8_t m = uart->mcr;

	if (!(m & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	return ((m & MCR_RTS) ? MSR_CTS : 0) | ((m & MCR_DTR) ? MSR_DSR : 0) |
	       ((m & MCR_OUT1) ? MSR_RI : 0) | ((m & MCR_OUT2) ? MSR_DCD : 0);
}

/* Interrupt identification, highest priority first. */
static uint8_t pending_iir(const struct uart *uart)
{
	if ((uart->ier & IER_ELSI) && (uart->lsr & LSR_OE))
		return IIR_RLSI;
	if ((uart->ier & IER_ERDAI) && uart->rx_count) {
		/* Below the trigger level the chip raises a timeout after
		 * four idle character times; model it as immediate. */
		return uart->rx_count >= rx_trigger(uart) ? IIR_RDI :
							    IIR_TIMEOUT;
	}
	if ((uart->ier & IER_ETHREI) && uart->thre_pending)
		return IIR_THRI;
	if ((uart->ier & IER_EDSSI) && (uart->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NONE;
}

static void update_irq(struct uart *uart)
{
	/* On a PC the chip's interrupt reaches the bus only when OUT2 is set;
	 * in loopback mode it is cut off from the bus. */
	int level = pending_iir(uart) != IIR_NONE && (uart->mcr & MCR_OUT2) &&
		    !(uart->mcr & MCR_LOOP);

	if (level != uart->irq_level) {
		uart->irq_level = level;
		uart->ops->set_irq(uart->opaque, level);
	}
}

/*
 * Whether the guest is reading input: its FIFO or receive interrupt is on,
 * or it polls LSR (twice in a row: Linux's start-up reads LSR once, then
 * RBR once to throw it away, with both off).
 */
static bool rx_wanted(const struct uart *uart)
{
	return (uart->fcr & FCR_ENABLE) || (uart->ier & IER_ERDAI) ||
	       uart->lsr_polls >= 2;
}

/* Refill the receive FIFO from the backend (never in loopback mode). */
static void rx_refill(struct uart *uart)
{
	uint8_t buf[UART_FIFO_SIZE];
	size_t n, i, room;

	if ((uart->mcr & MCR_LOOP) || !rx_wanted(uart))
		return;
	room = fifo_capacity(uart) - uart->rx_count;
	if (!room)
		return;
	n = uart->ops->rx(uart->opaque, buf, room);
	for (i = 0; i < n; i++)
		rx_push(uart, buf[i]);
}

void uart_init(struct uart *uart, const struct uart_ops *ops, void *opaque)
{
	memset(uart, 0, sizeof(*uart));
	pthread_mutex_init(&uart->lock, NULL);
	uart->ops = ops;
	uart->opaque = opaque;
	uart->lsr = LSR_THRE | LSR_TEMT;
	uart->msr = modem_lines(uart);
	uart->dll = 12; /* 9600 baud */
}

static void set_mcr(struct uart *uart, uint8_t value)
{
	uint8_t old = uart->msr;
	uint8_t now;

	uart->mcr = value & 0x1f;
	now = modem_lines(uart);
	/* Delta bits record changes; RI reports its trailing edge. */
	uart->msr = (old & MSR_DELTAS) | now;
	if ((old ^ now) & MSR_CTS)
		uart->msr |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		uart->msr |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		uart->msr |= MSR_TERI;
	if ((old ^ now) & MSR_DCD)
		uart->msr |= MSR_DDCD;
}

static void set_fcr(struct uart *uart, uint8_t value)
{
	if ((value ^ uart->fcr) & FCR_ENABLE)
		value |= FCR_CLEAR_RX | FCR_CLEAR_TX;
	if (value & FCR_CLEAR_RX) {
		uart->rx_count = 0;
		uart->rx_head = 0;
	}
	uart->fcr = value & (FCR_ENABLE | FCR_TRIGGER_MASK);
}

static void transmit(struct uart *uart, uint8_t value)
{
	uart->tx_bytes++;
	if (uart->mcr & MCR_LOOP)
		rx_push(uart, value);
	else
		uart->ops->tx(uart->opaque, value);
	/* The byte left at once: THR is empty again. */
	uart->thre_pending = true;
}

void uart_write(struct uart *uart, unsigned int offset, uint8_t value)
{
	pthread_mutex_lock(&uart->lock);
	switch (offset) {
	case REG_RBR_THR:
		if (uart->lcr & LCR_DLAB)
			uart->dll = value;
		else
			transmit(uart, value);
		break;
	case REG_IER:
		if (uart->lcr & LCR_DLAB) {
			uart->dlm = value;
			break;
		}
		/* Enabling the THRE interrupt with THR empty raises it. */
		if (!(uart->ier & IER_ETHREI) && (value & IER_ETHREI))
			uart->thre_pending = true;
		uart->ier = value & 0x0f;
		rx_refill(uart);
		break;
	case REG_IIR_FCR:
		/* No refill here: Linux enables the FIFO only to clear it. */
		set_fcr(uart, value);
		break;
	case REG_LCR:
		uart->lcr = value;
		break;
	case REG_MCR:
		set_mcr(uart, value);
		rx_refill(uart);
		break;
	case REG_SCR:
		uart->scr = value;
		break;
	default:
		/* LSR and MSR are read-only (factory test writes ignored). */
		break;
	}
	update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
}

static uint8_t read_rbr(struct uart *uart)
{
	uint8_t v = 0;

	uart->lsr_polls = 0;
	if (uart->rx_count) {
		v = uart->rx_fifo[uart->rx_head];
		uart->rx_head = (uart->rx_head + 1) % UART_FIFO_SIZE;
		uart->rx_count--;
	}
	rx_refill(uart);
	return v;
}

uint8_t uart_read(struct uart *uart, unsigned int offset)
{
	uint8_t v = 0xff;
	uint8_t iir;

	pthread_mutex_lock(&uart->lock);
	switch (offset) {
	case REG_RBR_THR:
		v = (uart->lcr & LCR_DLAB) ? uart->dll : read_rbr(uart);
		break;
	case REG_IER:
		v = (uart->lcr & LCR_DLAB) ? uart->dlm : uart->ier;
		break;
	case REG_IIR_FCR:
		iir = pending_iir(uart);
		/* Reading IIR acknowledges a THRE interrupt. */
		if (iir == IIR_THRI)
			uart->thre_pending = false;
		v = iir | ((uart->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0);
		break;
	case REG_LCR:
		v = uart->lcr;
		break;
	case REG_MCR:
		v = uart->mcr;
		break;
	case REG_LSR:
		if (uart->lsr_polls < 2)
			uart->lsr_polls++;
		if (!uart->rx_count)
			rx_refill(uart);
		v = uart->lsr | (uart->rx_count ? LSR_DR : 0);
		uart->lsr &= ~LSR_OE;
		break;
	case REG_MSR:
		v = uart->msr;
		uart->msr &= ~MSR_DELTAS;
		break;
	case REG_SCR:
		v = uart->scr;
		break;
	}
	update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
	return v;
}

void uart_input_ready(struct uart *uart)
{
	pthread_mutex_lock(&uart->lock);
	rx_refill(uart);
	update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
}
