/*
 * qcow2 metadata caches, refcounts, cluster allocation and the ordered
 * write-back that keeps an image consistent across a crash.
 *
 * L2 tables and refcount blocks live in two small LRU write-back caches
 * of on-disk bytes. Allocation takes the lowest free clusters, creating
 * refcount blocks (self-describing when they cover themselves) and a
 * larger refcount table when needed. Dropping a reference is deferred:
 * the freed range waits in q->frees until qcow2_commit() has put the L2
 * or L1 change that removed the reference on disk, so a cluster is never
 * reused (or counted free on disk) while an on-disk table still points at
 * it. qcow2_commit() orders the writes:
 *   1. refcount blocks (then refcount table entries), data: fdatasync
 *   2. L2 tables: fdatasync, then L1 entries
 *   3. fdatasync, then the deferred decrements, punching freed clusters.
 * A crash therefore leaves at worst clusters whose refcount is too high
 * (leaks). With lazy refcounts step 1 skips the refcount blocks and the
 * dirty bit, set before the first change, makes the next open rebuild
 * them (qcow2_rebuild.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2.h"

uint64_t qcow2_rc_get(const uint8_t *blk, uint64_t i, uint32_t order)
{
	switch (order) {
	case 0:
	case 1:
	case 2: {
		uint32_t bits = 1U << order;
		uint32_t per = 8 >> order;
		uint32_t shift = (uint32_t)(i % per) * bits;

		return (blk[i / per] >> shift) & ((1U << bits) - 1);
	}
	case 3:
		return blk[i];
	case 4:
		return qcow2_be16(blk + 2 * i);
	case 5:
		return qcow2_be32(blk + 4 * i);
	default:
		return qcow2_be64(blk + 8 * i);
	}
}

void qcow2_rc_set(uint8_t *blk, uint64_t i, uint32_t order, uint64_t v)
{
	switch (order) {
	case 0:
	case 1:
	case 2: {
		uint32_t bits = 1U << order;
		uint32_t per = 8 >> order;
		uint32_t shift = (uint32_t)(i % per) * bits;
		uint8_t mask = (uint8_t)(((1U << bits) - 1) << shift);

		blk[i / per] = (uint8_t)((blk[i / per] & ~mask) |
					 ((v << shift) & mask));
		break;
	}
	case 3:
		blk[i] = (uint8_t)v;
		break;
	case 4:
		blk[2 * i] = (uint8_t)(v >> 8);
		blk[2 * i + 1] = (uint8_t)v;
		break;
	case 5:
		qcow2_put_be32(blk + 4 * i, (uint32_t)v);
		break;
	default:
		qcow2_put_be64(blk + 8 * i, v);
		break;
	}
}

int qcow2_pread(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(q->fd, (const uint8_t *)buf + done,
				   len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	if (off + len > q->file_size)
		q->file_size = off + len;
	if (q->file_size > q->host_end)
		q->host_end = q->file_size;
	q->data_dirty = true;
	return 0;
}

int qcow2_sync(struct qcow2 *q)
{
	if (fdatasync(q->fd) < 0)
		return errno == ENOSPC ? -ENOSPC : -EIO;
	q->data_dirty = false;
	return 0;
}

/* ---- caches ---- */

int qcow2_cache_init(struct qcow2 *q, struct qcow2_cache *c, unsigned int n,
		     bool is_l2)
{
	(void)q;
	c->t = calloc(n, sizeof(*c->t));
	if (!c->t)
		return -ENOMEM;
	c->n = n;
	c->tick = 0;
	c->is_l2 = is_l2;
	return 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	for (unsigned int i = 0; c->t && i < c->n; i++)
		free(c->t[i].data);
	free(c->t);
	c->t = NULL;
	c->n = 0;
}

static int write_refblocks(struct qcow2 *q);

/* Before an L2 table goes to disk: what it points at must be stable. */
static int l2_prepare(struct qcow2 *q)
{
	int r;

	if (!q->lazy) {
		r = write_refblocks(q);
		if (r < 0)
			return r;
	}
	return q->data_dirty ? qcow2_sync(q) : 0;
}

static int table_write(struct qcow2 *q, struct qcow2_cache *c,
		       struct qcow2_table *t)
{
	int r;

	if (c->is_l2) {
		r = l2_prepare(q);
		if (r < 0)
			return r;
	}
	r = qcow2_pwrite(q, t->data, q->cluster_size, t->off);
	if (r < 0)
		return r;
	t->dirty = false;
	return 0;
}

