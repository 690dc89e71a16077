/*
 * qcow2 data paths: read, write (allocating and copy-on-write), write
 * zeroes and discard, each walking the disk range cluster by cluster and
 * merging runs of clusters that are contiguous in the file into one
 * preadv/pwritev.
 *
 * A write to a cluster that is not ours alone (unallocated, zero,
 * compressed, or shared with a snapshot: refcount > 1) gets new clusters;
 * the parts of their first and last cluster the write leaves out are
 * filled from what the disk read there before (backing file, zeroes,
 * decompressed data, the shared cluster). The L2 entry is changed in the
 * cache only; qcow2_commit() puts it on disk after the data, and only then
 * drops the reference the old entry held.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "block/qcow2.h"

/* Bits that must be clear in a standard L2 entry (spec: 1-8, 56-61). */
#define L2_RESERVED 0x3f000000000001feULL

/* ---- iovec helpers ---- */

static int siov_reserve(struct qcow2 *q, unsigned int n)
{
	struct iovec *v;

	if (n <= q->siov_cap)
		return 0;
	v = realloc(q->siov, n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	q->siov = v;
	q->siov_cap = n;
	return 0;
}

unsigned int qcow2_iov_slice(const struct iovec *iov, unsigned int cnt,
			     uint64_t off, uint64_t len, struct iovec *out)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < cnt && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		out[n].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[n].iov_len = iov[i].iov_len - off;
		if (out[n].iov_len > len)
			out[n].iov_len = len;
		len -= out[n].iov_len;
		off = 0;
		n++;
	}
	return n;
}

/* Copy @len bytes between @buf and @iov at @off (to_iov: buf -> iov). */
static void iov_copy(const struct iovec *iov, unsigned int cnt, uint64_t off,
		     void *buf, uint64_t len, bool to_iov)
{
	uint8_t *p = buf;

	for (unsigned int i = 0; i < cnt && len; i++) {
		uint64_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - off;
		if (n > len)
			n = len;
		if (!p)
			memset((uint8_t *)iov[i].iov_base + off, 0, n);
		else if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, p, n);
		else
			memcpy(p, (uint8_t *)iov[i].iov_base + off, n);
		if (p)
			p += n;
		len -= n;
		off = 0;
	}
}

static void iov_zero(const struct iovec *iov, unsigned int cnt, uint64_t off,
		     uint64_t len)
{
	iov_copy(iov, cnt, off, NULL, len, true);
}

/* Advance @iov (ours to change) past @n bytes. */
static unsigned int iov_advance(struct iovec **iov, unsigned int cnt,
				uint64_t n)
{
	while (cnt && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		cnt--;
	}
	if (cnt) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
	return cnt;
}

