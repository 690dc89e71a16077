/*
 * virtio-vsock (virtio 1.2 §5.10): each guest stream connection is a host
 * Unix stream socket, non-blocking, watched by the device's own I/O
 * thread, which also serves the rx and tx queues. Everything below runs on
 * that thread (activation and reset come in through iothread_call).
 *
 * tx (guest → host): each packet's header is checked in one place
 * (vsock_proto_parse_hdr), then the connection's state machine
 * (vsock_conn_recv) decides. RW payload goes straight from guest memory
 * to the host socket; what the socket does not take is kept in a
 * per-connection ring of VIRTIO_VSOCK_BUF_ALLOC bytes, which the credit
 * we advertise guarantees is never overrun, and flushed on EPOLLOUT.
 *
 * rx (host → guest): connections with something to say (control packets
 * owed, or a readable host socket and guest credit) wait on a round-robin
 * list; each rx buffer the guest posts takes one packet, host data read
 * straight into it. A host socket's EPOLLIN is watched only while we do
 * not already know it is readable, so a guest out of credit or rx buffers
 * pauses reading instead of spinning; a CREDIT_UPDATE or new rx buffers
 * resume it. RSTs for ports with no connection wait on a bounded queue.
 *
 * A device reset closes every host socket without a word to the guest:
 * the rings are gone, and the driver starts anew. The event queue is kept
 * for the driver but unused (TRANSPORT_RESET is only for migration).
 */
#include "devices/virtio_vsock.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/iothread.h"
#include "machine.h"
#include "virtio/virtio_pci.h"
#include "vsock/vsock_conn.h"
#include "vsock/vsock_mux.h"

#define VSOCK_QUEUE_SIZE 256
#define VSOCK_NR_QUEUES 3
/* At most this many connections (and rings of VIRTIO_VSOCK_BUF_ALLOC). */
#define VSOCK_MAX_CONNS 1024
#define VSOCK_HASH_SIZE 1024
#define VSOCK_RST_QUEUE 1024
#define VSOCK_TICK_MS 500
/* Work per callback before yielding to the other fds of the loop. */
#define VSOCK_BATCH 256
/* Host ports for host → guest connections start here (as Firecracker's). */
#define VSOCK_EPHEMERAL_BASE (1U << 30)

struct vconn {
	struct vsock_conn c;
	struct virtio_vsock *v;
	int fd;
	struct ev_handler h;
	bool watched; /* evloop_add done */
	bool readable; /* the host socket may have data or EOF for us */
	bool queued; /* on the rx list */
	int64_t deadline; /* CONNECTING: when to give up */
	/* Guest → host bytes the host socket has not taken yet. */
	uint8_t *ring;
	uint32_t ring_head, ring_len;
	LIST_ENTRY(vconn) hash_link;
	LIST_ENTRY(vconn) all_link;
	TAILQ_ENTRY(vconn) rx_link;
};

struct rst_req {
	uint32_t host_port, guest_port;
};

struct virtio_vsock {
	struct virtio_dev vdev;
	struct iothread io;
	struct ev_handler kick[2];
	struct ev_handler tick;
	bool tick_on;
	bool active;
	bool started; /* mux listeners watched */
	uint64_t guest_cid;
	struct vsock_mux *mux;
	LIST_HEAD(, vconn) hash[VSOCK_HASH_SIZE];
	LIST_HEAD(, vconn) all;
	unsigned int nr_conns;
	TAILQ_HEAD(, vconn) rxq;
	struct rst_req rsts[VSOCK_RST_QUEUE];
	unsigned int rst_head, rst_count;
	uint32_t next_port;
	bool rx_held; /* rx_elem popped and not used yet */
	struct vq_elem rx_elem;
	struct vq_elem tx_elem;
	struct iovec iov[VQ_MAX_SEGS];
	char name[40];
};

/* -- connections -- */

static unsigned int hash_of(uint32_t host_port, uint32_t guest_port)
{
	uint32_t h = host_port * 0x9e3779b1U ^ guest_port * 0x85ebca6bU;

	return (h ^ h >> 16) & (VSOCK_HASH_SIZE - 1);
}

