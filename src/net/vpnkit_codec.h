/*
 * VPNKit's ethernet protocol on the wire (SPEC.md §4), as pure encode and
 * decode functions over byte buffers: no sockets, so that unit tests and
 * the fuzzer see exactly the bytes vpnkit.c sends and receives. Integers
 * are little-endian, structures packed:
 *   Init     49 bytes: "VMN3T", u32 version, 40-byte commit id (both ways);
 *   Command  41 bytes: u8 1 + 36-byte UUID (+ 4 zero bytes), or
 *                      u8 8 + 36-byte UUID + u32 preferred IPv4;
 *   Reply   258 bytes: u8 1 + u16 mtu + u16 max_packet_size + mac[6], or
 *                      u8 2 + u8 len + message (up to 256 bytes);
 *   Frames:  u16 length + ethernet frame, both ways.
 */
#ifndef KHYVE_NET_VPNKIT_CODEC_H
#define KHYVE_NET_VPNKIT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define VPNKIT_VERSION 22
#define VPNKIT_INIT_LEN 49
#define VPNKIT_COMMAND_LEN 41
#define VPNKIT_REPLY_LEN 258
#define VPNKIT_UUID_LEN 36
#define VPNKIT_COMMIT_LEN 40
#define VPNKIT_FRAME_HDR_LEN 2

#define VPNKIT_CMD_ETHERNET 1
#define VPNKIT_CMD_PREFERRED_IPV4 8
#define VPNKIT_REPLY_VIF 1
#define VPNKIT_REPLY_DISCONNECT 2

struct vpnkit_init {
	uint32_t version;
	char commit[VPNKIT_COMMIT_LEN + 1]; /* NUL-terminated copy */
};

struct vpnkit_command {
	uint8_t type; /* VPNKIT_CMD_* */
	char uuid[VPNKIT_UUID_LEN]; /* ASCII, or all NUL: the server picks */
	uint32_t preferred_ipv4; /* host order (192.168.65.2 = 0xc0a84102) */
};

struct vpnkit_reply {
	uint8_t type; /* VPNKIT_REPLY_* */
	uint16_t mtu;
	uint16_t max_packet_size;
	uint8_t mac[6];
	char message[257]; /* disconnect: NUL-terminated */
};

/* Init with @version and @commit (up to 40 bytes, NUL-padded). */
void vpnkit_encode_init(uint8_t out[VPNKIT_INIT_LEN], uint32_t version,
			const char *commit);
/* -EPROTO when the magic is not "VMN3T". */
int vpnkit_decode_init(const uint8_t in[VPNKIT_INIT_LEN],
		       struct vpnkit_init *init) __must_check;
void vpnkit_encode_command(uint8_t out[VPNKIT_COMMAND_LEN],
			   const struct vpnkit_command *cmd);
/* -EPROTO for an unknown command. */
int vpnkit_decode_command(const uint8_t in[VPNKIT_COMMAND_LEN],
			  struct vpnkit_command *cmd) __must_check;
void vpnkit_encode_reply(uint8_t out[VPNKIT_REPLY_LEN],
			 const struct vpnkit_reply *r);
/* -EPROTO for an unknown reply type. */
int vpnkit_decode_reply(const uint8_t in[VPNKIT_REPLY_LEN],
			struct vpnkit_reply *r) __must_check;

/* The frame header for a frame of @len bytes (len < 65536). */
void vpnkit_encode_frame_hdr(uint8_t out[VPNKIT_FRAME_HDR_LEN], uint16_t len);
uint16_t vpnkit_decode_frame_hdr(const uint8_t in[VPNKIT_FRAME_HDR_LEN]);
/*
 * Whether a frame of @len bytes is acceptable under @max_packet_size:
 * at least an ethernet header, at most the server's limit.
 */
bool vpnkit_frame_len_ok(size_t len, uint16_t max_packet_size);

#endif
