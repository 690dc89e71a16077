/*
 * virtio-rnd, the entropy device (virtio 1.2 §5.4): one queue; every
 * writable buffer the driver posts is filled from getrandom(). Served on
 * the device's own I/O thread. A request is capped at 64 KiB so one greedy
 * chain cannot keep the thread in getrandom() for long.
 */
#include "devices/virtio_rnd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "core/iothread.h"
#include "machine.h"
#include "virtio/virtio_pci.h"

#define RND_QUEUE_SIZE 64
#define RND_MAX_REQUEST (64 * 1024)

struct virtio_rnd {
	struct virtio_dev vdev;
	struct iothread io;
	struct ev_handler kick;
	bool watching;
	struct vq_elem elem;
	char name[32];
};

/* Fill @elem's writable buffers; returns the bytes written. */
static uint32_t fill_random(struct vq_elem *elem)
{
	uint32_t total = 0;
	unsigned int i;

	for (i = elem->out_num; i < elem->out_num + elem->in_num; i++) {
		uint8_t *p = elem->iov[i].iov_base;
		size_t left = elem->iov[i].iov_len;

		while (left && total < RND_MAX_REQUEST) {
			size_t want = left;
			ssize_t n;

			if (want > RND_MAX_REQUEST - total)
				want = RND_MAX_REQUEST - total;
			n = getrandom(p, want, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return total;
			}
			p += n;
			left -= n;
			total += n;
		}
	}
	return total;
}

static void rnd_serve(struct ev_handler *h, uint32_t events)
{
	struct virtio_rnd *r = h->opaque;
	struct virtqueue *vq = &r->vdev.vqs[0];
	int ret;

	(void)events;
	virtio_dev_ack_kick(&r->vdev, 0);
	do {
		vq_set_notification(vq, false);
		while ((ret = vq_pop(vq, &r->elem)) == 1)
			vq_push(vq, r->elem.head, fill_random(&r->elem));
		virtio_dev_notify_queue(&r->vdev, 0);
		if (ret < 0) {
			virtio_dev_set_needs_reset(&r->vdev, "bad descriptor chain");
			return;
		}
	} while (vq_set_notification(vq, true));
}

static void rnd_start(void *arg)
{
	struct virtio_rnd *r = arg;

	r->watching = evloop_add(&r->io.loop, &r->kick, r->vdev.kick_fd[0],
				 EPOLLIN, rnd_serve, r) == 0;
	/* Buffers posted before DRIVER_OK get served now. */
	if (r->watching)
		rnd_serve(&r->kick, EPOLLIN);
}

static void rnd_stop(void *arg)
{
	struct virtio_rnd *r = arg;

	if (r->watching)
		evloop_del(&r->io.loop, &r->kick);
	r->watching = false;
}

static int rnd_activate(struct virtio_dev *dev)
{
	struct virtio_rnd *r = dev->opaque;

	iothread_call(&r->io, rnd_start, r);
	return r->watching ? 0 : -EIO;
}

static void rnd_reset(struct virtio_dev *dev)
{
	struct virtio_rnd *r = dev->opaque;

	iothread_call(&r->io, rnd_stop, r);
}

static const struct virtio_dev_ops rnd_ops = {
	.activate = rnd_activate,
	.reset = rnd_reset,
};

int virtio_rnd_init(struct virtio_rnd **out, const char *name,
		    const struct guest_mem *mem)
{
	struct virtio_rnd *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	snprintf(r->name, sizeof(r->name), "%s", name);
	ret = virtio_dev_init(&r->vdev, r->name, VIRTIO_ID_RNG, &rnd_ops, mem,
			      0, 1, RND_QUEUE_SIZE, 0, r);
	if (ret)
		goto err_free;
	ret = iothread_start(&r->io, "virtio-rnd");
	if (ret)
		goto err_dev;
	*out = r;
	return 0;

err_dev:
	virtio_dev_exit(&r->vdev);
err_free:
	free(r);
	return ret;
}

struct virtio_dev *virtio_rnd_dev(struct virtio_rnd *r)
{
	return &r->vdev;
}

void virtio_rnd_destroy(struct virtio_rnd *r)
{
	virtio_dev_reset(&r->vdev);
	iothread_stop(&r->io);
	virtio_dev_exit(&r->vdev);
	free(r);
}

static void rnd_close(void *opaque)
{
	struct virtio_rnd *r = opaque;

	/* The PCI function stays on the bus until the end: keep the state. */
	virtio_dev_reset(&r->vdev);
	iothread_stop(&r->io);
}

int virtio_rnd_create(struct machine *m, const struct slot_config *sc,
		      char *err, size_t errlen)
{
	struct virtio_rnd *r;
	char name[32];
	int ret;

	if (sc->conf && *sc->conf) {
		snprintf(err, errlen, "-s %u:%u,virtio-rnd: unknown option '%s' "
			 "(virtio-rnd takes none)", sc->slot, sc->func, sc->conf);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "virtio-rnd@%u:%u", sc->slot, sc->func);
	ret = virtio_rnd_init(&r, name, &m->vm.mem);
	if (ret) {
		snprintf(err, errlen, "%s: %s", name, strerror(-ret));
		return ret;
	}
	ret = virtio_pci_add(m, sc, &r->vdev, err, errlen);
	if (ret) {
		virtio_rnd_destroy(r);
		return ret;
	}
	ret = machine_on_close(m, rnd_close, r);
	if (ret)
		snprintf(err, errlen, "%s: out of memory", name);
	return ret;
}
