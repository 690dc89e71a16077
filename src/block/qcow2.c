/*
 * The qcow2 image format (QEMU's docs/interop/qcow2.txt): opening,
 * validation, backing files, request dispatch and close.
 *
 * Every number the header gives is checked here at open, against the
 * file size and the format's limits, and the header's tables against
 * each other; table offsets found later (L2 tables, refcount blocks, data
 * clusters) go through qcow2_check_table()/qcow2_check_data(), so a bad
 * image is an error at open or -EIO for one request, never a wild access.
 *
 * The header is never rewritten as a whole: only the feature bit fields
 * and the refcount table pointer are updated in place, so header
 * extensions we do not know survive untouched. Requests are dispatched
 * in qcow2_aio.c; a backing file is read synchronously through its own
 * format (raw, or qcow2 recursively, read-only).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "block/qcow2.h"

/* Files already in the backing chain (loop detection). */
struct chain {
	dev_t dev;
	ino_t ino;
	const struct chain *next;
	unsigned int depth;
};

static int open_chain(struct blk *b, char *err, size_t errlen,
		      const struct chain *up);

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__printf(4, 5);

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

enum qcow2_type qcow2_l2_type(const struct qcow2 *q, uint64_t e, uint64_t *host)
{
	*host = 0;
	if (e & QCOW2_COMPRESSED) {
		*host = e & q->coff_mask;
		return QCOW2_COMPRESSED_CL;
	}
	*host = e & QCOW2_OFFSET_MASK;
	if (e & QCOW2_ZERO)
		return *host ? QCOW2_ZERO_ALLOC : QCOW2_ZERO_PLAIN;
	return *host ? QCOW2_NORMAL : QCOW2_UNALLOCATED;
}

void qcow2_compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off,
			    uint64_t *len)
{
	uint64_t sectors = ((e >> q->csize_shift) & q->csize_mask) + 1;

	*off = e & q->coff_mask;
	*len = sectors * 512 - (*off & 511);
}

static const char *path_of(const struct qcow2 *q)
{
	return q->b->path ? q->b->path : "image";
}

int qcow2_check_table(struct qcow2 *q, uint64_t off, const char *what)
{
	const char *why = NULL;

	if (off & (q->cluster_size - 1))
		why = "not cluster aligned";
	else if (!off)
		why = "over the header";
	else if (off >= QCOW2_MAX_HOST || off + q->cluster_size > q->host_end)
		why = "beyond the end of the file";
	else if (ranges_overlap(off, q->cluster_size, q->l1_offset,
				(uint64_t)q->l1_size * 8))
		why = "over the L1 table";
	else if (ranges_overlap(off, q->cluster_size, q->rt_offset,
				(uint64_t)q->rt_clusters << q->cluster_bits))
		why = "over the refcount table";
	if (!why)
		return 0;
	warn_ratelimited("qcow2 %s: %s at %#llx is %s", path_of(q), what,
			 (unsigned long long)off, why);
	return -EIO;
}

int qcow2_check_data(struct qcow2 *q, uint64_t off, uint64_t len, bool aligned)
{
	const char *why = NULL;

	if (aligned && (off & (q->cluster_size - 1)))
		why = "not cluster aligned";
	else if (off < q->cluster_size)
		why = "over the header";
	else if (off >= QCOW2_MAX_HOST || len > QCOW2_MAX_HOST - off)
		why = "beyond the largest offset";
	else if (ranges_overlap(off, len, q->l1_offset,
				(uint64_t)q->l1_size * 8))
		why = "over the L1 table";
	else if (ranges_overlap(off, len, q->rt_offset,
				(uint64_t)q->rt_clusters << q->cluster_bits))
		why = "over the refcount table";
	if (!why)
		return 0;
	warn_ratelimited("qcow2 %s: data cluster at %#llx is %s", path_of(q),
			 (unsigned long long)off, why);
	return -EIO;
}

