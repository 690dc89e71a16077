/*
 * devbench 9p: virtio-9p and its 9P2000.L server on a host folder, as a
 * Linux guest's v9fs (cache=none) would drive it: one request in flight,
 * msize 512 KiB, reads and writes of msize - 24 bytes (P9_IOHDRSZ) with
 * the data in its own descriptor (zero copy in the driver, as Linux's
 * virtio transport does for large payloads), and for each file of the
 * metadata run walk + lcreate + clunk, walk + getattr + clunk, unlinkat.
 *
 * devbench 9p-host runs the same loop with system calls on the folder:
 * open/pwrite/pread/close, open(O_CREAT)/close, fstatat, unlinkat.
 *
 *   9p|9p-host DIR write SIZE [CHUNK]   write DIR/bench.dat
 *   9p|9p-host DIR read SIZE [CHUNK]    read it back (page cache warm)
 *   9p|9p-host DIR meta COUNT           create, stat, unlink COUNT files
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devbench.h"
#include "devices/virtio_9p.h"
#include "p9/p9_codec.h"

#define MSIZE P9_MSIZE_MAX
#define IOHDRSZ 24
#define MSG_ROOM 8192
#define ROOT_FID 0
#define FILE_FID 1
#define BENCH_FILE "bench.dat"

struct p9b {
	struct vdriver d;
	struct virtio_9p *dev;
	uint64_t req, rsp, data; /* guest addresses */
	struct iovec iov[2];
	struct p9_cur c;
	struct p9_cur r; /* the reply, after rpc() */
	uint16_t tag;
	uint64_t requests;
};

static void msg_begin(struct p9b *b, uint8_t type)
{
	b->iov[0] = (struct iovec){ vdriver_ptr(&b->d, b->req), MSG_ROOM };
	p9_cur_init(&b->c, b->iov, 1, MSG_ROOM);
	p9_reply_begin(&b->c, type, b->tag);
}

/*
 * Send the message built since msg_begin() (plus @out_data bytes of the
 * data buffer after it), the reply into the reply buffer (plus @in_data
 * bytes of the data buffer); check it is @type + 1.
 */
static void rpc(struct p9b *b, uint8_t type, uint32_t out_data,
		uint32_t in_data)
{
	struct vdriver_buf bufs[4];
	unsigned int n_out = 0, n_in = 0;
	size_t len = p9_reply_end(&b->c);
	uint32_t size, rlen, ecode;
	uint16_t head, tag, old = b->d.q[0].avail_idx;
	struct iovec riov[2];
	uint8_t rtype;

	if (!len)
		bench_fail("9p: message %u too big", type);
	if (out_data) {
		size = (uint32_t)len + out_data;
		memcpy(vdriver_ptr(&b->d, b->req), &size, 4);
	}
	bufs[n_out++] = (struct vdriver_buf){ b->req, (uint32_t)len };
	if (out_data)
		bufs[n_out++] = (struct vdriver_buf){ b->data, out_data };
	/* Rread: size[4] type[1] tag[2] count[4], then the data. */
	bufs[n_out + n_in++] =
		(struct vdriver_buf){ b->rsp, in_data ? 11 : MSG_ROOM };
	if (in_data)
		bufs[n_out + n_in++] = (struct vdriver_buf){ b->data, in_data };
	bench_post(&b->d, 0, 0, 4, bufs, n_out, n_in);
	bench_kick(&b->d, 0, old);
	if (bench_used(&b->d, 0, &head, &rlen, 10000) != 1)
		bench_fail("9p: no answer to message %u within 10 s", type);
	b->requests++;
	riov[0] = (struct iovec){ vdriver_ptr(&b->d, b->rsp),
				  in_data ? 11 : MSG_ROOM };
	riov[1] = (struct iovec){ vdriver_ptr(&b->d, b->data), in_data };
	p9_cur_init(&b->r, riov, in_data ? 2 : 1, rlen);
	size = p9_get_u32(&b->r);
	rtype = p9_get_u8(&b->r);
	tag = p9_get_u16(&b->r);
	if (size != rlen || tag != b->tag)
		bench_fail("9p: reply to %u: size %u (used %u), tag %u", type,
			   size, rlen, tag);
	if (rtype == P9_RLERROR) {
		ecode = p9_get_u32(&b->r);
		bench_fail("9p: message %u: %s", type, strerror((int)ecode));
	}
	if (rtype != type + 1)
		bench_fail("9p: message %u answered with %u", type, rtype);
	b->tag = (uint16_t)(b->tag + 1) % P9_NOTAG;
}

static void p9_walk(struct p9b *b, uint32_t fid, uint32_t newfid,
		    const char *name)
{
	msg_begin(b, P9_TWALK);
	p9_put_u32(&b->c, fid);
	p9_put_u32(&b->c, newfid);
	p9_put_u16(&b->c, name ? 1 : 0);
	if (name)
		p9_put_str(&b->c, name, strlen(name));
	rpc(b, P9_TWALK, 0, 0);
}

