/*
 * The block layer's front: blk_open() opens the image file or block device
 * in the mode asked (O_DIRECT for nocache, O_DSYNC for direct/sync), finds
 * its size and sector sizes, picks the format (by magic unless told) and
 * the engine (io_uring when the kernel gives us a ring, else system calls),
 * and the blk_* calls dispatch to them. Every request's range and length
 * is checked here, once, against the disk size; formats and engines may
 * rely on it.
 *
 * The synchronous discard and write-zeroes helpers live here too: both
 * engines fall back on them (block device ioctls have no io_uring op, and
 * not every file system zeroes ranges).
 */
#include "block/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define BLK_DEFAULT_DEPTH 128
#define BLK_PROBE_LEN 4096
#define BLK_MAX_BLOCK 65536
#define BLK_ZERO_CHUNK (1u << 20)

/* The formats, probed in order; raw is the fallback and probes nothing. */
static const struct {
	enum blk_format_kind kind;
	const struct blk_format_ops *ops;
} formats[] = {
	{ BLK_FORMAT_QCOW2, &blk_format_qcow2 },
	{ BLK_FORMAT_RAW, &blk_format_raw },
};

#define NR_FORMATS (sizeof(formats) / sizeof(formats[0]))

static const char *format_kind_name(enum blk_format_kind kind)
{
	switch (kind) {
	case BLK_FORMAT_RAW:
		return "raw";
	case BLK_FORMAT_QCOW2:
		return "qcow2";
	default:
		return "auto";
	}
}

int blk_errno(int err)
{
	switch (err) {
	case -ENOSPC:
	case -EDQUOT:
		return -ENOSPC;
	case -EROFS:
	case -EINVAL:
	case -EOPNOTSUPP:
		return err;
	default:
		return err < 0 ? -EIO : err;
	}
}

unsigned int blk_iov_skip(const struct iovec *iov, unsigned int cnt,
			  uint64_t skip, struct iovec *dst)
{
	unsigned int i, n = 0;

	for (i = 0; i < cnt; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		dst[n].iov_base = (char *)iov[i].iov_base + skip;
		dst[n].iov_len = iov[i].iov_len - skip;
		skip = 0;
		n++;
	}
	return n;
}

void blk_iov_zero(const struct iovec *iov, unsigned int cnt, uint64_t skip)
{
	unsigned int i;

	for (i = 0; i < cnt; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		memset((char *)iov[i].iov_base + skip, 0,
		       iov[i].iov_len - skip);
		skip = 0;
	}
}

/* Write zeroes the slow way, in aligned chunks (O_DIRECT wants them). */
static int write_zero_bytes(struct blk *b, uint64_t offset, uint64_t len)
{
	void *buf;
	int ret = 0;

	if (posix_memalign(&buf, 4096, BLK_ZERO_CHUNK))
		return -EIO;
	memset(buf, 0, BLK_ZERO_CHUNK);
	while (len) {
		size_t n = len < BLK_ZERO_CHUNK ? len : BLK_ZERO_CHUNK;
		ssize_t r = pwrite(b->fd, buf, n, (off_t)offset);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? blk_errno(-errno) : -EIO;
			break;
		}
		offset += (uint64_t)r;
		len -= (uint64_t)r;
	}
	free(buf);
	return ret;
}

int blk_sync_discard(struct blk *b, uint64_t offset, uint64_t len)
{
	int r;

	if (b->is_blockdev) {
		uint64_t range[2] = { offset, len };

		r = ioctl(b->fd, BLKDISCARD, range);
	} else {
		r = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)offset, (off_t)len);
	}
	/* A discard is advice: a file system that cannot punch holes is fine. */
	if (r < 0 && errno != EOPNOTSUPP && errno != ENOSYS)
		return blk_errno(-errno);
	return 0;
}

