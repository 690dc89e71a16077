/*
 * The device path as a benchmark (make bench, tools/bench/devices.py): the
 * tier-2 host-side virtio driver (tests/devices/vdriver) plays the guest
 * against a real device model and backend over memfd guest memory, with
 * no KVM, and each subcommand prints one JSON line with what it measured.
 * The same program also does the host's own version of some workloads
 * (the "host" subcommands), so that both sides run the same loop.
 *
 * The driver keeps its own descriptors: each request slot owns a fixed run
 * of descriptor indices (no allocation per request, so a run may last as
 * long as it likes), kicks only when the device asks for it (event-idx),
 * and waits for used buffers on the interrupt eventfds. CPU time is split
 * between the driver (this thread: the guest's share) and everything else
 * in the process (the device's I/O thread, the backend, io_uring workers:
 * khyve's share), from getrusage(RUSAGE_SELF) less this thread's
 * CLOCK_THREAD_CPUTIME_ID.
 *
 * Not a test: it checks only that the device answered each request with
 * success, and exits 1 (with a line on stderr) when it did not.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devbench.h"

void bench_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "devbench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

double bench_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double process_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

void bench_start(struct bench_clock *c)
{
	c->t0 = bench_now();
	c->proc0 = process_cpu();
	c->thread0 = thread_cpu();
}

void bench_stop(struct bench_clock *c)
{
	double proc = process_cpu() - c->proc0;

	c->seconds = bench_now() - c->t0;
	c->drv_cpu = thread_cpu() - c->thread0;
	c->dev_cpu = proc > c->drv_cpu ? proc - c->drv_cpu : 0;
}

void bench_print(const struct bench_clock *c, uint64_t ops, uint64_t bytes,
		 const char *extra_fmt, ...)
{
	va_list ap;

	printf("{\"seconds\": %.4f, \"ops\": %llu, \"bytes\": %llu, "
	       "\"dev_cpu\": %.4f, \"drv_cpu\": %.4f",
	       c->seconds, (unsigned long long)ops, (unsigned long long)bytes,
	       c->dev_cpu, c->drv_cpu);
	if (extra_fmt) {
		va_start(ap, extra_fmt);
		vprintf(extra_fmt, ap);
		va_end(ap);
	}
	printf("}\n");
	fflush(stdout);
}

void bench_fill_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);

		if (n < 0 && errno != EINTR)
			bench_fail("getrandom: %s", strerror(errno));
		if (n > 0)
			done += (size_t)n;
	}
}

/* --- the driver's side of a queue --- */

uint16_t bench_post(struct vdriver *d, unsigned int qi, unsigned int slot,
		    unsigned int per_slot, const struct vdriver_buf *b,
		    unsigned int n_out, unsigned int n_in)
{
	struct vdriver_queue *q = &d->q[qi];
	unsigned int n = n_out + n_in, i;
	uint16_t base = (uint16_t)(slot * per_slot);

	if (n == 0 || n > per_slot || base + per_slot > q->size)
		bench_fail("slot %u: %u buffers do not fit", slot, n);
	for (i = 0; i < n; i++) {
		struct vring_desc *desc = &q->desc[base + i];

		desc->addr = b[i].gpa;
		desc->len = b[i].len;
		desc->flags = (i >= n_out ? VRING_DESC_F_WRITE : 0) |
			      (i + 1 < n ? VRING_DESC_F_NEXT : 0);
		desc->next = (uint16_t)(base + i + 1);
	}
	vdriver_publish(d, qi, base);
	return base;
}

void bench_wait_irq(struct vdriver *d, unsigned int qa, unsigned int qb, int ms)
{
	struct pollfd p[2] = {
		{ .fd = d->irq_fd[qa], .events = POLLIN },
		{ .fd = d->irq_fd[qb], .events = POLLIN },
	};
	uint64_t v;
	int i;

	if (poll(p, 2, ms) <= 0)
		return;
	for (i = 0; i < 2; i++)
		if (p[i].revents & POLLIN && read(p[i].fd, &v, sizeof(v)) < 0)
			return;
}

/* virtio 1.2 §2.7.10: did the device ask to be told about this? */
void bench_kick(struct vdriver *d, unsigned int qi, uint16_t old_idx)
{
	struct vdriver_queue *q = &d->q[qi];
	uint16_t new_idx = q->avail_idx, event;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->features & (1ULL << VIRTIO_RING_F_EVENT_IDX)) {
		event = __atomic_load_n((uint16_t *)&q->used->ring[q->size],
					__ATOMIC_ACQUIRE);
		if ((uint16_t)(new_idx - event - 1) >=
		    (uint16_t)(new_idx - old_idx))
			return;
	} else if (__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE) &
		   VRING_USED_F_NO_NOTIFY) {
		return;
	}
	vdriver_kick(d, qi);
}

int bench_used(struct vdriver *d, unsigned int qi, uint16_t *head,
	       uint32_t *len, int timeout_ms)
{
	return vdriver_wait_used(d, qi, head, len, timeout_ms);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: devbench SUBCOMMAND ARGS...\n"
		"  9p    DIR write|read|meta SIZE_OR_COUNT [CHUNK]\n"
		"  9p-host DIR write|read|meta SIZE_OR_COUNT [CHUNK]\n"
		"  blk   FILE RW BS QD direct|buffered uring|sync SECONDS "
		"[raw|qcow2]\n"
		"  net   CONF GUEST_IP PEER_IP PORT tx|rx|tcptx|tcprx PAYLOAD MTU SECONDS\n"
		"  udpsink BIND_IP PORT SECONDS\n"
		"  tcpsink BIND_IP PORT SECONDS\n"
		"  tcpblast DST_IP PORT SECONDS\n"
		"  udpblast DST_IP PORT PAYLOAD SECONDS\n"
		"  vsock hyperkit|firecracker PATH g2h|h2g CONNS SECONDS "
		"[BUF_ALLOC [CREDIT_EVERY]]\n"
		"  vsock hyperkit|firecracker PATH setup SECONDS\n"
		"  unixpeer sink LISTEN_PATH SECONDS\n"
		"  unixpeer source hyperkit|firecracker PATH CONNS SECONDS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "9p"))
		return bench_9p(argc - 2, argv + 2, false);
	if (!strcmp(argv[1], "9p-host"))
		return bench_9p(argc - 2, argv + 2, true);
	if (!strcmp(argv[1], "blk"))
		return bench_blk(argc - 2, argv + 2);
	if (!strcmp(argv[1], "net"))
		return bench_net(argc - 2, argv + 2);
	if (!strcmp(argv[1], "udpsink"))
		return bench_udpsink(argc - 2, argv + 2);
	if (!strcmp(argv[1], "tcpsink"))
		return bench_tcpsink(argc - 2, argv + 2);
	if (!strcmp(argv[1], "tcpblast"))
		return bench_tcpblast(argc - 2, argv + 2);
	if (!strcmp(argv[1], "udpblast"))
		return bench_udpblast(argc - 2, argv + 2);
	if (!strcmp(argv[1], "vsock"))
		return bench_vsock(argc - 2, argv + 2);
	if (!strcmp(argv[1], "unixpeer"))
		return bench_unixpeer(argc - 2, argv + 2);
	usage();
	return 2;
}
