/*
 * Tier-2 driver of the network backends: it plays a guest's network stack
 * (ARP, IPv4, ICMP echo, a DHCP client, a small TCP state machine) over a
 * backend opened exactly as virtio-net would open it, with no virtio in
 * between. tests/net/test_netbe.py runs it against a VPNKit test server,
 * libslirp with TCP servers and clients on the host's loopback, and a tap
 * in a fresh network namespace. Checksums of everything received are
 * verified here (helpers of the test, not of khyve).
 *
 * Usage: netbe_driver MODE ARGS...; exit 0 when every check passed, with
 * one line per check on stdout ("ok ...") and the reason of a failure on
 * stderr.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/evloop.h"
#include "net/netbe.h"

#define QLEN 1024
#define ETH_ARP 0x0806
#define ETH_IP 0x0800

struct frame {
	uint8_t *d; /* ethernet frame */
	size_t len;
	struct netbe_vnet_hdr hdr;
};

static struct {
	struct netbe be;
	struct evloop loop;
	struct ev_handler tick;
	struct frame q[QLEN];
	unsigned int qh, qn;
	bool rx_ok;
	bool link_down;
	uint8_t mac[6];
	uint32_t ip; /* network order */
	uint64_t gso_frames, big_frames;
} g;

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("ok ");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		fail("bad address %s", s);
	return a.s_addr;
}

/* ---- the device side of the interface ---- */

static void dev_rx(struct netbe *be, const struct iovec *iov, unsigned int cnt,
		   void *opaque)
{
	size_t len = netbe_iov_len(iov, cnt);
	struct frame *f;

	(void)opaque;
	if (g.qn == QLEN)
		fail("receive queue overflow");
	f = &g.q[(g.qh + g.qn) % QLEN];
	memset(&f->hdr, 0, sizeof(f->hdr));
	if (be->vnet_hdr_len) {
		if (len < be->vnet_hdr_len)
			fail("frame shorter than its vnet header");
		netbe_iov_copy(iov, cnt, 0, &f->hdr, sizeof(f->hdr));
		if (f->hdr.gso_type != NETBE_VNET_GSO_NONE)
			g.gso_frames++;
	}
	f->len = len - be->vnet_hdr_len;
	if (f->len > 1514)
		g.big_frames++;
	f->d = malloc(f->len);
	if (!f->d)
		fail("out of memory");
	netbe_iov_copy(iov, cnt, be->vnet_hdr_len, f->d, f->len);
	g.qn++;
	evloop_stop(&g.loop);
}

static bool dev_rx_ready(void *opaque)
{
	(void)opaque;
	return g.rx_ok;
}

static void dev_link(void *opaque, bool up)
{
	(void)opaque;
	g.link_down = !up;
	evloop_stop(&g.loop);
}

static void tick_fn(struct ev_handler *h, uint32_t events)
{
	(void)events;
	evloop_timer_ack(h);
	evloop_stop(&g.loop);
}

/* Run the loop until something arrives or @ms pass. */
static void spin(int64_t ms)
{
	evloop_timer_arm(&g.tick, ms < 1 ? 1 : (uint64_t)ms, 0);
	g.loop.stop = false;
	evloop_run(&g.loop);
}

static void send_frame(const void *frame, size_t len,
		       const struct netbe_vnet_hdr *hdr)
{
	struct netbe_vnet_hdr zero = { 0 };
	struct iovec iov[2];
	unsigned int n = 0;
	int ret;

	if (g.be.vnet_hdr_len)
		iov[n++] = (struct iovec){ (void *)(hdr ? hdr : &zero),
					   NETBE_VNET_HDR_LEN };
	iov[n++] = (struct iovec){ (void *)frame, len };
	ret = netbe_send(&g.be, iov, n);
	if (ret)
		fail("netbe_send: %s", strerror(-ret));
}

/* ---- checksums and headers ---- */

static uint32_t sum16(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		sum += (uint32_t)(p[0] << 8);
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint16_t csum(const void *data, size_t len, uint32_t sum)
{
	return (uint16_t)~fold(sum16(data, len, sum));
}

static uint32_t pseudo(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
	uint32_t sum = sum16(&src, 4, 0);

	sum = sum16(&dst, 4, sum);
	return sum + proto + (uint32_t)len;
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

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static size_t eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, g.mac, 6);
	put16(f + 12, type);
	return 14;
}

/* IPv4 header at f+14 for @plen payload bytes; returns 34. */
static size_t ipv4(uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto,
		   size_t plen)
{
	static uint16_t id = 1;
	uint8_t *ip = f + 14;

	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(20 + plen));
	put16(ip + 4, id++);
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = proto;
	put16(ip + 10, 0);
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, csum(ip, 20, 0));
	return 34;
}

