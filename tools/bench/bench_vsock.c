/*
 * devbench vsock: virtio-vsock and its muxer (HyperKit's directory of Unix
 * sockets, or Firecracker's hybrid vsock), the driver playing a guest's
 * vsock transport: connections, RW packets of up to 64 KiB, credit both
 * ways (the guest advertises 256 KiB per connection, as Linux does, and
 * consumes what arrives at once), SHUTDOWN and RST.
 *
 *   vsock KIND PATH g2h CONNS SECONDS    stream to host port 5000
 *   vsock KIND PATH h2g CONNS SECONDS [BUF_ALLOC [CREDIT_EVERY]]
 *                                        accept CONNS host connections to
 *                                        guest port 5001, count what comes
 *                                        (the guest's credit: BUF_ALLOC
 *                                        bytes a connection, 256 KiB; a
 *                                        CREDIT_UPDATE each CREDIT_EVERY
 *                                        bytes consumed, BUF_ALLOC / 4)
 *   vsock KIND PATH setup SECONDS        connect to host port 5000 and RST,
 *                                        again and again
 *
 * KIND: hyperkit (PATH is the directory) or firecracker (PATH the socket).
 * The host side is another process: devbench unixpeer (below), so that
 * its CPU time is not counted as khyve's.
 *
 *   unixpeer sink LISTEN_PATH SECONDS          accept, read, count
 *   unixpeer source KIND PATH CONNS SECONDS    connect CONNS times to guest
 *                                              port 5001, write 64 KiB at a
 *                                              time
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devbench.h"
#include "devices/virtio_vsock.h"
#include "vsock/vsock_proto.h"

#define GUEST_CID 3
#define HOST_PORT 5000
#define GUEST_PORT 5001
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define PKT (64U * 1024)
#define DEFAULT_BUF_ALLOC (256U * 1024)
#define MAX_CONNS 64
#define MAX_SLOTS 1024
#define SINK_FDS 1024

struct vconn {
	bool used, established, closed;
	uint32_t lport, pport;
	uint32_t tx_cnt, peer_buf_alloc, peer_fwd_cnt;
	uint32_t fwd_cnt, adv_fwd_cnt;
};

struct vsb {
	struct vdriver d;
	struct virtio_vsock *v;
	uint64_t rx_gpa, tx_gpa, ev_gpa;
	unsigned int rxq, txq;
	uint16_t free_slot[MAX_SLOTS];
	unsigned int nfree;
	uint32_t slot_len[MAX_SLOTS];
	struct vconn c[MAX_CONNS];
	uint64_t rx_bytes, tx_bytes, rsts;
	bool counting;
	double t_first;
};

static uint32_t buf_alloc = DEFAULT_BUF_ALLOC;
/* Consumed bytes after which the guest sends a CREDIT_UPDATE. */
static uint32_t credit_every = DEFAULT_BUF_ALLOC / 4;

static uint8_t *slot_ptr(struct vsb *b, uint64_t base, unsigned int slot)
{
	return vdriver_ptr(&b->d, base + (uint64_t)slot * (HDR + PKT));
}

static void post_rx(struct vsb *b, unsigned int slot)
{
	struct vdriver_buf v = { b->rx_gpa + (uint64_t)slot * (HDR + PKT),
				 HDR + PKT };

	bench_post(&b->d, VIRTIO_VSOCK_RX, slot, 1, &v, 0, 1);
}

static void reap_tx(struct vsb *b)
{
	uint16_t head;
	uint32_t len;

	while (vdriver_take_used(&b->d, VIRTIO_VSOCK_TX, &head, &len)) {
		if (head >= b->txq)
			bench_fail("vsock: bad used transmit entry %u", head);
		b->tx_bytes += b->slot_len[head];
		b->free_slot[b->nfree++] = head;
	}
}

