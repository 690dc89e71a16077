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
 * work). One thread drives a struct blk at a time.
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
	/* Private to the backend. */
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
	uint64_t size;             /* disk bytes */
	uint32_t logical_block;    /* 512 unless sectorsize= says otherwise */
	uint32_t physical_block;
	bool read_only;
	bool can_discard;          /* discard really frees space */
	const struct blk_format_ops *format;
	void *format_priv;
	const struct blk_engine_ops *engine;
	void *engine_priv;
};

/*
 * Open @opts->path with the format and engine asked for (AUTO: qcow2 by
 * magic, io_uring when the kernel has it). 0 or -errno with one line in
 * @err naming the file and the problem.
 */
int blk_open(struct blk *b, const struct blk_options *opts, char *err,
	     size_t errlen) __must_check;
/* Start a request; its done() runs now or from blk_complete(). 0 or -errno. */
int blk_submit(struct blk *b, struct blk_req *req) __must_check;
/* See blk_engine_ops: fd to watch, run completions, wait for all. */
int blk_event_fd(struct blk *b);
void blk_complete(struct blk *b);
void blk_drain(struct blk *b);
/* Drain, write back and close. */
void blk_close(struct blk *b);

extern const struct blk_engine_ops blk_engine_sync;
extern const struct blk_engine_ops blk_engine_uring;
extern const struct blk_format_ops blk_format_raw;
extern const struct blk_format_ops blk_format_qcow2;

#endif
