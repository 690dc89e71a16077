/*
 * -s conf parsing for virtio-sock and virtio-vsock; see vsock_conf.h.
 * The longest socket name built on the path decides its limit: HyperKit's
 * DIR/00000002.xxxxxxxx (18 more bytes), Firecracker's PATH_4294967295
 * (11 more), both within sun_path with its terminating NUL.
 */
#include "vsock/vsock_conf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HYPERKIT_SUFFIX_LEN 18 /* "/00000002.%08x" */
#define FIRECRACKER_SUFFIX_LEN 11 /* "_%u" */

/* A decimal u32 in [@min, @max] filling [@s, @s + @len). */
static int parse_u32(const char *s, size_t len, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!len || len > 10)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_forwards(struct vsock_conf *c, const char *v, size_t len,
			  char *err, size_t errlen)
{
	const char *end = v + len;

	while (v < end) {
		const char *sep = memchr(v, ';', (size_t)(end - v));
		size_t n = sep ? (size_t)(sep - v) : (size_t)(end - v);
		uint64_t port;

		if (parse_u32(v, n, 0, UINT32_MAX - 1, &port)) {
			snprintf(err, errlen,
				 "guest_forwards: '%.*s' is not "
				 "a port (decimal, 0..4294967294)",
				 (int)n, v);
			return -EINVAL;
		}
		if (c->nr_forwards == VSOCK_MAX_FORWARDS) {
			snprintf(err, errlen,
				 "guest_forwards: at most %d ports",
				 VSOCK_MAX_FORWARDS);
			return -EINVAL;
		}
		c->forwards[c->nr_forwards++] = (uint32_t)port;
		v += n + (sep ? 1 : 0);
		if (sep && v == end) {
			snprintf(err, errlen,
				 "guest_forwards: empty port "
				 "after ';'");
			return -EINVAL;
		}
	}
	if (!c->nr_forwards) {
		snprintf(err, errlen, "guest_forwards: no port given");
		return -EINVAL;
	}
	return 0;
}

static int set_path(struct vsock_conf *c, const char *name, const char *v,
		    size_t len, size_t suffix, char *err, size_t errlen)
{
	if (!len) {
		snprintf(err, errlen, "%s: empty path", name);
		return -EINVAL;
	}
	if (len + suffix + 1 > sizeof(c->path)) {
		snprintf(err, errlen,
			 "%s=: too long for a Unix socket "
			 "address (%zu bytes; at most %zu)",
			 name, len, sizeof(c->path) - suffix - 1);
		return -EINVAL;
	}
	memcpy(c->path, v, len);
	c->path[len] = '\0';
	return 0;
}

int vsock_conf_parse(struct vsock_conf *c, enum vsock_kind kind,
		     const char *conf, char *err, size_t errlen)
{
	const char *path_opt = kind == VSOCK_HYPERKIT ? "path" : "uds_path";
	size_t suffix = kind == VSOCK_HYPERKIT ? HYPERKIT_SUFFIX_LEN :
						 FIRECRACKER_SUFFIX_LEN;
	bool have_cid = false, have_path = false, have_fwd = false;
	const char *p = conf ? conf : "";

	memset(c, 0, sizeof(*c));
	c->kind = kind;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		size_t klen = eq ? (size_t)(eq - p) : n;
		const char *v = eq ? eq + 1 : p + n;
		size_t vlen = eq ? n - klen - 1 : 0;

		if (!eq) {
			snprintf(err, errlen, "'%.*s': expected option=value",
				 (int)n, p);
			return -EINVAL;
		}
		if (klen == 9 && !strncmp(p, "guest_cid", klen)) {
			if (have_cid)
				goto dup;
			if (parse_u32(v, vlen, 3, 0xfffffffeULL,
				      &c->guest_cid)) {
				snprintf(err, errlen,
					 "guest_cid=%.*s: expected "
					 "a decimal CID from 3 to 4294967294",
					 (int)vlen, v);
				return -EINVAL;
			}
			have_cid = true;
		} else if (klen == strlen(path_opt) &&
			   !strncmp(p, path_opt, klen)) {
			if (have_path)
				goto dup;
			if (set_path(c, path_opt, v, vlen, suffix, err, errlen))
				return -EINVAL;
			have_path = true;
		} else if (kind == VSOCK_HYPERKIT && klen == 14 &&
			   !strncmp(p, "guest_forwards", klen)) {
			if (have_fwd)
				goto dup;
			if (parse_forwards(c, v, vlen, err, errlen))
				return -EINVAL;
			have_fwd = true;
		} else {
			snprintf(err, errlen,
				 "unknown option '%.*s' (expected "
				 "guest_cid=, %s=%s)",
				 (int)klen, p, path_opt,
				 kind == VSOCK_HYPERKIT ? ", guest_forwards=" :
							  "");
			return -EINVAL;
		}
		p += n + (comma ? 1 : 0);
		continue;
dup:
		snprintf(err, errlen, "%.*s given twice", (int)klen, p);
		return -EINVAL;
	}
	if (!have_cid || !have_path) {
		snprintf(err, errlen, "missing %s (expected guest_cid=C,%s=%s)",
			 !have_cid ? "guest_cid" : path_opt, path_opt,
			 kind == VSOCK_HYPERKIT ? "DIR" : "PATH");
		return -EINVAL;
	}
	return 0;
}