static struct vconn *conn_find(struct virtio_vsock *v, uint32_t host_port,
			       uint32_t guest_port)
{
	struct vconn *vc;

	vc = LIST_FIRST(&v->hash[hash_of(host_port, guest_port)]);
	for (; vc; vc = LIST_NEXT(vc, hash_link))
		if (vc->c.host_port == host_port &&
		    vc->c.guest_port == guest_port)
			return vc;
	return NULL;
}

static struct vconn *conn_new(struct virtio_vsock *v, int fd,
			      uint32_t host_port, uint32_t guest_port,
			      const struct vsock_pkt *req)
{
	struct vconn *vc = calloc(1, sizeof(*vc));

	if (!vc)
		return NULL;
	vsock_conn_init(&vc->c, v->guest_cid, host_port, guest_port,
			VIRTIO_VSOCK_BUF_ALLOC, req);
	vc->v = v;
	vc->fd = fd;
	LIST_INSERT_HEAD(&v->hash[hash_of(host_port, guest_port)], vc,
			 hash_link);
	LIST_INSERT_HEAD(&v->all, vc, all_link);
	__atomic_add_fetch(&v->nr_conns, 1, __ATOMIC_RELAXED);
	return vc;
}

static void conn_free(struct vconn *vc)
{
	struct virtio_vsock *v = vc->v;

	if (vc->watched)
		evloop_del(&v->io.loop, &vc->h);
	close(vc->fd);
	if (vc->queued)
		TAILQ_REMOVE(&v->rxq, vc, rx_link);
	LIST_REMOVE(vc, hash_link);
	LIST_REMOVE(vc, all_link);
	__atomic_sub_fetch(&v->nr_conns, 1, __ATOMIC_RELAXED);
	free(vc->ring);
	free(vc);
}

/* An RST to the guest for these ports, whether or not a connection exists. */
static void rst_queue(struct virtio_vsock *v, uint32_t host_port,
		      uint32_t guest_port)
{
	struct rst_req *r;

	if (v->rst_count == VSOCK_RST_QUEUE) {
		warn_ratelimited("%s: RST queue full (no rx buffers): "
				 "dropping one",
				 v->name);
		return;
	}
	r = &v->rsts[(v->rst_head + v->rst_count++) % VSOCK_RST_QUEUE];
	r->host_port = host_port;
	r->guest_port = guest_port;
}

/*
 * After the state machine ran: a CLOSED connection is freed, its RST (if
 * it owes one) queued. True when @vc is gone.
 */
static bool conn_settle(struct vconn *vc)
{
	if (vc->c.state != VSOCK_CONN_CLOSED)
		return false;
	if (vc->c.pending & VSOCK_SEND_RST)
		rst_queue(vc->v, vc->c.host_port, vc->c.guest_port);
	conn_free(vc);
	return true;
}

static void conn_event(struct ev_handler *h, uint32_t events);

/* Watch the host socket for what we need from it now. */
static void conn_update_watch(struct vconn *vc)
{
	struct virtio_vsock *v = vc->v;
	uint32_t events = 0;

	if (vsock_conn_wants_host_data(&vc->c) && !vc->readable)
		events |= EPOLLIN;
	if (vc->ring_len)
		events |= EPOLLOUT;
	if (vc->watched) {
		evloop_modify(&v->io.loop, &vc->h, events);
	} else if (events) {
		if (evloop_add(&v->io.loop, &vc->h, vc->fd, events, conn_event,
			       vc) == 0)
			vc->watched = true;
		else
			vsock_conn_reset(&vc->c);
	}
}

static bool conn_has_data(struct vconn *vc)
{
	return vc->readable && vsock_conn_wants_host_data(&vc->c);
}

/*
 * Put @vc on the rx list if it has something for the guest now: a packet
 * owed, or host data and the credit to send it (or to ask for credit).
 */
