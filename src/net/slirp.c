/*
 * User-mode networking on libslirp: the guest sits on 10.0.2.0/24 behind a
 * NAT whose gateway and host address is 10.0.2.2, with DNS at 10.0.2.3
 * forwarded to the host's resolver, DHCP handing out 10.0.2.15 onwards, and
 * IPv6 on fec0::/64. Its TCP and UDP leave through ordinary host sockets:
 * no privilege needed. hostfwd= rules listen on host ports.
 *
 * Driving libslirp from epoll. libslirp is written for poll(): each round
 * the application calls slirp_pollfds_fill(), which names every socket and
 * the events wanted *now* (POLLOUT only while data waits, POLLIN only while
 * there is buffer room), then polls, then calls slirp_pollfds_poll() with
 * the results; fill also shortens the timeout for its TCP timers, which
 * only poll() runs. register_poll_fd (SlirpCb) names new sockets but not
 * the events wanted, so it cannot drive epoll alone. We therefore keep
 * one ev_handler per socket fd in the I/O thread's loop and re-sync it
 * after every change of slirp's state: after each pass (a socket was
 * ready, or the timeout fired), after each frame from the guest and after
 * each of slirp's timers. The sync runs fill, ADD/MODs the fds whose
 * events changed, parks (events 0) the fds fill left out, and arms one
 * timerfd for the timeout. A pass gives slirp the revents of the one fd
 * that fired. Both are O(sockets), as one round of QEMU's poll loop.
 *
 * Handlers are never freed while the loop runs: an fd slirp unregisters
 * may still sit in the loop's current batch of events; its handler is
 * unregistered (skipped by the loop) and reused if the fd number comes
 * back. slirp's own timers (SlirpCb timer_new/timer_mod, IPv6 router
 * advertisements) are timerfds in the same loop.
 *
 * Frames slirp sends to the guest are delivered at once when the device
 * has buffers; otherwise, and always while slirp_input() runs (rx never
 * re-enters the device from inside netbe_send()), they wait in a bounded
 * queue, delivered from an eventfd handler or netbe_rx_resume(). Dropping
 * would be legal (TCP retransmits) but slow.
 */
#include <errno.h>
#include <libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/evloop.h"
#include "net/netbe.h"

#define USER_RXQ_LEN 512
#define USER_NET "10.0.2.0"
#define USER_MASK "255.255.255.0"
#define USER_HOST "10.0.2.2"
#define USER_DNS "10.0.2.3"
#define USER_DHCP "10.0.2.15"

struct user_net;

struct user_fd {
	struct ev_handler h;
	struct user_net *u;
	uint32_t want; /* epoll events asked for in the last fill */
	bool added; /* evloop_add done and not deleted since */
	bool seen; /* named by the current fill */
};

struct user_timer {
	struct ev_handler h;
	struct user_net *u;
	SlirpTimerCb cb; /* timer_new */
	bool by_id; /* timer_new_opaque */
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms; /* pending before attach; -1 none */
	bool added;
	bool freed;
	struct user_timer *next;
};

struct user_frame {
	uint8_t *data;
	size_t len;
};

struct user_net {
	struct netbe *be;
	Slirp *slirp;
	struct evloop *loop;
	struct user_fd **fds; /* by fd number */
	int nr_fds;
	int *fill_fd; /* add_poll index → fd, for the current fill */
	int fill_n, fill_cap;
	int ready_fd; /* the fd whose revents a pass reports */
	int ready_ev; /* SLIRP_POLL_* */
	struct ev_handler poll_timer;
	struct ev_handler kick;
	int kick_fd;
	struct user_timer *timers;
	struct user_frame rxq[USER_RXQ_LEN];
	unsigned int rxq_head, rxq_len;
	bool in_input;
	uint8_t *txbuf;
};

static void sync_fds(struct user_net *u);

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- frames to the guest ---- */

