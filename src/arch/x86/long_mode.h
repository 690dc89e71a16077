/*
 * Entering a 64-bit guest directly, without firmware: a flat GDT, identity
 * page tables for the first 4 GiB (2 MiB pages: 1 GiB pages are not offered
 * by every host), and the registers the Linux 64-bit boot protocol asks for
 * (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL"): CS=0x10 and
 * DS/ES/SS=0x18 flat, paging on, interrupts off, RSI = boot_params.
 */
#ifndef KHYVE_ARCH_X86_LONG_MODE_H
#define KHYVE_ARCH_X86_LONG_MODE_H

#include <stdint.h>

#include "core/log.h"

struct vcpu;
struct guest_mem;

#define BOOT_CS 0x10
#define BOOT_DS 0x18

/* Write the GDT and page tables of layout.h into guest RAM; 0 or -errno. */
int long_mode_write_tables(const struct guest_mem *mem) __must_check;
/* Put @vcpu in long mode at @entry with RSI = @rsi; dies on ioctl failure. */
void long_mode_enter(struct vcpu *vcpu, uint64_t entry, uint64_t rsi);

#endif
