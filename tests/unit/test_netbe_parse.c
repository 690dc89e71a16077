/* The network backends' parsers: -s conf, hostfwd= rules, mac=. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "net/netbe.h"

static uint32_t ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void hostfwd_good(void **state)
{
	struct hostfwd fw;
	char err[128];

	(void)state;
	assert_int_equal(hostfwd_parse("tcp::8080-:80", &fw, err, sizeof(err)),
			 0);
	assert_false(fw.udp);
	assert_int_equal(fw.host_addr, 0);
	assert_int_equal(fw.host_port, 8080);
	assert_int_equal(fw.guest_addr, 0);
	assert_int_equal(fw.guest_port, 80);

	assert_int_equal(
		hostfwd_parse("udp:127.0.0.1:5353-:53", &fw, err, sizeof(err)),
		0);
	assert_true(fw.udp);
	assert_int_equal(fw.host_addr, ip("127.0.0.1"));
	assert_int_equal(fw.host_port, 5353);
	assert_int_equal(fw.guest_port, 53);

	assert_int_equal(hostfwd_parse("tcp:127.0.0.1:2222-10.0.2.16:22", &fw,
				       err, sizeof(err)),
			 0);
	assert_int_equal(fw.guest_addr, ip("10.0.2.16"));
	assert_int_equal(fw.guest_port, 22);

	/* QEMU's empty protocol is tcp; the extremes of the port range. */
	assert_int_equal(hostfwd_parse("::1-:65535", &fw, err, sizeof(err)), 0);
	assert_false(fw.udp);
	assert_int_equal(fw.host_port, 1);
	assert_int_equal(fw.guest_port, 65535);
}

static void hostfwd_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"tcp",
		"tcp:",
		"tcp::8080", /* no guest side */
		"tcp::8080-",
		"tcp::8080-:",
		"tcp::-:80",
		"sctp::8080-:80",
		"TCP::8080-:80",
		"tcpx::8080-:80",
		"tcp::0-:80", /* port 0 */
		"tcp::65536-:80",
		"tcp::8080-:999999",
		"tcp::80a-:80",
		"tcp::+80-:80",
		"tcp:: 80-:80",
		"tcp:1.2.3:8080-:80", /* bad address */
		"tcp:300.1.1.1:8080-:80",
		"tcp:host:8080-:80",
		"tcp:::8080-:80",
		"tcp::8080-:80-:81",
		"tcp:8080-80",
		"tcp::8080-10.0.2.15",
		"tcp:1.2.3.4.5.6.7.8.9.10.11:1-:1",
	};
	struct hostfwd fw;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (hostfwd_parse(bad[i], &fw, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(strlen(err) > 0);
	}
}

static void mac_parse(void **state)
{
	uint8_t mac[6];
	static const uint8_t want[6] = { 0x02, 0xab, 0xCD, 0x00, 0x10, 0xff };

	(void)state;
	assert_int_equal(netbe_parse_mac("02:ab:cd:00:10:ff", mac), 0);
	assert_memory_equal(mac, want, 6);
	assert_int_equal(netbe_parse_mac("02-AB-CD-00-10-FF", mac), 0);
	assert_memory_equal(mac, want, 6);
	assert_int_equal(netbe_parse_mac("02:ab:cd:00:10", mac), -EINVAL);
	assert_int_equal(netbe_parse_mac("02:ab:cd:00:10:ff:", mac), -EINVAL);
	assert_int_equal(netbe_parse_mac("02:ab:cd:00:10:fg", mac), -EINVAL);
	assert_int_equal(netbe_parse_mac("2:ab:cd:00:10:ff", mac), -EINVAL);
	assert_int_equal(netbe_parse_mac("02ab:cd:00:10:ff0", mac), -EINVAL);
	assert_int_equal(netbe_parse_mac("", mac), -EINVAL);
}