/* Send a packet on @c: @op, @len payload bytes (RW), @flags. */
static bool send_pkt(struct vsb *b, struct vconn *c, uint16_t op, uint32_t len,
		     uint32_t flags)
{
	struct vsock_pkt p = {
		.src_cid = GUEST_CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = c->lport,
		.dst_port = c->pport,
		.len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.flags = flags,
		.buf_alloc = buf_alloc,
		.fwd_cnt = c->fwd_cnt,
	};
	struct vdriver_buf v;
	uint16_t slot, old = b->d.q[VIRTIO_VSOCK_TX].avail_idx;

	if (!b->nfree) {
		reap_tx(b);
		if (!b->nfree)
			return false;
	}
	slot = b->free_slot[--b->nfree];
	vsock_proto_build_hdr(&p, slot_ptr(b, b->tx_gpa, slot));
	v = (struct vdriver_buf){ b->tx_gpa + (uint64_t)slot * (HDR + PKT),
				  HDR + len };
	b->slot_len[slot] = op == VIRTIO_VSOCK_OP_RW ? len : 0;
	c->adv_fwd_cnt = c->fwd_cnt;
	if (op == VIRTIO_VSOCK_OP_RW)
		c->tx_cnt += len;
	bench_post(&b->d, VIRTIO_VSOCK_TX, slot, 1, &v, 1, 0);
	bench_kick(&b->d, VIRTIO_VSOCK_TX, old);
	return true;
}

static void send_ctl(struct vsb *b, struct vconn *c, uint16_t op,
		     uint32_t flags)
{
	double t0 = bench_now();

	while (!send_pkt(b, c, op, 0, flags)) {
		if (bench_now() - t0 > 10)
			bench_fail("vsock: the transmit queue is stuck");
		bench_wait_irq(&b->d, VIRTIO_VSOCK_RX, VIRTIO_VSOCK_TX, 10);
	}
}

static struct vconn *find(struct vsb *b, uint32_t lport, uint32_t pport)
{
	unsigned int i;

	for (i = 0; i < MAX_CONNS; i++)
		if (b->c[i].used && b->c[i].lport == lport &&
		    b->c[i].pport == pport)
			return &b->c[i];
	return NULL;
}

static struct vconn *new_conn(struct vsb *b, uint32_t lport, uint32_t pport)
{
	unsigned int i;

	for (i = 0; i < MAX_CONNS; i++)
		if (!b->c[i].used) {
			b->c[i] = (struct vconn){ .used = true,
						  .lport = lport,
						  .pport = pport };
			return &b->c[i];
		}
	bench_fail("vsock: too many connections");
}

