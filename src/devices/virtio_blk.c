/*
 * virtio-blk (virtio 1.2 §5.2): the guest's disks, on the block layer.
 *
 * Every queue (one per vCPU, VIRTIO_BLK_F_MQ) and the backend's
 * completion eventfd are watched by the device's own I/O thread, which
 * alone drives the struct blk. A kick pops each available chain and
 * copies its iovecs into a request (struct vblk_io, reused from a free
 * list, sized for seg_max), checks it (parse_req: the one place where a
 * request's header, lengths and sector range are judged), and starts it
 * on the backend; its completion writes the status byte and pushes the
 * chain back. Interrupts are raised once per batch, after a kick's round
 * or a round of completions.
 *
 * A request the device can answer gets a status: IOERR for a bad sector
 * range or length, a write to a read-only disk, or a failed I/O (ENOSPC
 * included: the disk goes on); UNSUPP for an unknown type or flag. A
 * chain that cannot carry an answer at all (no 16-byte header in its
 * readable part, no writable status byte) breaks the queue and sets
 * NEEDS_RESET, as do the descriptor errors vq_pop() finds.
 */
#include "devices/virtio_blk.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/iothread.h"
#include "machine.h"
#include "virtio/virtio_pci.h"

#define VBLK_QUEUE_SIZE 256
/* iovecs in a pooled request: seg_max (queue size - 2) + header + status. */
#define VBLK_IO_SEGS VBLK_QUEUE_SIZE
#define VBLK_HDR_LEN 16
#define VBLK_SECTOR 512ULL
#define VBLK_ID_BYTES 20
/* Per discard/write-zeroes segment: 4 GiB, one segment a request. */
#define VBLK_MAX_DWZ_SECTORS (1U << 23)
#define VBLK_MAX_DWZ_SEG 1
/* virtio_blk_config up to and including unused1 (no secure erase). */
#define VBLK_CONFIG_SIZE 60

struct virtio_blk;

struct vblk_queue {
	struct virtio_blk *vb;
	unsigned int index;
	struct ev_handler kick;
	bool watching;
	bool pushed; /* used entries since the last interrupt decision */
};

/* What a request keeps of its popped chain (struct vq_elem), iovecs aside. */
struct vblk_chain {
	uint16_t head;
	unsigned int out_num, in_num;
	uint64_t out_len, in_len;
};

struct vblk_io {
	struct blk_req req;
	struct vblk_queue *q;
	uint8_t *status; /* the chain's last writable byte */
	uint32_t written; /* bytes written into the chain on success */
	unsigned int cap; /* room in iov[] */
	struct vblk_io *next_free;
	struct vblk_chain elem;
	struct iovec iov[];
};

struct virtio_blk {
	struct virtio_dev vdev;
	struct iothread io;
	struct blk blk;
	struct ev_handler blk_ev;
	bool watching_blk;
	int start_err; /* vblk_start's result */
	bool writethrough; /* the driver took no FLUSH: each write is flushed */
	struct vblk_queue queues[VIRTIO_MAX_QUEUES];
	struct vblk_io *free_ios;
	struct vq_elem scratch; /* where chains are popped (I/O thread only) */
	uint8_t config[VBLK_CONFIG_SIZE];
	char serial[VBLK_ID_BYTES];
	char name[48];
	char *path; /* owned copy of the image path */
};

/*
 * A request with room for @segs iovecs: chains within seg_max come from
 * the free list (VBLK_IO_SEGS each); longer ones, which a driver that
 * keeps to seg_max never sends, get their own allocation.
 */
static struct vblk_io *io_get(struct virtio_blk *vb, unsigned int segs)
{
	unsigned int cap = segs <= VBLK_IO_SEGS ? VBLK_IO_SEGS : segs;
	struct vblk_io *io = vb->free_ios;

	if (io && cap == VBLK_IO_SEGS) {
		vb->free_ios = io->next_free;
		return io;
	}
	io = malloc(sizeof(*io) + cap * sizeof(io->iov[0]));
	if (io)
		io->cap = cap;
	return io;
}

