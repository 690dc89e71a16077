/*
 * What comes in from outside the process, parsed in one place: the guest's
 * packet headers (virtio 1.2 §5.10.6) and the two host-side handshakes
 * (HyperKit's 18-byte "%08x.%08x\n" header, Firecracker's "CONNECT <port>\n"
 * line). Pure functions, no I/O: the unit tests and the fuzz target drive
 * them directly.
 */
#ifndef KHYVE_VSOCK_VSOCK_PROTO_H
#define KHYVE_VSOCK_VSOCK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_vsock.h>

#include "core/log.h"

#define VSOCK_HOST_CID 2
#define VSOCK_HDR_SIZE ((uint32_t)sizeof(struct virtio_vsock_hdr)) /* 44 */
/* Largest payload of one packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PKT (64U * 1024)
/* HyperKit's host→guest header: "%08x.%08x\n". */
#define VSOCK_HYPERKIT_HDR_LEN 18
/* Firecracker's "CONNECT <port>": at most this many bytes before the '\n'. */
#define VSOCK_CONNECT_MAX 32

/* A guest packet header in host byte order. */
struct vsock_pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

/*
 * Decode and check the header in @hdr (VSOCK_HDR_SIZE bytes) of a guest tx
 * packet whose chain holds @payload_avail readable bytes after the header.
 * 0: valid. -EPROTO: decoded (@p's ports are usable: the connection gets an
 * RST) but wrong: src_cid not @guest_cid, dst_cid not the host, type not
 * STREAM, unknown op, len beyond the chain or VSOCK_MAX_PKT, a payload on a
 * control packet, unknown shutdown flags.
 */
int vsock_proto_parse_hdr(const void *hdr, uint64_t payload_avail,
			  uint64_t guest_cid, struct vsock_pkt *p) __must_check;
/* Encode @p as a little-endian header into @hdr (VSOCK_HDR_SIZE bytes). */
void vsock_proto_build_hdr(const struct vsock_pkt *p, void *hdr);

/*
 * Firecracker's host→guest handshake: @buf holds the @len bytes read so far
 * (reading stops at the first '\n'). 1: a complete "CONNECT <port>\n" (the
 * word in any case, the port decimal) with *@port set; 0: no newline yet,
 * read on; -EINVAL: garbage, or no newline within VSOCK_CONNECT_MAX bytes.
 */
int vsock_proto_parse_connect(const char *buf, size_t len,
			      uint32_t *port) __must_check;
/*
 * HyperKit's host→guest header: as above for "%08x.%08x\n" (guest CID,
 * port; hex digits in either case). 0 until VSOCK_HYPERKIT_HDR_LEN bytes
 * are there (an early bad byte is -EINVAL at once).
 */
int vsock_proto_parse_hyperkit(const char *buf, size_t len, uint32_t *cid,
			       uint32_t *port) __must_check;

#endif
