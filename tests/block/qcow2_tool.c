/*
 * qcow2_tool: drives a qcow2 image through khyve's block layer (blk_open(),
 * blk_submit() on the io_uring or the synchronous engine) for the
 * interoperability tests (tests/block/test_qcow2_interop.py), without the
 * rest of khyve.
 *
 *   qcow2_tool [OPTS] IMG info
 *   qcow2_tool [OPTS] IMG CMD...   CMD: read OFF LEN (bytes to stdout)
 *                                       write OFF LEN BYTE | zero OFF LEN |
 *                                       discard OFF LEN | flush
 *   qcow2_tool [OPTS] IMG storm SEED NOPS MIRROR
 *       a seeded random workload, mirrored to the raw file MIRROR (which
 *       starts as the image's content) and read back against it; prints
 *       "op N" before op N is submitted and "flushed N" once ops 0..N-1
 *       are on stable storage. Up to -q requests are in flight at once,
 *       never two over the same bytes; a flush waits for all of them.
 *       Ends with "max in flight N".
 *   qcow2_tool -r IMG replay SEED K J MIRROR UNCERTAIN
 *       MIRROR = ops 0..K-1 applied to zeroes; UNCERTAIN gets one byte per
 *       512-byte sector: 1 where ops K..J may have changed it.
 *
 * OPTS: -r read-only; -e sync|uring the I/O engine (default uring);
 * -d nocache (O_DIRECT: every buffer is 4096-byte aligned); -q N the
 * storm's queue depth (default 1); -n the storm's flushes become writes
 * (its queue fills up). CMDs run one after the other.
 *
 * Every request goes through blk_submit(); its done() may run inside
 * blk_submit() (sync engine, or io_uring completing at once) or from
 * blk_complete() once blk_event_fd() is readable. done() only records
 * the result; the tool checks it afterwards, outside the engine.
 *
 * Exit status: 0, 1 when the image does not open, 2 on an I/O error or a
 * mismatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/blk.h"
#include "block/qcow2.h"

#define MAX_LEN (2048 * 512) /* the largest storm op, the read chunk */
#define MAX_DEPTH 1024
#define ALIGN 4096

static struct blk disk;
static uint64_t cluster_size;

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
/* -n: the storm's flushes become writes (more requests in flight). */
static bool no_flush;

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
		  k < 85 ? (no_flush ? OP_WRITE : OP_FLUSH) :
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

/*
 * One request and its buffer (4096-byte aligned, as O_DIRECT wants it).
 * busy: submitted and not yet looked at by the tool; done: done() ran.
 */
struct slot {
	struct blk_req req;
	struct iovec iov;
	uint8_t *buf;
	uint64_t cap;
	struct op op; /* storm: the op it carries, and its number */
	uint64_t index;
	int result;
	bool busy;
	bool done;
};

static void slot_buf(struct slot *s, uint64_t len)
{
	uint64_t want = (len + ALIGN - 1) / ALIGN * ALIGN;
	void *p = NULL;

	if (!want)
		want = ALIGN;
	if (s->cap >= want)
		return;
	free(s->buf);
	s->buf = NULL;
	s->cap = 0;
	if (want > SIZE_MAX || posix_memalign(&p, ALIGN, (size_t)want))
		must(-ENOMEM, "buffer");
	s->buf = p;
	s->cap = want;
}

static void req_done(struct blk_req *req, int result)
{
	struct slot *s = req->opaque;

	s->result = result;
	s->done = true;
}

/* Start @op on @s (READ/WRITE: on its buffer). 0 or blk_submit()'s -errno. */
static int slot_submit(struct slot *s, enum blk_op op, uint64_t off,
		       uint64_t len)
{
	bool data = op == BLK_OP_READ || op == BLK_OP_WRITE;
	int r;

	if (data)
		slot_buf(s, len);
	s->iov.iov_base = s->buf;
	s->iov.iov_len = data ? len : 0;
	s->req = (struct blk_req){
		.op = op,
		.offset = off,
		.len = len,
		.iov = data ? &s->iov : NULL,
		.iovcnt = data ? 1 : 0,
		.done = req_done,
		.opaque = s,
	};
	s->result = -EINPROGRESS;
	s->done = false;
	s->busy = true;
	r = blk_submit(&disk, &s->req);
	if (r < 0)
		s->busy = false; /* done() never runs */
	return r;
}

