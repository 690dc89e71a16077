/*
 * Tier 2 for virtio-vsock: this file plays the guest's vsock transport
 * (rx buffers posted, tx packets sent, credit kept both ways, as Linux's
 * virtio_transport does) through the host-side virtio driver, against both
 * muxers over real Unix sockets in a temporary directory. Host peers run
 * on their own threads with blocking sockets.
 *
 * Data is a pseudo-random stream per connection: the side that connects
 * sends an 8-byte seed and then stream(seed); the side that accepts
 * answers with stream(seed ^ ANSWER); each side checks every byte it
 * gets, so loss, duplication and reordering are all caught.
 *
 * VSOCK_TEST_MIB (default 2) sets the bytes each way per connection of
 * the 20-connection test; the test prints its throughput, so
 *   VSOCK_TEST_MIB=64 build/tests/devices/dev_virtio_vsock
 * is a throughput measurement of the device path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <endian.h>

#include "devices/virtio_vsock.h"
#include "vdriver.h"
#include "vsock/vsock_proto.h"

#define GUEST_CID 3
#define ANSWER 0x5a5a5a5a5a5a5a5aULL
#define RX_BUFS 96
#define RX_PAYLOAD 4096
#define TX_SLOTS 64
#define TX_PAYLOAD 4096
/* Largest tx packet (Linux sends up to 64 KiB); the bench uses it. */
#define TX_MAX_PAYLOAD VSOCK_MAX_PKT
#define MAX_GCONNS 64
#define GUEST_BUF_ALLOC (256U * 1024)
#define HOST_PORT 1524
#define GUEST_PORT 5000

/* -- the stream -- */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint8_t stream_byte(uint64_t seed, uint64_t off)
{
	return (uint8_t)(splitmix(seed + off / 8) >> (8 * (off % 8)));
}

static void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
	size_t i = 0;

	while (i < len && (off + i) % 8)
		buf[i] = stream_byte(seed, off + i), i++;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = splitmix(seed + (off + i) / 8);

		memcpy(buf + i, &w, 8);
	}
	for (; i < len; i++)
		buf[i] = stream_byte(seed, off + i);
}

