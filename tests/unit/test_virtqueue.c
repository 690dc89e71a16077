/*
 * Tier 1: the split-virtqueue walk against guest memory written by hand,
 * with well-formed and hostile chains; and the core's feature negotiation
 * and status rules.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/virtio.h"
#include "virtio/virtqueue.h"

#define QSIZE 16
#define DESC_GPA 0x10000
#define AVAIL_GPA 0x11000
#define USED_GPA 0x12000
#define BUF_GPA 0x100000

struct fixture {
	struct guest_mem mem;
	struct virtqueue vq;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct vq_elem elem;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	if (guest_mem_init(&f.mem, 64ULL << 20))
		return -1;
	vq_init(&f.vq, &f.mem, 0, QSIZE);
	f.vq.desc_gpa = DESC_GPA;
	f.vq.avail_gpa = AVAIL_GPA;
	f.vq.used_gpa = USED_GPA;
	f.vq.indirect = true;
	if (vq_enable(&f.vq))
		return -1;
	f.desc = guest_mem_ptr(&f.mem, DESC_GPA, 0);
	f.avail = guest_mem_ptr(&f.mem, AVAIL_GPA, 0);
	f.used = guest_mem_ptr(&f.mem, USED_GPA, 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	guest_mem_exit(&f->mem);
	return 0;
}

static void set_desc(struct vring_desc *d, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static void publish(struct fixture *f, uint16_t head)
{
	f->avail->ring[f->avail->idx % QSIZE] = head;
	f->avail->idx++;
}

static void test_good_chain(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vq_pop(&f->vq, &f->elem), 0); /* empty */
	set_desc(&f->desc[3], BUF_GPA, 16, VRING_DESC_F_NEXT, 7);
	set_desc(&f->desc[7], BUF_GPA + 4096, 100,
		 VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(&f->desc[1], BUF_GPA + 8192, 1, VRING_DESC_F_WRITE, 0);
	publish(f, 3);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.head, 3);
	assert_int_equal(f->elem.out_num, 1);
	assert_int_equal(f->elem.in_num, 2);
	assert_int_equal(f->elem.out_len, 16);
	assert_int_equal(f->elem.in_len, 101);
	assert_ptr_equal(f->elem.iov[0].iov_base,
			 guest_mem_ptr(&f->mem, BUF_GPA, 16));
	assert_int_equal(f->elem.iov[2].iov_len, 1);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 0);

	vq_push(&f->vq, 3, 42);
	assert_int_equal(f->used->idx, 1);
	assert_int_equal(f->used->ring[0].id, 3);
	assert_int_equal(f->used->ring[0].len, 42);
	assert_true(vq_should_notify(&f->vq));
	f->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_false(vq_should_notify(&f->vq));
}

/* Each hostile chain fails the pop and breaks the queue, nothing else. */
static void expect_broken(struct fixture *f, uint16_t head)
{
	publish(f, head);
	assert_int_equal(vq_pop(&f->vq, &f->elem), -EINVAL);
	assert_true(f->vq.broken);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 0);
	assert_false(vq_has_avail(&f->vq));
}

static void test_head_out_of_range(void **state)
{
	expect_broken(*state, QSIZE);
}

static void test_loop(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], BUF_GPA, 8, VRING_DESC_F_NEXT, 1);
	set_desc(&f->desc[1], BUF_GPA, 8, VRING_DESC_F_NEXT, 0);
	expect_broken(f, 0);
}

static void test_next_out_of_range(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], BUF_GPA, 8, VRING_DESC_F_NEXT, 999);
	expect_broken(f, 0);
}

static void test_buffer_outside_ram(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], 0xC0000000ULL, 8, 0, 0); /* the PCI hole */
	expect_broken(f, 0);
}

static void test_buffer_wraps(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], ~0ULL - 4, 64, 0, 0);
	expect_broken(f, 0);
}

static void test_readable_after_writable(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], BUF_GPA, 8,
		 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(&f->desc[1], BUF_GPA, 8, 0, 0);
	expect_broken(f, 0);
}

static void test_avail_index_jump(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], BUF_GPA, 8, 0, 0);
	f->avail->idx = QSIZE + 1;
	assert_int_equal(vq_pop(&f->vq, &f->elem), -EINVAL);
	assert_true(f->vq.broken);
}

