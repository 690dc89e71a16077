/*
 * libFuzzer target for the virtqueue walk: the input becomes the guest's
 * descriptor table, avail ring and an indirect-table area in guest RAM;
 * the device pops every chain and pushes it back. Any crash, out-of-bounds
 * access (ASan) or hang is a bug in src/virtio/virtqueue.c.
 */
#include <stdint.h>
#include <string.h>

#include "virtio/virtqueue.h"

#define QSIZE 64
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define AREA_GPA 0x10000 /* where descriptors may point: 64 KiB */
#define AREA_LEN 0x10000

static struct guest_mem mem;
static struct vq_elem elem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtqueue vq;
	uint8_t *ram;
	size_t fixed = 16 * QSIZE + 6 + 2 * QSIZE;
	int i, r;

	if (!mem.host && guest_mem_init(&mem, 64ULL << 20))
		return 0;
	if (size < 2 + fixed)
		return 0;
	ram = guest_mem_ptr(&mem, 0, 0);
	memset(ram, 0, AREA_GPA + AREA_LEN);
	vq_init(&vq, &mem, 0, QSIZE);
	vq.size = 1u << (data[0] % 7); /* 1..64 */
	vq.indirect = data[1] & 1;
	vq.event_idx = data[1] & 2;
	vq.desc_gpa = DESC_GPA;
	vq.avail_gpa = AVAIL_GPA;
	vq.used_gpa = USED_GPA;
	memcpy(ram + DESC_GPA, data + 2, 16 * QSIZE);
	memcpy(ram + AVAIL_GPA, data + 2 + 16 * QSIZE, 6 + 2 * QSIZE);
	/* The avail index counts from 0: what the guest claims is there. */
	memcpy(ram + AREA_GPA, data + 2 + fixed,
	       size - 2 - fixed < AREA_LEN ? size - 2 - fixed : AREA_LEN);
	{
		/* vq_enable reads the current indices; start from zero. */
		uint16_t claimed;

		memcpy(&claimed, ram + AVAIL_GPA + 2, 2);
		memset(ram + AVAIL_GPA + 2, 0, 2);
		if (vq_enable(&vq))
			return 0;
		memcpy(ram + AVAIL_GPA + 2, &claimed, 2);
	}
	for (i = 0; i < 2 * QSIZE; i++) {
		r = vq_pop(&vq, &elem);
		if (r <= 0)
			break;
		/* Touch every buffer the walk handed out. */
		memset(elem.iov[0].iov_base, 0xa5,
		       elem.out_num + elem.in_num ? elem.iov[0].iov_len : 0);
		vq_push(&vq, elem.head, (uint32_t)elem.in_len);
		vq_should_notify(&vq);
	}
	vq_set_notification(&vq, true);
	return 0;
}
