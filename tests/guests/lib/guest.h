/*
 * The freestanding library of khyve's test guests: port I/O, a polled COM1,
 * a tiny printf, the kernel command line from boot_params, and the ways a
 * test ends. A passing test prints "PASS <name>" and powers off through
 * ACPI S5 (exit status 0); a failing one prints "FAIL <name>: <why>" and
 * triple-faults (exit status 3), so the exit status alone tells them apart.
 */
#ifndef KHYVE_TEST_GUEST_H
#define KHYVE_TEST_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COM1 0x3f8
#define PM1A_EVT 0x400
#define PM1A_CNT 0x404
#define ISA_DEBUG_EXIT 0xf4

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

/* The test's name, printed with PASS/FAIL; each test defines it. */
extern const char test_name[];

void serial_init(void);
void putc_serial(char c);
void puts_serial(const char *s);
int getc_serial(void);            /* blocks */
bool serial_has_input(void);
void printf_serial(const char *fmt, ...);
void vprintf_serial(const char *fmt, va_list ap);

/* The command line khyve passed (boot_params), or "". */
const char *cmdline(const void *boot_params);
/* Value of "key=value" in the command line into @buf; false if absent. */
bool cmdline_get(const char *cmd, const char *key, char *buf, size_t len);

size_t str_len(const char *s);
int str_cmp(const char *a, const char *b);
int mem_cmp(const void *a, const void *b, size_t n);
void *mem_set(void *d, int c, size_t n);

void guest_poweroff(void) __attribute__((noreturn));
void guest_pass(void) __attribute__((noreturn));
void guest_fail(const char *fmt, ...) __attribute__((noreturn));
void guest_triple_fault(void) __attribute__((noreturn));
/* guest_fail unless @cond, with the condition's text. */
#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond))                                              \
			guest_fail("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

/* Each test's entry, called with the zero page. */
void guest_main(const void *boot_params);

#endif