static void conn_queue(struct vconn *vc)
{
	struct virtio_vsock *v = vc->v;

	if (vc->queued)
		return;
	if (!vc->c.pending &&
	    !(conn_has_data(vc) &&
	      (vsock_conn_tx_credit(&vc->c) || !vc->c.credit_requested)))
		return;
	TAILQ_INSERT_TAIL(&v->rxq, vc, rx_link);
	vc->queued = true;
}

/* The host socket is done with @vc's guest → host data: shut its write side. */
static void conn_maybe_shut_wr(struct vconn *vc)
{
	if (!vsock_conn_should_shut_wr(&vc->c))
		return;
	shutdown(vc->fd, SHUT_WR);
	vsock_conn_shut_wr_done(&vc->c);
}

static ssize_t send_iov(int fd, struct iovec *iov, unsigned int cnt)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = cnt };
	ssize_t n;

	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Write what the ring holds. 0, or -errno when the host socket failed. */
static int conn_flush(struct vconn *vc)
{
	while (vc->ring_len) {
		struct iovec iov[2];
		uint32_t first = VIRTIO_VSOCK_BUF_ALLOC - vc->ring_head;
		unsigned int cnt = 1;
		ssize_t n;

		if (first > vc->ring_len)
			first = vc->ring_len;
		iov[0].iov_base = vc->ring + vc->ring_head;
		iov[0].iov_len = first;
		if (first < vc->ring_len) {
			iov[1].iov_base = vc->ring;
			iov[1].iov_len = vc->ring_len - first;
			cnt = 2;
		}
		n = send_iov(vc->fd, iov, cnt);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 :
									 -errno;
		vc->ring_head =
			(vc->ring_head + (uint32_t)n) % VIRTIO_VSOCK_BUF_ALLOC;
		vc->ring_len -= (uint32_t)n;
		vsock_conn_forwarded(&vc->c, (uint32_t)n);
	}
	return 0;
}

/* Copy @len bytes at @off of @elem's readable part to the ring's tail. */
static void ring_append(struct vconn *vc, const struct vq_elem *elem,
			size_t off, uint32_t len)
{
	uint32_t tail = (vc->ring_head + vc->ring_len) % VIRTIO_VSOCK_BUF_ALLOC;
	uint32_t first = VIRTIO_VSOCK_BUF_ALLOC - tail;

	if (first > len)
		first = len;
	iov_to_buf(elem->iov, elem->out_num, off, vc->ring + tail, first);
	if (len > first)
		iov_to_buf(elem->iov, elem->out_num, off + first, vc->ring,
			   len - first);
	vc->ring_len += len;
}

/*
 * The iovecs covering [@off, @off + @len) of @src[0..@cnt) into @dst;
 * returns how many.
 */
static unsigned int iov_slice(const struct iovec *src, unsigned int cnt,
			      size_t off, size_t len, struct iovec *dst)
{
	unsigned int i, n = 0;

	for (i = 0; i < cnt && len; i++) {
		size_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		dst[n].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[n].iov_len = l - off < len ? l - off : len;
		len -= dst[n].iov_len;
		off = 0;
		n++;
	}
	return n;
}

/* An RW packet's payload (@len bytes after the header of @elem) to the host. */
static void conn_forward(struct virtio_vsock *v, struct vconn *vc,
			 const struct vq_elem *elem, uint32_t len)
{
	uint32_t done = 0;

	if (!vc->ring_len) {
		unsigned int cnt = iov_slice(elem->iov, elem->out_num,
					     VSOCK_HDR_SIZE, len, v->iov);
		ssize_t n = send_iov(vc->fd, v->iov, cnt);

		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			vsock_conn_reset(&vc->c);
			return;
		}
		done = n > 0 ? (uint32_t)n : 0;
		vsock_conn_forwarded(&vc->c, done);
	}
	if (done == len)
		return;
	if (!vc->ring) {
		vc->ring = malloc(VIRTIO_VSOCK_BUF_ALLOC);
		if (!vc->ring) {
			vsock_conn_reset(&vc->c);
			return;
		}
	}
	/* The credit check in vsock_conn_recv() keeps this within the ring. */
	ring_append(vc, elem, VSOCK_HDR_SIZE + done, len - done);
}

