/*
 * virtio-net (virtio 1.2 §5.1) over a network backend (src/net/netbe.h):
 * tap, user-mode networking or VPNKit. One receive and one transmit queue,
 * served on the device's own I/O thread, which also runs the backend's
 * fds and timers, so frames never touch a vCPU thread.
 *
 * Every frame carries the 12-byte virtio_net_hdr_v1. Backends with a vnet
 * header (tap) take and give it as is, so checksum and segmentation
 * offloads pass straight through; for the others the device strips it on
 * transmit and writes an empty one on receive, and offers no offloads.
 * Receive uses mergeable buffers when negotiated: a frame spreads over as
 * many chains as it needs, and if too few are posted the chains go back
 * (vq_unpop), the device keeps a copy of the frame and the backend waits
 * until the driver posts more (rx_ready says no while a frame is kept).
 */
#include "devices/virtio_net.h"

#include <errno.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/iothread.h"
#include "machine.h"
#include "net/netbe.h"
#include "virtio/virtio_pci.h"

#define NET_QUEUE_SIZE 256
#define NET_RXQ 0
#define NET_TXQ 1
#define NET_HDR_LEN 12
#define NET_MAX_RX_CHAINS 64 /* a 64 KiB GSO frame in ~1.5 KiB buffers */

struct virtio_net {
	struct virtio_dev vdev;
	struct iothread io;
	struct netbe be;
	struct ev_handler kick[2];
	bool watching;
	bool tx_blocked;        /* the backend said -EAGAIN */
	bool attached;          /* backend fds on our loop */
	struct virtio_net_config config;
	struct vq_elem tx_elem, rx_elem[NET_MAX_RX_CHAINS];
	struct machine *m;
	uint8_t *rx_kept;       /* a frame waiting for more receive buffers */
	size_t rx_kept_len;
	uint64_t rx_too_big, tx_bad;
	char name[40];
};

static bool rx_ready(void *opaque)
{
	struct virtio_net *n = opaque;

	return n->watching && !n->rx_kept &&
	       vq_has_avail(&n->vdev.vqs[NET_RXQ]);
}

/*
 * A frame from the backend into the guest's receive buffers: 0 when
 * delivered or dropped, -EAGAIN when the guest posted too few buffers
 * for it yet (none were used).
 */
static int rx_put(struct virtio_net *n, const struct iovec *iov,
		  unsigned int cnt)
{
	struct netbe *be = &n->be;
	struct virtqueue *vq = &n->vdev.vqs[NET_RXQ];
	bool mrg = virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_MRG_RXBUF);
	struct virtio_net_hdr_v1 hdr = { 0 };
	size_t frame_len = iov_size(iov, cnt), skip = 0, done = 0;
	unsigned int used = 0, i;
	uint32_t lens[NET_MAX_RX_CHAINS];
	int r;

	if (be->vnet_hdr_len) {
		/* The backend's header becomes the guest's. */
		if (iov_to_buf(iov, cnt, 0, &hdr, NET_HDR_LEN) != NET_HDR_LEN)
			return 0;
		skip = NET_HDR_LEN;
		frame_len -= NET_HDR_LEN;
	}
	while (done < frame_len || used == 0) {
		struct vq_elem *e = &n->rx_elem[used];
		size_t room, off = used ? 0 : NET_HDR_LEN, n_copy;

		if (used == NET_MAX_RX_CHAINS || (!mrg && used == 1))
			goto too_big;
		r = vq_pop(vq, e);
		if (r <= 0) {
			if (r < 0) {
				virtio_dev_set_needs_reset(&n->vdev,
							   "bad receive chain");
				return 0;
			}
			/* The whole ring cannot hold it: it never will. */
			if (used == vq->size)
				goto too_big;
			/* Out of buffers mid-frame: wait for more. */
			vq_unpop(vq, used);
			return -EAGAIN;
		}
		used++;
		if (e->out_num || e->in_len < off) {
			virtio_dev_set_needs_reset(&n->vdev,
						   "receive buffer too small or "
						   "readable");
			return 0;
		}
		room = e->in_len - off;
		n_copy = frame_len - done < room ? frame_len - done : room;
		{
			/* Copy from the backend's iovecs into this chain. */
			uint8_t tmp[4096];
			size_t c = 0;

			while (c < n_copy) {
				size_t step = n_copy - c < sizeof(tmp) ?
						      n_copy - c :
						      sizeof(tmp);

				iov_to_buf(iov, cnt, skip + done + c, tmp, step);
				iov_from_buf(e->iov, e->in_num, off + c, tmp,
					     step);
				c += step;
			}
		}
		lens[used - 1] = off + n_copy;
		done += n_copy;
	}
	hdr.num_buffers = used;
	iov_from_buf(n->rx_elem[0].iov, n->rx_elem[0].in_num, 0, &hdr,
		     NET_HDR_LEN);
	for (i = 0; i < used; i++)
		vq_push(vq, n->rx_elem[i].head, lens[i]);
	virtio_dev_notify_queue(&n->vdev, NET_RXQ);
	return 0;

