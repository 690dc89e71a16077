/*
 * The network backend interface: parsing a NIC's -s conf into options,
 * picking the backend's ops table, and the helpers every backend shares
 * (iovec walking, the vnet header check). Backends themselves live in
 * tap.c, slirp.c and vpnkit.c.
 */
#include "net/netbe.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int netbe_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int i;

	for (i = 0; i < 6; i++) {
		const char *p = s + 3 * i;

		if (!isxdigit((unsigned char)p[0]) ||
		    !isxdigit((unsigned char)p[1]))
			return -EINVAL;
		if (i < 5 && p[2] != ':' && p[2] != '-')
			return -EINVAL;
		if (i == 5 && p[2] != '\0')
			return -EINVAL;
		mac[i] = (uint8_t)strtoul((char[]){ p[0], p[1], 0 }, NULL, 16);
	}
	return 0;
}

size_t netbe_iov_len(const struct iovec *iov, unsigned int cnt)
{
	size_t len = 0;
	unsigned int i;

	for (i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	return len;
}

size_t netbe_iov_copy(const struct iovec *iov, unsigned int cnt, size_t off,
		      void *buf, size_t len)
{
	uint8_t *out = buf;
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - off;
		if (n > len - done)
			n = len - done;
		memcpy(out + done, (const uint8_t *)iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

int netbe_vnet_hdr_check(const struct netbe_vnet_hdr *h, size_t frame_len,
			 unsigned int offloads)
{
	uint8_t gso = h->gso_type & ~NETBE_VNET_GSO_ECN;
	unsigned int need = 0;

	if (h->flags & ~(NETBE_VNET_F_NEEDS_CSUM | NETBE_VNET_F_DATA_VALID))
		return -EINVAL;
	if (h->flags & NETBE_VNET_F_NEEDS_CSUM) {
		size_t end = (size_t)le16toh(h->csum_start) +
			     le16toh(h->csum_offset) + 2;

		need |= NETBE_OFF_CSUM;
		if (end > frame_len)
			return -EINVAL;
	}
	switch (gso) {
	case NETBE_VNET_GSO_NONE:
		if (h->gso_type & NETBE_VNET_GSO_ECN)
			return -EINVAL;
		break;
	case NETBE_VNET_GSO_TCPV4:
		need |= NETBE_OFF_TSO4;
		break;
	case NETBE_VNET_GSO_TCPV6:
		need |= NETBE_OFF_TSO6;
		break;
	case NETBE_VNET_GSO_UDP:
		need |= NETBE_OFF_UFO;
		break;
	default:
		return -EINVAL;
	}
	if (h->gso_type & NETBE_VNET_GSO_ECN)
		need |= NETBE_OFF_ECN;
	if (gso != NETBE_VNET_GSO_NONE &&
	    (!le16toh(h->gso_size) || le16toh(h->hdr_len) > frame_len))
		return -EINVAL;
	return (need & ~offloads) ? -EINVAL : 0;
}

/* Linux's rule for interface names (dev_valid_name), IFNAMSIZ included. */
static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= 16 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			return false;
	return true;
}

static bool is_bhyve_tap(const char *s)
{
	if (strncmp(s, "tap", 3) || !s[3])
		return false;
	for (s += 3; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static int set_kind(struct netbe_options *o, bool *have, enum netbe_kind k,
		    const char *tok, char *err, size_t errlen)
{
	if (*have) {
		snprintf(err, errlen,
			 "virtio-net: '%s': only one of tap=NAME, tapN or user",
			 tok);
		return -EINVAL;
	}
	*have = true;
	o->kind = k;
	return 0;
}

static int parse_net_token(struct netbe_options *o, bool *have_kind,
			   const char *tok, char *err, size_t errlen)
{
	char fwerr[128];
	int ret;

	if (!strcmp(tok, "user"))
		return set_kind(o, have_kind, NETBE_USER, tok, err, errlen);
	if (!strncmp(tok, "tap=", 4) || is_bhyve_tap(tok)) {
		const char *name = tok[3] == '=' ? tok + 4 : tok;

		if (!valid_ifname(name)) {
			snprintf(
				err, errlen,
				"virtio-net: '%s': expected an interface name of 1 to 15 characters",
				tok);
			return -EINVAL;
		}
		ret = set_kind(o, have_kind, NETBE_TAP, tok, err, errlen);
		if (!ret)
			snprintf(o->tap_name, sizeof(o->tap_name), "%s", name);
		return ret;
	}
	if (!strncmp(tok, "hostfwd=", 8)) {
		if (o->nr_hostfwd == NETBE_MAX_HOSTFWD) {
			snprintf(err, errlen,
				 "virtio-net: at most %d hostfwd= rules",
				 NETBE_MAX_HOSTFWD);
			return -EINVAL;
		}
		if (hostfwd_parse(tok + 8, &o->hostfwd[o->nr_hostfwd], fwerr,
				  sizeof(fwerr))) {
			snprintf(err, errlen, "virtio-net: '%s': %s", tok,
				 fwerr);
			return -EINVAL;
		}
		o->nr_hostfwd++;
		return 0;
	}
	snprintf(
		err, errlen,
		"virtio-net: unknown option '%s' (expected tap=NAME, tapN, user, hostfwd=, mac=)",
		tok);
	return -EINVAL;
}

/* RFC 4122 text: 8-4-4-4-12 hex digits, as VPNKit takes it. */
static bool valid_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

static int parse_vpnkit_token(struct netbe_options *o, const char *tok,
			      char *err, size_t errlen)
{
	struct in_addr a;

	if (!strncmp(tok, "path=", 5) && tok[5]) {
		free(o->path);
		o->path = strdup(tok + 5);
		return o->path ? 0 : -ENOMEM;
	}
	if (!strncmp(tok, "macfile=", 8) && tok[8]) {
		free(o->macfile);
		o->macfile = strdup(tok + 8);
		return o->macfile ? 0 : -ENOMEM;
	}
	if (!strncmp(tok, "uuid=", 5)) {
		if (!valid_uuid(tok + 5)) {
			snprintf(
				err, errlen,
				"virtio-vpnkit: '%s': expected a 36-character UUID",
				tok);
			return -EINVAL;
		}
		memcpy(o->uuid, tok + 5, 37);
		o->has_uuid = true;
		return 0;
	}
	if (!strncmp(tok, "preferred_ipv4=", 15)) {
		if (inet_pton(AF_INET, tok + 15, &a) != 1) {
			snprintf(
				err, errlen,
				"virtio-vpnkit: '%s': expected an IPv4 address",
				tok);
			return -EINVAL;
		}
		o->preferred_ipv4 = a.s_addr;
		o->has_preferred_ipv4 = true;
		return 0;
	}
	snprintf(
		err, errlen,
		"virtio-vpnkit: unknown option '%s' (expected path=SOCK, uuid=, preferred_ipv4=, macfile=)",
		tok);
	return -EINVAL;
}

int netbe_parse(const char *emulation, const char *conf,
		struct netbe_options *o, char *err, size_t errlen)
{
	bool vpnkit = !strcmp(emulation, "virtio-vpnkit");
	bool have_kind = false;
	char *copy, *tok, *save = NULL;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	if (!vpnkit && strcmp(emulation, "virtio-net")) {
		snprintf(err, errlen, "%s: not a network emulation", emulation);
		return -EINVAL;
	}
	o->kind = vpnkit ? NETBE_VPNKIT : NETBE_USER;
	copy = strdup(conf ? conf : "");
	if (!copy)
		return -ENOMEM;
	if (copy[0] && (copy[strlen(copy) - 1] == ',' || strstr(copy, ",,") ||
			copy[0] == ',')) {
		snprintf(err, errlen, "%s: empty option in '%s'", emulation,
			 conf);
		ret = -EINVAL;
		goto out;
	}
	for (tok = strtok_r(copy, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "mac=", 4) && !vpnkit) {
			if (netbe_parse_mac(tok + 4, o->mac)) {
				snprintf(
					err, errlen,
					"%s: '%s': expected mac=xx:xx:xx:xx:xx:xx",
					emulation, tok);
				ret = -EINVAL;
			} else if (o->mac[0] & 1) {
				snprintf(
					err, errlen,
					"%s: '%s': a multicast address cannot be a NIC's",
					emulation, tok);
				ret = -EINVAL;
			}
			o->has_mac = true;
		} else if (vpnkit) {
			ret = parse_vpnkit_token(o, tok, err, errlen);
		} else {
			ret = parse_net_token(o, &have_kind, tok, err, errlen);
		}
	}
	if (ret)
		goto out;
	if (vpnkit && !o->path) {
		snprintf(err, errlen, "virtio-vpnkit: path=SOCK is required");
		ret = -EINVAL;
	} else if (!vpnkit && o->nr_hostfwd && o->kind != NETBE_USER) {
		snprintf(
			err, errlen,
			"virtio-net: hostfwd= is for user-mode networking only");
		ret = -EINVAL;
	}
out:
	free(copy);
	if (ret)
		netbe_options_free(o);
	return ret;
}

void netbe_options_free(struct netbe_options *o)
{
	free(o->path);
	free(o->macfile);
	o->path = NULL;
	o->macfile = NULL;
}

int netbe_open(struct netbe *be, const char *emulation, const char *conf,
	       char *err, size_t errlen)
{
	static const struct netbe_ops *const ops[] = {
		[NETBE_TAP] = &netbe_tap_ops,
		[NETBE_USER] = &netbe_user_ops,
		[NETBE_VPNKIT] = &netbe_vpnkit_ops,
	};
	struct netbe_options o;
	int ret;

	memset(be, 0, sizeof(*be));
	ret = netbe_parse(emulation, conf, &o, err, errlen);
	if (ret)
		return ret;
	be->kind = o.kind;
	be->ops = ops[o.kind];
	be->has_mac = o.has_mac;
	memcpy(be->mac, o.mac, 6);
	be->mtu = 1500;
	be->max_frame = 1500 + 18;
	ret = be->ops->open(be, &o, err, errlen);
	netbe_options_free(&o);
	if (ret)
		be->ops = NULL;
	return ret;
}

int netbe_attach(struct netbe *be, struct evloop *loop)
{
	return be->ops->attach(be, loop);
}

int netbe_send(struct netbe *be, const struct iovec *iov, unsigned int cnt)
{
	return be->ops->send(be, iov, cnt);
}

void netbe_rx_resume(struct netbe *be)
{
	be->ops->rx_resume(be);
}

int netbe_set_offloads(struct netbe *be, unsigned int offloads)
{
	if (!be->offloads)
		return offloads ? -EOPNOTSUPP : 0;
	return be->ops->set_offloads(be, offloads);
}

void netbe_close(struct netbe *be)
{
	if (be->ops)
		be->ops->close(be);
	be->ops = NULL;
}
