/* Direct 64-bit entry; see long_mode.h. */
#include "arch/x86/long_mode.h"

#include <errno.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"
#include "core/vcpu.h"

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

/* Flat descriptors: null, null, 64-bit code (0x10), data (0x18), TSS (0x20). */
static const uint64_t boot_gdt[] = {
	0,
	0,
	0x00af9b000000ffffULL,
	0x00cf93000000ffffULL,
	0x008f8b000000ffffULL,
};

int long_mode_write_tables(const struct guest_mem *mem)
{
	uint64_t pml4e = LAYOUT_PDPT | PTE_P | PTE_RW;
	uint64_t *pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = guest_mem_ptr(mem, LAYOUT_PD, 4 * 4096);
	int i, err;

	if (!pdpt || !pd)
		return -EFAULT;
	err = guest_mem_write(mem, LAYOUT_GDT, boot_gdt, sizeof(boot_gdt));
	if (!err)
		err = guest_mem_write(mem, LAYOUT_PML4, &pml4e, sizeof(pml4e));
	if (err)
		return err;
	for (i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_P | PTE_RW;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

static struct kvm_segment segment(uint16_t selector, uint8_t type, int l,
				  int db)
{
	struct kvm_segment s = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = db,
		.s = 1,
		.l = l,
		.g = 1,
	};
	return s;
}

void long_mode_enter(struct vcpu *vcpu, uint64_t entry, uint64_t rsi)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		die_errno("KVM_GET_SREGS");
	sregs.cs = segment(BOOT_CS, 0xb, 1, 0);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
		segment(BOOT_DS, 0x3, 0, 1);
	sregs.tr = segment(0x20, 0xb, 0, 0);
	sregs.tr.s = 0;
	sregs.tr.limit = 0xfffff;
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = sizeof(boot_gdt) - 1;
	sregs.idt.base = LAYOUT_IDT;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.cr3 = LAYOUT_PML4;
	sregs.cr4 = CR4_PAE;
	sregs.efer = EFER_SCE | EFER_LME | EFER_LMA;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		die_errno("KVM_SET_SREGS");

	regs.rip = entry;
	regs.rsi = rsi;
	regs.rsp = LAYOUT_BOOT_STACK;
	regs.rbp = LAYOUT_BOOT_STACK;
	regs.rflags = 2;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		die_errno("KVM_SET_REGS");
}
