/*
 * The muxer code both conventions share (see vsock_mux.h): listening Unix
 * sockets, reading a host client's handshake without reading past it
 * (the bytes after it are payload for the guest), timeouts, and the
 * guest → host connect.
 */
#include "vsock/vsock_mux.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int64_t vsock_mux_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int vsock_mux_listen(struct vsock_mux *m, const char *path, bool handshake,
		     uint32_t port, char *err, size_t errlen)
{
	struct vsock_listener *l = &m->listeners[m->nr_listeners];
	struct sockaddr_un sa;
	struct stat st;
	int ret, fd;

	if (m->nr_listeners >= sizeof(m->listeners) / sizeof(m->listeners[0]))
		return -ENOSPC;
	ret = fill_addr(&sa, path);
	if (ret) {
		snprintf(err, errlen, "%s: too long for a Unix socket address",
			 path);
		return ret;
	}
	/* A socket left by an earlier run is replaced; anything else stays. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket",
				 path);
			return -EEXIST;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return ret;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 128) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	memset(l, 0, sizeof(*l));
	l->mux = m;
	l->fd = fd;
	l->handshake = handshake;
	l->port = port;
	snprintf(l->path, sizeof(l->path), "%s", path);
	m->nr_listeners++;
	return 0;
}

static void handshake_close(struct vsock_handshake *hs)
{
	struct vsock_mux *m = hs->mux;

	evloop_del(m->loop, &hs->h);
	close(hs->fd);
	LIST_REMOVE(hs, link);
	m->nr_handshakes--;
	free(hs);
}

static void handshake_read(struct ev_handler *h, uint32_t events)
{
	struct vsock_handshake *hs = h->opaque;
	struct vsock_mux *m = hs->mux;
	uint32_t port;
	int fd, ret;

	(void)events;
	for (;;) {
		size_t want = m->ops->want(hs->got);
		ssize_t n;

		if (!want || want > sizeof(hs->buf) - hs->got) {
			ret = -EINVAL;
			break;
		}
		n = recv(hs->fd, hs->buf + hs->got, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			handshake_close(hs); /* gone before the handshake */
			return;
		}
		hs->got += (size_t)n;
		ret = m->ops->parse(m, hs->buf, hs->got, &port);
		if (ret)
			break;
	}
	if (ret < 0) {
		warn_ratelimited("vsock: %s: bad handshake from a host client "
				 "(%zu bytes): closed",
				 m->conf.path, hs->got);
		handshake_close(hs);
		return;
	}
	/* Hand the socket over: the device owns it now. */
	fd = hs->fd;
	hs->fd = -1;
	evloop_del(m->loop, &hs->h);
	LIST_REMOVE(hs, link);
	m->nr_handshakes--;
	free(hs);
	m->open(m->dev, fd, port);
}

static void handshake_add(struct vsock_mux *m, int fd)
{
	struct vsock_handshake *hs;

	if (m->nr_handshakes >= VSOCK_MAX_HANDSHAKES)
		goto err_close;
	hs = calloc(1, sizeof(*hs));
	if (!hs)
		goto err_close;
	hs->mux = m;
	hs->fd = fd;
	hs->deadline = vsock_mux_now_ms() + VSOCK_HANDSHAKE_TIMEOUT_MS;
	if (evloop_add(m->loop, &hs->h, fd, EPOLLIN, handshake_read, hs)) {
		free(hs);
		goto err_close;
	}
	LIST_INSERT_HEAD(&m->handshakes, hs, link);
	m->nr_handshakes++;
	/* The header may be there already. */
	handshake_read(&hs->h, EPOLLIN);
	return;

err_close:
	warn_ratelimited("vsock: %s: too many host connections in their "
			 "handshake: closed one",
			 m->conf.path);
	close(fd);
}

static void listener_accept(struct ev_handler *h, uint32_t events)
{
	struct vsock_listener *l = h->opaque;
	struct vsock_mux *m = l->mux;

	(void)events;
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				warn_ratelimited("vsock: accept on %s: %s",
						 l->path, strerror(errno));
			return;
		}
		if (l->handshake)
			handshake_add(m, fd);
		else
			m->open(m->dev, fd, l->port);
	}
}

int vsock_mux_create(struct vsock_mux **out, const struct vsock_conf *conf,
		     char *err, size_t errlen)
{
	struct vsock_mux *m = calloc(1, sizeof(*m));
	int ret;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->conf = *conf;
	LIST_INIT(&m->handshakes);
	if (conf->kind == VSOCK_HYPERKIT)
		ret = vsock_hyperkit_setup(m, err, errlen);
	else
		ret = vsock_firecracker_setup(m, err, errlen);
	if (ret) {
		vsock_mux_destroy(m);
		return ret;
	}
	*out = m;
	return 0;
}

void vsock_mux_destroy(struct vsock_mux *m)
{
	unsigned int i;

	for (i = 0; i < m->nr_listeners; i++) {
		struct vsock_listener *l = &m->listeners[i];

		close(l->fd);
		unlink(l->path);
		if (l->link[0])
			unlink(l->link);
	}
	free(m);
}

int vsock_mux_start(struct vsock_mux *m, struct evloop *loop,
		    vsock_open_fn open, void *dev)
{
	unsigned int i;
	int ret;

	m->loop = loop;
	m->open = open;
	m->dev = dev;
	for (i = 0; i < m->nr_listeners; i++) {
		struct vsock_listener *l = &m->listeners[i];

		ret = evloop_add(loop, &l->h, l->fd, EPOLLIN, listener_accept,
				 l);
		if (ret) {
			while (i--)
				evloop_del(loop, &m->listeners[i].h);
			return ret;
		}
	}
	return 0;
}

void vsock_mux_stop(struct vsock_mux *m)
{
	unsigned int i;

	if (!m->loop)
		return;
	for (i = 0; i < m->nr_listeners; i++)
		evloop_del(m->loop, &m->listeners[i].h);
	while (!LIST_EMPTY(&m->handshakes))
		handshake_close(LIST_FIRST(&m->handshakes));
	m->loop = NULL;
}

void vsock_mux_tick(struct vsock_mux *m, int64_t now_ms)
{
	struct vsock_handshake *hs = LIST_FIRST(&m->handshakes), *next;

	for (; hs; hs = next) {
		next = LIST_NEXT(hs, link);
		if (now_ms >= hs->deadline) {
			warn_ratelimited("vsock: %s: host client sent no "
					 "handshake in time: closed",
					 m->conf.path);
			handshake_close(hs);
		}
	}
}

int vsock_mux_connect(struct vsock_mux *m, uint32_t port)
{
	char path[VSOCK_SUN_PATH_MAX * 2];
	struct sockaddr_un sa;
	int fd, ret;

	m->ops->host_path(m, port, path, sizeof(path));
	ret = fill_addr(&sa, path);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/*
	 * A Unix connect completes at once or fails: EAGAIN means the
	 * listener's backlog is full, which the guest sees as a refusal.
	 */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int vsock_mux_established(struct vsock_mux *m, int fd, uint32_t host_port)
{
	return m->ops->established ? m->ops->established(m, fd, host_port) : 0;
}
