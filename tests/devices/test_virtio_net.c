/*
 * Tier 2 for virtio-net: the host-side driver (vdriver) plays the guest's
 * virtio-net driver and a tiny IPv4 stack (hand-built DHCP, ARP, ICMP, UDP
 * and TCP frames) against the real device over real backends.
 *
 * The user-mode (libslirp) group runs by default: feature negotiation and
 * config space, DHCP over 1526-byte, 64 KiB and small mergeable receive
 * buffers (num_buffers checked), ARP and ping of 10.0.2.2, UDP and TCP
 * exchanges with servers on the host's loopback, a hostfwd SYN, receive
 * with no or too few buffers posted (nothing lost), a frame too big for a
 * non-mergeable buffer or the whole ring (dropped and counted), malformed
 * transmit chains and receive buffers, and reset in the middle of traffic.
 *
 * The VPNKit and tap groups need a server or a network namespace:
 * test_virtio_net_hosts.py runs this program with KHYVE_TEST_VPNKIT_SOCK
 * (and KHYVE_TEST_VPNKIT_MAC) or KHYVE_TEST_TAP (and KHYVE_TEST_TAP_SETUP,
 * KHYVE_TEST_TAP_PEER) set, inside `unshare -n` for tap; without them
 * those tests are skipped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio_net.h"
#include "net/netbe.h"
#include "vdriver.h"

#define RXQ 0
#define TXQ 1
#define HDR 12
#define QSIZE 256
#define ETH_ARP 0x0806
#define ETH_IP 0x0800
#define BIG_BUF (65550 + HDR)

#define F_BASE                                                           \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) | \
	 VIRTIO_BIT(VIRTIO_NET_F_STATUS) |                               \
	 VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC))
#define F_MRG (F_BASE | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF))

static const uint8_t default_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

struct rxbuf {
	uint64_t gpa;
	uint32_t len;
};

struct fixture {
	struct vdriver d;
	struct virtio_net *n;
	struct rxbuf rx[QSIZE]; /* by descriptor head */
	uint8_t mac[6];
	uint32_t ip; /* network order */
	bool mrg;
};

/* One received frame. */
struct frame {
	uint8_t d[BIG_BUF];
	size_t len;
	uint16_t num_buffers;
};

static struct frame rf;

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- checksums and frames (test helpers, not khyve's) ---- */

static uint32_t sum16(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		sum += (uint32_t)(p[0] << 8);
	return sum;
}

static uint16_t csum(const void *data, size_t len, uint32_t sum)
{
	sum = sum16(data, len, sum);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t pseudo(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
	return sum16(&dst, 4, sum16(&src, 4, 0)) + proto + (uint32_t)len;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static size_t eth(struct fixture *f, uint8_t *b, const uint8_t *dst,
		  uint16_t type)
{
	memcpy(b, dst, 6);
	memcpy(b + 6, f->mac, 6);
	put16(b + 12, type);
	return 14;
}

/* IPv4 header after the ethernet one for @plen payload bytes; returns 34. */
static size_t ipv4(uint8_t *b, uint32_t src, uint32_t dst, uint8_t proto,
		   size_t plen)
{
	static uint16_t id = 1;
	uint8_t *ip = b + 14;

	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + plen));
	put16(ip + 4, id++);
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, csum(ip, 20, 0));
	return 34;
}

static size_t udp(struct fixture *f, uint8_t *b, const uint8_t *dmac,
		  uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
		  const void *data, size_t n)
{
	uint8_t *u = b + 34;

	eth(f, b, dmac, ETH_IP);
	ipv4(b, src, dst, 17, 8 + n);
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + n));
	put16(u + 6, 0);
	memcpy(u + 8, data, n);
	put16(u + 6, csum(u, 8 + n, pseudo(src, dst, 17, 8 + n)));
	return 34 + 8 + n;
}

static size_t arp(struct fixture *f, uint8_t *b, uint16_t op,
		  const uint8_t *dmac, uint32_t tip)
{
	eth(f, b, op == 1 ? bcast : dmac, ETH_ARP);
	put16(b + 14, 1);
	put16(b + 16, ETH_IP);
	b[18] = 6;
	b[19] = 4;
	put16(b + 20, op);
	memcpy(b + 22, f->mac, 6);
	memcpy(b + 28, &f->ip, 4);
	memcpy(b + 32, op == 1 ? (const uint8_t *)"\0\0\0\0\0\0" : dmac, 6);
	memcpy(b + 38, &tip, 4);
	return 42;
}

static size_t icmp_echo(struct fixture *f, uint8_t *b, const uint8_t *dmac,
			uint32_t dst, uint16_t seq, const char *payload)
{
	size_t n = strlen(payload);
	uint8_t *p = b + 34;

	eth(f, b, dmac, ETH_IP);
	ipv4(b, f->ip, dst, 1, 8 + n);
	p[0] = 8;
	p[1] = 0;
	put16(p + 2, 0);
	put16(p + 4, 0x4b48);
	put16(p + 6, seq);
	memcpy(p + 8, payload, n);
	put16(p + 2, csum(p, 8 + n, 0));
	return 34 + 8 + n;
}

