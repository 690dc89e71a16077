/*
 * Split virtqueue walking (virtio 1.2 §2.7). Everything the guest wrote into
 * the rings is read exactly once into a local (the guest may change it
 * under us) and checked before use: avail index distance, descriptor
 * indices, lengths, flags, buffer ranges (through guest_mem_ptr), indirect
 * tables. The ring memory itself is checked once, when the queue is
 * enabled, so the hot path only dereferences validated ring pointers.
 */
#include "virtio/virtqueue.h"

#include <errno.h>
#include <string.h>

/* Barriers pairing with the driver's (§2.7.13): plain compiler+CPU fences. */
#define vq_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define vq_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define vq_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

static inline uint16_t vq_read16(const volatile void *p)
{
	return *(const volatile uint16_t *)p;
}

static inline void vq_write16(volatile void *p, uint16_t v)
{
	*(volatile uint16_t *)p = v;
}

void vq_init(struct virtqueue *vq, const struct guest_mem *mem,
	     unsigned int index, uint16_t max_size)
{
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	vq->index = index;
	vq->max_size = max_size;
	vq->size = max_size;
}

int vq_enable(struct virtqueue *vq)
{
	uint64_t n = vq->size;
	uint64_t desc_len = 16 * n, avail_len = 6 + 2 * n, used_len = 6 + 8 * n;

	vq->enabled = false;
	if (!n || (n & (n - 1)) || n > vq->max_size || n > VQ_MAX_SIZE)
		return -EINVAL;
	/* §2.7: alignment 16 for the table, 2 for avail, 4 for used. */
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return -EFAULT;
	vq->desc = guest_mem_ptr(vq->mem, vq->desc_gpa, desc_len);
	vq->avail = guest_mem_ptr(vq->mem, vq->avail_gpa, avail_len);
	vq->used = guest_mem_ptr(vq->mem, vq->used_gpa, used_len);
	if (!vq->desc || !vq->avail || !vq->used)
		return -EFAULT;
	/* The device resumes where the rings are (0 after a reset). */
	vq->last_avail = vq_read16(&vq->avail->idx);
	vq->used_idx = vq_read16(&vq->used->idx);
	vq->signalled_valid = false;
	vq->broken = false;
	vq->enabled = true;
	return 0;
}

void vq_disable(struct virtqueue *vq)
{
	vq->enabled = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->last_avail = vq->used_idx = 0;
	vq->signalled_valid = false;
	vq->broken = false;
	vq->notify_off = false;
	vq->size = vq->max_size;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
}

bool vq_has_avail(struct virtqueue *vq)
{
	if (!vq->enabled || vq->broken)
		return false;
	return vq_read16(&vq->avail->idx) != vq->last_avail;
}

/* Snapshot of one descriptor: read once, then only the copy is used. */
struct desc_copy {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static void desc_read(const struct vring_desc *table, unsigned int i,
		      struct desc_copy *d)
{
	const volatile struct vring_desc *p = &table[i];

	d->addr = p->addr;
	d->len = p->len;
	d->flags = p->flags;
	d->next = p->next;
}

/* Append one buffer to @elem, enforcing readable-before-writable order. */
static int elem_add(struct virtqueue *vq, struct vq_elem *elem,
		    const struct desc_copy *d)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	unsigned int n = elem->out_num + elem->in_num;
	void *host;

	if (n >= VQ_MAX_SEGS)
		return -EINVAL;
	if (!writable && elem->in_num)
		return -EINVAL;
	host = guest_mem_ptr(vq->mem, d->addr, d->len);
	if (!host)
		return -EINVAL;
	elem->iov[n].iov_base = host;
	elem->iov[n].iov_len = d->len;
	if (writable) {
		elem->in_num++;
		elem->in_len += d->len;
	} else {
		elem->out_num++;
		elem->out_len += d->len;
	}
	return 0;
}

