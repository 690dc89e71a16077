/*
 * The VPNKit backend: khyve is the client of VPNKit's ethernet protocol on
 * a stream Unix socket (SPEC.md §4; messages in vpnkit_codec.c).
 *
 * The handshake runs blocking at open, with a timeout, so that every
 * failure (no socket, not VPNKit, wrong version, a disconnect reply) is
 * one line before the guest starts. Then the socket is non-blocking and
 * owned by the I/O thread: received bytes collect in an input buffer and
 * are cut into frames; a frame is delivered only when the device has
 * buffers, otherwise reading pauses (the socket's own buffer is the
 * backpressure). Frames to send go straight to the socket; what it does
 * not take waits in an output buffer drained on EPOLLOUT, and while that
 * is full send() says -EAGAIN.
 *
 * The server cannot be trusted to frame correctly: a length of 0, one
 * shorter than an ethernet header or longer than the max_packet_size it
 * announced is skipped (the stream stays in step) and counted. EOF or an
 * error takes the link down for good: the device's link callback hears it
 * once (HyperKit presses the power button then).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/evloop.h"
#include "net/netbe.h"
#include "net/vpnkit_codec.h"

#define VPNKIT_HANDSHAKE_TIMEOUT_S 10
#define VPNKIT_BUF (256 * 1024)
#define VPNKIT_MIN_FRAME 60 /* shorter frames are zero-padded, as HyperKit */
#define VPNKIT_READS_PER_EVENT 16
#define VPNKIT_MAX_IOV 64

/* Our commit id in the Init message: informational for the server. */
static const char vpnkit_commit[] = "0000000000000000000000000000000000000000";

struct vpnkit {
	struct netbe *be;
	int fd;
	struct evloop *loop;
	struct ev_handler h;
	uint16_t max_packet_size;
	bool rx_paused;
	bool dead;
	bool want_tx_resume;
	uint8_t *in; /* received bytes in[in_off..in_len) */
	size_t in_off, in_len;
	size_t skip; /* bytes of a rejected frame still to discard */
	uint8_t *out; /* bytes to send out[out_off..out_len) */
	size_t out_off, out_len;
};

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Keep only printable ASCII of a server's message for our one line. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

static int handshake(struct vpnkit *v, const struct netbe_options *o,
		     struct vpnkit_reply *reply, char *err, size_t errlen)
{
	uint8_t init[VPNKIT_INIT_LEN], cmdbuf[VPNKIT_COMMAND_LEN];
	uint8_t replybuf[VPNKIT_REPLY_LEN];
	struct vpnkit_command cmd = { .type = VPNKIT_CMD_ETHERNET };
	struct vpnkit_init srv;
	const char *what;
	int ret;

	vpnkit_encode_init(init, VPNKIT_VERSION, vpnkit_commit);
	what = "sending Init";
	ret = write_full(v->fd, init, sizeof(init));
	if (ret)
		goto err_io;
	what = "reading the server's Init";
	ret = read_full(v->fd, init, sizeof(init));
	if (ret)
		goto err_io;
	if (vpnkit_decode_init(init, &srv)) {
		snprintf(
			err, errlen,
			"virtio-vpnkit: %s: not a VPNKit socket (bad magic in its Init)",
			o->path);
		return -EPROTO;
	}
	if (srv.version != VPNKIT_VERSION) {
		snprintf(
			err, errlen,
			"virtio-vpnkit: %s: the server speaks protocol version %u, khyve speaks %u",
			o->path, srv.version, VPNKIT_VERSION);
		return -EPROTONOSUPPORT;
	}