static size_t dhcp_discover(struct fixture *f, uint8_t *b, uint32_t xid)
{
	uint8_t m[300] = { 0 };
	size_t i = 240;

	m[0] = 1;
	m[1] = 1;
	m[2] = 6;
	put32(m + 4, xid);
	put16(m + 10, 0x8000);
	memcpy(m + 28, f->mac, 6);
	put32(m + 236, 0x63825363);
	m[i++] = 53;
	m[i++] = 1;
	m[i++] = 1;
	m[i++] = 255;
	return udp(f, b, bcast, 0, 0xffffffff, 68, 67, m, sizeof(m));
}

/* The IPv4 payload of @proto in the received frame, checked; or NULL. */
static const uint8_t *ipv4_payload(const struct frame *r, uint8_t proto,
				   size_t *plen)
{
	const uint8_t *ip = r->d + 14;
	size_t ihl, tot;

	if (r->len < 34 || get16(r->d + 12) != ETH_IP || ip[9] != proto)
		return NULL;
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = get16(ip + 2);
	assert_int_equal(ip[0] >> 4, 4);
	assert_true(ihl >= 20 && tot >= ihl && 14 + tot <= r->len);
	assert_int_equal(csum(ip, ihl, 0), 0);
	*plen = tot - ihl;
	return ip + ihl;
}

/* ---- the driver side ---- */

static struct fixture fx;

static void net_open(struct fixture *f, const char *emulation, const char *conf)
{
	char err[256] = "";
	int ret;

	memset(f, 0, sizeof(*f));
	assert_int_equal(vdriver_init(&f->d, 128ULL << 20), 0);
	ret = virtio_net_init(&f->n, "virtio-net-test", &f->d.mem, emulation,
			      conf, default_mac, err, sizeof(err));
	if (ret)
		fail_msg("virtio_net_init(%s): %s", conf, err);
	vdriver_attach(&f->d, virtio_net_dev(f->n));
	memcpy(f->mac, virtio_net_mac(f->n), 6);
	f->ip = ip4("10.0.2.15");
}

static int setup_user(void **state)
{
	net_open(&fx, "virtio-net", "user");
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_net_destroy(f->n);
	vdriver_exit(&f->d);
	return 0;
}

static void start(struct fixture *f, uint64_t features)
{
	int st = vdriver_start(&f->d, features, QSIZE);

	assert_true(st > 0 && (st & VIRTIO_STATUS_DRIVER_OK));
	assert_int_equal(f->d.features & features, features);
	f->mrg = features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	memset(f->rx, 0, sizeof(f->rx));
}

/* Post @count receive buffers of @len bytes and kick. */
static void rx_post(struct fixture *f, uint32_t len, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++) {
		struct vdriver_buf b = { vdriver_alloc(&f->d, len, 64), len };
		uint16_t head;

		assert_true(b.gpa != 0);
		head = vdriver_post(&f->d, RXQ, NULL, 0, &b, 1, false);
		f->rx[head] = (struct rxbuf){ b.gpa, len };
	}
	vdriver_kick(&f->d, RXQ);
}

/* Take the next used receive chain: its data appended to rf at @off. */
static size_t rx_take(struct fixture *f, size_t off, bool first, int ms)
{
	struct rxbuf *b;
	uint16_t head;
	uint32_t len;
	const uint8_t *p;
	size_t skip = first ? HDR : 0;

	if (!vdriver_wait_used(&f->d, RXQ, &head, &len, ms))
		return SIZE_MAX;
	assert_true(head < QSIZE);
	b = &f->rx[head];
	assert_true(b->gpa != 0);
	assert_true(len >= skip && len <= b->len);
	p = vdriver_ptr(&f->d, b->gpa);
	if (first) {
		struct virtio_net_hdr_v1 h;

		memcpy(&h, p, HDR);
		rf.num_buffers = h.num_buffers;
		/* Bare-ethernet backends give an all-empty header. */
		assert_int_equal(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	}
	assert_true(off + len - skip <= sizeof(rf.d));
	memcpy(rf.d + off, p + skip, len - skip);
	/* The same buffer goes back on the ring (the descriptor is intact). */
	vdriver_publish(&f->d, RXQ, head);
	return len - skip;
}

/* Receive one frame into rf within @ms: true if one came. */
static bool rx_frame(struct fixture *f, int ms)
{
	size_t n = rx_take(f, 0, true, ms);
	unsigned int i;

	if (n == SIZE_MAX)
		return false;
	rf.len = n;
	assert_true(rf.num_buffers >= 1);
	if (!f->mrg)
		assert_int_equal(rf.num_buffers, 1);
	for (i = 1; i < rf.num_buffers; i++) {
		n = rx_take(f, rf.len, false, 2000);
		assert_true(n != SIZE_MAX);
		rf.len += n;
	}
	vdriver_kick(&f->d, RXQ);
	assert_true(rf.len >= 14);
	return true;
}

/* Transmit a frame (header and frame in one buffer, or two when @split). */
static void tx_send(struct fixture *f, const void *frame, size_t len,
		    bool split)
{
	uint64_t gpa = vdriver_alloc(&f->d, HDR + len, 16);
	struct vdriver_buf b[2] = { { gpa, (uint32_t)(HDR + len) } };
	uint8_t *p = vdriver_ptr(&f->d, gpa);
	uint16_t head, got;
	uint32_t used;

	memset(p, 0, HDR);
	memcpy(p + HDR, frame, len);
	if (split) {
		b[0].len = HDR;
		b[1] = (struct vdriver_buf){ gpa + HDR, (uint32_t)len };
	}
	head = vdriver_post(&f->d, TXQ, b, split ? 2 : 1, NULL, 0, split);
	vdriver_kick(&f->d, TXQ);
	assert_int_equal(vdriver_wait_used(&f->d, TXQ, &got, &used, 3000), 1);
	assert_int_equal(got, head);
	assert_int_equal(used, 0);
}

static void send_arp_reply(struct fixture *f, const uint8_t *req)
{
	uint8_t b[42];
	uint32_t tip;

	memcpy(&tip, req + 28, 4);
	arp(f, b, 2, req + 22, tip);
	tx_send(f, b, sizeof(b), false);
}

typedef bool (*match_fn)(struct fixture *f, void *ctx);

/* Receive until a frame matches (answering ARP for our address). */
static bool rx_wait(struct fixture *f, match_fn match, void *ctx, int ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		int64_t left = deadline - now_ms();

		if (left <= 0 || !rx_frame(f, (int)left))
			return false;
		if (rf.len >= 42 && get16(rf.d + 12) == ETH_ARP &&
		    get16(rf.d + 20) == 1 && !memcmp(rf.d + 38, &f->ip, 4)) {
			send_arp_reply(f, rf.d);
			continue;
		}
		if (match(f, ctx))
			return true;
	}
}

