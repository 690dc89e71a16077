/*
 * The tap backend: a kernel tap interface opened (or created, with
 * CAP_NET_ADMIN in the current network namespace) through /dev/net/tun as
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, the header 12 bytes long
 * (TUNSETVNETHDRSZ), so the guest's checksum and segmentation offloads go
 * through unchanged both ways: frames of up to 64 KiB and a header saying
 * how to finish them. The fd is non-blocking and read only while the
 * device has buffers; a write the kernel refuses (-EINVAL: a header it
 * rejects) is a malformed frame, dropped and counted. An interface
 * deleted under us (reads fail with EBADFD) takes the link down.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/evloop.h"
#include "net/netbe.h"

#define TAP_READS_PER_EVENT 64
#define TAP_BUF (NETBE_VNET_HDR_LEN + NETBE_MAX_GSO_FRAME)

struct tap {
	struct netbe *be;
	int fd;
	char name[IFNAMSIZ];
	struct evloop *loop;
	struct ev_handler h;
	bool rx_paused;
	bool tx_blocked;
	bool dead;
	uint8_t *buf;
};

static int tap_ifmtu(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int mtu = 1500;

	if (s < 0)
		return mtu;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (!ioctl(s, SIOCGIFMTU, &ifr) && ifr.ifr_mtu >= 68 &&
	    ifr.ifr_mtu <= 65535)
		mtu = ifr.ifr_mtu;
	close(s);
	return mtu;
}

static int tap_open(struct netbe *be, const struct netbe_options *o, char *err,
		    size_t errlen)
{
	int hdrsz = NETBE_VNET_HDR_LEN;
	unsigned int features = 0;
	struct ifreq ifr = { 0 };
	const char *what;
	struct tap *t;
	int ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->be = be;
	t->buf = malloc(TAP_BUF);
	if (!t->buf) {
		free(t);
		return -ENOMEM;
	}
	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "virtio-net: tap %s: /dev/net/tun: %s",
			 o->tap_name, strerror(-ret));
		goto err_free;
	}
	what = "TUNGETFEATURES";
	if (ioctl(t->fd, TUNGETFEATURES, &features))
		goto err_ioctl;
	if (!(features & IFF_VNET_HDR)) {
		ret = -EOPNOTSUPP;
		snprintf(
			err, errlen,
			"virtio-net: tap %s: the kernel's tun driver lacks IFF_VNET_HDR",
			o->tap_name);
		goto err_close;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", o->tap_name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(t->fd, TUNSETIFF, &ifr)) {
		ret = -errno;
		snprintf(err, errlen,
			 "virtio-net: tap %s: cannot open or create it: %s%s",
			 o->tap_name, strerror(-ret),
			 ret == -EPERM ?
				 " (creating a tap needs CAP_NET_ADMIN)" :
			 ret == -EBUSY ? " (in use, or not a tap)" :
					 "");
		goto err_close;
	}
	what = "TUNSETVNETHDRSZ";
	if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdrsz))
		goto err_ioctl;
	what = "TUNSETOFFLOAD";
	if (ioctl(t->fd, TUNSETOFFLOAD, 0UL))
		goto err_ioctl;
	memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
	t->name[IFNAMSIZ - 1] = '\0';
	be->priv = t;
	be->mtu = (uint16_t)tap_ifmtu(t->name);
	be->max_frame = NETBE_MAX_GSO_FRAME;
	be->vnet_hdr_len = NETBE_VNET_HDR_LEN;
	be->offloads = true;
	be->link_up = true;
	return 0;

err_ioctl:
	ret = -errno;
	snprintf(err, errlen, "virtio-net: tap %s: %s: %s", o->tap_name, what,
		 strerror(-ret));
err_close:
	close(t->fd);
err_free:
	free(t->buf);
	free(t);
	return ret;
}

static void update_events(struct tap *t)
{
	uint32_t ev =
		(t->rx_paused ? 0 : EPOLLIN) | (t->tx_blocked ? EPOLLOUT : 0);

	if (t->loop)
		evloop_modify(t->loop, &t->h, ev);
}

/* The interface went away under us (ip link del): the link is down. */
static void tap_down(struct tap *t, int err)
{
	struct netbe *be = t->be;

	if (t->dead)
		return;
	t->dead = true;
	warn("virtio-net: tap %s: %s: link down", t->name, strerror(err));
	evloop_del(t->loop, &t->h);
	be->link_up = false;
	if (be->link)
		be->link(be->dev_opaque, false);
}

