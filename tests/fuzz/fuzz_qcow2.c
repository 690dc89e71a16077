/*
 * libFuzzer target: a qcow2 image as blk_format_qcow2 opens it. The input
 * is the image file (in a memfd); it is opened read-only, a few ranges are
 * read (L1/L2 lookups, compressed clusters, zero clusters), then it is
 * opened read-write and written to (allocation, refcounts, copy-on-write,
 * a dirty image's refcount rebuild). Errors are the expected outcome for
 * most inputs; a crash, hang or sanitizer report is a bug. Virtual sizes
 * are not limited, so the ranges read are picked from the first bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/blk.h"

static int last;

static void done(struct blk_req *req, int r)
{
	(void)req;
	last = r;
}

static void run(struct blk *b, enum blk_op op, uint64_t off, uint8_t *buf,
		uint64_t len)
{
	struct iovec iov = { buf, len };
	struct blk_req req = { .op = op,
			       .offset = off,
			       .len = len,
			       .iov = &iov,
			       .iovcnt = buf ? 1 : 0,
			       .done = done };

	/* As a disk does: blk_submit() checks range and read-only. */
	(void)blk_submit(b, &req);
}

static void session(int fd, bool ro, const uint8_t *data, size_t size)
{
	static uint8_t buf[3 << 20];
	char err[256];
	struct blk b = { 0 };

	b.fd = fd;
	b.opts.read_only = ro;
	b.opts.discard = true;
	/* The format's data path goes through the disk's engine. */
	b.engine = &blk_engine_sync;
	b.format = &blk_format_qcow2;
	if (blk_format_qcow2.open(&b, err, sizeof(err)) < 0)
		return;
	for (size_t i = 0; i < 4; i++) {
		uint64_t pick = 0;

		if (size >= 8 * (i + 1))
			memcpy(&pick, data + size - 8 * (i + 1), 8);
		uint64_t off = b.size ? (pick % b.size) & ~511ULL : 0;
		uint64_t len = 512 + (pick >> 40) % (sizeof(buf) - 512);

		if (b.size && len > b.size - off)
			len = b.size - off;
		run(&b, BLK_OP_READ, off, buf, len);
		if (!ro) {
			run(&b, BLK_OP_WRITE, off, buf,
			    len < 70000 ? len : 70000);
			run(&b, i & 1 ? BLK_OP_DISCARD : BLK_OP_WRITE_ZEROES,
			    off, NULL, len);
		}
	}
	run(&b, BLK_OP_READ, 0, buf, b.size < 4096 ? b.size : 4096);
	run(&b, BLK_OP_FLUSH, 0, NULL, 0);
	(void)blk_format_qcow2.close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz_qcow2", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		session(fd, true, data, size);
		session(fd, false, data, size);
	}
	close(fd);
	return 0;
}
