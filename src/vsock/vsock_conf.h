/*
 * The -s conf strings of the two vsock emulations:
 *   virtio-sock,guest_cid=C,path=DIR[,guest_forwards=P1;P2...]   (HyperKit)
 *   virtio-vsock,guest_cid=C,uds_path=PATH                       (Firecracker)
 * Parsed without touching the file system; the muxers check the paths.
 */
#ifndef KHYVE_VSOCK_VSOCK_CONF_H
#define KHYVE_VSOCK_VSOCK_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define VSOCK_MAX_FORWARDS 16
/* sizeof(struct sockaddr_un.sun_path) */
#define VSOCK_SUN_PATH_MAX 108

enum vsock_kind {
	VSOCK_HYPERKIT, /* virtio-sock */
	VSOCK_FIRECRACKER, /* virtio-vsock */
};

struct vsock_conf {
	enum vsock_kind kind;
	uint64_t guest_cid;
	char path[VSOCK_SUN_PATH_MAX]; /* DIR, or uds_path */
	uint32_t forwards[VSOCK_MAX_FORWARDS];
	unsigned int nr_forwards;
};

/*
 * Parse @conf (NULL or empty is an error: guest_cid and the path are
 * required) for @kind. 0, or -EINVAL with one line in @err naming the
 * option: missing or unknown option, CID not in 3..0xfffffffe, a path
 * that leaves no room in a Unix socket address for the names built on it,
 * a bad guest_forwards port.
 */
int vsock_conf_parse(struct vsock_conf *c, enum vsock_kind kind,
		     const char *conf, char *err, size_t errlen) __must_check;

#endif
