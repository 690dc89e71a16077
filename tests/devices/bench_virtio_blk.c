/*
 * The virtio-blk device path as a benchmark: the host-side driver (vdriver)
 * keeps @qd requests in flight against the real device and backend on a
 * file, for a few seconds, and prints one JSON line: requests and bytes a
 * second, and the CPU time the device side spent per GiB moved (the
 * process's CPU time less the driver thread's own: the device's I/O
 * thread, and io_uring's workers). tools/bench/blk.py runs it beside fio
 * on the same file. Not a test: it checks only that every request is
 * answered OK.
 *
 *   bench_virtio_blk FILE RW BS QD CACHE ENGINE SECONDS
 *   RW: read, write, randread, randwrite; CACHE: direct, buffered;
 *   ENGINE: uring, sync
 */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <time.h>

#include "devices/virtio_blk.h"
#include "vdriver.h"

#define MAX_QD 128
#define SEG 65536 /* data descriptor size: a 1 MiB request is 16 of them */

struct slot {
	uint64_t hdr, data, status;
	uint16_t head;
};

static double now(clockid_t clk)
{
	struct timespec t;

	clock_gettime(clk, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double process_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static uint64_t next_offset(bool rnd, uint64_t *seq, uint64_t bs, uint64_t size)
{
	uint64_t off;

	if (rnd)
		return ((uint64_t)random() * 4096 + (uint64_t)random()) %
		       (size / bs) * bs;
	off = *seq;
	*seq = (off + bs) % (size / bs * bs);
	return off;
}

static void post(struct vdriver *d, struct slot *s, bool write, uint64_t off,
		 uint32_t bs)
{
	struct vdriver_buf b[2 + (1 << 20) / SEG];
	struct virtio_blk_outhdr *h = vdriver_ptr(d, s->hdr);
	unsigned int n = 0, i;

	h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = off / 512;
	b[n++] = (struct vdriver_buf){ s->hdr, 16 };
	for (i = 0; i * SEG < bs; i++)
		b[n++] = (struct vdriver_buf){ s->data + (uint64_t)i * SEG,
					       bs - i * SEG < SEG ?
						       bs - i * SEG :
						       SEG };
	b[n++] = (struct vdriver_buf){ s->status, 1 };
	if (write)
		s->head = vdriver_post(d, 0, b, n - 1, b + n - 1, 1, true);
	else
		s->head = vdriver_post(d, 0, b, 1, b + 1, n - 1, true);
}

int main(int argc, char **argv)
{
	struct blk_options o = { .discard = true };
	static struct slot slots[MAX_QD];
	double t0, cpu0, main0, t, cpu, ops_s, gib;
	uint64_t seq = 0, done = 0, size;
	unsigned int qd, i;
	struct virtio_blk *vb;
	struct vdriver d;
	bool write, rnd;
	uint32_t bs;
	double secs;
	char err[256];

	if (argc != 8) {
		fprintf(stderr,
			"usage: %s FILE read|write|randread|randwrite "
			"BS QD direct|buffered uring|sync SECONDS\n",
			argv[0]);
		return 2;
	}
	write = strstr(argv[2], "write") != NULL;
	rnd = !strncmp(argv[2], "rand", 4);
	bs = (uint32_t)strtoul(argv[3], NULL, 0);
	qd = (unsigned int)strtoul(argv[4], NULL, 0);
	o.path = argv[1];
	o.nocache = !strcmp(argv[5], "direct");
	o.engine =
		!strcmp(argv[6], "sync") ? BLK_ENGINE_SYNC : BLK_ENGINE_URING;
	secs = strtod(argv[7], NULL);
	if (!bs || bs % 512 || bs > (1 << 20) || !qd || qd > MAX_QD) {
		fprintf(stderr, "BS: 512..1 MiB in sectors; QD: 1..%u\n",
			MAX_QD);
		return 2;
	}
	if (vdriver_init(&d, 512ULL << 20))
		return 1;
	if (virtio_blk_init(&vb, "virtio-blk@bench", &d.mem, &o, 1, err,
			    sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	size = virtio_blk_backend(vb)->size;
	vdriver_attach(&d, virtio_blk_dev(vb));
	if (vdriver_start(&d, ~0ULL, 0) <= 0)
		return 1;
	srandom(42);
	for (i = 0; i < qd; i++) {
		slots[i].hdr = vdriver_alloc(&d, 16, 16);
		slots[i].data = vdriver_alloc(&d, bs, 4096);
		slots[i].status = vdriver_alloc(&d, 1, 1);
		if (getrandom(vdriver_ptr(&d, slots[i].data),
			      bs < 256 ? bs : 256, 0) < 0)
			return 1;
	}
	t0 = now(CLOCK_MONOTONIC);
	cpu0 = process_cpu();
	main0 = now(CLOCK_THREAD_CPUTIME_ID);
	for (i = 0; i < qd; i++)
		post(&d, &slots[i], write, next_offset(rnd, &seq, bs, size),
		     bs);
	vdriver_kick(&d, 0);
	while (now(CLOCK_MONOTONIC) - t0 < secs) {
		uint16_t head;
		uint32_t len;

		if (vdriver_wait_used(&d, 0, &head, &len, 10000) != 1) {
			fprintf(stderr, "no answer within 10 s\n");
			return 1;
		}
		for (i = 0; i < qd && slots[i].head != head; i++)
			;
		if (i == qd || *(uint8_t *)vdriver_ptr(&d, slots[i].status)) {
			fprintf(stderr, "request failed\n");
			return 1;
		}
		done++;
		post(&d, &slots[i], write, next_offset(rnd, &seq, bs, size),
		     bs);
		vdriver_kick(&d, 0);
	}
	t = now(CLOCK_MONOTONIC) - t0;
	cpu = process_cpu() - cpu0 - (now(CLOCK_THREAD_CPUTIME_ID) - main0);
	ops_s = (double)done / t;
	gib = (double)done * bs / (1 << 30);
	printf("{\"iops\": %.0f, \"mib_s\": %.1f, \"cpu_s_per_gib\": %.3f, "
	       "\"requests\": %llu, \"seconds\": %.2f}\n",
	       ops_s, ops_s * bs / (1 << 20), gib > 0 ? cpu / gib : 0.0,
	       (unsigned long long)done, t);
	virtio_blk_destroy(vb);
	vdriver_exit(&d);
	return 0;
}