/* A received IPv4 packet: checks it; returns the payload or NULL. */
static const uint8_t *ipv4_payload(const struct frame *f, uint8_t proto,
				   size_t *plen)
{
	const uint8_t *ip = f->d + 14;
	size_t ihl, tot;

	if (f->len < 34 || get16(f->d + 12) != ETH_IP || ip[9] != proto)
		return NULL;
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = get16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || 14 + tot > f->len)
		fail("malformed IPv4 packet received");
	if (csum(ip, ihl, 0) != 0)
		fail("bad IPv4 header checksum received");
	*plen = tot - ihl;
	return ip + ihl;
}

/* ---- receiving ---- */

static void arp_answer(const uint8_t *d)
{
	uint8_t f[42];

	eth(f, d + 22, ETH_ARP);
	put16(f + 14, 1);
	put16(f + 16, ETH_IP);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 2);
	memcpy(f + 22, g.mac, 6);
	memcpy(f + 28, &g.ip, 4);
	memcpy(f + 32, d + 22, 10);
	send_frame(f, sizeof(f), NULL);
}

/* The next frame, answering ARP requests for our address on the way. */
static bool next_frame(struct frame *out, int64_t deadline)
{
	for (;;) {
		while (!g.qn) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return false;
			spin(left);
		}
		*out = g.q[g.qh];
		g.qh = (g.qh + 1) % QLEN;
		g.qn--;
		if (out->len >= 42 && get16(out->d + 12) == ETH_ARP &&
		    get16(out->d + 20) == 1 && g.ip &&
		    !memcmp(out->d + 38, &g.ip, 4)) {
			arp_answer(out->d);
			free(out->d);
			continue;
		}
		return true;
	}
}

typedef bool (*match_fn)(const struct frame *f, void *ctx);

static bool wait_for(match_fn match, void *ctx, struct frame *out, int ms)
{
	int64_t deadline = now_ms() + ms;
	struct frame f;

	while (next_frame(&f, deadline)) {
		if (match(&f, ctx)) {
			*out = f;
			return true;
		}
		free(f.d);
	}
	return false;
}

/* ---- ARP and ICMP ---- */

struct arp_ctx {
	uint32_t ip;
};

static bool arp_reply_match(const struct frame *f, void *c)
{
	struct arp_ctx *ctx = c;

	return f->len >= 42 && get16(f->d + 12) == ETH_ARP &&
	       get16(f->d + 20) == 2 && !memcmp(f->d + 28, &ctx->ip, 4) &&
	       !memcmp(f->d, g.mac, 6);
}

static void arp_resolve(uint32_t ip, uint8_t mac[6])
{
	struct arp_ctx ctx = { ip };
	uint8_t f[42] = { 0 };
	struct frame r;
	int tries;

	eth(f, bcast, ETH_ARP);
	put16(f + 14, 1);
	put16(f + 16, ETH_IP);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 1);
	memcpy(f + 22, g.mac, 6);
	memcpy(f + 28, &g.ip, 4);
	memcpy(f + 38, &ip, 4);
	for (tries = 0; tries < 5; tries++) {
		send_frame(f, sizeof(f), NULL);
		if (wait_for(arp_reply_match, &ctx, &r, 1000)) {
			memcpy(mac, r.d + 22, 6);
			free(r.d);
			ok("arp %s is at %02x:%02x:%02x:%02x:%02x:%02x",
			   inet_ntoa((struct in_addr){ ip }), mac[0], mac[1],
			   mac[2], mac[3], mac[4], mac[5]);
			return;
		}
	}
	fail("no ARP reply for %s", inet_ntoa((struct in_addr){ ip }));
}

struct echo_ctx {
	uint32_t from;
	uint16_t id, seq;
	const char *payload;
};

static bool echo_reply_match(const struct frame *f, void *c)
{
	struct echo_ctx *ctx = c;
	const uint8_t *p;
	size_t n;

	p = ipv4_payload(f, 1, &n);
	if (!p || n < 8 || p[0] != 0 || memcmp(f->d + 26, &ctx->from, 4))
		return false;
	if (csum(p, n, 0) != 0)
		fail("bad ICMP checksum received");
	return get16(p + 4) == ctx->id && get16(p + 6) == ctx->seq &&
	       n - 8 == strlen(ctx->payload) &&
	       !memcmp(p + 8, ctx->payload, n - 8);
}

