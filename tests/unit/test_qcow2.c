/*
 * qcow2 metadata on its own: refcount entry packing, L2 entry decoding,
 * and header parsing on synthetic images in a memfd (refusals naming the
 * feature, bad tables), plus a small write/reopen/rebuild round trip.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/qcow2.h"

/* ---- refcount entries ---- */

static void refcount_widths(void **state)
{
	uint8_t blk[512];

	(void)state;
	for (uint32_t order = 0; order <= 6; order++) {
		uint32_t bits = 1U << order;
		uint64_t max = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
		uint64_t n = 512 * 8 / bits;

		memset(blk, 0, sizeof(blk));
		for (uint64_t i = 0; i < n; i++)
			qcow2_rc_set(blk, i, order, (i * 7 + 3) & max);
		for (uint64_t i = 0; i < n; i++)
			assert_int_equal(qcow2_rc_get(blk, i, order),
					 (i * 7 + 3) & max);
		/* Setting one entry leaves its neighbours alone. */
		qcow2_rc_set(blk, 5, order, max);
		assert_int_equal(qcow2_rc_get(blk, 5, order), max);
		assert_int_equal(qcow2_rc_get(blk, 4, order),
				 (4 * 7 + 3) & max);
		assert_int_equal(qcow2_rc_get(blk, 6, order),
				 (6 * 7 + 3) & max);
		qcow2_rc_set(blk, 5, order, 0);
		assert_int_equal(qcow2_rc_get(blk, 5, order), 0);
	}
}

static void refcount_bit_layout(void **state)
{
	uint8_t blk[16] = { 0 };

	(void)state;
	/* Sub-byte entries fill a byte from its least significant bit. */
	qcow2_rc_set(blk, 0, 0, 1);
	qcow2_rc_set(blk, 9, 0, 1);
	assert_int_equal(blk[0], 0x01);
	assert_int_equal(blk[1], 0x02);
	memset(blk, 0, sizeof(blk));
	qcow2_rc_set(blk, 1, 2, 0xa);
	assert_int_equal(blk[0], 0xa0);
	/* Wider entries are big-endian. */
	memset(blk, 0, sizeof(blk));
	qcow2_rc_set(blk, 1, 4, 0x1234);
	assert_int_equal(blk[2], 0x12);
	assert_int_equal(blk[3], 0x34);
	qcow2_rc_set(blk, 1, 5, 0x01020304);
	assert_int_equal(blk[4], 0x01);
	assert_int_equal(blk[7], 0x04);
	qcow2_rc_set(blk, 1, 6, 0x0102030405060708ULL);
	assert_int_equal(blk[8], 0x01);
	assert_int_equal(blk[15], 0x08);
}

/* ---- L2 entries ---- */

static void l2_entries(void **state)
{
	struct qcow2 q = { 0 };
	uint64_t host, off, len;

	(void)state;
	q.cluster_bits = 16;
	q.csize_shift = 62 - (16 - 8);
	q.csize_mask = (1ULL << 8) - 1;
	q.coff_mask = (1ULL << q.csize_shift) - 1;
	assert_int_equal(qcow2_l2_type(&q, 0, &host), QCOW2_UNALLOCATED);
	assert_int_equal(qcow2_l2_type(&q, QCOW2_ZERO, &host),
			 QCOW2_ZERO_PLAIN);
	assert_int_equal(qcow2_l2_type(&q, QCOW2_COPIED | 0x50000, &host),
			 QCOW2_NORMAL);
	assert_int_equal(host, 0x50000);
	assert_int_equal(qcow2_l2_type(&q, 0x50000 | QCOW2_ZERO, &host),
			 QCOW2_ZERO_ALLOC);
	assert_int_equal(host, 0x50000);
	/* Bits 56-61 are not part of a standard cluster's offset. */
	qcow2_l2_type(&q, (1ULL << 58) | 0x50000, &host);
	assert_int_equal(host, 0x50000);

	/* Compressed: offset in bits 0..53, extra sectors above. */
	uint64_t e = QCOW2_COMPRESSED | (3ULL << q.csize_shift) | 0x12345;

	assert_int_equal(qcow2_l2_type(&q, e, &host), QCOW2_COMPRESSED_CL);
	assert_int_equal(host, 0x12345);
	qcow2_compressed_range(&q, e, &off, &len);
	assert_int_equal(off, 0x12345);
	assert_int_equal(len, 4 * 512 - 0x145);

	/* 2 MiB clusters: 13 bits of size, 49 of offset. */
	q.cluster_bits = 21;
	q.csize_shift = 62 - 13;
	q.csize_mask = (1ULL << 13) - 1;
	q.coff_mask = (1ULL << q.csize_shift) - 1;
	e = QCOW2_COMPRESSED | (8191ULL << q.csize_shift) | 0x200;
	qcow2_compressed_range(&q, e, &off, &len);
	assert_int_equal(off, 0x200);
	assert_int_equal(len, 8192ULL * 512);
}

