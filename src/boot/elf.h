/*
 * ELF64 loader: copies each PT_LOAD segment of an x86-64 executable to its
 * physical address (p_paddr) in guest RAM and zeroes the rest of p_memsz.
 * The image is untrusted file data: every offset and size is checked before
 * use, and a bad image gets a reason, never a crash.
 */
#ifndef KHYVE_BOOT_ELF_H
#define KHYVE_BOOT_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"

struct elf_image {
	uint64_t entry;     /* e_entry */
	uint64_t low;       /* lowest loaded physical address */
	uint64_t high;      /* end of the highest segment */
};

/* True when @image starts with the ELF magic. */
bool elf_is_elf(const void *image, size_t size);
/*
 * Load @image into @mem. 0, or -errno with *why set to a sentence naming
 * the problem (truncated, not x86-64, segment outside RAM, ...).
 */
int elf_load(const struct guest_mem *mem, const void *image, size_t size,
	     struct elf_image *out, const char **why) __must_check;

#endif
