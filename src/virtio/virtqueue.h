/*
 * Split virtqueues (virtio 1.2 §2.7): the one place where the guest's
 * descriptor tables, rings, indices, lengths and buffer addresses are
 * checked. A device pops a request as a chain of host iovecs (the
 * device-readable part first, then the device-writable part), works on it,
 * and pushes it back with the number of bytes written.
 *
 * A chain that is malformed (index out of range, a loop, longer than the
 * queue or VQ_MAX_SEGS, a readable segment after a writable one, a buffer
 * outside guest RAM, a nested or misaligned indirect table) makes vq_pop()
 * return -EINVAL and marks the queue broken: the device then sets
 * NEEDS_RESET (virtio_dev_set_needs_reset) and stops using the queue.
 *
 * A queue is used by one thread at a time (the device's I/O thread); the
 * barriers pair with the guest driver's.
 */
#ifndef KHYVE_VIRTIO_VIRTQUEUE_H
#define KHYVE_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_ring.h>

#include "core/guest_mem.h"
#include "core/log.h"

#define VQ_MAX_SIZE 32768
/* At most this many buffers in one chain (direct + indirect), as IOV_MAX. */
#define VQ_MAX_SEGS 1024

struct virtqueue {
	const struct guest_mem *mem;
	/* Set by the transport from the driver's programming. */
	uint16_t size;      /* entries, power of two, <= max_size */
	uint16_t max_size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool enabled;       /* queue_enable written 1 and rings mapped */
	/* Negotiated features the ring cares about. */
	bool event_idx;
	bool indirect;
	/* Ring state. */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;   /* next avail entry the device will read */
	uint16_t used_idx;     /* next used entry the device will write */
	uint16_t signalled_used; /* used_idx at the last interrupt */
	bool signalled_valid;
	bool broken;           /* a bad chain was seen: no more pops */
	bool notify_off;       /* vq_set_notification(false) in force */
	unsigned int index;    /* queue number within its device */
};

/* One request: a descriptor chain resolved into host iovecs. */
struct vq_elem {
	uint16_t head;          /* descriptor index to give back */
	unsigned int out_num;   /* device-readable iovecs, iov[0..out_num) */
	unsigned int in_num;    /* device-writable iovecs after them */
	uint64_t out_len, in_len; /* bytes in each part */
	struct iovec iov[VQ_MAX_SEGS];
};

/* Reset a queue to its power-on state (size = max_size, disabled). */
void vq_init(struct virtqueue *vq, const struct guest_mem *mem,
	     unsigned int index, uint16_t max_size);
/*
 * Map the rings the driver programmed and start using them. -EINVAL if the
 * size is not a power of two or too large, -EFAULT if a ring is not in RAM
 * or misaligned. On failure the queue stays disabled.
 */
int vq_enable(struct virtqueue *vq) __must_check;
/* Forget the rings (device reset). */
void vq_disable(struct virtqueue *vq);
/*
 * Take the next available chain into @elem: 1 got one, 0 the ring is empty
 * (or the queue is disabled or broken), -EINVAL bad chain (the queue is now
 * broken) or a bad avail index.
 */
int vq_pop(struct virtqueue *vq, struct vq_elem *elem) __must_check;
/*
 * Put the last @n popped chains back, unused (a device that popped
 * receive buffers and found too few for a whole frame).
 */
void vq_unpop(struct virtqueue *vq, unsigned int n);
/* Give @head back with @len bytes written into its writable part. */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);
/*
 * After one or more vq_push(): whether the driver wants an interrupt now
 * (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with VIRTIO_F_EVENT_IDX).
 */
bool vq_should_notify(struct virtqueue *vq);
/*
 * Tell the driver whether to notify us of new buffers (used flags, or
 * avail_event with event-idx). Returns true when, after enabling, buffers
 * are already waiting (the caller must process them: avoids a lost kick).
 */
bool vq_set_notification(struct virtqueue *vq, bool enable);
/* Whether the driver has made buffers available we have not popped. */
bool vq_has_avail(struct virtqueue *vq);

/* iovec helpers for devices: copy across a range of an elem's iovecs. */
size_t iov_to_buf(const struct iovec *iov, unsigned int cnt, size_t offset,
		  void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned int cnt, size_t offset,
		    const void *buf, size_t len);
uint64_t iov_size(const struct iovec *iov, unsigned int cnt);

#endif