/* ---- synthetic images ---- */

#define CB 16
#define CS (1U << CB)

/* Header, refcount table, refcount block, L1 table in clusters 0-3. */
static uint8_t *image(uint32_t version, uint64_t size, size_t *len)
{
	uint8_t *f = calloc(4, CS);

	qcow2_put_be32(f, QCOW2_MAGIC);
	qcow2_put_be32(f + 4, version);
	qcow2_put_be32(f + 20, CB);
	qcow2_put_be64(f + 24, size);
	qcow2_put_be32(f + 36, 1);
	qcow2_put_be64(f + 40, 3 * CS);
	qcow2_put_be64(f + 48, 1 * CS);
	qcow2_put_be32(f + 56, 1);
	if (version == 3) {
		qcow2_put_be32(f + 96, 4);
		qcow2_put_be32(f + 100, 104);
	}
	qcow2_put_be64(f + CS, 2 * CS);
	for (int i = 0; i < 4; i++)
		qcow2_rc_set(f + 2 * CS, (uint64_t)i, 4, 1);
	*len = 4 * CS;
	return f;
}

struct disk {
	struct blk b;
	char err[256];
	int fd;
};

static int open_mem(struct disk *d, const uint8_t *f, size_t len, bool ro)
{
	memset(d, 0, sizeof(*d));
	d->fd = memfd_create("qcow2", 0);
	assert_true(d->fd >= 0);
	assert_int_equal(write(d->fd, f, len), (ssize_t)len);
	d->b.fd = d->fd;
	d->b.opts.read_only = ro;
	d->b.opts.discard = true;
	/* The format's data path goes through the disk's engine. */
	d->b.engine = &blk_engine_sync;
	d->b.format = &blk_format_qcow2;
	return blk_format_qcow2.open(&d->b, d->err, sizeof(d->err));
}

static void close_mem(struct disk *d)
{
	assert_int_equal(blk_format_qcow2.close(&d->b), 0);
	close(d->fd);
}

static void expect_refusal(uint8_t *f, size_t len, const char *words)
{
	struct disk d;
	int r = open_mem(&d, f, len, false);

	assert_true(r < 0);
	if (!strstr(d.err, words))
		fail_msg("error \"%s\" does not say \"%s\"", d.err, words);
	close(d.fd);
}