static bool qcow2_probe(const uint8_t *head, size_t len)
{
	return len >= 4 && qcow2_be32(head) == QCOW2_MAGIC;
}

/* The feature name table's name for a bit, or NULL (spec: extensions). */
static const char *feature_name(const uint8_t *ft, uint32_t ftlen, uint8_t type,
				unsigned int bit, char *buf, size_t buflen)
{
	for (uint32_t i = 0; i + 48 <= ftlen; i += 48) {
		if (ft[i] == type && ft[i + 1] == bit) {
			snprintf(buf, buflen, "%.46s",
				 (const char *)ft + i + 2);
			return buf;
		}
	}
	return NULL;
}

/* Parsed header cluster: what the extensions say. */
struct hdr_ext {
	char backing_fmt[32];
	bool has_backing_fmt;
	const uint8_t *features;
	uint32_t features_len;
};

static int parse_extensions(const uint8_t *h, uint64_t start, uint64_t end,
			    struct hdr_ext *x, char *err, size_t errlen)
{
	uint64_t p = start;

	while (p + 8 <= end) {
		uint32_t type = qcow2_be32(h + p);
		uint32_t len = qcow2_be32(h + p + 4);

		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - p - 8)
			return fail(err, errlen, -EINVAL,
				    "header extension %#x at %llu runs past "
				    "the header cluster",
				    type, (unsigned long long)p);
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			if (len >= sizeof(x->backing_fmt))
				return fail(err, errlen, -EINVAL,
					    "backing format name too long");
			memcpy(x->backing_fmt, h + p + 8, len);
			x->backing_fmt[len] = 0;
			x->has_backing_fmt = true;
		} else if (type == QCOW2_EXT_FEATURE_NAMES) {
			x->features = h + p + 8;
			x->features_len = len;
		}
		p += 8 + (((uint64_t)len + 7) & ~7ULL);
	}
	return 0;
}

/* Refuse what we cannot honour, naming the feature. */
static int check_features(struct qcow2 *q, uint32_t crypt,
			  const struct hdr_ext *x, char *err, size_t errlen)
{
	static const uint64_t known = QCOW2_INCOMPAT_DIRTY |
				      QCOW2_INCOMPAT_CORRUPT |
				      QCOW2_INCOMPAT_COMPRESSION;
	char name[64];

	if (crypt)
		return fail(err, errlen, -ENOTSUP,
			    "encrypted images are not supported "
			    "(encryption method %u)",
			    crypt);
	if (q->incompat & QCOW2_INCOMPAT_DATA_FILE)
		return fail(err, errlen, -ENOTSUP,
			    "external data files are not supported");
	if (q->incompat & QCOW2_INCOMPAT_EXTL2)
		return fail(err, errlen, -ENOTSUP,
			    "extended L2 entries (subclusters) are not "
			    "supported");
	for (unsigned int bit = 0; bit < 64; bit++) {
		if (!(q->incompat & ~known & (1ULL << bit)))
			continue;
		if (feature_name(x->features, x->features_len, 0, bit, name,
				 sizeof(name)))
			return fail(err, errlen, -ENOTSUP,
				    "unsupported incompatible feature: %s "
				    "(bit %u)",
				    name, bit);
		return fail(err, errlen, -ENOTSUP,
			    "unsupported incompatible feature bit %u", bit);
	}
	if (!!(q->incompat & QCOW2_INCOMPAT_COMPRESSION) !=
	    (q->compression_type != 0))
		return fail(err, errlen, -EINVAL,
			    "compression type %u does not match the "
			    "compression type feature bit",
			    q->compression_type);
	if (q->compression_type > 1)
		return fail(err, errlen, -ENOTSUP,
			    "unknown compression type %u", q->compression_type);
	return 0;
}

