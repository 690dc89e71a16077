/*
 * qcow2 request dispatch: the data paths through the disk's I/O engine,
 * and the synchronous metadata path.
 *
 * Fast path: a read, or a write whose clusters are all ours alone
 * (NORMAL and COPIED: no metadata changes), is mapped through the cached
 * L1/L2 tables onto runs of file offsets, and each run becomes one engine
 * request on b->fd (io_uring or system calls, O_DIRECT with nocache).
 * The parent request completes when its last run does. Parts of a read
 * that have no data cluster (zeroes, the backing file, compressed
 * clusters) are filled synchronously on the way.
 *
 * Allocating writes: a write needing new clusters, inside one L2 table,
 * gets them (refcounts raised in the cache), and its data with the
 * copy-on-write head and tail goes to the engine as one request; the L2
 * entries are set only when it has completed, so nothing points at a
 * cluster before its data is written. Until then a write touching those
 * clusters waits (q->wait_head) and is submitted again afterwards, when
 * it finds them allocated. Other writes needing new space (several L2
 * tables, fragmented free space) take the metadata path.
 *
 * Metadata path: those writes, write-zeroes, discard, and a flush with
 * metadata to write back run synchronously (qcow2_io.c,
 * qcow2_refcount.c) while engine requests may still be in flight. That
 * is safe because engine I/O only ever touches clusters mapped NORMAL
 * (or being allocated), and a write never frees such a cluster: it
 * replaces unallocated, zero and compressed entries, and only drops a
 * reference to a shared cluster, which keeps its other one. Write-zeroes
 * and discard do free mapped clusters, which could then be handed to
 * another part of the disk while a write to them is still in flight:
 * they drain the engine first.
 *
 * The crash-safety order is kept: engine writes go only to clusters no
 * L2 entry on disk points at yet or that are ours already, and
 * qcow2_commit() syncs the file (data) before it writes any L2 table.
 *
 * Completions may run inside an engine's submit, and a completion may
 * submit waiting writes again: nothing here uses q->ext or q->siov
 * across an engine submit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2.h"

/* One parent request spread over engine requests (children). */
struct qcow2_aio {
	struct qcow2 *q;
	struct blk_req *parent;
	unsigned int pending; /* children not done, +1 while submitting */
	int result;
	bool allocating; /* alloc is in q->allocs */
	struct qcow2_alloc_write alloc;
	struct blk_req child[]; /* then the children's iovecs */
};