static void test_indirect(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *table = guest_mem_ptr(&f->mem, BUF_GPA, 0);

	set_desc(&table[0], BUF_GPA + 4096, 10, VRING_DESC_F_NEXT, 1);
	set_desc(&table[1], BUF_GPA + 8192, 20, VRING_DESC_F_WRITE, 0);
	set_desc(&f->desc[5], BUF_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	publish(f, 5);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.head, 5);
	assert_int_equal(f->elem.out_len, 10);
	assert_int_equal(f->elem.in_len, 20);
}

static void test_indirect_not_negotiated(void **state)
{
	struct fixture *f = *state;

	f->vq.indirect = false;
	set_desc(&f->desc[0], BUF_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);
}

static void test_indirect_nested(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *table = guest_mem_ptr(&f->mem, BUF_GPA, 0);

	set_desc(&table[0], BUF_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(&f->desc[0], BUF_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);
}

static void test_indirect_bad_length(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], BUF_GPA, 17, VRING_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);
}

static void test_indirect_loop(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *table = guest_mem_ptr(&f->mem, BUF_GPA, 0);

	set_desc(&table[0], BUF_GPA + 4096, 8, VRING_DESC_F_NEXT, 1);
	set_desc(&table[1], BUF_GPA + 4096, 8, VRING_DESC_F_NEXT, 0);
	set_desc(&f->desc[0], BUF_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);
}

static void test_indirect_with_next(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], BUF_GPA, 16,
		 VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	expect_broken(f, 0);
}

static void test_indirect_after_direct(void **state)
{
	struct fixture *f = *state;

	set_desc(&f->desc[0], BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(&f->desc[1], BUF_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);
}

static void test_indirect_too_long(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *table = guest_mem_ptr(&f->mem, BUF_GPA, 0);
	unsigned int i, n = VQ_MAX_SEGS + 1;

	for (i = 0; i < n; i++)
		set_desc(&table[i], BUF_GPA + 0x100000, 1,
			 i + 1 < n ? VRING_DESC_F_NEXT : 0, i + 1);
	set_desc(&f->desc[0], BUF_GPA, 16 * n, VRING_DESC_F_INDIRECT, 0);
	expect_broken(f, 0);
}

static void test_enable_checks(void **state)
{
	struct fixture *f = *state;
	struct virtqueue vq;

	vq_init(&vq, &f->mem, 0, QSIZE);
	vq.desc_gpa = DESC_GPA;
	vq.avail_gpa = AVAIL_GPA;
	vq.used_gpa = USED_GPA;
	vq.size = 12; /* not a power of two */
	assert_int_equal(vq_enable(&vq), -EINVAL);
	vq.size = 2 * QSIZE; /* above the maximum */
	assert_int_equal(vq_enable(&vq), -EINVAL);
	vq.size = QSIZE;
	vq.desc_gpa = DESC_GPA + 8; /* misaligned */
	assert_int_equal(vq_enable(&vq), -EFAULT);
	vq.desc_gpa = (64ULL << 20) - 16; /* runs past the end of RAM */
	assert_int_equal(vq_enable(&vq), -EFAULT);
	assert_false(vq.enabled);
	assert_int_equal(vq_pop(&vq, &f->elem), 0);
}

static void test_event_idx(void **state)
{
	struct fixture *f = *state;
	uint16_t *used_event = &f->avail->ring[QSIZE];
	uint16_t *avail_event = (uint16_t *)&f->used->ring[QSIZE];
	unsigned int i;

	f->vq.event_idx = true;
	for (i = 0; i < 4; i++) {
		set_desc(&f->desc[i], BUF_GPA, 8, 0, 0);
		publish(f, i);
	}
	/* Enabling notifications with buffers waiting reports them. */
	assert_true(vq_set_notification(&f->vq, true));
	assert_int_equal(*avail_event, 0);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(*avail_event, 1);
	/* The driver wants an interrupt once used passes 1 (used_event=1). */
	*used_event = 1;
	vq_push(&f->vq, 0, 0);
	assert_true(vq_should_notify(&f->vq)); /* first: always */
	vq_push(&f->vq, 1, 0);
	assert_true(vq_should_notify(&f->vq)); /* 1 -> 2 crosses event 1 */
	vq_push(&f->vq, 2, 0);
	assert_false(vq_should_notify(&f->vq)); /* 2 -> 3: already told */
	*used_event = 3;
	vq_push(&f->vq, 3, 0);
	assert_true(vq_should_notify(&f->vq));
}

static void test_iov_helpers(void **state)
{
	char a[4], b[6], out[10];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };

	(void)state;
	assert_int_equal(iov_from_buf(iov, 2, 2, "0123456789", 8), 8);
	assert_memory_equal(a + 2, "01", 2);
	assert_memory_equal(b, "234567", 6);
	assert_int_equal(iov_to_buf(iov, 2, 3, out, 10), 7);
	assert_memory_equal(out, "1234567", 7);
	assert_int_equal(iov_size(iov, 2), 10);
	assert_int_equal(iov_to_buf(iov, 2, 50, out, 10), 0);
}

