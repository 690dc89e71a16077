/*
 * Block backends: what a disk device (virtio-blk, ahci) sees of an image,
 * knowing nothing of virtio. A disk is a struct blk: an image format
 * (struct blk_format_ops: raw, qcow2) on an open file, and an I/O engine
 * (struct blk_engine_ops: io_uring, or synchronous system calls) that
 * carries out reads, writes, flushes and hole punching at file offsets.
 *
 * Requests are asynchronous: blk_submit() starts one and its done()
 * callback runs later, on the thread that calls blk_complete() when
 * blk_event_fd() is readable (or inside blk_submit() for synchronous
 * work: the caller must not touch a request after submitting it). One
 * thread drives a struct blk at a time.
 *
 * The -s conf of a disk (bhyve's "PATH,ro,..." and HyperKit's
 * "file://PATH?...,format=qcow" forms) is parsed here too (blk_conf.c),
 * so that every disk emulation reads it the same way.
 */
#ifndef KHYVE_BLOCK_BLK_H
#define KHYVE_BLOCK_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/log.h"

enum blk_op {
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,        /* everything completed so far reaches stable storage */
	BLK_OP_DISCARD,      /* the range may read back as anything; free its space */
	BLK_OP_WRITE_ZEROES, /* the range reads back as zeroes */
};

struct blk_req {
	enum blk_op op;
	uint64_t offset;        /* bytes from the start of the disk */
	uint64_t len;           /* DISCARD/WRITE_ZEROES: bytes; READ/WRITE: the iovecs' total */
	const struct iovec *iov;
	unsigned int iovcnt;
	/* Called once, with 0 or -errno (-EIO, -ENOSPC, -EROFS, -EINVAL...). */
	void (*done)(struct blk_req *req, int result);
	void *opaque;
	/*
	 * Private to the backend: priv[0..1] belong to the format, priv[2..3]
	 * to the engine (a format may pass the caller's request straight on).
	 */
	uint64_t priv[4];
};

enum blk_engine_kind { BLK_ENGINE_AUTO, BLK_ENGINE_URING, BLK_ENGINE_SYNC };
enum blk_format_kind { BLK_FORMAT_AUTO, BLK_FORMAT_RAW, BLK_FORMAT_QCOW2 };

struct blk_options {
	const char *path;
	bool read_only;   /* ro */
	bool nocache;     /* O_DIRECT (bhyve's "nocache") */
	bool sync;        /* O_DSYNC: every write is stable (bhyve's "direct") */
	bool discard;     /* pass discards to the file (default on) */
	enum blk_engine_kind engine;
	enum blk_format_kind format;
	unsigned int queue_depth; /* per engine instance; 0 = 128 */
	/* sectorsize=L/P; 0: 512, or a block device's own sizes. */
	uint32_t logical_block;
	uint32_t physical_block;
};

/* A parsed disk conf: the options, and the path string they point into. */
struct blk_conf {
	struct blk_options opts;
	char *path; /* owned: opts.path */
};

struct blk;

/* The file I/O underneath a format: offsets here are file offsets. */
struct blk_engine_ops {
	const char *name;
	int (*init)(struct blk *b, unsigned int depth) __must_check;
	/* Start @req on b->fd (READ, WRITE, FLUSH, DISCARD, WRITE_ZEROES). */
	int (*submit)(struct blk *b, struct blk_req *req) __must_check;
	/* An fd that becomes readable when completions wait, or -1. */
	int (*event_fd)(struct blk *b);
	/* Run the done() callbacks of finished requests. */
	void (*complete)(struct blk *b);
	/* Wait for every request in flight and complete it. */
	void (*drain)(struct blk *b);
	/* Optional: hand the requests held back while b->plugged to the kernel. */
	void (*unplug)(struct blk *b);
	void (*exit)(struct blk *b);
};

