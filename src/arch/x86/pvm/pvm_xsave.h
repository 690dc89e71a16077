/*
 * xsave, xsaveopt and xrstor (standard format) emulated through the
 * vCPU's FPU state as KVM_GET_XSAVE / KVM_SET_XSAVE present it: a buffer in
 * the standard (non-compacted) XSAVE layout with the host's CPUID leaf 0xD
 * offsets. The layout logic is pure, over a "kernel buffer" and a mapped
 * guest area, so it is unit-tested without a vCPU.
 */
#ifndef KHYVE_PVM_XSAVE_H
#define KHYVE_PVM_XSAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/pvm/pvm_area.h"
#include "arch/x86/pvm/pvm_insn.h"

#define PVM_XSAVE_NR 63       /* state components 0..62 */
#define PVM_XSAVE_HDR 512     /* offset of the XSAVE header */
#define PVM_XSAVE_MIN 576     /* legacy region + header */
#define PVM_XFEATURE_FP (1ULL << 0)
#define PVM_XFEATURE_SSE (1ULL << 1)
#define PVM_XFEATURE_YMM (1ULL << 2)
#define PVM_MXCSR_DEFAULT 0x1f80

struct pvm_xsave_layout {
	uint64_t supported;             /* CPUID.(EAX=0DH,ECX=0):EDX:EAX */
	uint32_t offset[PVM_XSAVE_NR];  /* standard-format offsets, i >= 2 */
	uint32_t size[PVM_XSAVE_NR];
	uint32_t mxcsr_mask;            /* the CPU's MXCSR_MASK, never 0 */
};

struct vcpu;
struct pvm_mmu;

/*
 * Bytes of the standard-format area that hold the components in @mask
 * (at least the 576 of legacy region and header), or 0 when @mask names a
 * component the layout does not know.
 */
uint64_t pvm_xsave_extent(const struct pvm_xsave_layout *layout, uint64_t mask);
/*
 * xsave/xsaveopt: write the components in @rfbm from the kernel buffer
 * @kbuf (@klen bytes) to the guest @area, and their XINUSE bits (the
 * buffer's XSTATE_BV) into the area's XSTATE_BV, leaving its other bits and
 * the rest of the header alone (SDM Vol 1 §13.7). @rex_w selects the
 * 64-bit x87 FIP/FDP format. 0, or -EINVAL when a component lies outside
 * @kbuf or @area.
 */
int pvm_xsave_save(const struct pvm_xsave_layout *layout, const uint8_t *kbuf,
		   size_t klen, uint64_t rfbm, bool rex_w,
		   const struct pvm_area *area);
/*
 * xrstor, header check: @hdr is the 64-byte XSAVE header read from guest
 * memory. 0 with *xstate_bv set when it is a valid standard-format header
 * for @xcr0; -EFAULT with #GP(0) in *exc otherwise, including the compacted
 * format (XCOMP_BV != 0), which is not emulated (SDM Vol 1 §13.8.1).
 */
int pvm_xsave_check_header(const uint8_t *hdr, uint64_t xcr0,
			   uint64_t *xstate_bv, struct pvm_exc *exc);
/*
 * xrstor: load into @kbuf the components in @rfbm whose @xstate_bv bit is
 * set from @area and put the others in their initial state; MXCSR is
 * loaded whenever RFBM has SSE or AVX, #GP(0) if it sets reserved bits.
 * Nothing in @kbuf changes unless the result is 0. -EFAULT with *exc,
 * -EINVAL when a component lies outside @kbuf or @area.
 */
int pvm_xsave_restore(const struct pvm_xsave_layout *layout, uint8_t *kbuf,
		      size_t klen, uint64_t rfbm, uint64_t xstate_bv,
		      bool rex_w, const struct pvm_area *area,
		      struct pvm_exc *exc);
/*
 * The faults that come before any memory access (SDM Vol 3 §6.9 priority
 * 9 over 10): #UD without CR4.OSXSAVE, #NM with CR0.TS. 0 or -EFAULT.
 */
int pvm_xsave_check_usable(const struct pvm_mmu *mmu, struct pvm_exc *exc);
/*
 * Emulate the decoded xsave/xsaveopt/xrstor @insn of @vcpu with its operand
 * at linear address @la: #UD/#NM/#GP/#PF as the CPU would, XCR0 from
 * KVM_GET_XCRS, the state through KVM_GET_XSAVE(2)/KVM_SET_XSAVE. RIP is
 * left to the caller. 0, -EFAULT with *exc, or -errno (not handled).
 */
int pvm_xsave_emulate(struct vcpu *vcpu, const struct pvm_insn *insn,
		      const struct pvm_mmu *mmu, uint64_t la,
		      struct pvm_exc *exc);

#endif