static void do_read(struct tap *t)
{
	struct netbe *be = t->be;
	int i;

	for (i = 0; i < TAP_READS_PER_EVENT; i++) {
		struct netbe_vnet_hdr *hdr = (struct netbe_vnet_hdr *)t->buf;
		struct iovec iov;
		ssize_t n;

		if (!be->rx_ready(be->dev_opaque)) {
			t->rx_paused = true;
			return;
		}
		n = read(t->fd, t->buf, TAP_BUF);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EBADFD || errno == EIO)
				tap_down(t, errno);
			else if (errno != EAGAIN)
				warn_ratelimited("virtio-net: tap %s: read: %s",
						 t->name, strerror(errno));
			return;
		}
		if ((size_t)n < NETBE_VNET_HDR_LEN + NETBE_ETH_HLEN) {
			be->stats.rx_malformed++;
			continue;
		}
		/* tun writes the 10-byte header and skips the rest. */
		hdr->num_buffers = 0;
		iov.iov_base = t->buf;
		iov.iov_len = (size_t)n;
		be->stats.rx_frames++;
		be->stats.rx_bytes += (size_t)n - NETBE_VNET_HDR_LEN;
		be->rx(be, &iov, 1, be->dev_opaque);
	}
}

static void tap_event(struct ev_handler *h, uint32_t events)
{
	struct tap *t = h->opaque;
	struct netbe *be = t->be;

	if (events & EPOLLOUT && t->tx_blocked) {
		t->tx_blocked = false;
		if (be->tx_resume)
			be->tx_resume(be->dev_opaque);
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		do_read(t);
	if (!t->dead)
		update_events(t);
}

static int tap_attach(struct netbe *be, struct evloop *loop)
{
	struct tap *t = be->priv;
	int ret = evloop_add(loop, &t->h, t->fd, EPOLLIN, tap_event, t);

	if (!ret)
		t->loop = loop;
	return ret;
}

static int tap_send(struct netbe *be, const struct iovec *iov, unsigned int cnt)
{
	struct tap *t = be->priv;
	size_t len = netbe_iov_len(iov, cnt);
	struct netbe_vnet_hdr hdr;
	ssize_t n;

	if (t->dead) {
		be->stats.tx_dropped++;
		return 0;
	}
	if (len < NETBE_VNET_HDR_LEN + NETBE_ETH_HLEN ||
	    len > NETBE_VNET_HDR_LEN + be->max_frame) {
		be->stats.tx_malformed++;
		return 0;
	}
	netbe_iov_copy(iov, cnt, 0, &hdr, sizeof(hdr));
	if (netbe_vnet_hdr_check(&hdr, len - NETBE_VNET_HDR_LEN,
				 NETBE_OFF_CSUM | NETBE_OFF_TSO4 |
					 NETBE_OFF_TSO6 | NETBE_OFF_ECN |
					 NETBE_OFF_UFO)) {
		be->stats.tx_malformed++;
		return 0;
	}
	do {
		n = writev(t->fd, iov, (int)cnt);
	} while (n < 0 && errno == EINTR);
	if (n >= 0) {
		be->stats.tx_frames++;
		be->stats.tx_bytes += len - NETBE_VNET_HDR_LEN;
		return 0;
	}
	if (errno == EAGAIN && be->tx_resume) {
		t->tx_blocked = true;
		update_events(t);
		return -EAGAIN;
	}
	if (errno == EINVAL)
		be->stats.tx_malformed++;
	else
		be->stats.tx_dropped++;
	warn_ratelimited("virtio-net: tap %s: write: %s", t->name,
			 strerror(errno));
	return 0;
}

static void tap_rx_resume(struct netbe *be)
{
	struct tap *t = be->priv;

	if (!t->rx_paused)
		return;
	t->rx_paused = false;
	update_events(t);
}

static int tap_set_offloads(struct netbe *be, unsigned int offloads)
{
	struct tap *t = be->priv;
	unsigned long flags = 0;

	if (offloads & NETBE_OFF_CSUM)
		flags |= TUN_F_CSUM;
	/* The kernel takes segmentation offloads only with checksums. */
	if (flags && offloads & NETBE_OFF_TSO4)
		flags |= TUN_F_TSO4;
	if (flags && offloads & NETBE_OFF_TSO6)
		flags |= TUN_F_TSO6;
	if (flags & (TUN_F_TSO4 | TUN_F_TSO6) && offloads & NETBE_OFF_ECN)
		flags |= TUN_F_TSO_ECN;
	if (flags && offloads & NETBE_OFF_UFO)
		flags |= TUN_F_UFO;
	if (ioctl(t->fd, TUNSETOFFLOAD, flags) == 0)
		return 0;
	/* Kernels since 4.14 refuse UFO: retry without it. */
	if (flags & TUN_F_UFO &&
	    ioctl(t->fd, TUNSETOFFLOAD, flags & ~TUN_F_UFO) == 0)
		return 0;
	return -errno;
}

static void tap_close(struct netbe *be)
{
	struct tap *t = be->priv;

	if (!t)
		return;
	if (t->loop && !t->dead)
		evloop_del(t->loop, &t->h);
	close(t->fd);
	free(t->buf);
	free(t);
	be->priv = NULL;
}

const struct netbe_ops netbe_tap_ops = {
	.name = "tap",
	.open = tap_open,
	.attach = tap_attach,
	.send = tap_send,
	.rx_resume = tap_rx_resume,
	.set_offloads = tap_set_offloads,
	.close = tap_close,
};
