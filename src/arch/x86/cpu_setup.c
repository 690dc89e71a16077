/* x86 vCPU set-up; see cpu_setup.h. */
#include "arch/x86/cpu_setup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/vcpu.h"

#define CPUID_1_ECX_X2APIC (1U << 21)
#define CPUID_1_ECX_HYPERVISOR (1U << 31)
#define CPUID_1_EDX_HTT (1U << 28)

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MSR_K7_HWCR 0xc0010015
#define HWCR_TSC_FREQ_SEL (1ULL << 24)

#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE_WB ((1ULL << 11) | 6)

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

void x86_cpuid_adjust(struct kvm_cpuid2 *cpuid, unsigned int id,
		      unsigned int nr_vcpus, int x2apic)
{
	unsigned int i;

	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (id << 24) |
				 ((nr_vcpus & 0xff) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (!x2apic)
				e->ecx &= ~CPUID_1_ECX_X2APIC;
			if (nr_vcpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			break;
		case 4:
			/* Cores per package - 1, in EAX[31:26]. */
			e->eax = (e->eax & 0x03ffffff) | ((nr_vcpus - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			/* One thread per core, all cores in one package. */
			e->edx = id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1 << 8;
			} else if (e->index == 1) {
				e->eax = 32 - __builtin_clz(nr_vcpus > 1 ?
								 nr_vcpus - 1 : 1);
				e->ebx = nr_vcpus;
				e->ecx = (2 << 8) | 1;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		default:
			break;
		}
	}
}

static void setup_cpuid(struct vcpu *vcpu)
{
	const struct kvm_cpuid2 *host = vcpu->vm->cpuid;
	size_t size = sizeof(*host) + host->nent * sizeof(host->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(size);

	if (!cpuid)
		die("out of memory");
	memcpy(cpuid, host, size);
	x86_cpuid_adjust(cpuid, vcpu->id, vcpu->vm->nr_vcpus, vcpu->vm->x2apic);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
		die_errno("KVM_SET_CPUID2 on vCPU %u", vcpu->id);
	free(cpuid);
}

static bool msr_known(const struct kvm_msr_list *list, uint32_t index)
{
	uint32_t i;

	for (i = 0; i < list->nmsrs; i++)
		if (list->indices[i] == index)
			return true;
	return false;
}

static void setup_msrs(struct vcpu *vcpu)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} boot_msrs[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },  { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 },
		{ MSR_LSTAR, 0 },	      { MSR_CSTAR, 0 },
		{ MSR_SYSCALL_MASK, 0 },      { MSR_KERNEL_GS_BASE, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB },
	};
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + sizeof(boot_msrs) /
						      sizeof(boot_msrs[0]) *
						      sizeof(msrs->entries[0]));
	size_t i;
	int n = 0;

	if (!msrs)
		die("out of memory");
	for (i = 0; i < sizeof(boot_msrs) / sizeof(boot_msrs[0]); i++) {
		/* Only MSRs this host's KVM lists: never force one it lacks. */
		if (!msr_known(vcpu->vm->msrs, boot_msrs[i].index))
			continue;
		msrs->entries[n].index = boot_msrs[i].index;
		msrs->entries[n].data = boot_msrs[i].value;
		n++;
	}
	msrs->nmsrs = n;
	if (ioctl(vcpu->fd, KVM_SET_MSRS, msrs) != n)
		warn("vCPU %u: KVM_SET_MSRS set fewer MSRs than asked", vcpu->id);
	free(msrs);
}

/*
 * On AMD, Linux checks HWCR.TscFreqSel and calls it a firmware bug when the
 * TSC does not count at P0 frequency; real firmware sets it. Older KVMs
 * refuse the bit: then the guest keeps its warning, nothing else changes.
 */
static void setup_amd_hwcr(struct vcpu *vcpu)
{
	/* A kvm_msrs header followed by its one entry, without a struct
	 * that ends in a flexible array member inside another struct. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} buf = { .hdr.nmsrs = 1 };
	struct kvm_msr_entry *e = &buf.hdr.entries[0];

	e->index = MSR_K7_HWCR;
	if (!msr_known(vcpu->vm->msrs, MSR_K7_HWCR) ||
	    ioctl(vcpu->fd, KVM_GET_MSRS, &buf) != 1)
		return;
	e->data |= HWCR_TSC_FREQ_SEL;
	if (ioctl(vcpu->fd, KVM_SET_MSRS, &buf) != 1)
		debug("vCPU %u: KVM refuses HWCR.TscFreqSel", vcpu->id);
}

static void setup_fpu(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		die_errno("KVM_SET_FPU on vCPU %u", vcpu->id);
}

static void set_lvt_mode(struct kvm_lapic_state *lapic, int reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, &lapic->regs[reg], sizeof(v));
	v = (v & ~0x700U) | (mode << 8);
	memcpy(&lapic->regs[reg], &v, sizeof(v));
}

static void setup_lapic(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		die_errno("KVM_GET_LAPIC on vCPU %u", vcpu->id);
	set_lvt_mode(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	set_lvt_mode(&lapic, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		die_errno("KVM_SET_LAPIC on vCPU %u", vcpu->id);
}

void x86_cpu_setup(struct vcpu *vcpu)
{
	setup_cpuid(vcpu);
	setup_msrs(vcpu);
	setup_amd_hwcr(vcpu);
	setup_fpu(vcpu);
	setup_lapic(vcpu);
}
