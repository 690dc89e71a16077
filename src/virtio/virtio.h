/*
 * The virtio device model, independent of any transport (virtio 1.2 §2-§3).
 *
 * A device (virtio-blk, -rng, ...) fills a struct virtio_dev: its type,
 * feature bits, queue count and sizes, config space size, and a static const
 * struct virtio_dev_ops. The transport (virtio_pci.c, or the host-side
 * driver of the tier-2 tests) owns the driver-facing registers and calls
 * into the core here for feature negotiation, status and reset; the core
 * calls the device's ops.
 *
 * Notifications: each queue has a kick eventfd (virtio_dev.kick_fd[q]) that
 * the transport makes the guest's notify write signal (ioeventfd); the
 * device watches these in its own I/O thread. Interrupts go the other way
 * through virtio_dev_notify_queue()/virtio_dev_notify_config(), which the
 * transport implements (MSI-X through irqfd, or INTx).
 */
#ifndef KHYVE_VIRTIO_VIRTIO_H
#define KHYVE_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "core/log.h"
#include "virtio/virtqueue.h"

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Transport-independent feature bits (§6). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

#define VIRTIO_BIT(n) (1ULL << (n))
#define VIRTIO_MAX_QUEUES 64

/* Device types (§5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_9P 9
#define VIRTIO_ID_VSOCK 19

struct virtio_dev;

struct virtio_dev_ops {
	/*
	 * The driver set DRIVER_OK: queues are enabled; start serving them
	 * (watch kick_fd[q] in the device's I/O thread). 0 or -errno (the
	 * core then sets NEEDS_RESET).
	 */
	int (*activate)(struct virtio_dev *dev);
	/*
	 * Stop serving queues and wait for requests in flight to finish (they
	 * may complete into the rings, which are about to be forgotten), then
	 * return to the power-on state. Called from any thread.
	 */
	void (*reset)(struct virtio_dev *dev);
	/* Device config space (§4.1.4.6): read/write @len bytes at @offset. */
	void (*config_read)(struct virtio_dev *dev, uint32_t offset, void *buf,
			    uint32_t len);
	void (*config_write)(struct virtio_dev *dev, uint32_t offset,
			     const void *buf, uint32_t len);
	/* Optional: the driver accepted these features (FEATURES_OK). */
	void (*features_set)(struct virtio_dev *dev, uint64_t features);
};

/* How the core reaches the transport. */
struct virtio_transport_ops {
	/* Interrupt for used buffers on queue @q. Thread-safe. */
	void (*notify_queue)(struct virtio_dev *dev, unsigned int q);
	/* Interrupt for a config change. Thread-safe. */
	void (*notify_config)(struct virtio_dev *dev);
};

struct virtio_dev {
	const char *name;       /* for messages, e.g. "virtio-blk@4" */
	uint16_t device_id;     /* VIRTIO_ID_* */
	const struct virtio_dev_ops *ops;
	const struct guest_mem *mem;
	uint64_t host_features; /* offered (the core adds VERSION_1 etc.) */
	uint64_t guest_features;/* accepted by the driver */
	uint8_t status;
	uint32_t config_gen;    /* bumped on config changes */
	uint32_t config_size;
	unsigned int nr_queues;
	struct virtqueue vqs[VIRTIO_MAX_QUEUES];
	int kick_fd[VIRTIO_MAX_QUEUES]; /* eventfds, created by virtio_dev_init */
	pthread_mutex_t lock;   /* status and negotiation vs. the device */
	const struct virtio_transport_ops *transport;
	void *transport_priv;
	void *opaque;           /* the device's own state */
};

/*
 * Set up @dev before the transport sees it: the core offers
 * VERSION_1, RING_INDIRECT_DESC and RING_EVENT_IDX on top of
 * @device_features; @queue_size is each queue's maximum. 0 or -errno.
 */
int virtio_dev_init(struct virtio_dev *dev, const char *name,
		    uint16_t device_id, const struct virtio_dev_ops *ops,
		    const struct guest_mem *mem, uint64_t device_features,
		    unsigned int nr_queues, uint16_t queue_size,
		    uint32_t config_size, void *opaque) __must_check;
/* Close the kick eventfds. */
void virtio_dev_exit(struct virtio_dev *dev);

/* Transport side: the driver wrote the device status. */
void virtio_dev_set_status(struct virtio_dev *dev, uint8_t status);
/* Transport side: the driver's accepted feature bits (before FEATURES_OK). */
void virtio_dev_set_guest_features(struct virtio_dev *dev, uint64_t features);
/* Transport side: full device reset (status 0). */
void virtio_dev_reset(struct virtio_dev *dev);

/* Device side: whether feature bit @bit was negotiated. */
bool virtio_dev_has_feature(const struct virtio_dev *dev, unsigned int bit);
/* Device side: interrupt the driver for queue @q if the ring says so. */
void virtio_dev_notify_queue(struct virtio_dev *dev, unsigned int q);
/* Device side: config space changed (bumps config_gen, interrupts). */
void virtio_dev_notify_config(struct virtio_dev *dev);
/*
 * Device side: the guest broke the protocol (bad chain, bad request):
 * log it (rate-limited), set NEEDS_RESET and tell the driver.
 */
void virtio_dev_set_needs_reset(struct virtio_dev *dev, const char *why);
/* Consume a kick eventfd's count (from the device's I/O thread). */
void virtio_dev_ack_kick(struct virtio_dev *dev, unsigned int q);

#endif