/* -- rx: packets to the guest -- */

/* Have an rx buffer in v->rx_elem; false when the guest gave none. */
static bool rx_get(struct virtio_vsock *v)
{
	struct virtqueue *vq = &v->vdev.vqs[VIRTIO_VSOCK_RX];
	int ret;

	while (!v->rx_held) {
		ret = vq_pop(vq, &v->rx_elem);
		if (ret < 0) {
			virtio_dev_set_needs_reset(&v->vdev, "bad rx chain");
			return false;
		}
		if (ret == 0) {
			/* Be kicked for the next buffer; it may be there now. */
			if (!vq_set_notification(vq, true))
				return false;
			continue;
		}
		if (v->rx_elem.in_len <= VSOCK_HDR_SIZE) {
			/* No room for data after the header: hand it back. */
			warn_ratelimited("%s: rx buffer of %llu bytes is too "
					 "small",
					 v->name,
					 (unsigned long long)v->rx_elem.in_len);
			vq_push(vq, v->rx_elem.head, 0);
			continue;
		}
		v->rx_held = true;
	}
	return true;
}

/* Send the held rx buffer with @p and @len payload bytes already in it. */
static void rx_put(struct virtio_vsock *v, const struct vsock_pkt *p)
{
	struct vq_elem *e = &v->rx_elem;
	uint8_t hdr[VSOCK_HDR_SIZE];

	vsock_proto_build_hdr(p, hdr);
	iov_from_buf(e->iov + e->out_num, e->in_num, 0, hdr, sizeof(hdr));
	vq_push(&v->vdev.vqs[VIRTIO_VSOCK_RX], e->head,
		VSOCK_HDR_SIZE + p->len);
	v->rx_held = false;
}

static void rx_send_rst(struct virtio_vsock *v)
{
	struct rst_req *r = &v->rsts[v->rst_head];
	struct vsock_pkt p = {
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = v->guest_cid,
		.src_port = r->host_port,
		.dst_port = r->guest_port,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = VIRTIO_VSOCK_OP_RST,
	};

	v->rst_head = (v->rst_head + 1) % VSOCK_RST_QUEUE;
	v->rst_count--;
	rx_put(v, &p);
}

/*
 * Read host data into the held rx buffer: true if a packet went out.
 * Otherwise the host socket was drained (EAGAIN, watched again), at EOF
 * (SHUTDOWN owed) or failed (RST owed).
 */
static bool rx_send_data(struct virtio_vsock *v, struct vconn *vc,
			 uint32_t credit)
{
	struct vq_elem *e = &v->rx_elem;
	uint64_t room = e->in_len - VSOCK_HDR_SIZE;
	uint32_t want = credit;
	struct vsock_pkt p;
	unsigned int cnt;
	ssize_t n;

	if (want > room)
		want = (uint32_t)room;
	if (want > VSOCK_MAX_PKT)
		want = VSOCK_MAX_PKT;
	cnt = iov_slice(e->iov + e->out_num, e->in_num, VSOCK_HDR_SIZE, want,
			v->iov);
	do
		n = readv(vc->fd, v->iov, (int)cnt);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		vsock_conn_build(&vc->c, VIRTIO_VSOCK_OP_RW, (uint32_t)n, &p);
		rx_put(v, &p);
		return true;
	}
	vc->readable = false;
	if (n == 0)
		vsock_conn_host_eof(&vc->c);
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		vsock_conn_reset(&vc->c);
	conn_update_watch(vc);
	return false;
}

/*
 * Give @vc's next packet the held rx buffer. True if it was used (@vc may
 * be gone then: *@freed).
 */