static bool stream_check(uint64_t seed, uint64_t off, const uint8_t *buf,
			 size_t len)
{
	uint8_t tmp[8192];

	while (len) {
		size_t n = len < sizeof(tmp) ? len : sizeof(tmp);

		stream_fill(seed, off, tmp, n);
		if (memcmp(tmp, buf, n))
			return false;
		off += n;
		buf += n;
		len -= n;
	}
	return true;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* -- the guest's transport -- */

enum gstate { G_FREE, G_CONNECTING, G_OPEN, G_CLOSED };

struct gconn {
	enum gstate state;
	uint32_t gport, hport;
	bool rst; /* closed by an RST from the device */
	bool peer_shut_send, peer_shut_rcv, shut_sent;
	/* our receive side */
	uint32_t buf_alloc, fwd_cnt, adv_fwd_cnt, rx_cnt;
	bool paused; /* the "application" does not read */
	/* the device's receive side */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	unsigned int credit_requests;
	/* stream mode */
	bool stream, initiator, seed_known;
	uint64_t seed, total, sent, recvd;
	uint8_t seedbuf[8];
	unsigned int seed_got, prefix_sent;
	bool bad;
	/* bench mode: count what arrives, send zeros */
	bool bench;
	/* raw mode: what arrived */
	uint8_t raw[65536];
	size_t raw_len;
};

struct gv {
	struct vdriver d;
	struct virtio_vsock *dev;
	struct vsock_conf conf;
	uint64_t rx_gpa[RX_BUFS];
	int rx_of_head[VQ_MAX_SIZE];
	uint64_t tx_gpa[TX_SLOTS];
	int tx_of_head[VQ_MAX_SIZE];
	int tx_free[TX_SLOTS];
	unsigned int nr_tx_free;
	struct gconn c[MAX_GCONNS];
	uint32_t listen_port; /* accept REQUESTs for it (0: none) */
	uint64_t accept_total; /* stream bytes for accepted connections */
	uint32_t accept_buf_alloc;
	uint32_t next_port;
	unsigned int rst_unknown; /* RSTs for no connection of ours */
	uint32_t last_rst_port;
	unsigned int requests_refused;
	bool refuse_all; /* answer REQUESTs with RST */
	bool ignore_requests; /* answer nothing */
	bool accept_bench; /* accepted connections are bench sinks */
	bool hold_rx; /* do not give used rx buffers back */
	unsigned int held[RX_BUFS], nr_held;
	uint32_t tx_size; /* payload per RW packet */
	char dir[64];
};

static struct gv g;

static void gv_post_rx(struct gv *v, unsigned int i)
{
	struct vdriver_buf b[2];
	uint16_t head;

	/* Half the buffers split the header from the payload, as older Linux. */
	if (i % 2) {
		b[0] = (struct vdriver_buf){ v->rx_gpa[i], VSOCK_HDR_SIZE };
		b[1] = (struct vdriver_buf){ v->rx_gpa[i] + VSOCK_HDR_SIZE,
					     RX_PAYLOAD };
		head = vdriver_post(&v->d, VIRTIO_VSOCK_RX, NULL, 0, b, 2,
				    false);
	} else {
		b[0] = (struct vdriver_buf){ v->rx_gpa[i],
					     VSOCK_HDR_SIZE + RX_PAYLOAD };
		head = vdriver_post(&v->d, VIRTIO_VSOCK_RX, NULL, 0, b, 1,
				    false);
	}
	v->rx_of_head[head] = (int)i;
}

static void gv_start(struct gv *v)
{
	unsigned int i;

	assert_true(vdriver_start(&v->d, ~0ULL, 256) & VIRTIO_STATUS_DRIVER_OK);
	memset(v->c, 0, sizeof(v->c));
	v->nr_tx_free = TX_SLOTS;
	for (i = 0; i < TX_SLOTS; i++)
		v->tx_free[i] = (int)i;
	for (i = 0; i < RX_BUFS; i++)
		gv_post_rx(v, i);
	vdriver_kick(&v->d, VIRTIO_VSOCK_RX);
	v->listen_port = 0;
	v->refuse_all = v->ignore_requests = false;
	v->rst_unknown = 0;
	v->requests_refused = 0;
	v->hold_rx = false;
	v->nr_held = 0;
	v->accept_bench = false;
	if (!v->tx_size)
		v->tx_size = TX_PAYLOAD;
}

/* Give back the rx buffers held while hold_rx was set. */
static void gv_release_rx(struct gv *v)
{
	v->hold_rx = false;
	while (v->nr_held)
		gv_post_rx(v, v->held[--v->nr_held]);
	vdriver_kick(&v->d, VIRTIO_VSOCK_RX);
}

static struct gconn *gv_find(struct gv *v, uint32_t gport, uint32_t hport)
{
	unsigned int i;

	for (i = 0; i < MAX_GCONNS; i++)
		if (v->c[i].state != G_FREE && v->c[i].state != G_CLOSED &&
		    v->c[i].gport == gport && v->c[i].hport == hport)
			return &v->c[i];
	return NULL;
}

static struct gconn *gv_alloc(struct gv *v)
{
	unsigned int i;

	/* Free slots first; closed ones (kept for inspection) when none. */
	for (i = 0; i < 2 * MAX_GCONNS; i++) {
		struct gconn *c = &v->c[i % MAX_GCONNS];

		if (c->state == G_FREE ||
		    (i >= MAX_GCONNS && c->state == G_CLOSED)) {
			memset(c, 0, sizeof(*c));
			c->buf_alloc = GUEST_BUF_ALLOC;
			return c;
		}
	}
	fail_msg("out of guest connections");
	return NULL;
}

static void gv_reap_tx(struct gv *v)
{
	uint16_t head;
	uint32_t len;

	while (vdriver_wait_used(&v->d, VIRTIO_VSOCK_TX, &head, &len, 0) == 1)
		v->tx_free[v->nr_tx_free++] = v->tx_of_head[head];
}

/* Send one packet: header fields from @c (or raw ports), @len payload. */
static void gv_send_raw(struct gv *v, const struct vsock_pkt *p,
			const void *payload, uint32_t len)
{
	struct vdriver_buf b[2];
	unsigned int n;
	uint16_t head;
	uint8_t *buf;
	uint64_t gpa;
	int slot;
	int64_t deadline = now_ms() + 5000;

	for (;;) {
		gv_reap_tx(v);
		if (v->nr_tx_free)
			break;
		assert_true(now_ms() < deadline);
		usleep(100);
	}
	slot = v->tx_free[--v->nr_tx_free];
	gpa = v->tx_gpa[slot];
	buf = vdriver_ptr(&v->d, gpa);
	vsock_proto_build_hdr(p, buf);
	if (len)
		memcpy(buf + VSOCK_HDR_SIZE, payload, len);
	/* Three layouts: whole, header | payload, header split in two. */
	switch (slot % 3) {
	case 0:
		b[0] = (struct vdriver_buf){ gpa, VSOCK_HDR_SIZE + len };
		n = 1;
		break;
	case 1:
		b[0] = (struct vdriver_buf){ gpa, VSOCK_HDR_SIZE };
		b[1] = (struct vdriver_buf){ gpa + VSOCK_HDR_SIZE, len };
		n = len ? 2 : 1;
		break;
	default:
		b[0] = (struct vdriver_buf){ gpa, 20 };
		b[1] = (struct vdriver_buf){ gpa + 20,
					     VSOCK_HDR_SIZE - 20 + len };
		n = 2;
		break;
	}
	head = vdriver_post(&v->d, VIRTIO_VSOCK_TX, b, n, NULL, 0, false);
	v->tx_of_head[head] = slot;
	vdriver_kick(&v->d, VIRTIO_VSOCK_TX);
}

static void gv_send(struct gv *v, struct gconn *c, uint16_t op, uint32_t flags,
		    const void *payload, uint32_t len)
{
	struct vsock_pkt p = {
		.src_cid = GUEST_CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = c->gport,
		.dst_port = c->hport,
		.len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.flags = flags,
		.buf_alloc = c->buf_alloc,
		.fwd_cnt = c->fwd_cnt,
	};

	c->adv_fwd_cnt = c->fwd_cnt;
	if (op == VIRTIO_VSOCK_OP_RW)
		c->tx_cnt += len;
	gv_send_raw(v, &p, payload, len);
}

static uint32_t gv_credit(const struct gconn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 :
						c->peer_buf_alloc - in_flight;
}

/* The application read @n bytes: credit back to the device, as Linux. */
static void gv_consumed(struct gv *v, struct gconn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (c->fwd_cnt - c->adv_fwd_cnt >= c->buf_alloc / 4)
		gv_send(v, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
}

static void gv_data(struct gv *v, struct gconn *c, const uint8_t *data,
		    uint32_t len)
{
	assert_true(c->rx_cnt - c->fwd_cnt + len <= c->buf_alloc);
	c->rx_cnt += len;
	if (c->bench) {
		c->recvd += len;
		gv_consumed(v, c, len);
		return;
	}
	if (!c->stream) {
		assert_true(c->raw_len + len <= sizeof(c->raw));
		memcpy(c->raw + c->raw_len, data, len);
		c->raw_len += len;
		if (!c->paused)
			gv_consumed(v, c, len);
		return;
	}
	if (!c->initiator && !c->seed_known) {
		uint32_t take = 8 - c->seed_got;

		if (take > len)
			take = len;
		memcpy(c->seedbuf + c->seed_got, data, take);
		c->seed_got += take;
		data += take;
		len -= take;
		if (c->seed_got == 8) {
			memcpy(&c->seed, c->seedbuf, 8);
			c->seed_known = true;
		}
		gv_consumed(v, c, take);
	}
	if (len) {
		uint64_t seed = c->initiator ? c->seed ^ ANSWER : c->seed;

		if (c->recvd + len > c->total ||
		    !stream_check(seed, c->recvd, data, len))
			c->bad = true;
		c->recvd += len;
		gv_consumed(v, c, len);
	}
}

static void gv_rx_packet(struct gv *v, const struct vsock_pkt *p,
			 const uint8_t *data)
{
	struct gconn *c = gv_find(v, p->dst_port, p->src_port);

	assert_int_equal(p->src_cid, VSOCK_HOST_CID);
	assert_int_equal(p->dst_cid, GUEST_CID);
	assert_int_equal(p->type, VIRTIO_VSOCK_TYPE_STREAM);
	if (!c) {
		if (p->op == VIRTIO_VSOCK_OP_RST) {
			v->rst_unknown++;
			v->last_rst_port = p->src_port;
			return;
		}
		assert_int_equal(p->op, VIRTIO_VSOCK_OP_REQUEST);
		if (v->ignore_requests)
			return;
		c = gv_alloc(v);
		c->gport = p->dst_port;
		c->hport = p->src_port;
		c->peer_buf_alloc = p->buf_alloc;
		c->peer_fwd_cnt = p->fwd_cnt;
		if (v->refuse_all || p->dst_port != v->listen_port) {
			v->requests_refused++;
			gv_send(v, c, VIRTIO_VSOCK_OP_RST, 0, NULL, 0);
			c->state = G_FREE;
			return;
		}
		c->state = G_OPEN;
		c->buf_alloc = v->accept_buf_alloc ? v->accept_buf_alloc :
						     GUEST_BUF_ALLOC;
		if (v->accept_total) {
			c->stream = true;
			c->total = v->accept_total;
		}
		if (v->accept_bench) {
			c->stream = false;
			c->bench = true;
		}
		gv_send(v, c, VIRTIO_VSOCK_OP_RESPONSE, 0, NULL, 0);
		if (c->bench)
			gv_send(v, c, VIRTIO_VSOCK_OP_RW, 0, "!", 1);
		return;
	}
	/* Credit rides on every packet. */
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
	switch (p->op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		assert_int_equal(c->state, G_CONNECTING);
		c->state = G_OPEN;
		break;
	case VIRTIO_VSOCK_OP_RST:
		c->state = G_CLOSED;
		c->rst = true;
		break;
	case VIRTIO_VSOCK_OP_RW:
		assert_int_equal(c->state, G_OPEN);
		assert_false(c->peer_shut_send);
		gv_data(v, c, data, p->len);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (p->flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
			c->peer_shut_send = true;
		if (p->flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
			c->peer_shut_rcv = true;
		/* A bench connection closes when the host does, as Linux's. */
		if (c->bench && !c->shut_sent) {
			c->shut_sent = true;
			gv_send(v, c, VIRTIO_VSOCK_OP_SHUTDOWN,
				VIRTIO_VSOCK_SHUTDOWN_RCV |
					VIRTIO_VSOCK_SHUTDOWN_SEND,
				NULL, 0);
		}
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->credit_requests++;
		gv_send(v, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	default:
		fail_msg("unexpected op %u", p->op);
	}
}

static bool gv_reap_rx(struct gv *v)
{
	static uint8_t payload[RX_PAYLOAD];
	bool any = false;
	uint16_t head;
	uint32_t len;

	while (vdriver_wait_used(&v->d, VIRTIO_VSOCK_RX, &head, &len, 0) == 1) {
		int i = v->rx_of_head[head];
		uint8_t *buf = vdriver_ptr(&v->d, v->rx_gpa[i]);
		struct vsock_pkt p;

		assert_true(len >= VSOCK_HDR_SIZE);
		{
			struct virtio_vsock_hdr h;

			memcpy(&h, buf, sizeof(h));
			p.src_cid = le64toh(h.src_cid);
			p.dst_cid = le64toh(h.dst_cid);
			p.src_port = le32toh(h.src_port);
			p.dst_port = le32toh(h.dst_port);
			p.len = le32toh(h.len);
			p.type = le16toh(h.type);
			p.op = le16toh(h.op);
			p.flags = le32toh(h.flags);
			p.buf_alloc = le32toh(h.buf_alloc);
			p.fwd_cnt = le32toh(h.fwd_cnt);
		}
		assert_int_equal(len, VSOCK_HDR_SIZE + p.len);
		assert_true(p.len <= RX_PAYLOAD);
		memcpy(payload, buf + VSOCK_HDR_SIZE, p.len);
		/* Repost first: handling may send, and the device may answer. */
		if (v->hold_rx) {
			v->held[v->nr_held++] = (unsigned int)i;
		} else {
			gv_post_rx(v, (unsigned int)i);
			vdriver_kick(&v->d, VIRTIO_VSOCK_RX);
		}
		gv_rx_packet(v, &p, payload);
		any = true;
	}
	return any;
}

/* Stream connections send what their credit allows. */
static bool gv_push_streams(struct gv *v)
{
	static uint8_t buf[TX_PAYLOAD];
	bool any = false;
	unsigned int i;

	for (i = 0; i < MAX_GCONNS; i++) {
		struct gconn *c = &v->c[i];
		unsigned int burst = 0;

		if (c->state == G_OPEN && c->bench && c->sent < c->total) {
			static const uint8_t zeros[TX_MAX_PAYLOAD];

			while (burst++ < 8 && v->nr_tx_free) {
				uint32_t n = gv_credit(c);

				if (n > v->tx_size)
					n = v->tx_size;
				if (n > c->total - c->sent)
					n = (uint32_t)(c->total - c->sent);
				if (!n)
					break;
				gv_send(v, c, VIRTIO_VSOCK_OP_RW, 0, zeros, n);
				c->sent += n;
				any = true;
			}
			gv_reap_tx(v);
			continue;
		}
		if (c->state != G_OPEN || !c->stream || c->shut_sent)
			continue;
		if (!c->initiator && !c->seed_known)
			continue;
		while (burst++ < 8 && v->nr_tx_free) {
			uint32_t credit = gv_credit(c), n;

			if (c->initiator && c->prefix_sent < 8) {
				if (credit < 8)
					break;
				gv_send(v, c, VIRTIO_VSOCK_OP_RW, 0, &c->seed,
					8);
				c->prefix_sent = 8;
				any = true;
				continue;
			}
			if (c->sent == c->total) {
				gv_send(v, c, VIRTIO_VSOCK_OP_SHUTDOWN,
					VIRTIO_VSOCK_SHUTDOWN_SEND, NULL, 0);
				c->shut_sent = true;
				any = true;
				break;
			}
			n = TX_PAYLOAD;
			if (n > credit)
				n = credit;
			if (n > c->total - c->sent)
				n = (uint32_t)(c->total - c->sent);
			if (!n)
				break;
			stream_fill(c->initiator ? c->seed : c->seed ^ ANSWER,
				    c->sent, buf, n);
			gv_send(v, c, VIRTIO_VSOCK_OP_RW, 0, buf, n);
			c->sent += n;
			any = true;
		}
		gv_reap_tx(v);
	}
	return any;
}

/* One round of the guest: take what came, send what we can, else sleep. */
static void gv_poll(struct gv *v, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = v->d.irq_fd[VIRTIO_VSOCK_RX], .events = POLLIN },
		{ .fd = v->d.irq_fd[VIRTIO_VSOCK_TX], .events = POLLIN },
	};
	bool any;
	uint64_t cnt;

	gv_reap_tx(v);
	any = gv_reap_rx(v);
	any |= gv_push_streams(v);
	if (any || !timeout_ms)
		return;
	if (poll(p, 2, timeout_ms) > 0) {
		if (p[0].revents && read(p[0].fd, &cnt, 8) < 0)
			cnt = 0;
		if (p[1].revents && read(p[1].fd, &cnt, 8) < 0)
			cnt = 0;
	}
}

/* Run the guest until @done(@arg) or @timeout_ms; false on timeout. */
static bool gv_run_until(struct gv *v, bool (*done)(void *), void *arg,
			 int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!done(arg)) {
		if (now_ms() > deadline)
			return false;
		gv_poll(v, 5);
	}
	return true;
}

static struct gconn *gv_connect_buf(struct gv *v, uint32_t hport,
				    uint32_t buf_alloc)
{
	struct gconn *c = gv_alloc(v);

	c->buf_alloc = buf_alloc;
	c->gport = v->next_port++;
	c->hport = hport;
	c->state = G_CONNECTING;
	gv_send(v, c, VIRTIO_VSOCK_OP_REQUEST, 0, NULL, 0);
	return c;
}

static struct gconn *gv_connect(struct gv *v, uint32_t hport)
{
	return gv_connect_buf(v, hport, GUEST_BUF_ALLOC);
}

static bool conn_settled(void *arg)
{
	struct gconn *c = arg;

	return c->state != G_CONNECTING;
}

static bool conn_closed(void *arg)
{
	struct gconn *c = arg;

	return c->state == G_CLOSED;
}

struct raw_wait {
	struct gconn *c;
	size_t len;
};

static bool raw_has(void *arg)
{
	struct raw_wait *w = arg;

	return w->c->raw_len >= w->len;
}

static bool peer_shut(void *arg)
{
	struct gconn *c = arg;

	return c->peer_shut_send || c->state == G_CLOSED;
}

static bool credit_asked(void *arg)
{
	struct gconn *c = arg;

	return c->credit_requests > 0;
}

static bool all_rx_held(void *arg)
{
	struct gv *v = arg;

	return v->nr_held == RX_BUFS;
}

static bool dev_idle(void *arg)
{
	struct gv *v = arg;

	return virtio_vsock_nr_conns(v->dev) == 0;
}

/* -- host side -- */

static void path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", g.dir, name);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static ssize_t read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Wait up to @ms for the peer to close: true on EOF/reset. */
static bool host_sees_close(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	for (;;) {
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			return false;
		n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n <= 0)
			return n == 0 || errno == ECONNRESET;
	}
}

/* One host end of a stream connection, on its own threads. */
struct hpeer {
	int fd;
	bool initiator;
	uint64_t seed, total;
	/* Firecracker host → guest: read "OK <port>\n" first. */
	const char *fc_port_line;
	pthread_t tid, wtid;
	bool ok, done, write_ok;
	uint64_t rx;
	char err[96];
};

static void *hpeer_writer(void *arg)
{
	struct hpeer *h = arg;
	uint64_t seed = h->initiator ? h->seed : h->seed ^ ANSWER;
	static __thread uint8_t buf[65536];
	uint64_t off = 0;

	h->write_ok = true;
	if (h->initiator && !write_all(h->fd, &h->seed, 8))
		h->write_ok = false;
	while (h->write_ok && off < h->total) {
		size_t n = h->total - off < sizeof(buf) ? h->total - off :
							  sizeof(buf);

		stream_fill(seed, off, buf, n);
		if (!write_all(h->fd, buf, n))
			h->write_ok = false;
		off += n;
	}
	shutdown(h->fd, SHUT_WR);
	return NULL;
}

static void *hpeer_main(void *arg)
{
	struct hpeer *h = arg;
	static __thread uint8_t buf[65536];
	uint64_t seed;
	char c;

	h->ok = false;
	if (h->fc_port_line) {
		char line[32];
		size_t n = 0;

		while (n < sizeof(line) - 1 && read_full(h->fd, &c, 1) == 1) {
			line[n++] = c;
			if (c == '\n')
				break;
		}
		line[n] = '\0';
		if (strncmp(line, "OK ", 3) || line[n - 1] != '\n') {
			snprintf(h->err, sizeof(h->err), "no OK line: '%s'",
				 line);
			goto out;
		}
	}
	if (!h->initiator && read_full(h->fd, &h->seed, 8) != 8) {
		snprintf(h->err, sizeof(h->err), "no seed");
		goto out;
	}
	if (pthread_create(&h->wtid, NULL, hpeer_writer, h)) {
		snprintf(h->err, sizeof(h->err), "pthread_create");
		goto out;
	}
	seed = h->initiator ? h->seed ^ ANSWER : h->seed;
	for (;;) {
		ssize_t n = read(h->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (h->rx + (uint64_t)n > h->total ||
		    !stream_check(seed, h->rx, buf, (size_t)n)) {
			snprintf(h->err, sizeof(h->err), "bad data at %llu",
				 (unsigned long long)h->rx);
			h->rx += (uint64_t)n;
			break;
		}
		h->rx += (uint64_t)n;
	}
	pthread_join(h->wtid, NULL);
	if (!h->err[0] && h->rx != h->total)
		snprintf(h->err, sizeof(h->err), "got %llu of %llu bytes",
			 (unsigned long long)h->rx,
			 (unsigned long long)h->total);
	if (!h->err[0] && !h->write_ok)
		snprintf(h->err, sizeof(h->err), "write failed");
	h->ok = !h->err[0];
out:
	close(h->fd);
	__atomic_store_n(&h->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void hpeer_start(struct hpeer *h, int fd, bool initiator, uint64_t seed,
			uint64_t total)
{
	memset(h, 0, sizeof(*h));
	h->fd = fd;
	h->initiator = initiator;
	h->seed = seed;
	h->total = total;
}

static void hpeer_run(struct hpeer *h)
{
	assert_int_equal(pthread_create(&h->tid, NULL, hpeer_main, h), 0);
}

/* A host server for guest → host connections: accepts @n, each a peer. */
struct hserver {
	int lfd;
	unsigned int n;
	uint64_t total;
	struct hpeer *peers;
	pthread_t tid;
};

static void *hserver_main(void *arg)
{
	struct hserver *s = arg;
	unsigned int i;

	for (i = 0; i < s->n; i++) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		hpeer_start(&s->peers[i], fd, false, 0, s->total);
		if (pthread_create(&s->peers[i].tid, NULL, hpeer_main,
				   &s->peers[i]))
			break;
	}
	return NULL;
}

/* Host → guest connection in the convention of g.conf; -1 on failure. */
static int host_dial_guest(uint32_t port)
{
	char path[200], hdr[40];
	int fd, n;

	if (g.conf.kind == VSOCK_HYPERKIT) {
		path_in(path, sizeof(path), "connect");
		n = snprintf(hdr, sizeof(hdr), "%08x.%08x\n", GUEST_CID, port);
	} else {
		snprintf(path, sizeof(path), "%s", g.conf.path);
		n = snprintf(hdr, sizeof(hdr), "CONNECT %u\n", port);
	}
	fd = unix_connect(path);
	if (fd < 0)
		return -1;
	if (!write_all(fd, hdr, (size_t)n)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Start @h on a new host → guest connection to GUEST_PORT: it sends and
 * checks @total bytes of the stream of @seed both ways.
 */
static void host_peer_to_guest(struct hpeer *h, uint64_t seed, uint64_t total)
{
	int fd = host_dial_guest(GUEST_PORT);

	assert_true(fd >= 0);
	hpeer_start(h, fd, true, seed, total);
	if (g.conf.kind == VSOCK_FIRECRACKER)
		h->fc_port_line = "OK";
	hpeer_run(h);
}

/* Where the guest's connections to host port @port land. */
static void host_port_path(char *path, size_t len, uint32_t port)
{
	if (g.conf.kind == VSOCK_HYPERKIT)
		snprintf(path, len, "%s/00000002.%08x", g.dir, port);
	else
		snprintf(path, len, "%s_%u", g.conf.path, port);
}

/* -- fixtures -- */

static int setup_kind(void **state, enum vsock_kind kind)
{
	char err[256];

	memset(&g, 0, sizeof(g));
	snprintf(g.dir, sizeof(g.dir), "/tmp/khyve-vsock-XXXXXX");
	if (!mkdtemp(g.dir))
		return -1;
	g.conf.kind = kind;
	g.conf.guest_cid = GUEST_CID;
	if (kind == VSOCK_HYPERKIT) {
		snprintf(g.conf.path, sizeof(g.conf.path), "%s", g.dir);
		g.conf.forwards[0] = 2376;
		g.conf.nr_forwards = 1;
	} else {
		snprintf(g.conf.path, sizeof(g.conf.path), "%s/v.sock", g.dir);
	}
	if (vdriver_init(&g.d, 256ULL << 20))
		return -1;
	if (virtio_vsock_init(&g.dev, "vsock-test", &g.d.mem, &g.conf, err,
			      sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	vdriver_attach(&g.d, virtio_vsock_dev(g.dev));
	for (unsigned int i = 0; i < RX_BUFS; i++)
		g.rx_gpa[i] =
			vdriver_alloc(&g.d, VSOCK_HDR_SIZE + RX_PAYLOAD, 64);
	for (unsigned int i = 0; i < TX_SLOTS; i++)
		g.tx_gpa[i] = vdriver_alloc(
			&g.d, VSOCK_HDR_SIZE + TX_MAX_PAYLOAD, 64);
	g.next_port = 40000;
	gv_start(&g);
	*state = &g;
	return 0;
}

static int setup_hyperkit(void **state)
{
	return setup_kind(state, VSOCK_HYPERKIT);
}

static int setup_firecracker(void **state)
{
	return setup_kind(state, VSOCK_FIRECRACKER);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	virtio_vsock_destroy(g.dev);
	vdriver_exit(&g.d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g.dir);
	if (system(cmd))
		return -1;
	return 0;
}

/* -- tests -- */

static void test_config_and_paths(void **state)
{
	struct virtio_dev *dev = virtio_vsock_dev(g.dev);
	char path[200], link[64];
	struct stat st;
	uint64_t cid = 0;
	ssize_t n;

	(void)state;
	assert_int_equal(dev->device_id, 19);
	assert_int_equal(dev->nr_queues, 3);
	dev->ops->config_read(dev, 0, &cid, 8);
	assert_int_equal(le64toh(cid), GUEST_CID);
	if (g.conf.kind == VSOCK_HYPERKIT) {
		path_in(path, sizeof(path), "connect");
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		path_in(path, sizeof(path), "00000003.00000948");
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		path_in(path, sizeof(path), "guest.2376");
		n = readlink(path, link, sizeof(link) - 1);
		assert_true(n > 0);
		link[n] = '\0';
		assert_string_equal(link, "00000003.00000948");
	} else {
		assert_int_equal(stat(g.conf.path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
	}
}

/* Guest → host with raw data both ways, then the guest closes. */
static void test_guest_to_host(void **state)
{
	char path[200], buf[64];
	struct raw_wait w;
	struct gconn *c;
	int lfd, fd;

	(void)state;
	host_port_path(path, sizeof(path), HOST_PORT);
	lfd = unix_listen(path);
	c = gv_connect(&g, HOST_PORT);
	assert_true(gv_run_until(&g, conn_settled, c, 5000));
	assert_int_equal(c->state, G_OPEN);
	assert_int_equal(c->peer_buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	/* No header on this side: the first bytes are the guest's. */
	gv_send(&g, c, VIRTIO_VSOCK_OP_RW, 0, "hello host", 10);
	assert_int_equal(read_full(fd, buf, 10), 10);
	assert_memory_equal(buf, "hello host", 10);
	assert_true(write_all(fd, "hello guest", 11));
	w = (struct raw_wait){ c, 11 };
	assert_true(gv_run_until(&g, raw_has, &w, 5000));
	assert_memory_equal(c->raw, "hello guest", 11);
	/* Guest-side close: SHUTDOWN both → host EOF, RST back. */
	gv_send(&g, c, VIRTIO_VSOCK_OP_SHUTDOWN,
		VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND, NULL,
		0);
	assert_true(gv_run_until(&g, conn_closed, c, 5000));
	assert_true(c->rst);
	assert_true(host_sees_close(fd, 5000));
	assert_true(gv_run_until(&g, dev_idle, &g, 5000));
	close(fd);
	close(lfd);
}

static bool got_rst_unknown(void *arg)
{
	unsigned int *want = arg;

	return g.rst_unknown >= *want;
}

/* Nobody listens: RST; and a packet for no connection: RST. */
static void test_rst_no_listener(void **state)
{
	struct vsock_pkt p = {
		.src_cid = GUEST_CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = 777,
		.dst_port = 9999,
		.len = 0,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = VIRTIO_VSOCK_OP_RW,
	};
	unsigned int want = 1;
	struct gconn *c;

	(void)state;
	c = gv_connect(&g, 4242);
	assert_true(gv_run_until(&g, conn_settled, c, 5000));
	assert_int_equal(c->state, G_CLOSED);
	assert_true(c->rst);
	gv_send_raw(&g, &p, NULL, 0);
	assert_true(gv_run_until(&g, got_rst_unknown, &want, 5000));
	assert_int_equal(g.last_rst_port, 9999);
	assert_int_equal(virtio_vsock_nr_conns(g.dev), 0);
	assert_false(vdriver_status(&g.d) & VIRTIO_STATUS_NEEDS_RESET);
}

static bool hpeer_done(void *arg)
{
	struct hpeer *h = arg;

	return __atomic_load_n(&h->done, __ATOMIC_ACQUIRE);
}

/* Host → guest port: the handshake, then a stream both ways. */
static void test_host_to_guest(void **state)
{
	struct hpeer h;

	(void)state;
	g.listen_port = GUEST_PORT;
	g.accept_total = 300000;
	host_peer_to_guest(&h, 1234, 300000);
	assert_true(gv_run_until(&g, hpeer_done, &h, 20000));
	pthread_join(h.tid, NULL);
	if (!h.ok)
		fail_msg("host peer: %s", h.err);
	assert_true(gv_run_until(&g, conn_closed, &g.c[0], 5000));
	assert_true(gv_run_until(&g, dev_idle, &g, 5000));
	assert_int_equal(g.c[0].recvd, 300000);
	assert_false(g.c[0].bad);
	assert_true(g.c[0].rst);
}

/* Refused by the guest (RST): the host socket closes, no OK line. */
static void test_host_to_guest_refused(void **state)
{
	char buf[8];
	int fd;

	(void)state;
	g.refuse_all = true;
	fd = host_dial_guest(6000);
	assert_true(fd >= 0);
	for (int i = 0; i < 1000 && !g.requests_refused; i++)
		gv_poll(&g, 5);
	assert_int_equal(g.requests_refused, 1);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	assert_true(gv_run_until(&g, dev_idle, &g, 5000));
}

/* HyperKit guest_forwards: DIR/guest.2376 reaches guest port 2376. */
static void test_guest_forwards(void **state)
{
	char path[200], buf[16];
	struct raw_wait w;
	struct gconn *c;
	int fd;

	(void)state;
	g.listen_port = 2376;
	path_in(path, sizeof(path), "guest.2376");
	fd = unix_connect(path);
	assert_true(fd >= 0);
	/* No header: the bytes are payload at once. */
	assert_true(write_all(fd, "ping", 4));
	while (!(c = gv_find(&g, 2376, 1U << 30)))
		gv_poll(&g, 5);
	w = (struct raw_wait){ c, 4 };
	assert_true(gv_run_until(&g, raw_has, &w, 5000));
	assert_memory_equal(c->raw, "ping", 4);
	gv_send(&g, c, VIRTIO_VSOCK_OP_RW, 0, "pong", 4);
	assert_int_equal(read_full(fd, buf, 4), 4);
	assert_memory_equal(buf, "pong", 4);
	/* Host-side close: the guest hears SHUTDOWN, closes, gets RST. */
	close(fd);
	assert_true(gv_run_until(&g, peer_shut, c, 5000));
	assert_true(c->peer_shut_send);
	gv_send(&g, c, VIRTIO_VSOCK_OP_SHUTDOWN,
		VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND, NULL,
		0);
	assert_true(gv_run_until(&g, conn_closed, c, 5000));
	assert_true(gv_run_until(&g, dev_idle, &g, 5000));
}

/* Garbage handshakes and a host client that sends none are closed. */
static void test_bad_handshakes(void **state)
{
	static const char *const fc_bad[] = {
		"GET / HTTP/1.1\n",
		"CONNECT\n",
		"CONNECT 12 13\n",
		"CONNECT 99999999999\n",
		"CONNECT 1                                           \n",
	};
	static const char *const hk_bad[] = {
		"00000004.00001388\n", /* another CID */
		"zzzzzzzz.00001388\n",
		"CONNECT 5000\n    ",
	};
	const char *const *bad =
		g.conf.kind == VSOCK_HYPERKIT ? hk_bad : fc_bad;
	unsigned int n = g.conf.kind == VSOCK_HYPERKIT ? 3 : 5, i;
	char path[200];
	int silent, fd;

	(void)state;
	g.listen_port = GUEST_PORT;
	if (g.conf.kind == VSOCK_HYPERKIT)
		path_in(path, sizeof(path), "connect");
	else
		snprintf(path, sizeof(path), "%s", g.conf.path);
	silent = unix_connect(path);
	assert_true(silent >= 0);
	for (i = 0; i < n; i++) {
		fd = unix_connect(path);
		assert_true(fd >= 0);
		assert_true(write_all(fd, bad[i], strlen(bad[i])));
		assert_true(host_sees_close(fd, 5000));
		close(fd);
	}
	/* The guest heard of none of them. */
	for (i = 0; i < 20; i++)
		gv_poll(&g, 5);
	assert_int_equal(g.requests_refused, 0);
	assert_null(gv_find(&g, GUEST_PORT, 1U << 30));
	/* The silent one goes after the handshake timeout. */
	assert_true(host_sees_close(silent, 8000));
	close(silent);
	/* A good one still works. */
	{
		struct hpeer h;

		g.accept_total = 1000;
		host_peer_to_guest(&h, 99, 1000);
		assert_true(gv_run_until(&g, hpeer_done, &h, 10000));
		pthread_join(h.tid, NULL);
		if (!h.ok)
			fail_msg("host peer: %s", h.err);
	}
}

/* A guest that never answers a REQUEST: the host client is closed. */
static void test_connect_timeout(void **state)
{
	int64_t t0 = now_ms();
	int fd;

	(void)state;
	g.ignore_requests = true;
	fd = host_dial_guest(GUEST_PORT);
	assert_true(fd >= 0);
	while (!host_sees_close(fd, 10)) {
		gv_poll(&g, 5);
		assert_true(now_ms() - t0 < 10000);
	}
	assert_true(now_ms() - t0 >= VIRTIO_VSOCK_CONNECT_TIMEOUT_MS - 600);
	close(fd);
	/* The device told the guest to forget it. */
	assert_true(gv_run_until(&g, dev_idle, &g, 5000));
	{
		unsigned int want = 1;

		assert_true(gv_run_until(&g, got_rst_unknown, &want, 5000));
	}
}

/* Credit: neither side sends beyond it, and both recover. */
static void test_credit_exhaustion(void **state)
{
	static uint8_t big[1 << 20];
	char path[200];
	struct raw_wait w;
	struct gconn *c;
	uint64_t sent = 0;
	int lfd, fd, i;
	size_t got;

	(void)state;
	host_port_path(path, sizeof(path), HOST_PORT);
	lfd = unix_listen(path);
	c = gv_connect_buf(&g, HOST_PORT, 8192); /* a small guest buffer... */
	c->paused = true; /* ...that its application does not read */
	assert_true(gv_run_until(&g, conn_settled, c, 5000));
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);

	/* Host → guest: 64 KiB offered, 8 KiB fits. */
	stream_fill(7, 0, big, 65536);
	assert_true(write_all(fd, big, 65536));
	w = (struct raw_wait){ c, 8192 };
	assert_true(gv_run_until(&g, raw_has, &w, 5000));
	/* The device asks for credit, and sends no more. */
	assert_true(gv_run_until(&g, credit_asked, c, 5000));
	for (i = 0; i < 40; i++)
		gv_poll(&g, 5);
	assert_int_equal(c->raw_len, 8192);
	/* The application reads: the rest flows. */
	c->paused = false;
	gv_consumed(&g, c, 8192);
	gv_send(&g, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	w = (struct raw_wait){ c, 65536 };
	assert_true(gv_run_until(&g, raw_has, &w, 5000));
	assert_memory_equal(c->raw, big, 65536);

	/* Guest → host, the host not reading: the guest runs out of credit. */
	stream_fill(8, 0, big, sizeof(big));
	for (i = 0; i < 50;) {
		uint32_t n = gv_credit(c);

		if (n > TX_PAYLOAD)
			n = TX_PAYLOAD;
		if (n && sent < sizeof(big)) {
			if (n > sizeof(big) - sent)
				n = (uint32_t)(sizeof(big) - sent);
			gv_send(&g, c, VIRTIO_VSOCK_OP_RW, 0, big + sent, n);
			sent += n;
			i = 0;
			continue;
		}
		/* Done once no credit came back for 50 rounds. */
		gv_poll(&g, 2);
		i++;
	}
	assert_true(sent < sizeof(big));
	assert_int_equal(gv_credit(c), 0);
	/* The host reads: credit comes back, everything arrives in order. */
	{
		static uint8_t back[1 << 20];

		got = 0;
		while (got < sizeof(big)) {
			ssize_t n = recv(fd, back + got, sizeof(back) - got,
					 MSG_DONTWAIT);

			if (n > 0)
				got += (size_t)n;
			while (sent < sizeof(big) && gv_credit(c)) {
				uint32_t m = gv_credit(c);

				if (m > TX_PAYLOAD)
					m = TX_PAYLOAD;
				if (m > sizeof(big) - sent)
					m = (uint32_t)(sizeof(big) - sent);
				gv_send(&g, c, VIRTIO_VSOCK_OP_RW, 0,
					big + sent, m);
				sent += m;
			}
			gv_poll(&g, 1);
		}
		assert_memory_equal(back, big, sizeof(big));
	}
	assert_int_equal(c->state, G_OPEN);
	/* Beyond the credit is a protocol error: RST to that connection. */
	for (i = 0; i < 400 && c->state == G_OPEN; i++) {
		gv_send(&g, c, VIRTIO_VSOCK_OP_RW, 0, big, TX_PAYLOAD);
		gv_poll(&g, 0);
	}
	assert_true(gv_run_until(&g, conn_closed, c, 5000));
	assert_true(c->rst);
	assert_true(host_sees_close(fd, 5000));
	assert_false(vdriver_status(&g.d) & VIRTIO_STATUS_NEEDS_RESET);
	close(fd);
	close(lfd);
}

/* Hostile headers: an RST for that connection only, the device goes on. */
static void test_bad_packets(void **state)
{
	struct gconn *c;
	char path[200];
	int lfd, fd;
	unsigned int want;

	(void)state;
	host_port_path(path, sizeof(path), HOST_PORT);
	lfd = unix_listen(path);
	c = gv_connect(&g, HOST_PORT);
	assert_true(gv_run_until(&g, conn_settled, c, 5000));
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	{
		/* Another CID as source, for a port with no connection. */
		struct vsock_pkt p = {
			.src_cid = 77,
			.dst_cid = VSOCK_HOST_CID,
			.src_port = 123,
			.dst_port = 456,
			.type = VIRTIO_VSOCK_TYPE_STREAM,
			.op = VIRTIO_VSOCK_OP_REQUEST,
		};

		gv_send_raw(&g, &p, NULL, 0);
		want = 1;
		assert_true(gv_run_until(&g, got_rst_unknown, &want, 5000));
		/* SEQPACKET, a length beyond the chain, a short header. */
		p.src_cid = GUEST_CID;
		p.type = VIRTIO_VSOCK_TYPE_SEQPACKET;
		gv_send_raw(&g, &p, NULL, 0);
		p.type = VIRTIO_VSOCK_TYPE_STREAM;
		p.op = VIRTIO_VSOCK_OP_RW;
		p.len = 100;
		gv_send_raw(&g, &p, "x", 1);
		want = 3;
		assert_true(gv_run_until(&g, got_rst_unknown, &want, 5000));
	}
	{
		/* A header cut short: dropped. */
		struct vdriver_buf b;
		int slot;

		while (!g.nr_tx_free)
			gv_poll(&g, 1);
		slot = g.tx_free[--g.nr_tx_free];
		b = (struct vdriver_buf){ g.tx_gpa[slot], 20 };
		g.tx_of_head[vdriver_post(&g.d, VIRTIO_VSOCK_TX, &b, 1, NULL, 0,
					  false)] = slot;
		vdriver_kick(&g.d, VIRTIO_VSOCK_TX);
	}
	/* The open connection is untouched by all this. */
	gv_send(&g, c, VIRTIO_VSOCK_OP_RW, 0, "still", 5);
	{
		char buf[8];

		assert_int_equal(read_full(fd, buf, 5), 5);
		assert_memory_equal(buf, "still", 5);
	}
	/* A bad packet on it (type SEQPACKET) resets it. */
	{
		struct vsock_pkt p = {
			.src_cid = GUEST_CID,
			.dst_cid = VSOCK_HOST_CID,
			.src_port = c->gport,
			.dst_port = c->hport,
			.type = VIRTIO_VSOCK_TYPE_SEQPACKET,
			.op = VIRTIO_VSOCK_OP_RW,
			.len = 1,
		};

		gv_send_raw(&g, &p, "x", 1);
	}
	assert_true(gv_run_until(&g, conn_closed, c, 5000));
	assert_true(c->rst);
	assert_true(host_sees_close(fd, 5000));
	assert_false(vdriver_status(&g.d) & VIRTIO_STATUS_NEEDS_RESET);
	close(fd);
	close(lfd);
}

struct stress {
	unsigned int n_g2h, n_h2g;
	struct hserver srv;
	struct hpeer *hpeers; /* host → guest initiators */
	struct gconn *gc[64]; /* guest → host initiators */
};

static bool stress_done(void *arg)
{
	struct stress *s = arg;
	unsigned int i;

	for (i = 0; i < s->n_g2h; i++)
		if (!__atomic_load_n(&s->srv.peers[i].done, __ATOMIC_ACQUIRE) ||
		    s->gc[i]->state != G_CLOSED)
			return false;
	for (i = 0; i < s->n_h2g; i++)
		if (!__atomic_load_n(&s->hpeers[i].done, __ATOMIC_ACQUIRE))
			return false;
	for (i = 0; i < MAX_GCONNS; i++)
		if (g.c[i].stream && g.c[i].state != G_CLOSED)
			return false;
	return virtio_vsock_nr_conns(g.dev) == 0;
}

/* 20 connections at once, half each way, each moving data both ways. */
static void test_stress_20(void **state)
{
	const char *env = getenv("VSOCK_TEST_MIB");
	uint64_t total = (env ? strtoull(env, NULL, 10) : 2) << 20;
	struct stress s = { .n_g2h = 10, .n_h2g = 10 };
	char path[200];
	unsigned int i;
	int64_t t0;
	double secs;

	(void)state;
	if (!total)
		total = 2 << 20;
	s.srv.peers = calloc(s.n_g2h, sizeof(struct hpeer));
	s.hpeers = calloc(s.n_h2g, sizeof(struct hpeer));
	host_port_path(path, sizeof(path), HOST_PORT);
	s.srv.lfd = unix_listen(path);
	s.srv.n = s.n_g2h;
	s.srv.total = total;
	assert_int_equal(pthread_create(&s.srv.tid, NULL, hserver_main, &s.srv),
			 0);
	g.listen_port = GUEST_PORT;
	g.accept_total = total;
	t0 = now_ms();
	for (i = 0; i < s.n_g2h; i++) {
		s.gc[i] = gv_connect(&g, HOST_PORT);
		s.gc[i]->stream = true;
		s.gc[i]->initiator = true;
		s.gc[i]->seed = 1000 + i;
		s.gc[i]->total = total;
	}
	for (i = 0; i < s.n_h2g; i++)
		host_peer_to_guest(&s.hpeers[i], 2000 + i, total);
	assert_true(gv_run_until(&g, stress_done, &s, 120000));
	secs = (double)(now_ms() - t0) / 1000.0;
	pthread_join(s.srv.tid, NULL);
	for (i = 0; i < s.n_g2h; i++) {
		pthread_join(s.srv.peers[i].tid, NULL);
		if (!s.srv.peers[i].ok)
			fail_msg("g2h %u host: %s", i, s.srv.peers[i].err);
		assert_false(s.gc[i]->bad);
		assert_int_equal(s.gc[i]->recvd, total);
	}
	for (i = 0; i < s.n_h2g; i++) {
		pthread_join(s.hpeers[i].tid, NULL);
		if (!s.hpeers[i].ok)
			fail_msg("h2g %u host: %s", i, s.hpeers[i].err);
	}
	for (i = 0; i < MAX_GCONNS; i++) {
		if (g.c[i].state == G_FREE || !g.c[i].stream)
			continue;
		assert_false(g.c[i].bad);
		assert_int_equal(g.c[i].recvd, total);
		assert_true(g.c[i].rst);
	}
	print_message("vsock %s: 20 connections, %.1f MiB each way each, "
		      "%.2f s, %.1f MiB/s total\n",
		      g.conf.kind == VSOCK_HYPERKIT ? "hyperkit" :
						      "firecracker",
		      (double)total / (1 << 20), secs,
		      40.0 * (double)total / (1 << 20) / secs);
	close(s.srv.lfd);
	free(s.srv.peers);
	free(s.hpeers);
}

static bool some_data_moved(void *arg)
{
	struct stress *s = arg;
	unsigned int i;

	for (i = 0; i < s->n_h2g; i++)
		if (s->hpeers[i].rx < 100000)
			return false;
	return true;
}

/* A device reset mid-stream closes every host socket; the device comes back. */
static void test_reset_mid_stream(void **state)
{
	struct stress s = { .n_h2g = 4 };
	uint64_t total = 1ULL << 30; /* never finishes */
	unsigned int i;

	(void)state;
	s.hpeers = calloc(s.n_h2g, sizeof(struct hpeer));
	g.listen_port = GUEST_PORT;
	g.accept_total = total;
	for (i = 0; i < s.n_h2g; i++)
		host_peer_to_guest(&s.hpeers[i], 3000 + i, total);
	assert_true(gv_run_until(&g, some_data_moved, &s, 10000));
	assert_int_equal(virtio_vsock_nr_conns(g.dev), 4);
	vdriver_reset(&g.d);
	assert_int_equal(virtio_vsock_nr_conns(g.dev), 0);
	/* Every host peer sees its socket closed and ends. */
	for (i = 0; i < s.n_h2g; i++) {
		pthread_join(s.hpeers[i].tid, NULL);
		assert_false(s.hpeers[i].ok);
		assert_true(s.hpeers[i].rx < total);
	}
	free(s.hpeers);
	/* A new driver: connections work again. */
	gv_start(&g);
	test_guest_to_host(state);
}

/* The guest stops giving rx buffers: the device waits, loses nothing. */
static void test_rx_starvation(void **state)
{
	uint64_t total = 2 << 20, before;
	struct hpeer h;
	struct gconn *c;
	int i;

	(void)state;
	g.listen_port = GUEST_PORT;
	g.accept_total = total;
	host_peer_to_guest(&h, 4242, total);
	while (!(c = gv_find(&g, GUEST_PORT, 1U << 30)) || c->recvd < 65536)
		gv_poll(&g, 5);
	g.hold_rx = true;
	assert_true(gv_run_until(&g, all_rx_held, &g, 5000));
	before = c->recvd;
	for (i = 0; i < 40; i++)
		gv_poll(&g, 5);
	assert_int_equal(c->recvd, before);
	assert_true(before < total);
	gv_release_rx(&g);
	assert_true(gv_run_until(&g, hpeer_done, &h, 20000));
	pthread_join(h.tid, NULL);
	if (!h.ok)
		fail_msg("host peer: %s", h.err);
	assert_true(gv_run_until(&g, conn_closed, c, 5000));
	assert_int_equal(c->recvd, total);
	assert_false(c->bad);
}

/* -- benchmark (VSOCK_BENCH=1) -- */

struct bench_host {
	int fd;
	bool to_guest; /* write @total, else read until EOF */
	uint32_t port; /* dial this guest port (to_guest) */
	uint64_t total, moved;
	bool done;
	pthread_t tid;
};

static void *bench_host_main(void *arg)
{
	struct bench_host *b = arg;
	static __thread uint8_t buf[65536];
	char c;

	if (b->to_guest) {
		/* Wait for the guest's hello (Firecracker: after "OK n\n"). */
		do {
			if (read_full(b->fd, &c, 1) != 1)
				goto out;
		} while (c != '!');
		while (b->moved < b->total) {
			size_t n = b->total - b->moved < sizeof(buf) ?
					   b->total - b->moved :
					   sizeof(buf);

			if (!write_all(b->fd, buf, n))
				break;
			b->moved += n;
		}
	} else {
		for (;;) {
			ssize_t n = read(b->fd, buf, sizeof(buf));

			if (n <= 0)
				break;
			b->moved += (uint64_t)n;
		}
	}
out:
	close(b->fd);
	__atomic_store_n(&b->done, true, __ATOMIC_RELEASE);
	return NULL;
}

struct bench_run {
	struct bench_host *h;
	struct gconn **gc;
	unsigned int n;
	bool to_guest;
	uint64_t total;
};

static bool bench_done(void *arg)
{
	struct bench_run *r = arg;
	unsigned int i;

	for (i = 0; i < r->n; i++) {
		if (r->to_guest) {
			if (!__atomic_load_n(&r->h[i].done, __ATOMIC_ACQUIRE))
				return false;
		} else if (r->h[i].fd >= 0 &&
			   __atomic_load_n(&r->h[i].moved, __ATOMIC_RELAXED) <
				   r->total) {
			return false;
		}
	}
	if (r->to_guest) {
		uint64_t got = 0;

		for (i = 0; i < MAX_GCONNS; i++)
			if (g.c[i].bench)
				got += g.c[i].recvd;
		return got >= (uint64_t)r->n * r->total;
	}
	return true;
}

static double bench_throughput(unsigned int n, bool to_guest, uint64_t total)
{
	struct bench_host h[8];
	struct gconn *gc[8];
	struct bench_run r = { h, gc, n, to_guest, total };
	char path[200];
	unsigned int i;
	int lfd = -1;
	int64_t t0;
	double secs;

	memset(h, 0, sizeof(h));
	memset(g.c, 0, sizeof(g.c));
	g.listen_port = GUEST_PORT;
	g.accept_total = 0;
	g.accept_bench = true;
	g.tx_size = TX_MAX_PAYLOAD;
	if (!to_guest) {
		host_port_path(path, sizeof(path), HOST_PORT);
		lfd = unix_listen(path);
	}
	t0 = now_ms();
	for (i = 0; i < n; i++) {
		h[i].to_guest = to_guest;
		h[i].total = total;
		if (to_guest) {
			h[i].fd = host_dial_guest(GUEST_PORT);
		} else {
			gc[i] = gv_connect(&g, HOST_PORT);
			gc[i]->bench = true;
			gc[i]->total = total;
			assert_true(
				gv_run_until(&g, conn_settled, gc[i], 5000));
			h[i].fd = accept(lfd, NULL, NULL);
		}
		assert_true(h[i].fd >= 0);
		assert_int_equal(
			pthread_create(&h[i].tid, NULL, bench_host_main, &h[i]),
			0);
	}
	assert_true(gv_run_until(&g, bench_done, &r, 120000));
	secs = (double)(now_ms() - t0) / 1000.0;
	if (!to_guest)
		for (i = 0; i < n; i++)
			gv_send(&g, gc[i], VIRTIO_VSOCK_OP_SHUTDOWN,
				VIRTIO_VSOCK_SHUTDOWN_RCV |
					VIRTIO_VSOCK_SHUTDOWN_SEND,
				NULL, 0);
	for (i = 0; i < n; i++) {
		while (!__atomic_load_n(&h[i].done, __ATOMIC_ACQUIRE))
			gv_poll(&g, 1);
		pthread_join(h[i].tid, NULL);
		assert_int_equal(h[i].moved, total);
	}
	assert_true(gv_run_until(&g, dev_idle, &g, 5000));
	if (lfd >= 0)
		close(lfd);
	g.tx_size = TX_PAYLOAD;
	g.accept_bench = false;
	return (double)n * (double)total / secs;
}

static bool conn_open_or_closed(void *arg)
{
	struct gconn *c = arg;

	return c->state == G_OPEN || c->state == G_CLOSED;
}

/* Guest → host connections opened and closed one after another, per second. */
static double bench_setup_rate(unsigned int count)
{
	char path[200];
	unsigned int i;
	int64_t t0;
	int lfd;

	host_port_path(path, sizeof(path), HOST_PORT);
	lfd = unix_listen(path);
	t0 = now_ms();
	for (i = 0; i < count; i++) {
		struct gconn *c = gv_connect(&g, HOST_PORT);
		int fd;

		assert_true(gv_run_until(&g, conn_open_or_closed, c, 5000));
		assert_int_equal(c->state, G_OPEN);
		fd = accept(lfd, NULL, NULL);
		assert_true(fd >= 0);
		close(fd);
		gv_send(&g, c, VIRTIO_VSOCK_OP_SHUTDOWN,
			VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND,
			NULL, 0);
		assert_true(gv_run_until(&g, conn_closed, c, 5000));
		c->state = G_FREE;
	}
	close(lfd);
	return count / ((double)(now_ms() - t0) / 1000.0);
}

/*
 * VSOCK_BENCH=1 [VSOCK_BENCH_MIB=N]: throughput each way with 1 and 8
 * connections (host side writes/reads 64 KiB at a time, the guest sends
 * 64 KiB packets and posts 4 KiB rx buffers as Linux does) and the
 * connection set-up rate. One line per number, "bench: ..." on stdout.
 */
static void test_bench(void **state)
{
	const char *mib = getenv("VSOCK_BENCH_MIB");
	uint64_t total = (mib ? strtoull(mib, NULL, 10) : 512) << 20;
	const char *kind =
		g.conf.kind == VSOCK_HYPERKIT ? "hyperkit" : "firecracker";
	static const unsigned int conns[] = { 1, 8 };
	unsigned int i, dir;

	(void)state;
	if (!getenv("VSOCK_BENCH"))
		skip();
	for (dir = 0; dir < 2; dir++) {
		for (i = 0; i < 2; i++) {
			double bps = bench_throughput(conns[i], dir == 1,
						      total / conns[i]);

			printf("bench: vsock %s %s %u conn: %.0f MiB/s "
			       "(%.2f Gbit/s)\n",
			       kind, dir ? "host->guest" : "guest->host",
			       conns[i], bps / (1 << 20), bps * 8 / 1e9);
		}
	}
	printf("bench: vsock %s guest->host connection set-up: %.0f/s\n", kind,
	       bench_setup_rate(2000));
	fflush(stdout);
}

int main(void)
{
#define T(fn, kind) cmocka_unit_test_setup_teardown(fn, setup_##kind, teardown)
#define BOTH(fn) T(fn, hyperkit), T(fn, firecracker)
	const struct CMUnitTest tests[] = {
		BOTH(test_config_and_paths),
		BOTH(test_guest_to_host),
		BOTH(test_rst_no_listener),
		BOTH(test_host_to_guest),
		BOTH(test_host_to_guest_refused),
		T(test_guest_forwards, hyperkit),
		BOTH(test_bad_handshakes),
		T(test_connect_timeout, firecracker),
		BOTH(test_credit_exhaustion),
		BOTH(test_bad_packets),
		BOTH(test_stress_20),
		BOTH(test_reset_mid_stream),
		BOTH(test_rx_starvation),
		BOTH(test_bench),
	};
#undef BOTH
#undef T

	signal(SIGPIPE, SIG_IGN);
	if (getenv("VSOCK_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VSOCK_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
