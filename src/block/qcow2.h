/*
 * qcow2 internals shared by src/block/qcow2*.c and their tests (not an
 * interface for the rest of khyve: devices see only blk_format_qcow2).
 *
 * Layout (docs/interop/qcow2.txt of QEMU): a header in cluster 0, an L1
 * table of L2 table offsets, L2 tables of cluster descriptors, and a
 * two-level refcount structure (refcount table -> refcount blocks). All
 * on-disk numbers are big-endian; cached tables keep the on-disk bytes.
 *
 * Crash safety comes from the order in which the write-back caches reach
 * the file (qcow2_refcount.c: qcow2_commit): refcount increments and new
 * data are on stable storage before any L2 entry that points at them; an
 * L2 table before the L1 entry that points at it; and a reference is
 * removed on disk before the refcount it held is decremented.
 */
#ifndef KHYVE_BLOCK_QCOW2_H
#define KHYVE_BLOCK_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/blk.h"
#include "core/log.h"

#define QCOW2_MAGIC 0x514649fbU

/* Header field offsets (spec: "Header"). */
#define QCOW2_HDR_REFTABLE 48 /* u64 offset + u32 clusters */
#define QCOW2_HDR_INCOMPAT 72
#define QCOW2_HDR_AUTOCLEAR 88
#define QCOW2_HDR_V2_LEN 72
#define QCOW2_HDR_V3_LEN 104

#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)

#define QCOW2_EXT_END 0
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_FEATURE_NAMES 0x6803f857U
#define QCOW2_EXT_DATA_FILE 0x44415441U
#define QCOW2_EXT_CRYPTO 0x0537be77U

/* L1/L2 entries (spec: "Cluster mapping"). */
#define QCOW2_COPIED (1ULL << 63)
#define QCOW2_COMPRESSED (1ULL << 62)
#define QCOW2_ZERO (1ULL << 0)
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ULL /* bits 9-55 */
#define QCOW2_L1_RESERVED 0x7f000000000001ffULL
#define QCOW2_REFT_RESERVED 0x1ffULL

/* Limits: offsets fit in 56 bits; tables stay a sane size in memory. */
#define QCOW2_MAX_HOST (1ULL << 56)
#define QCOW2_MAX_SIZE (1ULL << 61)
#define QCOW2_MAX_L1_BYTES (32U << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8U << 20)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_BACKING_DEPTH 32

enum qcow2_type {
	QCOW2_UNALLOCATED, /* backing file, or zeroes without one */
	QCOW2_ZERO_PLAIN, /* reads zeroes, no host cluster */
	QCOW2_ZERO_ALLOC, /* reads zeroes, host cluster kept */
	QCOW2_NORMAL,
	QCOW2_COMPRESSED_CL,
};

/* A cached table: an L2 table or a refcount block, in on-disk bytes. */
struct qcow2_table {
	uint64_t off; /* 0: slot unused */
	uint8_t *data;
	uint64_t lru;
	bool dirty;
};

struct qcow2_cache {
	struct qcow2_table *t;
	unsigned int n;
	uint64_t tick;
	bool is_l2;
};

/* A reference to drop once the change removing it is on disk. */
struct qcow2_free {
	uint64_t off;
	uint64_t len;
};

/*
 * A run of disk bytes that map the same way: one type, and for NORMAL
 * clusters contiguous in the file with the same COPIED bit.
 */
struct qcow2_extent {
	uint64_t pos; /* disk offset of the first byte */
	uint64_t len;
	enum qcow2_type type;
	uint64_t host; /* NORMAL: file offset of the first byte */
	uint64_t entry; /* the L2 entry of its first cluster */
};

/*
 * An allocating write in flight (qcow2_aio.c): new clusters for disk
 * clusters [vc, vc + count), the request's data written at file offset
 * start with head before it and tail after it (copy-on-write fill); the
 * L2 entries change when the write has completed.
 */
struct qcow2_alloc_write {
	uint64_t vc, count;
	uint64_t host; /* file offset of the new clusters */
	uint64_t start;
	const uint8_t *head, *tail; /* NULL when empty */
	uint64_t head_len, tail_len;
	uint8_t *pad; /* owned: holds head and tail when they are not zeroes */
	struct qcow2_alloc_write *next; /* q->allocs */
};

/* A snapshot's L1 table (what its refcounts count). */
struct qcow2_snap {
	uint64_t l1_offset;
	uint32_t l1_size;
};

/* A backing file: raw, or another qcow2 image opened read-only. */
struct qcow2_backing {
	int fd;
	uint64_t size;
	struct blk *qcow2; /* NULL for raw */
};

