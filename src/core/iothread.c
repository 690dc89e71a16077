/*
 * I/O threads. Calls from other threads are queued under the lock and
 * signalled through an eventfd the thread's own loop watches, so a call
 * runs between two event callbacks, never in the middle of one.
 */
#include "core/iothread.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct iothread_call_req {
	void (*fn)(void *arg);
	void *arg;
	bool done;
	struct iothread_call_req *next;
};

static void run_calls(struct ev_handler *h, uint32_t events)
{
	struct iothread *t = h->opaque;
	uint64_t count;

	(void)events;
	if (read(t->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		warn("%s: wake eventfd: %s", t->name, strerror(errno));
	pthread_mutex_lock(&t->lock);
	while (t->calls) {
		struct iothread_call_req *c = t->calls;

		t->calls = c->next;
		pthread_mutex_unlock(&t->lock);
		c->fn(c->arg);
		pthread_mutex_lock(&t->lock);
		c->done = true;
		pthread_cond_broadcast(&t->done_cond);
	}
	if (t->stopping)
		evloop_stop(&t->loop);
	pthread_mutex_unlock(&t->lock);
}

static void *iothread_main(void *arg)
{
	struct iothread *t = arg;

	pthread_setname_np(pthread_self(), t->name);
	evloop_run(&t->loop);
	return NULL;
}

int iothread_start(struct iothread *t, const char *name)
{
	int ret;

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	ret = evloop_init(&t->loop);
	if (ret)
		return ret;
	t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->wake_fd < 0) {
		ret = -errno;
		goto err_loop;
	}
	ret = evloop_add(&t->loop, &t->wake, t->wake_fd, EPOLLIN, run_calls, t);
	if (ret)
		goto err_fd;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->done_cond, NULL);
	ret = -pthread_create(&t->tid, NULL, iothread_main, t);
	if (ret)
		goto err_sync;
	t->running = true;
	return 0;

err_sync:
	pthread_cond_destroy(&t->done_cond);
	pthread_mutex_destroy(&t->lock);
	evloop_del(&t->loop, &t->wake);
err_fd:
	close(t->wake_fd);
err_loop:
	evloop_exit(&t->loop);
	return ret;
}

static void wake(struct iothread *t)
{
	uint64_t one = 1;

	if (write(t->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		warn("%s: wake eventfd: %s", t->name, strerror(errno));
}

bool iothread_is_current(const struct iothread *t)
{
	return t->running && pthread_equal(pthread_self(), t->tid);
}

void iothread_call(struct iothread *t, void (*fn)(void *arg), void *arg)
{
	struct iothread_call_req c = { .fn = fn, .arg = arg };

	if (!t->running || iothread_is_current(t)) {
		fn(arg);
		return;
	}
	pthread_mutex_lock(&t->lock);
	c.next = t->calls;
	t->calls = &c;
	wake(t);
	while (!c.done)
		pthread_cond_wait(&t->done_cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

void iothread_stop(struct iothread *t)
{
	if (!t->running)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	wake(t);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->tid, NULL);
	t->running = false;
	evloop_del(&t->loop, &t->wake);
	close(t->wake_fd);
	pthread_cond_destroy(&t->done_cond);
	pthread_mutex_destroy(&t->lock);
	evloop_exit(&t->loop);
}