static void ping(uint32_t dst, const uint8_t dmac[6], const char *payload,
		 bool expect)
{
	struct echo_ctx ctx = { dst, 0x4b48, 1, payload };
	size_t n = strlen(payload), off;
	uint8_t f[1514];
	struct frame r;

	off = eth(f, dmac, ETH_IP);
	off = ipv4(f, g.ip, dst, 1, 8 + n);
	f[off] = 8;
	f[off + 1] = 0;
	put16(f + off + 2, 0);
	put16(f + off + 4, ctx.id);
	put16(f + off + 6, ctx.seq);
	memcpy(f + off + 8, payload, n);
	put16(f + off + 2, csum(f + off, 8 + n, 0));
	send_frame(f, off + 8 + n, NULL);
	if (!expect)
		return;
	if (!wait_for(echo_reply_match, &ctx, &r, 3000))
		fail("no echo reply from %s",
		     inet_ntoa((struct in_addr){ dst }));
	free(r.d);
	ok("ping %s", inet_ntoa((struct in_addr){ dst }));
}

/* ---- UDP and DHCP ---- */

static size_t udp(uint8_t *f, const uint8_t *dmac, uint32_t src, uint32_t dst,
		  uint16_t sport, uint16_t dport, const void *data, size_t n)
{
	size_t off;
	uint8_t *u;

	eth(f, dmac, ETH_IP);
	off = ipv4(f, src, dst, 17, 8 + n);
	u = f + off;
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + n));
	put16(u + 6, 0);
	memcpy(u + 8, data, n);
	put16(u + 6, csum(u, 8 + n, pseudo(src, dst, 17, 8 + n)));
	return off + 8 + n;
}

struct dhcp_ctx {
	uint32_t xid;
	uint8_t type;
	uint32_t yiaddr, server, router, dns;
};

static bool dhcp_match(const struct frame *f, void *c)
{
	struct dhcp_ctx *ctx = c;
	const uint8_t *u, *b, *o;
	size_t n, i;
	uint32_t src;

	u = ipv4_payload(f, 17, &n);
	if (!u || n < 8 + 240 || get16(u) != 67 || get16(u + 2) != 68)
		return false;
	memcpy(&src, f->d + 26, 4);
	if (get16(u + 6) &&
	    csum(u, n, pseudo(src, *(uint32_t *)(f->d + 30), 17, n)) != 0)
		fail("bad UDP checksum on a DHCP reply");
	b = u + 8;
	n -= 8;
	if (b[0] != 2 || get32(b + 4) != ctx->xid ||
	    get32(b + 236) != 0x63825363)
		return false;
	memcpy(&ctx->yiaddr, b + 16, 4);
	ctx->type = 0;
	for (i = 240; i < n && b[i] != 255;) {
		if (b[i] == 0) {
			i++;
			continue;
		}
		if (i + 2 > n || i + 2 + b[i + 1] > n)
			fail("DHCP option runs past the packet");
		o = b + i + 2;
		if (b[i] == 53 && b[i + 1] == 1)
			ctx->type = o[0];
		if (b[i] == 54 && b[i + 1] == 4)
			memcpy(&ctx->server, o, 4);
		if (b[i] == 3 && b[i + 1] >= 4)
			memcpy(&ctx->router, o, 4);
		if (b[i] == 6 && b[i + 1] >= 4)
			memcpy(&ctx->dns, o, 4);
		i += 2 + b[i + 1];
	}
	return ctx->type != 0;
}

static void dhcp_send(struct dhcp_ctx *ctx, uint8_t type)
{
	uint8_t b[548] = { 0 }, f[1514];
	size_t i = 240;

	b[0] = 1;
	b[1] = 1;
	b[2] = 6;
	put32(b + 4, ctx->xid);
	put16(b + 10, 0x8000);
	memcpy(b + 28, g.mac, 6);
	put32(b + 236, 0x63825363);
	b[i++] = 53;
	b[i++] = 1;
	b[i++] = type;
	if (type == 3) {
		b[i++] = 50;
		b[i++] = 4;
		memcpy(b + i, &ctx->yiaddr, 4);
		i += 4;
		b[i++] = 54;
		b[i++] = 4;
		memcpy(b + i, &ctx->server, 4);
		i += 4;
	}
	b[i++] = 55;
	b[i++] = 3;
	b[i++] = 1;
	b[i++] = 3;
	b[i++] = 6;
	b[i++] = 255;
	send_frame(f, udp(f, bcast, 0, 0xffffffff, 68, 67, b, sizeof(b)), NULL);
}

