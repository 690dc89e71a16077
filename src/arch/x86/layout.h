/*
 * Where khyve puts things in guest physical memory for a direct boot. The
 * low addresses follow the conventions Linux loaders use (Firecracker,
 * kvmtool): everything the kernel needs at entry sits below 1 MiB, out of
 * the kernel's way, and the BIOS area 0xE0000-0xFFFFF holds the tables a PC
 * firmware would leave there (ACPI RSDP, MP table, SMBIOS).
 */
#ifndef KHYVE_ARCH_X86_LAYOUT_H
#define KHYVE_ARCH_X86_LAYOUT_H

#define LAYOUT_GDT 0x500ULL
#define LAYOUT_IDT 0x520ULL
#define LAYOUT_BOOT_PARAMS 0x7000ULL
#define LAYOUT_BOOT_STACK 0x8ff0ULL
#define LAYOUT_PML4 0x9000ULL
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL /* 4 pages: 4 GiB in 2 MiB pages */
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL
#define LAYOUT_EBDA 0x9fc00ULL    /* last KiB of base memory */
#define LAYOUT_VGA 0xa0000ULL
#define LAYOUT_BIOS 0xe0000ULL     /* ACPI tables from here */
#define LAYOUT_SMBIOS 0xf0000ULL   /* SMBIOS entry point and tables */
#define LAYOUT_MPTABLE 0xf8000ULL  /* MP floating pointer and table */
#define LAYOUT_BIOS_END 0x100000ULL
#define LAYOUT_HIGH_MEM 0x100000ULL

/* 32-bit PCI hole contents (see guest_mem.h). */
#define LAYOUT_MMCONFIG 0xe0000000ULL
#define LAYOUT_MMCONFIG_SIZE (1ULL << 20) /* bus 0 only */
#define LAYOUT_PCI_MMIO 0xc0000000ULL
#define LAYOUT_PCI_MMIO_END 0xe0000000ULL
#define LAYOUT_IOAPIC 0xfec00000ULL
#define LAYOUT_LAPIC 0xfee00000ULL

#endif