static void p9_clunk(struct p9b *b, uint32_t fid)
{
	msg_begin(b, P9_TCLUNK);
	p9_put_u32(&b->c, fid);
	rpc(b, P9_TCLUNK, 0, 0);
}

static void p9_lcreate(struct p9b *b, uint32_t fid, const char *name,
		       uint32_t flags)
{
	msg_begin(b, P9_TLCREATE);
	p9_put_u32(&b->c, fid);
	p9_put_str(&b->c, name, strlen(name));
	p9_put_u32(&b->c, flags);
	p9_put_u32(&b->c, 0644);
	p9_put_u32(&b->c, (uint32_t)getgid());
	rpc(b, P9_TLCREATE, 0, 0);
}

static void session(struct p9b *b, const char *dir)
{
	struct virtio_9p_options o = { .tag = "bench", .share = (char *)dir };
	char err[256], version[16];
	uint32_t msize;

	if (vdriver_init(&b->d, 256ULL << 20))
		bench_fail("9p: guest memory");
	if (virtio_9p_init(&b->dev, "virtio-9p@bench", &b->d.mem, &o, err,
			   sizeof(err)))
		bench_fail("9p: %s", err);
	vdriver_attach(&b->d, virtio_9p_dev(b->dev));
	if (vdriver_start(&b->d, ~0ULL, 0) <= 0)
		bench_fail("9p: the device did not start");
	b->req = vdriver_alloc(&b->d, MSG_ROOM, 4096);
	b->rsp = vdriver_alloc(&b->d, MSG_ROOM, 4096);
	b->data = vdriver_alloc(&b->d, MSIZE, 4096);
	if (!b->req || !b->rsp || !b->data)
		bench_fail("9p: guest memory");
	b->tag = P9_NOTAG;
	msg_begin(b, P9_TVERSION);
	p9_put_u32(&b->c, MSIZE);
	p9_put_str(&b->c, "9P2000.L", 8);
	rpc(b, P9_TVERSION, 0, 0);
	msize = p9_get_u32(&b->r);
	if (p9_get_str(&b->r, version, sizeof(version) - 1) ||
	    strcmp(version, "9P2000.L") || msize != MSIZE)
		bench_fail("9p: Rversion %s msize %u", version, msize);
	b->tag = 1;
	msg_begin(b, P9_TATTACH);
	p9_put_u32(&b->c, ROOT_FID);
	p9_put_u32(&b->c, P9_NOFID);
	p9_put_str(&b->c, "root", 4);
	p9_put_str(&b->c, "", 0);
	p9_put_u32(&b->c, (uint32_t)getuid());
	rpc(b, P9_TATTACH, 0, 0);
}

static void dev_rw(struct p9b *b, bool write, uint64_t size, uint32_t chunk)
{
	struct bench_clock clk;
	uint64_t off = 0;

	bench_fill_random(vdriver_ptr(&b->d, b->data), chunk);
	bench_start(&clk);
	p9_walk(b, ROOT_FID, FILE_FID, write ? NULL : BENCH_FILE);
	if (write) {
		p9_lcreate(b, FILE_FID, BENCH_FILE,
			   P9_DOTL_WRONLY | P9_DOTL_CREATE | P9_DOTL_TRUNC);
	} else {
		msg_begin(b, P9_TLOPEN);
		p9_put_u32(&b->c, FILE_FID);
		p9_put_u32(&b->c, P9_DOTL_RDONLY);
		rpc(b, P9_TLOPEN, 0, 0);
	}
	while (off < size) {
		uint32_t n =
			size - off < chunk ? (uint32_t)(size - off) : chunk;
		uint32_t got;

		msg_begin(b, write ? P9_TWRITE : P9_TREAD);
		p9_put_u32(&b->c, FILE_FID);
		p9_put_u64(&b->c, off);
		p9_put_u32(&b->c, n);
		rpc(b, write ? P9_TWRITE : P9_TREAD, write ? n : 0,
		    write ? 0 : n);
		got = p9_get_u32(&b->r);
		if (got == 0 || got > n)
			bench_fail("9p: %s at %llu: %u of %u bytes",
				   write ? "write" : "read",
				   (unsigned long long)off, got, n);
		off += got;
	}
	p9_clunk(b, FILE_FID);
	bench_stop(&clk);
	bench_print(&clk, b->requests, size, ", \"chunk\": %u", chunk);
}

