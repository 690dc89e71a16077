/* The 12-byte vnet header and the iovec helpers every backend uses. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "net/netbe.h"

#define ALL                                                                 \
	(NETBE_OFF_CSUM | NETBE_OFF_TSO4 | NETBE_OFF_TSO6 | NETBE_OFF_ECN | \
	 NETBE_OFF_UFO)

static void layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct netbe_vnet_hdr), NETBE_VNET_HDR_LEN);
	assert_int_equal(offsetof(struct netbe_vnet_hdr, gso_type), 1);
	assert_int_equal(offsetof(struct netbe_vnet_hdr, hdr_len), 2);
	assert_int_equal(offsetof(struct netbe_vnet_hdr, gso_size), 4);
	assert_int_equal(offsetof(struct netbe_vnet_hdr, csum_start), 6);
	assert_int_equal(offsetof(struct netbe_vnet_hdr, csum_offset), 8);
	assert_int_equal(offsetof(struct netbe_vnet_hdr, num_buffers), 10);
}

static void plain_frames(void **state)
{
	struct netbe_vnet_hdr h = { 0 };

	(void)state;
	assert_int_equal(netbe_vnet_hdr_check(&h, 60, 0), 0);
	h.flags = NETBE_VNET_F_DATA_VALID;
	assert_int_equal(netbe_vnet_hdr_check(&h, 60, 0), 0);
	h.flags = 0x80;
	assert_int_equal(netbe_vnet_hdr_check(&h, 60, ALL), -EINVAL);
	h.flags = 0;
	h.gso_type = NETBE_VNET_GSO_ECN; /* ECN without GSO */
	assert_int_equal(netbe_vnet_hdr_check(&h, 60, ALL), -EINVAL);
	h.gso_type = 2; /* no such GSO type */
	assert_int_equal(netbe_vnet_hdr_check(&h, 60, ALL), -EINVAL);
}

static void checksum_offload(void **state)
{
	struct netbe_vnet_hdr h = {
		.flags = NETBE_VNET_F_NEEDS_CSUM,
		.csum_start = htole16(34), /* TCP header after IPv4 */
		.csum_offset = htole16(16),
	};

	(void)state;
	assert_int_equal(netbe_vnet_hdr_check(&h, 54, NETBE_OFF_CSUM), 0);
	/* Not negotiated. */
	assert_int_equal(netbe_vnet_hdr_check(&h, 54, 0), -EINVAL);
	/* The checksum field would end past the frame. */
	assert_int_equal(netbe_vnet_hdr_check(&h, 51, NETBE_OFF_CSUM), -EINVAL);
	assert_int_equal(netbe_vnet_hdr_check(&h, 52, NETBE_OFF_CSUM), 0);
	h.csum_start = htole16(0xffff);
	h.csum_offset = htole16(0xffff);
	assert_int_equal(netbe_vnet_hdr_check(&h, 65550, ALL), -EINVAL);
}

static void segmentation_offload(void **state)
{
	struct netbe_vnet_hdr h = {
		.flags = NETBE_VNET_F_NEEDS_CSUM,
		.gso_type = NETBE_VNET_GSO_TCPV4,
		.hdr_len = htole16(66),
		.gso_size = htole16(1448),
		.csum_start = htole16(34),
		.csum_offset = htole16(16),
	};

	(void)state;
	assert_int_equal(netbe_vnet_hdr_check(&h, 65000,
					      NETBE_OFF_CSUM | NETBE_OFF_TSO4),
			 0);
	assert_int_equal(netbe_vnet_hdr_check(&h, 65000,
					      NETBE_OFF_CSUM | NETBE_OFF_TSO6),
			 -EINVAL);
	h.gso_type = NETBE_VNET_GSO_TCPV6;
	assert_int_equal(netbe_vnet_hdr_check(&h, 65000,
					      NETBE_OFF_CSUM | NETBE_OFF_TSO6),
			 0);
	h.gso_type = NETBE_VNET_GSO_TCPV4 | NETBE_VNET_GSO_ECN;
	assert_int_equal(netbe_vnet_hdr_check(&h, 65000,
					      NETBE_OFF_CSUM | NETBE_OFF_TSO4),
			 -EINVAL);
	assert_int_equal(netbe_vnet_hdr_check(&h, 65000, ALL), 0);
	h.gso_type = NETBE_VNET_GSO_UDP;
	assert_int_equal(netbe_vnet_hdr_check(&h, 65000,
					      NETBE_OFF_CSUM | NETBE_OFF_TSO4),
			 -EINVAL);
	assert_int_equal(netbe_vnet_hdr_check(&h, 65000, ALL), 0);
	/* A zero segment size, headers longer than the frame. */
	h.gso_type = NETBE_VNET_GSO_TCPV4;
	h.gso_size = 0;
	assert_int_equal(netbe_vnet_hdr_check(&h, 65000, ALL), -EINVAL);
	h.gso_size = htole16(1448);
	h.hdr_len = htole16(100);
	assert_int_equal(netbe_vnet_hdr_check(&h, 99, ALL), -EINVAL);
}

static void iov_helpers(void **state)
{
	char a[] = "hello", b[] = " ", c[] = "world";
	struct iovec iov[4] = { { a, 5 }, { NULL, 0 }, { b, 1 }, { c, 5 } };
	char out[16];

	(void)state;
	assert_int_equal(netbe_iov_len(iov, 4), 11);
	memset(out, 0, sizeof(out));
	assert_int_equal(netbe_iov_copy(iov, 4, 0, out, sizeof(out)), 11);
	assert_string_equal(out, "hello world");
	memset(out, 0, sizeof(out));
	assert_int_equal(netbe_iov_copy(iov, 4, 3, out, 5), 5);
	assert_string_equal(out, "lo wo");
	assert_int_equal(netbe_iov_copy(iov, 4, 11, out, 5), 0);
	assert_int_equal(netbe_iov_copy(iov, 4, 100, out, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layout),
		cmocka_unit_test(plain_frames),
		cmocka_unit_test(checksum_offload),
		cmocka_unit_test(segmentation_offload),
		cmocka_unit_test(iov_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
