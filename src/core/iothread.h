/*
 * An I/O thread: a thread running its own event loop, for a device's queue
 * kick eventfds and its backend's fds, so that no guest I/O is served on a
 * vCPU thread or the main thread. Work that must not race with the
 * thread's callbacks (device activation, reset) is run on the thread
 * itself with iothread_call(), which waits for it.
 */
#ifndef KHYVE_CORE_IOTHREAD_H
#define KHYVE_CORE_IOTHREAD_H

#include <pthread.h>
#include <stdbool.h>

#include "core/evloop.h"

struct iothread_call_req;

struct iothread {
	struct evloop loop;
	pthread_t tid;
	bool running;
	char name[16];
	int wake_fd;                   /* eventfd: calls waiting, or stop */
	struct ev_handler wake;
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	struct iothread_call_req *calls; /* pending, under lock */
	bool stopping;
};

/* Start a thread named @name (at most 15 characters). 0 or -errno. */
int iothread_start(struct iothread *t, const char *name) __must_check;
/* Stop the thread and join it; its handlers must have been removed. */
void iothread_stop(struct iothread *t);
/*
 * Run fn(arg) on the thread and wait for it to return. From the thread
 * itself, fn runs at once.
 */
void iothread_call(struct iothread *t, void (*fn)(void *arg), void *arg);
/* Whether the caller is @t's thread. */
bool iothread_is_current(const struct iothread *t);

#endif
