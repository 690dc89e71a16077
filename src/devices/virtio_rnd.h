/* virtio-rnd: entropy for the guest from getrandom() (virtio 1.2 §5.4). */
#ifndef KHYVE_DEVICES_VIRTIO_RND_H
#define KHYVE_DEVICES_VIRTIO_RND_H

#include <stddef.h>

#include "config/config.h"
#include "virtio/virtio.h"

struct machine;
struct virtio_rnd;

/* -s N,virtio-rnd: the device on the PCI bus. 0 or -errno with @err. */
int virtio_rnd_create(struct machine *m, const struct slot_config *sc,
		      char *err, size_t errlen) __must_check;
/* The device without a transport (tier-2 tests attach their own). */
int virtio_rnd_init(struct virtio_rnd **out, const char *name,
		    const struct guest_mem *mem) __must_check;
struct virtio_dev *virtio_rnd_dev(struct virtio_rnd *r);
void virtio_rnd_destroy(struct virtio_rnd *r);

#endif