too_big:
	/* Give the chains back and drop the frame: it can never fit. */
	vq_unpop(vq, used);
	n->rx_too_big++;
	be->stats.rx_dropped++;
	warn_ratelimited("%s: a %zu-byte frame does not fit the guest's "
			 "receive buffers: dropped", n->name, frame_len);
	return 0;
}

static void rx_frame(struct netbe *be, const struct iovec *iov,
		     unsigned int cnt, void *opaque)
{
	struct virtio_net *n = opaque;
	size_t len;

	if (rx_put(n, iov, cnt) != -EAGAIN)
		return;
	/* Keep it until the driver posts more buffers (kick_rx). */
	len = iov_size(iov, cnt);
	n->rx_kept = malloc(len);
	if (!n->rx_kept) {
		be->stats.rx_dropped++;
		return;
	}
	iov_to_buf(iov, cnt, 0, n->rx_kept, len);
	n->rx_kept_len = len;
}

/* Deliver the kept frame if the buffers now suffice: true when none is kept. */
static bool rx_flush_kept(struct virtio_net *n)
{
	struct iovec iov = { n->rx_kept, n->rx_kept_len };

	if (!n->rx_kept)
		return true;
	if (rx_put(n, &iov, 1) == -EAGAIN)
		return false;
	free(n->rx_kept);
	n->rx_kept = NULL;
	return true;
}

/* Offloads the guest may ask of the host on transmit (HOST_* features). */
static unsigned int host_offloads(struct virtio_net *n)
{
	unsigned int off = 0;

	if (virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_CSUM))
		off |= NETBE_OFF_CSUM;
	if (virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_HOST_TSO4))
		off |= NETBE_OFF_TSO4;
	if (virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_HOST_TSO6))
		off |= NETBE_OFF_TSO6;
	if (virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_HOST_ECN))
		off |= NETBE_OFF_ECN;
	return off;
}

/* Send one popped transmit chain; false when the backend is full. */
static bool tx_one(struct virtio_net *n, struct vq_elem *e)
{
	struct iovec iov[VQ_MAX_SEGS + 1];
	struct virtio_net_hdr_v1 hdr;
	unsigned int cnt = 0, i;
	size_t off = NET_HDR_LEN;
	int r;

	if (e->in_num || e->out_len < NET_HDR_LEN ||
	    iov_to_buf(e->iov, e->out_num, 0, &hdr, NET_HDR_LEN) != NET_HDR_LEN) {
		n->tx_bad++;
		return true; /* malformed: dropped, given back */
	}
	if (n->be.vnet_hdr_len) {
		/*
		 * A private copy (the guest may change its own meanwhile),
		 * asking only for offloads the guest negotiated.
		 */
		if (netbe_vnet_hdr_check((const struct netbe_vnet_hdr *)&hdr,
					 e->out_len - NET_HDR_LEN,
					 host_offloads(n))) {
			n->tx_bad++;
			return true;
		}
		hdr.num_buffers = 0;
		iov[cnt].iov_base = &hdr;
		iov[cnt++].iov_len = NET_HDR_LEN;
	}
	for (i = 0; i < e->out_num; i++) {
		if (off >= e->iov[i].iov_len) {
			off -= e->iov[i].iov_len;
			continue;
		}
		iov[cnt].iov_base = (uint8_t *)e->iov[i].iov_base + off;
		iov[cnt++].iov_len = e->iov[i].iov_len - off;
		off = 0;
	}
	r = netbe_send(&n->be, iov, cnt);
	if (r == -EAGAIN)
		return false;
	return true;
}

static void tx_serve(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vqs[NET_TXQ];
	bool pushed = false;
	int r;

	if (n->tx_blocked)
		return;
	do {
		vq_set_notification(vq, false);
		while ((r = vq_pop(vq, &n->tx_elem)) == 1) {
			if (!tx_one(n, &n->tx_elem)) {
				/* Retry this chain when the backend drains. */
				vq_unpop(vq, 1);
				n->tx_blocked = true;
				break;
			}
			vq_push(vq, n->tx_elem.head, 0);
			pushed = true;
		}
		if (pushed)
			virtio_dev_notify_queue(&n->vdev, NET_TXQ);
		if (r < 0) {
			virtio_dev_set_needs_reset(&n->vdev, "bad transmit chain");
			return;
		}
		if (n->tx_blocked)
			return;
	} while (vq_set_notification(vq, true));
}

