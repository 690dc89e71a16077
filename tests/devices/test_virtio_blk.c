/*
 * Tier 2 for virtio-blk: the host-side driver (vdriver) plays the guest
 * against the real device on a real file, with each engine (sync and
 * io_uring): reads and writes checked against the file, flush, GET_ID,
 * discard shrinking the file's allocated blocks, write-zeroes, read-only
 * refusal, bad sectors and lengths answered with IOERR/UNSUPP, ENOSPC from
 * a tiny tmpfs answered with IOERR while the device goes on, queue depth 1
 * and 128, indirect and direct chains, event-idx on and off, two queues,
 * reset in the middle of I/O, and hostile chains turning into NEEDS_RESET.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio_blk.h"
#include "vdriver.h"

#define DISK_SIZE (8ULL << 20)
#define ALL_FEATURES (~0ULL)
#define TIMEOUT_MS 10000

static const enum blk_engine_kind kind_sync = BLK_ENGINE_SYNC;
static const enum blk_engine_kind kind_uring = BLK_ENGINE_URING;

struct fixture {
	struct vdriver d;
	struct virtio_blk *vb;
	struct virtio_dev *dev;
	char path[64];
	enum blk_engine_kind kind;
};

/* A disk file of DISK_SIZE bytes of 0xa5 in /var/tmp (not tmpfs). */
static void make_disk(char *path, size_t len)
{
	static uint8_t chunk[1 << 20];
	uint64_t off;
	int fd;

	snprintf(path, len, "/var/tmp/khyve-vblk-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	memset(chunk, 0xa5, sizeof(chunk));
	for (off = 0; off < DISK_SIZE; off += sizeof(chunk))
		assert_int_equal(pwrite(fd, chunk, sizeof(chunk), (off_t)off),
				 (ssize_t)sizeof(chunk));
	close(fd);
}

static int attach(struct fixture *f, const struct blk_options *o,
		  unsigned int nr_queues)
{
	char err[256];

	if (virtio_blk_init(&f->vb, "virtio-blk@test", &f->d.mem, o, nr_queues,
			    err, sizeof(err))) {
		fprintf(stderr, "virtio_blk_init: %s\n", err);
		return -1;
	}
	f->dev = virtio_blk_dev(f->vb);
	vdriver_attach(&f->d, f->dev);
	return 0;
}

static int setup_opts(void **state, bool ro, unsigned int nr_queues,
		      uint32_t sectorsize, bool nocache)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct blk_options o = { .discard = true };

	f->kind = *state ? *(const enum blk_engine_kind *)*state :
			   BLK_ENGINE_URING;
	if (vdriver_init(&f->d, 128ULL << 20))
		return -1;
	make_disk(f->path, sizeof(f->path));
	o.path = f->path;
	o.read_only = ro;
	o.nocache = nocache;
	o.engine = f->kind;
	o.logical_block = sectorsize;
	o.physical_block = sectorsize;
	if (attach(f, &o, nr_queues))
		return -1;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_opts(state, false, 1, 0, false);
}

static int setup_ro(void **state)
{
	return setup_opts(state, true, 1, 0, false);
}

static int setup_2q(void **state)
{
	return setup_opts(state, false, 2, 0, false);
}

static int setup_4k(void **state)
{
	return setup_opts(state, false, 1, 4096, false);
}

static int setup_nocache(void **state)
{
	return setup_opts(state, false, 1, 0, true);
}

/* The disk as a qcow2 image (64 KiB clusters) made by qemu-img. */
static int setup_qcow2_opts(void **state, bool nocache)
{
	struct blk_options o = { .discard = true, .nocache = nocache };
	struct fixture *f;
	char cmd[160];

	if (setup_opts(state, false, 1, 0, false))
		return -1;
	f = *state;
	virtio_blk_destroy(f->vb);
	snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s %llu",
		 f->path, (unsigned long long)DISK_SIZE);
	if (system(cmd)) {
		fprintf(stderr, "%s failed (qemu-utils missing?)\n", cmd);
		return -1;
	}
	o.path = f->path;
	o.engine = f->kind;
	return attach(f, &o, 1);
}

static int setup_qcow2(void **state)
{
	return setup_qcow2_opts(state, false);
}

static int setup_qcow2_nocache(void **state)
{
	return setup_qcow2_opts(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->vb)
		virtio_blk_destroy(f->vb);
	vdriver_exit(&f->d);
	unlink(f->path);
	free(f);
	return 0;
}

/* A request in guest memory: header, data, status byte. */
struct req {
	uint64_t hdr, data, status;
	uint32_t len;
	uint16_t head;
};

static void *gptr(struct fixture *f, uint64_t gpa)
{
	return vdriver_ptr(&f->d, gpa);
}

/*
 * Post a request of @type at @sector with @len data bytes (IN/GET_ID: a
 * writable buffer; OUT/DISCARD/WRITE_ZEROES: readable), data split in
 * @nseg descriptors. Does not kick.
 */
