/*
 * Tier 1 for vsock: the connection state machine (credit both ways,
 * shutdown in each order, RST, protocol violations), the guest header
 * checks, the two host handshake parsers and the -s conf parser.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vsock/vsock_conf.h"
#include "vsock/vsock_conn.h"
#include "vsock/vsock_proto.h"

#define CID 42
#define BUF 4096

static struct vsock_pkt pkt(uint16_t op, uint32_t len, uint32_t buf_alloc,
			    uint32_t fwd_cnt)
{
	struct vsock_pkt p = {
		.src_cid = CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = 5000,
		.dst_port = 1024,
		.len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = buf_alloc,
		.fwd_cnt = fwd_cnt,
	};
	return p;
}

/* A guest → host connection, its RESPONSE sent. */
static void open_from_guest(struct vsock_conn *c, uint32_t peer_buf)
{
	struct vsock_pkt req = pkt(VIRTIO_VSOCK_OP_REQUEST, 0, peer_buf, 0);
	struct vsock_pkt out;

	vsock_conn_init(c, CID, 1024, 5000, BUF, &req);
	assert_int_equal(c->state, VSOCK_CONN_ESTABLISHED);
	assert_int_equal(vsock_conn_next_op(c), VIRTIO_VSOCK_OP_RESPONSE);
	vsock_conn_build(c, VIRTIO_VSOCK_OP_RESPONSE, 0, &out);
	assert_int_equal(out.src_cid, VSOCK_HOST_CID);
	assert_int_equal(out.dst_cid, CID);
	assert_int_equal(out.src_port, 1024);
	assert_int_equal(out.dst_port, 5000);
	assert_int_equal(out.buf_alloc, BUF);
	assert_int_equal(vsock_conn_next_op(c), 0);
}

static void test_host_connect_response(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt out, p;

	(void)state;
	vsock_conn_init(&c, CID, 1U << 30, 80, BUF, NULL);
	assert_int_equal(c.state, VSOCK_CONN_CONNECTING);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_REQUEST);
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_REQUEST, 0, &out);
	assert_int_equal(out.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(out.dst_port, 80);
	/* No credit before the guest answers. */
	assert_int_equal(vsock_conn_tx_credit(&c), 0);
	assert_false(vsock_conn_wants_host_data(&c));
	p = pkt(VIRTIO_VSOCK_OP_RESPONSE, 0, 65536, 0);
	assert_int_equal(vsock_conn_recv(&c, &p),
			 VSOCK_ACT_ESTABLISHED | VSOCK_ACT_CREDIT);
	assert_int_equal(vsock_conn_tx_credit(&c), 65536);
	assert_true(vsock_conn_wants_host_data(&c));
}

static void test_host_connect_refused(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt p = pkt(VIRTIO_VSOCK_OP_RST, 0, 0, 0);

	(void)state;
	vsock_conn_init(&c, CID, 1U << 30, 80, BUF, NULL);
	assert_int_equal(vsock_conn_recv(&c, &p), VSOCK_ACT_CLOSE);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
	assert_int_equal(c.pending, 0); /* no RST answers an RST */
}

static void test_data_before_response_resets(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt p = pkt(VIRTIO_VSOCK_OP_RW, 10, BUF, 0);

	(void)state;
	vsock_conn_init(&c, CID, 1U << 30, 80, BUF, NULL);
	assert_int_equal(vsock_conn_recv(&c, &p), 0);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_RST);
}