/* DISCOVER, OFFER, REQUEST, ACK: the address must be @want. */
static void dhcp(const char *want, uint32_t *router)
{
	struct dhcp_ctx ctx = { .xid = 0x6b687976 };
	struct frame r;
	int tries;

	for (tries = 0;; tries++) {
		if (tries == 3)
			fail("no DHCPOFFER");
		dhcp_send(&ctx, 1);
		if (wait_for(dhcp_match, &ctx, &r, 2000) && ctx.type == 2)
			break;
	}
	free(r.d);
	ok("dhcp offer %s", inet_ntoa((struct in_addr){ ctx.yiaddr }));
	dhcp_send(&ctx, 3);
	if (!wait_for(dhcp_match, &ctx, &r, 2000) || ctx.type != 5)
		fail("no DHCPACK");
	free(r.d);
	if (ctx.yiaddr != ip4(want))
		fail("DHCP gave %s, expected %s",
		     inet_ntoa((struct in_addr){ ctx.yiaddr }), want);
	g.ip = ctx.yiaddr;
	*router = ctx.router;
	ok("dhcp ack %s router %s", want,
	   inet_ntoa((struct in_addr){ ctx.router }));
}

struct udp_ctx {
	uint32_t from;
	uint16_t sport, dport;
	const char *payload;
};

static bool udp_reply_match(const struct frame *f, void *c)
{
	struct udp_ctx *ctx = c;
	const uint8_t *u;
	uint32_t src;
	size_t n;

	u = ipv4_payload(f, 17, &n);
	if (!u || n < 8)
		return false;
	memcpy(&src, f->d + 26, 4);
	if (src != ctx->from || get16(u) != ctx->dport ||
	    get16(u + 2) != ctx->sport)
		return false;
	if (get16(u + 6) && csum(u, n, pseudo(src, g.ip, 17, n)) != 0)
		fail("bad UDP checksum received");
	return n - 8 == strlen(ctx->payload) &&
	       !memcmp(u + 8, ctx->payload, n - 8);
}

/* Send @msg to @dst:@port over UDP and expect it back. */
static void udp_echo(uint32_t dst, const uint8_t dmac[6], uint16_t port,
		     const char *msg)
{
	struct udp_ctx ctx = { dst, 40001, port, msg };
	uint8_t f[1514];
	struct frame r;

	send_frame(f, udp(f, dmac, g.ip, dst, 40001, port, msg, strlen(msg)),
		   NULL);
	if (!wait_for(udp_reply_match, &ctx, &r, 3000))
		fail("no UDP echo from port %u", port);
	free(r.d);
	ok("udp echo '%s'", msg);
}

/* ---- TCP ---- */

#define TF_FIN 1
#define TF_SYN 2
#define TF_RST 4
#define TF_PSH 8
#define TF_ACK 16

struct tcb {
	uint8_t peer_mac[6];
	uint32_t rip; /* network order */
	uint16_t lport, rport;
	uint32_t snd_nxt, snd_una, rcv_nxt;
	uint8_t *rbuf;
	size_t rlen, rcap;
	bool fin_rcvd, synack;
};

static void tcp_send(struct tcb *t, uint8_t flags, const void *data, size_t n)
{
	static uint8_t f[14 + 20 + 20 + 1460];
	size_t off;
	uint8_t *h;

	if (n > 1460)
		fail("tcp_send: segment too long");
	eth(f, t->peer_mac, ETH_IP);
	off = ipv4(f, g.ip, t->rip, 6, 20 + n);
	h = f + off;
	memset(h, 0, 20);
	put16(h, t->lport);
	put16(h + 2, t->rport);
	put32(h + 4, t->snd_nxt);
	put32(h + 8, (flags & TF_ACK) ? t->rcv_nxt : 0);
	h[12] = 5 << 4;
	h[13] = flags;
	put16(h + 14, 65535);
	memcpy(h + 20, data, n);
	put16(h + 16, csum(h, 20 + n, pseudo(g.ip, t->rip, 6, 20 + n)));
	send_frame(f, off + 20 + n, NULL);
	t->snd_nxt += (uint32_t)n + !!(flags & TF_SYN) + !!(flags & TF_FIN);
}

/*
 * One TSO segment of @n bytes: the vnet header asks the backend's side to
 * cut it into MSS-sized packets and finish the checksums (virtio spec
 * §5.1.6.2): the TCP checksum field holds the pseudo-header sum only.
 */