struct stats_req {
	struct virtio_net *n;
	struct netbe_stats s;
};

static void read_stats(void *arg)
{
	struct stats_req *r = arg;

	r->s = virtio_net_backend(r->n)->stats;
}

static struct netbe_stats stats(struct fixture *f)
{
	struct stats_req r = { .n = f->n };

	virtio_net_run(f->n, read_stats, &r);
	return r.s;
}

/* ---- protocol steps ---- */

struct dhcp_ctx {
	uint32_t xid, yiaddr;
	uint8_t type;
};

static bool dhcp_match(struct fixture *f, void *c)
{
	struct dhcp_ctx *ctx = c;
	const uint8_t *u, *m;
	size_t n, i;

	(void)f;
	u = ipv4_payload(&rf, 17, &n);
	if (!u || n < 8 + 240 || get16(u) != 67 || get16(u + 2) != 68)
		return false;
	if (get16(u + 6))
		assert_int_equal(csum(u, n,
				      pseudo(*(uint32_t *)(rf.d + 26),
					     *(uint32_t *)(rf.d + 30), 17, n)),
				 0);
	m = u + 8;
	n -= 8;
	if (m[0] != 2 || get16(m + 4) != ctx->xid >> 16 ||
	    get16(m + 6) != (uint16_t)ctx->xid)
		return false;
	memcpy(&ctx->yiaddr, m + 16, 4);
	for (i = 240; i + 2 < n && m[i] != 255; i += m[i] ? 2 + m[i + 1] : 1)
		if (m[i] == 53 && m[i + 1] == 1)
			ctx->type = m[i + 2];
	return true;
}

/* DISCOVER through the transmit queue; the OFFER must be 10.0.2.15. */
static void dhcp_offer(struct fixture *f, bool split)
{
	static uint32_t xid = 0x6b680000;
	struct dhcp_ctx ctx = { .xid = ++xid };
	uint8_t b[1514];

	tx_send(f, b, dhcp_discover(f, b, ctx.xid), split);
	assert_true(rx_wait(f, dhcp_match, &ctx, 3000));
	assert_int_equal(ctx.type, 2);
	assert_int_equal(ctx.yiaddr, ip4("10.0.2.15"));
}

struct arp_ctx {
	uint32_t ip;
	uint8_t mac[6];
};

static bool arp_match(struct fixture *f, void *c)
{
	struct arp_ctx *ctx = c;

	if (rf.len < 42 || get16(rf.d + 12) != ETH_ARP ||
	    get16(rf.d + 20) != 2 || memcmp(rf.d + 28, &ctx->ip, 4))
		return false;
	assert_memory_equal(rf.d, f->mac, 6);
	assert_memory_equal(rf.d + 32, f->mac, 6);
	memcpy(ctx->mac, rf.d + 22, 6);
	return true;
}

static void arp_resolve(struct fixture *f, uint32_t ip, uint8_t mac[6])
{
	struct arp_ctx ctx = { .ip = ip };
	uint8_t b[42];
	int tries;

	for (tries = 0; tries < 3; tries++) {
		tx_send(f, b, arp(f, b, 1, NULL, ip), false);
		if (rx_wait(f, arp_match, &ctx, 2000)) {
			memcpy(mac, ctx.mac, 6);
			return;
		}
	}
	fail_msg("no ARP reply");
}

struct echo_ctx {
	uint32_t from;
	uint16_t seq;
	const char *payload;
};