static void rx_pkt(struct vsb *b, const uint8_t *buf, uint32_t len)
{
	struct virtio_vsock_hdr h;
	struct vconn *c;

	if (len < HDR)
		bench_fail("vsock: a %u-byte packet", len);
	memcpy(&h, buf, HDR);
	if (h.dst_port == GUEST_PORT && h.op == VIRTIO_VSOCK_OP_REQUEST) {
		c = new_conn(b, GUEST_PORT, h.src_port);
		c->established = true;
		c->peer_buf_alloc = h.buf_alloc;
		c->peer_fwd_cnt = h.fwd_cnt;
		send_ctl(b, c, VIRTIO_VSOCK_OP_RESPONSE, 0);
		return;
	}
	c = find(b, h.dst_port, h.src_port);
	if (!c || c->closed)
		return;
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		c->established = true;
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (h.len > len - HDR)
			bench_fail("vsock: RW of %u bytes in %u", h.len, len);
		if (!b->counting) {
			b->counting = true;
			b->t_first = bench_now();
		}
		b->rx_bytes += h.len;
		c->fwd_cnt += h.len; /* consumed at once */
		if (c->fwd_cnt - c->adv_fwd_cnt >= credit_every)
			send_ctl(b, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		send_ctl(b, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		send_ctl(b, c, VIRTIO_VSOCK_OP_RST, 0);
		c->closed = true;
		break;
	case VIRTIO_VSOCK_OP_RST:
		c->closed = true;
		b->rsts++;
		break;
	default:
		break;
	}
}

static bool reap_rx(struct vsb *b)
{
	uint16_t head, old = b->d.q[VIRTIO_VSOCK_RX].avail_idx;
	uint32_t len;
	bool any = false;

	while (vdriver_take_used(&b->d, VIRTIO_VSOCK_RX, &head, &len)) {
		if (head >= b->rxq || len > HDR + PKT)
			bench_fail("vsock: bad used receive entry %u", head);
		rx_pkt(b, slot_ptr(b, b->rx_gpa, head), len);
		post_rx(b, head);
		any = true;
	}
	if (any)
		bench_kick(&b->d, VIRTIO_VSOCK_RX, old);
	return any;
}

static void setup(struct vsb *b, const char *kind, const char *path)
{
	struct vsock_conf conf;
	char err[256], cs[200];
	unsigned int i;
	bool hk = !strcmp(kind, "hyperkit");

	snprintf(cs, sizeof(cs), "guest_cid=%u,%s=%s", GUEST_CID,
		 hk ? "path" : "uds_path", path);
	if (vsock_conf_parse(&conf, hk ? VSOCK_HYPERKIT : VSOCK_FIRECRACKER, cs,
			     err, sizeof(err)))
		bench_fail("vsock: %s", err);
	if (vdriver_init(&b->d, 256ULL << 20))
		bench_fail("vsock: guest memory");
	if (virtio_vsock_init(&b->v, "virtio-vsock@bench", &b->d.mem, &conf,
			      err, sizeof(err)))
		bench_fail("vsock: %s", err);
	vdriver_attach(&b->d, virtio_vsock_dev(b->v));
	if (vdriver_start(&b->d, ~0ULL, 0) <= 0)
		bench_fail("vsock: the device did not start");
	b->rxq = b->d.q[VIRTIO_VSOCK_RX].size;
	b->txq = b->d.q[VIRTIO_VSOCK_TX].size;
	if (b->rxq > MAX_SLOTS || b->txq > MAX_SLOTS)
		bench_fail("vsock: queues too big");
	b->rx_gpa = vdriver_alloc(&b->d, (uint64_t)b->rxq * (HDR + PKT), 4096);
	b->tx_gpa = vdriver_alloc(&b->d, (uint64_t)b->txq * (HDR + PKT), 4096);
	b->ev_gpa = vdriver_alloc(&b->d, 8ULL * b->d.q[2].size, 8);
	if (!b->rx_gpa || !b->tx_gpa || !b->ev_gpa)
		bench_fail("vsock: guest memory");
	for (i = 0; i < b->rxq; i++)
		post_rx(b, i);
	vdriver_kick(&b->d, VIRTIO_VSOCK_RX);
	for (i = 0; i < b->d.q[2].size; i++) {
		struct vdriver_buf v = { b->ev_gpa + 8ULL * i, 8 };

		bench_post(&b->d, 2, i, 1, &v, 0, 1);
	}
	vdriver_kick(&b->d, 2);
	for (i = 0; i < b->txq; i++)
		b->free_slot[b->nfree++] = (uint16_t)(b->txq - 1 - i);
}

static void connect_all(struct vsb *b, unsigned int n)
{
	double t0 = bench_now();
	unsigned int i, up;

	for (i = 0; i < n; i++)
		send_ctl(b, new_conn(b, 40000 + i, HOST_PORT),
			 VIRTIO_VSOCK_OP_REQUEST, 0);
	do {
		if (bench_now() - t0 > 10)
			bench_fail("vsock: connections not accepted in 10 s");
		bench_wait_irq(&b->d, VIRTIO_VSOCK_RX, VIRTIO_VSOCK_TX, 10);
		reap_rx(b);
		for (i = 0, up = 0; i < n; i++) {
			if (b->c[i].closed)
				bench_fail("vsock: connection refused (RST)");
			up += b->c[i].established;
		}
	} while (up < n);
}

static void run_g2h(struct vsb *b, unsigned int n, double secs)
{
	struct bench_clock clk;
	unsigned int i;

	connect_all(b, n);
	b->tx_bytes = 0;
	bench_start(&clk);
	while (bench_now() - clk.t0 < secs) {
		bool sent = false;

		reap_tx(b);
		reap_rx(b);
		for (i = 0; i < n; i++) {
			struct vconn *c = &b->c[i];
			uint32_t credit = c->peer_buf_alloc -
					  (c->tx_cnt - c->peer_fwd_cnt);

			if (c->closed)
				bench_fail(
					"vsock: the host closed a connection");
			if (credit > c->peer_buf_alloc || credit == 0)
				continue;
			if (send_pkt(b, c, VIRTIO_VSOCK_OP_RW,
				     credit < PKT ? credit : PKT, 0))
				sent = true;
		}
		if (!sent)
			bench_wait_irq(&b->d, VIRTIO_VSOCK_RX, VIRTIO_VSOCK_TX, 10);
	}
	/* Count what the device has taken. */
	reap_tx(b);
	bench_stop(&clk);
	for (i = 0; i < n; i++)
		send_ctl(b, &b->c[i], VIRTIO_VSOCK_OP_SHUTDOWN,
			 VIRTIO_VSOCK_SHUTDOWN_RCV |
				 VIRTIO_VSOCK_SHUTDOWN_SEND);
	bench_print(&clk, n, b->tx_bytes, ", \"conns\": %u", n);
}

static void run_h2g(struct vsb *b, unsigned int n, double secs)
{
	struct bench_clock clk;
	double t0 = bench_now();

	while (!b->counting) {
		if (bench_now() - t0 > 15)
			bench_fail("vsock: nothing arrived within 15 s");
		bench_wait_irq(&b->d, VIRTIO_VSOCK_RX, VIRTIO_VSOCK_TX, 10);
		reap_rx(b);
		reap_tx(b);
	}
	bench_start(&clk);
	b->rx_bytes = 0;
	t0 = clk.t0;
	while (bench_now() - clk.t0 < secs) {
		bool any = reap_rx(b);

		reap_tx(b);
		if (any) {
			t0 = bench_now();
		} else if (bench_now() - t0 > 0.3) {
			/*
			 * Nothing for 0.3 s with the host still writing:
			 * the device is stuck. Say so and leave without the
			 * reset, which would wait for its thread forever.
			 */
			bench_stop(&clk);
			bench_print(&clk, n, b->rx_bytes,
				    ", \"conns\": %u, \"stalled\": true", n);
			_exit(0);
		} else {
			bench_wait_irq(&b->d, VIRTIO_VSOCK_RX, VIRTIO_VSOCK_TX, 10);
		}
	}
	bench_stop(&clk);
	bench_print(&clk, n, b->rx_bytes, ", \"conns\": %u", n);
	/*
	 * The host is still writing and nobody consumes any more: the
	 * connection runs out of credit, and the device's thread spins (see
	 * the stall above), so its reset would never return. Leave as is.
	 */
	_exit(0);
}

static void run_setup(struct vsb *b, double secs)
{
	struct bench_clock clk;
	uint64_t done = 0;
	uint32_t port = 50000;

	bench_start(&clk);
	while (bench_now() - clk.t0 < secs) {
		struct vconn *c = new_conn(b, port++, HOST_PORT);
		double t0 = bench_now();

		send_ctl(b, c, VIRTIO_VSOCK_OP_REQUEST, 0);
		while (!c->established) {
			if (c->closed)
				bench_fail("vsock: connection refused (RST)");
			if (bench_now() - t0 > 10)
				bench_fail("vsock: no RESPONSE within 10 s");
			if (!reap_rx(b))
				bench_wait_irq(&b->d, VIRTIO_VSOCK_RX, VIRTIO_VSOCK_TX, 10);
			reap_tx(b);
		}
		send_ctl(b, c, VIRTIO_VSOCK_OP_RST, 0);
		c->used = false;
		done++;
		if (port > 60000)
			port = 50000;
	}
	bench_stop(&clk);
	bench_print(&clk, done, 0, NULL);
}

int bench_vsock(int argc, char **argv)
{
	static struct vsb b;
	unsigned int n = 1;
	double secs;

	if (argc < 4)
		bench_fail(
			"usage: vsock hyperkit|firecracker PATH g2h|h2g CONNS "
			"SECONDS | vsock KIND PATH setup SECONDS");
	setup(&b, argv[0], argv[1]);
	if (!strcmp(argv[2], "setup")) {
		run_setup(&b, strtod(argv[3], NULL));
	} else {
		if (argc < 5 || argc > 7)
			bench_fail(
				"vsock: CONNS SECONDS [BUF_ALLOC [CREDIT_EVERY]]");
		n = (unsigned int)strtoul(argv[3], NULL, 0);
		secs = strtod(argv[4], NULL);
		if (argc == 6)
			buf_alloc = (uint32_t)strtoul(argv[5], NULL, 0);
		if (buf_alloc < PKT || buf_alloc > (64U << 20))
			bench_fail("vsock: BUF_ALLOC 64 KiB..64 MiB");
		credit_every = buf_alloc / 4;
		if (argc == 7)
			credit_every = (uint32_t)strtoul(argv[6], NULL, 0);
		if (!credit_every || credit_every > buf_alloc)
			bench_fail("vsock: CREDIT_EVERY 1..BUF_ALLOC");
		if (!n || n > 32)
			bench_fail("vsock: 1..32 connections");
		if (!strcmp(argv[2], "g2h"))
			run_g2h(&b, n, secs);
		else
			run_h2g(&b, n, secs);
	}
	virtio_vsock_destroy(b.v);
	vdriver_exit(&b.d);
	return 0;
}

/* --- the host side --- */

static int unix_fd(const char *path, bool listen_it)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0 || strlen(path) >= sizeof(sa.sun_path))
		bench_fail("unix socket %s", path);
	strcpy(sa.sun_path, path);
	if (listen_it) {
		unlink(path);
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) ||
		    listen(s, 4096))
			bench_fail("listen %s: %s", path, strerror(errno));
	} else if (connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
		bench_fail("connect %s: %s", path, strerror(errno));
	}
	return s;
}