/* An image format: maps disk offsets onto the file. */
struct blk_format_ops {
	const char *name;
	/* Whether the first bytes of a file are this format's (magic). */
	bool (*probe)(const uint8_t *head, size_t len);
	/*
	 * Read the image's metadata from b->fd, set b->size and the block
	 * sizes. 0 or -errno with one line in @err naming what is wrong.
	 */
	int (*open)(struct blk *b, char *err, size_t errlen) __must_check;
	int (*submit)(struct blk *b, struct blk_req *req) __must_check;
	/* Write back anything cached (called after drain, before close). */
	int (*close)(struct blk *b);
};

struct blk {
	int fd;
	const char *path;
	struct blk_options opts;
	/*
	 * When a format's open() runs, blk_open() has set size to the file's
	 * size and the block sizes to sectorsize=, the device's, or 512 (the
	 * direct I/O alignment with nocache); the format may change them.
	 */
	uint64_t size;             /* disk bytes */
	uint32_t logical_block;    /* 512 unless sectorsize= says otherwise */
	uint32_t physical_block;
	bool read_only;
	bool can_discard;          /* discard really frees space */
	bool is_blockdev;          /* a block device, not a regular file */
	bool plugged;              /* blk_plug(): engines batch submissions */
	const struct blk_format_ops *format;
	void *format_priv;
	const struct blk_engine_ops *engine;
	void *engine_priv;
};

/*
 * Parse a disk's -s conf into @c (defaults: read-write, cached, discard on,
 * format and engine AUTO). 0 or -EINVAL with one line in @err naming the
 * bad option; blk_conf_free() releases @c either way.
 */
int blk_conf_parse(const char *conf, struct blk_conf *c, char *err,
		   size_t errlen) __must_check;
void blk_conf_free(struct blk_conf *c);

/*
 * Open @opts->path with the format and engine asked for (AUTO: qcow2 by
 * magic, io_uring when the kernel has it). 0 or -errno with one line in
 * @err naming the file and the problem.
 */
int blk_open(struct blk *b, const struct blk_options *opts, char *err,
	     size_t errlen) __must_check;
/*
 * Start a request; its done() runs now or from blk_complete(). 0, or
 * -errno (-EINVAL out of range, -EROFS, -EOPNOTSUPP) and done() never runs.
 */
int blk_submit(struct blk *b, struct blk_req *req) __must_check;
/*
 * Batch: submissions between blk_plug() and blk_unplug() may wait in the
 * engine until blk_unplug() (one system call for many requests).
 */
void blk_plug(struct blk *b);
void blk_unplug(struct blk *b);
/* See blk_engine_ops: fd to watch, run completions, wait for all. */
int blk_event_fd(struct blk *b);
void blk_complete(struct blk *b);
void blk_drain(struct blk *b);
/* Drain, write back and close. */
void blk_close(struct blk *b);

/*
 * For engines. A negative errno as a request result: ENOSPC (and EDQUOT),
 * EROFS, EINVAL, EOPNOTSUPP pass, everything else becomes -EIO.
 */
int blk_errno(int err);
/*
 * The iovecs of @iov past the first @skip bytes, into @dst (room for @cnt);
 * returns how many.
 */
unsigned int blk_iov_skip(const struct iovec *iov, unsigned int cnt,
			  uint64_t skip, struct iovec *dst);
/* Zero the bytes of @iov past the first @skip (a read that met end of file). */
void blk_iov_zero(const struct iovec *iov, unsigned int cnt, uint64_t skip);
/*
 * Synchronous discard and write-zeroes on b->fd (hole punching, zero
 * ranges, BLKDISCARD/BLKZEROOUT on block devices, with fallbacks): the
 * engines' common ground. 0 or a blk_errno() result.
 */
int blk_sync_discard(struct blk *b, uint64_t offset, uint64_t len);
int blk_sync_write_zeroes(struct blk *b, uint64_t offset, uint64_t len);

extern const struct blk_engine_ops blk_engine_sync;
extern const struct blk_engine_ops blk_engine_uring;
extern const struct blk_format_ops blk_format_raw;
extern const struct blk_format_ops blk_format_qcow2;

#endif
