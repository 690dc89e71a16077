/*
 * virtio-net over a network backend (tap, user-mode, VPNKit): see
 * virtio_net.c.
 */
#ifndef KHYVE_DEVICES_VIRTIO_NET_H
#define KHYVE_DEVICES_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "virtio/virtio.h"

struct machine;
struct netbe;
struct virtio_net;

/* -s N,virtio-net,... and -s N,virtio-vpnkit,...: 0 or -errno with @err. */
int virtio_net_create(struct machine *m, const struct slot_config *sc,
		      char *err, size_t errlen) __must_check;
/*
 * The device without a transport (tier-2 tests): @emulation and @conf as
 * on the command line; @default_mac unless the conf or VPNKit gives one.
 */
int virtio_net_init(struct virtio_net **out, const char *name,
		    const struct guest_mem *mem, const char *emulation,
		    const char *conf, const uint8_t default_mac[6], char *err,
		    size_t errlen) __must_check;
struct virtio_dev *virtio_net_dev(struct virtio_net *n);
struct netbe *virtio_net_backend(struct virtio_net *n);
const uint8_t *virtio_net_mac(struct virtio_net *n);
/* Run @fn on the device's I/O thread (tests reading backend state). */
void virtio_net_run(struct virtio_net *n, void (*fn)(void *arg), void *arg);
void virtio_net_destroy(struct virtio_net *n);

#endif
