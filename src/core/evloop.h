/*
 * The main thread's event loop, in the spirit of redis's ae.c: one epoll set,
 * each watched file descriptor with a callback. Consoles, signals
 * (signalfd), timers (timerfd) and the VM's stop eventfd all live here, so
 * nothing but the vCPU threads ever blocks on the guest.
 *
 * struct ev_handler is owned by the caller (usually embedded in the object
 * that owns the fd) and must stay alive while registered.
 */
#ifndef KHYVE_CORE_EVLOOP_H
#define KHYVE_CORE_EVLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

struct ev_handler;
typedef void (*ev_fn)(struct ev_handler *h, uint32_t events);

struct ev_handler {
	int fd;
	uint32_t events; /* EPOLLIN/EPOLLOUT currently watched */
	bool registered;
	ev_fn fn;
	void *opaque;
};

struct epoll_event;

struct evloop {
	int epfd;
	bool stop;
	pthread_mutex_t lock; /* handlers are paused from vCPU threads */
	/* The batch being dispatched: evloop_del() drops its handler from it. */
	struct epoll_event *batch;
	int batch_len;
};

int evloop_init(struct evloop *loop) __must_check;
void evloop_exit(struct evloop *loop);
/* Watch @h->fd for @events, calling @fn; 0 or -errno. */
int evloop_add(struct evloop *loop, struct ev_handler *h, int fd,
	       uint32_t events, ev_fn fn, void *opaque) __must_check;
/* Change the watched events (0 pauses the fd without removing it). Thread-safe. */
void evloop_modify(struct evloop *loop, struct ev_handler *h, uint32_t events);
/*
 * Stop watching @h. Its callback is not called again, not even for an
 * event already fetched in the current dispatch round, so a callback may
 * delete and free other handlers.
 */
void evloop_del(struct evloop *loop, struct ev_handler *h);
/* Dispatch events until evloop_stop(). */
void evloop_run(struct evloop *loop);
/* Make evloop_run() return after the current dispatch round. */
void evloop_stop(struct evloop *loop);
/*
 * A one-shot (or periodic when @interval_ms) timer as a timerfd watched by
 * the loop; @h is armed with evloop_timer_arm. 0 or -errno.
 */
int evloop_timer_add(struct evloop *loop, struct ev_handler *h, ev_fn fn,
		     void *opaque) __must_check;
void evloop_timer_arm(struct ev_handler *h, uint64_t delay_ms,
		      uint64_t interval_ms);
/* Consume a timer's expirations (call from its callback); returns how many. */
uint64_t evloop_timer_ack(struct ev_handler *h);

#endif