static bool rx_serve_conn(struct virtio_vsock *v, struct vconn *vc, bool *freed)
{
	struct vsock_pkt p;
	uint16_t op;

	*freed = false;
	for (;;) {
		if (vc->c.state == VSOCK_CONN_CLOSED) {
			*freed = conn_settle(vc);
			return false;
		}
		op = vsock_conn_next_op(&vc->c);
		/* Handshake and credit first, then data, then SHUTDOWN. */
		if (op && op != VIRTIO_VSOCK_OP_SHUTDOWN)
			break;
		if (conn_has_data(vc)) {
			uint32_t credit = vsock_conn_tx_credit(&vc->c);

			if (credit) {
				if (rx_send_data(v, vc, credit))
					return true;
				continue;
			}
			vsock_conn_stalled(&vc->c);
			if (vsock_conn_next_op(&vc->c))
				continue;
		}
		if (!op)
			return false;
		break;
	}
	vsock_conn_build(&vc->c, op, 0, &p);
	rx_put(v, &p);
	return true;
}

/* Send the guest what is waiting, as long as it gives rx buffers. */
static void rx_pump(struct virtio_vsock *v)
{
	unsigned int sent = 0, rounds = 0;
	bool freed;

	if (!v->active)
		return;
	while ((v->rst_count || !TAILQ_EMPTY(&v->rxq)) && sent < VSOCK_BATCH &&
	       rounds++ < 4 * VSOCK_BATCH) {
		struct vconn *vc;

		if (!rx_get(v))
			break;
		if (v->rst_count) {
			rx_send_rst(v);
			sent++;
			continue;
		}
		vc = TAILQ_FIRST(&v->rxq);
		TAILQ_REMOVE(&v->rxq, vc, rx_link);
		vc->queued = false;
		if (rx_serve_conn(v, vc, &freed))
			sent++;
		if (!freed)
			conn_queue(vc); /* round-robin: back to the tail */
		if (sent && sent % 32 == 0)
			virtio_dev_notify_queue(&v->vdev, VIRTIO_VSOCK_RX);
	}
	if (sent)
		virtio_dev_notify_queue(&v->vdev, VIRTIO_VSOCK_RX);
	/* More to do than one batch: come back after the other fds. */
	if (sent >= VSOCK_BATCH || rounds > 4 * VSOCK_BATCH) {
		uint64_t one = 1;

		if (write(v->vdev.kick_fd[VIRTIO_VSOCK_RX], &one, sizeof(one)) <
		    0)
			warn_ratelimited("%s: rx self-kick: %s", v->name,
					 strerror(errno));
	}
}

/* -- host sockets -- */

static void conn_event(struct ev_handler *h, uint32_t events)
{
	struct vconn *vc = h->opaque;
	struct virtio_vsock *v = vc->v;

	if (vc->ring_len && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		if (conn_flush(vc))
			vsock_conn_reset(&vc->c);
		else
			conn_maybe_shut_wr(vc);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) &&
	    vsock_conn_wants_host_data(&vc->c))
		vc->readable = true;
	if (!conn_settle(vc)) {
		conn_update_watch(vc);
		if (!conn_settle(vc))
			conn_queue(vc);
	}
	rx_pump(v);
}

/* The muxer's hand-over of a host client for guest port @port. */
static void vsock_open(void *dev, int fd, uint32_t port)
{
	struct virtio_vsock *v = dev;
	struct vconn *vc;
	uint32_t host_port;

	if (!v->active || v->nr_conns >= VSOCK_MAX_CONNS) {
		if (v->active)
			warn_ratelimited("%s: too many connections", v->name);
		close(fd);
		return;
	}
	do {
		host_port = v->next_port++;
		if (v->next_port < VSOCK_EPHEMERAL_BASE)
			v->next_port = VSOCK_EPHEMERAL_BASE;
	} while (conn_find(v, host_port, port));
	vc = conn_new(v, fd, host_port, port, NULL);
	if (!vc) {
		close(fd);
		return;
	}
	vc->deadline = vsock_mux_now_ms() + VIRTIO_VSOCK_CONNECT_TIMEOUT_MS;
	conn_queue(vc);
	rx_pump(v);
}

/* -- tx: packets from the guest -- */

