/* epoll event loop; see evloop.h. */
#include "core/evloop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

int evloop_init(struct evloop *loop)
{
	loop->stop = false;
	loop->batch = NULL;
	loop->batch_len = 0;
	pthread_mutex_init(&loop->lock, NULL);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epfd < 0 ? -errno : 0;
}

void evloop_exit(struct evloop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}

static int epoll_set(struct evloop *loop, struct ev_handler *h, int op,
		     uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(loop->epfd, op, h->fd, &ev) < 0 ? -errno : 0;
}

int evloop_add(struct evloop *loop, struct ev_handler *h, int fd,
	       uint32_t events, ev_fn fn, void *opaque)
{
	int err;

	h->fd = fd;
	h->events = events;
	h->fn = fn;
	h->opaque = opaque;
	err = epoll_set(loop, h, EPOLL_CTL_ADD, events);
	if (!err)
		h->registered = true;
	return err;
}

/*
 * Pausing takes the fd out of the epoll set: with an empty event mask epoll
 * would still report hang-ups, over and over, for a pipe whose writer left.
 */
void evloop_modify(struct evloop *loop, struct ev_handler *h, uint32_t events)
{
	int err = 0;

	pthread_mutex_lock(&loop->lock);
	if (!h->registered || h->events == events)
		goto out;
	if (!events)
		err = epoll_set(loop, h, EPOLL_CTL_DEL, 0);
	else if (!h->events)
		err = epoll_set(loop, h, EPOLL_CTL_ADD, events);
	else
		err = epoll_set(loop, h, EPOLL_CTL_MOD, events);
	if (err)
		warn("epoll_ctl(fd %d): %s", h->fd, strerror(-err));
	else
		h->events = events;
out:
	pthread_mutex_unlock(&loop->lock);
}

void evloop_del(struct evloop *loop, struct ev_handler *h)
{
	int i;

	pthread_mutex_lock(&loop->lock);
	if (h->registered && h->events)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	h->registered = false;
	/*
	 * epoll may already have handed us an event for @h in this round;
	 * its owner may free @h as soon as we return.
	 */
	for (i = 0; i < loop->batch_len; i++)
		if (loop->batch[i].data.ptr == h)
			loop->batch[i].data.ptr = NULL;
	pthread_mutex_unlock(&loop->lock);
}

void evloop_run(struct evloop *loop)
{
	struct epoll_event events[32];

	while (!loop->stop) {
		int i, n = epoll_wait(loop->epfd, events, 32, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			warn("epoll_wait: %s", strerror(errno));
			return;
		}
		pthread_mutex_lock(&loop->lock);
		loop->batch = events;
		loop->batch_len = n;
		pthread_mutex_unlock(&loop->lock);
		for (i = 0; i < n; i++) {
			struct ev_handler *h;

			pthread_mutex_lock(&loop->lock);
			h = events[i].data.ptr;
			if (h && !h->registered)
				h = NULL;
			pthread_mutex_unlock(&loop->lock);
			if (h)
				h->fn(h, events[i].events);
		}
		pthread_mutex_lock(&loop->lock);
		loop->batch = NULL;
		loop->batch_len = 0;
		pthread_mutex_unlock(&loop->lock);
	}
}

void evloop_stop(struct evloop *loop)
{
	loop->stop = true;
}

int evloop_timer_add(struct evloop *loop, struct ev_handler *h, ev_fn fn,
		     void *opaque)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	int err;

	if (fd < 0)
		return -errno;
	err = evloop_add(loop, h, fd, EPOLLIN, fn, opaque);
	if (err)
		close(fd);
	return err;
}

void evloop_timer_arm(struct ev_handler *h, uint64_t delay_ms,
		      uint64_t interval_ms)
{
	struct itimerspec its = {
		.it_value = { delay_ms / 1000, (delay_ms % 1000) * 1000000 },
		.it_interval = { interval_ms / 1000,
				 (interval_ms % 1000) * 1000000 },
	};

	timerfd_settime(h->fd, 0, &its, NULL);
}

uint64_t evloop_timer_ack(struct ev_handler *h)
{
	uint64_t expirations = 0;

	if (read(h->fd, &expirations, sizeof(expirations)) < 0)
		return 0;
	return expirations;
}
