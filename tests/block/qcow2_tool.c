/*
 * qcow2_tool: drives blk_format_qcow2 on an image for the interoperability
 * tests (tests/block/test_qcow2_interop.py), without the rest of khyve.
 *
 *   qcow2_tool [-r] IMG info
 *   qcow2_tool [-r] IMG CMD...   CMD: read OFF LEN (bytes to stdout)
 *                                     write OFF LEN BYTE | zero OFF LEN |
 *                                     discard OFF LEN | flush
 *   qcow2_tool IMG storm SEED NOPS MIRROR
 *       a seeded random workload, mirrored to the raw file MIRROR (which
 *       starts as the image's content) and read back against it; prints "op N" before op N and "flushed N" once
 *       ops 0..N-1 are on stable storage.
 *   qcow2_tool -r IMG replay SEED K J MIRROR UNCERTAIN
 *       MIRROR = ops 0..K-1 applied to zeroes; UNCERTAIN gets one byte per
 *       512-byte sector: 1 where ops K..J may have changed it.
 *
 * Exit status: 0, 1 when the image does not open, 2 on an I/O error or a
 * mismatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/blk.h"
#include "block/qcow2.h"

static struct blk disk;
static uint64_t cluster_size;

static void req_done(struct blk_req *req, int result)
{
	*(int *)req->opaque = result;
}

static int run(enum blk_op op, uint64_t off, void *buf, uint64_t len)
{
	struct iovec iov = { buf, len };
	int result = -EINPROGRESS;
	struct blk_req req = {
		.op = op,
		.offset = off,
		.len = len,
		.iov = &iov,
		.iovcnt = buf ? 1 : 0,
		.done = req_done,
		.opaque = &result,
	};
	int r = blk_submit(&disk, &req);

	if (r < 0)
		return r;
	return result;
}

static void must(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "qcow2_tool: %s: %s\n", what, strerror(-r));
		exit(2);
	}
}

static uint64_t num(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	if (*end) {
		fprintf(stderr, "qcow2_tool: bad number %s\n", s);
		exit(2);
	}
	return v;
}

/* xorshift64*: the workload and its data from one seed. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

enum { OP_WRITE, OP_ZERO, OP_DISCARD, OP_FLUSH, OP_READ };

struct op {
	int kind;
	uint64_t off, len, seed;
};

/* Op @i of the workload of @seed on a disk of @size bytes. */
static struct op gen_op(uint64_t seed, uint64_t i, uint64_t size)
{
	uint64_t s =
		seed * 0x9e3779b97f4a7c15ULL + i * 0xbf58476d1ce4e5b9ULL + 1;
	uint64_t sectors = size / 512, k, maxlen;
	struct op op;

	for (int j = 0; j < 4; j++)
		rnd(&s);
	k = rnd(&s) % 100;
	op.kind = k < 55 ? OP_WRITE :
		  k < 65 ? OP_ZERO :
		  k < 75 ? OP_DISCARD :
		  k < 85 ? OP_FLUSH :
			   OP_READ;
	maxlen = (rnd(&s) % 4 == 0) ? 2048 : 64;
	op.len = (1 + rnd(&s) % maxlen) * 512;
	if (op.len > size)
		op.len = size;
	op.off = (rnd(&s) % (sectors - op.len / 512 + 1)) * 512;
	op.seed = rnd(&s) | 1;
	return op;
}

static void fill(uint8_t *buf, uint64_t len, uint64_t seed)
{
	for (uint64_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = rnd(&seed);
		memcpy(buf + i, &v, 8);
	}
}

/* The part of a discard that reads back as zeroes: whole clusters. */
static void discard_range(const struct op *op, uint64_t size, uint64_t *a,
			  uint64_t *b)
{
	*a = (op->off + cluster_size - 1) / cluster_size * cluster_size;
	*b = (op->off + op->len) / cluster_size * cluster_size;
	if (op->off + op->len == size)
		*b = op->off + op->len;
	if (*b < *a)
		*b = *a;
}

/*
 * What a discarded cluster reads back as: zeroes, or in a v2 image the
 * backing file (no zero flag), kept from before the workload.
 */
static const uint8_t *discard_base;