static struct req post(struct fixture *f, unsigned int q, uint32_t type,
		       uint64_t sector, uint32_t len, unsigned int nseg,
		       bool indirect)
{
	struct vdriver_buf bufs[8];
	struct virtio_blk_outhdr *h;
	struct req r = { .len = len };
	bool writable = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	unsigned int i, n = 0;
	uint32_t seg = nseg ? len / nseg : 0;

	r.hdr = vdriver_alloc(&f->d, 16, 16);
	r.data = len ? vdriver_alloc(&f->d, len, 4096) : 0;
	r.status = vdriver_alloc(&f->d, 1, 1);
	h = gptr(f, r.hdr);
	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*(uint8_t *)gptr(f, r.status) = 0xff;
	bufs[n++] = (struct vdriver_buf){ r.hdr, 16 };
	for (i = 0; i < nseg; i++)
		bufs[n++] = (struct vdriver_buf){
			r.data + i * seg, i + 1 == nseg ? len - i * seg : seg
		};
	bufs[n++] = (struct vdriver_buf){ r.status, 1 };
	if (writable)
		r.head = vdriver_post(&f->d, q, bufs, 1, bufs + 1, n - 1,
				      indirect);
	else
		r.head = vdriver_post(&f->d, q, bufs, n - 1, bufs + n - 1, 1,
				      indirect);
	return r;
}

/* Wait for @r's used entry; returns its status byte, *used_len filled. */
static uint8_t wait_req(struct fixture *f, unsigned int q, struct req *r,
			uint32_t *used_len)
{
	uint16_t head;
	uint32_t len;

	assert_int_equal(vdriver_wait_used(&f->d, q, &head, &len, TIMEOUT_MS),
			 1);
	assert_int_equal(head, r->head);
	if (used_len)
		*used_len = len;
	return *(uint8_t *)gptr(f, r->status);
}

/* One request, start to finish; returns the status byte. */
static uint8_t do_req(struct fixture *f, uint32_t type, uint64_t sector,
		      const void *data, uint32_t len, void *out,
		      uint32_t *used_len)
{
	struct req r = post(f, 0, type, sector, len, len ? 1 : 0, true);
	uint8_t st;

	if (data && len)
		memcpy(gptr(f, r.data), data, len);
	vdriver_kick(&f->d, 0);
	st = wait_req(f, 0, &r, used_len);
	if (out && len)
		memcpy(out, gptr(f, r.data), len);
	return st;
}

static uint8_t dwz(struct fixture *f, uint32_t type, uint64_t sector,
		   uint32_t n, uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes seg = { .sector = sector,
						       .num_sectors = n,
						       .flags = flags };

	return do_req(f, type, 0, &seg, sizeof(seg), NULL, NULL);
}