static void tx_resume(void *opaque)
{
	struct virtio_net *n = opaque;

	n->tx_blocked = false;
	if (n->watching)
		tx_serve(n);
}

static void kick_tx(struct ev_handler *h, uint32_t events)
{
	struct virtio_net *n = h->opaque;

	(void)events;
	virtio_dev_ack_kick(&n->vdev, NET_TXQ);
	tx_serve(n);
}

static void kick_rx(struct ev_handler *h, uint32_t events)
{
	struct virtio_net *n = h->opaque;

	(void)events;
	virtio_dev_ack_kick(&n->vdev, NET_RXQ);
	if (rx_flush_kept(n))
		netbe_rx_resume(&n->be);
}

static void link_changed(void *opaque, bool up)
{
	struct virtio_net *n = opaque;

	n->config.status = up ? VIRTIO_NET_S_LINK_UP : 0;
	virtio_dev_notify_config(&n->vdev);
	/* HyperKit powers the VM off when VPNKit goes away. */
	if (!up && n->be.kind == NETBE_VPNKIT && n->m) {
		warn("%s: lost the connection to VPNKit: pressing the power "
		     "button", n->name);
		pm_power_button(&n->m->pm);
	}
}

/* Offloads the guest takes on receive, from the negotiated features. */
static unsigned int guest_offloads(struct virtio_net *n)
{
	unsigned int off = 0;

	if (virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_CSUM))
		off |= NETBE_OFF_CSUM;
	if (virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO4))
		off |= NETBE_OFF_TSO4;
	if (virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO6))
		off |= NETBE_OFF_TSO6;
	if (virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_ECN))
		off |= NETBE_OFF_ECN;
	return off;
}

static void net_start(void *arg)
{
	struct virtio_net *n = arg;

	if (n->be.offloads && netbe_set_offloads(&n->be, guest_offloads(n)))
		warn("%s: the backend refused the guest's offloads", n->name);
	if (evloop_add(&n->io.loop, &n->kick[NET_RXQ],
		       n->vdev.kick_fd[NET_RXQ], EPOLLIN, kick_rx, n))
		return;
	if (evloop_add(&n->io.loop, &n->kick[NET_TXQ],
		       n->vdev.kick_fd[NET_TXQ], EPOLLIN, kick_tx, n)) {
		evloop_del(&n->io.loop, &n->kick[NET_RXQ]);
		return;
	}
	n->watching = true;
	n->tx_blocked = false;
	netbe_rx_resume(&n->be);
	tx_serve(n);
}

static void net_stop(void *arg)
{
	struct virtio_net *n = arg;

	/* Reset: the driver's next session starts without the kept frame. */
	free(n->rx_kept);
	n->rx_kept = NULL;
	if (!n->watching)
		return;
	evloop_del(&n->io.loop, &n->kick[NET_RXQ]);
	evloop_del(&n->io.loop, &n->kick[NET_TXQ]);
	n->watching = false;
}

static int net_activate(struct virtio_dev *dev)
{
	struct virtio_net *n = dev->opaque;

	iothread_call(&n->io, net_start, n);
	return n->watching ? 0 : -EIO;
}

static void net_reset(struct virtio_dev *dev)
{
	struct virtio_net *n = dev->opaque;

	iothread_call(&n->io, net_stop, n);
}

static void net_config_read(struct virtio_dev *dev, uint32_t off, void *buf,
			    uint32_t len)
{
	struct virtio_net *n = dev->opaque;

	/* The transport checked off + len against config_size. */
	memcpy(buf, (uint8_t *)&n->config + off, len);
}

static const struct virtio_dev_ops net_ops = {
	.activate = net_activate,
	.reset = net_reset,
	.config_read = net_config_read,
};

/* A MAC stable for this VM (-U) and slot: FNV-1a, locally administered. */
static void derive_mac(const struct config *cfg, const struct slot_config *sc,
		       uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned int i;
	uint8_t in[18];

	memset(in, 0, sizeof(in));
	if (cfg && cfg->have_uuid)
		memcpy(in, cfg->uuid, 16);
	in[16] = sc->slot;
	in[17] = sc->func;
	for (i = 0; i < sizeof(in); i++)
		h = (h ^ in[i]) * 0x100000001b3ULL;
	mac[0] = 0x02; /* locally administered, unicast */
	for (i = 1; i < 6; i++)
		mac[i] = h >> (8 * i);
}