int blk_sync_write_zeroes(struct blk *b, uint64_t offset, uint64_t len)
{
	if (b->is_blockdev) {
		uint64_t range[2] = { offset, len };

		if (!ioctl(b->fd, BLKZEROOUT, range))
			return 0;
		if (errno != EOPNOTSUPP && errno != ENOSYS)
			return blk_errno(-errno);
		return write_zero_bytes(b, offset, len);
	}
	if (!fallocate(b->fd, FALLOC_FL_ZERO_RANGE, (off_t)offset, (off_t)len))
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return blk_errno(-errno);
	/*
	 * No zero ranges (tmpfs): a punched hole reads back as zeroes; give
	 * it its space back so that later writes do not meet ENOSPC. If that
	 * fails the range still reads as zeroes, which is all that is asked.
	 */
	if (!fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)offset, (off_t)len)) {
		if (fallocate(b->fd, FALLOC_FL_KEEP_SIZE, (off_t)offset,
			      (off_t)len) < 0)
			debug("%s: could not reallocate zeroed range: %s",
			      b->path, strerror(errno));
		return 0;
	}
	return write_zero_bytes(b, offset, len);
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static int open_error(const struct blk_options *opts, int e, char *err,
		      size_t errlen)
{
	const char *p = opts->path;

	switch (e) {
	case ENOENT:
		snprintf(err, errlen, "%s: no such file", p);
		break;
	case EISDIR:
		snprintf(err, errlen, "%s: is a directory, not a disk image",
			 p);
		break;
	case EACCES:
	case EPERM:
		if (opts->read_only)
			snprintf(err, errlen,
				 "%s: permission denied for reading", p);
		else
			snprintf(err, errlen,
				 "%s: permission denied for reading "
				 "and writing (add ,ro to open it read-only)",
				 p);
		break;
	case EROFS:
		snprintf(err, errlen,
			 "%s: on a read-only file system (add ,ro)", p);
		break;
	case EINVAL:
		if (opts->nocache) {
			snprintf(err, errlen,
				 "%s: its file system does not "
				 "support nocache (O_DIRECT)",
				 p);
			break;
		}
		/* fall through */
	default:
		snprintf(err, errlen, "%s: %s", p, strerror(e));
	}
	return -e;
}

/* Whether a block device says it can discard (sysfs queue attributes). */
static bool blockdev_can_discard(dev_t rdev)
{
	char path[96];
	unsigned long long max = 0;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/dev/block/%u:%u/queue/discard_max_bytes", major(rdev),
		 minor(rdev));
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fscanf(f, "%llu", &max) != 1)
		max = 0;
	fclose(f);
	return max > 0;
}

/*
 * Whether punching holes works on this file: punch one past the end (it
 * changes nothing, KEEP_SIZE) and see whether the file system refuses.
 */
static bool file_can_discard(struct blk *b)
{
	return !fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)b->size, 4096);
}

/*
 * With O_DIRECT, the file system's offset alignment for direct I/O
 * (statx, Linux 6.1) is the smallest sector that works.
 */
static uint32_t dio_alignment(struct blk *b, uint32_t dflt)
{
	struct statx sx;

	if (statx(b->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) ||
	    !(sx.stx_mask & STATX_DIOALIGN))
		return dflt;
	if (sx.stx_dio_offset_align > dflt &&
	    is_pow2(sx.stx_dio_offset_align) &&
	    sx.stx_dio_offset_align <= BLK_MAX_BLOCK)
		return sx.stx_dio_offset_align;
	return dflt;
}