static void test_tx_credit_math(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt out, p;

	(void)state;
	open_from_guest(&c, 1000);
	assert_int_equal(vsock_conn_tx_credit(&c), 1000);
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_RW, 600, &out);
	assert_int_equal(out.len, 600);
	assert_int_equal(vsock_conn_tx_credit(&c), 400);
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_RW, 400, &out);
	assert_int_equal(vsock_conn_tx_credit(&c), 0);
	/* Out of credit: one CREDIT_REQUEST, not one per try. */
	vsock_conn_stalled(&c);
	assert_int_equal(vsock_conn_next_op(&c),
			 VIRTIO_VSOCK_OP_CREDIT_REQUEST);
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, &out);
	vsock_conn_stalled(&c);
	assert_int_equal(vsock_conn_next_op(&c), 0);
	/* The guest read 700 bytes. */
	p = pkt(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 1000, 700);
	assert_int_equal(vsock_conn_recv(&c, &p), VSOCK_ACT_CREDIT);
	assert_int_equal(vsock_conn_tx_credit(&c), 700);
	/* A guest that shrinks its buffer below what is in flight: no credit. */
	p = pkt(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 200, 700);
	assert_int_equal(vsock_conn_recv(&c, &p), 0);
	assert_int_equal(vsock_conn_tx_credit(&c), 0);
	/* fwd_cnt going backwards is a lie: RST. */
	p = pkt(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 1000, 600);
	vsock_conn_recv(&c, &p);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
}

static void test_tx_credit_fwd_beyond_sent_resets(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt out, p;

	(void)state;
	open_from_guest(&c, 1000);
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_RW, 100, &out);
	/* The guest claims to have read more than we sent. */
	p = pkt(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 1000, 101);
	vsock_conn_recv(&c, &p);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
}

static void test_tx_credit_wraps(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt out, p;

	(void)state;
	open_from_guest(&c, 1000);
	/* Counters near 2^32 keep working across the wrap. */
	c.tx_cnt = c.peer_fwd_cnt = 0xFFFFFF00U;
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_RW, 0x180, &out);
	assert_int_equal(c.tx_cnt, 0x80);
	assert_int_equal(vsock_conn_tx_credit(&c), 1000 - 0x180);
	p = pkt(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 1000, 0x40);
	assert_int_equal(vsock_conn_recv(&c, &p), VSOCK_ACT_CREDIT);
	assert_int_equal(vsock_conn_tx_credit(&c), 1000 - 0x40);
}

static void test_rx_credit_and_updates(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt out, p;

	(void)state;
	open_from_guest(&c, 1000);
	/* The guest may fill our whole buffer... */
	p = pkt(VIRTIO_VSOCK_OP_RW, BUF, 1000, 0);
	assert_int_equal(vsock_conn_recv(&c, &p), VSOCK_ACT_DATA);
	assert_int_equal(vsock_conn_unforwarded(&c), BUF);
	/* ...and no more. */
	c.pending = 0;
	/* Forwarding a little is not worth a packet yet. */
	vsock_conn_forwarded(&c, 100);
	assert_int_equal(c.pending & VSOCK_SEND_CREDIT_UPDATE, 0);
	/* An eighth of the buffer is. */
	vsock_conn_forwarded(&c, BUF / 8);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, &out);
	assert_int_equal(out.fwd_cnt, 100 + BUF / 8);
	assert_int_equal(vsock_conn_next_op(&c), 0);
	/* Everything written: the guest always hears (it may be waiting). */
	vsock_conn_forwarded(&c, BUF - 100 - BUF / 8);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	/* Any packet to the guest carries the credit. */
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_RW, 1, &out);
	assert_int_equal(out.fwd_cnt, BUF);
	assert_int_equal(vsock_conn_next_op(&c), 0);
}

static void test_rx_beyond_credit_resets(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt p;

	(void)state;
	open_from_guest(&c, 1000);
	p = pkt(VIRTIO_VSOCK_OP_RW, BUF - 10, 1000, 0);
	assert_int_equal(vsock_conn_recv(&c, &p), VSOCK_ACT_DATA);
	p = pkt(VIRTIO_VSOCK_OP_RW, 11, 1000, 0);
	assert_int_equal(vsock_conn_recv(&c, &p), 0);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_RST);
}