/* The guest's REQUEST to host port p->dst_port with no connection yet. */
static void tx_request(struct virtio_vsock *v, const struct vsock_pkt *p)
{
	struct vconn *vc;
	int fd;

	if (v->nr_conns >= VSOCK_MAX_CONNS) {
		warn_ratelimited("%s: too many connections", v->name);
		goto err_rst;
	}
	fd = vsock_mux_connect(v->mux, p->dst_port);
	if (fd < 0)
		goto err_rst;
	vc = conn_new(v, fd, p->dst_port, p->src_port, p);
	if (!vc) {
		close(fd);
		goto err_rst;
	}
	conn_update_watch(vc);
	if (!conn_settle(vc))
		conn_queue(vc);
	return;

err_rst:
	rst_queue(v, p->dst_port, p->src_port);
}

static void tx_packet(struct virtio_vsock *v, const struct vq_elem *elem)
{
	uint8_t hdr[VSOCK_HDR_SIZE];
	struct vsock_pkt p;
	struct vconn *vc;
	unsigned int act;
	int ret;

	if (elem->out_len < VSOCK_HDR_SIZE) {
		warn_ratelimited("%s: tx packet shorter than a header",
				 v->name);
		return;
	}
	iov_to_buf(elem->iov, elem->out_num, 0, hdr, sizeof(hdr));
	ret = vsock_proto_parse_hdr(hdr, elem->out_len - VSOCK_HDR_SIZE,
				    v->guest_cid, &p);
	vc = conn_find(v, p.dst_port, p.src_port);
	if (ret) {
		warn_ratelimited("%s: bad packet (op %u type %u len %u) for "
				 "port %u: RST",
				 v->name, p.op, p.type, p.len, p.src_port);
		if (vc)
			conn_free(vc);
		if (p.op != VIRTIO_VSOCK_OP_RST)
			rst_queue(v, p.dst_port, p.src_port);
		return;
	}
	if (!vc) {
		if (p.op == VIRTIO_VSOCK_OP_REQUEST)
			tx_request(v, &p);
		else if (p.op != VIRTIO_VSOCK_OP_RST)
			rst_queue(v, p.dst_port, p.src_port);
		return;
	}
	act = vsock_conn_recv(&vc->c, &p);
	if (act & VSOCK_ACT_CLOSE) {
		conn_free(vc);
		return;
	}
	if (act & VSOCK_ACT_ESTABLISHED &&
	    vsock_mux_established(v->mux, vc->fd, vc->c.host_port))
		vsock_conn_reset(&vc->c);
	if (act & VSOCK_ACT_DATA && vc->c.state == VSOCK_CONN_ESTABLISHED)
		conn_forward(v, vc, elem, p.len);
	conn_maybe_shut_wr(vc);
	if (conn_settle(vc))
		return;
	conn_update_watch(vc);
	if (!conn_settle(vc))
		conn_queue(vc);
}

static void tx_serve(struct ev_handler *h, uint32_t events)
{
	struct virtio_vsock *v = h->opaque;
	struct virtqueue *vq = &v->vdev.vqs[VIRTIO_VSOCK_TX];
	unsigned int done = 0;
	int ret = 0;

	(void)events;
	virtio_dev_ack_kick(&v->vdev, VIRTIO_VSOCK_TX);
	do {
		vq_set_notification(vq, false);
		while (done < VSOCK_BATCH &&
		       (ret = vq_pop(vq, &v->tx_elem)) == 1) {
			tx_packet(v, &v->tx_elem);
			vq_push(vq, v->tx_elem.head, 0);
			done++;
		}
		virtio_dev_notify_queue(&v->vdev, VIRTIO_VSOCK_TX);
		if (ret < 0) {
			virtio_dev_set_needs_reset(&v->vdev, "bad tx chain");
			break;
		}
		if (done == VSOCK_BATCH) {
			/* Let the host sockets have a turn; come back. */
			uint64_t one = 1;

			vq_set_notification(vq, true);
			if (write(v->vdev.kick_fd[VIRTIO_VSOCK_TX], &one,
				  sizeof(one)) < 0)
				warn_ratelimited("%s: tx self-kick: %s",
						 v->name, strerror(errno));
			break;
		}
	} while (vq_set_notification(vq, true));
	rx_pump(v);
}