static void header_refusals(void **state)
{
	size_t len;
	uint8_t *f;

	(void)state;
	struct {
		uint32_t off, width;
		uint64_t v;
		const char *words;
	} cases[] = {
		{ 0, 4, 0x514649fa, "not a qcow2" },
		{ 4, 4, 4, "version 4" },
		{ 4, 4, 1, "version 1" },
		{ 20, 4, 8, "cluster size" },
		{ 20, 4, 22, "cluster size" },
		{ 24, 8, 1ULL << 62, "virtual size" },
		{ 24, 8, 1ULL << 40, "too small" },
		{ 32, 4, 1, "encrypt" },
		{ 32, 4, 2, "encrypt" },
		{ 36, 4, 1U << 23, "L1 table too large" },
		{ 40, 8, 100 * CS, "beyond the end" },
		{ 40, 8, 3 * CS + 8, "not cluster aligned" },
		{ 40, 8, CS, "overlaps the L1 table" },
		{ 48, 8, 0, "refcount table overlaps the header" },
		{ 56, 4, 0, "refcount table size" },
		{ 56, 4, 4, "beyond the end" },
		{ 60, 4, 1, "snapshot" },
		{ 60, 4, 1U << 20, "too many snapshots" },
		{ 72, 8, QCOW2_INCOMPAT_DATA_FILE, "external data file" },
		{ 72, 8, QCOW2_INCOMPAT_EXTL2, "extended L2" },
		{ 72, 8, 1ULL << 33, "incompatible feature bit 33" },
		{ 72, 8, QCOW2_INCOMPAT_COMPRESSION, "compression type" },
		{ 96, 4, 7, "refcount width" },
		{ 100, 4, 100, "header length" },
		{ 100, 4, 105, "header length" },
		{ 8, 8, 2 * CS, "backing file name" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		f = image(3, 1 << 20, &len);
		if (cases[i].off == 8)
			qcow2_put_be32(f + 16, 10);
		if (cases[i].width == 8)
			qcow2_put_be64(f + cases[i].off, cases[i].v);
		else
			qcow2_put_be32(f + cases[i].off, (uint32_t)cases[i].v);
		expect_refusal(f, len, cases[i].words);
		free(f);
	}
	/* Truncated files. */
	f = image(3, 1 << 20, &len);
	expect_refusal(f, 50, "truncated");
	expect_refusal(f, 90, "truncated");
	expect_refusal(f, 3 * CS, "beyond the end");
	free(f);
}

static void feature_named_from_table(void **state)
{
	size_t len;
	uint8_t *f = image(3, 1 << 20, &len);
	uint8_t *x = f + 104;

	(void)state;
	qcow2_put_be64(f + 72, 1ULL << 9);
	qcow2_put_be32(x, QCOW2_EXT_FEATURE_NAMES);
	qcow2_put_be32(x + 4, 48);
	x[8] = 0;
	x[9] = 9;
	strcpy((char *)x + 10, "time travel");
	expect_refusal(f, len, "time travel");
	/* An extension longer than the header cluster. */
	qcow2_put_be32(x + 4, CS);
	expect_refusal(f, len, "header extension");
	free(f);
}

static void corrupt_bit_read_only(void **state)
{
	struct disk d;
	size_t len;
	uint8_t *f = image(3, 1 << 20, &len);

	(void)state;
	qcow2_put_be64(f + 72, QCOW2_INCOMPAT_CORRUPT);
	assert_int_equal(open_mem(&d, f, len, false), 0);
	assert_true(d.b.read_only);
	close_mem(&d);
	free(f);
}

static int result;

static void done(struct blk_req *req, int r)
{
	(void)req;
	result = r;
}

static int rw(struct disk *d, enum blk_op op, uint64_t off, void *buf,
	      uint64_t n)
{
	struct iovec iov[2] = { { buf, n / 2 },
				{ (uint8_t *)buf + n / 2, n - n / 2 } };
	struct blk_req req = { .op = op,
			       .offset = off,
			       .len = n,
			       .iov = iov,
			       .iovcnt = buf ? 2 : 0,
			       .done = done };
	int r;

	result = 1;
	/* blk_submit(): its checks of range and read-only are tested too. */
	r = blk_submit(&d->b, &req);
	if (r < 0) {
		assert_int_equal(result, 1);
		return r;
	}
	assert_int_not_equal(result, 1);
	return result;
}

static void write_reopen_rebuild(void **state)
{
	uint8_t buf[8192], back[8192];
	struct disk d;
	size_t len;
	uint8_t *f = image(2, 1 << 20, &len), *g;
	struct qcow2 *q;
	uint64_t rc, e;
	off_t flen;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13);
	assert_int_equal(open_mem(&d, f, len, false), 0);
	assert_int_equal(d.b.size, 1 << 20);
	assert_int_equal(d.b.logical_block, 512);
	assert_int_equal(d.b.physical_block, 4096);
	assert_int_equal(rw(&d, BLK_OP_WRITE, CS - 4096, buf, sizeof(buf)), 0);
	assert_int_equal(rw(&d, BLK_OP_READ, CS - 4096, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	/* Out of range and read-only requests fail without harm. */
	assert_int_equal(rw(&d, BLK_OP_READ, (1 << 20) - 512, back, 1024),
			 -EINVAL);
	assert_int_equal(rw(&d, BLK_OP_WRITE, 0, NULL, 4096), -EINVAL);
	assert_int_equal(rw(&d, BLK_OP_FLUSH, 0, NULL, 0), 0);
	q = d.b.format_priv;
	/* Two data clusters and one L2 table, each with refcount 1. */
	assert_int_equal(qcow2_l2_lookup(q, 0, &e), 0);
	assert_true(e & QCOW2_COPIED);
	assert_int_equal(
		qcow2_refcount_get(q, (e & QCOW2_OFFSET_MASK) >> CB, &rc), 0);
	assert_int_equal(rc, 1);
	for (uint64_t c = 0; c < 8; c++) {
		assert_int_equal(qcow2_refcount_get(q, c, &rc), 0);
		assert_int_equal(rc, c < 7);
	}
	flen = lseek(d.fd, 0, SEEK_END);
	g = malloc((size_t)flen);
	assert_int_equal(pread(d.fd, g, (size_t)flen, 0), flen);
	close_mem(&d);

	/* Reopen: the data is there. */
	assert_int_equal(open_mem(&d, g, (size_t)flen, true), 0);
	memset(back, 0, sizeof(back));
	assert_int_equal(rw(&d, BLK_OP_READ, CS - 4096, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(rw(&d, BLK_OP_WRITE, 0, buf, 512), -EROFS);
	close_mem(&d);

	/* A v3 copy with the dirty bit and no refcounts: rebuilt at open. */
	qcow2_put_be32(g + 4, 3);
	qcow2_put_be64(g + 72, QCOW2_INCOMPAT_DIRTY);
	qcow2_put_be64(g + 80, QCOW2_COMPAT_LAZY_REFCOUNTS);
	qcow2_put_be64(g + 88, 0);
	qcow2_put_be32(g + 96, 4);
	qcow2_put_be32(g + 100, 104);
	memset(g + 2 * CS, 0, CS);
	assert_int_equal(open_mem(&d, g, (size_t)flen, false), 0);
	q = d.b.format_priv;
	assert_false(q->incompat & QCOW2_INCOMPAT_DIRTY);
	for (uint64_t c = 0; c < 7; c++) {
		assert_int_equal(qcow2_refcount_get(q, c, &rc), 0);
		assert_int_equal(rc, c == 1 || c == 2 ? 0 : 1);
	}
	assert_int_equal(rw(&d, BLK_OP_READ, CS - 4096, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	/* Discard frees both data clusters; the range reads zeroes. */
	assert_int_equal(rw(&d, BLK_OP_DISCARD, 0, NULL, 2 * CS), 0);
	assert_int_equal(rw(&d, BLK_OP_READ, CS - 4096, back, sizeof(back)), 0);
	memset(buf, 0, sizeof(buf));
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(qcow2_refcount_get(q, 5, &rc), 0);
	assert_int_equal(rc, 0);
	close_mem(&d);
	free(g);
	free(f);
}

static void bad_tables_later_are_io_errors(void **state)
{
	uint8_t buf[512];
	struct disk d;
	size_t len;
	uint8_t *f = image(3, 1 << 20, &len);

	(void)state;
	/* L1 entry -> L2 table over the refcount table, then unaligned. */
	qcow2_put_be64(f + 3 * CS, QCOW2_COPIED | CS);
	assert_int_equal(open_mem(&d, f, len, false), 0);
	assert_int_equal(rw(&d, BLK_OP_READ, 0, buf, sizeof(buf)), -EIO);
	assert_int_equal(rw(&d, BLK_OP_WRITE, 0, buf, sizeof(buf)), -EIO);
	close_mem(&d);
	qcow2_put_be64(f + 3 * CS, QCOW2_COPIED | (2 * CS + 512));
	assert_int_equal(open_mem(&d, f, len, false), 0);
	assert_int_equal(rw(&d, BLK_OP_READ, 0, buf, sizeof(buf)), -EIO);
	close_mem(&d);
	/* A refcount table entry past the end of the file. */
	qcow2_put_be64(f + 3 * CS, 0);
	qcow2_put_be64(f + CS, 1000 * CS);
	assert_int_equal(open_mem(&d, f, len, false), 0);
	assert_int_equal(rw(&d, BLK_OP_WRITE, 0, buf, sizeof(buf)), -EIO);
	close_mem(&d);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refcount_widths),
		cmocka_unit_test(refcount_bit_layout),
		cmocka_unit_test(l2_entries),
		cmocka_unit_test(header_refusals),
		cmocka_unit_test(feature_named_from_table),
		cmocka_unit_test(corrupt_bit_read_only),
		cmocka_unit_test(write_reopen_rebuild),
		cmocka_unit_test(bad_tables_later_are_io_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