int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off,
		    bool fresh, struct qcow2_table **out)
{
	struct qcow2_table *v = NULL;
	int r;

	for (unsigned int i = 0; i < c->n; i++) {
		if (c->t[i].off == off) {
			c->t[i].lru = ++c->tick;
			if (fresh) {
				memset(c->t[i].data, 0, q->cluster_size);
				c->t[i].dirty = true;
			}
			*out = &c->t[i];
			return 0;
		}
		if (!v || (v->off && (!c->t[i].off || c->t[i].lru < v->lru)))
			v = &c->t[i];
	}
	if (v->off && v->dirty) {
		r = table_write(q, c, v);
		if (r < 0)
			return r;
	}
	v->off = 0;
	if (!v->data) {
		v->data = malloc(q->cluster_size);
		if (!v->data)
			return -ENOMEM;
	}
	if (fresh) {
		memset(v->data, 0, q->cluster_size);
	} else {
		r = qcow2_pread(q->fd, v->data, q->cluster_size, off);
		if (r < 0)
			return r;
	}
	v->off = off;
	v->dirty = fresh;
	v->lru = ++c->tick;
	*out = v;
	return 0;
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off)
{
	for (unsigned int i = 0; i < c->n; i++) {
		if (c->t[i].off == off) {
			c->t[i].off = 0;
			c->t[i].dirty = false;
		}
	}
}

