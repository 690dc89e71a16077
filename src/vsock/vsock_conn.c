/*
 * The connection state machine and credit accounting; see vsock_conn.h.
 * Credit counters are free-running u32 (§5.10.6.3): differences, never
 * absolute values, are compared.
 */
#include "vsock/vsock_conn.h"

#include <string.h>

void vsock_conn_init(struct vsock_conn *c, uint64_t guest_cid,
		     uint32_t host_port, uint32_t guest_port,
		     uint32_t buf_alloc, const struct vsock_pkt *req)
{
	memset(c, 0, sizeof(*c));
	c->guest_cid = guest_cid;
	c->host_port = host_port;
	c->guest_port = guest_port;
	c->buf_alloc = buf_alloc;
	if (req) {
		c->state = VSOCK_CONN_ESTABLISHED;
		c->pending = VSOCK_SEND_RESPONSE;
		c->peer_buf_alloc = req->buf_alloc;
		c->peer_fwd_cnt = req->fwd_cnt;
	} else {
		c->state = VSOCK_CONN_CONNECTING;
		c->pending = VSOCK_SEND_REQUEST;
	}
}

void vsock_conn_reset(struct vsock_conn *c)
{
	c->state = VSOCK_CONN_CLOSED;
	c->pending = VSOCK_SEND_RST;
}

uint32_t vsock_conn_unforwarded(const struct vsock_conn *c)
{
	return c->rx_cnt - c->fwd_cnt;
}

uint32_t vsock_conn_tx_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	if (c->state != VSOCK_CONN_ESTABLISHED ||
	    in_flight >= c->peer_buf_alloc)
		return 0;
	return c->peer_buf_alloc - in_flight;
}

bool vsock_conn_wants_host_data(const struct vsock_conn *c)
{
	return c->state == VSOCK_CONN_ESTABLISHED && !c->host_eof &&
	       !c->guest_shut_rcv;
}

/* Both directions ended: close with an RST. */
static void check_done(struct vsock_conn *c)
{
	bool to_guest_done = c->host_eof || c->guest_shut_rcv;
	bool to_host_done = c->guest_shut_send && !vsock_conn_unforwarded(c);

	if (c->state == VSOCK_CONN_ESTABLISHED && to_guest_done && to_host_done)
		vsock_conn_reset(c);
}

/* Take the guest's credit from any packet; false if it is impossible. */
static bool take_credit(struct vsock_conn *c, const struct vsock_pkt *p,
			unsigned int *act)
{
	uint32_t before = vsock_conn_tx_credit(c);

	/* The guest cannot have read more than we sent, nor un-read it. */
	if ((uint32_t)(c->tx_cnt - p->fwd_cnt) >
	    (uint32_t)(c->tx_cnt - c->peer_fwd_cnt))
		return false;
	c->peer_fwd_cnt = p->fwd_cnt;
	c->peer_buf_alloc = p->buf_alloc;
	if (vsock_conn_tx_credit(c) > before) {
		c->credit_requested = false;
		*act |= VSOCK_ACT_CREDIT;
	}
	return true;
}

