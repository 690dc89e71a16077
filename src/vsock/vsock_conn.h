/*
 * One vsock stream connection between a guest port and a host Unix socket,
 * as a state machine without I/O (virtio 1.2 §5.10.6): the device feeds it
 * the guest's packets and what happened on the host socket, and reads back
 * which packets to send the guest (the `pending` bits, sent in the order
 * of the bits) and how much it may send.
 *
 * Credit (§5.10.6.3), both ways, in wrapping u32 arithmetic:
 *  - guest → host: we advertise buf_alloc; rx_cnt - fwd_cnt is what the
 *    device holds for the host socket and never exceeds buf_alloc: a guest
 *    that sends more broke the protocol and gets an RST.
 *  - host → guest: we send at most peer_buf_alloc - (tx_cnt - peer_fwd_cnt).
 *
 * Shutdown: each direction ends on its own (host EOF → SHUTDOWN(SEND) to
 * the guest; guest SHUTDOWN(SEND) → shutdown(SHUT_WR) on the host socket
 * once the data before it is written). When both have ended the connection
 * closes with an RST to the guest. A guest RST closes it at once.
 */
#ifndef KHYVE_VSOCK_VSOCK_CONN_H
#define KHYVE_VSOCK_VSOCK_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "vsock/vsock_proto.h"

enum vsock_conn_state {
	VSOCK_CONN_CONNECTING, /* host → guest: REQUEST sent, no answer yet */
	VSOCK_CONN_ESTABLISHED,
	VSOCK_CONN_CLOSED, /* send what is pending (an RST), then free */
};

/* Packets owed to the guest, sent lowest bit first. */
#define VSOCK_SEND_REQUEST (1U << 0)
#define VSOCK_SEND_RESPONSE (1U << 1)
#define VSOCK_SEND_CREDIT_UPDATE (1U << 2)
#define VSOCK_SEND_CREDIT_REQUEST (1U << 3)
#define VSOCK_SEND_SHUTDOWN (1U << 4)
#define VSOCK_SEND_RST (1U << 5)

/* What vsock_conn_recv() asks of the device. */
#define VSOCK_ACT_DATA (1U << 0) /* forward the packet's payload */
#define VSOCK_ACT_ESTABLISHED (1U << 1) /* the guest accepted (RESPONSE) */
#define VSOCK_ACT_CREDIT (1U << 2) /* more credit: try sending again */
#define VSOCK_ACT_CLOSE (1U << 3) /* guest RST: close now, send nothing */

struct vsock_conn {
	uint64_t guest_cid;
	uint32_t host_port, guest_port;
	enum vsock_conn_state state;
	unsigned int pending; /* VSOCK_SEND_* */
	/* guest → host */
	uint32_t buf_alloc; /* what we advertise */
	uint32_t rx_cnt; /* payload bytes taken from the guest */
	uint32_t fwd_cnt; /* of those, written to the host socket */
	uint32_t adv_fwd_cnt; /* the fwd_cnt the guest last heard */
	/* host → guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt; /* payload bytes sent to the guest */
	bool credit_requested;
	/* shutdown */
	bool guest_shut_send; /* the guest sends no more */
	bool guest_shut_rcv; /* the guest reads no more */
	bool host_eof; /* the host socket gave EOF */
	bool host_wr_shut; /* shutdown(SHUT_WR) done on the host socket */
};

/*
 * A new connection. @from_host: a host client connecting to the guest
 * (CONNECTING, REQUEST pending); otherwise the guest's REQUEST in @req was
 * accepted (ESTABLISHED, RESPONSE pending).
 */
void vsock_conn_init(struct vsock_conn *c, uint64_t guest_cid,
		     uint32_t host_port, uint32_t guest_port,
		     uint32_t buf_alloc, const struct vsock_pkt *req);
/*
 * A valid guest packet (vsock_proto_parse_hdr) for this connection:
 * VSOCK_ACT_* bits. A packet that breaks the protocol here (data beyond
 * the credit or after SHUTDOWN, a REQUEST on an open connection, a
 * fwd_cnt that goes backwards, data before RESPONSE) resets the
 * connection: CLOSED with an RST pending.
 */
unsigned int vsock_conn_recv(struct vsock_conn *c, const struct vsock_pkt *p);
/* Payload bytes the guest has room for now. */
uint32_t vsock_conn_tx_credit(const struct vsock_conn *c);
/*
 * Whether the connection wants to read the host socket: established,
 * neither side has ended the host → guest direction.
 */
bool vsock_conn_wants_host_data(const struct vsock_conn *c);
/* No credit left with data to send: ask the guest once (CREDIT_REQUEST). */
void vsock_conn_stalled(struct vsock_conn *c);
/* @n bytes held for the host socket were written to it. */
void vsock_conn_forwarded(struct vsock_conn *c, uint32_t n);
/* Bytes taken from the guest and not yet written to the host socket. */
uint32_t vsock_conn_unforwarded(const struct vsock_conn *c);
/* Whether to shutdown(SHUT_WR) the host socket now (guest SHUTDOWN(SEND), all written). */
bool vsock_conn_should_shut_wr(const struct vsock_conn *c);
/* shutdown(SHUT_WR) was done. */
void vsock_conn_shut_wr_done(struct vsock_conn *c);
/* The host socket gave EOF: SHUTDOWN(SEND) to the guest. */
void vsock_conn_host_eof(struct vsock_conn *c);
/* Host socket failure or protocol error: CLOSED with an RST pending. */
void vsock_conn_reset(struct vsock_conn *c);
/*
 * Fill @p for a packet of @op to the guest, carrying our credit (the
 * guest now knows fwd_cnt) and clearing the matching pending bit. @len is
 * the payload of an RW packet (counted as sent).
 */
void vsock_conn_build(struct vsock_conn *c, uint16_t op, uint32_t len,
		      struct vsock_pkt *p);
/* Lowest pending op to send next (VIRTIO_VSOCK_OP_*), or 0 for none. */
uint16_t vsock_conn_next_op(const struct vsock_conn *c);

#endif
