/*
 * devbench net: virtio-net over a real backend (tap, or user-mode
 * networking on libslirp), the driver streaming UDP frames out (tx) or
 * taking what a host-side peer sends in (rx), for SECONDS.
 *
 *   net CONF GUEST_IP PEER_IP PORT tx|rx PAYLOAD MTU SECONDS
 *
 * CONF is the -s conf ("tap=NAME", "user,hostfwd=udp:..."). tx: UDP
 * datagrams of PAYLOAD bytes from GUEST_IP to PEER_IP:PORT, cut into IPv4
 * fragments of at most MTU bytes (none when the datagram fits), the
 * peer's MAC found by ARP first. rx: the driver answers ARP for GUEST_IP
 * and counts the IPv4 frames that arrive, from the first one on. The
 * receive queue is always kept full of 4 KiB buffers (mergeable receive
 * buffers) and recycled; the last transmit slot is kept for ARP.
 *
 * The host-side peers, plain programs with no device:
 *   udpsink BIND_IP PORT SECONDS      count datagrams (recvmmsg)
 *   udpblast DST_IP PORT PAYLOAD SECONDS   send as fast as it can
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devbench.h"
#include "devices/virtio_net.h"

#define RXQ 0
#define TXQ 1
#define HDR 12
#define RX_BUF 4096
#define TX_ROOM (HDR + 14 + 65536)
#define ETH_IP 0x0800
#define ETH_ARP 0x0806

struct netb {
	struct vdriver d;
	struct virtio_net *n;
	uint8_t mac[6], peer_mac[6];
	uint32_t ip, peer_ip; /* network order */
	uint16_t port;
	bool have_peer;
	uint64_t rx_gpa, tx_gpa;
	unsigned int rxq, txq; /* queue sizes */
	/* The datagram being sent: next fragment's offset, its IP id. */
	uint32_t payload, mtu, frag_off;
	uint16_t ip_id;
	/* rx */
	bool counting;
	unsigned int rx_left; /* buffers still to come of this frame */
	uint64_t rx_frames, rx_bytes, rx_datagrams;
	double t_first;
	/* tx */
	uint64_t tx_frames, tx_bytes, tx_datagrams;
	bool arp_pending;
	uint8_t arp_reply_to[6];
	uint32_t arp_reply_ip;
	/* tcptx: one TCP connection, the guest sending */
	bool tcp;
	bool syn_acked;
	uint32_t snd_una, snd_nxt, rcv_nxt, peer_wnd, mss;
	uint8_t peer_wscale;
	bool tcp_rst;
	uint64_t tcp_acked; /* payload bytes acknowledged (snd_una wraps) */
	/* tcprx: the guest receiving */
	bool tcp_listen, got_syn, need_ack;
	uint16_t guest_port;
	uint64_t tcp_rx_bytes;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint16_t ip_csum(const uint8_t *h)
{
	uint32_t s = 0;
	int i;

	for (i = 0; i < 20; i += 2)
		s += get16(h + i);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint8_t *tx_buf(struct netb *b, unsigned int slot)
{
	return vdriver_ptr(&b->d, b->tx_gpa + (uint64_t)slot * TX_ROOM);
}

static void post_tx(struct netb *b, unsigned int slot, uint32_t frame_len)
{
	struct vdriver_buf v = { b->tx_gpa + (uint64_t)slot * TX_ROOM,
				 HDR + frame_len };

	memset(tx_buf(b, slot), 0, HDR);
	bench_post(&b->d, TXQ, slot, 1, &v, 1, 0);
}

static void send_arp(struct netb *b, bool reply, const uint8_t *dmac,
		     uint32_t dip)
{
	unsigned int slot = b->txq - 1;
	uint8_t *f = tx_buf(b, slot) + HDR;
	uint16_t old = b->d.q[TXQ].avail_idx;

	memcpy(f, reply ? dmac : (const uint8_t *)"\xff\xff\xff\xff\xff\xff",
	       6);
	memcpy(f + 6, b->mac, 6);
	put16(f + 12, ETH_ARP);
	put16(f + 14, 1);
	put16(f + 16, ETH_IP);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, reply ? 2 : 1);
	memcpy(f + 22, b->mac, 6);
	memcpy(f + 28, &b->ip, 4);
	memcpy(f + 32, reply ? dmac : (const uint8_t *)"\0\0\0\0\0\0", 6);
	memcpy(f + 38, &dip, 4);
	memset(f + 42, 0, 18);
	post_tx(b, slot, 60);
	bench_kick(&b->d, TXQ, old);
}