unsigned int vsock_conn_recv(struct vsock_conn *c, const struct vsock_pkt *p)
{
	unsigned int act = 0;

	if (p->op == VIRTIO_VSOCK_OP_RST) {
		c->state = VSOCK_CONN_CLOSED;
		c->pending = 0;
		return VSOCK_ACT_CLOSE;
	}
	if (c->state == VSOCK_CONN_CLOSED)
		return 0;
	if (c->state == VSOCK_CONN_CONNECTING) {
		if (p->op != VIRTIO_VSOCK_OP_RESPONSE)
			goto bad;
		c->state = VSOCK_CONN_ESTABLISHED;
		act |= VSOCK_ACT_ESTABLISHED;
	} else if (p->op == VIRTIO_VSOCK_OP_REQUEST ||
		   p->op == VIRTIO_VSOCK_OP_RESPONSE) {
		goto bad;
	}
	if (!take_credit(c, p, &act))
		goto bad;

	switch (p->op) {
	case VIRTIO_VSOCK_OP_RW:
		if (c->guest_shut_send ||
		    p->len > c->buf_alloc - vsock_conn_unforwarded(c))
			goto bad;
		c->rx_cnt += p->len;
		if (p->len)
			act |= VSOCK_ACT_DATA;
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (p->flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
			c->guest_shut_rcv = true;
		if (p->flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
			c->guest_shut_send = true;
		check_done(c);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->pending |= VSOCK_SEND_CREDIT_UPDATE;
		break;
	default:
		break;
	}
	return act;
bad:
	vsock_conn_reset(c);
	return 0;
}

void vsock_conn_stalled(struct vsock_conn *c)
{
	if (c->state != VSOCK_CONN_ESTABLISHED || c->credit_requested)
		return;
	c->credit_requested = true;
	c->pending |= VSOCK_SEND_CREDIT_REQUEST;
}

void vsock_conn_forwarded(struct vsock_conn *c, uint32_t n)
{
	uint32_t seen_free;

	c->fwd_cnt += n;
	if (c->state != VSOCK_CONN_ESTABLISHED)
		return;
	/*
	 * Tell the guest about freed space once what it believes is free
	 * falls under half the buffer, and what we freed is worth a packet
	 * (an eighth) or is everything: a guest out of credit always hears.
	 */
	seen_free = c->buf_alloc - (c->rx_cnt - c->adv_fwd_cnt);
	if (c->fwd_cnt != c->adv_fwd_cnt && seen_free < c->buf_alloc / 2 &&
	    (c->fwd_cnt - c->adv_fwd_cnt >= c->buf_alloc / 8 ||
	     !vsock_conn_unforwarded(c)))
		c->pending |= VSOCK_SEND_CREDIT_UPDATE;
	check_done(c);
}

bool vsock_conn_should_shut_wr(const struct vsock_conn *c)
{
	return c->guest_shut_send && !c->host_wr_shut &&
	       !vsock_conn_unforwarded(c);
}

void vsock_conn_shut_wr_done(struct vsock_conn *c)
{
	c->host_wr_shut = true;
}

void vsock_conn_host_eof(struct vsock_conn *c)
{
	if (c->host_eof || c->state != VSOCK_CONN_ESTABLISHED)
		return;
	c->host_eof = true;
	if (!c->guest_shut_rcv)
		c->pending |= VSOCK_SEND_SHUTDOWN;
	check_done(c);
}

static const uint16_t send_ops[] = {
	VIRTIO_VSOCK_OP_REQUEST,       VIRTIO_VSOCK_OP_RESPONSE,
	VIRTIO_VSOCK_OP_CREDIT_UPDATE, VIRTIO_VSOCK_OP_CREDIT_REQUEST,
	VIRTIO_VSOCK_OP_SHUTDOWN,      VIRTIO_VSOCK_OP_RST,
};

uint16_t vsock_conn_next_op(const struct vsock_conn *c)
{
	unsigned int i;

	for (i = 0; i < sizeof(send_ops) / sizeof(send_ops[0]); i++)
		if (c->pending & (1U << i))
			return send_ops[i];
	return 0;
}

void vsock_conn_build(struct vsock_conn *c, uint16_t op, uint32_t len,
		      struct vsock_pkt *p)
{
	unsigned int i;

	memset(p, 0, sizeof(*p));
	p->src_cid = VSOCK_HOST_CID;
	p->dst_cid = c->guest_cid;
	p->src_port = c->host_port;
	p->dst_port = c->guest_port;
	p->type = VIRTIO_VSOCK_TYPE_STREAM;
	p->op = op;
	p->buf_alloc = c->buf_alloc;
	p->fwd_cnt = c->fwd_cnt;
	c->adv_fwd_cnt = c->fwd_cnt;
	/* Every packet carries our credit. */
	c->pending &= ~VSOCK_SEND_CREDIT_UPDATE;
	for (i = 0; i < sizeof(send_ops) / sizeof(send_ops[0]); i++)
		if (send_ops[i] == op)
			c->pending &= ~(1U << i);
	if (op == VIRTIO_VSOCK_OP_SHUTDOWN)
		p->flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	if (op == VIRTIO_VSOCK_OP_RW) {
		p->len = len;
		c->tx_cnt += len;
	}
}
