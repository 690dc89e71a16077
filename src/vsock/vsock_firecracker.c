/*
 * Firecracker's hybrid vsock (SPEC.md §3B), the one Kata Containers uses:
 *  - host → guest: connect to PATH, send "CONNECT <port>\n"; once the
 *    guest accepts, khyve writes "OK <hostport>\n" and the stream is the
 *    guest connection; an RST or no answer in time closes it;
 *  - guest → host port P: connect to PATH_P (decimal), else RST.
 * The handshake is read a byte at a time so that nothing after the
 * newline is taken from the socket.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "vsock/vsock_mux.h"

static void firecracker_host_path(const struct vsock_mux *m, uint32_t port,
				  char *path, size_t len)
{
	snprintf(path, len, "%s_%u", m->conf.path, port);
}

static size_t firecracker_want(size_t got)
{
	return got <= VSOCK_CONNECT_MAX ? 1 : 0;
}

static int firecracker_parse(const struct vsock_mux *m, const char *buf,
			     size_t len, uint32_t *port)
{
	(void)m;
	return vsock_proto_parse_connect(buf, len, port);
}

static int firecracker_established(struct vsock_mux *m, int fd,
				   uint32_t host_port)
{
	char line[24];
	int n = snprintf(line, sizeof(line), "OK %u\n", host_port);
	ssize_t w;

	(void)m;
	/* The socket's buffer is empty: a short line goes in whole. */
	do
		w = send(fd, line, (size_t)n, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	return w == n ? 0 : -EIO;
}

static const struct vsock_mux_ops firecracker_ops = {
	.host_path = firecracker_host_path,
	.want = firecracker_want,
	.parse = firecracker_parse,
	.established = firecracker_established,
};

int vsock_firecracker_setup(struct vsock_mux *m, char *err, size_t errlen)
{
	m->ops = &firecracker_ops;
	return vsock_mux_listen(m, m->conf.path, true, 0, err, errlen);
}
