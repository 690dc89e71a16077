/*
 * Tier 2 for the virtio core: the host-side driver (vdriver) against a
 * small echo device that runs on its own iothread the way real devices do
 * (kick eventfds in, notify out). Covers many requests in flight, indirect
 * descriptors, event-idx on and off, reset while requests are queued, and
 * a hostile chain turning into NEEDS_RESET plus a config interrupt.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include <cmocka.h>

#include "core/iothread.h"
#include "vdriver.h"

/* The echo device: copies each request's readable bytes into its writable part. */
struct echo {
	struct virtio_dev vdev;
	struct iothread io;
	struct ev_handler kick;
	bool watching;
	struct vq_elem elem;
	unsigned long served;
};

static void echo_serve(struct ev_handler *h, uint32_t events)
{
	struct echo *e = h->opaque;
	struct virtqueue *vq = &e->vdev.vqs[0];
	uint8_t buf[4096];
	int r;

	(void)events;
	virtio_dev_ack_kick(&e->vdev, 0);
	do {
		vq_set_notification(vq, false);
		while ((r = vq_pop(vq, &e->elem)) == 1) {
			size_t n = iov_to_buf(e->elem.iov, e->elem.out_num, 0,
					      buf, sizeof(buf));

			n = iov_from_buf(e->elem.iov + e->elem.out_num,
					 e->elem.in_num, 0, buf, n);
			vq_push(vq, e->elem.head, n);
			e->served++;
		}
		if (r < 0) {
			virtio_dev_set_needs_reset(&e->vdev, "bad chain");
			return;
		}
		virtio_dev_notify_queue(&e->vdev, 0);
	} while (vq_set_notification(vq, true));
}

static void echo_start(void *arg)
{
	struct echo *e = arg;

	if (evloop_add(&e->io.loop, &e->kick, e->vdev.kick_fd[0], EPOLLIN,
		       echo_serve, e) == 0)
		e->watching = true;
}

static void echo_stop(void *arg)
{
	struct echo *e = arg;

	if (e->watching)
		evloop_del(&e->io.loop, &e->kick);
	e->watching = false;
}

static int echo_activate(struct virtio_dev *dev)
{
	struct echo *e = dev->opaque;

	iothread_call(&e->io, echo_start, e);
	return e->watching ? 0 : -EIO;
}

static void echo_reset(struct virtio_dev *dev)
{
	struct echo *e = dev->opaque;

	iothread_call(&e->io, echo_stop, e);
}

static void echo_config_read(struct virtio_dev *dev, uint32_t off, void *buf,
			     uint32_t len)
{
	(void)dev;
	(void)off;
	memset(buf, 0x5a, len);
}

static const struct virtio_dev_ops echo_ops = {
	.activate = echo_activate,
	.reset = echo_reset,
	.config_read = echo_config_read,
};

struct fixture {
	struct vdriver d;
	struct echo echo;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	if (vdriver_init(&f.d, 128ULL << 20))
		return -1;
	if (virtio_dev_init(&f.echo.vdev, "echo", 0x7f, &echo_ops, &f.d.mem, 0,
			    1, 256, 4, &f.echo))
		return -1;
	if (iothread_start(&f.echo.io, "echo"))
		return -1;
	vdriver_attach(&f.d, &f.echo.vdev);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_dev_reset(&f->echo.vdev);
	iothread_stop(&f->echo.io);
	virtio_dev_exit(&f->echo.vdev);
	vdriver_exit(&f->d);
	return 0;
}

/* Post @n echo requests, then check every answer. */
static void echo_round(struct fixture *f, unsigned int n, bool indirect)
{
	uint64_t out[256], in[256];
	unsigned int i, got = 0;
	uint16_t heads[256];

	/* Indirect chains take one ring slot of 256; direct ones two. */
	assert_true(n <= (indirect ? 256U : 128U));
	for (i = 0; i < n; i++) {
		struct vdriver_buf o, w;

		out[i] = vdriver_alloc(&f->d, 64, 64);
		in[i] = vdriver_alloc(&f->d, 64, 64);
		snprintf(vdriver_ptr(&f->d, out[i]), 64, "request %u", i);
		memset(vdriver_ptr(&f->d, in[i]), 0, 64);
		o = (struct vdriver_buf){ out[i], 64 };
		w = (struct vdriver_buf){ in[i], 64 };
		heads[i] = vdriver_post(&f->d, 0, &o, 1, &w, 1, indirect);
		if ((i + 1) % 32 == 0)
			vdriver_kick(&f->d, 0);
	}
	vdriver_kick(&f->d, 0);
	while (got < n) {
		uint16_t head;
		uint32_t len;

		assert_int_equal(vdriver_wait_used(&f->d, 0, &head, &len, 5000), 1);
		assert_int_equal(len, 64);
		for (i = 0; i < n && heads[i] != head; i++)
			;
		assert_true(i < n);
		assert_memory_equal(vdriver_ptr(&f->d, in[i]),
				    vdriver_ptr(&f->d, out[i]), 64);
		got++;
	}
}