/* A device for the negotiation tests: counts activations and resets. */
static int activations, resets;

static int count_activate(struct virtio_dev *dev)
{
	(void)dev;
	activations++;
	return 0;
}

static void count_reset(struct virtio_dev *dev)
{
	(void)dev;
	resets++;
}

static const struct virtio_dev_ops count_ops = {
	.activate = count_activate,
	.reset = count_reset,
};

static void test_negotiation(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev dev;
	uint8_t drv = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	assert_int_equal(virtio_dev_init(&dev, "t", VIRTIO_ID_RNG, &count_ops,
					 &f->mem, VIRTIO_BIT(3), 2, 8, 0, NULL),
			 0);
	assert_true(dev.host_features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	activations = resets = 0;

	/* A legacy driver (no VERSION_1) is refused. */
	virtio_dev_set_status(&dev, drv);
	virtio_dev_set_guest_features(&dev, VIRTIO_BIT(3));
	virtio_dev_set_status(&dev, drv | VIRTIO_STATUS_FEATURES_OK);
	assert_false(dev.status & VIRTIO_STATUS_FEATURES_OK);

	/* Features not offered are refused. */
	virtio_dev_set_guest_features(&dev, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
						    VIRTIO_BIT(5));
	virtio_dev_set_status(&dev, drv | VIRTIO_STATUS_FEATURES_OK);
	assert_false(dev.status & VIRTIO_STATUS_FEATURES_OK);

	/* A subset with VERSION_1 is accepted, and then frozen. */
	virtio_dev_set_guest_features(&dev, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
						    VIRTIO_BIT(3));
	virtio_dev_set_status(&dev, drv | VIRTIO_STATUS_FEATURES_OK);
	assert_true(dev.status & VIRTIO_STATUS_FEATURES_OK);
	virtio_dev_set_guest_features(&dev, 0);
	assert_true(virtio_dev_has_feature(&dev, 3));
	assert_false(virtio_dev_has_feature(&dev, VIRTIO_F_RING_EVENT_IDX));

	virtio_dev_set_status(&dev, drv | VIRTIO_STATUS_FEATURES_OK |
					    VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(activations, 1);

	/* NEEDS_RESET sticks until a reset. */
	virtio_dev_set_needs_reset(&dev, "test");
	virtio_dev_set_status(&dev, drv | VIRTIO_STATUS_FEATURES_OK |
					    VIRTIO_STATUS_DRIVER_OK);
	assert_true(dev.status & VIRTIO_STATUS_NEEDS_RESET);
	virtio_dev_set_status(&dev, 0);
	assert_int_equal(resets, 1);
	assert_int_equal(dev.status, 0);
	assert_int_equal(dev.guest_features, 0);

	/* DRIVER_OK without FEATURES_OK is a broken driver. */
	virtio_dev_set_status(&dev, drv | VIRTIO_STATUS_DRIVER_OK);
	assert_true(dev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(activations, 1);
	virtio_dev_exit(&dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_good_chain),
		T(test_head_out_of_range),
		T(test_loop),
		T(test_next_out_of_range),
		T(test_buffer_outside_ram),
		T(test_buffer_wraps),
		T(test_readable_after_writable),
		T(test_avail_index_jump),
		T(test_indirect),
		T(test_indirect_not_negotiated),
		T(test_indirect_nested),
		T(test_indirect_bad_length),
		T(test_indirect_loop),
		T(test_indirect_with_next),
		T(test_indirect_after_direct),
		T(test_indirect_too_long),
		T(test_enable_checks),
		T(test_event_idx),
		T(test_negotiation),
		cmocka_unit_test(test_iov_helpers),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