static void dev_meta(struct p9b *b, unsigned int count)
{
	double t[4];
	struct bench_clock clk;
	unsigned int i;
	char name[32];

	bench_start(&clk);
	t[0] = bench_now();
	for (i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		p9_walk(b, ROOT_FID, FILE_FID, NULL);
		p9_lcreate(b, FILE_FID, name,
			   P9_DOTL_WRONLY | P9_DOTL_CREATE | P9_DOTL_EXCL);
		p9_clunk(b, FILE_FID);
	}
	t[1] = bench_now();
	for (i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		p9_walk(b, ROOT_FID, FILE_FID, name);
		msg_begin(b, P9_TGETATTR);
		p9_put_u32(&b->c, FILE_FID);
		p9_put_u64(&b->c, 0x7ffULL); /* P9_GETATTR_BASIC */
		rpc(b, P9_TGETATTR, 0, 0);
		p9_clunk(b, FILE_FID);
	}
	t[2] = bench_now();
	for (i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		msg_begin(b, P9_TUNLINKAT);
		p9_put_u32(&b->c, ROOT_FID);
		p9_put_str(&b->c, name, strlen(name));
		p9_put_u32(&b->c, 0);
		rpc(b, P9_TUNLINKAT, 0, 0);
	}
	t[3] = bench_now();
	bench_stop(&clk);
	bench_print(&clk, count, 0,
		    ", \"create_s\": %.4f, \"stat_s\": %.4f, \"unlink_s\": %.4f"
		    ", \"requests\": %llu",
		    t[1] - t[0], t[2] - t[1], t[3] - t[2],
		    (unsigned long long)b->requests);
}

/* --- the same on the host folder --- */

static void host_rw(const char *dir, bool write, uint64_t size, uint32_t chunk)
{
	struct bench_clock clk;
	uint64_t off = 0, calls = 0;
	char *buf = aligned_alloc(4096, (chunk + 4095) & ~4095u);
	int dfd, fd;

	if (!buf)
		bench_fail("out of memory");
	bench_fill_random(buf, chunk);
	dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dfd < 0)
		bench_fail("%s: %s", dir, strerror(errno));
	bench_start(&clk);
	fd = openat(dfd, BENCH_FILE,
		    write ? O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC :
			    O_RDONLY | O_CLOEXEC,
		    0644);
	if (fd < 0)
		bench_fail("%s/%s: %s", dir, BENCH_FILE, strerror(errno));
	while (off < size) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
		ssize_t got = write ? pwrite(fd, buf, n, (off_t)off) :
				      pread(fd, buf, n, (off_t)off);

		if (got <= 0)
			bench_fail("%s at %llu: %s", write ? "pwrite" : "pread",
				   (unsigned long long)off,
				   got ? strerror(errno) : "end of file");
		off += (uint64_t)got;
		calls++;
	}
	close(fd);
	bench_stop(&clk);
	close(dfd);
	free(buf);
	bench_print(&clk, calls, size, ", \"chunk\": %u", chunk);
}

static void host_meta(const char *dir, unsigned int count)
{
	struct bench_clock clk;
	unsigned int i;
	struct stat st;
	char name[32];
	double t[4];
	int dfd, fd;

	dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dfd < 0)
		bench_fail("%s: %s", dir, strerror(errno));
	bench_start(&clk);
	t[0] = bench_now();
	for (i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			    0644);
		if (fd < 0)
			bench_fail("create %s: %s", name, strerror(errno));
		close(fd);
	}
	t[1] = bench_now();
	for (i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
			bench_fail("stat %s: %s", name, strerror(errno));
	}
	t[2] = bench_now();
	for (i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		if (unlinkat(dfd, name, 0))
			bench_fail("unlink %s: %s", name, strerror(errno));
	}
	t[3] = bench_now();
	bench_stop(&clk);
	close(dfd);
	bench_print(
		&clk, count, 0,
		", \"create_s\": %.4f, \"stat_s\": %.4f, \"unlink_s\": %.4f",
		t[1] - t[0], t[2] - t[1], t[3] - t[2]);
}

int bench_9p(int argc, char **argv, bool host)
{
	static struct p9b b;
	uint64_t n;
	uint32_t chunk = MSIZE - IOHDRSZ;
	const char *dir, *what;

	if (argc < 3 || argc > 4)
		bench_fail(
			"usage: 9p|9p-host DIR write|read|meta SIZE_OR_COUNT "
			"[CHUNK]");
	dir = argv[0];
	what = argv[1];
	n = strtoull(argv[2], NULL, 0);
	if (argc == 4)
		chunk = (uint32_t)strtoul(argv[3], NULL, 0);
	if (!n || !chunk || chunk > MSIZE - IOHDRSZ)
		bench_fail("9p: bad size, count or chunk");
	if (!strcmp(what, "meta")) {
		if (n > 999999)
			bench_fail("9p: at most 999999 files");
		if (host) {
			host_meta(dir, (unsigned int)n);
			return 0;
		}
		session(&b, dir);
		dev_meta(&b, (unsigned int)n);
	} else if (!strcmp(what, "write") || !strcmp(what, "read")) {
		if (host) {
			host_rw(dir, what[0] == 'w', n, chunk);
			return 0;
		}
		session(&b, dir);
		dev_rw(&b, what[0] == 'w', n, chunk);
	} else {
		bench_fail("9p: unknown workload %s", what);
	}
	virtio_9p_destroy(b.dev);
	vdriver_exit(&b.d);
	return 0;
}