static void io_put(struct virtio_blk *vb, struct vblk_io *io)
{
	if (io->cap != VBLK_IO_SEGS) {
		free(io);
		return;
	}
	io->next_free = vb->free_ios;
	vb->free_ios = io;
}

/* Answer a request: status byte, used entry, and back to the free list. */
static void io_finish(struct vblk_io *io, uint8_t status)
{
	struct vblk_queue *q = io->q;
	struct virtio_blk *vb = q->vb;

	*io->status = status;
	vq_push(&vb->vdev.vqs[q->index], io->elem.head,
		status == VIRTIO_BLK_S_OK ? io->written : 1);
	q->pushed = true;
	io_put(vb, io);
}

static uint8_t status_of(int result)
{
	if (!result)
		return VIRTIO_BLK_S_OK;
	return result == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

static void io_done(struct blk_req *req, int result)
{
	struct vblk_io *io = req->opaque;
	struct virtio_blk *vb = io->q->vb;

	/*
	 * §5.2.5: without VIRTIO_BLK_F_FLUSH the cache is writethrough: a
	 * write is answered once it is stable, so flush it first.
	 */
	if (!result && vb->writethrough &&
	    (req->op == BLK_OP_WRITE || req->op == BLK_OP_WRITE_ZEROES ||
	     req->op == BLK_OP_DISCARD)) {
		req->op = BLK_OP_FLUSH;
		result = blk_submit(&vb->blk, req);
		if (!result)
			return;
	}
	if (result && result != -EOPNOTSUPP)
		warn_ratelimited("%s: %s at byte %llu: %s", vb->name,
				 req->op == BLK_OP_READ	 ? "read" :
				 req->op == BLK_OP_WRITE ? "write" :
							   "request",
				 (unsigned long long)req->offset,
				 strerror(-result));
	io_finish(io, status_of(result));
}

/* Raise the interrupts that completions since the last call asked for. */
static void notify_pushed(struct virtio_blk *vb)
{
	unsigned int q;

	for (q = 0; q < vb->vdev.nr_queues; q++) {
		if (vb->queues[q].pushed) {
			vb->queues[q].pushed = false;
			virtio_dev_notify_queue(&vb->vdev, q);
		}
	}
}

/* Whether @n sectors from @sector lie on the disk. */
static bool in_range(const struct virtio_blk *vb, uint64_t sector, uint64_t n)
{
	uint64_t capacity = vb->blk.size / VBLK_SECTOR;

	return sector <= capacity && n <= capacity - sector;
}

/* Drop the last byte (the status) from the writable iovecs @iov[0..cnt). */
static unsigned int trim_status(struct iovec *iov, unsigned int cnt)
{
	while (cnt && !iov[cnt - 1].iov_len)
		cnt--;
	if (cnt && !--iov[cnt - 1].iov_len)
		cnt--;
	return cnt;
}

/* The last writable byte of a chain (in_len >= 1 was checked). */
static uint8_t *find_status(const struct iovec *iov, unsigned int out_num,
			    unsigned int in_num)
{
	unsigned int i = out_num + in_num;

	while (i > out_num && !iov[i - 1].iov_len)
		i--;
	return (uint8_t *)iov[i - 1].iov_base + iov[i - 1].iov_len - 1;
}

/*
 * Read and check one discard/write-zeroes segment (§5.2.6.2): -EOPNOTSUPP
 * for unknown flags (or unmap on a discard), -EIO for anything else wrong.
 */
static int parse_dwz(struct virtio_blk *vb, struct vblk_io *io, uint32_t type)
{
	struct vblk_chain *e = &io->elem;
	struct virtio_blk_discard_write_zeroes seg;
	uint64_t data = e->out_len - VBLK_HDR_LEN;
	uint64_t sector;
	uint32_t n, flags;

	if (!data || data % sizeof(seg))
		return -EIO;
	if (data / sizeof(seg) > VBLK_MAX_DWZ_SEG)
		return -EIO;
	iov_to_buf(io->iov, e->out_num, VBLK_HDR_LEN, &seg, sizeof(seg));
	sector = le64toh(seg.sector);
	n = le32toh(seg.num_sectors);
	flags = le32toh(seg.flags);
	if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
		return -EOPNOTSUPP;
	if (type == VIRTIO_BLK_T_DISCARD && flags)
		return -EOPNOTSUPP;
	if (n > VBLK_MAX_DWZ_SECTORS || !in_range(vb, sector, n))
		return -EIO;
	/* Whole logical blocks only (sectorsize= may make them 4 KiB). */
	if ((sector * VBLK_SECTOR) % vb->blk.logical_block ||
	    (n * VBLK_SECTOR) % vb->blk.logical_block)
		return -EIO;
	io->req.op = type == VIRTIO_BLK_T_DISCARD ? BLK_OP_DISCARD :
						    BLK_OP_WRITE_ZEROES;
	io->req.offset = sector * VBLK_SECTOR;
	io->req.len = (uint64_t)n * VBLK_SECTOR;
	return 0;
}

/*
 * Turn a popped chain into a backend request (§5.2.6): 0 to submit it,
 * 1 when it is already answered (GET_ID), or a result for status_of().
 * The chain has a header and a status byte (checked by the caller).
 */
static int parse_req(struct virtio_blk *vb, struct vblk_io *io)
{
	struct vblk_chain *e = &io->elem;
	struct iovec *in = io->iov + e->out_num;
	struct virtio_blk_outhdr hdr;
	uint32_t type;
	uint64_t sector, len;
	unsigned int cnt;

	iov_to_buf(io->iov, e->out_num, 0, &hdr, sizeof(hdr));
	type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);
	io->req = (struct blk_req){ .done = io_done, .opaque = io };
	io->written = 1;
	switch (type) {
	case VIRTIO_BLK_T_IN:
		len = e->in_len - 1;
		cnt = trim_status(in, e->in_num);
		io->req.op = BLK_OP_READ;
		io->req.iov = in;
		io->req.iovcnt = cnt;
		io->written = (uint32_t)len + 1;
		break;
	case VIRTIO_BLK_T_OUT:
		if (vb->blk.read_only)
			return -EROFS;
		len = e->out_len - VBLK_HDR_LEN;
		/* In place: the data iovecs are the readable ones past the header. */
		cnt = blk_iov_skip(io->iov, e->out_num, VBLK_HDR_LEN, io->iov);
		io->req.op = BLK_OP_WRITE;
		io->req.iov = io->iov;
		io->req.iovcnt = cnt;
		break;
	case VIRTIO_BLK_T_FLUSH:
		io->req.op = BLK_OP_FLUSH;
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		len = e->in_len - 1 < VBLK_ID_BYTES ? e->in_len - 1 :
						      VBLK_ID_BYTES;
		io->written = (uint32_t)iov_from_buf(in, e->in_num, 0,
						     vb->serial, len) +
			      1;
		return 1;
	case VIRTIO_BLK_T_DISCARD:
		if (!virtio_dev_has_feature(&vb->vdev, VIRTIO_BLK_F_DISCARD))
			return -EOPNOTSUPP;
		return parse_dwz(vb, io, type);
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!virtio_dev_has_feature(&vb->vdev,
					    VIRTIO_BLK_F_WRITE_ZEROES))
			return -EOPNOTSUPP;
		if (vb->blk.read_only)
			return -EROFS;
		return parse_dwz(vb, io, type);
	default:
		return -EOPNOTSUPP;
	}
	/* IN and OUT: whole sectors, on the disk. */
	if (len % VBLK_SECTOR || !in_range(vb, sector, len / VBLK_SECTOR) ||
	    len > UINT32_MAX - 1)
		return -EIO;
	io->req.offset = sector * VBLK_SECTOR;
	io->req.len = len;
	return 0;
}