static bool echo_match(struct fixture *f, void *c)
{
	struct echo_ctx *ctx = c;
	const uint8_t *p;
	size_t n;

	p = ipv4_payload(&rf, 1, &n);
	if (!p || n < 8 || p[0] != 0 || memcmp(rf.d + 26, &ctx->from, 4) ||
	    memcmp(rf.d + 30, &f->ip, 4))
		return false;
	assert_int_equal(csum(p, n, 0), 0);
	if (get16(p + 4) != 0x4b48 || get16(p + 6) != ctx->seq)
		return false;
	assert_int_equal(n - 8, strlen(ctx->payload));
	assert_memory_equal(p + 8, ctx->payload, n - 8);
	return true;
}

static void ping(struct fixture *f, uint32_t dst, const uint8_t dmac[6],
		 uint16_t seq)
{
	struct echo_ctx ctx = { dst, seq, "khyve virtio-net ping" };
	uint8_t b[128];

	tx_send(f, b, icmp_echo(f, b, dmac, dst, seq, ctx.payload), seq & 1);
	assert_true(rx_wait(f, echo_match, &ctx, 3000));
}

/* ---- user-mode networking ---- */

static void test_config_space(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev *dev = virtio_net_dev(f->n);
	uint8_t mac[6];
	uint16_t status;

	assert_int_equal(dev->device_id, VIRTIO_ID_NET);
	assert_true(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_MAC));
	assert_true(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_STATUS));
	assert_true(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	/* No offloads over a bare-ethernet backend. */
	assert_false(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_CSUM));
	assert_false(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4));
	start(f, F_MRG);
	assert_true(dev->config_size >= 8);
	dev->ops->config_read(dev, 0, mac, 6);
	assert_memory_equal(mac, default_mac, 6);
	dev->ops->config_read(dev, offsetof(struct virtio_net_config, status),
			      &status, 2);
	assert_int_equal(status, VIRTIO_NET_S_LINK_UP);
}

static void test_config_mac_from_conf(void **state)
{
	static const uint8_t want[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
	struct fixture *f = *state;
	struct virtio_dev *dev;
	uint8_t mac[6];

	teardown(state);
	net_open(f, "virtio-net", "user,mac=02:AA:bb:cc:dd:ee");
	dev = virtio_net_dev(f->n);
	start(f, F_BASE);
	dev->ops->config_read(dev, 0, mac, 6);
	assert_memory_equal(mac, want, 6);
	/* And the device uses it: DHCP answers that MAC. */
	rx_post(f, 1526, 8);
	dhcp_offer(f, false);
	assert_memory_equal(rf.d + 42 + 28, want, 6); /* chaddr */
}

static void test_dhcp_buffer_sizes(void **state)
{
	struct fixture *f = *state;

	/* Linux's mergeable buffers: one buffer per frame. */
	start(f, F_MRG | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX));
	rx_post(f, 1526, 32);
	dhcp_offer(f, false);
	assert_int_equal(rf.num_buffers, 1);
	/* Big buffers (non-mergeable "big packets" mode). */
	start(f, F_BASE);
	rx_post(f, BIG_BUF, 4);
	dhcp_offer(f, true);
	assert_int_equal(rf.num_buffers, 1);
	/* Small mergeable buffers: the OFFER spans several. */
	start(f, F_MRG);
	rx_post(f, 128, 64);
	dhcp_offer(f, false);
	assert_int_equal(rf.num_buffers, (rf.len + HDR + 127) / 128);
	assert_true(rf.num_buffers >= 3);
}

static void test_arp_ping_gateway(void **state)
{
	struct fixture *f = *state;
	uint8_t gw_mac[6];
	uint16_t seq;

	start(f, F_MRG);
	rx_post(f, 1526, 32);
	arp_resolve(f, ip4("10.0.2.2"), gw_mac);
	for (seq = 1; seq <= 4; seq++)
		ping(f, ip4("10.0.2.2"), gw_mac, seq);
}

struct udp_ctx {
	uint32_t from;
	uint16_t sport, dport;
	const char *payload;
};

static bool udp_match(struct fixture *f, void *c)
{
	struct udp_ctx *ctx = c;
	const uint8_t *u;
	size_t n;

	u = ipv4_payload(&rf, 17, &n);
	if (!u || n < 8 || memcmp(rf.d + 26, &ctx->from, 4) ||
	    get16(u) != ctx->sport || get16(u + 2) != ctx->dport)
		return false;
	if (get16(u + 6))
		assert_int_equal(csum(u, n, pseudo(ctx->from, f->ip, 17, n)),
				 0);
	assert_int_equal(n - 8, strlen(ctx->payload));
	assert_memory_equal(u + 8, ctx->payload, n - 8);
	return true;
}