/* The next fragment of the current datagram into @slot; its length. */
static uint32_t build_data(struct netb *b, unsigned int slot)
{
	uint8_t *f = tx_buf(b, slot) + HDR, *ip = f + 14;
	uint32_t dgram = 8 + b->payload, room = (b->mtu - 20) & ~7u;
	uint32_t len = dgram - b->frag_off;
	bool more = false;

	if (len > b->mtu - 20) {
		len = room;
		more = true;
	}
	memcpy(f, b->peer_mac, 6);
	memcpy(f + 6, b->mac, 6);
	put16(f + 12, ETH_IP);
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(20 + len));
	put16(ip + 4, b->ip_id);
	put16(ip + 6, (uint16_t)((more ? 0x2000 : 0) | (b->frag_off >> 3)));
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	put16(ip + 10, 0);
	memcpy(ip + 12, &b->ip, 4);
	memcpy(ip + 16, &b->peer_ip, 4);
	put16(ip + 10, ip_csum(ip));
	if (b->frag_off == 0) {
		put16(ip + 20, 40000);
		put16(ip + 22, b->port);
		put16(ip + 24, (uint16_t)dgram);
		put16(ip + 26, 0); /* no checksum (IPv4 allows it) */
	}
	b->frag_off += len;
	if (!more) {
		b->frag_off = 0;
		b->ip_id++;
		b->tx_datagrams++;
	}
	return 14 + 20 + len;
}

static void tcp_input(struct netb *b, const uint8_t *f, uint32_t len);

static void rx_frame(struct netb *b, const uint8_t *f, uint32_t len)
{
	uint32_t tip, sip;

	if (len < 14)
		return;
	if (b->tcp && get16(f + 12) == ETH_IP && len >= 54 && f[23] == 6) {
		tcp_input(b, f, len);
		return;
	}
	if (get16(f + 12) == ETH_IP && len >= 34) {
		if (!b->counting) {
			b->counting = true;
			b->t_first = bench_now();
		}
		b->rx_frames++;
		b->rx_bytes += len;
		/* The last fragment (or the only one) ends a datagram. */
		if (!(get16(f + 20) & 0x2000))
			b->rx_datagrams++;
		return;
	}
	if (get16(f + 12) != ETH_ARP || len < 42)
		return;
	memcpy(&sip, f + 28, 4);
	memcpy(&tip, f + 38, 4);
	if (get16(f + 20) == 1 && tip == b->ip) {
		memcpy(b->arp_reply_to, f + 22, 6);
		b->arp_reply_ip = sip;
		b->arp_pending = true;
	} else if (get16(f + 20) == 2 && sip == b->peer_ip) {
		memcpy(b->peer_mac, f + 22, 6);
		b->have_peer = true;
	}
}

static void post_rx(struct netb *b, unsigned int slot)
{
	struct vdriver_buf v = { b->rx_gpa + (uint64_t)slot * RX_BUF, RX_BUF };

	bench_post(&b->d, RXQ, slot, 1, &v, 0, 1);
}

/* Take every used receive buffer, give it back; true if there were any. */
static bool rx_reap(struct netb *b)
{
	uint16_t head, old = b->d.q[RXQ].avail_idx;
	uint32_t len;
	bool any = false;

	while (vdriver_take_used(&b->d, RXQ, &head, &len)) {
		uint8_t *p =
			vdriver_ptr(&b->d, b->rx_gpa + (uint64_t)head * RX_BUF);

		if (head >= b->rxq || len > RX_BUF)
			bench_fail("net: bad used receive entry %u len %u",
				   head, len);
		if (b->rx_left == 0) {
			struct virtio_net_hdr_v1 *h = (void *)p;

			b->rx_left = h->num_buffers ? h->num_buffers : 1;
			if (len >= HDR)
				rx_frame(b, p + HDR, len - HDR);
		} else if (b->counting) {
			b->rx_bytes += len;
		}
		b->rx_left--;
		post_rx(b, head);
		any = true;
	}
	if (any)
		bench_kick(&b->d, RXQ, old);
	return any;
}