struct qcow2 {
	struct blk *b;
	/*
	 * Data clusters are read and written on data_fd (b->fd: O_DIRECT
	 * with nocache), by the engine (qcow2_aio.c) or synchronously.
	 * Metadata and compressed clusters, which are not sector aligned,
	 * use fd: b->fd too, or with O_DIRECT a second open of the file
	 * without it (own_fd).
	 */
	int data_fd;
	int fd;
	bool own_fd;
	bool ro;
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint32_t l2_bits; /* entries per L2 table = 1 << l2_bits */
	uint64_t size;
	/*
	 * The end of what was in the file at open and what we wrote since:
	 * past it the file reads zeroes (beyond its end, or space that
	 * qcow2_grow_file() added, up to grown_to).
	 */
	uint64_t file_size;
	uint64_t grown_to;
	uint64_t host_end; /* past the file and every allocated cluster */

	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	uint8_t compression_type; /* 0 zlib, 1 zstd */
	uint32_t csize_shift; /* compressed descriptors: offset bits */
	uint64_t csize_mask;
	uint64_t coff_mask;

	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1; /* host order */
	uint32_t l1_dirty_lo, l1_dirty_hi; /* [lo, hi) entries to write */

	uint32_t refcount_order;
	uint64_t refcount_max;
	uint32_t rb_bits; /* entries per refcount block = 1 << rb_bits */
	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t rt_entries;
	uint64_t *rt; /* host order */
	uint64_t rt_dirty_lo, rt_dirty_hi; /* [lo, hi) entries to write */
	uint64_t resv_lo, resv_hi; /* clusters of a table being built */

	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t snapshots_len;
	struct qcow2_snap *snaps;

	struct qcow2_cache l2c, rbc;
	struct qcow2_free *frees;
	size_t nfrees, frees_cap;
	uint64_t free_hint; /* no free cluster below this index */
	bool data_dirty; /* written to since the last fdatasync */
	bool lazy; /* lazy refcounts: dirty bit set while open */
	bool dirty_on_disk;
	bool punch; /* punch holes for freed clusters */

	struct qcow2_backing backing;
	uint8_t *cbuf; /* one cluster: decompressed data */
	uint64_t cbuf_entry; /* the compressed L2 entry cbuf holds, or 0 */
	/* Aligned for O_DIRECT: */
	uint8_t *hbuf, *tbuf; /* head and tail of a copy-on-write */
	uint8_t *zbuf; /* one cluster of zeroes */
	uint8_t *cbuf2; /* compressed input (two clusters) */
	void *zstd; /* ZSTD_DCtx */
	struct iovec *siov;
	unsigned int siov_cap;
	struct qcow2_extent *ext; /* qcow2_aio.c: a request's extents */
	size_t ext_cap;
	struct qcow2_alloc_write *allocs; /* in flight */
	/* Writes waiting for an allocation in flight (via blk_req.priv[0]). */
	struct blk_req *wait_head, *wait_tail;
};

/* Big-endian accessors. */
static inline uint64_t qcow2_be64(const uint8_t *p)
{
	return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) |
	       ((uint64_t)p[2] << 40) | ((uint64_t)p[3] << 32) |
	       ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
	       ((uint64_t)p[6] << 8) | p[7];
}

static inline uint32_t qcow2_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static inline uint16_t qcow2_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void qcow2_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void qcow2_put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* @out = the bytes [off, off+len) of @iov; the number of entries. */
unsigned int qcow2_iov_slice(const struct iovec *iov, unsigned int cnt,
			     uint64_t off, uint64_t len, struct iovec *out);

/* Refcount entry @i of a refcount block of 2^@order-bit entries. */
uint64_t qcow2_rc_get(const uint8_t *blk, uint64_t i, uint32_t order);
void qcow2_rc_set(uint8_t *blk, uint64_t i, uint32_t order, uint64_t v);

/* What an L2 entry maps to; @host gets the host offset (0 if none). */
enum qcow2_type qcow2_l2_type(const struct qcow2 *q, uint64_t e,
			      uint64_t *host);
/* Host byte range [*off, *off + *len) holding a compressed cluster. */
void qcow2_compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off,
			    uint64_t *len);

/*
 * The one check of a table offset found in the file (L2 table, refcount
 * block): cluster aligned, inside the file, clear of the header, L1 table
 * and refcount table. 0 or -EIO (logged, rate-limited).
 */
int qcow2_check_table(struct qcow2 *q, uint64_t off,
		      const char *what) __must_check;
/*
 * The same for data (may lie past the end of the file): a standard
 * cluster (@aligned) or the bytes of a compressed one.
 */
int qcow2_check_data(struct qcow2 *q, uint64_t off, uint64_t len,
		     bool aligned) __must_check;

/* Caches (qcow2_refcount.c). */
int qcow2_cache_init(struct qcow2 *q, struct qcow2_cache *c, unsigned int n,
		     bool is_l2) __must_check;