	/* No uuid=: all NUL, the server picks (SPEC.md §4). */
	if (o->has_uuid)
		memcpy(cmd.uuid, o->uuid, VPNKIT_UUID_LEN);
	if (o->has_preferred_ipv4) {
		cmd.type = VPNKIT_CMD_PREFERRED_IPV4;
		cmd.preferred_ipv4 = ntohl(o->preferred_ipv4);
	}
	vpnkit_encode_command(cmdbuf, &cmd);
	what = "sending the command";
	ret = write_full(v->fd, cmdbuf, sizeof(cmdbuf));
	if (ret)
		goto err_io;
	what = "reading the reply";
	ret = read_full(v->fd, replybuf, sizeof(replybuf));
	if (ret)
		goto err_io;
	if (vpnkit_decode_reply(replybuf, reply)) {
		snprintf(
			err, errlen,
			"virtio-vpnkit: %s: unknown reply type %u from the server",
			o->path, replybuf[0]);
		return -EPROTO;
	}
	if (reply->type == VPNKIT_REPLY_DISCONNECT) {
		sanitize(reply->message);
		snprintf(
			err, errlen,
			"virtio-vpnkit: %s: the server refused the interface: %s",
			o->path, reply->message);
		return -ECONNREFUSED;
	}
	if (reply->max_packet_size < VPNKIT_MIN_FRAME || reply->mtu < 68) {
		snprintf(
			err, errlen,
			"virtio-vpnkit: %s: the server offered mtu %u, max packet size %u",
			o->path, reply->mtu, reply->max_packet_size);
		return -EPROTO;
	}
	return 0;

err_io:
	snprintf(err, errlen, "virtio-vpnkit: %s: %s: %s", o->path, what,
		 ret == -ECONNRESET ? "the server closed the connection" :
		 ret == -ETIMEDOUT  ? "no answer from the server" :
				      strerror(-ret));
	return ret;
}