static uint32_t parse_ip(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		bench_fail("net: bad address %s", s);
	return a.s_addr;
}

static void setup(struct netb *b, const char *conf)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	unsigned int i;
	char err[256];

	if (vdriver_init(&b->d, 256ULL << 20))
		bench_fail("net: guest memory");
	if (virtio_net_init(&b->n, "virtio-net@bench", &b->d.mem, "virtio-net",
			    conf, mac, err, sizeof(err)))
		bench_fail("net: %s", err);
	memcpy(b->mac, virtio_net_mac(b->n), 6);
	vdriver_attach(&b->d, virtio_net_dev(b->n));
	if (vdriver_start(&b->d, ~0ULL, 0) <= 0)
		bench_fail("net: the device did not start");
	if (!(b->d.features & (1ULL << VIRTIO_NET_F_MRG_RXBUF)))
		bench_fail("net: no mergeable receive buffers");
	b->rxq = b->d.q[RXQ].size;
	b->txq = b->d.q[TXQ].size;
	b->rx_gpa = vdriver_alloc(&b->d, (uint64_t)b->rxq * RX_BUF, 4096);
	b->tx_gpa = vdriver_alloc(&b->d, (uint64_t)b->txq * TX_ROOM, 4096);
	if (!b->rx_gpa || !b->tx_gpa)
		bench_fail("net: guest memory");
	for (i = 0; i < b->rxq; i++)
		post_rx(b, i);
	vdriver_kick(&b->d, RXQ);
}

static void answer_arp(struct netb *b)
{
	uint16_t head;
	uint32_t len;

	if (!b->arp_pending)
		return;
	b->arp_pending = false;
	send_arp(b, true, b->arp_reply_to, b->arp_reply_ip);
	/* The control slot: wait for it before anything else is posted. */
	if (bench_used(&b->d, TXQ, &head, &len, 5000) != 1)
		bench_fail("net: the ARP reply was not sent");
}

static void resolve_peer(struct netb *b)
{
	double t0 = bench_now();
	uint16_t head;
	uint32_t len;
	int tries = 0;

	while (!b->have_peer) {
		if (bench_now() - t0 > tries * 0.5) {
			if (tries++ == 10)
				bench_fail("net: no ARP reply from the peer");
			send_arp(b, false, NULL, b->peer_ip);
			if (bench_used(&b->d, TXQ, &head, &len, 5000) != 1)
				bench_fail("net: the ARP request was not sent");
		}
		bench_wait_irq(&b->d, RXQ, TXQ, 50);
		rx_reap(b);
		answer_arp(b);
	}
	b->counting = false;
	b->rx_frames = b->rx_bytes = b->rx_datagrams = 0;
}

static void run_tx(struct netb *b, double secs)
{
	struct bench_clock clk;
	unsigned int slots = b->txq - 1, i;
	uint32_t lens[1024];
	uint16_t head, old;
	uint32_t len;

	if (slots > 1024)
		slots = 1024;
	resolve_peer(b);
	bench_start(&clk);
	for (i = 0; i < slots; i++) {
		lens[i] = build_data(b, i);
		post_tx(b, i, lens[i]);
	}
	vdriver_kick(&b->d, TXQ);
	b->tx_datagrams = 0;
	while (bench_now() - clk.t0 < secs) {
		bool any = false;

		old = b->d.q[TXQ].avail_idx;
		while (vdriver_take_used(&b->d, TXQ, &head, &len)) {
			if (head >= slots)
				continue; /* the control slot */
			b->tx_frames++;
			b->tx_bytes += lens[head];
			lens[head] = build_data(b, head);
			post_tx(b, head, lens[head]);
			any = true;
		}
		if (any)
			bench_kick(&b->d, TXQ, old);
		if (rx_reap(b))
			any = true;
		if (!any)
			bench_wait_irq(&b->d, RXQ, TXQ, 10);
	}
	bench_stop(&clk);
	bench_print(&clk, b->tx_frames, b->tx_bytes,
		    ", \"datagrams\": %llu, \"rx_frames\": %llu",
		    (unsigned long long)b->tx_datagrams,
		    (unsigned long long)b->rx_frames);
}

