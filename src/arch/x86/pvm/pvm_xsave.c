/*
 * xsave/xsaveopt/xrstor emulation; see pvm_xsave.h.
 *
 * The vCPU's extended state is read with KVM_GET_XSAVE(2) into a "kernel
 * buffer" in the standard format; xsave copies the requested components
 * from it to the guest, xrstor copies them from the guest into it and hands
 * it back with KVM_SET_XSAVE. SDM Vol 1 §13.7 (XSAVE) and §13.8.1 (standard
 * form of XRSTOR) are the rules; the legacy region layout is FXSAVE's
 * (SDM Vol 2 FXSAVE, tables 3-46/3-47).
 *
 * Approximations, all legal or unobservable for a guest kernel:
 *   - xsaveopt saves like xsave (its optimisations are optional);
 *   - XINUSE is taken from the buffer's XSTATE_BV, as KVM reports it;
 *   - without REX.W the x87 FCS/FDS selectors are stored as 0, as CPUs
 *     that deprecate them do (CPUID.(EAX=07H,ECX=0):EBX[13]);
 *   - the compacted format (XCOMP_BV[63]) gets #GP(0): CPUs with XSAVEC
 *     would accept it, but guest kernels restore compacted state with
 *     xrstors, never xrstor;
 *   - XFD (AMX) and the alignment-check (#AC) variants are not modelled.
 */
#include "arch/x86/pvm/pvm_xsave.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/pvm/pvm_host.h"
#include "core/vcpu.h"

#define LEG_FIP 8
#define LEG_FDP 16
#define LEG_X87_HEAD 24 /* FCW..FDP */
#define LEG_MXCSR 24
#define LEG_MXCSR_MASK 28
#define LEG_ST 32
#define LEG_ST_LEN 128
#define LEG_XMM 160
#define LEG_XMM_LEN 256
#define X87_FCW_DEFAULT 0x037f
#define KVM_XSAVE_LEN 4096

uint64_t pvm_xsave_extent(const struct pvm_xsave_layout *layout, uint64_t mask)
{
	uint64_t end = PVM_XSAVE_MIN;
	unsigned int i;

	if (mask >> PVM_XSAVE_NR)
		return 0;
	for (i = 2; i < PVM_XSAVE_NR; i++) {
		uint64_t comp_end;

		if (!(mask & (1ULL << i)))
			continue;
		if (!(layout->supported & (1ULL << i)) || !layout->size[i] ||
		    layout->offset[i] < PVM_XSAVE_MIN)
			return 0;
		comp_end = (uint64_t)layout->offset[i] + layout->size[i];
		if (comp_end > end)
			end = comp_end;
	}
	return end;
}

static uint64_t load_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void store_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* FIP/FDP: 64-bit offsets (REX.W) or 32-bit offset + selector (table 3-47). */
static void x87_head_to_32(uint8_t *head)
{
	uint64_t fip = load_u64(head + LEG_FIP), fdp = load_u64(head + LEG_FDP);

	store_u64(head + LEG_FIP, (uint32_t)fip);
	store_u64(head + LEG_FDP, (uint32_t)fdp);
}

static void x87_head_to_64(uint8_t *head)
{
	uint32_t fip, fdp;

	memcpy(&fip, head + LEG_FIP, 4);
	memcpy(&fdp, head + LEG_FDP, 4);
	store_u64(head + LEG_FIP, fip);
	store_u64(head + LEG_FDP, fdp);
}

int pvm_xsave_save(const struct pvm_xsave_layout *layout, const uint8_t *kbuf,
		   size_t klen, uint64_t rfbm, bool rex_w,
		   const struct pvm_area *area)
{
	uint64_t extent = pvm_xsave_extent(layout, rfbm), bv;
	unsigned int i;

	if (!extent || extent > klen || extent > area->len)
		return -EINVAL;

	if (rfbm & PVM_XFEATURE_FP) {
		uint8_t head[LEG_X87_HEAD];

		memcpy(head, kbuf, sizeof(head));
		if (!rex_w)
			x87_head_to_32(head);
		pvm_area_write(area, 0, head, sizeof(head));
		pvm_area_write(area, LEG_ST, kbuf + LEG_ST, LEG_ST_LEN);
	}
	/* MXCSR goes with SSE or AVX state (SDM Vol 1 §13.7). */
	if (rfbm & (PVM_XFEATURE_SSE | PVM_XFEATURE_YMM)) {
		pvm_area_write(area, LEG_MXCSR, kbuf + LEG_MXCSR, 4);
		pvm_area_write(area, LEG_MXCSR_MASK, &layout->mxcsr_mask, 4);
	}
	if (rfbm & PVM_XFEATURE_SSE)
		pvm_area_write(area, LEG_XMM, kbuf + LEG_XMM, LEG_XMM_LEN);
	for (i = 2; i < PVM_XSAVE_NR; i++) {
		if (rfbm & (1ULL << i))
			pvm_area_write(area, layout->offset[i],
				       kbuf + layout->offset[i], layout->size[i]);
	}

	pvm_area_read(area, PVM_XSAVE_HDR, &bv, sizeof(bv));
	bv = (bv & ~rfbm) | (load_u64(kbuf + PVM_XSAVE_HDR) & rfbm);
	pvm_area_write(area, PVM_XSAVE_HDR, &bv, sizeof(bv));
	return 0;
}