static uint64_t offered_features(const struct netbe *be)
{
	uint64_t f = VIRTIO_BIT(VIRTIO_NET_F_MAC) |
		     VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
		     VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);

	if (be->mtu)
		f |= VIRTIO_BIT(VIRTIO_NET_F_MTU);
	if (be->offloads && be->vnet_hdr_len)
		f |= VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
		     VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		     VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
		     VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
		     VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) |
		     VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
		     VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |
		     VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN);
	return f;
}

static void attach_backend(void *arg)
{
	struct virtio_net *n = arg;

	n->attached = netbe_attach(&n->be, &n->io.loop) == 0;
}

static void detach_backend(void *arg)
{
	struct virtio_net *n = arg;

	net_stop(n);
	netbe_close(&n->be);
}

int virtio_net_init(struct virtio_net **out, const char *name,
		    const struct guest_mem *mem, const char *emulation,
		    const char *conf, const uint8_t default_mac[6], char *err,
		    size_t errlen)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	int ret;

	if (!n)
		return -ENOMEM;
	snprintf(n->name, sizeof(n->name), "%s", name);
	ret = netbe_open(&n->be, emulation, conf ? conf : "", err, errlen);
	if (ret)
		goto err_free;
	n->be.rx = rx_frame;
	n->be.rx_ready = rx_ready;
	n->be.link = link_changed;
	n->be.tx_resume = tx_resume;
	n->be.dev_opaque = n;
	memcpy(n->config.mac, n->be.has_mac ? n->be.mac : default_mac, 6);
	n->config.status = n->be.link_up ? VIRTIO_NET_S_LINK_UP : 0;
	n->config.mtu = n->be.mtu;
	ret = virtio_dev_init(&n->vdev, n->name, VIRTIO_ID_NET, &net_ops, mem,
			      offered_features(&n->be), 2, NET_QUEUE_SIZE,
			      offsetof(struct virtio_net_config, mtu) + 2, n);
	if (ret)
		goto err_be;
	ret = iothread_start(&n->io, "virtio-net");
	if (ret)
		goto err_dev;
	iothread_call(&n->io, attach_backend, n);
	if (!n->attached) {
		ret = -EIO;
		snprintf(err, errlen, "%s: cannot attach the backend", name);
		goto err_io;
	}
	*out = n;
	return 0;

err_io:
	iothread_stop(&n->io);
err_dev:
	virtio_dev_exit(&n->vdev);
err_be:
	netbe_close(&n->be);
err_free:
	free(n);
	return ret;
}

struct virtio_dev *virtio_net_dev(struct virtio_net *n)
{
	return &n->vdev;
}

struct netbe *virtio_net_backend(struct virtio_net *n)
{
	return &n->be;
}

const uint8_t *virtio_net_mac(struct virtio_net *n)
{
	return n->config.mac;
}

void virtio_net_run(struct virtio_net *n, void (*fn)(void *arg), void *arg)
{
	iothread_call(&n->io, fn, arg);
}

static void net_close(void *opaque)
{
	struct virtio_net *n = opaque;

	virtio_dev_reset(&n->vdev);
	iothread_call(&n->io, detach_backend, n);
	iothread_stop(&n->io);
}

void virtio_net_destroy(struct virtio_net *n)
{
	net_close(n);
	virtio_dev_exit(&n->vdev);
	free(n);
}

int virtio_net_create(struct machine *m, const struct slot_config *sc,
		      char *err, size_t errlen)
{
	struct virtio_net *n;
	uint8_t mac[6];
	char name[40];
	int ret;

	snprintf(name, sizeof(name), "%s@%u:%u", sc->emulation, sc->slot,
		 sc->func);
	derive_mac(m->cfg, sc, mac);
	/* HyperKit's virtio-tap is virtio-net with a tap conf. */
	ret = virtio_net_init(&n, name, &m->vm.mem,
			      strcmp(sc->emulation, "virtio-vpnkit") ?
				      "virtio-net" : "virtio-vpnkit",
			      sc->conf, mac, err, errlen);
	if (ret)
		return ret;
	n->m = m;
	ret = virtio_pci_add(m, sc, &n->vdev, err, errlen);
	if (ret) {
		virtio_net_destroy(n);
		return ret;
	}
	ret = machine_on_close(m, net_close, n);
	if (ret)
		snprintf(err, errlen, "%s: out of memory", name);
	return ret;
}
