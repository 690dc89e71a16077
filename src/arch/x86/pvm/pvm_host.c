/*
 * Host detection and host CPU facts for the PVM fix-ups. The xsave layout
 * comes from CPUID run in khyve itself: KVM_GET_XSAVE uses the host's leaf
 * 0xD offsets (linux/kvm.h, struct kvm_xsave), and the guest's CPUID on PVM
 * is a filtered copy of the host's anyway (PVM.md).
 */
#include "arch/x86/pvm/pvm_fixup.h"
#include "arch/x86/pvm/pvm_host.h"

#include <cpuid.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define CPUID1_ECX_VMX (1u << 5)
#define CPUID80000001_ECX_SVM (1u << 2)

bool pvm_host_detect(void)
{
	unsigned int a, b, c, d;
	bool vmx = false, svm = false;

	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return true;
	if (__get_cpuid(1, &a, &b, &c, &d))
		vmx = c & CPUID1_ECX_VMX;
	if (__get_cpuid(0x80000001, &a, &b, &c, &d))
		svm = c & CPUID80000001_ECX_SVM;
	return !vmx && !svm;
}

static struct pvm_host_cpu host_cpu;
static pthread_once_t host_cpu_once = PTHREAD_ONCE_INIT;

/* MXCSR_MASK as fxsave reports it; 0 there means 0xFFBF (SDM Vol 1 §11.6.6). */
static uint32_t host_mxcsr_mask(void)
{
	uint8_t area[512] __attribute__((aligned(16)));
	uint32_t mask;

	memset(area, 0, sizeof(area));
	asm volatile("fxsave64 %0" : "=m"(area));
	memcpy(&mask, area + 28, sizeof(mask));
	return mask ? mask : 0xffbf;
}

static void host_cpu_probe(void)
{
	struct pvm_xsave_layout *x = &host_cpu.xsave;
	unsigned int a, b, c, d, i;

	host_cpu.maxphyaddr = 36;
	if (__get_cpuid(0x80000008, &a, &b, &c, &d))
		host_cpu.maxphyaddr = a & 0xff;

	x->mxcsr_mask = host_mxcsr_mask();
	if (__get_cpuid_max(0, NULL) < 0xd)
		return;
	__cpuid_count(0xd, 0, a, b, c, d);
	x->supported = ((uint64_t)d << 32) | a;
	for (i = 2; i < PVM_XSAVE_NR; i++) {
		if (!(x->supported & (1ULL << i)))
			continue;
		__cpuid_count(0xd, i, a, b, c, d);
		x->size[i] = a;
		x->offset[i] = b;
	}
}

const struct pvm_host_cpu *pvm_host_cpu(void)
{
	pthread_once(&host_cpu_once, host_cpu_probe);
	return &host_cpu;
}
