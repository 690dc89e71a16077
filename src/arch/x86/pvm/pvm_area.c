/*
 * Page-by-page mapping of a guest linear range; see pvm_area.h. All pages
 * are translated before the caller touches any byte, so an instruction
 * that faults on its last page has not written its first one.
 */
#include "arch/x86/pvm/pvm_area.h"

#include <string.h>

#define PAGE_SIZE 4096ULL

int pvm_area_map(struct pvm_area *area, const struct guest_mem *mem,
		 const struct pvm_mmu *mmu, uint64_t la, uint64_t len,
		 bool write, struct pvm_exc *exc)
{
	uint64_t off = 0;
	int ret;

	if (!len || len > PVM_AREA_MAX_LEN)
		return -E2BIG;
	area->la = la;
	area->len = len;
	area->nr_segs = 0;
	while (off < len) {
		uint64_t cur = la + off, gpa;
		uint64_t chunk = PAGE_SIZE - (cur & (PAGE_SIZE - 1));
		void *host;

		if (chunk > len - off)
			chunk = len - off;
		ret = pvm_walk_translate(mem, mmu, cur, write, &gpa, exc);
		if (ret)
			return ret;
		host = guest_mem_ptr(mem, gpa, chunk);
		if (!host)
			return -ENXIO;
		area->seg[area->nr_segs].host = host;
		area->seg[area->nr_segs].len = (uint32_t)chunk;
		area->nr_segs++;
		off += chunk;
	}
	return 0;
}

/* Host pointer of offset @off and how many bytes follow it in its page. */
static uint8_t *area_at(const struct pvm_area *area, uint64_t off,
			size_t *avail)
{
	uint64_t seg_start = 0;
	unsigned int i;

	for (i = 0; i < area->nr_segs; i++) {
		const struct pvm_area_seg *s = &area->seg[i];

		if (off < seg_start + s->len) {
			*avail = seg_start + s->len - off;
			return s->host + (off - seg_start);
		}
		seg_start += s->len;
	}
	return NULL;
}

void pvm_area_read(const struct pvm_area *area, uint64_t off, void *dst,
		   size_t len)
{
	uint8_t *out = dst;

	while (len) {
		size_t avail, n;
		const uint8_t *p = area_at(area, off, &avail);

		if (!p)
			return;
		n = avail < len ? avail : len;
		memcpy(out, p, n);
		out += n;
		off += n;
		len -= n;
	}
}

void pvm_area_write(const struct pvm_area *area, uint64_t off,
		    const void *src, size_t len)
{
	const uint8_t *in = src;

	while (len) {
		size_t avail, n;
		uint8_t *p = area_at(area, off, &avail);

		if (!p)
			return;
		n = avail < len ? avail : len;
		memcpy(p, in, n);
		in += n;
		off += n;
		len -= n;
	}
}
