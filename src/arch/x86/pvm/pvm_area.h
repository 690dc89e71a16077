/*
 * A guest linear range [la, la + len) made accessible page by page: each
 * page is translated through the guest's page tables and mapped to the host
 * pointer of its RAM, so multi-page operands (an xsave area) can be read
 * and written as one buffer once every page is known to be accessible.
 */
#ifndef KHYVE_PVM_AREA_H
#define KHYVE_PVM_AREA_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/pvm/pvm_walk.h"

#define PVM_AREA_MAX_PAGES 16
#define PVM_AREA_MAX_LEN ((PVM_AREA_MAX_PAGES - 1) * 4096ULL)

struct pvm_area_seg {
	uint8_t *host;
	uint32_t len;
};

struct pvm_area {
	uint64_t la;
	uint64_t len;
	unsigned int nr_segs;
	struct pvm_area_seg seg[PVM_AREA_MAX_PAGES];
};

/*
 * Translate every page of [la, la + len) for reading or (@write) writing.
 * 0 when all are RAM and accessible; -EFAULT with *exc for the first page
 * that faults; -ENXIO when a page (or a table) is not RAM; -E2BIG when len
 * is 0 or above PVM_AREA_MAX_LEN; other errors from pvm_walk_translate().
 */
int pvm_area_map(struct pvm_area *area, const struct guest_mem *mem,
		 const struct pvm_mmu *mmu, uint64_t la, uint64_t len,
		 bool write, struct pvm_exc *exc);
/*
 * Copy out of / into the mapped range at offset @off. The caller keeps
 * off + len within area->len; anything outside is silently left alone.
 */
void pvm_area_read(const struct pvm_area *area, uint64_t off, void *dst,
		   size_t len);
void pvm_area_write(const struct pvm_area *area, uint64_t off,
		    const void *src, size_t len);

#endif