static void test_udp_host_loopback(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in a = { .sin_family = AF_INET }, peer;
	socklen_t alen = sizeof(a);
	struct udp_ctx ctx;
	struct pollfd p;
	uint8_t gw_mac[6], b[256];
	char got[64];
	ssize_t n;
	int s;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	start(f, F_MRG);
	rx_post(f, 1526, 32);
	arp_resolve(f, ip4("10.0.2.2"), gw_mac);
	/* Guest to host: 10.0.2.2 is the host's loopback. */
	tx_send(f, b,
		udp(f, b, gw_mac, f->ip, ip4("10.0.2.2"), 40001,
		    ntohs(a.sin_port), "hello host", 10),
		false);
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 3000), 1);
	alen = sizeof(peer);
	n = recvfrom(s, got, sizeof(got), 0, (struct sockaddr *)&peer, &alen);
	assert_int_equal(n, 10);
	assert_memory_equal(got, "hello host", 10);
	/* Host to guest: the reply goes back through slirp's NAT. */
	assert_int_equal(
		sendto(s, "hello guest", 11, 0, (struct sockaddr *)&peer, alen),
		11);
	ctx = (struct udp_ctx){ ip4("10.0.2.2"), ntohs(a.sin_port), 40001,
				"hello guest" };
	assert_true(rx_wait(f, udp_match, &ctx, 3000));
	close(s);
}

/* ---- TCP with a server on the host's loopback ---- */

#define TF_FIN 1
#define TF_SYN 2
#define TF_PSH 8
#define TF_ACK 16

struct tcp_ctx {
	uint32_t peer;
	uint16_t sport, dport;
	/* What came: */
	uint32_t seq, ack;
	uint8_t flags;
	uint8_t data[64];
	size_t n;
	/* What to wait for: */
	uint8_t want_flags;
	size_t want_data;
};

static void tcp_send(struct fixture *f, struct tcp_ctx *c, const uint8_t *dmac,
		     uint32_t seq, uint32_t ack, uint8_t flags,
		     const char *data)
{
	size_t n = data ? strlen(data) : 0;
	uint8_t b[128], *t = b + 34;

	eth(f, b, dmac, ETH_IP);
	ipv4(b, f->ip, c->peer, 6, 20 + n);
	memset(t, 0, 20);
	put16(t, c->sport);
	put16(t + 2, c->dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, 65535);
	memcpy(t + 20, data, n);
	put16(t + 16, csum(t, 20 + n, pseudo(f->ip, c->peer, 6, 20 + n)));
	tx_send(f, b, 34 + 20 + n, false);
}

static bool tcp_match(struct fixture *f, void *v)
{
	struct tcp_ctx *c = v;
	const uint8_t *t;
	size_t n, hl;

	t = ipv4_payload(&rf, 6, &n);
	if (!t || n < 20 || memcmp(rf.d + 26, &c->peer, 4) ||
	    get16(t) != c->dport || get16(t + 2) != c->sport)
		return false;
	assert_int_equal(csum(t, n, pseudo(c->peer, f->ip, 6, n)), 0);
	hl = (size_t)(t[12] >> 4) * 4;
	assert_true(hl >= 20 && hl <= n);
	c->seq = (uint32_t)get16(t + 4) << 16 | get16(t + 6);
	c->ack = (uint32_t)get16(t + 8) << 16 | get16(t + 10);
	c->flags = t[13];
	c->n = n - hl < sizeof(c->data) ? n - hl : sizeof(c->data);
	memcpy(c->data, t + hl, c->n);
	return (c->flags & c->want_flags) == c->want_flags &&
	       c->n >= c->want_data;
}

static void test_tcp_host_loopback(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct tcp_ctx c = { .sport = 40002 };
	uint32_t iss = 0x10000, rcv;
	uint8_t gw_mac[6];
	struct pollfd p;
	char got[16];
	int ls, s;

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(ls >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
	c.peer = ip4("10.0.2.2");
	c.dport = ntohs(a.sin_port);
	start(f, F_MRG);
	rx_post(f, 1526, 32);
	arp_resolve(f, c.peer, gw_mac);
	/* Handshake: slirp connects to the host's listener. */
	tcp_send(f, &c, gw_mac, iss, 0, TF_SYN, NULL);
	c.want_flags = TF_SYN | TF_ACK;
	assert_true(rx_wait(f, tcp_match, &c, 3000));
	assert_int_equal(c.ack, iss + 1);
	rcv = c.seq + 1;
	tcp_send(f, &c, gw_mac, iss + 1, rcv, TF_ACK, NULL);
	p = (struct pollfd){ .fd = ls, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 3000), 1);
	s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	/* Guest to host. */
	tcp_send(f, &c, gw_mac, iss + 1, rcv, TF_PSH | TF_ACK, "hello tcp");
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 3000), 1);
	assert_int_equal(recv(s, got, sizeof(got), 0), 9);
	assert_memory_equal(got, "hello tcp", 9);
	/* Host to guest. */
	assert_int_equal(send(s, "world tcp", 9, 0), 9);
	c.want_flags = TF_ACK;
	c.want_data = 9;
	assert_true(rx_wait(f, tcp_match, &c, 3000));
	assert_int_equal(c.seq, rcv);
	assert_int_equal(c.n, 9);
	assert_memory_equal(c.data, "world tcp", 9);
	rcv += 9;
	tcp_send(f, &c, gw_mac, iss + 10, rcv, TF_ACK, NULL);
	/* The host closes: a FIN; ours is acknowledged. */
	close(s);
	c.want_flags = TF_FIN;
	c.want_data = 0;
	assert_true(rx_wait(f, tcp_match, &c, 3000));
	rcv++;
	tcp_send(f, &c, gw_mac, iss + 10, rcv, TF_FIN | TF_ACK, NULL);
	c.want_flags = TF_ACK;
	do
		assert_true(rx_wait(f, tcp_match, &c, 3000));
	while (c.ack != iss + 11);
	close(ls);
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	close(s);
	return ntohs(a.sin_port);
}