/* A table given by the header: aligned, inside the file, sane size. */
static int check_header_table(struct qcow2 *q, uint64_t off, uint64_t len,
			      const char *what, char *err, size_t errlen)
{
	if (!len)
		return 0;
	if (off & (q->cluster_size - 1))
		return fail(err, errlen, -EINVAL,
			    "%s offset %#llx is not cluster aligned", what,
			    (unsigned long long)off);
	if (!off)
		return fail(err, errlen, -EINVAL, "%s overlaps the header",
			    what);
	if (off >= QCOW2_MAX_HOST || len > q->file_size ||
	    off > q->file_size - len)
		return fail(err, errlen, -EINVAL,
			    "%s (%#llx, %llu bytes) is beyond the end of the "
			    "file",
			    what, (unsigned long long)off,
			    (unsigned long long)len);
	return 0;
}

static int read_snapshots(struct qcow2 *q, char *err, size_t errlen)
{
	uint64_t p = q->snapshots_offset, end = p;
	uint8_t e[40];
	int r;

	if (!q->nb_snapshots)
		return 0;
	if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return fail(err, errlen, -EINVAL, "too many snapshots (%u)",
			    q->nb_snapshots);
	r = check_header_table(q, p, 40, "snapshot table", err, errlen);
	if (r < 0)
		return r;
	q->snaps = calloc(q->nb_snapshots, sizeof(*q->snaps));
	if (!q->snaps)
		return fail(err, errlen, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		uint64_t len, l1bytes;

		if (p + 40 > q->file_size || qcow2_pread(q->fd, e, 40, p) < 0)
			return fail(err, errlen, -EINVAL,
				    "snapshot table is beyond the end of the "
				    "file");
		q->snaps[i].l1_offset = qcow2_be64(e);
		q->snaps[i].l1_size = qcow2_be32(e + 8);
		len = 40 + (uint64_t)qcow2_be32(e + 36) + qcow2_be16(e + 12) +
		      qcow2_be16(e + 14);
		/* The last entry's padding need not be in the file. */
		end = p + len;
		p += (len + 7) & ~7ULL;
		l1bytes = (uint64_t)q->snaps[i].l1_size * 8;
		if (l1bytes > QCOW2_MAX_L1_BYTES)
			return fail(err, errlen, -EINVAL,
				    "snapshot %u: L1 table too large", i);
		r = check_header_table(q, q->snaps[i].l1_offset, l1bytes,
				       "snapshot L1 table", err, errlen);
		if (r < 0)
			return r;
	}
	q->snapshots_len = end - q->snapshots_offset;
	if (end > q->file_size)
		return fail(err, errlen, -EINVAL,
			    "snapshot table is beyond the end of the file");
	return 0;
}

static int check_overlaps(struct qcow2 *q, char *err, size_t errlen)
{
	struct {
		const char *what;
		uint64_t off, len;
	} t[] = {
		{ "header", 0, q->cluster_size },
		{ "L1 table", q->l1_offset, (uint64_t)q->l1_size * 8 },
		{ "refcount table", q->rt_offset,
		  (uint64_t)q->rt_clusters << q->cluster_bits },
		{ "snapshot table", q->snapshots_offset, q->snapshots_len },
	};

	for (size_t i = 0; i < 4; i++)
		for (size_t j = i + 1; j < 4; j++)
			if (ranges_overlap(t[i].off, t[i].len, t[j].off,
					   t[j].len))
				return fail(err, errlen, -EINVAL,
					    "%s overlaps the %s", t[j].what,
					    t[i].what);
	return 0;
}