static void file_read(struct fixture *f, uint64_t off, void *buf, size_t len)
{
	int fd = open(f->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static blkcnt_t file_blocks(struct fixture *f)
{
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	return st.st_blocks;
}

static void pattern(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13 + (i >> 8));
}

static void start(struct fixture *f, uint64_t features)
{
	int st = vdriver_start(&f->d, features, 0);

	assert_true(st > 0);
	assert_true(st & VIRTIO_STATUS_DRIVER_OK);
	assert_false(st & VIRTIO_STATUS_NEEDS_RESET);
}

static bool needs_reset(struct fixture *f)
{
	return vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET;
}

static void features_and_config(void **state)
{
	struct fixture *f = *state;
	struct virtio_blk_config c;
	char id[20];
	uint32_t used;

	assert_true(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX));
	assert_true(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE));
	assert_true(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY));
	assert_true(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	assert_true(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_MQ));
	assert_true(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD));
	assert_true(f->dev->host_features &
		    VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	assert_false(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	assert_int_equal(f->dev->device_id, VIRTIO_ID_BLOCK);
	memset(&c, 0xee, sizeof(c));
	f->dev->ops->config_read(f->dev, 0, &c, 60);
	assert_int_equal(c.capacity, DISK_SIZE / 512);
	assert_int_equal(c.blk_size, 512);
	assert_int_equal(c.seg_max, 254);
	assert_int_equal(c.num_queues, 1);
	assert_int_equal(c.max_discard_seg, 1);
	assert_int_equal(c.discard_sector_alignment, 1);
	assert_true(c.max_discard_sectors > 0);
	assert_true(c.max_write_zeroes_sectors > 0);
	/* Bytes past the config space read as zero; a partial read works. */
	memset(&c, 0xee, sizeof(c));
	f->dev->ops->config_read(f->dev, 56, &c, 16);
	assert_int_equal(((uint8_t *)&c)[15], 0);
	f->dev->ops->config_read(f->dev, 0, &c, 4);
	assert_int_equal(*(uint32_t *)&c, (uint32_t)(DISK_SIZE / 512));

	start(f, ALL_FEATURES);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_GET_ID, 0, NULL, 20, id, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(id, "KHYVE-", 6);
}

static void read_write(void **state)
{
	struct fixture *f = *state;
	static uint8_t w[65536], r[65536], file[65536];
	struct req q;
	uint32_t used;

	start(f, ALL_FEATURES);
	pattern(w, sizeof(w), 1);
	/* A write whose data spans three descriptors. */
	q = post(f, 0, VIRTIO_BLK_T_OUT, 8, sizeof(w), 3, true);
	memcpy(gptr(f, q.data), w, sizeof(w));
	vdriver_kick(&f->d, 0);
	assert_int_equal(wait_req(f, 0, &q, &used), VIRTIO_BLK_S_OK);
	file_read(f, 8 * 512, file, sizeof(file));
	assert_memory_equal(file, w, sizeof(w));
	/* Read it back through five descriptors. */
	q = post(f, 0, VIRTIO_BLK_T_IN, 8, sizeof(r), 5, false);
	vdriver_kick(&f->d, 0);
	assert_int_equal(wait_req(f, 0, &q, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, sizeof(r) + 1);
	assert_memory_equal(gptr(f, q.data), w, sizeof(w));
	/* What was there before, and the very last sector. */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 0, NULL, 4096, r, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(r[0], 0xa5);
	assert_int_equal(r[4095], 0xa5);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, DISK_SIZE / 512 - 1, w,
				512, NULL, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	file_read(f, DISK_SIZE - 512, file, 512);
	assert_memory_equal(file, w, 512);
	assert_false(needs_reset(f));
}

static void discard_and_write_zeroes(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[65536 + 8192];
	blkcnt_t before;
	size_t i;

	start(f, ALL_FEATURES);
	before = file_blocks(f);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_DISCARD, 2048, 4096, 0),
			 VIRTIO_BLK_S_OK);
	/* 2 MiB fewer blocks allocated (4096 sectors of 512 bytes). */
	assert_true(file_blocks(f) <= before - 4000);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, 8192 + 8, 128, 0),
			 VIRTIO_BLK_S_OK);
	/* The unmap flag is allowed on write-zeroes. */
	assert_int_equal(dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, 8192 + 200, 8,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
			 VIRTIO_BLK_S_OK);
	file_read(f, 8192 * 512, buf, sizeof(buf));
	for (i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0xa5);
	for (i = 4096; i < 4096 + 65536; i++)
		assert_int_equal(buf[i], 0);
	for (i = 4096 + 65536; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
	/* Bad segments: unmap on discard, unknown flags, two segments. */
	assert_int_equal(dwz(f, VIRTIO_BLK_T_DISCARD, 0, 8,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0x80),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(
		dwz(f, VIRTIO_BLK_T_DISCARD, DISK_SIZE / 512 - 4, 8, 0),
		VIRTIO_BLK_S_IOERR);
	{
		struct virtio_blk_discard_write_zeroes two[2] = {
			{ .sector = 0, .num_sectors = 8 },
			{ .sector = 16, .num_sectors = 8 },
		};

		assert_int_equal(do_req(f, VIRTIO_BLK_T_DISCARD, 0, two,
					sizeof(two), NULL, NULL),
				 VIRTIO_BLK_S_IOERR);
		assert_int_equal(
			do_req(f, VIRTIO_BLK_T_DISCARD, 0, two, 12, NULL, NULL),
			VIRTIO_BLK_S_IOERR);
	}
	assert_false(needs_reset(f));
}

/* Without negotiating DISCARD/WRITE_ZEROES, those requests are UNSUPP. */
static void features_not_negotiated(void **state)
{
	struct fixture *f = *state;

	start(f, ALL_FEATURES & ~VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) &
			 ~VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	assert_int_equal(dwz(f, VIRTIO_BLK_T_DISCARD, 0, 8, 0),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0),
			 VIRTIO_BLK_S_UNSUPP);
}

static void read_only(void **state)
{
	struct fixture *f = *state;
	uint8_t w[4096], file[4096];

	assert_true(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	assert_false(f->dev->host_features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD));
	assert_false(f->dev->host_features &
		     VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	start(f, ALL_FEATURES);
	memset(w, 0x3c, sizeof(w));
	assert_int_equal(
		do_req(f, VIRTIO_BLK_T_OUT, 0, w, sizeof(w), NULL, NULL),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_DISCARD, 0, 8, 0),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0),
			 VIRTIO_BLK_S_UNSUPP);
	file_read(f, 0, file, sizeof(file));
	assert_int_equal(file[0], 0xa5);
	assert_int_equal(file[4095], 0xa5);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 0, NULL, 4096, w, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(w[100], 0xa5);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, NULL),
			 VIRTIO_BLK_S_OK);
	assert_false(needs_reset(f));
}