static int ext_reserve(struct qcow2 *q, size_t n)
{
	struct qcow2_extent *v;

	if (n <= q->ext_cap)
		return 0;
	n = n < 16 ? 16 : n * 2;
	v = realloc(q->ext, n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	q->ext = v;
	q->ext_cap = n;
	return 0;
}

static bool overlaps_alloc(const struct qcow2 *q, const struct blk_req *req)
{
	uint64_t first = req->offset >> q->cluster_bits;
	uint64_t last = (req->offset + req->len - 1) >> q->cluster_bits;

	for (const struct qcow2_alloc_write *w = q->allocs; w; w = w->next)
		if (first < w->vc + w->count && w->vc <= last)
			return true;
	return false;
}

static void wait_push(struct qcow2 *q, struct blk_req *req)
{
	req->priv[0] = 0;
	if (q->wait_tail)
		q->wait_tail->priv[0] = (uintptr_t)req;
	else
		q->wait_head = req;
	q->wait_tail = req;
}

/* Submit again the writes that waited for an allocation (they may wait again). */
static void wake_waiters(struct blk *b, struct qcow2 *q)
{
	struct blk_req *req = q->wait_head;

	q->wait_head = q->wait_tail = NULL;
	while (req) {
		struct blk_req *next =
			(struct blk_req *)(uintptr_t)req->priv[0];
		int r = qcow2_submit(b, req);

		if (r < 0)
			req->done(req, r);
		req = next;
	}
}

static void alloc_unlink(struct qcow2 *q, struct qcow2_alloc_write *w)
{
	struct qcow2_alloc_write **p = &q->allocs;

	while (*p != w)
		p = &(*p)->next;
	*p = w->next;
}

static void aio_put(struct qcow2_aio *a)
{
	struct qcow2 *q = a->q;
	struct blk_req *parent = a->parent;
	bool allocating = a->allocating;
	int result = a->result;

	if (--a->pending)
		return;
	if (allocating) {
		alloc_unlink(q, &a->alloc);
		result = qcow2_alloc_write_end(q, &a->alloc, result);
	}
	free(a);
	parent->done(parent, result);
	if (allocating)
		wake_waiters(q->b, q);
}

static void child_done(struct blk_req *c, int result)
{
	struct qcow2_aio *a = c->opaque;
	struct qcow2 *q = a->q;

	if (result && !a->result)
		a->result = result;
	if (!result && c->op == BLK_OP_WRITE) {
		q->data_dirty = true;
		if (c->offset + c->len > q->file_size)
			q->file_size = c->offset + c->len;
		if (q->file_size > q->host_end)
			q->host_end = q->file_size;
	}
	aio_put(a);
}

/*
 * Start one engine request per NORMAL extent of q->ext[0..n) (nnormal of
 * them), on the parent's iovecs: 1 (the parent's done() runs when they
 * are), or -ENOMEM.
 */
static int submit_children(struct blk *b, struct qcow2 *q, struct blk_req *req,
			   size_t n, size_t nnormal)
{
	struct qcow2_aio *a;
	struct iovec *iov;

	a = malloc(sizeof(*a) + nnormal * sizeof(a->child[0]) +
		   (req->iovcnt + nnormal) * sizeof(*iov));
	if (!a)
		return -ENOMEM;
	a->q = q;
	a->parent = req;
	a->pending = 1;
	a->result = 0;
	a->allocating = false;
	iov = (struct iovec *)&a->child[nnormal];
	for (size_t i = 0, k = 0; i < n; i++) {
		const struct qcow2_extent *x = &q->ext[i];
		struct blk_req *c = &a->child[k];

		if (x->type != QCOW2_NORMAL)
			continue;
		*c = (struct blk_req){
			.op = req->op,
			.offset = x->host,
			.len = x->len,
			.iov = iov,
			.iovcnt = qcow2_iov_slice(req->iov, req->iovcnt,
						  x->pos - req->offset, x->len,
						  iov),
			.done = child_done,
			.opaque = a,
		};
		iov += c->iovcnt;
		k++;
	}
	/*
	 * Only now: a completion run inside submit may wake waiting writes,
	 * which map their own extents into q->ext.
	 */
	a->pending += nnormal;
	for (size_t k = 0; k < nnormal; k++)
		if (b->engine->submit(b, &a->child[k]) < 0)
			child_done(&a->child[k], -EIO);
	aio_put(a);
	return 1;
}

/* The extents of [req->offset, +len) into q->ext; their count. */
static int map_request(struct qcow2 *q, const struct blk_req *req, size_t *n,
		       size_t *nnormal, bool *writable)
{
	uint64_t pos = req->offset, end = req->offset + req->len;
	int r;

	*n = *nnormal = 0;
	*writable = true;
	while (pos < end) {
		struct qcow2_extent *x;

		r = ext_reserve(q, *n + 1);
		if (r < 0)
			return r;
		x = &q->ext[*n];
		r = qcow2_extent_at(q, pos, end - pos, x);
		if (r < 0)
			return r;
		if (x->type == QCOW2_NORMAL)
			(*nnormal)++;
		if (!qcow2_extent_writable(x))
			*writable = false;
		pos += x->len;
		(*n)++;
	}
	return 0;
}

/* 1: the engine has the request; else its result, 0 or -errno. */
static int read_fast(struct blk *b, struct qcow2 *q, struct blk_req *req)
{
	size_t n, nnormal;
	bool writable;
	struct iovec *part;
	int r = map_request(q, req, &n, &nnormal, &writable);

	if (r < 0)
		return r;
	if (!nnormal)
		return qcow2_read(q, req->offset, req->iov, req->iovcnt,
				  req->len);
	/* Zeroes, backing file and compressed parts: now, synchronously. */
	part = NULL;
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct qcow2_extent *x = &q->ext[i];
		unsigned int pn;

		if (x->type == QCOW2_NORMAL)
			continue;
		if (!part) {
			part = malloc(req->iovcnt * sizeof(*part));
			if (!part)
				return -ENOMEM;
		}
		pn = qcow2_iov_slice(req->iov, req->iovcnt,
				     x->pos - req->offset, x->len, part);
		r = qcow2_read(q, x->pos, part, pn, x->len);
	}
	free(part);
	if (r < 0)
		return r;
	/* Reading changed no mapping: the extents still hold. */
	return submit_children(b, q, req, n, nnormal);
}

