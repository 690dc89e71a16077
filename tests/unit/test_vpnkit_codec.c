/* VPNKit's messages (SPEC.md §4), byte for byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "net/vpnkit_codec.h"

static const char uuid[] = "4a3e8cd4-5a2c-4b0b-8e4c-2a7c9f0b6d11";

static void init_roundtrip(void **state)
{
	uint8_t buf[VPNKIT_INIT_LEN];
	struct vpnkit_init init;
	static const uint8_t head[9] = { 'V', 'M', 'N', '3', 'T', 22, 0, 0, 0 };

	(void)state;
	assert_int_equal(VPNKIT_INIT_LEN, 49);
	vpnkit_encode_init(buf, VPNKIT_VERSION,
			   "0123456789012345678901234567890123456789xyz");
	assert_memory_equal(buf, head, 9);
	assert_memory_equal(buf + 9, "0123456789012345678901234567890123456789",
			    40);
	assert_int_equal(vpnkit_decode_init(buf, &init), 0);
	assert_int_equal(init.version, 22);
	assert_string_equal(init.commit,
			    "0123456789012345678901234567890123456789");

	/* A short commit id is NUL-padded; a big version is little-endian. */
	vpnkit_encode_init(buf, 0x01020304, "abc");
	assert_int_equal(buf[5], 4);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[12], 0);
	assert_int_equal(buf[48], 0);
	assert_int_equal(vpnkit_decode_init(buf, &init), 0);
	assert_int_equal(init.version, 0x01020304);
	assert_string_equal(init.commit, "abc");

	buf[4] = 'X';
	assert_int_equal(vpnkit_decode_init(buf, &init), -EPROTO);
}

static void command_ethernet(void **state)
{
	struct vpnkit_command cmd = { .type = VPNKIT_CMD_ETHERNET }, back;
	uint8_t buf[VPNKIT_COMMAND_LEN];
	static const uint8_t zero[VPNKIT_COMMAND_LEN];

	(void)state;
	assert_int_equal(VPNKIT_COMMAND_LEN, 41);
	/* All-NUL UUID: the server picks. */
	vpnkit_encode_command(buf, &cmd);
	assert_int_equal(buf[0], 1);
	assert_memory_equal(buf + 1, zero, 40);

	memcpy(cmd.uuid, uuid, 36);
	cmd.preferred_ipv4 = 0xdeadbeef; /* not sent with command 1 */
	vpnkit_encode_command(buf, &cmd);
	assert_int_equal(buf[0], 1);
	assert_memory_equal(buf + 1, uuid, 36);
	assert_memory_equal(buf + 37, zero, 4);
	assert_int_equal(vpnkit_decode_command(buf, &back), 0);
	assert_int_equal(back.type, 1);
	assert_memory_equal(back.uuid, uuid, 36);
	assert_int_equal(back.preferred_ipv4, 0);
}

static void command_preferred_ipv4(void **state)
{
	struct vpnkit_command cmd = { .type = VPNKIT_CMD_PREFERRED_IPV4 }, back;
	uint8_t buf[VPNKIT_COMMAND_LEN];
	static const uint8_t ip_le[4] = { 3, 65, 168, 192 };

	(void)state;
	memcpy(cmd.uuid, uuid, 36);
	cmd.preferred_ipv4 = 0xc0a84103; /* 192.168.65.3 */
	vpnkit_encode_command(buf, &cmd);
	assert_int_equal(buf[0], 8);
	assert_memory_equal(buf + 1, uuid, 36);
	assert_memory_equal(buf + 37, ip_le, 4);
	assert_int_equal(vpnkit_decode_command(buf, &back), 0);
	assert_int_equal(back.type, 8);
	assert_int_equal(back.preferred_ipv4, 0xc0a84103);

	buf[0] = 7;
	assert_int_equal(vpnkit_decode_command(buf, &back), -EPROTO);
}

static void reply_vif(void **state)
{
	struct vpnkit_reply r = { .type = VPNKIT_REPLY_VIF,
				  .mtu = 1500,
				  .max_packet_size = 1550,
				  .mac = { 0x02, 0x50, 0x00, 0x00, 0x00,
					   0x01 } };
	struct vpnkit_reply back;
	uint8_t buf[VPNKIT_REPLY_LEN];
	static const uint8_t want[11] = { 1,	0xdc, 0x05, 0x0e, 0x06, 0x02,
					  0x50, 0,    0,    0,	  1 };
	static const uint8_t zero[VPNKIT_REPLY_LEN];

	(void)state;
	assert_int_equal(VPNKIT_REPLY_LEN, 258);
	vpnkit_encode_reply(buf, &r);
	assert_memory_equal(buf, want, 11);
	assert_memory_equal(buf + 11, zero, VPNKIT_REPLY_LEN - 11);
	assert_int_equal(vpnkit_decode_reply(buf, &back), 0);
	assert_int_equal(back.type, VPNKIT_REPLY_VIF);
	assert_int_equal(back.mtu, 1500);
	assert_int_equal(back.max_packet_size, 1550);
	assert_memory_equal(back.mac, r.mac, 6);
}

static void reply_disconnect(void **state)
{
	struct vpnkit_reply r = { .type = VPNKIT_REPLY_DISCONNECT }, back;
	uint8_t buf[VPNKIT_REPLY_LEN];

	(void)state;
	strcpy(r.message, "UUID already in use");
	vpnkit_encode_reply(buf, &r);
	assert_int_equal(buf[0], 2);
	assert_int_equal(buf[1], 19);
	assert_memory_equal(buf + 2, "UUID already in use", 19);
	assert_int_equal(vpnkit_decode_reply(buf, &back), 0);
	assert_int_equal(back.type, VPNKIT_REPLY_DISCONNECT);
	assert_string_equal(back.message, "UUID already in use");

	/* The longest message a u8 can say; NUL-terminated on decode. */
	memset(buf, 'm', sizeof(buf));
	buf[0] = 2;
	buf[1] = 255;
	assert_int_equal(vpnkit_decode_reply(buf, &back), 0);
	assert_int_equal(strlen(back.message), 255);

	buf[0] = 0;
	assert_int_equal(vpnkit_decode_reply(buf, &back), -EPROTO);
	buf[0] = 3;
	assert_int_equal(vpnkit_decode_reply(buf, &back), -EPROTO);
}

static void frame_lengths(void **state)
{
	uint8_t hdr[2];

	(void)state;
	vpnkit_encode_frame_hdr(hdr, 0x1234);
	assert_int_equal(hdr[0], 0x34);
	assert_int_equal(hdr[1], 0x12);
	assert_int_equal(vpnkit_decode_frame_hdr(hdr), 0x1234);
	vpnkit_encode_frame_hdr(hdr, 65535);
	assert_int_equal(vpnkit_decode_frame_hdr(hdr), 65535);

	assert_false(vpnkit_frame_len_ok(0, 1550));
	assert_false(vpnkit_frame_len_ok(13, 1550));
	assert_true(vpnkit_frame_len_ok(14, 1550));
	assert_true(vpnkit_frame_len_ok(1550, 1550));
	assert_false(vpnkit_frame_len_ok(1551, 1550));
	assert_false(vpnkit_frame_len_ok(65535, 1550));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_roundtrip),
		cmocka_unit_test(command_ethernet),
		cmocka_unit_test(command_preferred_ipv4),
		cmocka_unit_test(reply_vif),
		cmocka_unit_test(reply_disconnect),
		cmocka_unit_test(frame_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