static void bad_requests(void **state)
{
	struct fixture *f = *state;
	uint64_t cap = DISK_SIZE / 512;
	uint8_t buf[4096];

	start(f, ALL_FEATURES);
	memset(buf, 0x77, sizeof(buf));
	/* Sector ranges off the end. */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, cap, NULL, 512, NULL, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(
		do_req(f, VIRTIO_BLK_T_IN, cap - 1, NULL, 1024, NULL, NULL),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(
		do_req(f, VIRTIO_BLK_T_OUT, cap - 4, buf, 4096, NULL, NULL),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(
		do_req(f, VIRTIO_BLK_T_IN, UINT64_MAX, NULL, 512, NULL, NULL),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, (1ULL << 63) / 256, buf,
				512, NULL, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* Not whole sectors. */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 0, NULL, 100, NULL, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, 0, buf, 513, NULL, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* Unknown and legacy types. */
	assert_int_equal(do_req(f, 99, 0, NULL, 0, NULL, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(do_req(f, 2 /* SCSI_CMD */, 0, NULL, 0, NULL, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	/* GET_ID into a short buffer: what fits. */
	{
		uint32_t used;

		assert_int_equal(
			do_req(f, VIRTIO_BLK_T_GET_ID, 0, NULL, 5, buf, &used),
			VIRTIO_BLK_S_OK);
		assert_int_equal(used, 6);
		assert_memory_equal(buf, "KHYVE", 5);
	}
	/* Nothing reached the file; the device is fine. */
	file_read(f, DISK_SIZE - 4096, buf, 4096);
	assert_int_equal(buf[0], 0xa5);
	assert_int_equal(buf[4095], 0xa5);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 0, NULL, 512, buf, NULL),
			 VIRTIO_BLK_S_OK);
	assert_false(needs_reset(f));
}

/* @n requests in flight at once on queue @q, then all answered. */
static void many_in_flight(struct fixture *f, unsigned int q, unsigned int n,
			   bool indirect)
{
	struct req *reqs = calloc(n, sizeof(*reqs));
	uint8_t *w = malloc((size_t)n * 4096), *file = malloc((size_t)n * 4096);
	bool *seen = calloc(n, sizeof(*seen));
	unsigned int i, got;

	pattern(w, (size_t)n * 4096, n + q);
	for (i = 0; i < n; i++) {
		reqs[i] = post(f, q, VIRTIO_BLK_T_OUT, 1024 + i * 8, 4096, 1,
			       indirect);
		memcpy(gptr(f, reqs[i].data), w + (size_t)i * 4096, 4096);
	}
	vdriver_kick(&f->d, q);
	for (got = 0; got < n; got++) {
		uint16_t head;
		uint32_t len;

		assert_int_equal(
			vdriver_wait_used(&f->d, q, &head, &len, TIMEOUT_MS),
			1);
		for (i = 0; i < n && (seen[i] || reqs[i].head != head); i++)
			;
		assert_true(i < n);
		seen[i] = true;
		assert_int_equal(*(uint8_t *)gptr(f, reqs[i].status),
				 VIRTIO_BLK_S_OK);
	}
	file_read(f, 1024 * 512, file, (size_t)n * 4096);
	assert_memory_equal(file, w, (size_t)n * 4096);
	/* And all read back at once. */
	for (i = 0; i < n; i++)
		reqs[i] = post(f, q, VIRTIO_BLK_T_IN, 1024 + i * 8, 4096, 1,
			       indirect);
	vdriver_kick(&f->d, q);
	memset(seen, 0, n);
	for (got = 0; got < n; got++) {
		uint16_t head;
		uint32_t len;

		assert_int_equal(
			vdriver_wait_used(&f->d, q, &head, &len, TIMEOUT_MS),
			1);
		for (i = 0; i < n && (seen[i] || reqs[i].head != head); i++)
			;
		assert_true(i < n);
		seen[i] = true;
		assert_int_equal(len, 4097);
		assert_memory_equal(gptr(f, reqs[i].data), w + (size_t)i * 4096,
				    4096);
	}
	free(reqs);
	free(w);
	free(file);
	free(seen);
}

static void depth_128_indirect_event_idx(void **state)
{
	struct fixture *f = *state;

	start(f, ALL_FEATURES);
	assert_true(f->dev->vqs[0].event_idx);
	many_in_flight(f, 0, 128, true);
	many_in_flight(f, 0, 1, true);
	assert_false(needs_reset(f));
}

static void depth_1_sequential(void **state)
{
	struct fixture *f = *state;
	uint8_t w[4096], r[4096];
	unsigned int i;

	start(f, ALL_FEATURES);
	for (i = 0; i < 64; i++) {
		pattern(w, sizeof(w), i);
		assert_int_equal(
			do_req(f, VIRTIO_BLK_T_OUT, i * 8, w, 4096, NULL, NULL),
			VIRTIO_BLK_S_OK);
		assert_int_equal(
			do_req(f, VIRTIO_BLK_T_IN, i * 8, NULL, 4096, r, NULL),
			VIRTIO_BLK_S_OK);
		assert_memory_equal(r, w, sizeof(w));
	}
}

/* Direct chains, no event-idx, no indirect descriptors. */
static void direct_no_event_idx(void **state)
{
	struct fixture *f = *state;

	start(f,
	      VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	assert_false(f->dev->vqs[0].event_idx);
	assert_false(f->dev->vqs[0].indirect);
	many_in_flight(f, 0, 80, false);
	assert_false(needs_reset(f));
}

/* Without FLUSH the cache is writethrough: writes still complete, OK. */
static void writethrough(void **state)
{
	struct fixture *f = *state;
	uint8_t w[4096], r[4096];

	start(f, ALL_FEATURES & ~VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	pattern(w, sizeof(w), 77);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, 64, w, 4096, NULL, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, 72, 8, 0),
			 VIRTIO_BLK_S_OK);
	many_in_flight(f, 0, 32, true);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 64, NULL, 4096, r, NULL),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(r, w, sizeof(w));
	assert_false(needs_reset(f));
}

static void two_queues(void **state)
{
	struct fixture *f = *state;
	struct virtio_blk_config c;

	f->dev->ops->config_read(f->dev, 0, &c, 60);
	assert_int_equal(c.num_queues, 2);
	start(f, ALL_FEATURES);
	many_in_flight(f, 1, 64, true);
	many_in_flight(f, 0, 64, true);
}

static void sector_size_4k(void **state)
{
	struct fixture *f = *state;
	struct virtio_blk_config c;

	f->dev->ops->config_read(f->dev, 0, &c, 60);
	assert_int_equal(c.blk_size, 4096);
	assert_int_equal(c.capacity, DISK_SIZE / 512);
	assert_int_equal(c.discard_sector_alignment, 8);
	start(f, ALL_FEATURES);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_DISCARD, 8, 8, 0),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_DISCARD, 4, 8, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, 8, 3, 0),
			 VIRTIO_BLK_S_IOERR);
}

/* Reset with 128 writes just kicked: no crash, and a clean restart. */
static void reset_mid_io(void **state)
{
	struct fixture *f = *state;
	uint8_t w[4096], r[4096];
	unsigned int i, round;

	for (round = 0; round < 3; round++) {
		start(f, ALL_FEATURES);
		for (i = 0; i < 128; i++)
			post(f, 0, VIRTIO_BLK_T_OUT, i * 8, 4096, 1, true);
		vdriver_kick(&f->d, 0);
		if (round)
			usleep(200 * round);
		vdriver_reset(&f->d);
		assert_int_equal(vdriver_status(&f->d), 0);
	}
	start(f, ALL_FEATURES);
	pattern(w, sizeof(w), 9);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, 4000, w, 4096, NULL, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 4000, NULL, 4096, r, NULL),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(r, w, sizeof(w));
	assert_false(needs_reset(f));
}