/* preadv everything; past the end of the file reads zeroes. */
static int full_preadv(int fd, struct iovec *iov, unsigned int cnt,
		       uint64_t off)
{
	while (cnt) {
		ssize_t n =
			preadv(fd, iov, (int)(cnt > IOV_MAX ? IOV_MAX : cnt),
			       (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			for (unsigned int i = 0; i < cnt; i++)
				memset(iov[i].iov_base, 0, iov[i].iov_len);
			return 0;
		}
		off += (uint64_t)n;
		cnt = iov_advance(&iov, cnt, (uint64_t)n);
	}
	return 0;
}

static int full_pwritev(struct qcow2 *q, struct iovec *iov, unsigned int cnt,
			uint64_t off)
{
	while (cnt) {
		ssize_t n = pwritev(q->data_fd, iov,
				    (int)(cnt > IOV_MAX ? IOV_MAX : cnt),
				    (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		off += (uint64_t)n;
		cnt = iov_advance(&iov, cnt, (uint64_t)n);
	}
	if (off > q->file_size)
		q->file_size = off;
	if (q->file_size > q->host_end)
		q->host_end = q->file_size;
	q->data_dirty = true;
	return 0;
}

/* ---- lookups ---- */

/* The L2 table of L1 index @l1i (NULL when unallocated). */
static int l2_table(struct qcow2 *q, uint64_t l1i, struct qcow2_table **t)
{
	uint64_t e, off;
	int r;

	*t = NULL;
	if (l1i >= q->l1_size)
		return 0;
	e = q->l1[l1i];
	off = e & QCOW2_OFFSET_MASK;
	if (e & QCOW2_L1_RESERVED) {
		warn_ratelimited("qcow2 %s: L1 entry %llu has reserved bits "
				 "set",
				 q->b->path ? q->b->path : "",
				 (unsigned long long)l1i);
		return -EIO;
	}
	if (!off)
		return 0;
	r = qcow2_check_table(q, off, "L2 table");
	if (r < 0)
		return r;
	return qcow2_cache_get(q, &q->l2c, off, false, t);
}

static int check_entry(struct qcow2 *q, uint64_t e)
{
	uint64_t host, len;

	if (!(e & QCOW2_COMPRESSED) && (e & L2_RESERVED)) {
		warn_ratelimited("qcow2 %s: L2 entry %#llx has reserved bits "
				 "set",
				 q->b->path ? q->b->path : "",
				 (unsigned long long)e);
		return -EIO;
	}
	switch (qcow2_l2_type(q, e, &host)) {
	case QCOW2_NORMAL:
	case QCOW2_ZERO_ALLOC:
		return qcow2_check_data(q, host, q->cluster_size, true);
	case QCOW2_COMPRESSED_CL:
		qcow2_compressed_range(q, e, &host, &len);
		return qcow2_check_data(q, host, len, false);
	default:
		return 0;
	}
}

int qcow2_l2_lookup(struct qcow2 *q, uint64_t vc, uint64_t *entry)
{
	struct qcow2_table *t;
	int r = l2_table(q, vc >> q->l2_bits, &t);

	*entry = 0;
	if (r < 0 || !t)
		return r;
	*entry = qcow2_be64(t->data + 8 * (vc & ((1ULL << q->l2_bits) - 1)));
	return check_entry(q, *entry);
}

/* ---- reading ---- */

static int decompress(struct qcow2 *q, uint64_t e)
{
	uint64_t off, len, avail;
	int r;

	if (q->cbuf_entry == e)
		return 0;
	q->cbuf_entry = 0;
	qcow2_compressed_range(q, e, &off, &len);
	avail = off < q->file_size ? q->file_size - off : 0;
	if (avail > len)
		avail = len;
	r = qcow2_pread(q->fd, q->cbuf2, avail, off);
	if (r < 0)
		return r;
	if (q->compression_type == 0) {
		z_stream z = { 0 };

		if (inflateInit2(&z, -15) != Z_OK)
			return -ENOMEM;
		z.next_in = q->cbuf2;
		z.avail_in = (uInt)avail;
		z.next_out = q->cbuf;
		z.avail_out = (uInt)q->cluster_size;
		r = inflate(&z, Z_FINISH);
		inflateEnd(&z);
		if ((r != Z_STREAM_END && r != Z_BUF_ERROR) || z.avail_out)
			goto err_data;
	} else {
		ZSTD_inBuffer in = { q->cbuf2, avail, 0 };
		ZSTD_outBuffer out = { q->cbuf, q->cluster_size, 0 };

		ZSTD_DCtx_reset(q->zstd, ZSTD_reset_session_only);
		while (out.pos < out.size) {
			size_t z = ZSTD_decompressStream(q->zstd, &out, &in);

			if (ZSTD_isError(z))
				goto err_data;
			if (in.pos == in.size && out.pos < out.size)
				goto err_data;
		}
	}
	q->cbuf_entry = e;
	return 0;

err_data:
	warn_ratelimited("qcow2 %s: bad compressed cluster at %#llx",
			 q->b->path ? q->b->path : "", (unsigned long long)off);
	return -EIO;
}

/* Disk bytes [off, off+len) from the backing file into @iov at @ioff. */
static int backing_read(struct qcow2 *q, uint64_t off, const struct iovec *iov,
			unsigned int cnt, uint64_t ioff, uint64_t len)
{
	uint64_t n = 0;
	unsigned int sn;
	int r;

	if (q->backing.fd >= 0 && off < q->backing.size)
		n = q->backing.size - off < len ? q->backing.size - off : len;
	if (n < len)
		iov_zero(iov, cnt, ioff + n, len - n);
	if (!n)
		return 0;
	r = siov_reserve(q, cnt + 2);
	if (r < 0)
		return r;
	sn = qcow2_iov_slice(iov, cnt, ioff, n, q->siov);
	if (q->backing.qcow2)
		return qcow2_read(q->backing.qcow2->format_priv, off, q->siov,
				  sn, n);
	return full_preadv(q->backing.fd, q->siov, sn, off);
}

/* What disk bytes [pos, pos+len) of one cluster (entry @e) read as. */
static int read_old(struct qcow2 *q, uint64_t pos, uint64_t e, uint8_t *buf,
		    uint64_t len)
{
	struct iovec v = { buf, len };
	uint64_t in = pos & (q->cluster_size - 1), host;
	int r;

	if (!len)
		return 0;
	switch (qcow2_l2_type(q, e, &host)) {
	case QCOW2_UNALLOCATED:
		return backing_read(q, pos, &v, 1, 0, len);
	case QCOW2_NORMAL:
		return full_preadv(q->data_fd, &v, 1, host + in);
	case QCOW2_COMPRESSED_CL:
		r = decompress(q, e);
		if (r < 0)
			return r;
		memcpy(buf, q->cbuf + in, len);
		return 0;
	default:
		memset(buf, 0, len);
		return 0;
	}
}

int qcow2_extent_at(struct qcow2 *q, uint64_t pos, uint64_t max,
		    struct qcow2_extent *x)
{
	uint64_t cs = q->cluster_size, in = pos & (cs - 1);
	uint64_t vc = pos >> q->cluster_bits, first = vc, e2, h2;
	uint64_t l2mask = (cs << q->l2_bits) - 1;
	uint64_t n = cs - in < max ? cs - in : max;
	int r = qcow2_l2_lookup(q, vc, &x->entry);

	if (r < 0)
		return r;
	x->pos = pos;
	x->type = qcow2_l2_type(q, x->entry, &x->host);
	/* Extend over clusters that map the same way, contiguously. */
	while (n < max && x->type != QCOW2_COMPRESSED_CL &&
	       ((pos + n) & l2mask)) {
		r = qcow2_l2_lookup(q, vc + 1, &e2);
		if (r < 0)
			return r;
		if (qcow2_l2_type(q, e2, &h2) != x->type ||
		    (x->type == QCOW2_NORMAL &&
		     (h2 != x->host + (vc + 1 - first) * cs ||
		      (e2 ^ x->entry) & QCOW2_COPIED)))
			break;
		vc++;
		n += max - n < cs ? max - n : cs;
	}
	if (x->type == QCOW2_NORMAL)
		x->host += in;
	x->len = n;
	return 0;
}

int qcow2_read(struct qcow2 *q, uint64_t off, const struct iovec *iov,
	       unsigned int iovcnt, uint64_t len)
{
	uint64_t end = off + len;
	struct qcow2_extent x = { .pos = off, .len = 0 };
	int r = siov_reserve(q, iovcnt + 2);

	while (r == 0 && x.pos + x.len < end) {
		uint64_t pos = x.pos + x.len, in;
		unsigned int sn;

		r = qcow2_extent_at(q, pos, end - pos, &x);
		if (r < 0)
			break;
		switch (x.type) {
		case QCOW2_UNALLOCATED:
			r = backing_read(q, pos, iov, iovcnt, pos - off, x.len);
			break;
		case QCOW2_NORMAL:
			sn = qcow2_iov_slice(iov, iovcnt, pos - off, x.len,
					     q->siov);
			r = full_preadv(q->data_fd, q->siov, sn, x.host);
			break;
		case QCOW2_COMPRESSED_CL:
			in = pos & (q->cluster_size - 1);
			r = decompress(q, x.entry);
			if (r == 0)
				iov_copy(iov, iovcnt, pos - off, q->cbuf + in,
					 x.len, true);
			break;
		default:
			iov_zero(iov, iovcnt, pos - off, x.len);
			break;
		}
	}
	return r;
}

/* ---- writing ---- */

static void l1_mark(struct qcow2 *q, uint64_t i)
{
	if (q->l1_dirty_hi <= q->l1_dirty_lo) {
		q->l1_dirty_lo = (uint32_t)i;
		q->l1_dirty_hi = (uint32_t)i + 1;
	}
	if (i < q->l1_dirty_lo)
		q->l1_dirty_lo = (uint32_t)i;
	if (i + 1 > q->l1_dirty_hi)
		q->l1_dirty_hi = (uint32_t)i + 1;
}

/* The L2 table of L1 index @l1i, ours alone (allocated or copied). */
static int l2_writable(struct qcow2 *q, uint64_t l1i, struct qcow2_table **t)
{
	uint64_t e = q->l1[l1i], old = e & QCOW2_OFFSET_MASK, rc, n, got;
	int r;

	r = l2_table(q, l1i, t);
	if (r < 0)
		return r;
	if (*t && (e & QCOW2_COPIED))
		return 0;
	if (*t) {
		r = qcow2_refcount_get(q, old >> q->cluster_bits, &rc);
		if (r < 0)
			return r;
		if (rc == 1) {
			q->l1[l1i] |= QCOW2_COPIED;
			l1_mark(q, l1i);
			return 0;
		}
		if (!rc) {
			warn_ratelimited("qcow2 %s: L2 table at %#llx has "
					 "refcount 0",
					 q->b->path ? q->b->path : "",
					 (unsigned long long)old);
			return -EIO;
		}
		memcpy(q->hbuf, (*t)->data, q->cluster_size);
	}
	r = qcow2_alloc(q, 1, &n, &got);
	if (r < 0)
		return r;
	r = qcow2_cache_get(q, &q->l2c, n, true, t);
	if (r < 0)
		return r;
	if (old) {
		memcpy((*t)->data, q->hbuf, q->cluster_size);
		r = qcow2_free_later(q, old, q->cluster_size);
		if (r < 0)
			return r;
	}
	q->l1[l1i] = n | QCOW2_COPIED;
	l1_mark(q, l1i);
	return 0;
}

/* Whether the cluster part from disk offset @pos (entry @e) reads zeroes. */
static bool reads_zero(const struct qcow2 *q, uint64_t pos, uint64_t e)
{
	uint64_t host;

	switch (qcow2_l2_type(q, e, &host)) {
	case QCOW2_UNALLOCATED:
		return q->backing.fd < 0 || pos >= q->backing.size;
	case QCOW2_ZERO_PLAIN:
	case QCOW2_ZERO_ALLOC:
		return true;
	default:
		return false;
	}
}

/* Whether entry @i of @t can take a write in place (fixing COPIED). */
static int in_place(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
		    uint64_t *e)
{
	uint64_t host, rc;
	int r;

	*e = qcow2_be64(t->data + 8 * i);
	r = check_entry(q, *e);
	if (r < 0)
		return r;
	if (qcow2_l2_type(q, *e, &host) != QCOW2_NORMAL)
		return 0;
	if (*e & QCOW2_COPIED)
		return 1;
	r = qcow2_refcount_get(q, host >> q->cluster_bits, &rc);
	if (r < 0)
		return r;
	if (rc != 1)
		return 0;
	*e |= QCOW2_COPIED;
	qcow2_put_be64(t->data + 8 * i, *e);
	t->dirty = true;
	return 1;
}

/*
 * Write [pos, pos+len), inside one L2 table, from @iov at @ioff (or zeroes
 * when @iov is NULL).
 */
static int write_chunk(struct qcow2 *q, uint64_t pos, uint64_t len,
		       const struct iovec *iov, unsigned int iovcnt,
		       uint64_t ioff)
{
	uint64_t cs = q->cluster_size, mask = (1ULL << q->l2_bits) - 1;
	uint64_t end = pos + len;
	struct qcow2_table *t;
	struct iovec zv;
	int r;

	if (!iov) {
		zv.iov_base = q->zbuf;
		zv.iov_len = len;
		iov = &zv;
		iovcnt = 1;
		ioff = 0;
	}
	r = l2_writable(q, pos >> (q->cluster_bits + q->l2_bits), &t);
	while (r == 0 && pos < end) {
		uint64_t vc = pos >> q->cluster_bits, in = pos & (cs - 1);
		uint64_t e, e2, host, k, got, wend, head, tail;
		unsigned int sn = 0;
		bool fresh;
		int ip = in_place(q, t, vc & mask, &e);

		if (ip < 0)
			return ip;
		if (ip) {
			uint64_t n = cs - in < end - pos ? cs - in : end - pos;

			qcow2_l2_type(q, e, &host);
			while (pos + n < end) {
				ip = in_place(q, t, (vc + 1) & mask, &e2);
				if (ip < 0)
					return ip;
				if (!ip ||
				    (e2 & QCOW2_OFFSET_MASK) !=
					    host + (vc + 1 -
						    (pos >> q->cluster_bits)) *
							    cs)
					break;
				vc++;
				n += end - (pos + n) < cs ? end - (pos + n) :
							    cs;
			}
			sn = qcow2_iov_slice(iov, iovcnt, ioff, n, q->siov);
			r = full_pwritev(q, q->siov, sn, host + in);
			pos += n;
			ioff += n;
			continue;
		}
		/* A run of clusters needing new space. */
		for (k = 1;
		     ((vc + k) << q->cluster_bits) < end && ((vc + k) & mask);
		     k++) {
			ip = in_place(q, t, (vc + k) & mask, &e2);
			if (ip < 0)
				return ip;
			if (ip)
				break;
		}
		r = qcow2_alloc(q, k, &host, &got);
		if (r < 0)
			return r;
		r = qcow2_check_data(q, host, got * cs, true);
		if (r < 0)
			return r;
		qcow2_grow_file(q, host + got * cs);
		/* Allocating may have evicted the table from the cache. */
		r = l2_table(q, vc >> q->l2_bits, &t);
		if (r < 0)
			return r;
		wend = (vc + got) << q->cluster_bits;
		if (wend > end)
			wend = end;
		tail = (-wend) & (cs - 1);
		e2 = qcow2_be64(t->data + 8 * ((vc + got - 1) & mask));
		/*
		 * Space past the end of the file reads as zeroes: parts of the
		 * new clusters that must read as zeroes need no writing there.
		 */
		fresh = host >= q->file_size;
		head = fresh && reads_zero(q, pos - in, e) ? 0 : in;
		if (fresh && reads_zero(q, wend, e2))
			tail = 0;
		r = read_old(q, pos - head, e, q->hbuf, head);
		if (r < 0)
			return r;
		if (tail) {
			r = read_old(q, wend, e2, q->tbuf, tail);
			if (r < 0)
				return r;
		}
		if (head) {
			q->siov[0].iov_base = q->hbuf;
			q->siov[0].iov_len = head;
			sn = 1;
		}
		sn += qcow2_iov_slice(iov, iovcnt, ioff, wend - pos,
				      q->siov + sn);
		if (tail) {
			q->siov[sn].iov_base = q->tbuf;
			q->siov[sn].iov_len = tail;
			sn++;
		}
		r = full_pwritev(q, q->siov, sn, host + in - head);
		if (r < 0)
			return r;
		for (uint64_t i = 0; i < got; i++) {
			uint64_t *slot =
				(uint64_t *)(t->data + 8 * ((vc + i) & mask));

			e2 = qcow2_be64((uint8_t *)slot);
			qcow2_put_be64((uint8_t *)slot,
				       (host + i * cs) | QCOW2_COPIED);
			r = qcow2_free_entry_later(q, e2);
			if (r < 0)
				return r;
		}
		t->dirty = true;
		q->cbuf_entry = 0;
		ioff += wend - pos;
		pos = wend;
	}
	return r;
}

#define QCOW2_GROW_STEP (8ULL << 20)

void qcow2_grow_file(struct qcow2 *q, uint64_t end)
{
	uint64_t cur = q->grown_to > q->file_size ? q->grown_to : q->file_size;
	uint64_t step = QCOW2_GROW_STEP > 8 * q->cluster_size ?
				QCOW2_GROW_STEP :
				8 * q->cluster_size;
	uint64_t target = (end + step - 1) / step * step;

	if (end <= cur || q->b->is_blockdev || target > QCOW2_MAX_HOST)
		return;
	if (fallocate(q->fd, 0, (off_t)cur, (off_t)(target - cur)) < 0 &&
	    ftruncate(q->fd, (off_t)target) < 0)
		return;
	q->grown_to = target;
}

/* Head or tail fill of an allocating write: zeroes, or read into @buf. */
static int alloc_fill(struct qcow2 *q, uint64_t pos, uint64_t e, bool fresh,
		      uint64_t len, uint8_t *buf, const uint8_t **fill,
		      uint64_t *fill_len)
{
	*fill = NULL;
	*fill_len = 0;
	if (!len || (fresh && reads_zero(q, pos, e)))
		return 0;
	*fill_len = len;
	if (reads_zero(q, pos, e)) {
		*fill = q->zbuf;
		return 0;
	}
	*fill = buf;
	return read_old(q, pos, e, buf, len);
}

int qcow2_alloc_write_start(struct qcow2 *q, uint64_t pos, uint64_t len,
			    struct qcow2_alloc_write *w)
{
	uint64_t cs = q->cluster_size, mask = (1ULL << q->l2_bits) - 1;
	uint64_t vc = pos >> q->cluster_bits, in = pos & (cs - 1);
	uint64_t k = ((pos + len + cs - 1) >> q->cluster_bits) - vc;
	uint64_t tail = (-(pos + len)) & (cs - 1), e, e2, got;
	struct qcow2_table *t;
	bool fresh;
	int r;

	memset(w, 0, sizeof(*w));
	if (vc >> q->l2_bits != (vc + k - 1) >> q->l2_bits)
		return 0;
	r = l2_writable(q, vc >> q->l2_bits, &t);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < k; i++) {
		r = in_place(q, t, (vc + i) & mask, &e);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	e = qcow2_be64(t->data + 8 * (vc & mask));
	e2 = qcow2_be64(t->data + 8 * ((vc + k - 1) & mask));
	r = qcow2_alloc(q, k, &w->host, &got);
	if (r < 0)
		return r;
	if (got < k) {
		/* Free space is fragmented here: the general path copes. */
		r = qcow2_free_later(q, w->host, got * cs);
		return r < 0 ? r : 0;
	}
	w->vc = vc;
	w->count = k;
	r = qcow2_check_data(q, w->host, k * cs, true);
	if (r == 0)
		qcow2_grow_file(q, w->host + k * cs);
	if (r == 0 && ((in && !reads_zero(q, pos - in, e)) ||
		       (tail && !reads_zero(q, pos + len, e2)))) {
		if (posix_memalign((void **)&w->pad, 4096, 2 * cs))
			r = -ENOMEM;
	}
	/* Space past the end of the file reads as zeroes already. */
	fresh = w->host >= q->file_size;
	if (r == 0)
		r = alloc_fill(q, pos - in, e, fresh, in, w->pad, &w->head,
			       &w->head_len);
	if (r == 0)
		r = alloc_fill(q, pos + len, e2, fresh, tail,
			       w->pad ? w->pad + cs : NULL, &w->tail,
			       &w->tail_len);
	if (r < 0)
		return qcow2_alloc_write_end(q, w, r);
	w->start = w->host + in - w->head_len;
	return 1;
}

int qcow2_alloc_write_end(struct qcow2 *q, struct qcow2_alloc_write *w,
			  int result)
{
	uint64_t mask = (1ULL << q->l2_bits) - 1;
	struct qcow2_table *t = NULL;
	int r = result;

	free(w->pad);
	w->pad = NULL;
	if (r == 0)
		r = l2_table(q, w->vc >> q->l2_bits, &t);
	if (r == 0 && !t)
		r = -EIO;
	if (r < 0) {
		/* Nothing points at the new clusters: give them back. */
		if (w->count &&
		    qcow2_free_later(q, w->host, w->count << q->cluster_bits))
			warn_ratelimited("qcow2 %s: leaked %llu clusters",
					 q->b->path ? q->b->path : "",
					 (unsigned long long)w->count);
		return r;
	}
	for (uint64_t i = 0; i < w->count; i++) {
		uint8_t *slot = t->data + 8 * ((w->vc + i) & mask);
		uint64_t old = qcow2_be64(slot);

		qcow2_put_be64(slot, (w->host + (i << q->cluster_bits)) |
					     QCOW2_COPIED);
		/* Failing to drop the old reference only leaks its cluster. */
		if (qcow2_free_entry_later(q, old))
			warn_ratelimited("qcow2 %s: leaked a cluster",
					 q->b->path ? q->b->path : "");
	}
	t->dirty = true;
	q->cbuf_entry = 0;
	return 0;
}

static int write_range(struct qcow2 *q, uint64_t off, const struct iovec *iov,
		       unsigned int iovcnt, uint64_t len)
{
	uint64_t l2span = q->cluster_size << q->l2_bits, pos = off;
	/* The data's iovecs (zeroes: one), a head and a tail. */
	int r = siov_reserve(q, (iov ? iovcnt : 1) + 2);

	while (r == 0 && pos < off + len) {
		uint64_t n = l2span - (pos & (l2span - 1));

		/* Zeroes come from one cluster of them: a cluster at a time. */
		if (!iov)
			n = q->cluster_size - (pos & (q->cluster_size - 1));
		if (n > off + len - pos)
			n = off + len - pos;
		r = write_chunk(q, pos, n, iov, iovcnt, pos - off);
		pos += n;
	}
	return r;
}

int qcow2_write(struct qcow2 *q, uint64_t off, const struct iovec *iov,
		unsigned int iovcnt, uint64_t len)
{
	return write_range(q, off, iov, iovcnt, len);
}

/*
 * Set the entries of disk clusters [first, first+count) to @newe (0 or
 * QCOW2_ZERO), dropping the references the old entries held. A cluster
 * without an L2 table is left alone unless zeroes must hide a backing
 * file.
 */
static int set_entries(struct qcow2 *q, uint64_t first, uint64_t count,
		       uint64_t newe)
{
	uint64_t mask = (1ULL << q->l2_bits) - 1;
	int r = 0;

	for (uint64_t vc = first; vc < first + count && r == 0;) {
		uint64_t l1i = vc >> q->l2_bits;
		uint64_t n = (mask + 1) - (vc & mask);
		struct qcow2_table *t;
		bool change = false;

		if (n > first + count - vc)
			n = first + count - vc;
		r = l2_table(q, l1i, &t);
		if (r < 0)
			return r;
		/* No L2 table: unallocated already, fine unless zeroes must
		 * hide a backing file. */
		if (!t && !(newe && q->backing.fd >= 0)) {
			vc += n;
			continue;
		}
		for (uint64_t i = 0; t && i < n && !change; i++)
			change = qcow2_be64(t->data + 8 * ((vc + i) & mask)) !=
				 newe;
		if (t && !change) {
			vc += n;
			continue;
		}
		r = l2_writable(q, l1i, &t);
		if (r < 0)
			return r;
		for (uint64_t i = 0; i < n; i++) {
			uint8_t *slot = t->data + 8 * ((vc + i) & mask);
			uint64_t e = qcow2_be64(slot);

			if (e == newe)
				continue;
			r = check_entry(q, e);
			if (r == 0)
				r = qcow2_free_entry_later(q, e);
			if (r < 0)
				return r;
			qcow2_put_be64(slot, newe);
			t->dirty = true;
		}
		q->cbuf_entry = 0;
		vc += n;
	}
	return r;
}

/* Whole clusters inside [off, off+len): first and count. */
static void whole_clusters(struct qcow2 *q, uint64_t off, uint64_t len,
			   uint64_t *first, uint64_t *count)
{
	uint64_t cs = q->cluster_size;
	uint64_t a = (off + cs - 1) & ~(cs - 1), b = (off + len) & ~(cs - 1);

	if (off + len == q->size)
		b = (off + len + cs - 1) & ~(cs - 1);
	*first = a >> q->cluster_bits;
	*count = b > a ? (b - a) >> q->cluster_bits : 0;
}

int qcow2_write_zeroes(struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint64_t first, count, a, b;
	bool has_backing = q->backing.fd >= 0;
	int r;

	whole_clusters(q, off, len, &first, &count);
	if (!count || (q->version == 2 && has_backing))
		return write_range(q, off, NULL, 0, len);
	a = first << q->cluster_bits;
	b = (first + count) << q->cluster_bits;
	if (b > off + len)
		b = off + len;
	r = write_range(q, off, NULL, 0, a - off);
	if (r == 0)
		r = write_range(q, b, NULL, 0, off + len - b);
	if (r == 0)
		r = set_entries(q, first, count,
				q->version == 3 && has_backing ? QCOW2_ZERO :
								 0);
	return r;
}

int qcow2_discard(struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint64_t first, count;
	int r;

	whole_clusters(q, off, len, &first, &count);
	if (!count)
		return 0;
	r = set_entries(q, first, count,
			q->version == 3 && q->backing.fd >= 0 ? QCOW2_ZERO : 0);
	if (r == 0)
		r = qcow2_commit(q, false);
	return r;
}