/* Walk an indirect table (§2.7.5.3): no nesting, bounded by its own size. */
static int walk_indirect(struct virtqueue *vq, struct vq_elem *elem,
			 const struct desc_copy *ind)
{
	const struct vring_desc *table;
	unsigned int count, i = 0, steps = 0;
	struct desc_copy d;
	int ret;

	if (!vq->indirect || (ind->len % 16) || !ind->len ||
	    (ind->flags & VRING_DESC_F_NEXT))
		return -EINVAL;
	count = ind->len / 16;
	if (count > VQ_MAX_SEGS)
		return -EINVAL;
	table = guest_mem_ptr(vq->mem, ind->addr, ind->len);
	if (!table)
		return -EINVAL;
	for (;;) {
		if (++steps > count)
			return -EINVAL; /* a loop */
		desc_read(table, i, &d);
		if (d.flags & VRING_DESC_F_INDIRECT)
			return -EINVAL;
		ret = elem_add(vq, elem, &d);
		if (ret)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= count)
			return -EINVAL;
		i = d.next;
	}
}

int vq_pop(struct virtqueue *vq, struct vq_elem *elem)
{
	uint16_t avail_idx, head, i;
	unsigned int steps = 0;
	struct desc_copy d;
	int ret;

	if (!vq->enabled || vq->broken)
		return 0;
	avail_idx = vq_read16(&vq->avail->idx);
	if (avail_idx == vq->last_avail)
		return 0;
	/* More entries than the ring holds: the driver is broken. */
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
		goto bad;
	/* Read the ring entry only after seeing the index move. */
	vq_rmb();
	head = vq_read16(&vq->avail->ring[vq->last_avail & (vq->size - 1)]);
	if (head >= vq->size)
		goto bad;

	elem->head = head;
	elem->out_num = elem->in_num = 0;
	elem->out_len = elem->in_len = 0;
	i = head;
	for (;;) {
		if (++steps > vq->size)
			goto bad; /* a loop, or longer than the queue */
		desc_read(vq->desc, i, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* An indirect descriptor is alone in its chain. */
			if (steps != 1)
				goto bad;
			ret = walk_indirect(vq, elem, &d);
			if (ret)
				goto bad;
			break;
		}
		ret = elem_add(vq, elem, &d);
		if (ret)
			goto bad;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= vq->size)
			goto bad;
		i = d.next;
	}
	vq->last_avail++;
	/*
	 * With event-idx, ask to be kicked when the next entry arrives:
	 * avail_event lives after the used ring (§2.7.10).
	 */
	if (vq->event_idx && !vq->notify_off)
		vq_write16(&vq->used->ring[vq->size], vq->last_avail);
	return 1;
bad:
	vq->broken = true;
	return -EINVAL;
}

void vq_unpop(struct virtqueue *vq, unsigned int n)
{
	vq->last_avail -= n;
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	volatile struct vring_used_elem *e;

	if (!vq->enabled)
		return;
	e = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	e->id = head;
	e->len = len;
	/* The entry must be visible before the index that publishes it. */
	vq_wmb();
	vq->used_idx++;
	vq_write16(&vq->used->idx, vq->used_idx);
}

bool vq_should_notify(struct virtqueue *vq)
{
	uint16_t old, new, event;
	bool valid;

	if (!vq->enabled)
		return false;
	/* Publish used->idx before reading the driver's suppression state. */
	vq_mb();
	if (!vq->event_idx)
		return !(vq_read16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_valid;
	new = vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	/* used_event lives after the avail ring (§2.7.10). */
	event = vq_read16(&vq->avail->ring[vq->size]);
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool vq_set_notification(struct virtqueue *vq, bool enable)
{
	volatile uint16_t *avail_event;

	if (!vq->enabled)
		return false;
	vq->notify_off = !enable;
	if (vq->event_idx) {
		/* avail_event lives after the used ring. */
		avail_event = (volatile uint16_t *)&vq->used->ring[vq->size];
		if (enable)
			*avail_event = vq->last_avail;
	} else {
		uint16_t flags = vq_read16(&vq->used->flags);

		if (enable)
			flags &= ~VRING_USED_F_NO_NOTIFY;
		else
			flags |= VRING_USED_F_NO_NOTIFY;
		vq_write16(&vq->used->flags, flags);
	}
	if (!enable)
		return false;
	/* The driver may have added buffers before seeing the change. */
	vq_mb();
	return vq_has_avail(vq);
}

size_t iov_to_buf(const struct iovec *iov, unsigned int cnt, size_t offset,
		  void *buf, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned int cnt, size_t offset,
		    const void *buf, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)iov[i].iov_base + offset,
		       (const uint8_t *)buf + done, n);
		done += n;
		offset = 0;
	}
	return done;
}

uint64_t iov_size(const struct iovec *iov, unsigned int cnt)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	return total;
}