/* Take the chain just popped into vb->scratch to its answer or the backend. */
static void handle(struct virtio_blk *vb, struct vblk_queue *q)
{
	struct vq_elem *e = &vb->scratch;
	struct virtqueue *vq = &vb->vdev.vqs[q->index];
	unsigned int segs = e->out_num + e->in_num;
	struct vblk_io *io;
	int r;

	if (e->out_len < VBLK_HDR_LEN || e->in_len < 1) {
		/* Nowhere to answer: hand the buffers back, then stop. */
		vq_push(vq, e->head, 0);
		q->pushed = true;
		vq->broken = true;
		virtio_dev_set_needs_reset(&vb->vdev,
					   "request without a "
					   "header or a status byte");
		return;
	}
	io = io_get(vb, segs);
	if (!io) {
		warn_ratelimited("%s: out of memory", vb->name);
		*find_status(e->iov, e->out_num, e->in_num) =
			VIRTIO_BLK_S_IOERR;
		vq_push(vq, e->head, 1);
		return;
	}
	io->q = q;
	io->elem = (struct vblk_chain){ .head = e->head,
					.out_num = e->out_num,
					.in_num = e->in_num,
					.out_len = e->out_len,
					.in_len = e->in_len };
	memcpy(io->iov, e->iov, segs * sizeof(io->iov[0]));
	io->status = find_status(io->iov, e->out_num, e->in_num);
	r = parse_req(vb, io);
	if (r == 1) {
		io_finish(io, VIRTIO_BLK_S_OK);
		return;
	}
	if (r) {
		io_finish(io, status_of(r));
		return;
	}
	r = blk_submit(&vb->blk, &io->req);
	if (r) {
		if (r != -EOPNOTSUPP)
			warn_ratelimited("%s: request refused: %s", vb->name,
					 strerror(-r));
		io_finish(io, status_of(r));
	}
}