static void rx_kicked(struct ev_handler *h, uint32_t events)
{
	struct virtio_vsock *v = h->opaque;

	(void)events;
	virtio_dev_ack_kick(&v->vdev, VIRTIO_VSOCK_RX);
	rx_pump(v);
}

/* Every VSOCK_TICK_MS: time out host connections the guest ignores. */
static void tick(struct ev_handler *h, uint32_t events)
{
	struct virtio_vsock *v = h->opaque;
	int64_t now = vsock_mux_now_ms();
	struct vconn *vc, *next;

	(void)events;
	evloop_timer_ack(h);
	vsock_mux_tick(v->mux, now);
	for (vc = LIST_FIRST(&v->all); vc; vc = next) {
		next = LIST_NEXT(vc, all_link);
		if (vc->c.state == VSOCK_CONN_CONNECTING &&
		    now >= vc->deadline) {
			vsock_conn_reset(&vc->c);
			conn_settle(vc);
		}
	}
	rx_pump(v);
}

/* -- device life cycle -- */

static void drop_all(struct virtio_vsock *v)
{
	while (!LIST_EMPTY(&v->all))
		conn_free(LIST_FIRST(&v->all));
	v->rst_head = v->rst_count = 0;
	v->rx_held = false;
}

static void vsock_start(void *arg)
{
	struct virtio_vsock *v = arg;
	static const ev_fn fns[2] = { rx_kicked, tx_serve };
	unsigned int q;

	for (q = 0; q < 2; q++) {
		if (evloop_add(&v->io.loop, &v->kick[q], v->vdev.kick_fd[q],
			       EPOLLIN, fns[q], v)) {
			if (q)
				evloop_del(&v->io.loop, &v->kick[0]);
			return;
		}
	}
	v->active = true;
	/* Buffers and packets posted before DRIVER_OK. */
	tx_serve(&v->kick[VIRTIO_VSOCK_TX], EPOLLIN);
}

static void vsock_stop(void *arg)
{
	struct virtio_vsock *v = arg;

	if (!v->active)
		return;
	evloop_del(&v->io.loop, &v->kick[0]);
	evloop_del(&v->io.loop, &v->kick[1]);
	v->active = false;
	drop_all(v);
}

static int vsock_activate(struct virtio_dev *dev)
{
	struct virtio_vsock *v = dev->opaque;

	iothread_call(&v->io, vsock_start, v);
	return v->active ? 0 : -EIO;
}

static void vsock_reset(struct virtio_dev *dev)
{
	struct virtio_vsock *v = dev->opaque;

	iothread_call(&v->io, vsock_stop, v);
}

/* §5.10.4: the config space is the guest's CID, a le64. */
static void vsock_config_read(struct virtio_dev *dev, uint32_t offset,
			      void *buf, uint32_t len)
{
	struct virtio_vsock *v = dev->opaque;
	uint64_t cid = htole64(v->guest_cid);

	memset(buf, 0, len);
	if (offset < sizeof(cid))
		memcpy(buf, (uint8_t *)&cid + offset,
		       len < sizeof(cid) - offset ? len : sizeof(cid) - offset);
}

static void vsock_config_write(struct virtio_dev *dev, uint32_t offset,
			       const void *buf, uint32_t len)
{
	(void)dev;
	(void)offset;
	(void)buf;
	(void)len; /* read-only */
}

static const struct virtio_dev_ops vsock_ops = {
	.activate = vsock_activate,
	.reset = vsock_reset,
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
};

struct start_req {
	struct virtio_vsock *v;
	int ret;
};

static void vsock_io_start(void *arg)
{
	struct start_req *r = arg;
	struct virtio_vsock *v = r->v;

	r->ret = evloop_timer_add(&v->io.loop, &v->tick, tick, v);
	if (r->ret)
		return;
	v->tick_on = true;
	evloop_timer_arm(&v->tick, VSOCK_TICK_MS, VSOCK_TICK_MS);
	r->ret = vsock_mux_start(v->mux, &v->io.loop, vsock_open, v);
	v->started = !r->ret;
}

