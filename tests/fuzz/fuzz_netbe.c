/*
 * libFuzzer target: what the network backends parse. The first byte picks
 * the parser: a virtio-net or virtio-vpnkit -s conf, a hostfwd= rule, a
 * vnet header from the guest against a frame length and offload mask, or
 * a VPNKit Init/command/reply as read from the socket. Errors are the
 * expected outcome; a crash or sanitizer report is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/netbe.h"
#include "net/vpnkit_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[VPNKIT_REPLY_LEN] = { 0 };
	struct netbe_options o;
	struct netbe_vnet_hdr h;
	struct vpnkit_command cmd;
	struct vpnkit_reply r;
	struct vpnkit_init init;
	struct hostfwd fw;
	char err[256], *s;

	if (!size)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0:
		if (!netbe_parse("virtio-net", s, &o, err, sizeof(err)))
			netbe_options_free(&o);
		break;
	case 1:
		if (!netbe_parse("virtio-vpnkit", s, &o, err, sizeof(err)))
			netbe_options_free(&o);
		break;
	case 2:
		(void)!hostfwd_parse(s, &fw, err, sizeof(err));
		break;
	case 3:
		if (size >= 1 + sizeof(h) + 3) {
			memcpy(&h, data + 1, sizeof(h));
			(void)!netbe_vnet_hdr_check(
				&h, (size_t)data[13] << 8 | data[14], data[15]);
		}
		break;
	default:
		memcpy(buf, data + 1,
		       size - 1 < sizeof(buf) ? size - 1 : sizeof(buf));
		(void)!vpnkit_decode_init(buf, &init);
		(void)!vpnkit_decode_command(buf, &cmd);
		if (!vpnkit_decode_reply(buf, &r) && strlen(r.message) > 255)
			abort();
		vpnkit_frame_len_ok(vpnkit_decode_frame_hdr(buf), 1550);
		break;
	}
	free(s);
	return 0;
}