static void run_rx(struct netb *b, double secs)
{
	struct bench_clock clk;
	double t0 = bench_now();

	/* Answer ARP and wait for the first IPv4 frame. */
	while (!b->counting) {
		if (bench_now() - t0 > 15)
			bench_fail("net: nothing arrived within 15 s");
		bench_wait_irq(&b->d, RXQ, TXQ, 10);
		rx_reap(b);
		answer_arp(b);
	}
	bench_start(&clk);
	while (bench_now() - clk.t0 < secs) {
		if (!rx_reap(b))
			bench_wait_irq(&b->d, RXQ, TXQ, 10);
		answer_arp(b);
	}
	bench_stop(&clk);
	bench_print(&clk, b->rx_frames, b->rx_bytes, ", \"datagrams\": %llu",
		    (unsigned long long)b->rx_datagrams);
	/*
	 * The peer is still sending: tearing user-mode networking down now
	 * can crash inside slirp_pollfds_poll() on the device's thread
	 * (reported to the net work); the run is over, so leave.
	 */
	_exit(0);
}

/* --- tcptx: a TCP sender with segmentation offload (TSO) --- */

#define TCP_GUEST_PORT 40001
#define TCP_WSCALE 7

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

/* The TCP pseudo-header sum, folded, not inverted (CHECKSUM_PARTIAL). */
static uint16_t tcp_pseudo(const struct netb *b, uint32_t tcp_len)
{
	uint32_t s = 6 + tcp_len;
	const uint8_t *a = (const uint8_t *)&b->ip,
		      *c = (const uint8_t *)&b->peer_ip;

	s += get16(a) + get16(a + 2) + get16(c) + get16(c + 2);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/*
 * A TCP segment from the guest into @slot: @flags, @opt_len bytes of
 * options already at the options' place, @payload bytes of data (GSO in
 * mss-sized segments when longer than mss). Returns the frame length.
 */
static uint32_t build_tcp(struct netb *b, unsigned int slot, uint8_t flags,
			  uint32_t opt_len, uint32_t payload)
{
	uint8_t *h = tx_buf(b, slot), *f = h + HDR, *ip = f + 14, *t = ip + 20;
	struct virtio_net_hdr_v1 *vh = (void *)h;
	uint32_t tcp_len = 20 + opt_len + payload;

	memcpy(f, b->peer_mac, 6);
	memcpy(f + 6, b->mac, 6);
	put16(f + 12, ETH_IP);
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(20 + tcp_len));
	put16(ip + 4, b->ip_id++);
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = 6;
	put16(ip + 10, 0);
	memcpy(ip + 12, &b->ip, 4);
	memcpy(ip + 16, &b->peer_ip, 4);
	put16(ip + 10, ip_csum(ip));
	put16(t, b->guest_port);
	put16(t + 2, b->port);
	put32(t + 4, b->snd_nxt);
	put32(t + 8, b->rcv_nxt);
	t[12] = (uint8_t)(((20 + opt_len) / 4) << 4);
	t[13] = flags;
	put16(t + 14, 0xffff); /* << TCP_WSCALE: 8 MiB */
	put16(t + 16, tcp_pseudo(b, tcp_len));
	put16(t + 18, 0);
	memset(h, 0, HDR);
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->csum_start = 34;
	vh->csum_offset = 16;
	if (payload > b->mss) {
		vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		vh->hdr_len = (uint16_t)(54 + opt_len);
		vh->gso_size = (uint16_t)b->mss;
	}
	return 54 + opt_len + payload;
}

