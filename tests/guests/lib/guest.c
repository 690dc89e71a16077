/* The test guests' library; see guest.h. */
#include "guest.h"

#define LSR_DR 0x01
#define LSR_THRE 0x20
#define BP_CMD_LINE_PTR 0x228

size_t str_len(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int str_cmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int mem_cmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

void *mem_set(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = c;
	return d;
}

/* The compiler may emit calls to these. */
void *memset(void *d, int c, size_t n)
{
	return mem_set(d, c, n);
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* 115200 */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0xc7); /* FIFO on, cleared, 14-byte trigger */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

void putc_serial(char c)
{
	while (!(inb(COM1 + 5) & LSR_THRE))
		;
	outb(COM1, c);
}

void puts_serial(const char *s)
{
	while (*s) {
		if (*s == '\n')
			putc_serial('\r');
		putc_serial(*s++);
	}
}

bool serial_has_input(void)
{
	return inb(COM1 + 5) & LSR_DR;
}

int getc_serial(void)
{
	while (!serial_has_input())
		;
	return inb(COM1);
}

static void put_num(uint64_t v, unsigned int base, int width, char pad)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n < width--)
		putc_serial(pad);
	while (n)
		putc_serial(buf[--n]);
}

void vprintf_serial(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int width = 0, lng = 0;
		char pad = ' ';

		if (*fmt != '%') {
			if (*fmt == '\n')
				putc_serial('\r');
			putc_serial(*fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			puts_serial(va_arg(ap, const char *));
			break;
		case 'c':
			putc_serial((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			if (v < 0) {
				putc_serial('-');
				v = -v;
			}
			put_num((uint64_t)v, 10, width, pad);
			break;
		}
		case 'u':
			put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int),
				10, width, pad);
			break;
		case 'x':
			put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int),
				16, width, pad);
			break;
		default:
			putc_serial('%');
			putc_serial(*fmt);
			break;
		}
	}
}

void printf_serial(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf_serial(fmt, ap);
	va_end(ap);
}

const char *cmdline(const void *boot_params)
{
	uint32_t ptr;

	if (!boot_params)
		return "";
	ptr = *(const uint32_t *)((const char *)boot_params + BP_CMD_LINE_PTR);
	return ptr ? (const char *)(uint64_t)ptr : "";
}

bool cmdline_get(const char *cmd, const char *key, char *buf, size_t len)
{
	size_t klen = str_len(key);
	const char *p = cmd;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!mem_cmp(p, key, klen) && p[klen] == '=') {
			size_t n = 0;

			p += klen + 1;
			while (*p && *p != ' ' && n + 1 < len)
				buf[n++] = *p++;
			buf[n] = '\0';
			return true;
		}
		while (*p && *p != ' ')
			p++;
	}
	return false;
}

void guest_poweroff(void)
{
	/* ACPI S5 on khyve; QEMU's isa-debug-exit for side-by-side runs. */
	outw(PM1A_CNT, (5 << 10) | (1 << 13));
	outb(ISA_DEBUG_EXIT, 0);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void guest_pass(void)
{
	printf_serial("PASS %s\n", test_name);
	guest_poweroff();
}

void guest_triple_fault(void)
{
	/* No IDT: the #UD escalates to a double fault, then a triple fault. */
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty_idt = { 0, 0 };

	__asm__ volatile("lidt %0; ud2" : : "m"(empty_idt));
	for (;;)
		;
}

void guest_fail(const char *fmt, ...)
{
	va_list ap;

	printf_serial("FAIL %s: ", test_name);
	va_start(ap, fmt);
	vprintf_serial(fmt, ap);
	va_end(ap);
	puts_serial("\n");
	guest_triple_fault();
}