/*
 * Wait for the engine's event fd and run the completions it has. Only
 * called with a request in flight whose done() has not run: with no
 * event fd (sync engine) that cannot happen, so drain as a fallback.
 */
static void wait_completion(void)
{
	int fd = blk_event_fd(&disk);
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (fd < 0) {
		blk_drain(&disk);
		return;
	}
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			must(-errno, "poll");
	blk_complete(&disk);
}

/* One request, waited for: its result. */
static int run(struct slot *s, enum blk_op op, uint64_t off, uint64_t len)
{
	int r = slot_submit(s, op, off, len);

	if (r < 0)
		return r;
	while (!s->done)
		wait_completion();
	s->busy = false;
	return s->result;
}

/* What the storm's ops are called, and the requests they make. */
static const struct {
	const char *name;
	enum blk_op op;
} kinds[] = {
	[OP_WRITE] = { "write", BLK_OP_WRITE },
	[OP_ZERO] = { "write zeroes", BLK_OP_WRITE_ZEROES },
	[OP_DISCARD] = { "discard", BLK_OP_DISCARD },
	[OP_FLUSH] = { "flush", BLK_OP_FLUSH },
	[OP_READ] = { "read", BLK_OP_READ },
};

struct storm {
	struct slot *slots;
	unsigned int depth;
	unsigned int busy; /* slots in flight or not yet checked */
	unsigned int max_busy;
	int mirror;
	uint8_t *cmp; /* the mirror's bytes for a read's check */
	uint64_t size;
};

static int op_failed(const struct slot *s, const char *why)
{
	if (s->op.kind == OP_FLUSH)
		fprintf(stderr, "qcow2_tool: op %" PRIu64 " (flush): %s\n",
			s->index, why);
	else
		fprintf(stderr,
			"qcow2_tool: op %" PRIu64 " (%s %#" PRIx64 "+%" PRIu64
			"): %s\n",
			s->index, kinds[s->op.kind].name, s->op.off, s->op.len,
			why);
	return 2;
}

/* Check a finished request: its result, and a read against the mirror. */
static int check(struct storm *st, struct slot *s)
{
	s->busy = false;
	st->busy--;
	if (s->result < 0)
		return op_failed(s, strerror(-s->result));
	if (s->op.kind != OP_READ)
		return 0;
	if (pread(st->mirror, st->cmp, s->op.len, (off_t)s->op.off) !=
	    (ssize_t)s->op.len)
		must(-EIO, "mirror read");
	if (memcmp(s->buf, st->cmp, s->op.len))
		return op_failed(s, "read differs from the mirror");
	return 0;
}

static bool overlaps(const struct op *a, const struct op *b)
{
	return a->off < b->off + b->len && b->off < a->off + a->len;
}

/*
 * Whether @op must wait: NULL (a flush) waits for every request; others
 * for a free slot and for every request over any of their bytes.
 */
static bool must_wait(const struct storm *st, const struct op *op)
{
	if (!op)
		return st->busy > 0;
	if (st->busy == st->depth)
		return true;
	for (unsigned int i = 0; i < st->depth; i++)
		if (st->slots[i].busy && overlaps(&st->slots[i].op, op))
			return true;
	return false;
}

/* Check finished requests and wait for more until @op may go. */
static int settle(struct storm *st, const struct op *op)
{
	for (;;) {
		for (unsigned int i = 0; i < st->depth; i++) {
			struct slot *s = &st->slots[i];

			if (s->busy && s->done && check(st, s))
				return 2;
		}
		if (!must_wait(st, op))
			return 0;
		wait_completion();
	}
}

