/*
 * The transport-independent part of a virtio device: feature negotiation
 * (§3.1.1, §6), the device status state machine (§2.1), reset, and the
 * interrupt decisions. Transports call in from vCPU threads; devices call
 * in from their I/O threads; dev->lock serialises status changes.
 */
#include "virtio/virtio.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VIRTIO_CORE_FEATURES                                                  \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) |                                     \
	 VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) |                            \
	 VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX))

int virtio_dev_init(struct virtio_dev *dev, const char *name,
		    uint16_t device_id, const struct virtio_dev_ops *ops,
		    const struct guest_mem *mem, uint64_t device_features,
		    unsigned int nr_queues, uint16_t queue_size,
		    uint32_t config_size, void *opaque)
{
	unsigned int q;
	int ret;

	if (!nr_queues || nr_queues > VIRTIO_MAX_QUEUES || !queue_size ||
	    (queue_size & (queue_size - 1)) || queue_size > VQ_MAX_SIZE)
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	dev->name = name;
	dev->device_id = device_id;
	dev->ops = ops;
	dev->mem = mem;
	dev->host_features = device_features | VIRTIO_CORE_FEATURES;
	dev->nr_queues = nr_queues;
	dev->config_size = config_size;
	dev->opaque = opaque;
	for (q = 0; q < VIRTIO_MAX_QUEUES; q++)
		dev->kick_fd[q] = -1;
	for (q = 0; q < nr_queues; q++) {
		vq_init(&dev->vqs[q], mem, q, queue_size);
		dev->kick_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (dev->kick_fd[q] < 0) {
			ret = -errno;
			goto err_fds;
		}
	}
	pthread_mutex_init(&dev->lock, NULL);
	return 0;

err_fds:
	while (q--)
		close(dev->kick_fd[q]);
	return ret;
}

void virtio_dev_exit(struct virtio_dev *dev)
{
	unsigned int q;

	for (q = 0; q < dev->nr_queues; q++) {
		if (dev->kick_fd[q] >= 0)
			close(dev->kick_fd[q]);
		dev->kick_fd[q] = -1;
	}
	pthread_mutex_destroy(&dev->lock);
}

bool virtio_dev_has_feature(const struct virtio_dev *dev, unsigned int bit)
{
	return bit < 64 && (dev->guest_features & VIRTIO_BIT(bit));
}

void virtio_dev_set_guest_features(struct virtio_dev *dev, uint64_t features)
{
	pthread_mutex_lock(&dev->lock);
	/* §2.2: features may only change before FEATURES_OK. */
	if (!(dev->status & VIRTIO_STATUS_FEATURES_OK))
		dev->guest_features = features;
	pthread_mutex_unlock(&dev->lock);
}

/* Give the queues the negotiated ring features (at FEATURES_OK). */
static void apply_ring_features(struct virtio_dev *dev)
{
	bool event_idx = virtio_dev_has_feature(dev, VIRTIO_F_RING_EVENT_IDX);
	bool indirect = virtio_dev_has_feature(dev, VIRTIO_F_RING_INDIRECT_DESC);
	unsigned int q;

	for (q = 0; q < dev->nr_queues; q++) {
		struct virtqueue *vq = &dev->vqs[q];

		vq->event_idx = event_idx;
		vq->indirect = indirect;
	}
}

static void reset_locked(struct virtio_dev *dev)
{
	unsigned int q;
	uint64_t drop;

	if (dev->ops->reset)
		dev->ops->reset(dev);
	for (q = 0; q < dev->nr_queues; q++) {
		vq_disable(&dev->vqs[q]);
		/* A kick left over from before the reset means nothing now. */
		while (read(dev->kick_fd[q], &drop, sizeof(drop)) > 0)
			;
	}
	dev->status = 0;
	dev->guest_features = 0;
}

void virtio_dev_reset(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	reset_locked(dev);
	pthread_mutex_unlock(&dev->lock);
}

void virtio_dev_set_status(struct virtio_dev *dev, uint8_t status)
{
	uint8_t old;

	if (!status) {
		virtio_dev_reset(dev);
		return;
	}
	pthread_mutex_lock(&dev->lock);
	old = dev->status;
	if (status & VIRTIO_STATUS_FEATURES_OK &&
	    !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/*
		 * §3.1.1: accept only a subset of what we offered, and only a
		 * modern driver; otherwise leave FEATURES_OK clear so the
		 * driver sees the refusal when it reads the status back.
		 */
		if ((dev->guest_features & ~dev->host_features) ||
		    !virtio_dev_has_feature(dev, VIRTIO_F_VERSION_1)) {
			warn_ratelimited("%s: driver accepted features 0x%llx "
					 "not offered (0x%llx) or not virtio 1",
					 dev->name,
					 (unsigned long long)dev->guest_features,
					 (unsigned long long)dev->host_features);
			status &= ~VIRTIO_STATUS_FEATURES_OK;
		} else {
			apply_ring_features(dev);
			if (dev->ops->features_set)
				dev->ops->features_set(dev, dev->guest_features);
		}
	}
	/* Keep NEEDS_RESET: only a reset clears it. */
	dev->status = status | (old & VIRTIO_STATUS_NEEDS_RESET);
	if ((status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(status & VIRTIO_STATUS_FEATURES_OK) ||
		    dev->ops->activate(dev)) {
			dev->status |= VIRTIO_STATUS_NEEDS_RESET;
			pthread_mutex_unlock(&dev->lock);
			warn_ratelimited("%s: cannot start the device", dev->name);
			if (dev->transport)
				dev->transport->notify_config(dev);
			return;
		}
	}
	pthread_mutex_unlock(&dev->lock);
}

void virtio_dev_notify_queue(struct virtio_dev *dev, unsigned int q)
{
	if (q >= dev->nr_queues || !vq_should_notify(&dev->vqs[q]))
		return;
	if (dev->transport)
		dev->transport->notify_queue(dev, q);
}

void virtio_dev_notify_config(struct virtio_dev *dev)
{
	__atomic_add_fetch(&dev->config_gen, 1, __ATOMIC_SEQ_CST);
	if (dev->transport)
		dev->transport->notify_config(dev);
}

void virtio_dev_set_needs_reset(struct virtio_dev *dev, const char *why)
{
	warn_ratelimited("%s: %s: device needs reset", dev->name, why);
	__atomic_or_fetch(&dev->status, VIRTIO_STATUS_NEEDS_RESET,
			  __ATOMIC_SEQ_CST);
	/* §2.1.2: with DRIVER_OK set, tell the driver by a config interrupt. */
	if (dev->transport)
		dev->transport->notify_config(dev);
}

void virtio_dev_ack_kick(struct virtio_dev *dev, unsigned int q)
{
	uint64_t count;

	if (q < dev->nr_queues)
		while (read(dev->kick_fd[q], &count, sizeof(count)) > 0)
			;
}