static void tcp_input(struct netb *b, const uint8_t *f, uint32_t len)
{
	const uint8_t *ip = f + 14, *t = ip + (ip[0] & 15) * 4;
	uint32_t ack, off;
	uint8_t flags;

	if (t + 20 > f + len || (!b->tcp_listen && get16(t) != b->port) ||
	    get16(t + 2) != b->guest_port)
		return;
	if (b->tcp_listen)
		b->port = get16(t);
	flags = t[13];
	ack = get32(t + 8);
	if (flags & 0x04) { /* RST */
		b->tcp_rst = true;
		return;
	}
	if (b->tcp_listen) {
		uint32_t seq = get32(t + 4);
		uint32_t dlen =
			get16(ip + 2) - (ip[0] & 15) * 4 - (t[12] >> 4) * 4;

		if ((flags & 0x12) == 0x02) { /* SYN */
			b->rcv_nxt = seq + 1;
			b->got_syn = true;
			return;
		}
		if (get16(ip + 2) < (ip[0] & 15) * 4 + (t[12] >> 4) * 4)
			return;
		if (dlen && seq == b->rcv_nxt) {
			b->rcv_nxt += dlen;
			b->tcp_rx_bytes += dlen;
			if (!b->counting) {
				b->counting = true;
				b->t_first = bench_now();
			}
			b->rx_frames++;
		}
		if (dlen)
			b->need_ack = true;
		return;
	}
	if ((flags & 0x12) == 0x12 && !b->syn_acked) { /* SYN-ACK */
		b->rcv_nxt = get32(t + 4) + 1;
		b->peer_wnd = get16(t + 14);
		for (off = 20; off + 2 <= (uint32_t)(t[12] >> 4) * 4;) {
			uint8_t kind = t[off], olen;

			if (kind == 0)
				break;
			if (kind == 1) {
				off++;
				continue;
			}
			olen = t[off + 1];
			if (olen < 2)
				break;
			if (kind == 2 && olen == 4 &&
			    get16(t + off + 2) < b->mss)
				b->mss = get16(t + off + 2);
			if (kind == 3 && olen == 3)
				b->peer_wscale =
					t[off + 2] > 14 ? 14 : t[off + 2];
			off += olen;
		}
		b->snd_una = ack;
		b->syn_acked = true;
		return;
	}
	if (!(flags & 0x10) || !b->syn_acked)
		return;
	if ((int32_t)(ack - b->snd_una) > 0 &&
	    (int32_t)(ack - b->snd_nxt) <= 0) {
		b->tcp_acked += ack - b->snd_una;
		b->snd_una = ack;
	}
	b->peer_wnd = (uint32_t)get16(t + 14) << b->peer_wscale;
}

/* Send a control segment from the last slot and wait until it is out. */
static void tcp_ctl(struct netb *b, uint8_t flags, bool syn)
{
	unsigned int slot = b->txq - 1;
	uint8_t *o = tx_buf(b, slot) + HDR + 54;
	uint16_t old = b->d.q[TXQ].avail_idx, head;
	uint32_t len, flen;

	if (syn) {
		o[0] = 2;
		o[1] = 4;
		put16(o + 2, 1460); /* MSS */
		o[4] = 1;
		o[5] = 3;
		o[6] = 3;
		o[7] = TCP_WSCALE;
	}
	flen = build_tcp(b, slot, flags, syn ? 8 : 0, 0);
	{
		struct vdriver_buf v = { b->tx_gpa + (uint64_t)slot * TX_ROOM,
					 HDR + flen };

		bench_post(&b->d, TXQ, slot, 1, &v, 1, 0);
	}
	bench_kick(&b->d, TXQ, old);
	do {
		if (bench_used(&b->d, TXQ, &head, &len, 5000) != 1)
			bench_fail("net: a TCP control segment was not sent");
	} while (head != slot);
}