static bool syn_match(struct fixture *f, void *c)
{
	const uint8_t *t;
	size_t n;

	(void)c;
	t = ipv4_payload(&rf, 6, &n);
	if (!t || n < 20 || get16(t + 2) != 8080 ||
	    memcmp(rf.d + 30, &f->ip, 4))
		return false;
	assert_int_equal(
		csum(t, n, pseudo(*(uint32_t *)(rf.d + 26), f->ip, 6, n)), 0);
	return (t[13] & 0x12) == 0x02; /* SYN, no ACK */
}

static void test_hostfwd_syn(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in a = { .sin_family = AF_INET };
	uint16_t port = free_port();
	char conf[96];
	int s, ret;

	teardown(state);
	snprintf(conf, sizeof(conf), "user,hostfwd=tcp:127.0.0.1:%u-:8080",
		 port);
	net_open(f, "virtio-net", conf);
	start(f, F_MRG);
	rx_post(f, 1526, 32);
	dhcp_offer(f, false);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	ret = connect(s, (struct sockaddr *)&a, sizeof(a));
	assert_true(ret == 0 || errno == EINPROGRESS);
	/* The host's connection becomes a SYN to the guest's port 8080. */
	assert_true(rx_wait(f, syn_match, NULL, 5000));
	close(s);
}

static void test_rx_no_buffers_then_posted(void **state)
{
	struct fixture *f = *state;
	struct dhcp_ctx ctx = { .xid = 0x12345678 };
	uint8_t b[1514];

	start(f, F_MRG);
	/* No receive buffers: the backend holds the OFFER back. */
	tx_send(f, b, dhcp_discover(f, b, ctx.xid), false);
	assert_false(rx_frame(f, 300));
	assert_int_equal(stats(f).rx_dropped, 0);
	rx_post(f, 1526, 8);
	assert_true(rx_wait(f, dhcp_match, &ctx, 3000));
	assert_int_equal(ctx.type, 2);
	assert_int_equal(stats(f).rx_dropped, 0);
}

static void test_rx_too_few_mergeable_buffers(void **state)
{
	struct fixture *f = *state;
	struct dhcp_ctx ctx = { .xid = 0x2345678 };
	uint8_t b[1514];

	start(f, F_MRG);
	/* One 128-byte buffer: the OFFER needs several. */
	rx_post(f, 128, 1);
	tx_send(f, b, dhcp_discover(f, b, ctx.xid), false);
	assert_false(rx_frame(f, 300));
	/* More buffers: the frame must still come, whole. */
	rx_post(f, 128, 16);
	assert_true(rx_wait(f, dhcp_match, &ctx, 3000));
	assert_int_equal(ctx.type, 2);
	assert_true(rf.num_buffers >= 3);
	assert_int_equal(stats(f).rx_dropped, 0);
}

static void test_rx_too_big_for_buffer(void **state)
{
	struct fixture *f = *state;
	struct netbe_stats before;
	struct arp_ctx ctx = { .ip = ip4("10.0.2.2") };
	uint8_t b[1514];

	/* Non-mergeable 128-byte buffers: an OFFER never fits. */
	start(f, F_BASE);
	rx_post(f, 128, 4);
	before = stats(f);
	tx_send(f, b, dhcp_discover(f, b, 0x3456789), false);
	assert_false(rx_frame(f, 300));
	assert_true(stats(f).rx_dropped >= before.rx_dropped + 1);
	/* The buffers were not used up: a short ARP reply fits in one. */
	tx_send(f, b, arp(f, b, 1, NULL, ctx.ip), false);
	assert_true(rx_wait(f, arp_match, &ctx, 3000));
	assert_int_equal(rf.num_buffers, 1);
}

static void test_rx_frame_larger_than_ring(void **state)
{
	struct fixture *f = *state;
	struct arp_ctx ctx = { .ip = ip4("10.0.2.2") };
	struct netbe_stats before;
	uint8_t b[1514];
	int st;

	/* A 4-entry ring of 128-byte mergeable buffers can never hold an
	 * OFFER: dropped, not kept forever (that would stall receive). */
	st = vdriver_start(&f->d, F_MRG, 4);
	assert_true(st > 0 && (st & VIRTIO_STATUS_DRIVER_OK));
	f->mrg = true;
	memset(f->rx, 0, sizeof(f->rx));
	rx_post(f, 128, 4);
	before = stats(f);
	tx_send(f, b, dhcp_discover(f, b, 0x56789ab), false);
	assert_false(rx_frame(f, 300));
	assert_true(stats(f).rx_dropped >= before.rx_dropped + 1);
	tx_send(f, b, arp(f, b, 1, NULL, ctx.ip), false);
	assert_true(rx_wait(f, arp_match, &ctx, 3000));
}