static int peer_sink(const char *path, double secs)
{
	static char buf[1 << 20];
	static struct pollfd p[SINK_FDS];
	unsigned int n = 1, i, accepted = 0;
	uint64_t bytes = 0;
	double t0, last;

	p[0] = (struct pollfd){ .fd = unix_fd(path, true), .events = POLLIN };
	fcntl(p[0].fd, F_SETFL, O_NONBLOCK);
	printf("ready\n");
	fflush(stdout);
	t0 = last = bench_now();
	while (bench_now() - t0 < secs) {
		/* Done once the guest side has been quiet for half a second. */
		if ((bytes || accepted) && bench_now() - last > 0.5)
			break;
		if (poll(p, n, 100) <= 0)
			continue;
		last = bench_now();
		while (p[0].revents & POLLIN) {
			int fd = accept4(p[0].fd, NULL, NULL,
					 SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd < 0)
				break;
			accepted++;
			if (n < SINK_FDS)
				p[n++] = (struct pollfd){ .fd = fd,
							  .events = POLLIN };
			else
				close(fd);
		}
		for (i = 1; i < n; i++) {
			ssize_t r;

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 0) {
				bytes += (uint64_t)r;
				continue;
			}
			close(p[i].fd);
			p[i--] = p[--n];
		}
	}
	unlink(path);
	printf("{\"bytes\": %llu, \"accepted\": %u}\n",
	       (unsigned long long)bytes, accepted);
	return 0;
}