/*
 * A chain longer than seg_max (a driver should not, but may): 400 data
 * descriptors of 512 bytes, through an indirect table. Served all the same.
 */
static void long_chain(void **state)
{
	struct fixture *f = *state;
	enum { N = 400 };
	static struct vdriver_buf b[N + 2];
	static uint8_t w[N * 512], file[N * 512];
	uint64_t hdr = vdriver_alloc(&f->d, 16, 16);
	uint64_t data = vdriver_alloc(&f->d, N * 512, 4096);
	uint64_t st = vdriver_alloc(&f->d, 1, 1);
	struct virtio_blk_outhdr *h = gptr(f, hdr);
	uint16_t head, got;
	uint32_t len;
	unsigned int i;

	start(f, ALL_FEATURES);
	for (i = 0; i < 2; i++) {
		bool write = i == 0;
		unsigned int k;

		h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
		h->sector = 100;
		b[0] = (struct vdriver_buf){ hdr, 16 };
		for (k = 0; k < N; k++)
			b[1 + k] = (struct vdriver_buf){ data + k * 512, 512 };
		b[N + 1] = (struct vdriver_buf){ st, 1 };
		if (write) {
			pattern(w, sizeof(w), 5);
			memcpy(gptr(f, data), w, sizeof(w));
			head = vdriver_post(&f->d, 0, b, N + 1, b + N + 1, 1,
					    true);
		} else {
			memset(gptr(f, data), 0, sizeof(w));
			head = vdriver_post(&f->d, 0, b, 1, b + 1, N + 1, true);
		}
		vdriver_kick(&f->d, 0);
		assert_int_equal(
			vdriver_wait_used(&f->d, 0, &got, &len, TIMEOUT_MS), 1);
		assert_int_equal(got, head);
		assert_int_equal(*(uint8_t *)gptr(f, st), VIRTIO_BLK_S_OK);
	}
	assert_int_equal(len, N * 512 + 1);
	assert_memory_equal(gptr(f, data), w, sizeof(w));
	file_read(f, 100 * 512, file, sizeof(file));
	assert_memory_equal(file, w, sizeof(w));
	assert_false(needs_reset(f));
}

