/*
 * virtio-blk, the disk (virtio 1.2 §5.2), on a block backend (block/blk.h):
 * raw files and block devices, io_uring or synchronous I/O.
 */
#ifndef KHYVE_DEVICES_VIRTIO_BLK_H
#define KHYVE_DEVICES_VIRTIO_BLK_H

#include <stddef.h>

#include "block/blk.h"
#include "config/config.h"
#include "virtio/virtio.h"

struct machine;
struct virtio_blk;

/*
 * -s N,virtio-blk,PATH[,ro]...: one queue per vCPU, on the PCI bus. 0 or
 * -errno with one line in @err naming the slot and the problem.
 */
int virtio_blk_create(struct machine *m, const struct slot_config *sc,
		      char *err, size_t errlen) __must_check;
/*
 * The device without a transport (tier-2 tests attach their own): opens
 * the disk of @opts, with @nr_queues queues. 0 or -errno with @err.
 */
int virtio_blk_init(struct virtio_blk **out, const char *name,
		    const struct guest_mem *mem, const struct blk_options *opts,
		    unsigned int nr_queues, char *err,
		    size_t errlen) __must_check;
struct virtio_dev *virtio_blk_dev(struct virtio_blk *vb);
/* The backend, for tests that look at the disk underneath. */
struct blk *virtio_blk_backend(struct virtio_blk *vb);
/* Reset, stop the I/O thread, close the disk, free. */
void virtio_blk_destroy(struct virtio_blk *vb);

#endif