/* Size and sector sizes from the file or device. */
static int read_geometry(struct blk *b, const struct stat *st, char *err,
			 size_t errlen)
{
	const struct blk_options *o = &b->opts;
	uint32_t dev_logical = 512, dev_physical = 512;

	if (S_ISBLK(st->st_mode)) {
		int lss = 0;
		unsigned int pss = 0;

		b->is_blockdev = true;
		if (ioctl(b->fd, BLKGETSIZE64, &b->size) < 0 ||
		    ioctl(b->fd, BLKSSZGET, &lss) < 0 ||
		    ioctl(b->fd, BLKPBSZGET, &pss) < 0) {
			snprintf(err, errlen,
				 "%s: cannot read the block "
				 "device's size: %s",
				 b->path, strerror(errno));
			return -errno;
		}
		if (lss >= 512 && is_pow2((uint32_t)lss))
			dev_logical = (uint32_t)lss;
		if (pss >= dev_logical && is_pow2(pss))
			dev_physical = pss;
		else
			dev_physical = dev_logical;
		b->can_discard = blockdev_can_discard(st->st_rdev);
	} else {
		b->size = (uint64_t)st->st_size;
		/* As bhyve: the file system's block is the physical sector. */
		if (is_pow2((uint32_t)st->st_blksize) &&
		    st->st_blksize <= BLK_MAX_BLOCK)
			dev_physical = (uint32_t)st->st_blksize;
		b->can_discard = true;
		if (o->nocache)
			dev_logical = dio_alignment(b, dev_logical);
	}
	/* Smaller sectors than the device's (or O_DIRECT's) cannot work. */
	if (o->logical_block && (o->logical_block < dev_logical ||
				 o->logical_block % dev_logical)) {
		snprintf(err, errlen,
			 "%s: sectorsize=%u is smaller than the "
			 "%u bytes %s",
			 b->path, o->logical_block, dev_logical,
			 b->is_blockdev ? "of the device's sectors" :
					  "direct I/O needs (nocache)");
		return -EINVAL;
	}
	if (dev_physical < dev_logical)
		dev_physical = dev_logical;
	b->logical_block = o->logical_block ? o->logical_block : dev_logical;
	b->physical_block =
		o->physical_block ? o->physical_block : dev_physical;
	if (b->physical_block < b->logical_block)
		b->physical_block = b->logical_block;
	return 0;
}

static int choose_format(struct blk *b, char *err, size_t errlen)
{
	enum blk_format_kind kind = b->opts.format;
	uint8_t *head;
	ssize_t n;
	size_t i;

	if (kind != BLK_FORMAT_AUTO) {
		for (i = 0; i < NR_FORMATS; i++) {
			if (formats[i].kind == kind) {
				b->format = formats[i].ops;
				return 0;
			}
		}
		snprintf(err, errlen, "%s: the %s format is not available",
			 b->path, format_kind_name(kind));
		return -ENOTSUP;
	}
	if (posix_memalign((void **)&head, 4096, BLK_PROBE_LEN))
		return -ENOMEM;
	do
		n = pread(b->fd, head, BLK_PROBE_LEN, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", b->path,
			 strerror(errno));
		free(head);
		return -EIO;
	}
	b->format = &blk_format_raw;
	for (i = 0; i < NR_FORMATS; i++) {
		const struct blk_format_ops *f = formats[i].ops;

		if (f->probe && f->probe(head, (size_t)n)) {
			b->format = f;
			break;
		}
	}
	free(head);
	return 0;
}

static int start_engine(struct blk *b, char *err, size_t errlen)
{
	unsigned int depth =
		b->opts.queue_depth ? b->opts.queue_depth : BLK_DEFAULT_DEPTH;
	int r;

	switch (b->opts.engine) {
	case BLK_ENGINE_SYNC:
		b->engine = &blk_engine_sync;
		break;
	case BLK_ENGINE_URING:
		b->engine = &blk_engine_uring;
		break;
	default:
		b->engine = &blk_engine_uring;
		r = b->engine->init(b, depth);
		if (!r)
			return 0;
		debug("%s: io_uring unavailable (%s), using system calls",
		      b->path, strerror(-r));
		b->engine = &blk_engine_sync;
		break;
	}
	r = b->engine->init(b, depth);
	if (r) {
		snprintf(err, errlen, "%s: cannot start the %s I/O engine: %s",
			 b->path, b->engine->name, strerror(-r));
		b->engine = NULL;
	}
	return r;
}