static void run_tcptx(struct netb *b, double secs)
{
	struct bench_clock clk;
	unsigned int slots = b->txq - 1, i, inflight = 0;
	uint64_t acked0;
	uint32_t chunk;
	double t0, last_progress;
	uint16_t head, old;
	uint32_t len;
	static bool busy[1024];

	if (slots > 1024)
		slots = 1024;
	b->tcp = true;
	b->guest_port = TCP_GUEST_PORT;
	b->mss = 1460; /* the guest's MTU is 1500 */
	resolve_peer(b);
	b->snd_nxt = 0x10000000;
	tcp_ctl(b, 0x02, true); /* SYN */
	b->snd_nxt++;
	t0 = bench_now();
	while (!b->syn_acked) {
		if (b->tcp_rst)
			bench_fail("net: the peer refused the TCP connection");
		if (bench_now() - t0 > 5)
			bench_fail("net: no SYN-ACK within 5 s");
		bench_wait_irq(&b->d, RXQ, TXQ, 10);
		rx_reap(b);
		answer_arp(b);
	}
	tcp_ctl(b, 0x10, false); /* ACK */
	chunk = (65535 - 40) / b->mss * b->mss;
	acked0 = b->tcp_acked;
	bench_start(&clk);
	last_progress = clk.t0;
	while (bench_now() - clk.t0 < secs) {
		bool any = false;
		uint32_t prev_una = b->snd_una;

		old = b->d.q[TXQ].avail_idx;
		while (vdriver_take_used(&b->d, TXQ, &head, &len)) {
			if (head < slots && busy[head]) {
				busy[head] = false;
				inflight--;
			}
		}
		if (rx_reap(b))
			any = true;
		if (b->tcp_rst)
			bench_fail("net: the peer reset the TCP connection");
		for (i = 0; i < slots && inflight < slots; i++) {
			uint32_t flen;
			struct vdriver_buf v;

			if (busy[i])
				continue;
			if (b->snd_nxt - b->snd_una + chunk > b->peer_wnd)
				break;
			flen = build_tcp(b, i, 0x18, 0, chunk); /* PSH|ACK */
			v = (struct vdriver_buf){
				b->tx_gpa + (uint64_t)i * TX_ROOM, HDR + flen
			};
			bench_post(&b->d, TXQ, i, 1, &v, 1, 0);
			busy[i] = true;
			inflight++;
			b->snd_nxt += chunk;
			b->tx_frames++;
			any = true;
		}
		bench_kick(&b->d, TXQ, old);
		if (b->snd_una != prev_una)
			last_progress = bench_now();
		else if (bench_now() - last_progress > 1.0)
			bench_fail("net: TCP made no progress for 1 s");
		if (!any)
			bench_wait_irq(&b->d, RXQ, TXQ, 10);
	}
	bench_stop(&clk);
	bench_print(&clk, b->tx_frames, b->tcp_acked - acked0,
		    ", \"datagrams\": 0, \"mss\": %u, \"chunk\": %u", b->mss,
		    chunk);
	tcp_ctl(b, 0x14, false); /* RST|ACK: the sink sees the end */
}

static void run_tcprx(struct netb *b, double secs)
{
	struct bench_clock clk;
	unsigned int slots = b->txq - 1, next = 0;
	static bool busy[1024];
	uint16_t head, old;
	uint32_t len;
	double t0 = bench_now();
	uint64_t bytes0;

	if (slots > 1024)
		slots = 1024;
	b->tcp = b->tcp_listen = true;
	b->guest_port = b->port; /* PORT: where the peer connects */
	b->mss = 1460;
	while (!b->got_syn) {
		if (bench_now() - t0 > 15)
			bench_fail("net: no SYN within 15 s");
		bench_wait_irq(&b->d, RXQ, TXQ, 10);
		rx_reap(b);
		answer_arp(b);
	}
	/* The peer's MAC: the SYN came from it, and it asked for ours. */
	if (!b->have_peer)
		resolve_peer(b);
	b->tcp = b->tcp_listen = true;
	b->snd_nxt = 0x20000000;
	tcp_ctl(b, 0x12, true); /* SYN-ACK */
	b->snd_nxt++;
	while (!b->counting) {
		if (bench_now() - t0 > 15)
			bench_fail("net: no data within 15 s");
		bench_wait_irq(&b->d, RXQ, TXQ, 10);
		rx_reap(b);
		answer_arp(b);
	}
	bench_start(&clk);
	bytes0 = b->tcp_rx_bytes;
	b->rx_frames = 0;
	while (bench_now() - clk.t0 < secs) {
		bool any = rx_reap(b);

		while (vdriver_take_used(&b->d, TXQ, &head, &len))
			if (head < slots)
				busy[head] = false;
		if (b->tcp_rst)
			bench_fail("net: the peer reset the TCP connection");
		if (b->need_ack && !busy[next]) {
			struct vdriver_buf v;
			uint32_t flen = build_tcp(b, next, 0x10, 0, 0);

			old = b->d.q[TXQ].avail_idx;
			v = (struct vdriver_buf){
				b->tx_gpa + (uint64_t)next * TX_ROOM, HDR + flen
			};
			bench_post(&b->d, TXQ, next, 1, &v, 1, 0);
			bench_kick(&b->d, TXQ, old);
			busy[next] = true;
			next = (next + 1) % slots;
			b->need_ack = false;
			any = true;
		}
		if (!any)
			bench_wait_irq(&b->d, RXQ, TXQ, 10);
	}
	bench_stop(&clk);
	bench_print(&clk, b->rx_frames, b->tcp_rx_bytes - bytes0,
		    ", \"datagrams\": 0");
	tcp_ctl(b, 0x14, false); /* RST|ACK */
}

