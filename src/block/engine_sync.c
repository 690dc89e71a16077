/*
 * The synchronous engine: each request is carried out by system calls in
 * blk_submit() itself, and its done() runs before blk_submit() returns.
 * The fallback where io_uring is unavailable, and a baseline for it.
 * Short transfers are continued where they stopped; a read that meets
 * the end of the file reads zeroes (a file shorter than its disk is
 * sparse at the end).
 */
#include "block/blk.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

static int sync_rw(struct blk *b, struct blk_req *req)
{
	const struct iovec *iov = req->iov;
	unsigned int cnt = req->iovcnt;
	struct iovec *rest = NULL;
	uint64_t done = 0;
	int ret = 0;

	while (done < req->len) {
		int n = cnt > IOV_MAX ? IOV_MAX : (int)cnt;
		off_t off = (off_t)(req->offset + done);
		ssize_t r;

		if (req->op == BLK_OP_READ)
			r = preadv(b->fd, iov, n, off);
		else
			r = pwritev(b->fd, iov, n, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = blk_errno(-errno);
			break;
		}
		if (r == 0) {
			if (req->op == BLK_OP_READ)
				blk_iov_zero(req->iov, req->iovcnt, done);
			else
				ret = -EIO;
			break;
		}
		done += (uint64_t)r;
		if (done >= req->len)
			break;
		if (!rest) {
			rest = malloc(req->iovcnt * sizeof(*rest));
			if (!rest) {
				ret = -EIO;
				break;
			}
		}
		cnt = blk_iov_skip(req->iov, req->iovcnt, done, rest);
		iov = rest;
	}
	free(rest);
	return ret;
}

static int sync_init(struct blk *b, unsigned int depth)
{
	(void)depth;
	b->engine_priv = NULL;
	return 0;
}

static int sync_submit(struct blk *b, struct blk_req *req)
{
	int ret;

	switch (req->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		ret = sync_rw(b, req);
		break;
	case BLK_OP_FLUSH:
		ret = fdatasync(b->fd) < 0 ? blk_errno(-errno) : 0;
		break;
	case BLK_OP_DISCARD:
		ret = blk_sync_discard(b, req->offset, req->len);
		break;
	case BLK_OP_WRITE_ZEROES:
		ret = blk_sync_write_zeroes(b, req->offset, req->len);
		break;
	default:
		return -EINVAL;
	}
	req->done(req, ret);
	return 0;
}

static int sync_event_fd(struct blk *b)
{
	(void)b;
	return -1;
}

/* Nothing is ever in flight: done() ran inside submit. */
static void sync_nothing(struct blk *b)
{
	(void)b;
}

const struct blk_engine_ops blk_engine_sync = {
	.name = "sync",
	.init = sync_init,
	.submit = sync_submit,
	.event_fd = sync_event_fd,
	.complete = sync_nothing,
	.drain = sync_nothing,
	.exit = sync_nothing,
};