/* Apply @op to the raw mirror (@buf: a scratch buffer of op->len). */
static void mirror_apply(int fd, const struct op *op, uint8_t *buf,
			 uint64_t size)
{
	uint64_t a, b;

	switch (op->kind) {
	case OP_WRITE:
		fill(buf, op->len, op->seed);
		break;
	case OP_ZERO:
		memset(buf, 0, op->len);
		break;
	case OP_DISCARD:
		discard_range(op, size, &a, &b);
		if (discard_base)
			memcpy(buf, discard_base + a, b - a);
		else
			memset(buf, 0, b - a);
		if (b > a &&
		    pwrite(fd, buf, b - a, (off_t)a) != (ssize_t)(b - a))
			must(-EIO, "mirror write");
		return;
	default:
		return;
	}
	if (pwrite(fd, buf, op->len, (off_t)op->off) != (ssize_t)op->len)
		must(-EIO, "mirror write");
}

static int storm(uint64_t seed, uint64_t nops, const char *mirror)
{
	uint64_t size = disk.size;
	uint8_t *buf = malloc(2048 * 512), *buf2 = malloc(2048 * 512);
	int fd = open(mirror, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char line[64];

	struct qcow2 *q = disk.format_priv;
	uint8_t *base = NULL;

	if (fd < 0 || !buf || !buf2 || ftruncate(fd, (off_t)size) < 0)
		must(-errno, "mirror");
	/* The mirror starts as what the image holds (a backing file...). */
	if (q->version == 2 && q->backing.fd >= 0) {
		base = malloc(size);
		if (!base)
			must(-ENOMEM, "mirror");
		discard_base = base;
	}
	for (uint64_t off = 0; off < size; off += 2048 * 512) {
		uint64_t n = size - off < 2048 * 512 ? size - off : 2048 * 512;

		must(run(BLK_OP_READ, off, buf, n), "read");
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
			must(-EIO, "mirror write");
		if (base)
			memcpy(base + off, buf, n);
	}
	for (uint64_t i = 0; i < nops; i++) {
		struct op op = gen_op(seed, i, size);
		int n = snprintf(line, sizeof(line), "op %" PRIu64 "\n", i);

		if (write(1, line, (size_t)n) != n)
			return 2;
		switch (op.kind) {
		case OP_WRITE:
			fill(buf, op.len, op.seed);
			must(run(BLK_OP_WRITE, op.off, buf, op.len), "write");
			break;
		case OP_ZERO:
			must(run(BLK_OP_WRITE_ZEROES, op.off, NULL, op.len),
			     "write zeroes");
			break;
		case OP_DISCARD:
			must(run(BLK_OP_DISCARD, op.off, NULL, op.len),
			     "discard");
			break;
		case OP_FLUSH:
			must(run(BLK_OP_FLUSH, 0, NULL, 0), "flush");
			n = snprintf(line, sizeof(line),
				     "flushed %" PRIu64 "\n", i + 1);
			if (write(1, line, (size_t)n) != n)
				return 2;
			break;
		case OP_READ:
			must(run(BLK_OP_READ, op.off, buf, op.len), "read");
			if (pread(fd, buf2, op.len, (off_t)op.off) !=
			    (ssize_t)op.len)
				must(-EIO, "mirror read");
			if (memcmp(buf, buf2, op.len)) {
				fprintf(stderr,
					"qcow2_tool: op %" PRIu64
					": read %#" PRIx64 "+%" PRIu64
					" differs from the mirror\n",
					i, op.off, op.len);
				return 2;
			}
			break;
		}
		mirror_apply(fd, &op, buf, size);
	}
	close(fd);
	free(buf);
	free(buf2);
	free(base);
	return 0;
}

static int replay(uint64_t seed, uint64_t k, uint64_t j, const char *mirror,
		  const char *uncertain)
{
	uint64_t size = disk.size, a, b;
	uint8_t *buf = malloc(2048 * 512), *unc = calloc(size / 512 + 1, 1);
	int fd = open(mirror, O_RDWR | O_CREAT | O_TRUNC, 0644), ufd;

	if (fd < 0 || !buf || !unc || ftruncate(fd, (off_t)size) < 0)
		must(-errno, "mirror");
	for (uint64_t i = 0; i < k; i++) {
		struct op op = gen_op(seed, i, size);

		mirror_apply(fd, &op, buf, size);
	}
	for (uint64_t i = k; i <= j; i++) {
		struct op op = gen_op(seed, i, size);

		a = op.off;
		b = op.off + op.len;
		if (op.kind == OP_DISCARD)
			discard_range(&op, size, &a, &b);
		if (op.kind == OP_WRITE || op.kind == OP_ZERO ||
		    op.kind == OP_DISCARD)
			memset(unc + a / 512, 1, (b - a) / 512);
	}
	ufd = open(uncertain, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (ufd < 0 || write(ufd, unc, size / 512) != (ssize_t)(size / 512))
		must(-EIO, "uncertain map");
	close(ufd);
	close(fd);
	free(buf);
	free(unc);
	return 0;
}

static int commands(int argc, char **argv)
{
	for (int i = 0; i < argc;) {
		const char *c = argv[i];
		int need = !strcmp(c, "flush") ? 1 :
			   !strcmp(c, "write") ? 4 :
						 3;
		uint64_t off, len;
		uint8_t *buf;

		if (i + need > argc) {
			fprintf(stderr, "qcow2_tool: %s: missing arguments\n",
				c);
			return 2;
		}
		if (!strcmp(c, "flush")) {
			must(run(BLK_OP_FLUSH, 0, NULL, 0), "flush");
			i += need;
			continue;
		}
		off = num(argv[i + 1]);
		len = num(argv[i + 2]);
		if (!strcmp(c, "zero")) {
			must(run(BLK_OP_WRITE_ZEROES, off, NULL, len), c);
		} else if (!strcmp(c, "discard")) {
			must(run(BLK_OP_DISCARD, off, NULL, len), c);
		} else if (!strcmp(c, "read") || !strcmp(c, "write")) {
			buf = malloc(len ? len : 1);
			if (!buf)
				must(-ENOMEM, c);
			if (!strcmp(c, "write")) {
				memset(buf, (int)num(argv[i + 3]), len);
				must(run(BLK_OP_WRITE, off, buf, len), c);
			} else {
				must(run(BLK_OP_READ, off, buf, len), c);
				if (fwrite(buf, 1, len, stdout) != len)
					return 2;
			}
			free(buf);
		} else {
			fprintf(stderr, "qcow2_tool: unknown command %s\n", c);
			return 2;
		}
		i += need;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool ro = false;
	char err[512] = "";
	int r, rc;

	if (argc > 1 && !strcmp(argv[1], "-r")) {
		ro = true;
		argv++;
		argc--;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: qcow2_tool [-r] IMG CMD...\n");
		return 2;
	}
	disk.path = argv[1];
	disk.opts.path = argv[1];
	disk.opts.read_only = ro;
	disk.opts.discard = true;
	disk.engine = &blk_engine_sync;
	disk.format = &blk_format_qcow2;
	disk.fd = open(argv[1], (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (disk.fd < 0) {
		fprintf(stderr, "qcow2_tool: %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	r = blk_format_qcow2.open(&disk, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "qcow2_tool: %s: %s\n", argv[1], err);
		return 1;
	}
	cluster_size = ((struct qcow2 *)disk.format_priv)->cluster_size;
	if (!strcmp(argv[2], "info")) {
		printf("size %" PRIu64 "\ncluster_size %" PRIu64
		       "\nread_only %d\n",
		       disk.size, cluster_size, disk.read_only);
		rc = 0;
	} else if (!strcmp(argv[2], "storm") && argc == 6) {
		rc = storm(num(argv[3]), num(argv[4]), argv[5]);
	} else if (!strcmp(argv[2], "replay") && argc == 8) {
		rc = replay(num(argv[3]), num(argv[4]), num(argv[5]), argv[6],
			    argv[7]);
	} else {
		rc = commands(argc - 2, argv + 2);
	}
	fflush(stdout);
	r = blk_format_qcow2.close(&disk);
	close(disk.fd);
	if (r < 0) {
		fprintf(stderr, "qcow2_tool: close: %s\n", strerror(-r));
		return 2;
	}
	return rc;
}