/* Post a hand-made direct chain @bufs (flags given) and kick. */
static void post_raw(struct fixture *f, const struct vring_desc *descs,
		     unsigned int n, uint16_t first)
{
	struct vdriver_queue *q = &f->d.q[0];
	unsigned int i;

	for (i = 0; i < n; i++)
		q->desc[first + i] = descs[i];
	vdriver_publish(&f->d, 0, first);
	vdriver_kick(&f->d, 0);
}

static void expect_needs_reset_then_recover(struct fixture *f)
{
	uint8_t r[512];

	assert_true(vdriver_wait_config(&f->d, TIMEOUT_MS));
	assert_true(needs_reset(f));
	start(f, ALL_FEATURES);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, 0, NULL, 512, r, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(r[0], 0xa5);
}

static void hostile_short_header(void **state)
{
	struct fixture *f = *state;
	uint64_t hdr = vdriver_alloc(&f->d, 16, 16);
	uint64_t st = vdriver_alloc(&f->d, 1, 1);
	struct vring_desc d[2] = {
		{ .addr = hdr,
		  .len = 8,
		  .flags = VRING_DESC_F_NEXT,
		  .next = 201 },
		{ .addr = st, .len = 1, .flags = VRING_DESC_F_WRITE },
	};

	start(f, ALL_FEATURES);
	memset(gptr(f, hdr), 0, 16);
	post_raw(f, d, 2, 200);
	expect_needs_reset_then_recover(f);
}

static void hostile_no_status(void **state)
{
	struct fixture *f = *state;
	uint64_t hdr = vdriver_alloc(&f->d, 16, 16);
	uint64_t data = vdriver_alloc(&f->d, 512, 512);
	struct vring_desc d[2] = {
		{ .addr = hdr,
		  .len = 16,
		  .flags = VRING_DESC_F_NEXT,
		  .next = 201 },
		{ .addr = data, .len = 512 },
	};

	start(f, ALL_FEATURES);
	memset(gptr(f, hdr), 0, 16); /* a read with no writable byte at all */
	post_raw(f, d, 2, 200);
	expect_needs_reset_then_recover(f);
}

static void hostile_loop(void **state)
{
	struct fixture *f = *state;
	uint64_t hdr = vdriver_alloc(&f->d, 16, 16);
	struct vring_desc d[2] = {
		{ .addr = hdr,
		  .len = 16,
		  .flags = VRING_DESC_F_NEXT,
		  .next = 201 },
		{ .addr = hdr,
		  .len = 16,
		  .flags = VRING_DESC_F_NEXT,
		  .next = 200 },
	};

	start(f, ALL_FEATURES);
	post_raw(f, d, 2, 200);
	expect_needs_reset_then_recover(f);
}

static void hostile_data_outside_ram(void **state)
{
	struct fixture *f = *state;
	uint64_t hdr = vdriver_alloc(&f->d, 16, 16);
	uint64_t st = vdriver_alloc(&f->d, 1, 1);
	struct vring_desc d[3] = {
		{ .addr = hdr,
		  .len = 16,
		  .flags = VRING_DESC_F_NEXT,
		  .next = 201 },
		{ .addr = 0xfffff000ULL,
		  .len = 8192,
		  .flags = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
		  .next = 202 },
		{ .addr = st, .len = 1, .flags = VRING_DESC_F_WRITE },
	};

	start(f, ALL_FEATURES);
	memset(gptr(f, hdr), 0, 16);
	post_raw(f, d, 3, 200);
	expect_needs_reset_then_recover(f);
}

/* Odd but legal shapes: a header split in two, status inside a data buffer. */
static void odd_but_legal_chains(void **state)
{
	struct fixture *f = *state;
	uint64_t hdr = vdriver_alloc(&f->d, 16, 16);
	uint64_t data = vdriver_alloc(&f->d, 1024 + 1, 512);
	struct virtio_blk_outhdr *h = gptr(f, hdr);
	struct vring_desc d[3] = {
		{ .addr = hdr,
		  .len = 4,
		  .flags = VRING_DESC_F_NEXT,
		  .next = 201 },
		{ .addr = hdr + 4,
		  .len = 12,
		  .flags = VRING_DESC_F_NEXT,
		  .next = 202 },
		/* 1024 data bytes and the status byte in one buffer. */
		{ .addr = data, .len = 1025, .flags = VRING_DESC_F_WRITE },
	};
	uint16_t head;
	uint32_t len;
	uint8_t *p = gptr(f, data);

	start(f, ALL_FEATURES);
	h->type = VIRTIO_BLK_T_IN;
	h->sector = 2;
	memset(p, 0, 1025);
	p[1024] = 0xff;
	post_raw(f, d, 3, 200);
	assert_int_equal(vdriver_wait_used(&f->d, 0, &head, &len, TIMEOUT_MS),
			 1);
	assert_int_equal(head, 200);
	assert_int_equal(len, 1025);
	assert_int_equal(p[1024], VIRTIO_BLK_S_OK);
	assert_int_equal(p[0], 0xa5);
	assert_int_equal(p[1023], 0xa5);
	assert_false(needs_reset(f));
}