static void serve_queue(struct ev_handler *h, uint32_t events)
{
	struct vblk_queue *q = h->opaque;
	struct virtio_blk *vb = q->vb;
	struct virtqueue *vq = &vb->vdev.vqs[q->index];
	int r;

	(void)events;
	virtio_dev_ack_kick(&vb->vdev, q->index);
	blk_plug(&vb->blk);
	do {
		vq_set_notification(vq, false);
		while ((r = vq_pop(vq, &vb->scratch)) == 1)
			handle(vb, q);
		if (r < 0) {
			virtio_dev_set_needs_reset(&vb->vdev,
						   "bad descriptor chain");
			break;
		}
	} while (vq_set_notification(vq, true));
	blk_unplug(&vb->blk);
	notify_pushed(vb);
}

static void serve_completions(struct ev_handler *h, uint32_t events)
{
	struct virtio_blk *vb = h->opaque;

	(void)events;
	blk_complete(&vb->blk);
	notify_pushed(vb);
}

/* On the I/O thread: watch the queues and the backend. */
static void vblk_start(void *arg)
{
	struct virtio_blk *vb = arg;
	int fd = blk_event_fd(&vb->blk);
	unsigned int i;

	vb->start_err = 0;
	vb->writethrough =
		!virtio_dev_has_feature(&vb->vdev, VIRTIO_BLK_F_FLUSH);
	if (fd >= 0) {
		vb->start_err = evloop_add(&vb->io.loop, &vb->blk_ev, fd,
					   EPOLLIN, serve_completions, vb);
		if (vb->start_err)
			return;
		vb->watching_blk = true;
	}
	for (i = 0; i < vb->vdev.nr_queues; i++) {
		struct vblk_queue *q = &vb->queues[i];

		if (!vb->vdev.vqs[i].enabled)
			continue;
		vb->start_err =
			evloop_add(&vb->io.loop, &q->kick, vb->vdev.kick_fd[i],
				   EPOLLIN, serve_queue, q);
		if (vb->start_err)
			return;
		q->watching = true;
		/* Requests posted before DRIVER_OK are served now. */
		serve_queue(&q->kick, EPOLLIN);
	}
}

/* On the I/O thread: stop watching, finish what is in flight. */
static void vblk_stop(void *arg)
{
	struct virtio_blk *vb = arg;
	unsigned int i;

	for (i = 0; i < vb->vdev.nr_queues; i++) {
		if (vb->queues[i].watching)
			evloop_del(&vb->io.loop, &vb->queues[i].kick);
		vb->queues[i].watching = false;
	}
	blk_drain(&vb->blk);
	if (vb->watching_blk)
		evloop_del(&vb->io.loop, &vb->blk_ev);
	vb->watching_blk = false;
	notify_pushed(vb);
}

