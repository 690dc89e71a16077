/*
 * devbench blk: virtio-blk on a raw or qcow2 image, through its block
 * layer and I/O engine, with QD requests kept in flight for SECONDS. Each
 * request is header, one data buffer (up to 1 MiB, contiguous in guest
 * memory), status; sequential requests walk the disk from 0 and wrap,
 * random ones are aligned to their size, uniform over the disk, from a
 * fixed seed.
 *
 *   blk FILE read|write|randread|randwrite BS QD direct|buffered
 *       uring|sync SECONDS [raw|qcow2]
 */
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devbench.h"
#include "devices/virtio_blk.h"

#define MAX_QD 64
#define PER_SLOT 3
#define MAX_BS (1U << 20)

struct slot {
	uint64_t hdr, data, status;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t next_offset(bool rnd, uint64_t *seq, uint64_t bs, uint64_t size)
{
	uint64_t off;

	if (rnd)
		return rng() % (size / bs) * bs;
	off = *seq;
	*seq = off + bs >= size / bs * bs ? 0 : off + bs;
	return off;
}

static void post(struct vdriver *d, unsigned int i, const struct slot *s,
		 bool write, uint64_t off, uint32_t bs)
{
	struct virtio_blk_outhdr *h = vdriver_ptr(d, s->hdr);
	struct vdriver_buf b[3] = {
		{ s->hdr, sizeof(*h) },
		{ s->data, bs },
		{ s->status, 1 },
	};

	h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = off / 512;
	bench_post(d, 0, i, PER_SLOT, b, write ? 2 : 1, write ? 1 : 2);
}

int bench_blk(int argc, char **argv)
{
	struct blk_options o = { .discard = true };
	static struct slot slots[MAX_QD];
	uint64_t seq = 0, done = 0, size;
	struct bench_clock clk;
	struct virtio_blk *vb;
	unsigned int qd, i;
	struct vdriver d;
	bool write, rnd;
	double secs, t0;
	char err[256];
	uint32_t bs;

	if (argc != 7 && argc != 8)
		bench_fail(
			"usage: blk FILE read|write|randread|randwrite BS QD "
			"direct|buffered uring|sync SECONDS [raw|qcow2]");
	write = strstr(argv[1], "write") != NULL;
	rnd = !strncmp(argv[1], "rand", 4);
	bs = (uint32_t)strtoul(argv[2], NULL, 0);
	qd = (unsigned int)strtoul(argv[3], NULL, 0);
	o.path = argv[0];
	o.nocache = !strcmp(argv[4], "direct");
	o.engine =
		!strcmp(argv[5], "sync") ? BLK_ENGINE_SYNC : BLK_ENGINE_URING;
	secs = strtod(argv[6], NULL);
	o.format = BLK_FORMAT_RAW;
	if (argc == 8 && !strcmp(argv[7], "qcow2"))
		o.format = BLK_FORMAT_QCOW2;
	if (!bs || bs % 4096 || bs > MAX_BS || !qd || qd > MAX_QD ||
	    !(secs > 0))
		bench_fail("blk: BS 4 KiB..1 MiB in 4 KiB steps, QD 1..%u, "
			   "SECONDS > 0",
			   MAX_QD);
	if (vdriver_init(&d, (uint64_t)MAX_QD * MAX_BS + (64ULL << 20)))
		bench_fail("blk: guest memory");
	if (virtio_blk_init(&vb, "virtio-blk@bench", &d.mem, &o, 1, err,
			    sizeof(err)))
		bench_fail("blk: %s", err);
	size = virtio_blk_backend(vb)->size;
	if (size < bs)
		bench_fail("blk: the disk is smaller than one request");
	vdriver_attach(&d, virtio_blk_dev(vb));
	if (vdriver_start(&d, ~0ULL, 0) <= 0)
		bench_fail("blk: the device did not start");
	if (qd * PER_SLOT > d.q[0].size)
		bench_fail("blk: QD %u does not fit a queue of %u", qd,
			   d.q[0].size);
	for (i = 0; i < qd; i++) {
		slots[i].hdr = vdriver_alloc(&d, 16, 16);
		slots[i].status = vdriver_alloc(&d, 1, 1);
		slots[i].data = vdriver_alloc(&d, bs, 4096);
		if (!slots[i].hdr || !slots[i].data || !slots[i].status)
			bench_fail("blk: guest memory");
		bench_fill_random(vdriver_ptr(&d, slots[i].data), bs);
	}
	bench_start(&clk);
	t0 = clk.t0;
	for (i = 0; i < qd; i++)
		post(&d, i, &slots[i], write, next_offset(rnd, &seq, bs, size),
		     bs);
	vdriver_kick(&d, 0);
	while (bench_now() - t0 < secs) {
		uint16_t head, old;
		uint32_t len;
		uint8_t status;

		if (bench_used(&d, 0, &head, &len, 10000) != 1)
			bench_fail("blk: no answer within 10 s");
		i = head / PER_SLOT;
		if (head % PER_SLOT || i >= qd)
			bench_fail("blk: used head %u was never posted", head);
		status = *(uint8_t *)vdriver_ptr(&d, slots[i].status);
		if (status != VIRTIO_BLK_S_OK)
			bench_fail("blk: request failed with status %u",
				   status);
		done++;
		old = d.q[0].avail_idx;
		post(&d, i, &slots[i], write, next_offset(rnd, &seq, bs, size),
		     bs);
		bench_kick(&d, 0, old);
	}
	/* What is still in flight completes, and counts. */
	for (i = 0; i < qd; i++) {
		uint16_t head;
		uint32_t len;

		if (bench_used(&d, 0, &head, &len, 10000) != 1)
			bench_fail("blk: no answer within 10 s");
		done++;
	}
	bench_stop(&clk);
	bench_print(&clk, done, done * bs, ", \"format\": \"%s\"",
		    virtio_blk_backend(vb)->format->name);
	virtio_blk_destroy(vb);
	vdriver_exit(&d);
	return 0;
}