/*
 * ENOSPC on the host: a 1 MiB tmpfs under a 4 MiB sparse disk, in a child
 * with its own mount namespace. The big write is answered IOERR; the
 * device goes on (reads, small writes, flush).
 */
static int enospc_child(enum blk_engine_kind kind)
{
	char dir[] = "/tmp/khyve-vblk-enospc-XXXXXX";
	struct fixture f = { .kind = kind };
	struct blk_options o = { .discard = true, .engine = kind };
	uint8_t *w = malloc(2 << 20);
	int fd, ret = 1;

	if (unshare(CLONE_NEWNS) && unshare(CLONE_NEWUSER | CLONE_NEWNS))
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 77;
	if (!mkdtemp(dir))
		return 1;
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1M")) {
		rmdir(dir);
		return 77;
	}
	snprintf(f.path, sizeof(f.path), "%s/disk", dir);
	fd = open(f.path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 4 << 20) ||
	    vdriver_init(&f.d, 128ULL << 20))
		goto out;
	close(fd);
	o.path = f.path;
	if (attach(&f, &o, 1))
		goto out;
	if (vdriver_start(&f.d, ALL_FEATURES, 0) <= 0)
		goto out_dev;
	memset(w, 0x42, 2 << 20);
	if (do_req(&f, VIRTIO_BLK_T_OUT, 0, w, 2 << 20, NULL, NULL) !=
	    VIRTIO_BLK_S_IOERR) {
		fprintf(stderr, "2 MiB write on a 1 MiB tmpfs did not fail\n");
		goto out_dev;
	}
	if (do_req(&f, VIRTIO_BLK_T_IN, 0, NULL, 4096, w, NULL) ||
	    dwz(&f, VIRTIO_BLK_T_DISCARD, 0, 8192, 0) ||
	    do_req(&f, VIRTIO_BLK_T_OUT, 0, w, 65536, NULL, NULL) ||
	    do_req(&f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, NULL) ||
	    needs_reset(&f)) {
		fprintf(stderr, "the device did not go on after ENOSPC\n");
		goto out_dev;
	}
	ret = 0;
out_dev:
	virtio_blk_destroy(f.vb);
	vdriver_exit(&f.d);
out:
	umount(dir);
	rmdir(dir);
	free(w);
	return ret;
}

static void enospc(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (!pid)
		_exit(enospc_child(kind));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * Close the disk, then qemu-img must find its qcow2 image clean and equal
 * to @mirror (DISK_SIZE bytes).
 */
static void close_and_compare(struct fixture *f, const uint8_t *mirror)
{
	char mirror_path[] = "/var/tmp/khyve-vblk-mirror-XXXXXX", cmd[256];
	int fd;

	virtio_blk_destroy(f->vb);
	f->vb = NULL;
	fd = mkstemp(mirror_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, mirror, DISK_SIZE), (ssize_t)DISK_SIZE);
	close(fd);
	snprintf(cmd, sizeof(cmd), "qemu-img check -q %s", f->path);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f qcow2 -F raw %s %s",
		 f->path, mirror_path);
	assert_int_equal(system(cmd), 0);
	unlink(mirror_path);
}

/*
 * Issue 7 through the device: a seeded storm of writes, discards and
 * write-zeroes on a qcow2 image, mirrored in memory and read back; then
 * qemu-img finds the image clean and equal to the mirror.
 */
static void qcow2_storm(void **state)
{
	struct fixture *f = *state;
	static uint8_t mirror[DISK_SIZE], buf[64 * 1024];
	unsigned int i, seed = 7;

	assert_string_equal(virtio_blk_backend(f->vb)->format->name, "qcow2");
	start(f, ALL_FEATURES);
	memset(mirror, 0, sizeof(mirror));
	for (i = 0; i < 300; i++) {
		uint32_t sectors = 1 + rand_r(&seed) % (sizeof(buf) / 512);
		uint64_t sector = rand_r(&seed) % (DISK_SIZE / 512 - sectors);
		unsigned int what = rand_r(&seed) % 10;

		if (what < 7) {
			pattern(buf, sectors * 512, i);
			assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, sector, buf,
						sectors * 512, NULL, NULL),
					 VIRTIO_BLK_S_OK);
			memcpy(mirror + sector * 512, buf, sectors * 512);
		} else if (what < 9) {
			assert_int_equal(dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, sector,
					     sectors, 0),
					 VIRTIO_BLK_S_OK);
			memset(mirror + sector * 512, 0, sectors * 512);
		} else {
			assert_int_equal(do_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0,
						NULL, NULL),
					 VIRTIO_BLK_S_OK);
		}
	}
	for (i = 0; i < DISK_SIZE / sizeof(buf); i++) {
		assert_int_equal(do_req(f, VIRTIO_BLK_T_IN,
					i * sizeof(buf) / 512, NULL, sizeof(buf),
					buf, NULL),
				 VIRTIO_BLK_S_OK);
		assert_memory_equal(buf, mirror + i * sizeof(buf), sizeof(buf));
	}
	close_and_compare(f, mirror);
}