static void test_no_update_while_guest_sees_room(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt p;

	(void)state;
	open_from_guest(&c, 1000);
	/* Data that the host socket takes at once, a quarter of the buffer. */
	p = pkt(VIRTIO_VSOCK_OP_RW, BUF / 4, 1000, 0);
	vsock_conn_recv(&c, &p);
	vsock_conn_forwarded(&c, BUF / 4);
	assert_int_equal(c.pending, 0);
	/* Past half the buffer the guest hears. */
	p = pkt(VIRTIO_VSOCK_OP_RW, BUF / 4 + 1, 1000, 0);
	vsock_conn_recv(&c, &p);
	vsock_conn_forwarded(&c, BUF / 4 + 1);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_CREDIT_UPDATE);
}

static void test_credit_request_answered(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt p = pkt(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 1000, 0);

	(void)state;
	open_from_guest(&c, 1000);
	assert_int_equal(vsock_conn_recv(&c, &p), 0);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_CREDIT_UPDATE);
}

static void test_guest_close_first(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt p;

	(void)state;
	open_from_guest(&c, 1000);
	p = pkt(VIRTIO_VSOCK_OP_RW, 100, 1000, 0);
	vsock_conn_recv(&c, &p);
	/* SHUTDOWN both ways with data still held: wait for it. */
	p = pkt(VIRTIO_VSOCK_OP_SHUTDOWN, 0, 1000, 0);
	p.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	vsock_conn_recv(&c, &p);
	assert_int_equal(c.state, VSOCK_CONN_ESTABLISHED);
	assert_false(vsock_conn_wants_host_data(&c));
	assert_false(vsock_conn_should_shut_wr(&c));
	/* Data after SHUTDOWN(SEND) breaks the protocol. */
	{
		struct vsock_conn d = c;
		struct vsock_pkt rw = pkt(VIRTIO_VSOCK_OP_RW, 1, 1000, 0);

		vsock_conn_recv(&d, &rw);
		assert_int_equal(d.state, VSOCK_CONN_CLOSED);
	}
	/* Once written, the connection closes with an RST. */
	vsock_conn_forwarded(&c, 100);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
	assert_int_equal(c.pending, VSOCK_SEND_RST);
}

static void test_half_close_guest_send(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt out, p;

	(void)state;
	open_from_guest(&c, 1000);
	p = pkt(VIRTIO_VSOCK_OP_SHUTDOWN, 0, 1000, 0);
	p.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	vsock_conn_recv(&c, &p);
	/* The guest still reads: host data keeps flowing. */
	assert_true(vsock_conn_should_shut_wr(&c));
	vsock_conn_shut_wr_done(&c);
	assert_false(vsock_conn_should_shut_wr(&c));
	assert_true(vsock_conn_wants_host_data(&c));
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_RW, 10, &out);
	/* Host EOF ends the other direction: close. */
	vsock_conn_host_eof(&c);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_RST);
}

static void test_host_eof_first(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt out, p;

	(void)state;
	open_from_guest(&c, 1000);
	vsock_conn_host_eof(&c);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_SHUTDOWN);
	vsock_conn_build(&c, VIRTIO_VSOCK_OP_SHUTDOWN, 0, &out);
	assert_int_equal(out.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	assert_false(vsock_conn_wants_host_data(&c));
	/* The guest may still send. */
	p = pkt(VIRTIO_VSOCK_OP_RW, 50, 1000, 0);
	assert_int_equal(vsock_conn_recv(&c, &p), VSOCK_ACT_DATA);
	vsock_conn_forwarded(&c, 50);
	assert_int_equal(c.state, VSOCK_CONN_ESTABLISHED);
	/* Then closes: RST. */
	p = pkt(VIRTIO_VSOCK_OP_SHUTDOWN, 0, 1000, 0);
	p.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	vsock_conn_recv(&c, &p);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_RST);
}