static int load_tables(struct qcow2 *q, char *err, size_t errlen)
{
	uint64_t l1bytes = (uint64_t)q->l1_size * 8;
	uint8_t *buf;
	size_t rtbytes = (size_t)q->rt_clusters << q->cluster_bits;
	int r;

	q->l1 = calloc(q->l1_size ? q->l1_size : 1, 8);
	q->rt = calloc(q->rt_entries, 8);
	buf = malloc(rtbytes > l1bytes ? rtbytes : l1bytes + 1);
	if (!q->l1 || !q->rt || !buf) {
		free(buf);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	r = qcow2_pread(q->fd, buf, l1bytes, q->l1_offset);
	if (r < 0)
		goto err_read;
	for (uint32_t i = 0; i < q->l1_size; i++)
		q->l1[i] = qcow2_be64(buf + 8 * i);
	r = qcow2_pread(q->fd, buf, rtbytes, q->rt_offset);
	if (r < 0)
		goto err_read;
	for (uint64_t i = 0; i < q->rt_entries; i++)
		q->rt[i] = qcow2_be64(buf + 8 * i);
	free(buf);
	return 0;

err_read:
	free(buf);
	return fail(err, errlen, r, "cannot read the metadata tables: %s",
		    strerror(-r));
}

static int open_backing(struct qcow2 *q, const char *name,
			const struct hdr_ext *x, const struct chain *up,
			char *err, size_t errlen)
{
	struct chain me = { 0, 0, up, up ? up->depth + 1 : 1 };
	char path[PATH_MAX], inner[256];
	uint8_t head[4];
	struct stat st;
	bool is_qcow2;
	int fd, r;

	if (me.depth > QCOW2_MAX_BACKING_DEPTH)
		return fail(err, errlen, -ELOOP,
			    "backing chain deeper than %d images",
			    QCOW2_MAX_BACKING_DEPTH);
	if (name[0] == '/' || !q->b->path || !strchr(q->b->path, '/')) {
		if (snprintf(path, sizeof(path), "%s", name) >=
		    (int)sizeof(path))
			return fail(err, errlen, -ENAMETOOLONG,
				    "backing file name too long");
	} else {
		int dir = (int)(strrchr(q->b->path, '/') - q->b->path);

		if (snprintf(path, sizeof(path), "%.*s/%s", dir, q->b->path,
			     name) >= (int)sizeof(path))
			return fail(err, errlen, -ENAMETOOLONG,
				    "backing file name too long");
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, -errno, "backing file %s: %s", path,
			    strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = fail(err, errlen, -errno, "backing file %s: %s", path,
			 strerror(errno));
		goto err_close;
	}
	me.dev = st.st_dev;
	me.ino = st.st_ino;
	for (const struct chain *c = up; c; c = c->next) {
		if (c->dev == st.st_dev && c->ino == st.st_ino) {
			r = fail(err, errlen, -ELOOP,
				 "backing file %s is already in the chain "
				 "(a loop)",
				 path);
			goto err_close;
		}
	}
	if (x->has_backing_fmt) {
		if (!strcmp(x->backing_fmt, "qcow2")) {
			is_qcow2 = true;
		} else if (!strcmp(x->backing_fmt, "raw")) {
			is_qcow2 = false;
		} else {
			r = fail(err, errlen, -ENOTSUP,
				 "backing file %s: unsupported format %s", path,
				 x->backing_fmt);
			goto err_close;
		}
	} else {
		is_qcow2 = pread(fd, head, 4, 0) == 4 && qcow2_probe(head, 4);
	}
	q->backing.fd = fd;
	q->backing.size = (uint64_t)st.st_size;
	if (!is_qcow2)
		return 0;

	q->backing.qcow2 = calloc(1, sizeof(struct blk));
	if (!q->backing.qcow2) {
		r = fail(err, errlen, -ENOMEM, "out of memory");
		goto err_close;
	}
	q->backing.qcow2->fd = fd;
	q->backing.qcow2->path = strdup(path);
	q->backing.qcow2->opts.read_only = true;
	q->backing.qcow2->opts.path = q->backing.qcow2->path;
	q->backing.qcow2->format = &blk_format_qcow2;
	if (!q->backing.qcow2->path) {
		r = fail(err, errlen, -ENOMEM, "out of memory");
		goto err_blk;
	}
	r = open_chain(q->backing.qcow2, inner, sizeof(inner), &me);
	if (r < 0) {
		if (!strncmp(inner, "backing file ", 13))
			snprintf(err, errlen, "%s", inner);
		else
			snprintf(err, errlen, "backing file %s: %s", path,
				 inner);
		goto err_blk;
	}
	q->backing.size = q->backing.qcow2->size;
	return 0;

err_blk:
	free((char *)q->backing.qcow2->path);
	free(q->backing.qcow2);
	q->backing.qcow2 = NULL;
err_close:
	close(fd);
	q->backing.fd = -1;
	return r;
}

static void qcow2_free_state(struct qcow2 *q)
{
	if (q->backing.qcow2) {
		(void)blk_format_qcow2.close(q->backing.qcow2);
		free((char *)q->backing.qcow2->path);
		free(q->backing.qcow2);
	}
	if (q->backing.fd >= 0)
		close(q->backing.fd);
	qcow2_cache_free(&q->l2c);
	qcow2_cache_free(&q->rbc);
	ZSTD_freeDCtx(q->zstd);
	free(q->l1);
	free(q->rt);
	free(q->snaps);
	free(q->frees);
	free(q->cbuf);
	free(q->cbuf2);
	free(q->hbuf);
	free(q->tbuf);
	free(q->zbuf);
	free(q->siov);
	free(q->ext);
	if (q->own_fd)
		close(q->fd);
	free(q);
}

static int clamp(uint64_t v, int lo, int hi)
{
	return v < (uint64_t)lo ? lo : v > (uint64_t)hi ? hi : (int)v;
}

/* Parse and check the header fields (spec: "Header"). */
static int parse_header(struct qcow2 *q, const uint8_t *h, size_t hlen,
			uint32_t *crypt, char *err, size_t errlen)
{
	uint64_t l2_cover, need;

	if (hlen < QCOW2_HDR_V2_LEN || qcow2_be32(h) != QCOW2_MAGIC)
		return fail(err, errlen, -EINVAL,
			    hlen < QCOW2_HDR_V2_LEN ? "truncated qcow2 header" :
						      "not a qcow2 image");
	q->version = qcow2_be32(h + 4);
	if (q->version != 2 && q->version != 3)
		return fail(err, errlen, -ENOTSUP,
			    "unsupported qcow2 version %u", q->version);
	q->cluster_bits = qcow2_be32(h + 20);
	if (q->cluster_bits < 9 || q->cluster_bits > 21)
		return fail(err, errlen, -EINVAL,
			    "cluster size 2^%u is outside 512 B - 2 MiB",
			    q->cluster_bits);
	q->cluster_size = 1ULL << q->cluster_bits;
	q->l2_bits = q->cluster_bits - 3;
	q->size = qcow2_be64(h + 24);
	*crypt = qcow2_be32(h + 32);
	q->l1_size = qcow2_be32(h + 36);
	q->l1_offset = qcow2_be64(h + 40);
	q->rt_offset = qcow2_be64(h + 48);
	q->rt_clusters = qcow2_be32(h + 56);
	q->nb_snapshots = qcow2_be32(h + 60);
	q->snapshots_offset = qcow2_be64(h + 64);
	q->refcount_order = 4;
	q->header_length = QCOW2_HDR_V2_LEN;
	if (q->version == 3) {
		if (hlen < QCOW2_HDR_V3_LEN)
			return fail(err, errlen, -EINVAL,
				    "truncated qcow2 header");
		q->incompat = qcow2_be64(h + 72);
		q->compat = qcow2_be64(h + 80);
		q->autoclear = qcow2_be64(h + 88);
		q->refcount_order = qcow2_be32(h + 96);
		q->header_length = qcow2_be32(h + 100);
		if (q->header_length < QCOW2_HDR_V3_LEN ||
		    q->header_length > q->cluster_size ||
		    q->header_length > hlen || (q->header_length & 7))
			return fail(err, errlen, -EINVAL,
				    "bad header length %u", q->header_length);
		if (q->header_length > 104)
			q->compression_type = h[104];
		if (q->refcount_order > 6)
			return fail(err, errlen, -EINVAL,
				    "refcount width 2^%u bits is not allowed",
				    q->refcount_order);
	}
	q->refcount_max = q->refcount_order == 6 ?
				  UINT64_MAX :
				  (1ULL << (1U << q->refcount_order)) - 1;
	q->rb_bits = q->cluster_bits + 3 - q->refcount_order;
	q->csize_shift = 62 - (q->cluster_bits - 8);
	q->csize_mask = (1ULL << (q->cluster_bits - 8)) - 1;
	q->coff_mask = (1ULL << q->csize_shift) - 1;

	if (q->size > QCOW2_MAX_SIZE)
		return fail(err, errlen, -EINVAL, "virtual size %llu is absurd",
			    (unsigned long long)q->size);
	l2_cover = q->cluster_size << q->l2_bits;
	need = (q->size + l2_cover - 1) / l2_cover;
	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return fail(err, errlen, -EINVAL, "L1 table too large (%u)",
			    q->l1_size);
	if (need > q->l1_size)
		return fail(err, errlen, -EINVAL,
			    "L1 table (%u entries) too small for the virtual "
			    "size",
			    q->l1_size);
	if (!q->rt_clusters || ((uint64_t)q->rt_clusters << q->cluster_bits) >
				       QCOW2_MAX_REFTABLE_BYTES)
		return fail(err, errlen, -EINVAL,
			    "bad refcount table size (%u clusters)",
			    q->rt_clusters);
	q->rt_entries = ((uint64_t)q->rt_clusters << q->cluster_bits) / 8;
	return 0;
}

/* Read-write open: clear autoclear bits, recover a dirty image. */
static int open_rw(struct qcow2 *q, char *err, size_t errlen)
{
	uint8_t v[8];
	int r;

	/* Spec: a program that does not know an autoclear bit clears it. */
	if (q->version == 3 && q->autoclear) {
		q->autoclear = 0;
		qcow2_put_be64(v, 0);
		r = qcow2_pwrite(q, v, 8, QCOW2_HDR_AUTOCLEAR);
		if (r == 0)
			r = qcow2_sync(q);
		if (r < 0)
			return fail(err, errlen, r,
				    "cannot update the header: %s",
				    strerror(-r));
	}
	if (q->incompat & QCOW2_INCOMPAT_DIRTY) {
		info("qcow2 %s: dirty image, rebuilding refcounts", path_of(q));
		r = qcow2_rebuild_refcounts(q, err, errlen);
		if (r < 0)
			return r;
	}
	q->lazy = q->compat & QCOW2_COMPAT_LAZY_REFCOUNTS;
	return 0;
}

/* A cluster-sized buffer that direct I/O takes, or NULL. */
static uint8_t *aligned_cluster(const struct qcow2 *q)
{
	void *p;

	return posix_memalign(&p, 4096, q->cluster_size) ? NULL : p;
}

/*
 * With nocache b->fd has O_DIRECT, which metadata I/O (8-byte L1 entries,
 * header fields, unaligned compressed clusters) cannot use: q->fd is then
 * a second open of the same file without it.
 * The kernel keeps the page cache coherent with direct I/O of the same
 * file, and fdatasync() on either descriptor syncs the file.
 */
static int open_metadata_fd(struct qcow2 *q, char *err, size_t errlen)
{
	int fl = fcntl(q->b->fd, F_GETFL);
	char path[64];

	q->data_fd = q->fd = q->b->fd;
	if (fl < 0)
		return fail(err, errlen, -errno, "%s", strerror(errno));
	if (!(fl & O_DIRECT))
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", q->b->fd);
	q->fd = open(path, (fl & (O_ACCMODE | O_SYNC | O_DSYNC)) | O_CLOEXEC);
	if (q->fd < 0) {
		q->fd = q->b->fd;
		return fail(err, errlen, -errno,
			    "cannot open it a second time without O_DIRECT "
			    "for its metadata: %s",
			    strerror(errno));
	}
	q->own_fd = true;
	return 0;
}

static int open_chain(struct blk *b, char *err, size_t errlen,
		      const struct chain *up)
{
	struct hdr_ext x = { 0 };
	char backing[1024] = "";
	struct qcow2 *q;
	uint32_t crypt = 0, blen;
	uint64_t boff;
	uint8_t *h = NULL;
	size_t hlen;
	struct stat st;
	int r;

	q = calloc(1, sizeof(*q));
	if (!q)
		return fail(err, errlen, -ENOMEM, "out of memory");
	q->b = b;
	q->fd = b->fd;
	q->backing.fd = -1;
	q->punch = b->opts.discard;
	if (fstat(b->fd, &st) < 0) {
		r = fail(err, errlen, -errno, "%s", strerror(errno));
		goto err_free;
	}
	r = open_metadata_fd(q, err, errlen);
	if (r < 0)
		goto err_free;
	q->file_size = (uint64_t)st.st_size;
	q->host_end = q->file_size;

	hlen = q->file_size < (2U << 20) ? (size_t)q->file_size : (2U << 20);
	h = malloc(hlen + 1);
	if (!h) {
		r = fail(err, errlen, -ENOMEM, "out of memory");
		goto err_free;
	}
	r = qcow2_pread(q->fd, h, hlen, 0);
	if (r < 0) {
		r = fail(err, errlen, r, "cannot read the header: %s",
			 strerror(-r));
		goto err_free;
	}
	r = parse_header(q, h, hlen, &crypt, err, errlen);
	if (r < 0)
		goto err_free;
	/* blk_open() set the sector size: 512, sectorsize= or O_DIRECT's. */
	if (!b->logical_block)
		b->logical_block = 512;
	if (q->own_fd && q->cluster_size < b->logical_block) {
		r = fail(err, errlen, -EINVAL,
			 "nocache (O_DIRECT) needs clusters of at least %u "
			 "bytes here; the image has %llu-byte clusters",
			 b->logical_block,
			 (unsigned long long)q->cluster_size);
		goto err_free;
	}
	if (hlen > q->cluster_size)
		hlen = q->cluster_size;
	boff = qcow2_be64(h + 8);
	blen = qcow2_be32(h + 16);
	r = parse_extensions(h, (q->header_length + 7) & ~7U,
			     boff && boff < hlen ? boff : hlen, &x, err,
			     errlen);
	if (r < 0)
		goto err_free;
	r = check_features(q, crypt, &x, err, errlen);
	if (r < 0)
		goto err_free;
	if (boff) {
		if (blen == 0 || blen > 1023 || boff > hlen ||
		    blen > hlen - boff) {
			r = fail(err, errlen, -EINVAL,
				 "bad backing file name (offset %llu, %u "
				 "bytes)",
				 (unsigned long long)boff, blen);
			goto err_free;
		}
		memcpy(backing, h + boff, blen);
		backing[blen] = 0;
		if (strlen(backing) != blen) {
			r = fail(err, errlen, -EINVAL,
				 "backing file name contains a NUL byte");
			goto err_free;
		}
	}
	r = check_header_table(q, q->l1_offset, (uint64_t)q->l1_size * 8,
			       "L1 table", err, errlen);
	if (r == 0)
		r = check_header_table(q, q->rt_offset,
				       (uint64_t)q->rt_clusters
					       << q->cluster_bits,
				       "refcount table", err, errlen);
	if (r == 0)
		r = read_snapshots(q, err, errlen);
	if (r == 0)
		r = check_overlaps(q, err, errlen);
	if (r == 0)
		r = load_tables(q, err, errlen);
	if (r < 0)
		goto err_free;

	r = qcow2_cache_init(q, &q->l2c,
			     clamp((8U << 20) >> q->cluster_bits, 4, 64), true);
	if (r == 0)
		r = qcow2_cache_init(
			q, &q->rbc, clamp((2U << 20) >> q->cluster_bits, 4, 32),
			false);
	q->cbuf = malloc(q->cluster_size);
	q->cbuf2 = malloc(2 * q->cluster_size);
	q->hbuf = aligned_cluster(q);
	q->tbuf = aligned_cluster(q);
	q->zbuf = aligned_cluster(q);
	if (q->zbuf)
		memset(q->zbuf, 0, q->cluster_size);
	q->zstd = ZSTD_createDCtx();
	if (r < 0 || !q->cbuf || !q->cbuf2 || !q->hbuf || !q->tbuf ||
	    !q->zbuf || !q->zstd) {
		r = fail(err, errlen, -ENOMEM, "out of memory");
		goto err_free;
	}

	q->ro = b->opts.read_only;
	if ((q->incompat & QCOW2_INCOMPAT_CORRUPT) && !q->ro) {
		warn("qcow2 %s: the image is marked corrupt: opening it "
		     "read-only",
		     path_of(q));
		q->ro = true;
	}
	if (q->ro && (q->incompat & QCOW2_INCOMPAT_DIRTY))
		warn("qcow2 %s: the image is dirty (refcounts not rebuilt "
		     "read-only)",
		     path_of(q));
	if (!q->ro) {
		r = open_rw(q, err, errlen);
		if (r < 0)
			goto err_free;
	}
	if (backing[0]) {
		r = open_backing(q, backing, &x, up, err, errlen);
		if (r < 0)
			goto err_free;
	}
	free(h);
	b->format_priv = q;
	b->size = q->size;
	b->physical_block =
		q->cluster_size < 4096 ? (uint32_t)q->cluster_size : 4096;
	if (b->physical_block < b->logical_block)
		b->physical_block = b->logical_block;
	b->read_only = q->ro;
	b->can_discard = !q->ro && q->punch;
	return 0;

err_free:
	free(h);
	qcow2_free_state(q);
	return r;
}

static int qcow2_open(struct blk *b, char *err, size_t errlen)
{
	struct chain me = { 0, 0, NULL, 0 };
	struct stat st;

	if (fstat(b->fd, &st) == 0) {
		me.dev = st.st_dev;
		me.ino = st.st_ino;
	}
	return open_chain(b, err, errlen, &me);
}

/* Give back the space qcow2_grow_file() took ahead and nothing used. */
static void shrink_grown_file(struct qcow2 *q)
{
	uint64_t end = q->host_end > q->file_size ? q->host_end : q->file_size;

	if (q->grown_to > end && ftruncate(q->fd, (off_t)end) < 0)
		warn("qcow2 %s: could not shrink the file back to %llu bytes: "
		     "%s",
		     path_of(q), (unsigned long long)end, strerror(errno));
}

static int qcow2_close(struct blk *b)
{
	struct qcow2 *q = b->format_priv;
	uint8_t v[8];
	int r = 0;

	if (!q)
		return 0;
	if (!q->ro) {
		r = qcow2_commit(q, true);
		/* Both passes: the second writes what the first freed. */
		if (r == 0)
			r = qcow2_commit(q, true);
		if (r == 0)
			shrink_grown_file(q);
		if (r == 0 && q->dirty_on_disk) {
			q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
			qcow2_put_be64(v, q->incompat);
			r = qcow2_pwrite(q, v, 8, QCOW2_HDR_INCOMPAT);
			if (r == 0)
				r = qcow2_sync(q);
		}
	}
	qcow2_free_state(q);
	b->format_priv = NULL;
	return r;
}

const struct blk_format_ops blk_format_qcow2 = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.submit = qcow2_submit,
	.close = qcow2_close,
};