static void conf_virtio_net(void **state)
{
	struct netbe_options o;
	char err[256];

	(void)state;
	assert_int_equal(
		netbe_parse("virtio-net", "tap=mytap", &o, err, sizeof(err)),
		0);
	assert_int_equal(o.kind, NETBE_TAP);
	assert_string_equal(o.tap_name, "mytap");
	assert_false(o.has_mac);

	assert_int_equal(netbe_parse("virtio-net", "tap3,mac=02:00:00:00:00:01",
				     &o, err, sizeof(err)),
			 0);
	assert_int_equal(o.kind, NETBE_TAP);
	assert_string_equal(o.tap_name, "tap3");
	assert_true(o.has_mac);
	assert_int_equal(o.mac[5], 1);

	assert_int_equal(
		netbe_parse(
			"virtio-net",
			"user,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-:53",
			&o, err, sizeof(err)),
		0);
	assert_int_equal(o.kind, NETBE_USER);
	assert_int_equal(o.nr_hostfwd, 2);
	assert_int_equal(o.hostfwd[0].host_port, 2222);
	assert_true(o.hostfwd[1].udp);

	/* No conf: user-mode networking, as HyperKit's default NAT (vmnet). */
	assert_int_equal(netbe_parse("virtio-net", NULL, &o, err, sizeof(err)),
			 0);
	assert_int_equal(o.kind, NETBE_USER);
	assert_int_equal(netbe_parse("virtio-net", "mac=02:00:00:00:00:02", &o,
				     err, sizeof(err)),
			 0);
	assert_int_equal(o.kind, NETBE_USER);
	assert_true(o.has_mac);
	netbe_options_free(&o);
}

static void conf_virtio_net_bad(void **state)
{
	static const char *const bad[] = {
		"tap=",
		"tap=a/b",
		"tap=0123456789abcdef", /* 16 characters */
		"tap=..",
		"tapx",
		"tap0,tap1",
		"user,tap0",
		"user,user",
		"tap0,hostfwd=tcp::1-:2",
		"user,hostfwd=tcp::0-:2",
		"user,hostfwd=",
		"user,mac=01:00:00:00:00:01", /* multicast */
		"user,mac=zz",
		"user,",
		",user",
		"user,,mac=02:00:00:00:00:01",
		"vmnet",
		"user,path=/x",
	};
	struct netbe_options o;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (netbe_parse("virtio-net", bad[i], &o, err, sizeof(err)) !=
		    -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(strstr(err, "virtio-net"));
	}
	assert_int_equal(netbe_parse("virtio-blk", "x", &o, err, sizeof(err)),
			 -EINVAL);
}

static void conf_too_many_hostfwd(void **state)
{
	struct netbe_options o;
	char conf[4096] = "user", err[256];
	int i;

	(void)state;
	for (i = 0; i < NETBE_MAX_HOSTFWD; i++)
		snprintf(conf + strlen(conf), sizeof(conf) - strlen(conf),
			 ",hostfwd=tcp::%d-:%d", 1000 + i, i + 1);
	assert_int_equal(netbe_parse("virtio-net", conf, &o, err, sizeof(err)),
			 0);
	assert_int_equal(o.nr_hostfwd, NETBE_MAX_HOSTFWD);
	strcat(conf, ",hostfwd=tcp::999-:1");
	assert_int_equal(netbe_parse("virtio-net", conf, &o, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "at most"));
}

static void conf_vpnkit(void **state)
{
	struct netbe_options o;
	char err[256];

	(void)state;
	assert_int_equal(
		netbe_parse(
			"virtio-vpnkit",
			"path=/tmp/v.sock,uuid=4A3E8CD4-5A2C-4B0B-8E4C-2A7C9F0B6D11,preferred_ipv4=192.168.65.3,macfile=/tmp/mac",
			&o, err, sizeof(err)),
		0);
	assert_int_equal(o.kind, NETBE_VPNKIT);
	assert_string_equal(o.path, "/tmp/v.sock");
	assert_true(o.has_uuid);
	assert_string_equal(o.uuid, "4A3E8CD4-5A2C-4B0B-8E4C-2A7C9F0B6D11");
	assert_true(o.has_preferred_ipv4);
	assert_int_equal(o.preferred_ipv4, ip("192.168.65.3"));
	assert_string_equal(o.macfile, "/tmp/mac");
	netbe_options_free(&o);

	assert_int_equal(
		netbe_parse("virtio-vpnkit", "path=/s", &o, err, sizeof(err)),
		0);
	assert_false(o.has_uuid);
	assert_false(o.has_preferred_ipv4);
	assert_null(o.macfile);
	netbe_options_free(&o);
}

