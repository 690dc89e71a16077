/*
 * libFuzzer target: everything vsock takes from outside. The input is fed
 * as (1) a host client's handshake in both conventions, a byte at a time
 * as the muxers read it; (2) guest packet headers through the one header
 * check; (3) the checked packets, mixed with host-side events taken from
 * the same bytes, into one connection's state machine, whose credit
 * invariants are checked after every step. A crash, sanitizer report or
 * abort() on a broken invariant is a bug. Build and run: make fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vsock/vsock_conn.h"
#include "vsock/vsock_proto.h"

#define CID 3

static void handshakes(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	uint32_t port, cid;
	size_t i;
	int r = 0;

	/* Firecracker: one byte at a time until a verdict. */
	for (i = 1; i <= size && i <= VSOCK_CONNECT_MAX + 1; i++) {
		r = vsock_proto_parse_connect(buf, i, &port);
		if (r)
			break;
	}
	if (r == 1 && (buf[i - 1] != '\n' || i > VSOCK_CONNECT_MAX + 1))
		abort();
	if (i > VSOCK_CONNECT_MAX + 1 && r == 0)
		abort(); /* it must give up by then */
	/* HyperKit: at most 18 bytes, complete only at 18. */
	for (i = 1; i <= size && i <= VSOCK_HYPERKIT_HDR_LEN; i++) {
		r = vsock_proto_parse_hyperkit(buf, i, &cid, &port);
		if (r)
			break;
	}
	if (r == 1 && i != VSOCK_HYPERKIT_HDR_LEN)
		abort();
}

static void check_invariants(const struct vsock_conn *c)
{
	if (vsock_conn_unforwarded(c) > c->buf_alloc)
		abort();
	if (vsock_conn_tx_credit(c) > c->peer_buf_alloc)
		abort();
	if (c->state == VSOCK_CONN_CLOSED &&
	    (c->pending & ~(unsigned int)VSOCK_SEND_RST))
		abort();
}

static void packets(const uint8_t *data, size_t size)
{
	struct vsock_conn c;
	struct vsock_pkt p, out;
	bool from_host = size && (data[0] & 1);

	if (from_host) {
		vsock_conn_init(&c, CID, 1U << 30, 80, 65536, NULL);
	} else {
		memset(&p, 0, sizeof(p));
		p.buf_alloc = size > 1 ? data[1] * 1024U : 0;
		vsock_conn_init(&c, CID, 80, 1000, 65536, &p);
	}
	/* Each step: one control byte, then a 44-byte header. */
	while (size > VSOCK_HDR_SIZE + 1 && c.state != VSOCK_CONN_CLOSED) {
		uint8_t ctl = data[0];
		uint32_t credit, n;
		int ret;

		data++;
		size--;
		/* What the chain holds after the header: from the control byte. */
		ret = vsock_proto_parse_hdr(data, (ctl & 0xf) * 4096ULL, CID,
					    &p);
		if (ret == 0) {
			if (p.len > (ctl & 0xf) * 4096U ||
			    p.len > VSOCK_MAX_PKT || p.src_cid != CID ||
			    p.dst_cid != VSOCK_HOST_CID)
				abort();
			vsock_conn_recv(&c, &p);
		}
		check_invariants(&c);
		data += VSOCK_HDR_SIZE;
		size -= VSOCK_HDR_SIZE;
		/* Host side events. */
		if (ctl & 0x10)
			vsock_conn_forwarded(&c, vsock_conn_unforwarded(&c) >>
							 (ctl >> 6));
		if (ctl & 0x20) {
			credit = vsock_conn_tx_credit(&c);
			n = credit > 4096 ? 4096 : credit;
			if (n)
				vsock_conn_build(&c, VIRTIO_VSOCK_OP_RW, n,
						 &out);
			else
				vsock_conn_stalled(&c);
		}
		if ((ctl & 0xc0) == 0xc0)
			vsock_conn_host_eof(&c);
		if (vsock_conn_should_shut_wr(&c))
			vsock_conn_shut_wr_done(&c);
		while (vsock_conn_next_op(&c) && c.state != VSOCK_CONN_CLOSED)
			vsock_conn_build(&c, vsock_conn_next_op(&c), 0, &out);
		check_invariants(&c);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	handshakes(data, size);
	packets(data, size);
	return 0;
}