static void vsock_io_stop(void *arg)
{
	struct virtio_vsock *v = arg;

	vsock_stop(v);
	if (v->started)
		vsock_mux_stop(v->mux);
	v->started = false;
	if (v->tick_on) {
		evloop_del(&v->io.loop, &v->tick);
		close(v->tick.fd);
	}
	v->tick_on = false;
}

int virtio_vsock_init(struct virtio_vsock **out, const char *name,
		      const struct guest_mem *mem,
		      const struct vsock_conf *conf, char *err, size_t errlen)
{
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	struct start_req req;
	unsigned int i;
	int ret;

	err[0] = '\0';
	if (!v) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->guest_cid = conf->guest_cid;
	v->next_port = VSOCK_EPHEMERAL_BASE;
	for (i = 0; i < VSOCK_HASH_SIZE; i++)
		LIST_INIT(&v->hash[i]);
	LIST_INIT(&v->all);
	TAILQ_INIT(&v->rxq);
	ret = vsock_mux_create(&v->mux, conf, err, errlen);
	if (ret)
		goto err_free;
	ret = virtio_dev_init(&v->vdev, v->name, VIRTIO_ID_VSOCK, &vsock_ops,
			      mem, 0, VSOCK_NR_QUEUES, VSOCK_QUEUE_SIZE,
			      sizeof(struct virtio_vsock_config), v);
	if (ret)
		goto err_mux;
	ret = iothread_start(&v->io, "virtio-vsock");
	if (ret)
		goto err_dev;
	req.v = v;
	iothread_call(&v->io, vsock_io_start, &req);
	ret = req.ret;
	if (ret)
		goto err_io;
	*out = v;
	return 0;

err_io:
	iothread_call(&v->io, vsock_io_stop, v);
	iothread_stop(&v->io);
err_dev:
	virtio_dev_exit(&v->vdev);
err_mux:
	vsock_mux_destroy(v->mux);
err_free:
	if (!err[0])
		snprintf(err, errlen, "%s: %s", name, strerror(-ret));
	free(v);
	return ret;
}

struct virtio_dev *virtio_vsock_dev(struct virtio_vsock *v)
{
	return &v->vdev;
}

unsigned int virtio_vsock_nr_conns(struct virtio_vsock *v)
{
	return __atomic_load_n(&v->nr_conns, __ATOMIC_RELAXED);
}

/* Stop everything, keep the memory (the PCI function stays on the bus). */
static void vsock_close(void *opaque)
{
	struct virtio_vsock *v = opaque;

	virtio_dev_reset(&v->vdev);
	iothread_call(&v->io, vsock_io_stop, v);
	iothread_stop(&v->io);
	vsock_mux_destroy(v->mux);
	v->mux = NULL;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	vsock_close(v);
	virtio_dev_exit(&v->vdev);
	free(v);
}

int virtio_vsock_create(struct machine *m, const struct slot_config *sc,
			char *err, size_t errlen)
{
	bool hyperkit = !strcmp(sc->emulation, "virtio-sock");
	struct virtio_vsock *v;
	struct vsock_conf conf;
	char name[40], msg[256];
	int ret;

	snprintf(name, sizeof(name), "%s@%u:%u", sc->emulation, sc->slot,
		 sc->func);
	msg[0] = '\0';
	ret = vsock_conf_parse(&conf,
			       hyperkit ? VSOCK_HYPERKIT : VSOCK_FIRECRACKER,
			       sc->conf, msg, sizeof(msg));
	if (!ret)
		ret = virtio_vsock_init(&v, name, &m->vm.mem, &conf, msg,
					sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "-s %u:%u,%s: %s", sc->slot, sc->func,
			 sc->emulation, msg);
		return ret;
	}
	ret = virtio_pci_add(m, sc, &v->vdev, err, errlen);
	if (ret) {
		virtio_vsock_destroy(v);
		return ret;
	}
	ret = machine_on_close(m, vsock_close, v);
	if (ret)
		snprintf(err, errlen, "%s: out of memory", name);
	return ret;
}