static int say(const char *what, uint64_t n)
{
	char line[64];
	int len = snprintf(line, sizeof(line), "%s %" PRIu64 "\n", what, n);

	return write(1, line, (size_t)len) == len ? 0 : 2;
}

/* Submit op @i: mirror it first (nothing in flight overlaps it). */
static int storm_op(struct storm *st, uint64_t i, const struct op *op)
{
	struct slot *s = NULL;
	int r;

	for (unsigned int k = 0; k < st->depth && !s; k++)
		if (!st->slots[k].busy)
			s = &st->slots[k];
	slot_buf(s, MAX_LEN);
	s->op = *op;
	s->index = i;
	mirror_apply(st->mirror, op, s->buf, st->size);
	r = slot_submit(s, kinds[op->kind].op, op->off,
			op->kind == OP_FLUSH ? 0 : op->len);
	if (r < 0)
		return op_failed(s, strerror(-r));
	st->busy++;
	if (st->busy > st->max_busy)
		st->max_busy = st->busy;
	return 0;
}

static int storm_ops(struct storm *st, uint64_t seed, uint64_t nops)
{
	int r;

	for (uint64_t i = 0; i < nops; i++) {
		struct op op = gen_op(seed, i, st->size);
		bool flush = op.kind == OP_FLUSH;

		if (say("op", i))
			return 2;
		r = settle(st, flush ? NULL : &op);
		if (r == 0)
			r = storm_op(st, i, &op);
		if (r == 0 && flush)
			r = settle(st, NULL);
		if (r == 0 && flush)
			r = say("flushed", i + 1);
		if (r)
			return r;
	}
	return settle(st, NULL);
}

static int storm(uint64_t seed, uint64_t nops, const char *mirror,
		 unsigned int depth)
{
	struct storm st = { .depth = depth, .size = disk.size };
	struct qcow2 *q = disk.format_priv;
	uint8_t *base = NULL;
	int rc;

	st.slots = calloc(depth, sizeof(*st.slots));
	st.cmp = malloc(MAX_LEN);
	st.mirror = open(mirror, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (st.mirror < 0 || !st.slots || !st.cmp ||
	    ftruncate(st.mirror, (off_t)st.size) < 0)
		must(-errno, "mirror");
	/* The mirror starts as what the image holds (a backing file...). */
	if (q->version == 2 && q->backing.fd >= 0) {
		base = malloc(st.size);
		if (!base)
			must(-ENOMEM, "mirror");
		discard_base = base;
	}
	for (uint64_t off = 0; off < st.size; off += MAX_LEN) {
		uint64_t n = st.size - off < MAX_LEN ? st.size - off : MAX_LEN;
		struct slot *s = &st.slots[0];

		must(run(s, BLK_OP_READ, off, n), "read");
		if (pwrite(st.mirror, s->buf, n, (off_t)off) != (ssize_t)n)
			must(-EIO, "mirror write");
		if (base)
			memcpy(base + off, s->buf, n);
	}
	rc = storm_ops(&st, seed, nops);
	if (rc == 0)
		rc = say("max in flight", st.max_busy);
	/* After a failure: no done() may run once the slots are gone. */
	if (st.busy)
		blk_drain(&disk);
	close(st.mirror);
	for (unsigned int i = 0; i < depth; i++)
		free(st.slots[i].buf);
	free(st.slots);
	free(st.cmp);
	free(base);
	discard_base = NULL;
	return rc;
}

static int commands(int argc, char **argv)
{
	struct slot s = { 0 };
	int rc = 0;

	for (int i = 0; i < argc && !rc;) {
		const char *c = argv[i];
		int need = !strcmp(c, "flush") ? 1 :
			   !strcmp(c, "write") ? 4 :
						 3;
		uint64_t off, len;

		if (i + need > argc) {
			fprintf(stderr, "qcow2_tool: %s: missing arguments\n",
				c);
			rc = 2;
			break;
		}
		if (!strcmp(c, "flush")) {
			must(run(&s, BLK_OP_FLUSH, 0, 0), "flush");
			i += need;
			continue;
		}
		off = num(argv[i + 1]);
		len = num(argv[i + 2]);
		if (!strcmp(c, "zero")) {
			must(run(&s, BLK_OP_WRITE_ZEROES, off, len), c);
		} else if (!strcmp(c, "discard")) {
			must(run(&s, BLK_OP_DISCARD, off, len), c);
		} else if (!strcmp(c, "write")) {
			slot_buf(&s, len);
			memset(s.buf, (int)num(argv[i + 3]), len);
			must(run(&s, BLK_OP_WRITE, off, len), c);
		} else if (!strcmp(c, "read")) {
			must(run(&s, BLK_OP_READ, off, len), c);
			if (fwrite(s.buf, 1, len, stdout) != len)
				rc = 2;
		} else {
			fprintf(stderr, "qcow2_tool: unknown command %s\n", c);
			rc = 2;
		}
		i += need;
	}
	free(s.buf);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: qcow2_tool [-r] [-e sync|uring] [-d] [-q N] [-n] "
			"IMG CMD...\n");
	return 2;
}