static int vblk_activate(struct virtio_dev *dev)
{
	struct virtio_blk *vb = dev->opaque;

	iothread_call(&vb->io, vblk_start, vb);
	if (vb->start_err)
		iothread_call(&vb->io, vblk_stop, vb);
	return vb->start_err;
}

static void vblk_reset(struct virtio_dev *dev)
{
	struct virtio_blk *vb = dev->opaque;

	iothread_call(&vb->io, vblk_stop, vb);
}

static void vblk_config_read(struct virtio_dev *dev, uint32_t offset, void *buf,
			     uint32_t len)
{
	struct virtio_blk *vb = dev->opaque;

	memset(buf, 0, len);
	if (offset < sizeof(vb->config))
		memcpy(buf, vb->config + offset,
		       len < sizeof(vb->config) - offset ?
			       len :
			       sizeof(vb->config) - offset);
}

/* Nothing is writable: no VIRTIO_BLK_F_CONFIG_WCE (flush is always honoured). */
static void vblk_config_write(struct virtio_dev *dev, uint32_t offset,
			      const void *buf, uint32_t len)
{
	(void)dev;
	(void)offset;
	(void)buf;
	(void)len;
}

static const struct virtio_dev_ops vblk_ops = {
	.activate = vblk_activate,
	.reset = vblk_reset,
	.config_read = vblk_config_read,
	.config_write = vblk_config_write,
};

static unsigned int log2u(uint32_t v)
{
	unsigned int n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* The config space (§5.2.4), fixed for the disk's lifetime. */
static void fill_config(struct virtio_blk *vb, uint16_t queue_size)
{
	struct virtio_blk_config c;
	const struct blk *b = &vb->blk;

	memset(&c, 0, sizeof(c));
	c.capacity = htole64(b->size / VBLK_SECTOR);
	c.seg_max = htole32(queue_size - 2);
	c.blk_size = htole32(b->logical_block);
	c.physical_block_exp =
		(uint8_t)log2u(b->physical_block / b->logical_block);
	c.alignment_offset = 0;
	c.min_io_size =
		htole16((uint16_t)(b->physical_block / b->logical_block));
	c.opt_io_size = htole32(0);
	c.num_queues = htole16((uint16_t)vb->vdev.nr_queues);
	c.max_discard_sectors = htole32(VBLK_MAX_DWZ_SECTORS);
	c.max_discard_seg = htole32(VBLK_MAX_DWZ_SEG);
	c.discard_sector_alignment = htole32(b->logical_block / VBLK_SECTOR);
	c.max_write_zeroes_sectors = htole32(VBLK_MAX_DWZ_SECTORS);
	c.max_write_zeroes_seg = htole32(VBLK_MAX_DWZ_SEG);
	c.write_zeroes_may_unmap = 0;
	memcpy(vb->config, &c, sizeof(vb->config));
}

/* As bhyve's "BHYVE-XXXX-XXXX-XXXX", from a hash (FNV-1a) of the path. */
static void make_serial(struct virtio_blk *vb, const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char id[VBLK_ID_BYTES + 1];
	const char *p;

	for (p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	snprintf(id, sizeof(id), "KHYVE-%04X-%04X-%04X",
		 (unsigned int)(h >> 48), (unsigned int)(h >> 32) & 0xffff,
		 (unsigned int)(h >> 16) & 0xffff);
	memcpy(vb->serial, id, VBLK_ID_BYTES);
}

int virtio_blk_init(struct virtio_blk **out, const char *name,
		    const struct guest_mem *mem, const struct blk_options *opts,
		    unsigned int nr_queues, char *err, size_t errlen)
{
	struct virtio_blk *vb;
	struct blk_options o = *opts;
	uint64_t features;
	unsigned int i;
	int ret;

	if (!nr_queues || nr_queues > VIRTIO_MAX_QUEUES) {
		snprintf(err, errlen, "%s: %u queues (1 to %u)", name,
			 nr_queues, VIRTIO_MAX_QUEUES);
		return -EINVAL;
	}
	vb = calloc(1, sizeof(*vb));
	if (!vb)
		return -ENOMEM;
	snprintf(vb->name, sizeof(vb->name), "%s", name);
	vb->path = strdup(opts->path ? opts->path : "");
	if (!vb->path) {
		ret = -ENOMEM;
		goto err_free;
	}
	o.path = vb->path;
	ret = blk_open(&vb->blk, &o, err, errlen);
	if (ret)
		goto err_path;
	features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
		   VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		   VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) |
		   VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_MQ);
	if (vb->blk.read_only)
		features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	else
		features |= VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	if (vb->blk.can_discard)
		features |= VIRTIO_BIT(VIRTIO_BLK_F_DISCARD);
	ret = virtio_dev_init(&vb->vdev, vb->name, VIRTIO_ID_BLOCK, &vblk_ops,
			      mem, features, nr_queues, VBLK_QUEUE_SIZE,
			      VBLK_CONFIG_SIZE, vb);
	if (ret) {
		snprintf(err, errlen, "%s: %s", name, strerror(-ret));
		goto err_blk;
	}
	for (i = 0; i < nr_queues; i++)
		vb->queues[i] = (struct vblk_queue){ .vb = vb, .index = i };
	fill_config(vb, VBLK_QUEUE_SIZE);
	make_serial(vb, vb->path);
	ret = iothread_start(&vb->io, "virtio-blk");
	if (ret) {
		snprintf(err, errlen, "%s: cannot start its I/O thread: %s",
			 name, strerror(-ret));
		goto err_dev;
	}
	*out = vb;
	return 0;

err_dev:
	virtio_dev_exit(&vb->vdev);
err_blk:
	blk_close(&vb->blk);
err_path:
	free(vb->path);
err_free:
	free(vb);
	return ret;
}

