/*
 * hostfwd= rules of user-mode networking, in QEMU's form:
 * [tcp|udp]:[HOSTIP]:HPORT-[GUESTIP]:GPORT. An empty protocol is tcp, an
 * empty host address is every address (INADDR_ANY, as QEMU), an empty
 * guest address is the guest's DHCP address. Pure parsing: slirp.c sets
 * the rules up.
 */
#include "net/netbe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char *s, size_t n, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (!n || n > 5)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (!v || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* "[ADDR]:PORT" in s[0..n) */
static int parse_endpoint(const char *s, size_t n, uint32_t *addr,
			  uint16_t *port, const char *what, char *err,
			  size_t errlen)
{
	const char *colon = memrchr(s, ':', n);
	char ip[INET_ADDRSTRLEN];
	struct in_addr a;
	size_t iplen;

	if (!colon) {
		snprintf(err, errlen, "expected [ADDRESS]:PORT on the %s side",
			 what);
		return -EINVAL;
	}
	iplen = (size_t)(colon - s);
	*addr = 0;
	if (iplen) {
		if (iplen >= sizeof(ip)) {
			snprintf(err, errlen, "bad %s address", what);
			return -EINVAL;
		}
		memcpy(ip, s, iplen);
		ip[iplen] = '\0';
		if (inet_pton(AF_INET, ip, &a) != 1) {
			snprintf(err, errlen, "bad %s address '%s'", what, ip);
			return -EINVAL;
		}
		*addr = a.s_addr;
	}
	if (parse_port(colon + 1, n - iplen - 1, port)) {
		snprintf(err, errlen, "bad %s port '%.*s' (expected 1-65535)",
			 what, (int)(n - iplen - 1), colon + 1);
		return -EINVAL;
	}
	return 0;
}

int hostfwd_parse(const char *s, struct hostfwd *fw, char *err, size_t errlen)
{
	const char *colon = strchr(s, ':'), *dash;
	size_t plen;

	memset(fw, 0, sizeof(*fw));
	if (!colon) {
		snprintf(err, errlen,
			 "expected tcp:[HOSTIP]:HPORT-[GUESTIP]:GPORT");
		return -EINVAL;
	}
	plen = (size_t)(colon - s);
	if (plen == 3 && !strncmp(s, "udp", 3)) {
		fw->udp = true;
	} else if (plen && (plen != 3 || strncmp(s, "tcp", 3))) {
		snprintf(err, errlen, "protocol '%.*s': expected tcp or udp",
			 (int)plen, s);
		return -EINVAL;
	}
	s = colon + 1;
	dash = strchr(s, '-');
	if (!dash || strchr(dash + 1, '-')) {
		snprintf(err, errlen,
			 "expected tcp:[HOSTIP]:HPORT-[GUESTIP]:GPORT");
		return -EINVAL;
	}
	if (parse_endpoint(s, (size_t)(dash - s), &fw->host_addr,
			   &fw->host_port, "host", err, errlen))
		return -EINVAL;
	return parse_endpoint(dash + 1, strlen(dash + 1), &fw->guest_addr,
			      &fw->guest_port, "guest", err, errlen);
}
