/*
 * The event loop: a callback that deletes and frees another handler whose
 * event epoll already returned in the same round must not see that
 * handler called (it was a use-after-free: a libslirp socket freed by one
 * callback, then dispatched by the next).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/evloop.h"

struct pair {
	struct evloop loop;
	struct ev_handler *h[2];
	int fd[2];
	int calls;
};

static void on_event(struct ev_handler *h, uint32_t events)
{
	struct pair *p = h->opaque;
	struct ev_handler *other = h == p->h[0] ? p->h[1] : p->h[0];

	(void)events;
	p->calls++;
	/* Whoever runs first removes and frees the other, then stops. */
	evloop_del(&p->loop, other);
	free(other);
	p->h[h == p->h[0] ? 1 : 0] = NULL;
	evloop_stop(&p->loop);
}

static void test_delete_other_in_same_round(void **state)
{
	struct pair p = { .calls = 0 };
	uint64_t one = 1;
	int i;

	(void)state;
	assert_int_equal(evloop_init(&p.loop), 0);
	for (i = 0; i < 2; i++) {
		p.fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		p.h[i] = calloc(1, sizeof(*p.h[i]));
		assert_int_equal(evloop_add(&p.loop, p.h[i], p.fd[i], EPOLLIN,
					    on_event, &p),
				 0);
		/* Both readable before the loop runs: one epoll round. */
		assert_int_equal(write(p.fd[i], &one, sizeof(one)), 8);
	}
	evloop_run(&p.loop);
	assert_int_equal(p.calls, 1);
	for (i = 0; i < 2; i++) {
		if (p.h[i]) {
			evloop_del(&p.loop, p.h[i]);
			free(p.h[i]);
		}
		close(p.fd[i]);
	}
	evloop_exit(&p.loop);
}

static void note_call(struct ev_handler *h, uint32_t events)
{
	int *calls = h->opaque;

	(void)events;
	(*calls)++;
}

static void test_deleted_handler_not_called(void **state)
{
	struct evloop loop;
	struct ev_handler h, stopper;
	struct epoll_event ev;
	uint64_t one = 1;
	int fd = eventfd(0, EFD_NONBLOCK), calls = 0;

	(void)state;
	assert_int_equal(evloop_init(&loop), 0);
	assert_int_equal(evloop_add(&loop, &h, fd, EPOLLIN, note_call, &calls), 0);
	assert_int_equal(write(fd, &one, sizeof(one)), 8);
	evloop_del(&loop, &h);
	/* Only the timer may come out of the epoll set, not the deleted fd. */
	assert_int_equal(evloop_timer_add(&loop, &stopper, note_call, &calls), 0);
	evloop_timer_arm(&stopper, 1, 0);
	assert_int_equal(epoll_wait(loop.epfd, &ev, 1, 1000), 1);
	assert_ptr_equal(ev.data.ptr, &stopper);
	assert_int_equal(calls, 0);
	evloop_del(&loop, &stopper);
	close(stopper.fd);
	close(fd);
	evloop_exit(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delete_other_in_same_round),
		cmocka_unit_test(test_deleted_handler_not_called),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