static int peer_source(const char *kind, const char *path, unsigned int n,
		       double secs)
{
	static char buf[PKT];
	struct pollfd p[MAX_CONNS];
	uint64_t bytes = 0;
	unsigned int i;
	char hdr[64], line[64];
	double t0;

	if (n > MAX_CONNS)
		bench_fail("unixpeer: too many connections");
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < n; i++) {
		int s;

		if (!strcmp(kind, "hyperkit")) {
			snprintf(line, sizeof(line), "%s/connect", path);
			s = unix_fd(line, false);
			snprintf(hdr, sizeof(hdr), "%08x.%08x\n", GUEST_CID,
				 GUEST_PORT);
			if (write(s, hdr, 18) != 18)
				bench_fail("unixpeer: header");
		} else {
			ssize_t r;
			size_t got = 0;

			s = unix_fd(path, false);
			snprintf(hdr, sizeof(hdr), "CONNECT %u\n", GUEST_PORT);
			if (write(s, hdr, strlen(hdr)) != (ssize_t)strlen(hdr))
				bench_fail("unixpeer: CONNECT");
			while (got < sizeof(line) - 1 &&
			       (r = read(s, line + got, 1)) == 1 &&
			       line[got] != '\n')
				got++;
			line[got] = 0;
			if (strncmp(line, "OK ", 3))
				bench_fail("unixpeer: answer '%s'", line);
		}
		fcntl(s, F_SETFL, O_NONBLOCK);
		p[i] = (struct pollfd){ .fd = s, .events = POLLOUT };
	}
	t0 = bench_now();
	while (bench_now() - t0 < secs) {
		if (poll(p, n, 100) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			ssize_t r;

			if (!(p[i].revents & POLLOUT))
				continue;
			r = write(p[i].fd, buf, sizeof(buf));
			if (r > 0)
				bytes += (uint64_t)r;
			else if (r < 0 && errno != EAGAIN) {
				/* The guest side went away: stop writing. */
				close(p[i].fd);
				p[i].fd = -1;
			}
		}
	}
	for (i = 0; i < n; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	printf("{\"bytes\": %llu}\n", (unsigned long long)bytes);
	return 0;
}

int bench_unixpeer(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[0], "sink"))
		return peer_sink(argv[1], strtod(argv[2], NULL));
	if (argc == 5 && !strcmp(argv[0], "source"))
		return peer_source(argv[1], argv[2],
				   (unsigned int)strtoul(argv[3], NULL, 0),
				   strtod(argv[4], NULL));
	bench_fail("usage: unixpeer sink LISTEN_PATH SECONDS | unixpeer source "
		   "hyperkit|firecracker PATH CONNS SECONDS");
}
