/*
 * HyperKit's vsock convention (SPEC.md §3A), the one Docker Desktop uses:
 * a directory of Unix sockets named "<cid>.<port>" in zero-padded hex.
 *  - guest → host port P: connect to DIR/00000002.%08x, no header;
 *  - host → any guest port: connect to DIR/connect and write exactly 18
 *    bytes "%08x.%08x\n" (guest CID, port); nothing is written back;
 *  - guest_forwards=P: DIR/%08x.%08x (guest CID, P) listens, each client
 *    goes to guest port P, and DIR/guest.P is a relative symlink to it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsock/vsock_mux.h"

static void hyperkit_host_path(const struct vsock_mux *m, uint32_t port,
			       char *path, size_t len)
{
	snprintf(path, len, "%s/%08x.%08x", m->conf.path, VSOCK_HOST_CID, port);
}

static size_t hyperkit_want(size_t got)
{
	return got < VSOCK_HYPERKIT_HDR_LEN ? VSOCK_HYPERKIT_HDR_LEN - got : 0;
}

static int hyperkit_parse(const struct vsock_mux *m, const char *buf,
			  size_t len, uint32_t *port)
{
	uint32_t cid;
	int ret = vsock_proto_parse_hyperkit(buf, len, &cid, port);

	if (ret == 1 && cid != m->conf.guest_cid)
		return -EINVAL;
	return ret;
}

static const struct vsock_mux_ops hyperkit_ops = {
	.host_path = hyperkit_host_path,
	.want = hyperkit_want,
	.parse = hyperkit_parse,
};

/* DIR/guest.P → "%08x.%08x", replacing an old symlink. */
static int add_link(struct vsock_listener *l, const char *dir, uint32_t port,
		    char *err, size_t errlen)
{
	const char *target = strrchr(l->path, '/') + 1;
	struct stat st;

	snprintf(l->link, sizeof(l->link), "%s/guest.%u", dir, port);
	if (lstat(l->link, &st) == 0 && S_ISLNK(st.st_mode))
		unlink(l->link);
	if (symlink(target, l->link) < 0) {
		int ret = -errno;

		snprintf(err, errlen, "%s: %s", l->link, strerror(errno));
		l->link[0] = '\0';
		return ret;
	}
	return 0;
}

int vsock_hyperkit_setup(struct vsock_mux *m, char *err, size_t errlen)
{
	char path[VSOCK_SUN_PATH_MAX * 2];
	const char *dir = m->conf.path;
	struct stat st;
	unsigned int i;
	int ret;

	m->ops = &hyperkit_ops;
	if (stat(dir, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "path=%s: %s", dir, strerror(errno));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "path=%s: not a directory", dir);
		return -ENOTDIR;
	}
	snprintf(path, sizeof(path), "%s/connect", dir);
	ret = vsock_mux_listen(m, path, true, 0, err, errlen);
	if (ret)
		return ret;
	for (i = 0; i < m->conf.nr_forwards; i++) {
		uint32_t port = m->conf.forwards[i];

		snprintf(path, sizeof(path), "%s/%08x.%08x", dir,
			 (uint32_t)m->conf.guest_cid, port);
		ret = vsock_mux_listen(m, path, false, port, err, errlen);
		if (ret)
			return ret;
		ret = add_link(&m->listeners[m->nr_listeners - 1], dir, port,
			       err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}
