/*
 * The io_uring engine (liburing): reads and writes as READV/WRITEV, flush
 * as FSYNC(DATASYNC), discard and write-zeroes as FALLOCATE, all started
 * from the device's thread without blocking it. Completions raise an
 * eventfd registered with the ring (blk_event_fd()), which the device's
 * event loop watches; blk_complete() then reaps them.
 *
 * At most depth requests are in the kernel at once, each in a slot that
 * keeps its progress; one slot has at most one SQE or CQE outstanding, so
 * neither the SQ nor the CQ (twice the SQ) can overflow. Requests beyond
 * depth wait in a FIFO linked through blk_req.priv[3] until a slot frees.
 * Completions the kernel finished inline while taking the SQEs are run
 * right after submitting, without waiting for the eventfd.
 * A short read or write is resubmitted for the rest, -EAGAIN is retried,
 * and a kernel that refuses to take the SQEs (-EAGAIN, -EBUSY from
 * io_uring_enter) leaves them in the SQ: the engine raises its own
 * eventfd so that blk_complete() runs again and retries.
 *
 * Block devices have no io_uring discard or zero-out in liburing 2.3:
 * those go through the synchronous helpers (ioctls), as does the
 * write-zeroes fallback of file systems without FALLOC_FL_ZERO_RANGE.
 */
#include "block/blk.h"

#include <errno.h>
#include <limits.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define URING_MAX_DEPTH 4096
#define NO_SLOT UINT_MAX

struct uring_slot {
	struct blk_req *req;
	uint64_t done; /* bytes read or written so far */
	struct iovec *rest; /* what is left after a short transfer */
	unsigned int rest_cnt;
	unsigned int next_free;
};

struct uring {
	struct io_uring ring;
	int efd;
	unsigned int depth;
	struct uring_slot *slots;
	unsigned int free_head;
	unsigned int busy;
	struct blk_req *wait_head, *wait_tail;
	bool completing; /* in complete(): submit once, at the end */
};

static struct uring *to_uring(struct blk *b)
{
	return b->engine_priv;
}

static struct blk_req *wait_next(struct blk_req *req)
{
	return (struct blk_req *)(uintptr_t)req->priv[3];
}

/* Hand prepared SQEs to the kernel, or arrange to try again soon. */
static void uring_push(struct uring *u)
{
	int r;

	if (!io_uring_sq_ready(&u->ring))
		return;
	r = io_uring_submit(&u->ring);
	if (r >= 0 && !io_uring_sq_ready(&u->ring))
		return;
	if (r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR)
		warn_ratelimited("io_uring_enter: %s", strerror(-r));
	/* Still in the SQ: come back through blk_complete(). */
	if (eventfd_write(u->efd, 1) < 0)
		warn_ratelimited("io_uring: eventfd: %s", strerror(errno));
}

static void uring_reap(struct blk *b, struct uring *u);

/*
 * Submit, then run at once the completions the kernel finished while it
 * took the SQEs (buffered reads from the page cache often are): that
 * saves a round trip through the eventfd and the event loop.
 */
static void uring_submit_now(struct blk *b, struct uring *u)
{
	eventfd_t v;

	uring_push(u);
	if (!io_uring_cq_ready(&u->ring))
		return;
	/* Clear first: a CQE posted after this read raises it again. */
	if (eventfd_read(u->efd, &v) < 0 && errno != EAGAIN)
		warn_ratelimited("io_uring: eventfd: %s", strerror(errno));
	uring_reap(b, u);
	uring_push(u);
}

static void uring_kick(struct blk *b, struct uring *u)
{
	if (!b->plugged && !u->completing)
		uring_submit_now(b, u);
}