static void rxq_drain(struct user_net *u)
{
	struct netbe *be = u->be;

	while (u->rxq_len && be->rx_ready(be->dev_opaque)) {
		struct user_frame *f = &u->rxq[u->rxq_head];
		struct iovec iov = { f->data, f->len };

		u->rxq_head = (u->rxq_head + 1) % USER_RXQ_LEN;
		u->rxq_len--;
		be->stats.rx_frames++;
		be->stats.rx_bytes += f->len;
		be->rx(be, &iov, 1, be->dev_opaque);
		free(f->data);
	}
}

static void kick(struct user_net *u)
{
	uint64_t one = 1;

	if (write(u->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		warn_ratelimited("user-mode networking: eventfd: %s",
				 strerror(errno));
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user_net *u = opaque;
	struct netbe *be = u->be;
	struct user_frame *f;

	if (!u->in_input && !u->rxq_len && u->loop &&
	    be->rx_ready(be->dev_opaque)) {
		struct iovec iov = { (void *)buf, len };

		be->stats.rx_frames++;
		be->stats.rx_bytes += len;
		be->rx(be, &iov, 1, be->dev_opaque);
		return (ssize_t)len;
	}
	if (u->rxq_len == USER_RXQ_LEN) {
		be->stats.rx_dropped++;
		return (ssize_t)len;
	}
	f = &u->rxq[(u->rxq_head + u->rxq_len) % USER_RXQ_LEN];
	f->data = malloc(len);
	if (!f->data) {
		be->stats.rx_dropped++;
		return (ssize_t)len;
	}
	memcpy(f->data, buf, len);
	f->len = len;
	u->rxq_len++;
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	warn_ratelimited("user-mode networking: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	struct timespec ts;

	(void)opaque;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- slirp's timers ---- */

static void timer_fired(struct ev_handler *h, uint32_t events)
{
	struct user_timer *t = h->opaque;
	struct user_net *u = t->u;

	(void)events;
	evloop_timer_ack(h);
	if (t->freed)
		return;
	if (t->by_id)
		slirp_handle_timer(u->slirp, t->id, t->cb_opaque);
	else
		t->cb(t->cb_opaque);
	sync_fds(u);
}

static void timer_arm(struct user_timer *t, int64_t expire_ms)
{
	int64_t delay;

	if (!t->added) {
		t->expire_ms = expire_ms;
		return;
	}
	delay = expire_ms - now_ms();
	/* A zero delay would disarm the timerfd. */
	evloop_timer_arm(&t->h, delay < 1 ? 1 : (uint64_t)delay, 0);
}

static int timer_attach(struct user_net *u, struct user_timer *t)
{
	int ret = evloop_timer_add(u->loop, &t->h, timer_fired, t);

	if (ret)
		return ret;
	t->added = true;
	if (t->expire_ms >= 0)
		timer_arm(t, t->expire_ms);
	return 0;
}

static struct user_timer *timer_alloc(struct user_net *u, void *cb_opaque)
{
	struct user_timer *t = calloc(1, sizeof(*t));

	if (!t) {
		warn("user-mode networking: out of memory for a timer");
		return NULL;
	}
	t->u = u;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->h.fd = -1;
	t->next = u->timers;
	u->timers = t;
	if (u->loop && timer_attach(u, t))
		warn("user-mode networking: cannot create a timer");
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct user_timer *t = timer_alloc(opaque, cb_opaque);

	if (t)
		t->cb = cb;
	return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct user_timer *t = timer_alloc(opaque, cb_opaque);

	if (t) {
		t->by_id = true;
		t->id = id;
	}
	return t;
}

/* Timers are freed at close: one may be in the loop's current batch. */
static void cb_timer_free(void *timer, void *opaque)
{
	struct user_timer *t = timer;

	(void)opaque;
	if (!t)
		return;
	t->freed = true;
	t->expire_ms = -1;
	if (t->added)
		evloop_timer_arm(&t->h, 0, 0);
}

static void cb_timer_mod(void *timer, int64_t expire_time, void *opaque)
{
	struct user_timer *t = timer;

	(void)opaque;
	if (t && !t->freed)
		timer_arm(t, expire_time);
}

/* ---- slirp's sockets ---- */

static struct user_fd *fd_get(struct user_net *u, int fd)
{
	if (fd < 0)
		return NULL;
	if (fd >= u->nr_fds) {
		int n = fd + 64;
		struct user_fd **p = realloc(u->fds, (size_t)n * sizeof(*p));

		if (!p)
			return NULL;
		memset(p + u->nr_fds, 0, (size_t)(n - u->nr_fds) * sizeof(*p));
		u->fds = p;
		u->nr_fds = n;
	}
	if (!u->fds[fd]) {
		u->fds[fd] = calloc(1, sizeof(struct user_fd));
		if (!u->fds[fd])
			return NULL;
		u->fds[fd]->u = u;
		u->fds[fd]->h.fd = fd;
	}
	return u->fds[fd];
}

static void fd_forget(struct user_net *u, int fd)
{
	struct user_fd *f = fd >= 0 && fd < u->nr_fds ? u->fds[fd] : NULL;

	if (!f || !f->added)
		return;
	evloop_del(u->loop, &f->h);
	f->added = false;
	f->want = 0;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	/* A new socket on a number we still watch: that watch is stale. */
	fd_forget(opaque, fd);
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
	fd_forget(opaque, fd);
}

static void cb_notify(void *opaque)
{
	kick(opaque);
}

static uint32_t to_epoll(int ev)
{
	return (ev & SLIRP_POLL_IN ? EPOLLIN : 0) |
	       (ev & SLIRP_POLL_OUT ? EPOLLOUT : 0) |
	       (ev & SLIRP_POLL_PRI ? EPOLLPRI : 0);
}

static int from_epoll(uint32_t ev)
{
	return (ev & EPOLLIN ? SLIRP_POLL_IN : 0) |
	       (ev & EPOLLOUT ? SLIRP_POLL_OUT : 0) |
	       (ev & EPOLLPRI ? SLIRP_POLL_PRI : 0) |
	       (ev & EPOLLERR ? SLIRP_POLL_ERR : 0) |
	       (ev & EPOLLHUP ? SLIRP_POLL_HUP : 0);
}

static int get_revents(int idx, void *opaque)
{
	struct user_net *u = opaque;

	if (idx < 0 || idx >= u->fill_n || u->fill_fd[idx] != u->ready_fd)
		return 0;
	return u->ready_ev;
}

/* One round of slirp's poll loop: @fd is ready with @events, or -1. */
static void pass(struct user_net *u, int fd, uint32_t events)
{
	u->ready_fd = fd;
	u->ready_ev = from_epoll(events);
	slirp_pollfds_poll(u->slirp, 0, get_revents, u);
	u->ready_fd = -1;
	sync_fds(u);
}

static void fd_ready(struct ev_handler *h, uint32_t events)
{
	struct user_fd *f = h->opaque;

	pass(f->u, h->fd, events);
}

static int add_poll(int fd, int events, void *opaque)
{
	struct user_net *u = opaque;
	struct user_fd *f = fd_get(u, fd);
	uint32_t want = to_epoll(events);
	int *p;

	if (u->fill_n == u->fill_cap) {
		int n = u->fill_cap ? 2 * u->fill_cap : 64;

		p = realloc(u->fill_fd, (size_t)n * sizeof(*p));
		if (!p)
			return -1;
		u->fill_fd = p;
		u->fill_cap = n;
	}
	if (!f) {
		warn_ratelimited(
			"user-mode networking: out of memory watching fd %d",
			fd);
		return -1;
	}
	if (f->seen)
		want |= f->want;
	f->seen = true;
	if (!f->added && want) {
		if (evloop_add(u->loop, &f->h, fd, want, fd_ready, f))
			warn_ratelimited(
				"user-mode networking: cannot watch fd %d", fd);
		else
			f->added = true;
	} else if (f->added && want != f->want) {
		evloop_modify(u->loop, &f->h, want);
	}
	f->want = want;
	u->fill_fd[u->fill_n] = fd;
	return u->fill_n++;
}

static void sync_fds(struct user_net *u)
{
	uint32_t timeout = UINT32_MAX;
	int fd;

	if (!u->loop)
		return;
	for (fd = 0; fd < u->nr_fds; fd++)
		if (u->fds[fd])
			u->fds[fd]->seen = false;
	u->fill_n = 0;
	slirp_pollfds_fill(u->slirp, &timeout, add_poll, u);
	for (fd = 0; fd < u->nr_fds; fd++) {
		struct user_fd *f = u->fds[fd];

		if (f && f->added && !f->seen && f->want) {
			evloop_modify(u->loop, &f->h, 0);
			f->want = 0;
		}
	}
	if (timeout == UINT32_MAX)
		evloop_timer_arm(&u->poll_timer, 0, 0);
	else
		evloop_timer_arm(&u->poll_timer, timeout ? timeout : 1, 0);
}

static void poll_timer_fired(struct ev_handler *h, uint32_t events)
{
	(void)events;
	evloop_timer_ack(h);
	pass(h->opaque, -1, 0);
}

static void kick_fired(struct ev_handler *h, uint32_t events)
{
	struct user_net *u = h->opaque;
	uint64_t n;

	(void)events;
	if (read(u->kick_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		warn_ratelimited("user-mode networking: eventfd: %s",
				 strerror(errno));
	rxq_drain(u);
	sync_fds(u);
}

static const SlirpCb user_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- the backend ---- */

static void user_free(struct user_net *u)
{
	int fd;

	if (u->slirp)
		slirp_cleanup(u->slirp);
	while (u->timers) {
		struct user_timer *t = u->timers;

		u->timers = t->next;
		if (t->added) {
			evloop_del(u->loop, &t->h);
			close(t->h.fd);
		}
		free(t);
	}
	for (fd = 0; fd < u->nr_fds; fd++)
		free(u->fds[fd]);
	while (u->rxq_len) {
		free(u->rxq[u->rxq_head].data);
		u->rxq_head = (u->rxq_head + 1) % USER_RXQ_LEN;
		u->rxq_len--;
	}
	if (u->kick_fd >= 0)
		close(u->kick_fd);
	free(u->fds);
	free(u->fill_fd);
	free(u->txbuf);
	free(u);
}

static int add_hostfwd(struct user_net *u, const struct hostfwd *fw, char *err,
		       size_t errlen)
{
	struct in_addr host = { fw->host_addr }, guest = { fw->guest_addr };
	char hs[INET_ADDRSTRLEN], gs[INET_ADDRSTRLEN];
	int e;

	if (!guest.s_addr)
		inet_pton(AF_INET, USER_DHCP, &guest);
	errno = 0;
	if (!slirp_add_hostfwd(u->slirp, fw->udp, host, fw->host_port, guest,
			       fw->guest_port))
		return 0;
	e = errno ? errno : EADDRINUSE;
	inet_ntop(AF_INET, &host, hs, sizeof(hs));
	inet_ntop(AF_INET, &guest, gs, sizeof(gs));
	snprintf(
		err, errlen,
		"virtio-net: hostfwd=%s:%s:%u-%s:%u: cannot listen on host port %u: %s",
		fw->udp ? "udp" : "tcp", hs, fw->host_port, gs, fw->guest_port,
		fw->host_port, strerror(e));
	return -e;
}

static int user_open(struct netbe *be, const struct netbe_options *o, char *err,
		     size_t errlen)
{
	SlirpConfig cfg = {
		.version = 4,
		.in_enabled = true,
		.in6_enabled = true,
		.vprefix_len = 64,
	};
	struct user_net *u;
	unsigned int i;
	int ret;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->be = be;
	u->ready_fd = -1;
	u->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	u->txbuf = malloc(be->max_frame);
	if (u->kick_fd < 0 || !u->txbuf) {
		ret = u->kick_fd < 0 ? -errno : -ENOMEM;
		snprintf(err, errlen, "virtio-net: user: %s", strerror(-ret));
		goto err_free;
	}
	inet_pton(AF_INET, USER_NET, &cfg.vnetwork);
	inet_pton(AF_INET, USER_MASK, &cfg.vnetmask);
	inet_pton(AF_INET, USER_HOST, &cfg.vhost);
	inet_pton(AF_INET, USER_DHCP, &cfg.vdhcp_start);
	inet_pton(AF_INET, USER_DNS, &cfg.vnameserver);
	inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
	inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
	inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
	cfg.if_mtu = be->mtu;
	cfg.if_mru = be->mtu;
	u->slirp = slirp_new(&cfg, &user_callbacks, u);
	if (!u->slirp) {
		ret = -ENOMEM;
		snprintf(err, errlen,
			 "virtio-net: user: libslirp failed to start");
		goto err_free;
	}
	for (i = 0; i < o->nr_hostfwd; i++) {
		ret = add_hostfwd(u, &o->hostfwd[i], err, errlen);
		if (ret)
			goto err_free;
	}
	be->priv = u;
	be->vnet_hdr_len = 0;
	be->offloads = false;
	be->link_up = true;
	return 0;

err_free:
	user_free(u);
	return ret;
}

static int user_attach(struct netbe *be, struct evloop *loop)
{
	struct user_net *u = be->priv;
	struct user_timer *t;
	int ret;

	u->loop = loop;
	ret = evloop_timer_add(loop, &u->poll_timer, poll_timer_fired, u);
	if (ret)
		goto err_loop;
	ret = evloop_add(loop, &u->kick, u->kick_fd, EPOLLIN, kick_fired, u);
	if (ret)
		goto err_timer;
	for (t = u->timers; t; t = t->next) {
		if (t->freed || t->added)
			continue;
		ret = timer_attach(u, t);
		if (ret)
			goto err_kick;
	}
	sync_fds(u);
	return 0;

err_kick:
	for (t = u->timers; t; t = t->next) {
		if (t->added) {
			evloop_del(loop, &t->h);
			close(t->h.fd);
			t->added = false;
		}
	}
	evloop_del(loop, &u->kick);
err_timer:
	evloop_del(loop, &u->poll_timer);
	close(u->poll_timer.fd);
err_loop:
	u->loop = NULL;
	return ret;
}

static int user_send(struct netbe *be, const struct iovec *iov,
		     unsigned int cnt)
{
	struct user_net *u = be->priv;
	size_t len = netbe_iov_len(iov, cnt);
	const uint8_t *frame = u->txbuf;

	if (len < NETBE_ETH_HLEN || len > be->max_frame) {
		be->stats.tx_malformed++;
		return 0;
	}
	if (cnt == 1)
		frame = iov[0].iov_base;
	else
		netbe_iov_copy(iov, cnt, 0, u->txbuf, len);
	be->stats.tx_frames++;
	be->stats.tx_bytes += len;
	u->in_input = true;
	slirp_input(u->slirp, frame, (int)len);
	u->in_input = false;
	if (u->rxq_len)
		kick(u);
	sync_fds(u);
	return 0;
}

static void user_rx_resume(struct netbe *be)
{
	rxq_drain(be->priv);
}

static int user_set_offloads(struct netbe *be, unsigned int offloads)
{
	(void)be;
	return offloads ? -EOPNOTSUPP : 0;
}

static void user_close(struct netbe *be)
{
	struct user_net *u = be->priv;
	int fd;

	if (!u)
		return;
	if (u->loop) {
		for (fd = 0; fd < u->nr_fds; fd++)
			fd_forget(u, fd);
		evloop_del(u->loop, &u->kick);
		evloop_del(u->loop, &u->poll_timer);
		close(u->poll_timer.fd);
	}
	user_free(u);
	be->priv = NULL;
}

const struct netbe_ops netbe_user_ops = {
	.name = "user",
	.open = user_open,
	.attach = user_attach,
	.send = user_send,
	.rx_resume = user_rx_resume,
	.set_offloads = user_set_offloads,
	.close = user_close,
};