static void test_guest_rst_and_request_on_open(void **state)
{
	struct vsock_conn c;
	struct vsock_pkt p;

	(void)state;
	open_from_guest(&c, 1000);
	p = pkt(VIRTIO_VSOCK_OP_REQUEST, 0, 1000, 0);
	vsock_conn_recv(&c, &p);
	assert_int_equal(c.state, VSOCK_CONN_CLOSED);
	assert_int_equal(vsock_conn_next_op(&c), VIRTIO_VSOCK_OP_RST);

	open_from_guest(&c, 1000);
	p = pkt(VIRTIO_VSOCK_OP_RST, 0, 0, 0);
	assert_int_equal(vsock_conn_recv(&c, &p), VSOCK_ACT_CLOSE);
	assert_int_equal(c.pending, 0);
	/* Anything after is ignored. */
	p = pkt(VIRTIO_VSOCK_OP_RW, 1, 1000, 0);
	assert_int_equal(vsock_conn_recv(&c, &p), 0);
}

/* -- headers -- */

static void hdr_of(const struct vsock_pkt *p, uint8_t *buf)
{
	vsock_proto_build_hdr(p, buf);
}

static void test_hdr_roundtrip_le(void **state)
{
	struct vsock_pkt p = pkt(VIRTIO_VSOCK_OP_RW, 3, 0x01020304, 0x0a0b0c0d);
	struct vsock_pkt q;
	uint8_t buf[VSOCK_HDR_SIZE];

	(void)state;
	assert_int_equal(VSOCK_HDR_SIZE, 44);
	hdr_of(&p, buf);
	assert_int_equal(buf[0], CID); /* src_cid, le64 */
	assert_int_equal(buf[8], VSOCK_HOST_CID);
	assert_int_equal(buf[36], 0x04); /* buf_alloc, le32 */
	assert_int_equal(vsock_proto_parse_hdr(buf, 3, CID, &q), 0);
	assert_int_equal(q.src_cid, p.src_cid);
	assert_int_equal(q.dst_cid, p.dst_cid);
	assert_int_equal(q.src_port, p.src_port);
	assert_int_equal(q.dst_port, p.dst_port);
	assert_int_equal(q.len, p.len);
	assert_int_equal(q.type, p.type);
	assert_int_equal(q.op, p.op);
	assert_int_equal(q.flags, p.flags);
	assert_int_equal(q.buf_alloc, p.buf_alloc);
	assert_int_equal(q.fwd_cnt, p.fwd_cnt);
}

static void test_hdr_checks(void **state)
{
	struct vsock_pkt p, q;
	uint8_t buf[VSOCK_HDR_SIZE];

	(void)state;
#define BAD(field, value, avail)                                             \
	do {                                                                 \
		p = pkt(VIRTIO_VSOCK_OP_RW, 16, 0, 0);                       \
		p.field = value;                                             \
		hdr_of(&p, buf);                                             \
		assert_int_equal(vsock_proto_parse_hdr(buf, avail, CID, &q), \
				 -EPROTO);                                   \
		assert_int_equal(q.src_port, 5000); /* still usable */       \
	} while (0)
	BAD(src_cid, CID + 1, 16);
	BAD(src_cid, VSOCK_HOST_CID, 16);
	BAD(dst_cid, CID, 16);
	BAD(dst_cid, 1ULL << 32 | VSOCK_HOST_CID, 16);
	BAD(type, VIRTIO_VSOCK_TYPE_SEQPACKET, 16);
	BAD(op, 0, 16);
	BAD(op, 8, 16);
	BAD(len, 17, 16); /* beyond the chain */
	BAD(len, VSOCK_MAX_PKT + 1, 1 << 20);
	BAD(op, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 16); /* control with payload */
#undef BAD
	p = pkt(VIRTIO_VSOCK_OP_SHUTDOWN, 0, 0, 0);
	p.flags = 4;
	hdr_of(&p, buf);
	assert_int_equal(vsock_proto_parse_hdr(buf, 0, CID, &q), -EPROTO);
	p.flags = 3;
	hdr_of(&p, buf);
	assert_int_equal(vsock_proto_parse_hdr(buf, 0, CID, &q), 0);
	/* A payload shorter than the chain is fine. */
	p = pkt(VIRTIO_VSOCK_OP_RW, 16, 0, 0);
	hdr_of(&p, buf);
	assert_int_equal(vsock_proto_parse_hdr(buf, 4096, CID, &q), 0);
}