static int write_macfile(const char *path, const uint8_t mac[6], char *err,
			 size_t errlen)
{
	size_t n = strlen(path) + 5;
	char *tmp = malloc(n);
	FILE *f = NULL;
	int ret = -ENOMEM;

	if (!tmp)
		goto err_out;
	snprintf(tmp, n, "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		goto err_errno;
	fprintf(f, "%02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2],
		mac[3], mac[4], mac[5]);
	if (fclose(f))
		goto err_unlink;
	if (rename(tmp, path))
		goto err_unlink;
	free(tmp);
	return 0;

err_unlink:
	ret = -errno;
	unlink(tmp);
	goto err_out;
err_errno:
	ret = -errno;
err_out:
	snprintf(err, errlen, "virtio-vpnkit: macfile %s: %s", path,
		 strerror(-ret));
	free(tmp);
	return ret;
}

static int vpnkit_open(struct netbe *be, const struct netbe_options *o,
		       char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = VPNKIT_HANDSHAKE_TIMEOUT_S };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct vpnkit_reply reply;
	struct vpnkit *v;
	int ret;

	if (strlen(o->path) >= sizeof(addr.sun_path)) {
		snprintf(err, errlen, "virtio-vpnkit: %s: path too long",
			 o->path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, o->path);
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->be = be;
	v->in = malloc(VPNKIT_BUF);
	v->out = malloc(VPNKIT_BUF);
	ret = -ENOMEM;
	if (!v->in || !v->out)
		goto err_free;
	v->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (v->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "virtio-vpnkit: socket: %s",
			 strerror(-ret));
		goto err_free;
	}
	if (connect(v->fd, (struct sockaddr *)&addr, sizeof(addr))) {
		ret = -errno;
		snprintf(err, errlen, "virtio-vpnkit: %s: %s", o->path,
			 strerror(-ret));
		goto err_close;
	}
	setsockopt(v->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(v->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	ret = handshake(v, o, &reply, err, errlen);
	if (ret)
		goto err_close;
	if (o->macfile) {
		ret = write_macfile(o->macfile, reply.mac, err, errlen);
		if (ret)
			goto err_close;
	}
	if (fcntl(v->fd, F_SETFL, fcntl(v->fd, F_GETFL) | O_NONBLOCK)) {
		ret = -errno;
		snprintf(err, errlen, "virtio-vpnkit: fcntl: %s",
			 strerror(-ret));
		goto err_close;
	}
	v->max_packet_size = reply.max_packet_size;
	memcpy(be->mac, reply.mac, 6);
	be->has_mac = true;
	be->mac_assigned = true;
	be->mtu = reply.mtu;
	be->max_frame = reply.max_packet_size;
	be->vnet_hdr_len = 0;
	be->offloads = false;
	be->link_up = true;
	be->priv = v;
	return 0;

err_close:
	close(v->fd);
err_free:
	free(v->in);
	free(v->out);
	free(v);
	return ret;
}

static void update_events(struct vpnkit *v)
{
	uint32_t ev = 0;

	if (v->dead || !v->loop)
		return;
	if (!v->rx_paused)
		ev |= EPOLLIN;
	if (v->out_len > v->out_off)
		ev |= EPOLLOUT;
	evloop_modify(v->loop, &v->h, ev);
}

static void go_down(struct vpnkit *v, const char *why)
{
	struct netbe *be = v->be;

	if (v->dead)
		return;
	v->dead = true;
	warn("virtio-vpnkit: connection lost (%s): link down", why);
	if (v->loop)
		evloop_del(v->loop, &v->h);
	be->link_up = false;
	if (be->link)
		be->link(be->dev_opaque, false);
}

/* Cut frames out of the input buffer while the device takes them. */
static void deliver(struct vpnkit *v)
{
	struct netbe *be = v->be;

	while (!v->dead) {
		size_t avail = v->in_len - v->in_off;
		struct iovec iov;
		uint16_t len;

		if (v->skip) {
			size_t n = avail < v->skip ? avail : v->skip;

			v->in_off += n;
			v->skip -= n;
			if (v->skip)
				break;
			continue;
		}
		if (avail < VPNKIT_FRAME_HDR_LEN)
			break;
		len = vpnkit_decode_frame_hdr(v->in + v->in_off);
		if (!vpnkit_frame_len_ok(len, v->max_packet_size)) {
			be->stats.rx_malformed++;
			warn_ratelimited(
				"virtio-vpnkit: dropped a %u-byte frame from the server (max %u)",
				len, v->max_packet_size);
			v->in_off += VPNKIT_FRAME_HDR_LEN;
			v->skip = len;
			continue;
		}
		if (avail < VPNKIT_FRAME_HDR_LEN + (size_t)len)
			break;
		if (!be->rx_ready(be->dev_opaque)) {
			v->rx_paused = true;
			break;
		}
		iov.iov_base = v->in + v->in_off + VPNKIT_FRAME_HDR_LEN;
		iov.iov_len = len;
		v->in_off += VPNKIT_FRAME_HDR_LEN + (size_t)len;
		be->stats.rx_frames++;
		be->stats.rx_bytes += len;
		be->rx(be, &iov, 1, be->dev_opaque);
	}
	if (v->in_off == v->in_len) {
		v->in_off = v->in_len = 0;
	} else if (v->in_off > VPNKIT_BUF / 2) {
		memmove(v->in, v->in + v->in_off, v->in_len - v->in_off);
		v->in_len -= v->in_off;
		v->in_off = 0;
	}
}

static void do_read(struct vpnkit *v)
{
	int i;

	for (i = 0; i < VPNKIT_READS_PER_EVENT && !v->rx_paused && !v->dead;
	     i++) {
		ssize_t n;

		if (v->in_len == VPNKIT_BUF) {
			memmove(v->in, v->in + v->in_off,
				v->in_len - v->in_off);
			v->in_len -= v->in_off;
			v->in_off = 0;
		}
		/* Cannot happen: a whole frame always fits in half. */
		if (v->in_len == VPNKIT_BUF)
			return;
		n = read(v->fd, v->in + v->in_len, VPNKIT_BUF - v->in_len);
		if (n == 0) {
			go_down(v, "end of file");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				go_down(v, strerror(errno));
			return;
		}
		v->in_len += (size_t)n;
		deliver(v);
	}
}

static int flush_out(struct vpnkit *v)
{
	while (v->out_off < v->out_len) {
		ssize_t n = send(v->fd, v->out + v->out_off,
				 v->out_len - v->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return -EAGAIN;
			return -errno;
		}
		v->out_off += (size_t)n;
	}
	v->out_off = v->out_len = 0;
	return 0;
}

static void vpnkit_event(struct ev_handler *h, uint32_t events)
{
	struct vpnkit *v = h->opaque;
	struct netbe *be = v->be;
	int ret;

	if (events & EPOLLOUT) {
		ret = flush_out(v);
		if (ret && ret != -EAGAIN) {
			go_down(v, strerror(-ret));
			return;
		}
		if (!ret && v->want_tx_resume) {
			v->want_tx_resume = false;
			be->tx_resume(be->dev_opaque);
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		do_read(v);
	update_events(v);
}

static int vpnkit_attach(struct netbe *be, struct evloop *loop)
{
	struct vpnkit *v = be->priv;
	int ret;

	ret = evloop_add(loop, &v->h, v->fd, EPOLLIN, vpnkit_event, v);
	if (!ret)
		v->loop = loop;
	return ret;
}

static void append_out(struct vpnkit *v, const uint8_t *p, size_t n)
{
	memcpy(v->out + v->out_len, p, n);
	v->out_len += n;
}

static int vpnkit_send(struct netbe *be, const struct iovec *iov,
		       unsigned int cnt)
{
	static const uint8_t pad[VPNKIT_MIN_FRAME];
	struct iovec wiov[VPNKIT_MAX_IOV];
	struct vpnkit *v = be->priv;
	size_t len = netbe_iov_len(iov, cnt), padlen = 0, total, sent = 0;
	uint8_t hdr[VPNKIT_FRAME_HDR_LEN];
	unsigned int i, n = 0;
	ssize_t r;
	int ret;

	if (!vpnkit_frame_len_ok(len, v->max_packet_size)) {
		be->stats.tx_malformed++;
		return 0;
	}
	if (v->dead) {
		be->stats.tx_dropped++;
		return 0;
	}
	if (len < VPNKIT_MIN_FRAME && v->max_packet_size >= VPNKIT_MIN_FRAME)
		padlen = VPNKIT_MIN_FRAME - len;
	total = VPNKIT_FRAME_HDR_LEN + len + padlen;
	if (v->out_len + total > VPNKIT_BUF) {
		if (v->out_off) {
			memmove(v->out, v->out + v->out_off,
				v->out_len - v->out_off);
			v->out_len -= v->out_off;
			v->out_off = 0;
		}
		if (v->out_len + total > VPNKIT_BUF) {
			if (!be->tx_resume) {
				be->stats.tx_dropped++;
				return 0;
			}
			v->want_tx_resume = true;
			return -EAGAIN;
		}
	}
	vpnkit_encode_frame_hdr(hdr, (uint16_t)(len + padlen));
	be->stats.tx_frames++;
	be->stats.tx_bytes += len;

	if (v->out_len == v->out_off && cnt + 2 <= VPNKIT_MAX_IOV) {
		struct msghdr msg = { .msg_iov = wiov };

		wiov[n++] = (struct iovec){ hdr, sizeof(hdr) };
		for (i = 0; i < cnt; i++)
			wiov[n++] = iov[i];
		if (padlen)
			wiov[n++] = (struct iovec){ (void *)pad, padlen };
		msg.msg_iovlen = n;
		do {
			r = sendmsg(v->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		} while (r < 0 && errno == EINTR);
		if (r < 0 && errno != EAGAIN) {
			go_down(v, strerror(errno));
			return 0;
		}
		sent = r < 0 ? 0 : (size_t)r;
		if (sent == total)
			return 0;
	}
	/* Queue what the socket did not take, in order. */
	if (sent < sizeof(hdr))
		append_out(v, hdr + sent, sizeof(hdr) - sent);
	sent = sent > sizeof(hdr) ? sent - sizeof(hdr) : 0;
	for (i = 0; i < cnt; i++) {
		if (sent >= iov[i].iov_len) {
			sent -= iov[i].iov_len;
			continue;
		}
		append_out(v, (const uint8_t *)iov[i].iov_base + sent,
			   iov[i].iov_len - sent);
		sent = 0;
	}
	if (padlen)
		append_out(v, pad + (sent < padlen ? sent : padlen),
			   sent < padlen ? padlen - sent : 0);
	ret = flush_out(v);
	if (ret == -EAGAIN)
		update_events(v);
	else if (ret)
		go_down(v, strerror(-ret));
	return 0;
}

static void vpnkit_rx_resume(struct netbe *be)
{
	struct vpnkit *v = be->priv;

	if (!v->rx_paused || v->dead)
		return;
	v->rx_paused = false;
	deliver(v);
	update_events(v);
}

static int vpnkit_set_offloads(struct netbe *be, unsigned int offloads)
{
	(void)be;
	return offloads ? -EOPNOTSUPP : 0;
}

static void vpnkit_close(struct netbe *be)
{
	struct vpnkit *v = be->priv;

	if (!v)
		return;
	if (v->loop && !v->dead)
		evloop_del(v->loop, &v->h);
	close(v->fd);
	free(v->in);
	free(v->out);
	free(v);
	be->priv = NULL;
}

const struct netbe_ops netbe_vpnkit_ops = {
	.name = "vpnkit",
	.open = vpnkit_open,
	.attach = vpnkit_attach,
	.send = vpnkit_send,
	.rx_resume = vpnkit_rx_resume,
	.set_offloads = vpnkit_set_offloads,
	.close = vpnkit_close,
};