static int cache_flush(struct qcow2 *q, struct qcow2_cache *c)
{
	for (unsigned int i = 0; i < c->n; i++) {
		if (c->t[i].off && c->t[i].dirty) {
			int r = table_write(q, c, &c->t[i]);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static bool cache_dirty(const struct qcow2_cache *c)
{
	for (unsigned int i = 0; i < c->n; i++)
		if (c->t[i].off && c->t[i].dirty)
			return true;
	return false;
}

bool qcow2_metadata_clean(const struct qcow2 *q)
{
	return !cache_dirty(&q->l2c) && !cache_dirty(&q->rbc) &&
	       q->l1_dirty_hi <= q->l1_dirty_lo &&
	       q->rt_dirty_hi <= q->rt_dirty_lo && !q->nfrees;
}

/* ---- refcounts ---- */

/* Write the dirty refcount blocks, then (after a sync) the table entries. */
static int write_refblocks(struct qcow2 *q)
{
	uint64_t lo, hi, start, end;
	uint8_t *buf;
	int r;

	r = cache_flush(q, &q->rbc);
	if (r < 0 || q->rt_dirty_hi <= q->rt_dirty_lo)
		return r;
	r = qcow2_sync(q);
	if (r < 0)
		return r;
	/* Whole 512-byte sectors of the table: one write each is atomic. */
	lo = q->rt_dirty_lo;
	hi = q->rt_dirty_hi;
	start = (lo * 8) & ~511ULL;
	end = hi * 8;
	buf = malloc(end - start);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = start / 8; i < hi; i++)
		qcow2_put_be64(buf + i * 8 - start, q->rt[i]);
	r = qcow2_pwrite(q, buf, end - start, q->rt_offset + start);
	free(buf);
	if (r < 0)
		return r;
	q->rt_dirty_lo = q->rt_dirty_hi = 0;
	return 0;
}

/* The cached refcount block covering @cluster, or NULL (none: all free). */
static int refblock(struct qcow2 *q, uint64_t cluster, struct qcow2_table **t)
{
	uint64_t idx = cluster >> q->rb_bits;
	uint64_t off;
	int r;

	*t = NULL;
	if (idx >= q->rt_entries || !q->rt[idx])
		return 0;
	off = q->rt[idx];
	r = qcow2_check_table(q, off, "refcount block");
	if (r < 0)
		return r;
	return qcow2_cache_get(q, &q->rbc, off, false, t);
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc)
{
	struct qcow2_table *t;
	int r = refblock(q, cluster, &t);

	if (r < 0)
		return r;
	*rc = t ? qcow2_rc_get(t->data, cluster & ((1ULL << q->rb_bits) - 1),
			       q->refcount_order) :
		  0;
	return 0;
}

static int refcount_set(struct qcow2 *q, uint64_t cluster, uint64_t v)
{
	struct qcow2_table *t;
	int r = refblock(q, cluster, &t);

	if (r < 0)
		return r;
	if (!t)
		return -EIO;
	qcow2_rc_set(t->data, cluster & ((1ULL << q->rb_bits) - 1),
		     q->refcount_order, v);
	t->dirty = true;
	return 0;
}

static void rt_mark(struct qcow2 *q, uint64_t idx)
{
	if (q->rt_dirty_hi <= q->rt_dirty_lo) {
		q->rt_dirty_lo = idx;
		q->rt_dirty_hi = idx + 1;
	}
	if (idx < q->rt_dirty_lo)
		q->rt_dirty_lo = idx;
	if (idx + 1 > q->rt_dirty_hi)
		q->rt_dirty_hi = idx + 1;
}

static bool in_table(const struct qcow2 *q, uint64_t c, uint64_t off,
		     uint64_t len)
{
	return len && c >= off >> q->cluster_bits &&
	       c <= (off + len - 1) >> q->cluster_bits;
}

static int cluster_free(struct qcow2 *q, uint64_t c, bool *is_free)
{
	uint64_t rc;
	int r;

	/* The header's tables, even if a bad image gives them refcount 0. */
	if (!c || (c >= q->resv_lo && c < q->resv_hi) ||
	    in_table(q, c, q->l1_offset, (uint64_t)q->l1_size * 8) ||
	    in_table(q, c, q->rt_offset,
		     (uint64_t)q->rt_clusters << q->cluster_bits) ||
	    in_table(q, c, q->snapshots_offset, q->snapshots_len)) {
		*is_free = false;
		return 0;
	}
	/*
	 * Nothing valid lies past the file and what we allocated: a refcount
	 * there is a leak (a crash after the refcount update), ours to reuse.
	 * This also bounds the search for free clusters.
	 */
	if (c >= (q->host_end + q->cluster_size - 1) >> q->cluster_bits) {
		*is_free = true;
		return 0;
	}
	r = qcow2_refcount_get(q, c, &rc);
	*is_free = !rc;
	return r;
}

/* The lowest free cluster at or above q->free_hint. */
static int find_free(struct qcow2 *q, uint64_t *out)
{
	uint64_t limit = QCOW2_MAX_HOST >> q->cluster_bits;
	bool f;

	for (uint64_t c = q->free_hint; c < limit; c++) {
		int r = cluster_free(q, c, &f);
		if (r < 0)
			return r;
		if (f) {
			q->free_hint = c;
			*out = c;
			return 0;
		}
	}
	return -ENOSPC;
}

static int grow_reftable(struct qcow2 *q, uint64_t min_entries);

/* Make sure refcount block @idx exists (allocating it if not). */
static int ensure_refblock(struct qcow2 *q, uint64_t idx)
{
	uint64_t mask = (1ULL << q->rb_bits) - 1;
	struct qcow2_table *t;
	uint64_t f, fidx;
	int r;

	while (idx >= q->rt_entries || !q->rt[idx]) {
		if (idx >= q->rt_entries) {
			r = grow_reftable(q, idx + 1);
			if (r < 0)
				return r;
			continue;
		}
		r = find_free(q, &f);
		if (r < 0)
			return r;
		fidx = f >> q->rb_bits;
		if (fidx != idx && (fidx >= q->rt_entries || !q->rt[fidx])) {
			r = ensure_refblock(q, fidx);
			if (r < 0)
				return r;
			continue;
		}
		if (fidx != idx) {
			r = refcount_set(q, f, 1);
			if (r < 0)
				return r;
		}
		r = qcow2_cache_get(q, &q->rbc, f << q->cluster_bits, true, &t);
		if (r < 0)
			return r;
		if (fidx == idx)
			qcow2_rc_set(t->data, f & mask, q->refcount_order, 1);
		q->rt[idx] = f << q->cluster_bits;
		rt_mark(q, idx);
		if ((f + 1) << q->cluster_bits > q->host_end)
			q->host_end = (f + 1) << q->cluster_bits;
		if (f + 1 > q->free_hint)
			q->free_hint = f + 1;
	}
	return 0;
}

/*
 * A larger refcount table after every allocated cluster: its clusters
 * are counted (in new refcount blocks if need be), everything is written
 * and synced, then the header points at it and the old table is freed.
 */
static int grow_reftable(struct qcow2 *q, uint64_t min_entries)
{
	uint64_t per = q->cluster_size / 8;
	uint64_t entries = q->rt_entries * 2;
	uint64_t old_off = q->rt_offset, old_clusters = q->rt_clusters;
	uint64_t old_entries = q->rt_entries, p, n, *nrt;
	uint8_t hdr[12], *buf;
	int r;

	/* Nested growth would reuse the reservation: never needed, refuse. */
	if (q->resv_hi)
		return -EIO;
	if (entries < min_entries)
		entries = min_entries;
	/*
	 * The table goes after the file and every allocated cluster, where
	 * all is free; it must also cover itself and the refcount blocks
	 * created for it (at most n / entries-per-block + 3 of them).
	 */
	p = (q->host_end + q->cluster_size - 1) >> q->cluster_bits;
	for (;;) {
		uint64_t need;

		entries = (entries + per - 1) / per * per;
		n = entries / per;
		need = ((p + n + (n >> q->rb_bits) + 3) >> q->rb_bits) + 1;
		if (need <= entries)
			break;
		entries = need;
	}
	if (entries * 8 > QCOW2_MAX_REFTABLE_BYTES ||
	    (p + n) << q->cluster_bits >= QCOW2_MAX_HOST)
		return -ENOSPC;
	nrt = calloc(entries, 8);
	if (!nrt)
		return -ENOMEM;
	memcpy(nrt, q->rt, old_entries * 8);
	free(q->rt);
	q->rt = nrt;
	q->rt_entries = entries;
	q->rt_offset = p << q->cluster_bits;
	q->rt_clusters = (uint32_t)n;
	q->resv_lo = p;
	q->resv_hi = p + n;
	if ((p + n) << q->cluster_bits > q->host_end)
		q->host_end = (p + n) << q->cluster_bits;
	for (uint64_t i = 0; i < n; i++) {
		r = ensure_refblock(q, (p + i) >> q->rb_bits);
		if (r < 0)
			goto err_resv;
		r = refcount_set(q, p + i, 1);
		if (r < 0)
			goto err_resv;
	}
	q->resv_lo = q->resv_hi = 0;

	r = cache_flush(q, &q->rbc);
	if (r < 0)
		return r;
	buf = calloc(n, q->cluster_size);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < entries; i++)
		qcow2_put_be64(buf + i * 8, q->rt[i]);
	r = qcow2_pwrite(q, buf, n * q->cluster_size, q->rt_offset);
	free(buf);
	if (r < 0)
		return r;
	r = qcow2_sync(q);
	if (r < 0)
		return r;
	qcow2_put_be64(hdr, q->rt_offset);
	qcow2_put_be32(hdr + 8, q->rt_clusters);
	r = qcow2_pwrite(q, hdr, sizeof(hdr), QCOW2_HDR_REFTABLE);
	if (r < 0)
		return r;
	r = qcow2_sync(q);
	if (r < 0)
		return r;
	q->rt_dirty_lo = q->rt_dirty_hi = 0;
	/* The header no longer points at the old table: free it now. */
	for (uint64_t i = 0; old_off && i < old_clusters; i++) {
		uint64_t c = (old_off >> q->cluster_bits) + i, rc;

		r = qcow2_refcount_get(q, c, &rc);
		if (r < 0)
			return r;
		if (rc) {
			r = refcount_set(q, c, rc - 1);
			if (r < 0)
				return r;
		}
		if (rc == 1 && c < q->free_hint)
			q->free_hint = c;
	}
	return 0;

err_resv:
	q->resv_lo = q->resv_hi = 0;
	return r;
}

int qcow2_mark_dirty(struct qcow2 *q)
{
	uint8_t v[8];
	int r;

	if (!q->lazy || q->dirty_on_disk)
		return 0;
	q->incompat |= QCOW2_INCOMPAT_DIRTY;
	qcow2_put_be64(v, q->incompat);
	r = qcow2_pwrite(q, v, 8, QCOW2_HDR_INCOMPAT);
	if (r < 0)
		return r;
	r = qcow2_sync(q);
	if (r < 0)
		return r;
	q->dirty_on_disk = true;
	return 0;
}

int qcow2_alloc(struct qcow2 *q, uint64_t n, uint64_t *off, uint64_t *got)
{
	uint64_t c, len, k;
	bool f;
	int r;

	r = qcow2_mark_dirty(q);
	if (r < 0)
		return r;
	for (;;) {
		r = find_free(q, &c);
		if (r < 0)
			return r;
		for (len = 1; len < n; len++) {
			r = cluster_free(q, c + len, &f);
			if (r < 0)
				return r;
			if (!f)
				break;
		}
		for (uint64_t idx = c >> q->rb_bits;
		     idx <= (c + len - 1) >> q->rb_bits; idx++) {
			r = ensure_refblock(q, idx);
			if (r < 0)
				return r;
		}
		/* Creating refcount blocks may have used some of the run. */
		for (k = 0; k < len; k++) {
			r = cluster_free(q, c + k, &f);
			if (r < 0)
				return r;
			if (!f)
				break;
		}
		if (k)
			break;
	}
	if ((c + k) << q->cluster_bits > QCOW2_MAX_HOST)
		return -ENOSPC;
	for (uint64_t i = 0; i < k; i++) {
		r = refcount_set(q, c + i, 1);
		if (r < 0)
			return r;
	}
	q->free_hint = c + k;
	if ((c + k) << q->cluster_bits > q->host_end)
		q->host_end = (c + k) << q->cluster_bits;
	*off = c << q->cluster_bits;
	*got = k;
	return 0;
}

int qcow2_free_later(struct qcow2 *q, uint64_t off, uint64_t len)
{
	int r = qcow2_mark_dirty(q);

	if (r < 0)
		return r;
	if (q->nfrees == q->frees_cap) {
		size_t cap = q->frees_cap ? q->frees_cap * 2 : 64;
		struct qcow2_free *n = realloc(q->frees, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		q->frees = n;
		q->frees_cap = cap;
	}
	q->frees[q->nfrees].off = off;
	q->frees[q->nfrees].len = len;
	q->nfrees++;
	return 0;
}

int qcow2_free_entry_later(struct qcow2 *q, uint64_t e)
{
	uint64_t host, len;

	switch (qcow2_l2_type(q, e, &host)) {
	case QCOW2_NORMAL:
	case QCOW2_ZERO_ALLOC:
		return qcow2_free_later(q, host, q->cluster_size);
	case QCOW2_COMPRESSED_CL:
		qcow2_compressed_range(q, e, &host, &len);
		return qcow2_free_later(q, host & ~511ULL, len + (host & 511));
	default:
		return 0;
	}
}

static void punch(struct qcow2 *q, uint64_t off, uint64_t len)
{
	if (!q->punch || !len)
		return;
	if (fallocate(q->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0 &&
	    (errno == EOPNOTSUPP || errno == ENOSYS))
		q->punch = false;
}

/* Apply the deferred decrements: their references are gone on disk. */
static int apply_frees(struct qcow2 *q)
{
	uint64_t run_off = 0, run_len = 0;
	int r = 0;

	for (size_t i = 0; i < q->nfrees && !r; i++) {
		uint64_t first = q->frees[i].off >> q->cluster_bits;
		uint64_t last = (q->frees[i].off + q->frees[i].len - 1) >>
				q->cluster_bits;

		for (uint64_t c = first; c <= last; c++) {
			uint64_t rc;

			r = qcow2_refcount_get(q, c, &rc);
			if (r < 0)
				break;
			if (!rc) {
				warn_ratelimited(
					"qcow2 %s: freeing cluster %#llx "
					"whose refcount is 0",
					q->b->path ? q->b->path : "",
					(unsigned long long)(c
							     << q->cluster_bits));
				continue;
			}
			r = refcount_set(q, c, rc - 1);
			if (r < 0)
				break;
			if (rc != 1)
				continue;
			qcow2_cache_drop(&q->l2c, c << q->cluster_bits);
			if (c < q->free_hint)
				q->free_hint = c;
			if (run_len &&
			    run_off + run_len == c << q->cluster_bits) {
				run_len += q->cluster_size;
				continue;
			}
			punch(q, run_off, run_len);
			run_off = c << q->cluster_bits;
			run_len = q->cluster_size;
		}
	}
	punch(q, run_off, run_len);
	q->nfrees = 0;
	return r;
}

int qcow2_write_l1(struct qcow2 *q)
{
	uint64_t start = ((uint64_t)q->l1_dirty_lo * 8) & ~511ULL;
	uint64_t end = (uint64_t)q->l1_dirty_hi * 8;
	uint8_t *buf;
	int r;

	if (q->l1_dirty_hi <= q->l1_dirty_lo)
		return 0;
	buf = malloc(end - start);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = start / 8; i < q->l1_dirty_hi; i++)
		qcow2_put_be64(buf + i * 8 - start, q->l1[i]);
	r = qcow2_pwrite(q, buf, end - start, q->l1_offset + start);
	free(buf);
	if (r < 0)
		return r;
	q->l1_dirty_lo = q->l1_dirty_hi = 0;
	return 0;
}

int qcow2_commit(struct qcow2 *q, bool full)
{
	bool l1 = q->l1_dirty_hi > q->l1_dirty_lo;
	int r;

	if (q->ro)
		return 0;
	if (cache_dirty(&q->l2c) || l1 || q->nfrees) {
		r = l2_prepare(q);
		if (r < 0)
			return r;
		r = cache_flush(q, &q->l2c);
		if (r < 0)
			return r;
		if (l1) {
			r = qcow2_sync(q);
			if (r < 0)
				return r;
			r = qcow2_write_l1(q);
			if (r < 0)
				return r;
		}
		if (q->nfrees) {
			r = qcow2_sync(q);
			if (r < 0)
				return r;
			r = apply_frees(q);
			if (r < 0)
				return r;
		}
	}
	if (!full)
		return 0;
	r = write_refblocks(q);
	if (r < 0)
		return r;
	return qcow2_sync(q);
}