static void tcp_send_gso(struct tcb *t, const uint8_t *data, size_t n)
{
	static uint8_t f[14 + 20 + 20 + 65000];
	struct netbe_vnet_hdr hdr = {
		.flags = NETBE_VNET_F_NEEDS_CSUM,
		.gso_type = NETBE_VNET_GSO_TCPV4,
		.hdr_len = htole16(54),
		.gso_size = htole16(1448),
		.csum_start = htole16(34),
		.csum_offset = htole16(16),
	};
	size_t off;
	uint8_t *h;

	if (n > 65000)
		fail("tcp_send_gso: too long");
	eth(f, t->peer_mac, ETH_IP);
	off = ipv4(f, g.ip, t->rip, 6, 20 + n);
	h = f + off;
	memset(h, 0, 20);
	put16(h, t->lport);
	put16(h + 2, t->rport);
	put32(h + 4, t->snd_nxt);
	put32(h + 8, t->rcv_nxt);
	h[12] = 5 << 4;
	h[13] = TF_ACK | TF_PSH;
	put16(h + 14, 65535);
	memcpy(h + 20, data, n);
	put16(h + 16, fold(pseudo(g.ip, t->rip, 6, 20 + n)));
	send_frame(f, off + 20 + n, &hdr);
	t->snd_nxt += (uint32_t)n;
}

struct seg {
	struct tcb *t;
	uint8_t flags;
	uint32_t seq, ack;
	const uint8_t *data;
	size_t n;
	bool any_port; /* accept: a SYN to lport from anyone */
};

static bool tcp_match(const struct frame *f, void *c)
{
	struct seg *s = c;
	const uint8_t *h;
	uint32_t src, dst;
	size_t n, hl;

	h = ipv4_payload(f, 6, &n);
	if (!h || n < 20)
		return false;
	memcpy(&src, f->d + 26, 4);
	memcpy(&dst, f->d + 30, 4);
	if (get16(h + 2) != s->t->lport || dst != g.ip)
		return false;
	if (!s->any_port && (get16(h) != s->t->rport || src != s->t->rip))
		return false;
	/* A partial checksum (offload) is finished by the receiver's NIC. */
	if (!(f->hdr.flags & NETBE_VNET_F_NEEDS_CSUM) &&
	    csum(h, n, pseudo(src, dst, 6, n)) != 0)
		fail("bad TCP checksum received");
	hl = (size_t)(h[12] >> 4) * 4;
	if (hl < 20 || hl > n)
		fail("bad TCP header length");
	if (s->any_port) {
		memcpy(s->t->peer_mac, f->d + 6, 6);
		s->t->rip = src;
		s->t->rport = get16(h);
	}
	s->flags = h[13];
	s->seq = get32(h + 4);
	s->ack = get32(h + 8);
	s->data = h + hl;
	s->n = n - hl;
	return true;
}

/* Take one segment for @t; false on timeout. Data in order is kept. */
static bool tcp_input(struct tcb *t, int ms, bool any_port)
{
	struct seg s = { .t = t, .any_port = any_port };
	struct frame f;

	if (!wait_for(tcp_match, &s, &f, ms))
		return false;
	if (s.flags & TF_RST)
		fail("connection reset by the peer");
	if (s.flags & TF_SYN) {
		t->rcv_nxt = s.seq + 1;
		t->synack = (s.flags & TF_ACK) != 0;
	} else if (s.seq == t->rcv_nxt) {
		if (t->rlen + s.n > t->rcap) {
			t->rcap = (t->rlen + s.n) * 2;
			t->rbuf = realloc(t->rbuf, t->rcap);
			if (!t->rbuf)
				fail("out of memory");
		}
		memcpy(t->rbuf + t->rlen, s.data, s.n);
		t->rlen += s.n;
		t->rcv_nxt += (uint32_t)s.n;
		if (s.flags & TF_FIN) {
			t->rcv_nxt++;
			t->fin_rcvd = true;
		}
		if (s.n || (s.flags & TF_FIN))
			tcp_send(t, TF_ACK, NULL, 0);
	} else if (s.n) {
		/* Out of order or a retransmission: say what we have. */
		tcp_send(t, TF_ACK, NULL, 0);
	}
	if (s.flags & TF_ACK)
		t->snd_una = s.ack;
	free(f.d);
	return true;
}

static void tcp_connect(struct tcb *t)
{
	int64_t deadline = now_ms() + 5000;

	t->snd_nxt = 0x10000000;
	tcp_send(t, TF_SYN, NULL, 0);
	while (!t->synack) {
		if (now_ms() > deadline || !tcp_input(t, 5000, false))
			fail("no SYN-ACK from port %u", t->rport);
	}
	if (t->snd_una != t->snd_nxt)
		fail("SYN-ACK acknowledges %u, expected %u", t->snd_una,
		     t->snd_nxt);
	tcp_send(t, TF_ACK, NULL, 0);
	ok("tcp connected to %s:%u", inet_ntoa((struct in_addr){ t->rip }),
	   t->rport);
}

