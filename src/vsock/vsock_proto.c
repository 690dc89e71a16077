/*
 * Parsers for guest packet headers and host handshakes; see vsock_proto.h.
 * Every field the guest or a host client controls is checked here and
 * nowhere else; the callers trust what these return.
 */
#include "vsock/vsock_proto.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

int vsock_proto_parse_hdr(const void *hdr, uint64_t payload_avail,
			  uint64_t guest_cid, struct vsock_pkt *p)
{
	struct virtio_vsock_hdr h;

	memcpy(&h, hdr, sizeof(h));
	p->src_cid = le64toh(h.src_cid);
	p->dst_cid = le64toh(h.dst_cid);
	p->src_port = le32toh(h.src_port);
	p->dst_port = le32toh(h.dst_port);
	p->len = le32toh(h.len);
	p->type = le16toh(h.type);
	p->op = le16toh(h.op);
	p->flags = le32toh(h.flags);
	p->buf_alloc = le32toh(h.buf_alloc);
	p->fwd_cnt = le32toh(h.fwd_cnt);

	if (p->src_cid != guest_cid || p->dst_cid != VSOCK_HOST_CID)
		return -EPROTO;
	if (p->type != VIRTIO_VSOCK_TYPE_STREAM)
		return -EPROTO;
	if (p->op < VIRTIO_VSOCK_OP_REQUEST ||
	    p->op > VIRTIO_VSOCK_OP_CREDIT_REQUEST)
		return -EPROTO;
	if (p->len > payload_avail || p->len > VSOCK_MAX_PKT)
		return -EPROTO;
	if (p->op != VIRTIO_VSOCK_OP_RW && p->len)
		return -EPROTO;
	if (p->op == VIRTIO_VSOCK_OP_SHUTDOWN &&
	    (p->flags & ~(uint32_t)(VIRTIO_VSOCK_SHUTDOWN_RCV |
				    VIRTIO_VSOCK_SHUTDOWN_SEND)))
		return -EPROTO;
	return 0;
}

void vsock_proto_build_hdr(const struct vsock_pkt *p, void *hdr)
{
	struct virtio_vsock_hdr h = {
		.src_cid = htole64(p->src_cid),
		.dst_cid = htole64(p->dst_cid),
		.src_port = htole32(p->src_port),
		.dst_port = htole32(p->dst_port),
		.len = htole32(p->len),
		.type = htole16(p->type),
		.op = htole16(p->op),
		.flags = htole32(p->flags),
		.buf_alloc = htole32(p->buf_alloc),
		.fwd_cnt = htole32(p->fwd_cnt),
	};

	memcpy(hdr, &h, sizeof(h));
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vsock_proto_parse_connect(const char *buf, size_t len, uint32_t *port)
{
	static const char word[] = "connect";
	const char *nl = memchr(buf, '\n', len);
	size_t i = 0, end, digits = 0;
	uint64_t v = 0;

	if (!nl)
		return len > VSOCK_CONNECT_MAX ? -EINVAL : 0;
	end = nl - buf;
	if (end > VSOCK_CONNECT_MAX || end + 1 != len)
		return -EINVAL;
	while (i < end && is_space(buf[i]))
		i++;
	if (end - i < sizeof(word) - 1 ||
	    strncasecmp(buf + i, word, sizeof(word) - 1))
		return -EINVAL;
	i += sizeof(word) - 1;
	if (i >= end || !is_space(buf[i]))
		return -EINVAL;
	while (i < end && is_space(buf[i]))
		i++;
	for (; i < end && buf[i] >= '0' && buf[i] <= '9'; i++, digits++) {
		v = v * 10 + (uint64_t)(buf[i] - '0');
		if (v > UINT32_MAX)
			return -EINVAL;
	}
	if (!digits)
		return -EINVAL;
	while (i < end && is_space(buf[i]))
		i++;
	if (i != end)
		return -EINVAL;
	*port = (uint32_t)v;
	return 1;
}

int vsock_proto_parse_hyperkit(const char *buf, size_t len, uint32_t *cid,
			       uint32_t *port)
{
	uint32_t v[2] = { 0, 0 };
	size_t i;

	if (len > VSOCK_HYPERKIT_HDR_LEN)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		int d;

		if (i == 8) {
			if (buf[i] != '.')
				return -EINVAL;
			continue;
		}
		if (i == 17) {
			if (buf[i] != '\n')
				return -EINVAL;
			continue;
		}
		d = hexval(buf[i]);
		if (d < 0)
			return -EINVAL;
		v[i > 8] = v[i > 8] << 4 | (uint32_t)d;
	}
	if (len < VSOCK_HYPERKIT_HDR_LEN)
		return 0;
	*cid = v[0];
	*port = v[1];
	return 1;
}
