/*
 * A host-side virtio driver for tier-2 tests: it plays the guest's part
 * against a real device model (struct virtio_dev) over real guest memory
 * (a memfd, as khyve's), without KVM. It negotiates features, lays out
 * split rings in guest memory, posts buffer chains (direct or indirect),
 * kicks through the device's kick eventfds and waits for used buffers on
 * interrupt eventfds that stand in for MSI-X vectors. It can also write
 * raw, hostile descriptors.
 */
#ifndef KHYVE_TESTS_VDRIVER_H
#define KHYVE_TESTS_VDRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "virtio/virtio.h"

struct vdriver_queue {
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t next_desc;   /* descriptors are handed out round-robin */
	uint16_t avail_idx;
	uint16_t last_used;
};

struct vdriver {
	struct guest_mem mem;
	uint64_t heap;          /* bump allocator for buffers */
	struct virtio_dev *dev;
	int irq_fd[VIRTIO_MAX_QUEUES];
	int config_irq_fd;
	unsigned long irqs[VIRTIO_MAX_QUEUES];
	struct vdriver_queue q[VIRTIO_MAX_QUEUES];
	uint64_t features;      /* negotiated */
};

/* One buffer of a chain: guest address and length. */
struct vdriver_buf {
	uint64_t gpa;
	uint32_t len;
};

/* Guest RAM of @mem_size bytes (at least 64 MiB). 0 or -errno. */
int vdriver_init(struct vdriver *d, uint64_t mem_size);
void vdriver_exit(struct vdriver *d);
/* Become @dev's transport (call right after the device's init). */
void vdriver_attach(struct vdriver *d, struct virtio_dev *dev);
/*
 * The driver's start-up (§3.1.1): reset, ACKNOWLEDGE, DRIVER, accept
 * @wanted & offered, FEATURES_OK (checked), rings of @queue_size entries
 * (0: the device's maximum) for every queue, DRIVER_OK. Returns the status
 * read back at the end, or -EPROTO if FEATURES_OK did not stick.
 */
int vdriver_start(struct vdriver *d, uint64_t wanted, uint16_t queue_size);
/* Device reset from the driver (status 0). */
void vdriver_reset(struct vdriver *d);
/* Allocate @len bytes of guest RAM (@align a power of two); its gpa. */
uint64_t vdriver_alloc(struct vdriver *d, uint64_t len, uint64_t align);
/* Host pointer of guest RAM at @gpa. */
void *vdriver_ptr(struct vdriver *d, uint64_t gpa);
/*
 * Post a chain: @out device-readable buffers then @in device-writable
 * ones, through an indirect table when @indirect. Returns the head index.
 */
uint16_t vdriver_post(struct vdriver *d, unsigned int q,
		      const struct vdriver_buf *out, unsigned int n_out,
		      const struct vdriver_buf *in, unsigned int n_in,
		      bool indirect);
/* Put descriptor @head on the avail ring as is (for hand-made chains). */
void vdriver_publish(struct vdriver *d, unsigned int q, uint16_t head);
/* Notify the device about queue @q. */
void vdriver_kick(struct vdriver *d, unsigned int q);
/*
 * Take the next used entry of @q if there is one (true, @head and @len
 * filled), without waiting; asks for an interrupt on the next one.
 */
bool vdriver_take_used(struct vdriver *d, unsigned int q, uint16_t *head,
		       uint32_t *len);
/*
 * Wait up to @timeout_ms for the next used entry of @q: 1 with @head and
 * @len filled, 0 on timeout.
 */
int vdriver_wait_used(struct vdriver *d, unsigned int q, uint16_t *head,
		      uint32_t *len, int timeout_ms);
/* Wait up to @timeout_ms for a config interrupt; true if one came. */
bool vdriver_wait_config(struct vdriver *d, int timeout_ms);
/* The device status as the driver reads it. */
uint8_t vdriver_status(struct vdriver *d);

#endif
