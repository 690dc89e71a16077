/*
 * Per-vCPU x86 set-up done once at creation: CPUID (the host's supported set,
 * with this vCPU's APIC ID, the topology of -c N and the hypervisor bit),
 * the MSRs a Linux guest expects firmware to have set, the FPU's reset
 * state, and the LAPIC's LINT0/LINT1 wiring (ExtINT and NMI, as a PC's
 * firmware leaves them).
 */
#ifndef KHYVE_ARCH_X86_CPU_SETUP_H
#define KHYVE_ARCH_X86_CPU_SETUP_H

#include <linux/kvm.h>

struct vcpu;

/* Set CPUID, MSRs, FPU and LAPIC of a freshly created vCPU; dies on error. */
void x86_cpu_setup(struct vcpu *vcpu);
/*
 * Adjust a copy of KVM's supported CPUID for vCPU @id of @nr_vcpus
 * (pure function, unit-tested).
 */
void x86_cpuid_adjust(struct kvm_cpuid2 *cpuid, unsigned int id,
		      unsigned int nr_vcpus, int x2apic);

#endif