/* Wait until @n bytes arrived (or FIN). */
static void tcp_recv(struct tcb *t, size_t n, int ms)
{
	int64_t deadline = now_ms() + ms;

	while (t->rlen < n && !t->fin_rcvd)
		if (now_ms() > deadline ||
		    !tcp_input(t, (int)(deadline - now_ms()), false))
			fail("received %zu of %zu bytes", t->rlen, n);
}

static void tcp_close(struct tcb *t)
{
	int64_t deadline = now_ms() + 5000;

	tcp_send(t, TF_FIN | TF_ACK, NULL, 0);
	while (!t->fin_rcvd || t->snd_una != t->snd_nxt)
		if (now_ms() > deadline || !tcp_input(t, 5000, false))
			fail("connection did not close");
	ok("tcp closed");
}

/* Connect, send @msg, expect it echoed, close. */
static void tcp_echo(uint32_t rip, const uint8_t rmac[6], uint16_t rport,
		     const char *msg)
{
	struct tcb t = { .rip = rip, .lport = 40000, .rport = rport };

	memcpy(t.peer_mac, rmac, 6);
	tcp_connect(&t);
	tcp_send(&t, TF_PSH | TF_ACK, msg, strlen(msg));
	tcp_recv(&t, strlen(msg), 5000);
	if (t.rlen != strlen(msg) || memcmp(t.rbuf, msg, t.rlen))
		fail("echo: got '%.*s'", (int)t.rlen, t.rbuf);
	ok("tcp echo '%s'", msg);
	tcp_close(&t);
	free(t.rbuf);
}

/*
 * With offloads on: one 60000-byte TSO segment out, the echo back in
 * segments the host's stack did not cut (GSO frames with a vnet header).
 */
static void tso_echo(uint32_t rip, const uint8_t rmac[6], uint16_t rport)
{
	struct tcb t = { .rip = rip, .lport = 40002, .rport = rport };
	static uint8_t data[60000];
	size_t i;
	int ret;

	ret = netbe_set_offloads(&g.be, NETBE_OFF_CSUM | NETBE_OFF_TSO4 |
						NETBE_OFF_TSO6 | NETBE_OFF_ECN);
	if (ret)
		fail("set_offloads: %s", strerror(-ret));
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	memcpy(t.peer_mac, rmac, 6);
	g.gso_frames = g.big_frames = 0;
	tcp_connect(&t);
	tcp_send_gso(&t, data, sizeof(data));
	tcp_recv(&t, sizeof(data), 10000);
	if (t.rlen != sizeof(data) || memcmp(t.rbuf, data, t.rlen))
		fail("tso echo: %zu bytes, or different", t.rlen);
	if (!g.gso_frames || !g.big_frames)
		fail("no GSO frames received with offloads on");
	ok("tso echo %zu bytes, %llu GSO frames received", sizeof(data),
	   (unsigned long long)g.gso_frames);
	tcp_close(&t);
	free(t.rbuf);
}

/* Backpressure: no buffers, nothing delivered; on resume, all of it. */
static void rx_pause_resume(uint32_t gw, const uint8_t gw_mac[6])
{
	struct echo_ctx ctx = { gw, 0x4b48, 1, "khyve ping" };
	struct frame r;

	g.rx_ok = false;
	ping(gw, gw_mac, "khyve ping", false);
	spin(300);
	if (g.qn)
		fail("a frame was delivered while the device had no buffers");
	g.rx_ok = true;
	netbe_rx_resume(&g.be);
	if (!wait_for(echo_reply_match, &ctx, &r, 3000))
		fail("the reply held back was not delivered on resume");
	free(r.d);
	ok("rx paused and resumed");
}

/* ---- modes ---- */

static void setup(const char *emulation, const char *conf)
{
	char err[256];
	int ret;

	ret = netbe_open(&g.be, emulation, conf, err, sizeof(err));
	if (ret)
		fail("open: %s", err);
	if (evloop_init(&g.loop) ||
	    evloop_timer_add(&g.loop, &g.tick, tick_fn, NULL))
		fail("evloop");
	g.rx_ok = true;
	g.be.rx = dev_rx;
	g.be.rx_ready = dev_rx_ready;
	g.be.link = dev_link;
	if (netbe_attach(&g.be, &g.loop))
		fail("attach");
	if (!g.be.has_mac)
		memcpy(g.mac, (uint8_t[]){ 0x02, 0x6b, 0x68, 0, 0, 1 }, 6);
	else
		memcpy(g.mac, g.be.mac, 6);
}

static void teardown(void)
{
	netbe_close(&g.be);
	evloop_del(&g.loop, &g.tick);
	close(g.tick.fd);
	evloop_exit(&g.loop);
	while (g.qn) {
		free(g.q[g.qh].d);
		g.qh = (g.qh + 1) % QLEN;
		g.qn--;
	}
}