static void conf_vpnkit_bad(void **state)
{
	static const char *const bad[] = {
		NULL,
		"",
		"uuid=4a3e8cd4-5a2c-4b0b-8e4c-2a7c9f0b6d11", /* no path */
		"path=",
		"path=/s,uuid=4a3e8cd4",
		"path=/s,uuid=4a3e8cd4-5a2c-4b0b-8e4c-2a7c9f0b6d11x",
		"path=/s,uuid=4a3e8cd4x5a2c-4b0b-8e4c-2a7c9f0b6d11",
		"path=/s,preferred_ipv4=192.168.65",
		"path=/s,preferred_ipv4=fe80::1",
		"path=/s,mac=02:00:00:00:00:01", /* VPNKit assigns the MAC */
		"path=/s,tap0",
		"path=/s,macfile=",
	};
	struct netbe_options o;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (netbe_parse("virtio-vpnkit", bad[i], &o, err,
				sizeof(err)) != -EINVAL)
			fail_msg("accepted '%s'", bad[i] ? bad[i] : "(null)");
		assert_non_null(strstr(err, "virtio-vpnkit"));
	}
}

/* Opening fails with one line: nothing listens on the path. */
static void open_vpnkit_missing(void **state)
{
	struct netbe be;
	char err[256];

	(void)state;
	assert_int_equal(netbe_open(&be, "virtio-vpnkit",
				    "path=/nonexistent/vpnkit.sock", err,
				    sizeof(err)),
			 -ENOENT);
	assert_string_equal(
		err,
		"virtio-vpnkit: /nonexistent/vpnkit.sock: No such file or directory");
	assert_null(strchr(err, '\n'));
}

static int bound_port(int *fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(*fd, 1), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* A hostfwd= port in use: one line naming the rule, at open. */
static void open_user_port_in_use(void **state)
{
	char conf[128], err[256];
	struct netbe be;
	int fd, port;

	(void)state;
	port = bound_port(&fd);
	snprintf(conf, sizeof(conf), "user,hostfwd=tcp:127.0.0.1:%d-:80", port);
	assert_int_equal(netbe_open(&be, "virtio-net", conf, err, sizeof(err)),
			 -EADDRINUSE);
	assert_non_null(strstr(err, "virtio-net: hostfwd=tcp:127.0.0.1:"));
	assert_non_null(strstr(err, "Address already in use"));
	close(fd);

	/* Now free: it opens, and closes cleanly. */
	assert_int_equal(netbe_open(&be, "virtio-net", conf, err, sizeof(err)),
			 0);
	assert_int_equal(be.kind, NETBE_USER);
	assert_int_equal(be.vnet_hdr_len, 0);
	assert_false(be.offloads);
	assert_int_equal(be.mtu, 1500);
	assert_int_equal(netbe_set_offloads(&be, NETBE_OFF_CSUM), -EOPNOTSUPP);
	netbe_close(&be);
}

/* A tap that cannot be had: "lo" exists and is no tap. */
static void open_tap_bad(void **state)
{
	char err[256];
	struct netbe be;

	(void)state;
	assert_true(netbe_open(&be, "virtio-net", "tap=lo", err, sizeof(err)) <
		    0);
	assert_non_null(strstr(err, "virtio-net: tap lo: "));
	assert_null(strchr(err, '\n'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hostfwd_good),
		cmocka_unit_test(hostfwd_bad),
		cmocka_unit_test(mac_parse),
		cmocka_unit_test(conf_virtio_net),
		cmocka_unit_test(conf_virtio_net_bad),
		cmocka_unit_test(conf_too_many_hostfwd),
		cmocka_unit_test(conf_vpnkit),
		cmocka_unit_test(conf_vpnkit_bad),
		cmocka_unit_test(open_vpnkit_missing),
		cmocka_unit_test(open_user_port_in_use),
		cmocka_unit_test(open_tap_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
