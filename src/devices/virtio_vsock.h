/*
 * virtio-vsock (virtio 1.2 §5.10, device type 19): guest stream sockets
 * forwarded to host Unix sockets through a muxer (src/vsock/vsock_mux.h),
 * HyperKit's directory convention (-s N,virtio-sock,...) or Firecracker's
 * hybrid vsock (-s N,virtio-vsock,...).
 */
#ifndef KHYVE_DEVICES_VIRTIO_VSOCK_H
#define KHYVE_DEVICES_VIRTIO_VSOCK_H

#include <stddef.h>

#include "config/config.h"
#include "virtio/virtio.h"
#include "vsock/vsock_conf.h"

struct machine;
struct virtio_vsock;

/* Queues (§5.10.2). */
#define VIRTIO_VSOCK_RX 0
#define VIRTIO_VSOCK_TX 1
#define VIRTIO_VSOCK_EVENT 2
/* The credit each connection advertises to the guest. */
#define VIRTIO_VSOCK_BUF_ALLOC (256U * 1024)
/* A host connection the guest neither accepts nor refuses is closed. */
#define VIRTIO_VSOCK_CONNECT_TIMEOUT_MS 5000

/*
 * -s N,virtio-sock,... and -s N,virtio-vsock,...: the device on the PCI
 * bus, its sockets in place. 0 or -errno with one line in @err.
 */
int virtio_vsock_create(struct machine *m, const struct slot_config *sc,
			char *err, size_t errlen) __must_check;
/*
 * The device without a transport (tier-2 tests attach their own), its
 * muxer's sockets created from @conf. 0 or -errno with @err.
 */
int virtio_vsock_init(struct virtio_vsock **out, const char *name,
		      const struct guest_mem *mem,
		      const struct vsock_conf *conf, char *err,
		      size_t errlen) __must_check;
struct virtio_dev *virtio_vsock_dev(struct virtio_vsock *v);
/* Connections open right now (for tests). Thread-safe. */
unsigned int virtio_vsock_nr_conns(struct virtio_vsock *v);
/* Reset, close every socket, remove the muxer's paths, free. */
void virtio_vsock_destroy(struct virtio_vsock *v);

#endif
