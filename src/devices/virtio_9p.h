/* virtio-9p: a host folder shared into the guest over 9P2000.L. */
#ifndef KHYVE_DEVICES_VIRTIO_9P_H
#define KHYVE_DEVICES_VIRTIO_9P_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "virtio/virtio.h"

struct machine;
struct virtio_9p;

struct virtio_9p_options {
	char *tag;
	char *share;
	bool read_only;
};

/* Parse "tag=T,share=DIR[,ro]"; 0 or -EINVAL with @err. */
int virtio_9p_parse(const char *conf, struct virtio_9p_options *o, char *err,
		    size_t errlen) __must_check;
void virtio_9p_options_free(struct virtio_9p_options *o);
/* -s N,virtio-9p,...: 0 or -errno with @err. */
int virtio_9p_create(struct machine *m, const struct slot_config *sc,
		     char *err, size_t errlen) __must_check;
/* The device without a transport (tier-2 tests). */
int virtio_9p_init(struct virtio_9p **out, const char *name,
		   const struct guest_mem *mem,
		   const struct virtio_9p_options *o, char *err,
		   size_t errlen) __must_check;
struct virtio_dev *virtio_9p_dev(struct virtio_9p *p);
void virtio_9p_destroy(struct virtio_9p *p);

#endif
