/*
 * khyve's DSDT: the PCI root bridge with its resources and interrupt
 * routing, the LPC devices (COM1, COM2, RTC), the motherboard resources
 * (MMCONFIG, ACPI PM ports, reset register) and the S5 sleep type. It is
 * static: what varies with the command line (CPUs, their APIC IDs) lives in
 * the MADT. Compiled by iasl at build time; the numbers must match
 * src/arch/x86/layout.h and src/hw/pm.h.
 */
DefinitionBlock ("dsdt.aml", "DSDT", 2, "KHYVE ", "KHYVEDSD", 1)
{
    /* SLP_TYP for S5 (PM1a, PM1b): pm.h's PM_S5_SLP_TYP. */
    Name (\_S5, Package () { 5, 5, 0, 0 })

    Scope (\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))   /* PCI Express root bridge */
            Name (_CID, EisaId ("PNP0A03"))   /* PCI root bridge */
            Name (_UID, 0)
            Name (_SEG, 0)
            Name (_BBN, 0)
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x0000, 0x0000, 0x0001)
                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,
                    0x00000000, 0x000A0000, 0x000BFFFF, 0x00000000, 0x00020000)
                /* 32-bit BAR window: layout.h LAYOUT_PCI_MMIO..LAYOUT_PCI_MMIO_END */
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0x00000000, 0xC0000000, 0xDFFFFFFF, 0x00000000, 0x20000000)
            })

            /*
             * INTx routing without link devices, as bhyve does: slot S,
             * pin P (0 = INTA) goes to IOAPIC input 16 + (S + P) % 8.
             */
            Name (_PRT, Package ()
            {
                Package () { 0x0001FFFF, 0, 0, 17 }, Package () { 0x0001FFFF, 1, 0, 18 },
                Package () { 0x0001FFFF, 2, 0, 19 }, Package () { 0x0001FFFF, 3, 0, 20 },
                Package () { 0x0002FFFF, 0, 0, 18 }, Package () { 0x0002FFFF, 1, 0, 19 },
                Package () { 0x0002FFFF, 2, 0, 20 }, Package () { 0x0002FFFF, 3, 0, 21 },
                Package () { 0x0003FFFF, 0, 0, 19 }, Package () { 0x0003FFFF, 1, 0, 20 },
                Package () { 0x0003FFFF, 2, 0, 21 }, Package () { 0x0003FFFF, 3, 0, 22 },
                Package () { 0x0004FFFF, 0, 0, 20 }, Package () { 0x0004FFFF, 1, 0, 21 },
                Package () { 0x0004FFFF, 2, 0, 22 }, Package () { 0x0004FFFF, 3, 0, 23 },
                Package () { 0x0005FFFF, 0, 0, 21 }, Package () { 0x0005FFFF, 1, 0, 22 },
                Package () { 0x0005FFFF, 2, 0, 23 }, Package () { 0x0005FFFF, 3, 0, 16 },
                Package () { 0x0006FFFF, 0, 0, 22 }, Package () { 0x0006FFFF, 1, 0, 23 },
                Package () { 0x0006FFFF, 2, 0, 16 }, Package () { 0x0006FFFF, 3, 0, 17 },
                Package () { 0x0007FFFF, 0, 0, 23 }, Package () { 0x0007FFFF, 1, 0, 16 },
                Package () { 0x0007FFFF, 2, 0, 17 }, Package () { 0x0007FFFF, 3, 0, 18 },
                Package () { 0x0008FFFF, 0, 0, 16 }, Package () { 0x0008FFFF, 1, 0, 17 },
                Package () { 0x0008FFFF, 2, 0, 18 }, Package () { 0x0008FFFF, 3, 0, 19 },
                Package () { 0x0009FFFF, 0, 0, 17 }, Package () { 0x0009FFFF, 1, 0, 18 },
                Package () { 0x0009FFFF, 2, 0, 19 }, Package () { 0x0009FFFF, 3, 0, 20 },
                Package () { 0x000AFFFF, 0, 0, 18 }, Package () { 0x000AFFFF, 1, 0, 19 },
                Package () { 0x000AFFFF, 2, 0, 20 }, Package () { 0x000AFFFF, 3, 0, 21 },
                Package () { 0x000BFFFF, 0, 0, 19 }, Package () { 0x000BFFFF, 1, 0, 20 },
                Package () { 0x000BFFFF, 2, 0, 21 }, Package () { 0x000BFFFF, 3, 0, 22 },
                Package () { 0x000CFFFF, 0, 0, 20 }, Package () { 0x000CFFFF, 1, 0, 21 },
                Package () { 0x000CFFFF, 2, 0, 22 }, Package () { 0x000CFFFF, 3, 0, 23 },
                Package () { 0x000DFFFF, 0, 0, 21 }, Package () { 0x000DFFFF, 1, 0, 22 },
                Package () { 0x000DFFFF, 2, 0, 23 }, Package () { 0x000DFFFF, 3, 0, 16 },
                Package () { 0x000EFFFF, 0, 0, 22 }, Package () { 0x000EFFFF, 1, 0, 23 },
                Package () { 0x000EFFFF, 2, 0, 16 }, Package () { 0x000EFFFF, 3, 0, 17 },
                Package () { 0x000FFFFF, 0, 0, 23 }, Package () { 0x000FFFFF, 1, 0, 16 },
                Package () { 0x000FFFFF, 2, 0, 17 }, Package () { 0x000FFFFF, 3, 0, 18 },
                Package () { 0x0010FFFF, 0, 0, 16 }, Package () { 0x0010FFFF, 1, 0, 17 },
                Package () { 0x0010FFFF, 2, 0, 18 }, Package () { 0x0010FFFF, 3, 0, 19 },
                Package () { 0x0011FFFF, 0, 0, 17 }, Package () { 0x0011FFFF, 1, 0, 18 },
                Package () { 0x0011FFFF, 2, 0, 19 }, Package () { 0x0011FFFF, 3, 0, 20 },
                Package () { 0x0012FFFF, 0, 0, 18 }, Package () { 0x0012FFFF, 1, 0, 19 },
                Package () { 0x0012FFFF, 2, 0, 20 }, Package () { 0x0012FFFF, 3, 0, 21 },
                Package () { 0x0013FFFF, 0, 0, 19 }, Package () { 0x0013FFFF, 1, 0, 20 },
                Package () { 0x0013FFFF, 2, 0, 21 }, Package () { 0x0013FFFF, 3, 0, 22 },
                Package () { 0x0014FFFF, 0, 0, 20 }, Package () { 0x0014FFFF, 1, 0, 21 },
                Package () { 0x0014FFFF, 2, 0, 22 }, Package () { 0x0014FFFF, 3, 0, 23 },
                Package () { 0x0015FFFF, 0, 0, 21 }, Package () { 0x0015FFFF, 1, 0, 22 },
                Package () { 0x0015FFFF, 2, 0, 23 }, Package () { 0x0015FFFF, 3, 0, 16 },
                Package () { 0x0016FFFF, 0, 0, 22 }, Package () { 0x0016FFFF, 1, 0, 23 },
                Package () { 0x0016FFFF, 2, 0, 16 }, Package () { 0x0016FFFF, 3, 0, 17 },
                Package () { 0x0017FFFF, 0, 0, 23 }, Package () { 0x0017FFFF, 1, 0, 16 },
                Package () { 0x0017FFFF, 2, 0, 17 }, Package () { 0x0017FFFF, 3, 0, 18 },
                Package () { 0x0018FFFF, 0, 0, 16 }, Package () { 0x0018FFFF, 1, 0, 17 },
                Package () { 0x0018FFFF, 2, 0, 18 }, Package () { 0x0018FFFF, 3, 0, 19 },
                Package () { 0x0019FFFF, 0, 0, 17 }, Package () { 0x0019FFFF, 1, 0, 18 },
                Package () { 0x0019FFFF, 2, 0, 19 }, Package () { 0x0019FFFF, 3, 0, 20 },
                Package () { 0x001AFFFF, 0, 0, 18 }, Package () { 0x001AFFFF, 1, 0, 19 },
                Package () { 0x001AFFFF, 2, 0, 20 }, Package () { 0x001AFFFF, 3, 0, 21 },
                Package () { 0x001BFFFF, 0, 0, 19 }, Package () { 0x001BFFFF, 1, 0, 20 },
                Package () { 0x001BFFFF, 2, 0, 21 }, Package () { 0x001BFFFF, 3, 0, 22 },
                Package () { 0x001CFFFF, 0, 0, 20 }, Package () { 0x001CFFFF, 1, 0, 21 },
                Package () { 0x001CFFFF, 2, 0, 22 }, Package () { 0x001CFFFF, 3, 0, 23 },
                Package () { 0x001DFFFF, 0, 0, 21 }, Package () { 0x001DFFFF, 1, 0, 22 },
                Package () { 0x001DFFFF, 2, 0, 23 }, Package () { 0x001DFFFF, 3, 0, 16 },
                Package () { 0x001EFFFF, 0, 0, 22 }, Package () { 0x001EFFFF, 1, 0, 23 },
                Package () { 0x001EFFFF, 2, 0, 16 }, Package () { 0x001EFFFF, 3, 0, 17 },
            })

            /* The LPC bridge (slot 31) and the legacy devices behind it. */
            Device (ISA)
            {
                Name (_ADR, 0x001F0000)

                Device (COM1)
                {
                    Name (_HID, EisaId ("PNP0501"))
                    Name (_UID, 1)
                    Name (_CRS, ResourceTemplate ()
                    {
                        IO (Decode16, 0x03F8, 0x03F8, 0x00, 0x08)
                        IRQNoFlags () {4}
                    })
                }

                Device (COM2)
                {
                    Name (_HID, EisaId ("PNP0501"))
                    Name (_UID, 2)
                    Name (_CRS, ResourceTemplate ()
                    {
                        IO (Decode16, 0x02F8, 0x02F8, 0x00, 0x08)
                        IRQNoFlags () {3}
                    })
                }

                Device (RTC)
                {
                    Name (_HID, EisaId ("PNP0B00"))
                    Name (_CRS, ResourceTemplate ()
                    {
                        IO (Decode16, 0x0070, 0x0070, 0x00, 0x02)
                        IRQNoFlags () {8}
                    })
                }
            }
        }

        /* Motherboard resources: MMCONFIG and the ACPI PM block (0xCF9 is
         * inside the PCI configuration ports Linux reserves itself). */
        Device (MBRD)
        {
            Name (_HID, EisaId ("PNP0C02"))
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x0400, 0x0400, 0x00, 0x0C)
                Memory32Fixed (ReadWrite, 0xE0000000, 0x00100000)
            })
        }
    }
}