static void print_stats(void)
{
	struct netbe_stats *s = &g.be.stats;

	printf("stats rx_frames=%llu tx_frames=%llu rx_malformed=%llu tx_malformed=%llu rx_dropped=%llu tx_dropped=%llu\n",
	       (unsigned long long)s->rx_frames,
	       (unsigned long long)s->tx_frames,
	       (unsigned long long)s->rx_malformed,
	       (unsigned long long)s->tx_malformed,
	       (unsigned long long)s->rx_dropped,
	       (unsigned long long)s->tx_dropped);
	fflush(stdout);
}

/* Frames the backend must refuse from the device: counted, not sent. */
static void send_malformed(void)
{
	static uint8_t big[NETBE_MAX_GSO_FRAME + 2];
	uint64_t before = g.be.stats.tx_malformed;
	uint8_t small[13] = { 0 };

	memset(big, 0, sizeof(big));
	eth(big, bcast, 0x88b5);
	send_frame(small, sizeof(small), NULL);
	send_frame(big, g.be.max_frame + 1, NULL);
	if (g.be.stats.tx_malformed != before + 2)
		fail("malformed frames from the device: %llu counted, expected 2",
		     (unsigned long long)(g.be.stats.tx_malformed - before));
	ok("malformed frames from the device dropped");
}

/*
 * vpnkit SOCK MAC IP [CONF]: handshake; the assigned MAC is MAC; DHCP gives IP; ARP and
 * ping the gateway; the server's malformed frames are counted; then the
 * server hangs up (asked by a ping saying "bye") and the link goes down.
 */
static int mode_vpnkit(int argc, char **argv)
{
	uint8_t want[6], gw_mac[6];
	char conf[512];
	uint32_t gw;

	if (argc < 5)
		fail("usage: vpnkit SOCK MAC IP [CONF]");
	snprintf(conf, sizeof(conf), "path=%s%s%s", argv[2],
		 argc > 5 ? "," : "", argc > 5 ? argv[5] : "");
	setup("virtio-vpnkit", conf);
	if (netbe_parse_mac(argv[3], want) || !g.be.mac_assigned ||
	    memcmp(want, g.be.mac, 6))
		fail("the assigned MAC is not %s", argv[3]);
	ok("vif mtu %u max_frame %u", g.be.mtu, g.be.max_frame);
	dhcp(argv[4], &gw);
	arp_resolve(gw, gw_mac);
	ping(gw, gw_mac, "khyve ping", true);
	send_malformed();
	if (g.be.stats.rx_malformed != 3)
		fail("malformed frames from the server: %llu counted, expected 3",
		     (unsigned long long)g.be.stats.rx_malformed);
	ok("malformed frames from the server dropped");
	rx_pause_resume(gw, gw_mac);
	ping(gw, gw_mac, "bye", false);
	{
		int64_t deadline = now_ms() + 5000;

		while (!g.link_down && now_ms() < deadline)
			spin(deadline - now_ms());
	}
	if (!g.link_down || g.be.link_up)
		fail("the link did not go down when the server left");
	ok("link down on connection loss");
	send_frame((uint8_t[60]){ 0 }, 60, NULL);
	if (!g.be.stats.tx_dropped)
		fail("a frame sent after the loss was not counted as dropped");
	print_stats();
	teardown();
	return 0;
}

/* open EMULATION CONF: print the result of netbe_open. */
static int mode_open(int argc, char **argv)
{
	char err[256] = "";
	int ret;

	if (argc < 4)
		fail("usage: open EMULATION CONF");
	ret = netbe_open(&g.be, argv[2], argv[3], err, sizeof(err));
	printf("open %d %s\n", ret, ret ? err : "");
	if (!ret)
		netbe_close(&g.be);
	return 0;
}

/* user TCPPORT UDPPORT: DHCP, ARP/ping the gateway, TCP and UDP echo with host servers. */
static int mode_user(int argc, char **argv)
{
	uint8_t gw_mac[6];
	uint32_t gw;

	if (argc < 4)
		fail("usage: user TCPPORT UDPPORT");
	setup("virtio-net", "user");
	dhcp("10.0.2.15", &gw);
	if (gw != ip4("10.0.2.2"))
		fail("router is not 10.0.2.2");
	arp_resolve(gw, gw_mac);
	ping(gw, gw_mac, "khyve ping", true);
	rx_pause_resume(gw, gw_mac);
	send_malformed();
	tcp_echo(gw, gw_mac, (uint16_t)atoi(argv[2]), "hello");
	udp_echo(gw, gw_mac, (uint16_t)atoi(argv[3]), "hello udp");
	print_stats();
	teardown();
	return 0;
}