struct virtio_dev *virtio_blk_dev(struct virtio_blk *vb)
{
	return &vb->vdev;
}

struct blk *virtio_blk_backend(struct virtio_blk *vb)
{
	return &vb->blk;
}

/* Reset (which drains), stop the thread, close the disk. */
static void vblk_shutdown(struct virtio_blk *vb)
{
	virtio_dev_reset(&vb->vdev);
	iothread_stop(&vb->io);
	blk_close(&vb->blk);
}

void virtio_blk_destroy(struct virtio_blk *vb)
{
	vblk_shutdown(vb);
	virtio_dev_exit(&vb->vdev);
	while (vb->free_ios) {
		struct vblk_io *io = vb->free_ios;

		vb->free_ios = io->next_free;
		free(io);
	}
	free(vb->path);
	free(vb);
}

static void vblk_close(void *opaque)
{
	/* The PCI function stays on the bus until the end: keep the state. */
	vblk_shutdown(opaque);
}

int virtio_blk_create(struct machine *m, const struct slot_config *sc,
		      char *err, size_t errlen)
{
	char name[32], msg[CONFIG_ERR_LEN];
	unsigned int nr_queues = m->cfg->nr_vcpus;
	struct virtio_blk *vb;
	struct blk_conf conf;
	int ret;

	snprintf(name, sizeof(name), "virtio-blk@%u:%u", sc->slot, sc->func);
	ret = blk_conf_parse(sc->conf, &conf, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "-s %u:%u,virtio-blk: %s", sc->slot,
			 sc->func, msg);
		goto err_conf;
	}
	if (nr_queues > VIRTIO_MAX_QUEUES)
		nr_queues = VIRTIO_MAX_QUEUES;
	if (!nr_queues)
		nr_queues = 1;
	ret = virtio_blk_init(&vb, name, &m->vm.mem, &conf.opts, nr_queues, msg,
			      sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "-s %u:%u,virtio-blk: %s", sc->slot,
			 sc->func, msg);
		goto err_conf;
	}
	blk_conf_free(&conf);
	ret = virtio_pci_add(m, sc, &vb->vdev, err, errlen);
	if (ret) {
		virtio_blk_destroy(vb);
		return ret;
	}
	ret = machine_on_close(m, vblk_close, vb);
	if (ret)
		snprintf(err, errlen, "%s: out of memory", name);
	return ret;

err_conf:
	blk_conf_free(&conf);
	return ret;
}
