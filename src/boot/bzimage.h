/*
 * bzImage parsing (Documentation/arch/x86/boot.rst): the real-mode setup
 * header and where the protected-mode kernel and its compressed payload
 * lie in the file. The file is untrusted: every field is checked against
 * the file's size before it is used.
 */
#ifndef KHYVE_BOOT_BZIMAGE_H
#define KHYVE_BOOT_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define BZ_MIN_VERSION 0x0206
#define BZ_XLF_KERNEL_64 0x01

struct bzimage {
	uint16_t version;
	const uint8_t *hdr;     /* setup header, from offset 0x1f1 */
	size_t hdr_len;
	const uint8_t *kernel;  /* protected-mode kernel */
	size_t kernel_len;
	const uint8_t *payload; /* compressed vmlinux, inside kernel */
	size_t payload_len;
	uint32_t init_size;     /* memory the kernel needs from its load address */
	uint64_t pref_address;
	uint32_t kernel_alignment;
	bool relocatable;
	uint32_t cmdline_size;  /* longest command line, without the NUL */
	uint32_t initrd_addr_max;
};

/* True when @image carries the "HdrS" setup header signature. */
bool bzimage_is_bzimage(const uint8_t *image, size_t size);
/* Parse and check; 0 or -EINVAL/-ENOTSUP with *why. */
int bzimage_parse(const uint8_t *image, size_t size, struct bzimage *bz,
		  const char **why) __must_check;

#endif
