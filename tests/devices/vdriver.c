/*
 * The tier-2 host-side virtio driver (see vdriver.h). It stands in for the
 * PCI transport too: its notify ops write one eventfd per queue, as an
 * MSI-X vector's irqfd would.
 */
#include "vdriver.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define VDRIVER_RING_BASE 0x100000ULL /* rings from 1 MiB, buffers after */
#define VDRIVER_QUEUE_SPACE 0x40000ULL /* ring space per queue */
#define VDRIVER_HEAP_BASE 0x2000000ULL

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

static void notify_queue(struct virtio_dev *dev, unsigned int q)
{
	struct vdriver *d = dev->transport_priv;

	__atomic_add_fetch(&d->irqs[q], 1, __ATOMIC_SEQ_CST);
	signal_fd(d->irq_fd[q]);
}

static void notify_config(struct virtio_dev *dev)
{
	struct vdriver *d = dev->transport_priv;

	signal_fd(d->config_irq_fd);
}

static const struct virtio_transport_ops vdriver_transport = {
	.notify_queue = notify_queue,
	.notify_config = notify_config,
};

int vdriver_init(struct vdriver *d, uint64_t mem_size)
{
	unsigned int q;
	int ret;

	memset(d, 0, sizeof(*d));
	ret = guest_mem_init(&d->mem, mem_size);
	if (ret)
		return ret;
	for (q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->irq_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->config_irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->heap = VDRIVER_HEAP_BASE;
	return 0;
}

void vdriver_exit(struct vdriver *d)
{
	unsigned int q;

	for (q = 0; q < VIRTIO_MAX_QUEUES; q++)
		close(d->irq_fd[q]);
	close(d->config_irq_fd);
	guest_mem_exit(&d->mem);
}

void vdriver_attach(struct vdriver *d, struct virtio_dev *dev)
{
	d->dev = dev;
	dev->transport = &vdriver_transport;
	dev->transport_priv = d;
}

uint64_t vdriver_alloc(struct vdriver *d, uint64_t len, uint64_t align)
{
	uint64_t gpa = (d->heap + align - 1) & ~(align - 1);

	d->heap = gpa + len;
	if (d->heap > d->mem.low_size)
		return 0; /* the test asked for more than it made */
	return gpa;
}

void *vdriver_ptr(struct vdriver *d, uint64_t gpa)
{
	return guest_mem_ptr(&d->mem, gpa, 0);
}

uint8_t vdriver_status(struct vdriver *d)
{
	return __atomic_load_n(&d->dev->status, __ATOMIC_SEQ_CST);
}

void vdriver_reset(struct vdriver *d)
{
	virtio_dev_reset(d->dev);
}

static void setup_queue(struct vdriver *d, unsigned int qi, uint16_t size)
{
	struct vdriver_queue *q = &d->q[qi];
	struct virtqueue *vq = &d->dev->vqs[qi];
	uint64_t base = VDRIVER_RING_BASE + qi * VDRIVER_QUEUE_SPACE;

	memset(q, 0, sizeof(*q));
	q->size = size;
	q->desc_gpa = base;
	q->avail_gpa = base + 16ULL * size;
	q->used_gpa = (q->avail_gpa + 6 + 2ULL * size + 3) & ~3ULL;
	memset(vdriver_ptr(d, base), 0, VDRIVER_QUEUE_SPACE);
	q->desc = vdriver_ptr(d, q->desc_gpa);
	q->avail = vdriver_ptr(d, q->avail_gpa);
	q->used = vdriver_ptr(d, q->used_gpa);
	/* What the PCI transport's common config writes do. */
	vq->size = size;
	vq->desc_gpa = q->desc_gpa;
	vq->avail_gpa = q->avail_gpa;
	vq->used_gpa = q->used_gpa;
	if (vq_enable(vq))
		virtio_dev_set_needs_reset(d->dev, "vdriver: bad rings");
}

int vdriver_start(struct vdriver *d, uint64_t wanted, uint16_t queue_size)
{
	struct virtio_dev *dev = d->dev;
	uint8_t status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	unsigned int q;

	virtio_dev_reset(dev);
	virtio_dev_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_dev_set_status(dev, status);
	d->features = wanted & dev->host_features;
	virtio_dev_set_guest_features(dev, d->features);
	status |= VIRTIO_STATUS_FEATURES_OK;
	virtio_dev_set_status(dev, status);
	if (!(vdriver_status(d) & VIRTIO_STATUS_FEATURES_OK))
		return -EPROTO;
	for (q = 0; q < dev->nr_queues; q++)
		setup_queue(d, q, queue_size ? queue_size : dev->vqs[q].max_size);
	virtio_dev_set_status(dev, status | VIRTIO_STATUS_DRIVER_OK);
	return vdriver_status(d);
}

static uint16_t take_desc(struct vdriver_queue *q)
{
	uint16_t i = q->next_desc;

	q->next_desc = (q->next_desc + 1) & (q->size - 1);
	return i;
}

static void fill(struct vring_desc *desc, uint64_t gpa, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	desc->addr = gpa;
	desc->len = len;
	desc->flags = flags;
	desc->next = next;
}

void vdriver_publish(struct vdriver *d, unsigned int qi, uint16_t head)
{
	struct vdriver_queue *q = &d->q[qi];

	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

uint16_t vdriver_post(struct vdriver *d, unsigned int qi,
		      const struct vdriver_buf *out, unsigned int n_out,
		      const struct vdriver_buf *in, unsigned int n_in,
		      bool indirect)
{
	struct vdriver_queue *q = &d->q[qi];
	unsigned int n = n_out + n_in, i;
	struct vring_desc *table;
	uint16_t head, idx[VQ_MAX_SEGS];

	if (indirect) {
		uint64_t gpa = vdriver_alloc(d, 16ULL * n, 16);

		table = vdriver_ptr(d, gpa);
		for (i = 0; i < n; i++) {
			const struct vdriver_buf *b =
				i < n_out ? &out[i] : &in[i - n_out];
			uint16_t flags = i < n_out ? 0 : VRING_DESC_F_WRITE;

			if (i + 1 < n)
				flags |= VRING_DESC_F_NEXT;
			fill(&table[i], b->gpa, b->len, flags, i + 1);
		}
		head = take_desc(q);
		fill(&q->desc[head], gpa, 16 * n, VRING_DESC_F_INDIRECT, 0);
	} else {
		for (i = 0; i < n; i++)
			idx[i] = take_desc(q);
		for (i = 0; i < n; i++) {
			const struct vdriver_buf *b =
				i < n_out ? &out[i] : &in[i - n_out];
			uint16_t flags = i < n_out ? 0 : VRING_DESC_F_WRITE;

			if (i + 1 < n)
				flags |= VRING_DESC_F_NEXT;
			fill(&q->desc[idx[i]], b->gpa, b->len, flags,
			     i + 1 < n ? idx[i + 1] : 0);
		}
		head = idx[0];
	}
	vdriver_publish(d, qi, head);
	return head;
}

void vdriver_kick(struct vdriver *d, unsigned int q)
{
	signal_fd(d->dev->kick_fd[q]);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool wait_fd(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t count;

	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	return read(fd, &count, sizeof(count)) == sizeof(count);
}

bool vdriver_take_used(struct vdriver *d, unsigned int qi, uint16_t *head,
		       uint32_t *len)
{
	struct vdriver_queue *q = &d->q[qi];
	uint16_t used = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	struct vring_used_elem *e;

	if (used == q->last_used)
		return false;
	e = &q->used->ring[q->last_used & (q->size - 1)];
	*head = e->id;
	*len = e->len;
	q->last_used++;
	/* With event-idx: interrupt us for the next one too (used_event). */
	q->avail->ring[q->size] = q->last_used;
	return true;
}

int vdriver_wait_used(struct vdriver *d, unsigned int qi, uint16_t *head,
		      uint32_t *len, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!vdriver_take_used(d, qi, head, len)) {
		if (now_ms() >= deadline)
			return 0;
		/* Poll in short steps: an interrupt may be suppressed. */
		wait_fd(d->irq_fd[qi], 10);
	}
	return 1;
}

bool vdriver_wait_config(struct vdriver *d, int timeout_ms)
{
	return wait_fd(d->config_irq_fd, timeout_ms);
}