/* Wait for the @n requests of @r, in any order; each answered OK. */
static void wait_all_ok(struct fixture *f, const struct req *r, unsigned int n)
{
	bool *seen = calloc(n, sizeof(*seen));

	for (unsigned int got = 0; got < n; got++) {
		uint16_t head;
		uint32_t len;
		unsigned int i;

		assert_int_equal(
			vdriver_wait_used(&f->d, 0, &head, &len, TIMEOUT_MS), 1);
		for (i = 0; i < n && (seen[i] || r[i].head != head); i++)
			;
		assert_true(i < n);
		seen[i] = true;
		assert_int_equal(*(uint8_t *)gptr(f, r[i].status),
				 VIRTIO_BLK_S_OK);
	}
	free(seen);
}

/*
 * qcow2 with many requests in flight: 4 KiB writes to fresh blocks, 96 at
 * a time, in runs (16 share a cluster: they wait for its allocation) and
 * scattered; everything read back at once; a reset while allocating
 * writes are in flight (they write zeroes over zeroes: either way the
 * same); then qemu-img finds the image clean and equal to the mirror.
 */
static void qcow2_deep_queue(void **state)
{
	enum { N = 96, BLOCKS = DISK_SIZE / 4096, READ = 65536 };
	struct fixture *f = *state;
	static uint8_t mirror[DISK_SIZE];
	static struct req r[DISK_SIZE / READ];
	unsigned int seed = 11, i, round;

	start(f, ALL_FEATURES);
	memset(mirror, 0, sizeof(mirror));
	for (round = 0; round < 4; round++) {
		/* Odd strides are coprime with BLOCKS: distinct blocks. */
		unsigned int stride = round < 2 ? 1 : 2 * (rand_r(&seed) % 64) + 3;
		unsigned int base = rand_r(&seed) % BLOCKS;

		for (i = 0; i < N; i++) {
			unsigned int blk = (base + i * stride) % BLOCKS;

			r[i] = post(f, 0, VIRTIO_BLK_T_OUT, blk * 8ULL, 4096, 1,
				    true);
			pattern(gptr(f, r[i].data), 4096, round * N + i);
			memcpy(mirror + blk * 4096ULL, gptr(f, r[i].data),
			       4096);
		}
		vdriver_kick(&f->d, 0);
		wait_all_ok(f, r, N);
	}
	for (i = 0; i < DISK_SIZE / READ; i++)
		r[i] = post(f, 0, VIRTIO_BLK_T_IN, i * (READ / 512ULL), READ, 4,
			    true);
	vdriver_kick(&f->d, 0);
	wait_all_ok(f, r, DISK_SIZE / READ);
	for (i = 0; i < DISK_SIZE / READ; i++)
		assert_memory_equal(gptr(f, r[i].data), mirror + i * READ,
				    READ);
	for (i = 0; i < 64; i++) {
		struct req w = post(f, 0, VIRTIO_BLK_T_OUT, i * 16 * 8ULL,
				    4096, 1, true);

		memcpy(gptr(f, w.data), mirror + i * 16 * 4096ULL, 4096);
	}
	vdriver_kick(&f->d, 0);
	vdriver_reset(&f->d);
	assert_int_equal(vdriver_status(&f->d), 0);
	close_and_compare(f, mirror);
}

#define T(fn, kind, s) \
	cmocka_unit_test_prestate_setup_teardown(fn, s, teardown, (void *)&kind)
#define BOTH(fn, s) T(fn, kind_sync, s), T(fn, kind_uring, s)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(features_and_config, setup),
		BOTH(read_write, setup),
		BOTH(read_write, setup_nocache),
		BOTH(discard_and_write_zeroes, setup),
		BOTH(features_not_negotiated, setup),
		BOTH(read_only, setup_ro),
		BOTH(bad_requests, setup),
		BOTH(depth_128_indirect_event_idx, setup),
		BOTH(depth_1_sequential, setup),
		BOTH(direct_no_event_idx, setup),
		BOTH(writethrough, setup),
		BOTH(two_queues, setup_2q),
		BOTH(sector_size_4k, setup_4k),
		BOTH(reset_mid_io, setup),
		BOTH(hostile_short_header, setup),
		BOTH(hostile_no_status, setup),
		BOTH(hostile_loop, setup),
		BOTH(hostile_data_outside_ram, setup),
		BOTH(odd_but_legal_chains, setup),
		BOTH(long_chain, setup),
		BOTH(qcow2_storm, setup_qcow2),
		BOTH(qcow2_storm, setup_qcow2_nocache),
		BOTH(qcow2_deep_queue, setup_qcow2),
		BOTH(qcow2_deep_queue, setup_qcow2_nocache),
		cmocka_unit_test_prestate(enospc, (void *)&kind_sync),
		cmocka_unit_test_prestate(enospc, (void *)&kind_uring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
