/*
 * A vsock muxer: how host Unix sockets map to vsock ports. Two conventions
 * share this interface and most of the code:
 *  - HyperKit (vsock_hyperkit.c): guest → host port P through
 *    DIR/00000002.%08x; host → guest through DIR/connect and an 18-byte
 *    "%08x.%08x\n" header; guest_forwards listeners DIR/%08x.%08x.
 *  - Firecracker (vsock_firecracker.c): guest → host port P through
 *    PATH_P; host → guest through PATH and "CONNECT <port>\n", answered
 *    with "OK <hostport>\n" once the guest accepts.
 *
 * The muxer knows no virtio: it owns the listening sockets and the host
 * connections whose handshake is still being read, all watched by the
 * device's event loop, and hands each finished host connection to the
 * device through the open callback. Everything after vsock_mux_create()
 * runs on that loop's thread.
 */
#ifndef KHYVE_VSOCK_VSOCK_MUX_H
#define KHYVE_VSOCK_VSOCK_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "core/evloop.h"
#include "vsock/vsock_conf.h"
#include "vsock/vsock_proto.h"

/* A host client that does not finish its handshake in time is closed. */
#define VSOCK_HANDSHAKE_TIMEOUT_MS 5000
/* At most this many host connections in their handshake at once. */
#define VSOCK_MAX_HANDSHAKES 256

struct vsock_mux;

/*
 * The device takes a host connection for guest port @port: it owns @fd
 * from now on (and closes it if it cannot take it).
 */
typedef void (*vsock_open_fn)(void *dev, int fd, uint32_t port);

/* What differs between the conventions. */
struct vsock_mux_ops {
	/* Guest → host port @port: the Unix socket path into @path. */
	void (*host_path)(const struct vsock_mux *m, uint32_t port, char *path,
			  size_t len);
	/* Bytes to read next with @got already read (never over-read). */
	size_t (*want)(size_t got);
	/* The handshake so far: 1 done (*@port), 0 more, -EINVAL garbage. */
	int (*parse)(const struct vsock_mux *m, const char *buf, size_t len,
		     uint32_t *port);
	/* Optional: the guest accepted host port @host_port's connection. */
	int (*established)(struct vsock_mux *m, int fd, uint32_t host_port);
};

struct vsock_listener {
	struct vsock_mux *mux;
	int fd;
	struct ev_handler h;
	bool handshake; /* read a handshake; else forward to port */
	uint32_t port;
	char path[VSOCK_SUN_PATH_MAX];
	char link[VSOCK_SUN_PATH_MAX * 2]; /* guest.P symlink, or "" */
};

struct vsock_handshake {
	struct vsock_mux *mux;
	int fd;
	struct ev_handler h;
	char buf[VSOCK_CONNECT_MAX + 2];
	size_t got;
	int64_t deadline;
	LIST_ENTRY(vsock_handshake) link;
};

struct vsock_mux {
	const struct vsock_mux_ops *ops;
	struct vsock_conf conf;
	struct evloop *loop;
	vsock_open_fn open;
	void *dev;
	struct vsock_listener listeners[1 + VSOCK_MAX_FORWARDS];
	unsigned int nr_listeners;
	LIST_HEAD(, vsock_handshake) handshakes;
	unsigned int nr_handshakes;
};

/*
 * Create the muxer @conf describes and its listening sockets (stale
 * sockets at those paths are replaced; anything else there is an error).
 * 0, or -errno with one line in @err.
 */
int vsock_mux_create(struct vsock_mux **out, const struct vsock_conf *conf,
		     char *err, size_t errlen) __must_check;
/* Close the listeners, remove their paths and symlinks, free. */
void vsock_mux_destroy(struct vsock_mux *m);
/* Watch the listeners in @loop (from its thread); finished host connections go to @open. */
int vsock_mux_start(struct vsock_mux *m, struct evloop *loop,
		    vsock_open_fn open, void *dev) __must_check;
/* Stop watching; close the connections still in their handshake. */
void vsock_mux_stop(struct vsock_mux *m);
/* Guest → host port @port: a connected non-blocking socket, or -errno. */
int vsock_mux_connect(struct vsock_mux *m, uint32_t port) __must_check;
/* The guest accepted a host connection: the convention's reply, 0 or -errno. */
int vsock_mux_established(struct vsock_mux *m, int fd,
			  uint32_t host_port) __must_check;
/* Close handshakes older than VSOCK_HANDSHAKE_TIMEOUT_MS (@now_ms monotonic). */
void vsock_mux_tick(struct vsock_mux *m, int64_t now_ms);

/* For the two conventions: add a listener at @path (see vsock_listener). */
int vsock_mux_listen(struct vsock_mux *m, const char *path, bool handshake,
		     uint32_t port, char *err, size_t errlen) __must_check;
/* Monotonic milliseconds. */
int64_t vsock_mux_now_ms(void);

/* The conventions' set-up: ops and listeners for @m->conf. */
int vsock_hyperkit_setup(struct vsock_mux *m, char *err,
			 size_t errlen) __must_check;
int vsock_firecracker_setup(struct vsock_mux *m, char *err,
			    size_t errlen) __must_check;

#endif
