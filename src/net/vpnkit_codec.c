/*
 * VPNKit message encoding and decoding; see vpnkit_codec.h for the layout.
 * Every decoder reads a buffer of its message's fixed size, so lengths are
 * checked by the caller reading exactly that many bytes.
 */
#include "net/vpnkit_codec.h"

#include <errno.h>
#include <string.h>

#include "net/netbe.h"

static const char vpnkit_magic[5] = { 'V', 'M', 'N', '3', 'T' };

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

void vpnkit_encode_init(uint8_t out[VPNKIT_INIT_LEN], uint32_t version,
			const char *commit)
{
	memset(out, 0, VPNKIT_INIT_LEN);
	memcpy(out, vpnkit_magic, 5);
	put_le32(out + 5, version);
	memcpy(out + 9, commit, strnlen(commit, VPNKIT_COMMIT_LEN));
}

int vpnkit_decode_init(const uint8_t in[VPNKIT_INIT_LEN],
		       struct vpnkit_init *init)
{
	if (memcmp(in, vpnkit_magic, 5))
		return -EPROTO;
	init->version = get_le32(in + 5);
	memcpy(init->commit, in + 9, VPNKIT_COMMIT_LEN);
	init->commit[VPNKIT_COMMIT_LEN] = '\0';
	return 0;
}

void vpnkit_encode_command(uint8_t out[VPNKIT_COMMAND_LEN],
			   const struct vpnkit_command *cmd)
{
	memset(out, 0, VPNKIT_COMMAND_LEN);
	out[0] = cmd->type;
	memcpy(out + 1, cmd->uuid, VPNKIT_UUID_LEN);
	if (cmd->type == VPNKIT_CMD_PREFERRED_IPV4)
		put_le32(out + 1 + VPNKIT_UUID_LEN, cmd->preferred_ipv4);
}

int vpnkit_decode_command(const uint8_t in[VPNKIT_COMMAND_LEN],
			  struct vpnkit_command *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->type = in[0];
	if (cmd->type != VPNKIT_CMD_ETHERNET &&
	    cmd->type != VPNKIT_CMD_PREFERRED_IPV4)
		return -EPROTO;
	memcpy(cmd->uuid, in + 1, VPNKIT_UUID_LEN);
	if (cmd->type == VPNKIT_CMD_PREFERRED_IPV4)
		cmd->preferred_ipv4 = get_le32(in + 1 + VPNKIT_UUID_LEN);
	return 0;
}

void vpnkit_encode_reply(uint8_t out[VPNKIT_REPLY_LEN],
			 const struct vpnkit_reply *r)
{
	size_t n;

	memset(out, 0, VPNKIT_REPLY_LEN);
	out[0] = r->type;
	if (r->type == VPNKIT_REPLY_VIF) {
		put_le16(out + 1, r->mtu);
		put_le16(out + 3, r->max_packet_size);
		memcpy(out + 5, r->mac, 6);
	} else if (r->type == VPNKIT_REPLY_DISCONNECT) {
		n = strnlen(r->message, 255);
		out[1] = (uint8_t)n;
		memcpy(out + 2, r->message, n);
	}
}

int vpnkit_decode_reply(const uint8_t in[VPNKIT_REPLY_LEN],
			struct vpnkit_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->type = in[0];
	switch (r->type) {
	case VPNKIT_REPLY_VIF:
		r->mtu = get_le16(in + 1);
		r->max_packet_size = get_le16(in + 3);
		memcpy(r->mac, in + 5, 6);
		return 0;
	case VPNKIT_REPLY_DISCONNECT:
		/* len is a u8 and the buffer holds 256 message bytes. */
		memcpy(r->message, in + 2, in[1]);
		r->message[in[1]] = '\0';
		return 0;
	default:
		return -EPROTO;
	}
}

void vpnkit_encode_frame_hdr(uint8_t out[VPNKIT_FRAME_HDR_LEN], uint16_t len)
{
	put_le16(out, len);
}

uint16_t vpnkit_decode_frame_hdr(const uint8_t in[VPNKIT_FRAME_HDR_LEN])
{
	return get_le16(in);
}

bool vpnkit_frame_len_ok(size_t len, uint16_t max_packet_size)
{
	return len >= NETBE_ETH_HLEN && len <= max_packet_size;
}