int blk_open(struct blk *b, const struct blk_options *opts, char *err,
	     size_t errlen)
{
	int flags = O_CLOEXEC | O_NONBLOCK;
	struct stat st;
	int r;

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->opts = *opts;
	b->path = opts->path;
	b->read_only = opts->read_only;
	if (!opts->path || !*opts->path) {
		snprintf(err, errlen, "a disk image path is required");
		return -EINVAL;
	}
	if (opts->logical_block &&
	    (!is_pow2(opts->logical_block) || opts->logical_block < 512 ||
	     opts->logical_block > BLK_MAX_BLOCK ||
	     (opts->physical_block &&
	      (!is_pow2(opts->physical_block) ||
	       opts->physical_block < opts->logical_block ||
	       opts->physical_block > BLK_MAX_BLOCK)))) {
		snprintf(err, errlen, "%s: bad sector size %u/%u", b->path,
			 opts->logical_block, opts->physical_block);
		return -EINVAL;
	}
	flags |= opts->read_only ? O_RDONLY : O_RDWR;
	if (opts->nocache)
		flags |= O_DIRECT;
	if (opts->sync)
		flags |= O_DSYNC;
	/* O_NONBLOCK: a FIFO must not hang us; cleared once we know the type. */
	b->fd = open(opts->path, flags);
	if (b->fd < 0)
		return open_error(opts, errno, err, errlen);
	if (fstat(b->fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", b->path, strerror(errno));
		goto err_close;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		snprintf(err, errlen, "%s: is a directory, not a disk image",
			 b->path);
		goto err_close;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file or block device",
			 b->path);
		goto err_close;
	}
	/* io_uring would return -EAGAIN instead of waiting on O_NONBLOCK. */
	flags = fcntl(b->fd, F_GETFL);
	if (flags < 0 || fcntl(b->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", b->path, strerror(errno));
		goto err_close;
	}
	r = read_geometry(b, &st, err, errlen);
	if (r)
		goto err_close;
	if (!opts->discard || b->read_only)
		b->can_discard = false;
	else if (b->can_discard && !b->is_blockdev)
		b->can_discard = file_can_discard(b);
	r = choose_format(b, err, errlen);
	if (r)
		goto err_close;
	r = start_engine(b, err, errlen);
	if (r)
		goto err_close;
	r = b->format->open(b, err, errlen);
	if (r)
		goto err_engine;
	if (b->size % b->logical_block) {
		snprintf(err, errlen,
			 "%s: its size (%llu bytes) is not a "
			 "multiple of the %u-byte sector size",
			 b->path, (unsigned long long)b->size,
			 b->logical_block);
		r = -EINVAL;
		goto err_format;
	}
	return 0;

err_format:
	b->format->close(b);
err_engine:
	b->engine->exit(b);
	b->engine = NULL;
err_close:
	close(b->fd);
	b->fd = -1;
	return r;
}

/* The one place a request is checked: op, direction, range, length. */
static int check_req(const struct blk *b, const struct blk_req *req)
{
	uint64_t total = 0;
	unsigned int i;

	switch (req->op) {
	case BLK_OP_FLUSH:
		return 0;
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		if (!req->iov && req->iovcnt)
			return -EINVAL;
		for (i = 0; i < req->iovcnt; i++) {
			if (req->iov[i].iov_len > UINT64_MAX - total)
				return -EINVAL;
			total += req->iov[i].iov_len;
		}
		if (total != req->len)
			return -EINVAL;
		if (req->op == BLK_OP_WRITE && b->read_only)
			return -EROFS;
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		if (b->read_only)
			return -EROFS;
		if (req->op == BLK_OP_DISCARD && !b->can_discard)
			return -EOPNOTSUPP;
		break;
	default:
		return -EINVAL;
	}
	if (req->offset > b->size || req->len > b->size - req->offset)
		return -EINVAL;
	return 0;
}

int blk_submit(struct blk *b, struct blk_req *req)
{
	int r = check_req(b, req);

	if (r)
		return r;
	if (req->op != BLK_OP_FLUSH && !req->len) {
		req->done(req, 0);
		return 0;
	}
	return b->format->submit(b, req);
}

void blk_plug(struct blk *b)
{
	b->plugged = true;
}

void blk_unplug(struct blk *b)
{
	b->plugged = false;
	if (b->engine->unplug)
		b->engine->unplug(b);
}

int blk_event_fd(struct blk *b)
{
	return b->engine->event_fd(b);
}

void blk_complete(struct blk *b)
{
	b->engine->complete(b);
}

void blk_drain(struct blk *b)
{
	b->engine->drain(b);
}

void blk_close(struct blk *b)
{
	if (b->fd < 0)
		return;
	b->engine->drain(b);
	if (b->format->close(b))
		warn("%s: could not write back the image's metadata", b->path);
	b->engine->exit(b);
	close(b->fd);
	b->fd = -1;
}