/*
 * blk_close() cannot fail, so a write-back error would go unseen: flush
 * first (close then finds nothing left to write but the clean flag).
 */
static int finish(void)
{
	struct slot s = { 0 };
	int r = 0;

	if (!disk.read_only)
		r = run(&s, BLK_OP_FLUSH, 0, 0);
	blk_close(&disk);
	if (r < 0) {
		fprintf(stderr, "qcow2_tool: close: %s\n", strerror(-r));
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct blk_options o = {
		.discard = true,
		.format = BLK_FORMAT_QCOW2,
		.engine = BLK_ENGINE_URING,
	};
	unsigned int depth = 1;
	char err[512] = "";
	const char *img;
	size_t plen;
	int c, rc;

	while ((c = getopt(argc, argv, "+re:dq:n")) != -1) {
		switch (c) {
		case 'r':
			o.read_only = true;
			break;
		case 'e':
			if (!strcmp(optarg, "sync"))
				o.engine = BLK_ENGINE_SYNC;
			else if (!strcmp(optarg, "uring"))
				o.engine = BLK_ENGINE_URING;
			else
				return usage();
			break;
		case 'n':
			no_flush = true;
			break;
		case 'd':
			o.nocache = true;
			break;
		case 'q':
			if (num(optarg) < 1 || num(optarg) > MAX_DEPTH)
				return usage();
			depth = (unsigned int)num(optarg);
			break;
		default:
			return usage();
		}
	}
	argv += optind;
	argc -= optind;
	if (argc < 2)
		return usage();
	img = argv[0];
	o.path = img;
	if (blk_open(&disk, &o, err, sizeof(err)) < 0) {
		/* The block layer's messages name the file, the format's not. */
		plen = strlen(img);
		if (!strncmp(err, img, plen) && err[plen] == ':')
			fprintf(stderr, "qcow2_tool: %s\n", err);
		else
			fprintf(stderr, "qcow2_tool: %s: %s\n", img, err);
		return 1;
	}
	cluster_size = ((struct qcow2 *)disk.format_priv)->cluster_size;
	if (!strcmp(argv[1], "info")) {
		printf("size %" PRIu64 "\ncluster_size %" PRIu64
		       "\nread_only %d\n",
		       disk.size, cluster_size, disk.read_only);
		rc = 0;
	} else if (!strcmp(argv[1], "storm") && argc == 5) {
		rc = storm(num(argv[2]), num(argv[3]), argv[4], depth);
	} else if (!strcmp(argv[1], "replay") && argc == 7) {
		rc = replay(num(argv[2]), num(argv[3]), num(argv[4]), argv[5],
			    argv[6]);
	} else {
		rc = commands(argc - 1, argv + 1);
	}
	fflush(stdout);
	c = finish();
	return rc ? rc : c;
}