/* A request the metadata path handles, synchronously: its result. */
static int metadata_path(struct blk *b, struct qcow2 *q, struct blk_req *req)
{
	int r;

	switch (req->op) {
	case BLK_OP_WRITE:
		r = qcow2_write(q, req->offset, req->iov, req->iovcnt,
				req->len);
		break;
	case BLK_OP_FLUSH:
		return qcow2_commit(q, true);
	case BLK_OP_DISCARD:
		b->engine->drain(b);
		r = qcow2_discard(q, req->offset, req->len);
		break;
	case BLK_OP_WRITE_ZEROES:
		b->engine->drain(b);
		r = qcow2_write_zeroes(q, req->offset, req->len);
		break;
	default:
		return -EINVAL;
	}
	/* sync (O_DSYNC): a completed write is stable, its metadata too. */
	if (r == 0 && b->opts.sync)
		return qcow2_commit(q, true);
	/* Write back before the list of deferred frees grows large. */
	if (r == 0 && q->nfrees > 4096)
		r = qcow2_commit(q, false);
	return r;
}

/*
 * A write needing new clusters: asynchronously when it can (1), else
 * through the metadata path (its result).
 */
static int write_allocating(struct blk *b, struct qcow2 *q, struct blk_req *req)
{
	struct qcow2_aio *a;
	struct qcow2_alloc_write *w;
	struct blk_req *c;
	struct iovec *iov;
	unsigned int n = 0;
	int r;

	a = malloc(sizeof(*a) + sizeof(a->child[0]) +
		   (req->iovcnt + 2) * sizeof(*iov));
	if (!a)
		return -ENOMEM;
	w = &a->alloc;
	r = qcow2_alloc_write_start(q, req->offset, req->len, w);
	if (r <= 0) {
		free(a);
		return r < 0 ? r : metadata_path(b, q, req);
	}
	a->q = q;
	a->parent = req;
	a->pending = 2;
	a->result = 0;
	a->allocating = true;
	w->next = q->allocs;
	q->allocs = w;
	iov = (struct iovec *)&a->child[1];
	if (w->head_len)
		iov[n++] = (struct iovec){ (void *)w->head, w->head_len };
	n += qcow2_iov_slice(req->iov, req->iovcnt, 0, req->len, iov + n);
	if (w->tail_len)
		iov[n++] = (struct iovec){ (void *)w->tail, w->tail_len };
	c = &a->child[0];
	*c = (struct blk_req){
		.op = BLK_OP_WRITE,
		.offset = w->start,
		.len = w->head_len + req->len + w->tail_len,
		.iov = iov,
		.iovcnt = n,
		.done = child_done,
		.opaque = a,
	};
	if (b->engine->submit(b, c) < 0)
		child_done(c, -EIO);
	aio_put(a);
	return 1;
}

int qcow2_submit(struct blk *b, struct blk_req *req)
{
	struct qcow2 *q = b->format_priv;
	size_t n, nnormal;
	bool writable;
	int r;

	/* blk_submit() checked the range, the iovecs and read-only. */
	switch (req->op) {
	case BLK_OP_READ:
		r = read_fast(b, q, req);
		break;
	case BLK_OP_WRITE:
		/* Its clusters are being allocated: after that, in place. */
		if (overlaps_alloc(q, req)) {
			wait_push(q, req);
			return 0;
		}
		r = map_request(q, req, &n, &nnormal, &writable);
		if (r == 0 && writable)
			r = submit_children(b, q, req, n, nnormal);
		else if (r == 0)
			r = write_allocating(b, q, req);
		break;
	case BLK_OP_FLUSH:
		/* Only data to make stable: the engine does it, in order. */
		if (qcow2_metadata_clean(q))
			return b->engine->submit(b, req);
		r = metadata_path(b, q, req);
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		r = metadata_path(b, q, req);
		break;
	default:
		return -EINVAL;
	}
	if (r != 1)
		req->done(req, r);
	return 0;
}
