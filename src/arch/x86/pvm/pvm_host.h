/* What khyve needs to know about the host CPU for the PVM fix-ups. */
#ifndef KHYVE_PVM_HOST_H
#define KHYVE_PVM_HOST_H

#include "arch/x86/pvm/pvm_xsave.h"

struct pvm_host_cpu {
	unsigned int maxphyaddr;        /* CPUID 0x80000008 EAX[7:0] */
	struct pvm_xsave_layout xsave;  /* CPUID leaf 0xD, fxsave's MXCSR_MASK */
};

/* Probed once (thread-safe), then constant. */
const struct pvm_host_cpu *pvm_host_cpu(void);

#endif
