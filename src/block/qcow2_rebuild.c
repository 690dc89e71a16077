/*
 * Rebuilding the refcounts of a dirty image (lazy refcounts, or a crash
 * while the dirty bit was set): every reference is counted again from the
 * header, the L1/L2 tables of the image and of each snapshot, and the
 * COPIED flags of the active tables are corrected. The new refcount table
 * and blocks go after everything in the file, are written and synced, and
 * only then does the header point at them; the old ones become free
 * space. A crash in between leaves the dirty bit set: the next open
 * starts over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2.h"

struct recount {
	struct qcow2 *q;
	uint32_t *refs;
	uint64_t cap;
	uint64_t limit;
	uint8_t *buf;
	char *err;
	size_t errlen;
};

static int recount_add(struct recount *rc, uint64_t off, uint64_t len)
{
	uint64_t first = off >> rc->q->cluster_bits;
	uint64_t last = (off + len - 1) >> rc->q->cluster_bits;

	if (!len)
		return 0;
	if (last >= rc->limit) {
		snprintf(rc->err, rc->errlen,
			 "rebuilding refcounts: a reference to %#llx is "
			 "beyond the end of the file",
			 (unsigned long long)off);
		return -EINVAL;
	}
	if (last >= rc->cap) {
		uint64_t cap = rc->cap * 2 > last + 1 ? rc->cap * 2 : last + 1;
		uint32_t *n = realloc(rc->refs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		memset(n + rc->cap, 0, (cap - rc->cap) * sizeof(*n));
		rc->refs = n;
		rc->cap = cap;
	}
	for (uint64_t c = first; c <= last; c++)
		if (rc->refs[c] < UINT32_MAX)
			rc->refs[c]++;
	return 0;
}

/* Count an L1 table's L2 tables and their clusters. */
static int recount_l1(struct recount *rc, const uint64_t *l1, uint32_t n)
{
	struct qcow2 *q = rc->q;
	uint64_t entries = 1ULL << q->l2_bits;
	int r;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK;

		if (!off)
			continue;
		if ((l1[i] & QCOW2_L1_RESERVED) ||
		    qcow2_check_table(q, off, "L2 table") < 0) {
			snprintf(rc->err, rc->errlen,
				 "rebuilding refcounts: bad L1 entry %#llx",
				 (unsigned long long)l1[i]);
			return -EINVAL;
		}
		r = recount_add(rc, off, q->cluster_size);
		if (r == 0)
			r = qcow2_pread(q->fd, rc->buf, q->cluster_size, off);
		if (r < 0)
			return r;
		for (uint64_t j = 0; j < entries; j++) {
			uint64_t e = qcow2_be64(rc->buf + 8 * j), host, len;

			switch (qcow2_l2_type(q, e, &host)) {
			case QCOW2_NORMAL:
			case QCOW2_ZERO_ALLOC:
				r = recount_add(rc, host, q->cluster_size);
				break;
			case QCOW2_COMPRESSED_CL:
				qcow2_compressed_range(q, e, &host, &len);
				r = recount_add(rc, host & ~511ULL,
						len + (host & 511));
				break;
			default:
				break;
			}
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Make COPIED in the active L1 and L2 tables say "refcount is 1". */
static int recount_fix_copied(struct recount *rc)
{
	struct qcow2 *q = rc->q;
	uint64_t entries = 1ULL << q->l2_bits;
	int r;

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t off = q->l1[i] & QCOW2_OFFSET_MASK, want;
		bool changed = false;

		if (!off)
			continue;
		want = rc->refs[off >> q->cluster_bits] == 1 ? QCOW2_COPIED : 0;
		if ((q->l1[i] & QCOW2_COPIED) != want) {
			q->l1[i] = (q->l1[i] & ~QCOW2_COPIED) | want;
			q->l1_dirty_lo = 0;
			q->l1_dirty_hi = q->l1_size;
		}
		r = qcow2_pread(q->fd, rc->buf, q->cluster_size, off);
		if (r < 0)
			return r;
		for (uint64_t j = 0; j < entries; j++) {
			uint64_t e = qcow2_be64(rc->buf + 8 * j), host;
			enum qcow2_type t = qcow2_l2_type(q, e, &host);

			if (t != QCOW2_NORMAL && t != QCOW2_ZERO_ALLOC)
				continue;
			want = rc->refs[host >> q->cluster_bits] == 1 ?
				       QCOW2_COPIED :
				       0;
			if ((e & QCOW2_COPIED) != want) {
				qcow2_put_be64(rc->buf + 8 * j,
					       (e & ~QCOW2_COPIED) | want);
				changed = true;
			}
		}
		if (changed) {
			qcow2_cache_drop(&q->l2c, off);
			r = qcow2_pwrite(q, rc->buf, q->cluster_size, off);
			if (r < 0)
				return r;
		}
	}
	return qcow2_write_l1(q);
}

/* Write a new refcount table and blocks for rc->refs after the file. */
static int recount_write(struct recount *rc)
{
	struct qcow2 *q = rc->q;
	uint64_t per_rb = 1ULL << q->rb_bits, per_rt = q->cluster_size / 8;
	uint64_t start = 0, k = 0, nrb = 0, rtc = 0, total, *rt;
	uint8_t hdr[12];
	int r;

	for (uint64_t c = 0; c < rc->cap; c++)
		if (rc->refs[c])
			start = c + 1;
	if (start < (q->file_size + q->cluster_size - 1) >> q->cluster_bits)
		start = (q->file_size + q->cluster_size - 1) >> q->cluster_bits;
	for (;;) {
		total = start + k;
		nrb = (total + per_rb - 1) / per_rb;
		rtc = (nrb + per_rt - 1) / per_rt;
		if (nrb + rtc == k)
			break;
		k = nrb + rtc;
	}
	if ((rtc << q->cluster_bits) > QCOW2_MAX_REFTABLE_BYTES) {
		snprintf(rc->err, rc->errlen,
			 "rebuilding refcounts: the "
			 "refcount table would be too "
			 "large");
		return -EINVAL;
	}
	rc->limit = UINT64_MAX;
	r = recount_add(rc, start << q->cluster_bits, k << q->cluster_bits);
	if (r < 0)
		return r;
	for (uint64_t c = 0; c < rc->cap; c++) {
		if (rc->refs[c] > q->refcount_max) {
			snprintf(rc->err, rc->errlen,
				 "rebuilding refcounts: cluster %#llx has "
				 "more references than %u-bit refcounts hold",
				 (unsigned long long)(c << q->cluster_bits),
				 1U << q->refcount_order);
			return -EINVAL;
		}
	}
	rt = calloc(rtc * per_rt, 8);
	if (!rt)
		return -ENOMEM;
	for (uint64_t b = 0; b < nrb; b++) {
		memset(rc->buf, 0, q->cluster_size);
		for (uint64_t i = 0; i < per_rb && b * per_rb + i < rc->cap;
		     i++)
			qcow2_rc_set(rc->buf, i, q->refcount_order,
				     rc->refs[b * per_rb + i]);
		rt[b] = (start + rtc + b) << q->cluster_bits;
		r = qcow2_pwrite(q, rc->buf, q->cluster_size, rt[b]);
		if (r < 0)
			goto err_rt;
	}
	for (uint64_t i = 0; i < rtc; i++) {
		for (uint64_t j = 0; j < per_rt; j++)
			qcow2_put_be64(rc->buf + 8 * j, rt[i * per_rt + j]);
		r = qcow2_pwrite(q, rc->buf, q->cluster_size,
				 (start + i) << q->cluster_bits);
		if (r < 0)
			goto err_rt;
	}
	r = qcow2_sync(q);
	if (r < 0)
		goto err_rt;
	qcow2_put_be64(hdr, start << q->cluster_bits);
	qcow2_put_be32(hdr + 8, (uint32_t)rtc);
	r = qcow2_pwrite(q, hdr, sizeof(hdr), QCOW2_HDR_REFTABLE);
	if (r == 0)
		r = qcow2_sync(q);
	if (r < 0)
		goto err_rt;
	free(q->rt);
	q->rt = rt;
	q->rt_entries = rtc * per_rt;
	q->rt_offset = start << q->cluster_bits;
	q->rt_clusters = (uint32_t)rtc;
	q->rt_dirty_lo = q->rt_dirty_hi = 0;
	for (unsigned int i = 0; i < q->rbc.n; i++)
		q->rbc.t[i].off = 0;
	q->free_hint = 0;
	return 0;

err_rt:
	free(rt);
	return r;
}

int qcow2_rebuild_refcounts(struct qcow2 *q, char *err, size_t errlen)
{
	struct recount rc = { q, NULL, 0, 0, NULL, err, errlen };
	uint64_t *l1 = NULL;
	uint8_t v[8];
	int r;

	rc.limit = (q->file_size >> q->cluster_bits) + 1;
	if (rc.limit > (1ULL << 28)) {
		snprintf(err, errlen, "image too large to rebuild refcounts");
		return -EFBIG;
	}
	rc.buf = malloc(q->cluster_size);
	if (!rc.buf)
		return -ENOMEM;
	r = recount_add(&rc, 0, q->cluster_size);
	if (r == 0)
		r = recount_add(&rc, q->l1_offset, (uint64_t)q->l1_size * 8);
	if (r == 0)
		r = recount_add(&rc, q->snapshots_offset, q->snapshots_len);
	if (r == 0)
		r = recount_l1(&rc, q->l1, q->l1_size);
	for (uint32_t s = 0; r == 0 && s < q->nb_snapshots; s++) {
		uint32_t n = q->snaps[s].l1_size;

		l1 = calloc(n ? n : 1, 8);
		if (!l1) {
			r = -ENOMEM;
			break;
		}
		r = qcow2_pread(q->fd, l1, (size_t)n * 8,
				q->snaps[s].l1_offset);
		for (uint32_t i = 0; r == 0 && i < n; i++)
			l1[i] = qcow2_be64((uint8_t *)&l1[i]);
		if (r == 0)
			r = recount_add(&rc, q->snaps[s].l1_offset,
					(uint64_t)n * 8);
		if (r == 0)
			r = recount_l1(&rc, l1, n);
		free(l1);
	}
	if (r == 0)
		r = recount_fix_copied(&rc);
	if (r == 0)
		r = recount_write(&rc);
	if (r == 0) {
		q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
		qcow2_put_be64(v, q->incompat);
		r = qcow2_pwrite(q, v, 8, QCOW2_HDR_INCOMPAT);
		if (r == 0)
			r = qcow2_sync(q);
	}
	if (r < 0 && !err[0])
		snprintf(err, errlen, "rebuilding refcounts: %s", strerror(-r));
	free(rc.refs);
	free(rc.buf);
	return r;
}