/* user-dns: a datagram to 10.0.2.3:53 comes back from the host's resolver. */
static int mode_user_dns(int argc, char **argv)
{
	uint8_t dns_mac[6];
	uint32_t gw, dns = ip4("10.0.2.3");

	(void)argc;
	(void)argv;
	setup("virtio-net", "user");
	dhcp("10.0.2.15", &gw);
	arp_resolve(dns, dns_mac);
	udp_echo(dns, dns_mac, 53, "dns query");
	teardown();
	return 0;
}

/*
 * user-hostfwd HPORT GPORT: hostfwd=tcp:127.0.0.1:HPORT-:GPORT; after DHCP
 * print "ready"; a host client connects and sends "ping": answer "pong".
 */
static int mode_user_hostfwd(int argc, char **argv)
{
	struct tcb t = { 0 };
	char conf[128];
	uint32_t gw;

	if (argc < 4)
		fail("usage: user-hostfwd HPORT GPORT");
	snprintf(conf, sizeof(conf), "user,hostfwd=tcp:127.0.0.1:%s-:%s",
		 argv[2], argv[3]);
	setup("virtio-net", conf);
	dhcp("10.0.2.15", &gw);
	printf("ready\n");
	fflush(stdout);
	t.lport = (uint16_t)atoi(argv[3]);
	t.snd_nxt = 0x20000000;
	while (!t.synack && !t.rcv_nxt)
		if (!tcp_input(&t, 10000, true))
			fail("no SYN from the forwarded port");
	tcp_send(&t, TF_SYN | TF_ACK, NULL, 0);
	ok("hostfwd SYN from %s:%u answered",
	   inet_ntoa((struct in_addr){ t.rip }), t.rport);
	tcp_recv(&t, 4, 5000);
	if (t.rlen != 4 || memcmp(t.rbuf, "ping", 4))
		fail("hostfwd: got '%.*s'", (int)t.rlen, t.rbuf);
	tcp_send(&t, TF_PSH | TF_ACK, "pong", 4);
	ok("hostfwd data exchanged");
	tcp_recv(&t, 5, 5000); /* until the client's FIN */
	if (!t.fin_rcvd)
		fail("no FIN from the host client");
	tcp_send(&t, TF_FIN | TF_ACK, NULL, 0);
	ok("hostfwd closed");
	free(t.rbuf);
	print_stats();
	teardown();
	return 0;
}

/*
 * tap NAME SETUP PEER PORT: open tap NAME (created), run the shell
 * command SETUP (brings it up, with PEER on the host side and a TCP echo
 * server on PEER:PORT), then ARP, ping and TCP echo.
 */
static int mode_tap(int argc, char **argv)
{
	uint8_t peer_mac[6];
	int64_t deadline;
	char conf[64];
	uint32_t peer;

	if (argc < 7)
		fail("usage: tap NAME SETUP PEER OURIP PORT");
	snprintf(conf, sizeof(conf), "tap=%s", argv[2]);
	setup("virtio-net", conf);
	if (g.be.vnet_hdr_len != NETBE_VNET_HDR_LEN || !g.be.offloads)
		fail("tap without a vnet header");
	ok("tap %s open, mtu %u", argv[2], g.be.mtu);
	if (system(argv[3]) != 0)
		fail("setup command failed");
	peer = ip4(argv[4]);
	g.ip = ip4(argv[5]);
	arp_resolve(peer, peer_mac);
	ping(peer, peer_mac, "khyve ping", true);
	send_malformed();
	tcp_echo(peer, peer_mac, (uint16_t)atoi(argv[6]), "hello through tap");
	tso_echo(peer, peer_mac, (uint16_t)atoi(argv[6]));
	snprintf(conf, sizeof(conf), "ip link del %s", argv[2]);
	if (system(conf) != 0)
		fail("%s failed", conf);
	deadline = now_ms() + 3000;
	while (!g.link_down && now_ms() < deadline)
		spin(100);
	if (!g.link_down || g.be.link_up)
		fail("the link did not go down with the interface");
	ok("link down when the interface is deleted");
	print_stats();
	teardown();
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} modes[] = {
		{ "open", mode_open }, { "vpnkit", mode_vpnkit },
		{ "user", mode_user }, { "user-hostfwd", mode_user_hostfwd },
		{ "user-dns", mode_user_dns }, { "tap", mode_tap },
	};
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; argc > 1 && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			return modes[i].fn(argc, argv);
	fprintf(stderr,
		"usage: netbe_driver open|vpnkit|user|user-hostfwd|user-dns|tap ...\n");
	return 2;
}