static void test_tx_malformed(void **state)
{
	struct fixture *f = *state;
	struct netbe_stats before;
	uint8_t gw_mac[6];
	uint64_t gpa = vdriver_alloc(&f->d, 4096, 16);
	struct vdriver_buf shorthdr = { gpa, 8 }, out = { gpa, 60 },
			   in = { gpa + 2048, 64 };
	struct vring_desc *desc;
	uint16_t head, got;
	uint32_t len;

	start(f, F_MRG);
	rx_post(f, 1526, 16);
	memset(vdriver_ptr(&f->d, gpa), 0, 4096);
	before = stats(f);
	/* A header shorter than 12 bytes: dropped, given back. */
	head = vdriver_post(&f->d, TXQ, &shorthdr, 1, NULL, 0, false);
	vdriver_kick(&f->d, TXQ);
	assert_int_equal(vdriver_wait_used(&f->d, TXQ, &got, &len, 3000), 1);
	assert_int_equal(got, head);
	/* A writable buffer in a transmit chain: dropped, given back. */
	head = vdriver_post(&f->d, TXQ, &out, 1, &in, 1, false);
	vdriver_kick(&f->d, TXQ);
	assert_int_equal(vdriver_wait_used(&f->d, TXQ, &got, &len, 3000), 1);
	assert_int_equal(got, head);
	/* A header and nothing after it: the backend drops the empty frame. */
	shorthdr.len = HDR;
	head = vdriver_post(&f->d, TXQ, &shorthdr, 1, NULL, 0, true);
	vdriver_kick(&f->d, TXQ);
	assert_int_equal(vdriver_wait_used(&f->d, TXQ, &got, &len, 3000), 1);
	assert_int_equal(got, head);
	/* A frame longer than the backend takes (1518 bytes): dropped. */
	{
		uint64_t big = vdriver_alloc(&f->d, HDR + 2000, 16);
		struct vdriver_buf bb = { big, HDR + 2000 };

		memset(vdriver_ptr(&f->d, big), 0, HDR + 2000);
		memcpy((uint8_t *)vdriver_ptr(&f->d, big) + HDR, bcast, 6);
		head = vdriver_post(&f->d, TXQ, &bb, 1, NULL, 0, false);
		vdriver_kick(&f->d, TXQ);
		assert_int_equal(
			vdriver_wait_used(&f->d, TXQ, &got, &len, 3000), 1);
		assert_int_equal(got, head);
	}
	assert_int_equal(stats(f).tx_frames, before.tx_frames);
	assert_int_equal(stats(f).tx_malformed, before.tx_malformed + 2);
	assert_false(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
	/* The device still works. */
	arp_resolve(f, ip4("10.0.2.2"), gw_mac);
	assert_int_equal(stats(f).tx_frames, before.tx_frames + 1);
	/* A readable descriptor after a writable one: NEEDS_RESET. */
	head = vdriver_post(&f->d, TXQ, &out, 1, &in, 1, false);
	desc = f->d.q[TXQ].desc;
	desc[head].flags |= VRING_DESC_F_WRITE;
	desc[desc[head].next].flags &= ~VRING_DESC_F_WRITE;
	vdriver_kick(&f->d, TXQ);
	assert_true(vdriver_wait_config(&f->d, 3000));
	assert_true(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(vdriver_wait_used(&f->d, TXQ, &got, &len, 100), 0);
	/* Reset and start again: it serves. */
	start(f, F_MRG);
	rx_post(f, 1526, 16);
	dhcp_offer(f, false);
}

static void test_rx_bad_buffer(void **state)
{
	struct fixture *f = *state;
	uint8_t b[1514];
	uint16_t got;
	uint32_t len;

	start(f, F_MRG);
	/* A receive buffer too short for the header: NEEDS_RESET. */
	rx_post(f, 8, 1);
	tx_send(f, b, dhcp_discover(f, b, 0x456789a), false);
	assert_true(vdriver_wait_config(&f->d, 3000));
	assert_true(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(vdriver_wait_used(&f->d, RXQ, &got, &len, 100), 0);
	start(f, F_MRG);
	rx_post(f, 1526, 16);
	dhcp_offer(f, false);
}

static void test_reset_mid_traffic(void **state)
{
	struct fixture *f = *state;
	uint8_t gw_mac[6], b[128];
	uint16_t seq;
	int round;

	for (round = 0; round < 3; round++) {
		start(f, F_MRG);
		rx_post(f, 1526, 64);
		arp_resolve(f, ip4("10.0.2.2"), gw_mac);
		/* Pings in flight, unanswered, when the driver resets. */
		for (seq = 1; seq <= 32; seq++) {
			struct vdriver_buf bb;

			bb.len = (uint32_t)(HDR + icmp_echo(f, b, gw_mac,
							    ip4("10.0.2.2"),
							    seq, "in flight"));
			bb.gpa = vdriver_alloc(&f->d, bb.len, 16);
			memset(vdriver_ptr(&f->d, bb.gpa), 0, HDR);
			memcpy((uint8_t *)vdriver_ptr(&f->d, bb.gpa) + HDR, b,
			       bb.len - HDR);
			vdriver_post(&f->d, TXQ, &bb, 1, NULL, 0, false);
			vdriver_kick(&f->d, TXQ);
		}
		vdriver_reset(&f->d);
		assert_int_equal(vdriver_status(&f->d), 0);
	}
	/* Restarted: frames held back across the reset are harmless. */
	start(f, F_MRG);
	rx_post(f, 1526, 64);
	dhcp_offer(f, false);
	arp_resolve(f, ip4("10.0.2.2"), gw_mac);
	ping(f, ip4("10.0.2.2"), gw_mac, 77);
}

/* ---- VPNKit (a test server from test_virtio_net_hosts.py) ---- */

static int setup_vpnkit(void **state)
{
	const char *sock = getenv("KHYVE_TEST_VPNKIT_SOCK");
	char conf[512];

	if (!sock) {
		*state = NULL;
		return 0;
	}
	snprintf(conf, sizeof(conf), "path=%s", sock);
	net_open(&fx, "virtio-vpnkit", conf);
	fx.ip = ip4("192.168.65.3");
	*state = &fx;
	return 0;
}

static int teardown_maybe(void **state)
{
	return *state ? teardown(state) : 0;
}

static void test_vpnkit(void **state)
{
	struct fixture *f = *state;
	const char *want = getenv("KHYVE_TEST_VPNKIT_MAC");
	struct virtio_dev *dev;
	uint8_t mac[6], wmac[6], gw_mac[6], b[128];
	uint16_t status;

	if (!f || !want)
		skip(); /* needs the test VPNKit server */
	dev = virtio_net_dev(f->n);
	start(f, F_MRG);
	assert_int_equal(netbe_parse_mac(want, wmac), 0);
	dev->ops->config_read(dev, 0, mac, 6);
	assert_memory_equal(mac, wmac, 6);
	assert_memory_not_equal(mac, default_mac, 6);
	dev->ops->config_read(dev, offsetof(struct virtio_net_config, status),
			      &status, 2);
	assert_int_equal(status, VIRTIO_NET_S_LINK_UP);
	rx_post(f, 1526, 32);
	arp_resolve(f, ip4("192.168.65.1"), gw_mac);
	ping(f, ip4("192.168.65.1"), gw_mac, 1);
	ping(f, ip4("192.168.65.1"), gw_mac, 2);
	/* The server hangs up on "bye": link down in config space. */
	tx_send(f, b, icmp_echo(f, b, gw_mac, ip4("192.168.65.1"), 3, "bye"),
		false);
	assert_true(vdriver_wait_config(&f->d, 5000));
	dev->ops->config_read(dev, offsetof(struct virtio_net_config, status),
			      &status, 2);
	assert_int_equal(status, 0);
	assert_false(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- tap (inside a network namespace, from test_virtio_net_hosts.py) ---- */

static void test_tap(void **state)
{
	const char *name = getenv("KHYVE_TEST_TAP");
	const char *setup = getenv("KHYVE_TEST_TAP_SETUP");
	const char *peer = getenv("KHYVE_TEST_TAP_PEER");
	const char *self = getenv("KHYVE_TEST_TAP_SELF");
	struct fixture *f = &fx;
	struct virtio_dev *dev;
	uint8_t mac[6], peer_mac[6];
	char conf[64];

	(void)state;
	if (!name || !setup || !peer || !self)
		skip(); /* needs a network namespace */
	snprintf(conf, sizeof(conf), "tap=%s", name);
	net_open(f, "virtio-net", conf);
	f->ip = ip4(self);
	dev = virtio_net_dev(f->n);
	/* tap has a vnet header: offloads are offered. */
	assert_true(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_CSUM));
	assert_int_equal(system(setup), 0);
	start(f, F_MRG);
	dev->ops->config_read(dev, 0, mac, 6);
	assert_memory_equal(mac, default_mac, 6);
	rx_post(f, 1526, 64);
	arp_resolve(f, ip4(peer), peer_mac);
	ping(f, ip4(peer), peer_mac, 1);
	ping(f, ip4(peer), peer_mac, 2);
	/* Again with checksum and segmentation offloads negotiated (the
	 * device passes them to the tap with TUNSETOFFLOAD). */
	start(f, F_MRG | VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
			 VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
			 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
			 VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4));
	rx_post(f, 1526, 64);
	arp_resolve(f, ip4(peer), peer_mac);
	ping(f, ip4(peer), peer_mac, 3);
	teardown((void **)&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_space, setup_user,
						teardown),
		cmocka_unit_test_setup_teardown(test_config_mac_from_conf,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(test_dhcp_buffer_sizes,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(test_arp_ping_gateway,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(test_udp_host_loopback,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_host_loopback,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(test_hostfwd_syn, setup_user,
						teardown),
		cmocka_unit_test_setup_teardown(test_rx_no_buffers_then_posted,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(
			test_rx_too_few_mergeable_buffers, setup_user,
			teardown),
		cmocka_unit_test_setup_teardown(test_rx_too_big_for_buffer,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(test_rx_frame_larger_than_ring,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(test_tx_malformed, setup_user,
						teardown),
		cmocka_unit_test_setup_teardown(test_rx_bad_buffer, setup_user,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset_mid_traffic,
						setup_user, teardown),
		cmocka_unit_test_setup_teardown(test_vpnkit, setup_vpnkit,
						teardown_maybe),
		cmocka_unit_test(test_tap),
	};
	const char *only = getenv("KHYVE_TEST_ONLY");

	if (only)
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