int bench_net(int argc, char **argv)
{
	static struct netb b;
	double secs;

	if (argc != 8)
		bench_fail(
			"usage: net CONF GUEST_IP PEER_IP PORT tx|rx PAYLOAD "
			"MTU SECONDS");
	b.ip = parse_ip(argv[1]);
	b.peer_ip = parse_ip(argv[2]);
	b.port = (uint16_t)strtoul(argv[3], NULL, 0);
	b.payload = (uint32_t)strtoul(argv[5], NULL, 0);
	b.mtu = (uint32_t)strtoul(argv[6], NULL, 0);
	secs = strtod(argv[7], NULL);
	if ((b.payload < 1 && strncmp(argv[4], "tcp", 3)) ||
	    b.payload > 65507 || b.mtu < 68 || b.mtu > 65535 || !(secs > 0))
		bench_fail("net: PAYLOAD 1..65507, MTU 68..65535, SECONDS > 0");
	setup(&b, argv[0]);
	if (!strcmp(argv[4], "tx"))
		run_tx(&b, secs);
	else if (!strcmp(argv[4], "tcptx"))
		run_tcptx(&b, secs);
	else if (!strcmp(argv[4], "tcprx"))
		run_tcprx(&b, secs);
	else
		run_rx(&b, secs);
	virtio_net_destroy(b.n);
	vdriver_exit(&b.d);
	return 0;
}

/* --- the host-side peers --- */

#define BATCH 64

static int udp_socket(const char *ip, uint16_t port, bool bind_it,
		      struct sockaddr_in *sa)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), sz = 8 << 20;

	if (s < 0)
		bench_fail("socket: %s", strerror(errno));
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = parse_ip(ip);
	setsockopt(s, SOL_SOCKET, bind_it ? SO_RCVBUF : SO_SNDBUF, &sz,
		   sizeof(sz));
	if (bind_it && bind(s, (struct sockaddr *)sa, sizeof(*sa)))
		bench_fail("bind %s:%u: %s", ip, port, strerror(errno));
	return s;
}