static void test_depth_128_indirect_event_idx(void **state)
{
	struct fixture *f = *state;
	uint64_t want = ~0ULL;

	assert_true(vdriver_start(&f->d, want, 256) & VIRTIO_STATUS_DRIVER_OK);
	assert_true(f->d.dev->vqs[0].event_idx);
	echo_round(f, 128, true);
	echo_round(f, 1, true);
	assert_false(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_direct_no_event_idx(void **state)
{
	struct fixture *f = *state;
	uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1);

	assert_true(vdriver_start(&f->d, want, 256) & VIRTIO_STATUS_DRIVER_OK);
	assert_false(f->d.dev->vqs[0].event_idx);
	echo_round(f, 128, false);
	echo_round(f, 1, false);
}

static void test_config_space(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4];

	f->echo.vdev.ops->config_read(&f->echo.vdev, 0, buf, 4);
	assert_int_equal(buf[3], 0x5a);
}

static void test_reset_mid_io(void **state)
{
	struct fixture *f = *state;
	unsigned int i;

	assert_true(vdriver_start(&f->d, ~0ULL, 256) & VIRTIO_STATUS_DRIVER_OK);
	for (i = 0; i < 50; i++) {
		struct vdriver_buf o = { vdriver_alloc(&f->d, 64, 64), 64 };
		struct vdriver_buf w = { vdriver_alloc(&f->d, 64, 64), 64 };

		vdriver_post(&f->d, 0, &o, 1, &w, 1, true);
		vdriver_kick(&f->d, 0);
	}
	vdriver_reset(&f->d);
	assert_int_equal(vdriver_status(&f->d), 0);
	assert_false(f->echo.watching);
	/* The device comes back clean and serves a new driver. */
	assert_true(vdriver_start(&f->d, ~0ULL, 256) & VIRTIO_STATUS_DRIVER_OK);
	echo_round(f, 16, true);
}

static void test_hostile_chain(void **state)
{
	struct fixture *f = *state;
	struct vdriver_queue *q = &f->d.q[0];

	assert_true(vdriver_start(&f->d, ~0ULL, 256) & VIRTIO_STATUS_DRIVER_OK);
	echo_round(f, 4, true);
	/* A two-descriptor loop. */
	q->desc[10] = (struct vring_desc){ .addr = 0x3000000, .len = 8,
					   .flags = VRING_DESC_F_NEXT, .next = 11 };
	q->desc[11] = (struct vring_desc){ .addr = 0x3000000, .len = 8,
					   .flags = VRING_DESC_F_NEXT, .next = 10 };
	vdriver_publish(&f->d, 0, 10);
	vdriver_kick(&f->d, 0);
	assert_true(vdriver_wait_config(&f->d, 5000));
	assert_true(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
	/* A reset brings it back. */
	assert_true(vdriver_start(&f->d, ~0ULL, 256) & VIRTIO_STATUS_DRIVER_OK);
	assert_false(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
	echo_round(f, 8, false);
}

static void test_buffer_outside_ram(void **state)
{
	struct fixture *f = *state;
	struct vdriver_buf o = { 0xD0000000ULL, 64 }; /* in the PCI hole */
	struct vdriver_buf w = { vdriver_alloc(&f->d, 64, 64), 64 };

	assert_true(vdriver_start(&f->d, ~0ULL, 256) & VIRTIO_STATUS_DRIVER_OK);
	vdriver_post(&f->d, 0, &o, 1, &w, 1, false);
	vdriver_kick(&f->d, 0);
	assert_true(vdriver_wait_config(&f->d, 5000));
	assert_true(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_depth_128_indirect_event_idx),
		T(test_direct_no_event_idx),
		T(test_config_space),
		T(test_reset_mid_io),
		T(test_hostile_chain),
		T(test_buffer_outside_ram),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