int pvm_xsave_check_header(const uint8_t *hdr, uint64_t xcr0,
			   uint64_t *xstate_bv, struct pvm_exc *exc)
{
	uint64_t bv = load_u64(hdr), xcomp_bv = load_u64(hdr + 8);

	/* Bytes 23:8 must be zero and XSTATE_BV a subset of XCR0 (§13.8.1). */
	if (xcomp_bv || load_u64(hdr + 16) || (bv & ~xcr0))
		return pvm_exc_raise(exc, PVM_VEC_GP, true, 0);
	*xstate_bv = bv;
	return 0;
}

int pvm_xsave_restore(const struct pvm_xsave_layout *layout, uint8_t *kbuf,
		      size_t klen, uint64_t rfbm, uint64_t xstate_bv,
		      bool rex_w, const struct pvm_area *area,
		      struct pvm_exc *exc)
{
	uint64_t load = rfbm & xstate_bv, kextent, aextent, bv;
	bool mxcsr_too = rfbm & (PVM_XFEATURE_SSE | PVM_XFEATURE_YMM);
	uint32_t mxcsr = PVM_MXCSR_DEFAULT;
	unsigned int i;

	kextent = pvm_xsave_extent(layout, rfbm);
	aextent = pvm_xsave_extent(layout, load);
	if (!kextent || kextent > klen || !aextent || aextent > area->len)
		return -EINVAL;

	/* The standard form loads MXCSR whatever XSTATE_BV says (§13.8.1). */
	if (mxcsr_too) {
		pvm_area_read(area, LEG_MXCSR, &mxcsr, sizeof(mxcsr));
		if (mxcsr & ~layout->mxcsr_mask)
			return pvm_exc_raise(exc, PVM_VEC_GP, true, 0);
	}

	if (load & PVM_XFEATURE_FP) {
		uint8_t head[LEG_X87_HEAD];

		pvm_area_read(area, 0, head, sizeof(head));
		if (!rex_w)
			x87_head_to_64(head);
		memcpy(kbuf, head, sizeof(head));
		pvm_area_read(area, LEG_ST, kbuf + LEG_ST, LEG_ST_LEN);
	} else if (rfbm & PVM_XFEATURE_FP) {
		uint16_t fcw = X87_FCW_DEFAULT;

		memset(kbuf, 0, LEG_X87_HEAD);
		memcpy(kbuf, &fcw, sizeof(fcw));
		memset(kbuf + LEG_ST, 0, LEG_ST_LEN);
	}
	if (mxcsr_too)
		memcpy(kbuf + LEG_MXCSR, &mxcsr, sizeof(mxcsr));
	if (load & PVM_XFEATURE_SSE)
		pvm_area_read(area, LEG_XMM, kbuf + LEG_XMM, LEG_XMM_LEN);
	else if (rfbm & PVM_XFEATURE_SSE)
		memset(kbuf + LEG_XMM, 0, LEG_XMM_LEN);
	/* Every initial state of components 2 and up is all zeroes. */
	for (i = 2; i < PVM_XSAVE_NR; i++) {
		uint8_t *comp = kbuf + layout->offset[i];

		if (load & (1ULL << i))
			pvm_area_read(area, layout->offset[i], comp, layout->size[i]);
		else if (rfbm & (1ULL << i))
			memset(comp, 0, layout->size[i]);
	}

	bv = (load_u64(kbuf + PVM_XSAVE_HDR) & ~rfbm) | load;
	/*
	 * The kernel takes MXCSR from the buffer only when SSE or AVX is
	 * marked in use; a non-default MXCSR with both in their initial
	 * state is kept by marking SSE in use (its registers are zero in
	 * the buffer, so they stay as they are).
	 */
	if (mxcsr_too && mxcsr != PVM_MXCSR_DEFAULT &&
	    !(bv & (PVM_XFEATURE_SSE | PVM_XFEATURE_YMM)))
		bv |= PVM_XFEATURE_SSE;
	store_u64(kbuf + PVM_XSAVE_HDR, bv);
	return 0;
}

static int xsave_get_xcr0(struct vcpu *vcpu, uint64_t *xcr0)
{
	struct kvm_xcrs xcrs;
	unsigned int i;

	memset(&xcrs, 0, sizeof(xcrs));
	if (ioctl(vcpu->fd, KVM_GET_XCRS, &xcrs) < 0)
		return -errno;
	for (i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
		if (xcrs.xcrs[i].xcr == 0) {
			*xcr0 = xcrs.xcrs[i].value;
			return 0;
		}
	}
	return -ENOSYS;
}