void qcow2_cache_free(struct qcow2_cache *c);
/* Table at @off, read from the file (or zeroed when @fresh). */
int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off,
		    bool fresh, struct qcow2_table **t) __must_check;
/* Forget a cached table whose cluster was freed. */
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off);

/* Refcounts (qcow2_refcount.c). */
int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster,
		       uint64_t *rc) __must_check;
/* Allocate up to @n contiguous clusters (at least one): host offset. */
int qcow2_alloc(struct qcow2 *q, uint64_t n, uint64_t *off,
		uint64_t *got) __must_check;
/* Drop one reference to each cluster of [off, off+len) after the next commit. */
int qcow2_free_later(struct qcow2 *q, uint64_t off, uint64_t len) __must_check;
/* Drop the reference an L2 entry held, after the next commit. */
int qcow2_free_entry_later(struct qcow2 *q, uint64_t e) __must_check;
/*
 * Write the caches back in crash-safe order and apply deferred frees;
 * @full: also write the refcount blocks and make everything stable.
 */
int qcow2_commit(struct qcow2 *q, bool full) __must_check;
/* Set the dirty bit before the first lazy refcount change. */
int qcow2_mark_dirty(struct qcow2 *q) __must_check;
/* Write the dirty L1 entries (whole sectors). */
int qcow2_write_l1(struct qcow2 *q) __must_check;
/*
 * Recount every reference, write a fresh refcount structure, clear the
 * dirty bit (qcow2_rebuild.c). 0 or -errno with @err saying why.
 */
int qcow2_rebuild_refcounts(struct qcow2 *q, char *err,
			    size_t errlen) __must_check;
/* fdatasync, turning failure into -EIO. */
int qcow2_sync(struct qcow2 *q) __must_check;
/* pwrite/pread of whole buffers: 0 or -errno (-EIO on a short read). */
int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len,
		 uint64_t off) __must_check;
int qcow2_pread(int fd, void *buf, size_t len, uint64_t off) __must_check;

/*
 * The extent at disk offset @pos, at most @max bytes, within one L2
 * table's span; its entries checked (qcow2_io.c).
 */
int qcow2_extent_at(struct qcow2 *q, uint64_t pos, uint64_t max,
		    struct qcow2_extent *x) __must_check;
/* Whether a write can go to @x's clusters in place: ours alone, no metadata to change. */
static inline bool qcow2_extent_writable(const struct qcow2_extent *x)
{
	return x->type == QCOW2_NORMAL && (x->entry & QCOW2_COPIED);
}
/* Whether the caches, L1 and deferred frees hold nothing unwritten. */
bool qcow2_metadata_clean(const struct qcow2 *q);

/*
 * A request checked by blk_submit(): the fast path through b->engine or
 * the synchronous metadata path (qcow2_aio.c).
 */
int qcow2_submit(struct blk *b, struct blk_req *req) __must_check;

/* Data paths (qcow2_io.c): synchronous, on a request's iovecs. */
int qcow2_read(struct qcow2 *q, uint64_t off, const struct iovec *iov,
	       unsigned int iovcnt, uint64_t len) __must_check;
int qcow2_write(struct qcow2 *q, uint64_t off, const struct iovec *iov,
		unsigned int iovcnt, uint64_t len) __must_check;
/*
 * New clusters end at file offset @end: grow the file ahead of them, in
 * large steps, so that writing them is not appending to the file (on
 * ext4 an appending direct write holds the inode lock exclusively and
 * completes synchronously). The space past q->file_size reads zeroes;
 * qcow2_close() gives back what was not used. Failing is harmless.
 */
void qcow2_grow_file(struct qcow2 *q, uint64_t end);
/*
 * Start the allocating write of disk bytes [pos, pos+len) when it can
 * run asynchronously: inside one L2 table, every cluster needing new
 * space, one contiguous run of free clusters. Allocates the clusters and
 * fills @w; 1 when ready, 0 when the write must go through qcow2_write(),
 * or -errno.
 */
int qcow2_alloc_write_start(struct qcow2 *q, uint64_t pos, uint64_t len,
			    struct qcow2_alloc_write *w) __must_check;
/*
 * The write of @w finished with @result: point the L2 entries at the new
 * clusters (or on failure give them back). Returns @result, or -errno
 * when the tables cannot be updated.
 */
int qcow2_alloc_write_end(struct qcow2 *q, struct qcow2_alloc_write *w,
			  int result) __must_check;
int qcow2_write_zeroes(struct qcow2 *q, uint64_t off,
		       uint64_t len) __must_check;
int qcow2_discard(struct qcow2 *q, uint64_t off, uint64_t len) __must_check;
/* The L2 entry of disk cluster @vc (0 when it has no L2 table), checked. */
int qcow2_l2_lookup(struct qcow2 *q, uint64_t vc, uint64_t *entry) __must_check;

#endif