/* -- handshakes -- */

static int connect_line(const char *s, uint32_t *port)
{
	return vsock_proto_parse_connect(s, strlen(s), port);
}

static void test_connect_line(void **state)
{
	uint32_t port = 0;

	(void)state;
	assert_int_equal(connect_line("CONNECT 52\n", &port), 1);
	assert_int_equal(port, 52);
	assert_int_equal(connect_line("connect 1024\n", &port), 1);
	assert_int_equal(port, 1024);
	assert_int_equal(connect_line("CoNnEcT 4294967295\n", &port), 1);
	assert_int_equal(port, 4294967295U);
	assert_int_equal(connect_line("CONNECT 7\r\n", &port), 1);
	assert_int_equal(port, 7);
	assert_int_equal(connect_line("CONNECT   8  \n", &port), 1);
	assert_int_equal(port, 8);
	/* Not there yet. */
	assert_int_equal(connect_line("", &port), 0);
	assert_int_equal(connect_line("CONN", &port), 0);
	assert_int_equal(connect_line("CONNECT 12", &port), 0);
	/* Garbage. */
	assert_int_equal(connect_line("GET / HTTP/1.1\n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECT\n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECT \n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECTX 5\n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECT5\n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECT -5\n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECT +5\n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECT 0x10\n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECT 5 6\n", &port), -EINVAL);
	assert_int_equal(connect_line("CONNECT 4294967296\n", &port), -EINVAL);
	assert_int_equal(connect_line("\n", &port), -EINVAL);
	/* Bytes after the newline: the reader never hands us those. */
	assert_int_equal(connect_line("CONNECT 5\nxx", &port), -EINVAL);
	/* Too long: 32 bytes before the newline is the limit. */
	{
		char line[64];

		snprintf(line, sizeof(line), "CONNECT %24s\n", "1");
		assert_int_equal(strlen(line), 33);
		assert_int_equal(connect_line(line, &port), 1);
		assert_int_equal(port, 1);
		snprintf(line, sizeof(line), "CONNECT %25s\n", "1");
		assert_int_equal(connect_line(line, &port), -EINVAL);
		/* 32 bytes and no newline yet: read on; 33: give up. */
		snprintf(line, sizeof(line), "CONNECT %024d", 1);
		assert_int_equal(strlen(line), 32);
		assert_int_equal(connect_line(line, &port), 0);
		snprintf(line, sizeof(line), "CONNECT %025d", 1);
		assert_int_equal(connect_line(line, &port), -EINVAL);
	}
	/* A NUL inside is garbage, not a terminator. */
	assert_int_equal(vsock_proto_parse_connect("CONNECT 5\0\n", 11, &port),
			 -EINVAL);
}