/*
 * The vCPU's state in a malloc'ed buffer of *len bytes: KVM_GET_XSAVE2 and
 * the size KVM_CAP_XSAVE2 reports when that is larger than struct
 * kvm_xsave (dynamic features such as AMX), else KVM_GET_XSAVE.
 */
static uint8_t *xsave_get_state(struct vcpu *vcpu, size_t *len, int *err)
{
	int size = vcpu->vm ? ioctl(vcpu->vm->vm_fd, KVM_CHECK_EXTENSION,
				    KVM_CAP_XSAVE2)
			    : 0;
	uint8_t *buf;

	*len = size > KVM_XSAVE_LEN ? (size_t)size : KVM_XSAVE_LEN;
	buf = calloc(1, *len);
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	if (ioctl(vcpu->fd, *len > KVM_XSAVE_LEN ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
		  buf) < 0) {
		*err = -errno;
		free(buf);
		return NULL;
	}
	return buf;
}

static int xsave_do_save(struct vcpu *vcpu, const struct pvm_mmu *mmu,
			 uint64_t la, uint64_t rfbm, bool rex_w,
			 struct pvm_exc *exc)
{
	const struct pvm_xsave_layout *layout = &pvm_host_cpu()->xsave;
	uint64_t extent = pvm_xsave_extent(layout, rfbm);
	struct pvm_area area;
	uint8_t *kbuf;
	size_t klen;
	int ret;

	if (!extent)
		return -ENOSYS;
	ret = pvm_area_map(&area, &vcpu->vm->mem, mmu, la, extent, true, exc);
	if (ret)
		return ret;
	kbuf = xsave_get_state(vcpu, &klen, &ret);
	if (!kbuf)
		return ret;
	ret = pvm_xsave_save(layout, kbuf, klen, rfbm, rex_w, &area);
	free(kbuf);
	return ret;
}

static int xsave_do_restore(struct vcpu *vcpu, const struct pvm_mmu *mmu,
			    uint64_t la, uint64_t xcr0, uint64_t rfbm,
			    bool rex_w, struct pvm_exc *exc)
{
	const struct pvm_xsave_layout *layout = &pvm_host_cpu()->xsave;
	const struct guest_mem *mem = &vcpu->vm->mem;
	uint8_t hdr[PVM_XSAVE_MIN - PVM_XSAVE_HDR];
	uint64_t xstate_bv, extent;
	struct pvm_area area;
	uint8_t *kbuf;
	size_t klen;
	int ret;

	ret = pvm_area_map(&area, mem, mmu, la, PVM_XSAVE_MIN, false, exc);
	if (ret)
		return ret;
	pvm_area_read(&area, PVM_XSAVE_HDR, hdr, sizeof(hdr));
	ret = pvm_xsave_check_header(hdr, xcr0, &xstate_bv, exc);
	if (ret)
		return ret;
	extent = pvm_xsave_extent(layout, rfbm & xstate_bv);
	if (!extent)
		return -ENOSYS;
	ret = pvm_area_map(&area, mem, mmu, la, extent, false, exc);
	if (ret)
		return ret;

	kbuf = xsave_get_state(vcpu, &klen, &ret);
	if (!kbuf)
		return ret;
	ret = pvm_xsave_restore(layout, kbuf, klen, rfbm, xstate_bv, rex_w,
				&area, exc);
	if (!ret && ioctl(vcpu->fd, KVM_SET_XSAVE, kbuf) < 0)
		ret = -errno;
	free(kbuf);
	return ret;
}

int pvm_xsave_check_usable(const struct pvm_mmu *mmu, struct pvm_exc *exc)
{
	if (!(mmu->cr4 & PVM_CR4_OSXSAVE))
		return pvm_exc_raise(exc, PVM_VEC_UD, false, 0);
	if (mmu->cr0 & PVM_CR0_TS)
		return pvm_exc_raise(exc, PVM_VEC_NM, false, 0);
	return 0;
}

int pvm_xsave_emulate(struct vcpu *vcpu, const struct pvm_insn *insn,
		      const struct pvm_mmu *mmu, uint64_t la,
		      struct pvm_exc *exc)
{
	const struct kvm_regs *regs = &vcpu->run->s.regs.regs;
	bool rex_w = insn->rex & 0x8;
	uint64_t xcr0, rfbm;
	int ret;

	ret = pvm_xsave_check_usable(mmu, exc);
	if (ret)
		return ret;
	if (la & 63)
		return pvm_exc_raise(exc, PVM_VEC_GP, true, 0);
	if (!vcpu->vm)
		return -EINVAL;
	ret = xsave_get_xcr0(vcpu, &xcr0);
	if (ret)
		return ret;
	rfbm = xcr0 & ((regs->rdx << 32) | (uint32_t)regs->rax);

	if (insn->op == PVM_INSN_XRSTOR)
		return xsave_do_restore(vcpu, mmu, la, xcr0, rfbm, rex_w, exc);
	return xsave_do_save(vcpu, mmu, la, rfbm, rex_w, exc);
}