/* Prepare the SQE for a slot's request (or what is left of it). */
static int uring_issue(struct blk *b, struct uring *u, unsigned int idx)
{
	struct uring_slot *s = &u->slots[idx];
	struct blk_req *req = s->req;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	const struct iovec *iov = s->rest ? s->rest : req->iov;
	unsigned int cnt = s->rest ? s->rest_cnt : req->iovcnt;
	uint64_t off = req->offset + s->done;

	if (!sqe)
		return -EBUSY;
	if (cnt > IOV_MAX)
		cnt = IOV_MAX;
	switch (req->op) {
	case BLK_OP_READ:
		io_uring_prep_readv(sqe, b->fd, iov, cnt, off);
		break;
	case BLK_OP_WRITE:
		io_uring_prep_writev(sqe, b->fd, iov, cnt, off);
		break;
	case BLK_OP_FLUSH:
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		break;
	case BLK_OP_DISCARD:
		io_uring_prep_fallocate(
			sqe, b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			req->offset, req->len);
		break;
	case BLK_OP_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, b->fd, FALLOC_FL_ZERO_RANGE,
					req->offset, req->len);
		break;
	}
	io_uring_sqe_set_data64(sqe, idx);
	uring_kick(b, u);
	return 0;
}

static void uring_finish(struct blk *b, struct uring *u, unsigned int idx,
			 int result);

/* Give @req a slot and start it; without a free slot it waits in line. */
static void uring_start(struct blk *b, struct uring *u, struct blk_req *req)
{
	unsigned int idx = u->free_head;
	struct uring_slot *s;

	if (idx == NO_SLOT) {
		req->priv[3] = 0;
		if (u->wait_tail)
			u->wait_tail->priv[3] = (uintptr_t)req;
		else
			u->wait_head = req;
		u->wait_tail = req;
		return;
	}
	s = &u->slots[idx];
	u->free_head = s->next_free;
	u->busy++;
	s->req = req;
	s->done = 0;
	s->rest = NULL;
	s->rest_cnt = 0;
	if (uring_issue(b, u, idx))
		uring_finish(b, u, idx, -EIO);
}

/* Free the slot, let a waiting request have it, then report @result. */
static void uring_finish(struct blk *b, struct uring *u, unsigned int idx,
			 int result)
{
	struct uring_slot *s = &u->slots[idx];
	struct blk_req *req = s->req;

	free(s->rest);
	s->rest = NULL;
	s->req = NULL;
	s->next_free = u->free_head;
	u->free_head = idx;
	u->busy--;
	if (u->wait_head) {
		struct blk_req *next = u->wait_head;

		u->wait_head = wait_next(next);
		if (!u->wait_head)
			u->wait_tail = NULL;
		uring_start(b, u, next);
	}
	req->done(req, result);
}

static void uring_rw_done(struct blk *b, struct uring *u, unsigned int idx,
			  int res)
{
	struct uring_slot *s = &u->slots[idx];
	struct blk_req *req = s->req;

	if (res < 0) {
		uring_finish(b, u, idx, blk_errno(res));
		return;
	}
	if (res == 0) {
		if (req->op == BLK_OP_READ)
			blk_iov_zero(req->iov, req->iovcnt, s->done);
		uring_finish(b, u, idx, req->op == BLK_OP_READ ? 0 : -EIO);
		return;
	}
	s->done += (uint64_t)res;
	if (s->done >= req->len) {
		uring_finish(b, u, idx, 0);
		return;
	}
	if (!s->rest) {
		s->rest = malloc(req->iovcnt * sizeof(*s->rest));
		if (!s->rest) {
			uring_finish(b, u, idx, -EIO);
			return;
		}
	}
	s->rest_cnt = blk_iov_skip(req->iov, req->iovcnt, s->done, s->rest);
	if (uring_issue(b, u, idx))
		uring_finish(b, u, idx, -EIO);
}

static void uring_cqe(struct blk *b, struct uring *u, unsigned int idx, int res)
{
	struct blk_req *req = u->slots[idx].req;

	if (!req)
		return;
	if (res == -EAGAIN || res == -EINTR) {
		if (uring_issue(b, u, idx))
			uring_finish(b, u, idx, -EIO);
		return;
	}
	switch (req->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		uring_rw_done(b, u, idx, res);
		return;
	case BLK_OP_DISCARD:
		if (res == -EOPNOTSUPP)
			res = 0;
		break;
	case BLK_OP_WRITE_ZEROES:
		if (res == -EOPNOTSUPP)
			res = blk_sync_write_zeroes(b, req->offset, req->len);
		break;
	default:
		break;
	}
	uring_finish(b, u, idx, res < 0 ? blk_errno(res) : 0);
}