int bench_udpsink(int argc, char **argv)
{
	static uint8_t bufs[BATCH][65536];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in sa;
	uint64_t n = 0, bytes = 0;
	double secs, t0, first = 0, last = 0;
	int s, i, r;

	if (argc != 3)
		bench_fail("usage: udpsink BIND_IP PORT SECONDS");
	secs = strtod(argv[2], NULL);
	s = udp_socket(argv[0], (uint16_t)strtoul(argv[1], NULL, 0), true, &sa);
	for (i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		memset(&m[i], 0, sizeof(m[i]));
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	t0 = bench_now();
	while (bench_now() - t0 < secs) {
		struct pollfd p = { .fd = s, .events = POLLIN };

		/* Done once the sender has been quiet for half a second. */
		if (n && bench_now() - last > 0.5)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		r = recvmmsg(s, m, BATCH, MSG_DONTWAIT, NULL);
		if (r <= 0)
			continue;
		if (!n)
			first = bench_now();
		last = bench_now();
		for (i = 0; i < r; i++)
			bytes += m[i].msg_len;
		n += (uint64_t)r;
	}
	printf("{\"datagrams\": %llu, \"bytes\": %llu, \"seconds\": %.4f}\n",
	       (unsigned long long)n, (unsigned long long)bytes, last - first);
	close(s);
	return 0;
}

int bench_udpblast(int argc, char **argv)
{
	static uint8_t buf[65507];
	struct mmsghdr m[BATCH];
	struct iovec iov;
	struct sockaddr_in sa;
	uint64_t n = 0;
	double secs, t0;
	uint32_t payload;
	int s, i, r;

	if (argc != 4)
		bench_fail("usage: udpblast DST_IP PORT PAYLOAD SECONDS");
	payload = (uint32_t)strtoul(argv[2], NULL, 0);
	secs = strtod(argv[3], NULL);
	if (!payload || payload > sizeof(buf))
		bench_fail("udpblast: PAYLOAD 1..65507");
	s = udp_socket(argv[0], (uint16_t)strtoul(argv[1], NULL, 0), false,
		       &sa);
	iov = (struct iovec){ buf, payload };
	for (i = 0; i < BATCH; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].msg_hdr.msg_iov = &iov;
		m[i].msg_hdr.msg_iovlen = 1;
		m[i].msg_hdr.msg_name = &sa;
		m[i].msg_hdr.msg_namelen = sizeof(sa);
	}
	t0 = bench_now();
	while (bench_now() - t0 < secs) {
		r = sendmmsg(s, m, BATCH, 0);
		if (r > 0)
			n += (uint64_t)r;
		else if (errno != ENOBUFS && errno != EAGAIN &&
			 errno != ECONNREFUSED && errno != EINTR)
			bench_fail("udpblast: %s", strerror(errno));
	}
	printf("{\"datagrams\": %llu, \"seconds\": %.4f}\n",
	       (unsigned long long)n, bench_now() - t0);
	close(s);
	return 0;
}

int bench_tcpsink(int argc, char **argv)
{
	static uint8_t buf[1 << 20];
	struct sockaddr_in sa;
	uint64_t bytes = 0;
	double secs, t0;
	int s, c, one = 1;

	if (argc != 3)
		bench_fail("usage: tcpsink BIND_IP PORT SECONDS");
	secs = strtod(argv[2], NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)strtoul(argv[1], NULL, 0));
	sa.sin_addr.s_addr = parse_ip(argv[0]);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		bench_fail("socket: %s", strerror(errno));
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 4))
		bench_fail("tcpsink %s: %s", argv[0], strerror(errno));
	printf("ready\n");
	fflush(stdout);
	t0 = bench_now();
	{
		struct pollfd p = { .fd = s, .events = POLLIN };

		if (poll(&p, 1, (int)(secs * 1000)) <= 0)
			bench_fail("tcpsink: nobody connected");
	}
	c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		bench_fail("tcpsink: accept: %s", strerror(errno));
	while (bench_now() - t0 < secs) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 100) <= 0)
			continue;
		r = read(c, buf, sizeof(buf));
		if (r <= 0)
			break;
		bytes += (uint64_t)r;
	}
	printf("{\"bytes\": %llu, \"datagrams\": 0, \"seconds\": %.4f}\n",
	       (unsigned long long)bytes, bench_now() - t0);
	close(c);
	close(s);
	return 0;
}

int bench_tcpblast(int argc, char **argv)
{
	static uint8_t buf[65536];
	struct sockaddr_in sa;
	uint64_t bytes = 0;
	double secs, t0;
	int s;

	if (argc != 3)
		bench_fail("usage: tcpblast DST_IP PORT SECONDS");
	secs = strtod(argv[2], NULL);
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)strtoul(argv[1], NULL, 0));
	sa.sin_addr.s_addr = parse_ip(argv[0]);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)))
		bench_fail("tcpblast: connect: %s", strerror(errno));
	t0 = bench_now();
	while (bench_now() - t0 < secs) {
		ssize_t r = write(s, buf, sizeof(buf));

		if (r <= 0)
			break;
		bytes += (uint64_t)r;
	}
	printf("{\"bytes\": %llu, \"datagrams\": 0, \"seconds\": %.4f}\n",
	       (unsigned long long)bytes, bench_now() - t0);
	close(s);
	return 0;
}