static void test_hyperkit_header(void **state)
{
	uint32_t cid = 0, port = 0;

	(void)state;
	assert_int_equal(vsock_proto_parse_hyperkit("00000003.000005f4\n", 18,
						    &cid, &port),
			 1);
	assert_int_equal(cid, 3);
	assert_int_equal(port, 1524);
	assert_int_equal(vsock_proto_parse_hyperkit("FFFFFFFE.ABCDEF01\n", 18,
						    &cid, &port),
			 1);
	assert_int_equal(cid, 0xFFFFFFFEU);
	assert_int_equal(port, 0xABCDEF01U);
	/* Partial but fine so far. */
	assert_int_equal(
		vsock_proto_parse_hyperkit("00000003.0", 10, &cid, &port), 0);
	assert_int_equal(vsock_proto_parse_hyperkit("", 0, &cid, &port), 0);
	/* A bad byte fails at once. */
	assert_int_equal(vsock_proto_parse_hyperkit("0000g", 5, &cid, &port),
			 -EINVAL);
	assert_int_equal(
		vsock_proto_parse_hyperkit("000000030", 9, &cid, &port),
		-EINVAL);
	assert_int_equal(vsock_proto_parse_hyperkit("00000003.000005f4X", 18,
						    &cid, &port),
			 -EINVAL);
	assert_int_equal(vsock_proto_parse_hyperkit("00000003.000005f4\nx", 19,
						    &cid, &port),
			 -EINVAL);
	assert_int_equal(vsock_proto_parse_hyperkit("CONNECT 1234\n     ", 18,
						    &cid, &port),
			 -EINVAL);
}

/* -- conf -- */

static int conf(struct vsock_conf *c, enum vsock_kind kind, const char *s,
		char *err)
{
	err[0] = '\0';
	return vsock_conf_parse(c, kind, s, err, 256);
}

static void test_conf_hyperkit(void **state)
{
	struct vsock_conf c;
	char err[256];

	(void)state;
	assert_int_equal(
		conf(&c, VSOCK_HYPERKIT, "guest_cid=3,path=/tmp/vm", err), 0);
	assert_int_equal(c.guest_cid, 3);
	assert_string_equal(c.path, "/tmp/vm");
	assert_int_equal(c.nr_forwards, 0);
	assert_int_equal(conf(&c, VSOCK_HYPERKIT,
			      "path=/d,guest_cid=4294967294,"
			      "guest_forwards=2376;1525",
			      err),
			 0);
	assert_int_equal(c.guest_cid, 0xFFFFFFFEU);
	assert_int_equal(c.nr_forwards, 2);
	assert_int_equal(c.forwards[0], 2376);
	assert_int_equal(c.forwards[1], 1525);
}

static void test_conf_firecracker(void **state)
{
	struct vsock_conf c;
	char err[256];

	(void)state;
	assert_int_equal(conf(&c, VSOCK_FIRECRACKER,
			      "guest_cid=52,uds_path=/run/v.sock", err),
			 0);
	assert_int_equal(c.guest_cid, 52);
	assert_string_equal(c.path, "/run/v.sock");
	/* Not HyperKit's options. */
	assert_int_equal(
		conf(&c, VSOCK_FIRECRACKER, "guest_cid=52,path=/x", err),
		-EINVAL);
	assert_non_null(strstr(err, "unknown option 'path'"));
	assert_int_equal(conf(&c, VSOCK_FIRECRACKER,
			      "guest_cid=52,uds_path=/x,"
			      "guest_forwards=1",
			      err),
			 -EINVAL);
}