/* Run the done() of every completion waiting in the CQ. */
static void uring_reap(struct blk *b, struct uring *u)
{
	struct io_uring_cqe *cqe;

	u->completing = true;
	while (!io_uring_peek_cqe(&u->ring, &cqe)) {
		uint64_t idx = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&u->ring, cqe);
		if (idx < u->depth)
			uring_cqe(b, u, (unsigned int)idx, res);
	}
	u->completing = false;
}

static int uring_init(struct blk *b, unsigned int depth)
{
	static const int ops[] = { IORING_OP_READV, IORING_OP_WRITEV,
				   IORING_OP_FSYNC, IORING_OP_FALLOCATE };
	struct io_uring_probe *probe;
	struct uring *u;
	unsigned int i;
	int r;

	if (!depth || depth > URING_MAX_DEPTH)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->depth = depth;
	u->slots = calloc(depth, sizeof(*u->slots));
	if (!u->slots) {
		r = -ENOMEM;
		goto err_free;
	}
	for (i = 0; i < depth; i++)
		u->slots[i].next_free = i + 1 < depth ? i + 1 : NO_SLOT;
	u->free_head = 0;
	r = io_uring_queue_init(depth, &u->ring, 0);
	if (r)
		goto err_slots;
	probe = io_uring_get_probe_ring(&u->ring);
	if (!probe) {
		r = -EOPNOTSUPP;
		goto err_ring;
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!io_uring_opcode_supported(probe, ops[i]))
			r = -EOPNOTSUPP;
	io_uring_free_probe(probe);
	if (r)
		goto err_ring;
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		r = -errno;
		goto err_ring;
	}
	r = io_uring_register_eventfd(&u->ring, u->efd);
	if (r)
		goto err_efd;
	b->engine_priv = u;
	return 0;

err_efd:
	close(u->efd);
err_ring:
	io_uring_queue_exit(&u->ring);
err_slots:
	free(u->slots);
err_free:
	free(u);
	return r;
}

static int uring_submit(struct blk *b, struct blk_req *req)
{
	struct uring *u = to_uring(b);

	if (b->is_blockdev && req->op == BLK_OP_DISCARD) {
		req->done(req, blk_sync_discard(b, req->offset, req->len));
		return 0;
	}
	if (b->is_blockdev && req->op == BLK_OP_WRITE_ZEROES) {
		req->done(req, blk_sync_write_zeroes(b, req->offset, req->len));
		return 0;
	}
	uring_start(b, u, req);
	return 0;
}

static int uring_event_fd(struct blk *b)
{
	return to_uring(b)->efd;
}

static void uring_complete(struct blk *b)
{
	struct uring *u = to_uring(b);
	eventfd_t v;

	/* Clear first: a CQE posted after this read raises it again. */
	if (eventfd_read(u->efd, &v) < 0 && errno != EAGAIN)
		warn_ratelimited("io_uring: eventfd: %s", strerror(errno));
	uring_reap(b, u);
	if (!b->plugged)
		uring_push(u);
}

static void uring_drain(struct blk *b)
{
	struct uring *u = to_uring(b);

	while (u->busy || u->wait_head) {
		int r = io_uring_submit_and_wait(&u->ring, 1);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			warn("%s: io_uring: %s", b->path, strerror(-r));
			return;
		}
		/* The kernel took nothing: give it a moment. */
		if (r == -EAGAIN || r == -EBUSY)
			usleep(1000);
		uring_reap(b, u);
	}
}

static void uring_unplug(struct blk *b)
{
	uring_submit_now(b, to_uring(b));
}

static void uring_exit(struct blk *b)
{
	struct uring *u = to_uring(b);
	unsigned int i;

	if (!u)
		return;
	uring_drain(b);
	io_uring_unregister_eventfd(&u->ring);
	io_uring_queue_exit(&u->ring);
	close(u->efd);
	for (i = 0; i < u->depth; i++)
		free(u->slots[i].rest);
	free(u->slots);
	free(u);
	b->engine_priv = NULL;
}

const struct blk_engine_ops blk_engine_uring = {
	.name = "io_uring",
	.init = uring_init,
	.submit = uring_submit,
	.event_fd = uring_event_fd,
	.complete = uring_complete,
	.drain = uring_drain,
	.unplug = uring_unplug,
	.exit = uring_exit,
};