static void test_conf_errors(void **state)
{
	char longp[200], s[300], err[256];
	struct vsock_conf c;

	(void)state;
#define ERR(kind, str, needle)                                       \
	do {                                                         \
		assert_int_equal(conf(&c, kind, str, err), -EINVAL); \
		assert_non_null(strstr(err, needle));                \
		assert_null(strchr(err, '\n'));                      \
	} while (0)
	ERR(VSOCK_HYPERKIT, NULL, "missing guest_cid");
	ERR(VSOCK_HYPERKIT, "", "missing guest_cid");
	ERR(VSOCK_HYPERKIT, "guest_cid=3", "missing path");
	ERR(VSOCK_FIRECRACKER, "guest_cid=3", "missing uds_path");
	ERR(VSOCK_HYPERKIT, "path=/x", "missing guest_cid");
	ERR(VSOCK_HYPERKIT, "guest_cid=2,path=/x", "guest_cid=2");
	ERR(VSOCK_HYPERKIT, "guest_cid=0,path=/x", "from 3");
	ERR(VSOCK_HYPERKIT, "guest_cid=4294967295,path=/x", "guest_cid");
	ERR(VSOCK_HYPERKIT, "guest_cid=99999999999,path=/x", "guest_cid");
	ERR(VSOCK_HYPERKIT, "guest_cid=3x,path=/x", "guest_cid");
	ERR(VSOCK_HYPERKIT, "guest_cid=,path=/x", "guest_cid");
	ERR(VSOCK_HYPERKIT, "guest_cid=-3,path=/x", "guest_cid");
	ERR(VSOCK_HYPERKIT, "guest_cid=3,path=", "empty path");
	ERR(VSOCK_HYPERKIT, "guest_cid=3,path=/x,bogus=1",
	    "unknown option 'bogus'");
	ERR(VSOCK_HYPERKIT, "guest_cid=3,path=/x,ro", "'ro'");
	ERR(VSOCK_HYPERKIT, "guest_cid=3,guest_cid=4,path=/x", "twice");
	ERR(VSOCK_HYPERKIT, "guest_cid=3,path=/x,guest_forwards=", "no port");
	ERR(VSOCK_HYPERKIT, "guest_cid=3,path=/x,guest_forwards=1;", "empty");
	ERR(VSOCK_HYPERKIT, "guest_cid=3,path=/x,guest_forwards=a", "'a'");
	ERR(VSOCK_HYPERKIT, "guest_cid=3,path=/x,guest_forwards=1;;2", "''");
	ERR(VSOCK_HYPERKIT,
	    "guest_cid=3,path=/x,"
	    "guest_forwards=1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17",
	    "at most");
	/* The longest name built on DIR must fit sun_path. */
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[89] = '\0'; /* 89 + 18 = 107: fits with the NUL */
	snprintf(s, sizeof(s), "guest_cid=3,path=%s", longp);
	assert_int_equal(conf(&c, VSOCK_HYPERKIT, s, err), 0);
	longp[89] = 'a';
	longp[90] = '\0';
	snprintf(s, sizeof(s), "guest_cid=3,path=%s", longp);
	ERR(VSOCK_HYPERKIT, s, "too long for a Unix socket");
	longp[90] = 'a';
	longp[96] = '\0'; /* 96 + "_4294967295" = 107 */
	snprintf(s, sizeof(s), "guest_cid=3,uds_path=%s", longp);
	assert_int_equal(conf(&c, VSOCK_FIRECRACKER, s, err), 0);
	longp[96] = 'a';
	longp[97] = '\0';
	snprintf(s, sizeof(s), "guest_cid=3,uds_path=%s", longp);
	ERR(VSOCK_FIRECRACKER, s, "too long");
#undef ERR
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_connect_response),
		cmocka_unit_test(test_host_connect_refused),
		cmocka_unit_test(test_data_before_response_resets),
		cmocka_unit_test(test_tx_credit_math),
		cmocka_unit_test(test_tx_credit_fwd_beyond_sent_resets),
		cmocka_unit_test(test_tx_credit_wraps),
		cmocka_unit_test(test_rx_credit_and_updates),
		cmocka_unit_test(test_rx_beyond_credit_resets),
		cmocka_unit_test(test_no_update_while_guest_sees_room),
		cmocka_unit_test(test_credit_request_answered),
		cmocka_unit_test(test_guest_close_first),
		cmocka_unit_test(test_half_close_guest_send),
		cmocka_unit_test(test_host_eof_first),
		cmocka_unit_test(test_guest_rst_and_request_on_open),
		cmocka_unit_test(test_hdr_roundtrip_le),
		cmocka_unit_test(test_hdr_checks),
		cmocka_unit_test(test_connect_line),
		cmocka_unit_test(test_hyperkit_header),
		cmocka_unit_test(test_conf_hyperkit),
		cmocka_unit_test(test_conf_firecracker),
		cmocka_unit_test(test_conf_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
