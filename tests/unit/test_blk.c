/*
 * The block layer on real files: blk_open's checks and errors, and each
 * engine (sync, io_uring) reading, writing, flushing, discarding and
 * zeroing, checked against the file itself; ENOSPC from a tiny tmpfs;
 * io_uring at depth 1 and 128 with hundreds of requests in flight; a loop
 * block device when the host lets us make one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/loop.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/blk.h"

static const enum blk_engine_kind kind_sync = BLK_ENGINE_SYNC;
static const enum blk_engine_kind kind_uring = BLK_ENGINE_URING;

struct io {
	struct blk_req req;
	int result;
	bool done;
	int *pending;
};

static void io_done(struct blk_req *req, int result)
{
	struct io *io = req->opaque;

	assert_false(io->done);
	io->done = true;
	io->result = result;
	if (io->pending)
		(*io->pending)--;
}

/* A file of @size bytes in /var/tmp (a disk file system, not tmpfs). */
static char *make_file(uint64_t size, bool fill)
{
	char *path = strdup("/var/tmp/khyve-blk-XXXXXX");
	int fd = mkstemp(path);
	uint64_t off;

	assert_true(fd >= 0);
	if (fill) {
		static uint8_t chunk[65536];

		for (off = 0; off < size; off += sizeof(chunk)) {
			size_t n = size - off < sizeof(chunk) ? size - off :
								sizeof(chunk);

			memset(chunk, 0xa5, n);
			assert_int_equal(pwrite(fd, chunk, n, (off_t)off),
					 (ssize_t)n);
		}
	}
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
	return path;
}

static void open_disk(struct blk *b, const char *path,
		      enum blk_engine_kind kind, bool ro, unsigned int depth)
{
	struct blk_options o = {
		.path = path,
		.read_only = ro,
		.discard = true,
		.engine = kind,
		.queue_depth = depth,
	};
	char err[256];

	if (blk_open(b, &o, err, sizeof(err)))
		fail_msg("blk_open: %s", err);
}

/* Run completions until *pending is 0. */
static void wait_pending(struct blk *b, int *pending)
{
	int fd = blk_event_fd(b);

	while (*pending) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		assert_true(fd >= 0);
		assert_int_equal(poll(&p, 1, 10000), 1);
		blk_complete(b);
	}
}

/* One request, waited for; returns its result. */
static int run(struct blk *b, enum blk_op op, uint64_t off, uint64_t len,
	       const struct iovec *iov, unsigned int cnt)
{
	int pending = 1;
	struct io io = { .pending = &pending };
	int r;

	io.req = (struct blk_req){ .op = op,
				   .offset = off,
				   .len = len,
				   .iov = iov,
				   .iovcnt = cnt,
				   .done = io_done,
				   .opaque = &io };
	r = blk_submit(b, &io.req);
	if (r)
		return r;
	wait_pending(b, &pending);
	assert_true(io.done);
	return io.result;
}

static int rw(struct blk *b, enum blk_op op, uint64_t off, void *buf,
	      size_t len)
{
	struct iovec iov = { buf, len };

	return run(b, op, off, len, &iov, 1);
}

static void pread_all(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static blkcnt_t blocks_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_blocks;
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

static void read_write(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	char *path = make_file(1 << 20, true);
	static uint8_t wbuf[65536], rbuf[65536], fbuf[65536];
	struct iovec wiov[3] = { { wbuf, 512 },
				 { wbuf + 512, 30000 },
				 { wbuf + 30512, 65536 - 30512 } };
	struct iovec riov[2] = { { rbuf, 4096 },
				 { rbuf + 4096, 65536 - 4096 } };
	struct blk b;

	open_disk(&b, path, kind, false, 0);
	assert_int_equal(b.size, 1 << 20);
	assert_int_equal(b.logical_block, 512);
	assert_true(b.physical_block >= 512);
	assert_ptr_equal(b.engine, kind == BLK_ENGINE_SYNC ? &blk_engine_sync :
							     &blk_engine_uring);
	fill_pattern(wbuf, sizeof(wbuf), 3);
	assert_int_equal(run(&b, BLK_OP_WRITE, 8192, sizeof(wbuf), wiov, 3), 0);
	assert_int_equal(run(&b, BLK_OP_READ, 8192, sizeof(rbuf), riov, 2), 0);
	assert_memory_equal(rbuf, wbuf, sizeof(wbuf));
	pread_all(path, 8192, fbuf, sizeof(fbuf));
	assert_memory_equal(fbuf, wbuf, sizeof(wbuf));
	/* What the file held before reads back too. */
	assert_int_equal(rw(&b, BLK_OP_READ, 0, rbuf, 8192), 0);
	assert_int_equal(rbuf[0], 0xa5);
	assert_int_equal(rbuf[8191], 0xa5);
	/* The last sector, and a flush. */
	assert_int_equal(rw(&b, BLK_OP_WRITE, (1 << 20) - 512, wbuf, 512), 0);
	assert_int_equal(run(&b, BLK_OP_FLUSH, 0, 0, NULL, 0), 0);
	pread_all(path, (1 << 20) - 512, fbuf, 512);
	assert_memory_equal(fbuf, wbuf, 512);
	blk_close(&b);
	unlink(path);
	free(path);
}

/* O_DIRECT (nocache) and O_DSYNC (direct/sync) on a disk file system. */
static void nocache_and_sync(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	char *path = make_file(1 << 20, true);
	struct blk_options o = { .path = path,
				 .engine = kind,
				 .discard = true,
				 .nocache = true,
				 .sync = true };
	uint8_t *w = NULL, *r = NULL, file[65536];
	char err[256];
	struct blk b;

	assert_int_equal(posix_memalign((void **)&w, 4096, 65536), 0);
	assert_int_equal(posix_memalign((void **)&r, 4096, 65536), 0);
	if (blk_open(&b, &o, err, sizeof(err)))
		fail_msg("blk_open: %s", err);
	assert_true(fcntl(b.fd, F_GETFL) & O_DIRECT);
	assert_true(fcntl(b.fd, F_GETFL) & O_DSYNC);
	assert_false(fcntl(b.fd, F_GETFL) & O_NONBLOCK);
	fill_pattern(w, 65536, 21);
	assert_int_equal(rw(&b, BLK_OP_WRITE, 65536, w, 65536), 0);
	assert_int_equal(rw(&b, BLK_OP_READ, 65536, r, 65536), 0);
	assert_memory_equal(r, w, 65536);
	pread_all(path, 65536, file, sizeof(file));
	assert_memory_equal(file, w, 65536);
	assert_int_equal(run(&b, BLK_OP_WRITE_ZEROES, 65536, 4096, NULL, 0), 0);
	assert_int_equal(rw(&b, BLK_OP_READ, 65536, r, 4096), 0);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[4095], 0);
	assert_int_equal(run(&b, BLK_OP_FLUSH, 0, 0, NULL, 0), 0);
	blk_close(&b);
	unlink(path);
	free(path);
	free(w);
	free(r);
}

/* More iovecs than one system call takes: continued where it stopped. */
static void many_iovecs(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	enum { N = 2000, SEG = 512 };
	char *path = make_file((uint64_t)N * SEG * 2, false);
	uint8_t *wbuf = malloc(N * SEG), *rbuf = calloc(N, SEG);
	struct iovec *iov = calloc(N, sizeof(*iov));
	struct blk b;
	unsigned int i;

	fill_pattern(wbuf, N * SEG, 11);
	open_disk(&b, path, kind, false, 0);
	for (i = 0; i < N; i++)
		iov[i] = (struct iovec){ wbuf + (size_t)i * SEG, SEG };
	assert_int_equal(run(&b, BLK_OP_WRITE, 4096, N * SEG, iov, N), 0);
	for (i = 0; i < N; i++)
		iov[i] = (struct iovec){ rbuf + (size_t)i * SEG, SEG };
	assert_int_equal(run(&b, BLK_OP_READ, 4096, N * SEG, iov, N), 0);
	assert_memory_equal(rbuf, wbuf, N * SEG);
	blk_close(&b);
	unlink(path);
	free(path);
	free(wbuf);
	free(rbuf);
	free(iov);
}

static void discard_and_zeroes(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	enum { SZ = 4 << 20 };
	char *path = make_file(SZ, true);
	static uint8_t buf[1 << 20];
	blkcnt_t before, after;
	struct blk b;
	size_t i;

	open_disk(&b, path, kind, false, 0);
	assert_true(b.can_discard);
	before = blocks_of(path);
	assert_true(before >= SZ / 512);
	assert_int_equal(run(&b, BLK_OP_DISCARD, 1 << 20, 2 << 20, NULL, 0), 0);
	after = blocks_of(path);
	/* 2 MiB less allocated: 4096 sectors of 512 bytes. */
	assert_true(after <= before - 4000);
	/* Write-zeroes: reads back as zeroes, the rest untouched. */
	assert_int_equal(
		run(&b, BLK_OP_WRITE_ZEROES, (3 << 20) + 8192, 65536, NULL, 0),
		0);
	pread_all(path, (3 << 20) + 4096, buf, 65536 + 8192);
	for (i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0xa5);
	for (i = 4096; i < 4096 + 65536; i++)
		assert_int_equal(buf[i], 0);
	for (i = 4096 + 65536; i < 65536 + 8192; i++)
		assert_int_equal(buf[i], 0xa5);
	assert_int_equal(rw(&b, BLK_OP_READ, (3 << 20) + 8192, buf, 65536), 0);
	for (i = 0; i < 65536; i++)
		assert_int_equal(buf[i], 0);
	blk_close(&b);

	/* discard=off: refused, nothing freed. */
	{
		struct blk_options o = { .path = path, .engine = kind };
		char err[256];

		assert_int_equal(blk_open(&b, &o, err, sizeof(err)), 0);
		assert_false(b.can_discard);
		assert_int_equal(run(&b, BLK_OP_DISCARD, 0, 4096, NULL, 0),
				 -EOPNOTSUPP);
		blk_close(&b);
	}
	unlink(path);
	free(path);
}

static void read_only(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	char *path = make_file(65536, true);
	uint8_t buf[4096], fbuf[4096];
	struct blk b;

	open_disk(&b, path, kind, true, 0);
	assert_true(b.read_only);
	assert_false(b.can_discard);
	memset(buf, 0x11, sizeof(buf));
	assert_int_equal(rw(&b, BLK_OP_WRITE, 0, buf, sizeof(buf)), -EROFS);
	assert_int_equal(run(&b, BLK_OP_DISCARD, 0, 4096, NULL, 0), -EROFS);
	assert_int_equal(run(&b, BLK_OP_WRITE_ZEROES, 0, 4096, NULL, 0),
			 -EROFS);
	assert_int_equal(run(&b, BLK_OP_FLUSH, 0, 0, NULL, 0), 0);
	assert_int_equal(rw(&b, BLK_OP_READ, 0, buf, sizeof(buf)), 0);
	pread_all(path, 0, fbuf, sizeof(fbuf));
	assert_memory_equal(buf, fbuf, sizeof(buf));
	assert_int_equal(buf[0], 0xa5);
	blk_close(&b);
	unlink(path);
	free(path);
}

static void bad_requests(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	char *path = make_file(65536, false);
	uint8_t buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct blk b;

	open_disk(&b, path, kind, false, 0);
	assert_int_equal(rw(&b, BLK_OP_READ, 65536, buf, 512), -EINVAL);
	assert_int_equal(rw(&b, BLK_OP_WRITE, 65536 - 512, buf, 1024), -EINVAL);
	assert_int_equal(rw(&b, BLK_OP_READ, UINT64_MAX - 100, buf, 512),
			 -EINVAL);
	assert_int_equal(run(&b, BLK_OP_DISCARD, 4096, UINT64_MAX, NULL, 0),
			 -EINVAL);
	/* len must be the iovecs' total. */
	assert_int_equal(run(&b, BLK_OP_READ, 0, 8192, &iov, 1), -EINVAL);
	assert_int_equal(run(&b, (enum blk_op)42, 0, 0, NULL, 0), -EINVAL);
	/* Empty requests complete at once; the end of the disk is fine. */
	assert_int_equal(run(&b, BLK_OP_READ, 65536, 0, NULL, 0), 0);
	assert_int_equal(rw(&b, BLK_OP_READ, 65536 - 4096, buf, 4096), 0);
	blk_close(&b);
	unlink(path);
	free(path);
}

/*
 * ENOSPC for real: a 1 MiB tmpfs in a private mount namespace (a child
 * process, so nothing leaks). The write fails with -ENOSPC, and the disk
 * goes on serving reads and smaller writes.
 */
static int enospc_child(enum blk_engine_kind kind)
{
	char dir[] = "/tmp/khyve-enospc-XXXXXX";
	static uint8_t buf[2 << 20];
	char path[64];
	struct blk b;
	int fd, r, ret = 1;

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
	snprintf(path, sizeof(path), "%s/disk", dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 4 << 20))
		goto out;
	close(fd);
	{
		struct blk_options o = { .path = path,
					 .engine = kind,
					 .discard = true };
		char err[256];

		if (blk_open(&b, &o, err, sizeof(err)))
			goto out;
	}
	memset(buf, 0x5a, sizeof(buf));
	r = rw(&b, BLK_OP_WRITE, 0, buf, sizeof(buf));
	if (r != -ENOSPC) {
		fprintf(stderr, "write: %d, want %d\n", r, -ENOSPC);
		goto close;
	}
	/* Still serving: read back, discard to free space, write again. */
	if (rw(&b, BLK_OP_READ, 0, buf, 4096) ||
	    run(&b, BLK_OP_DISCARD, 0, 4 << 20, NULL, 0) ||
	    rw(&b, BLK_OP_WRITE, 0, buf, 65536) ||
	    run(&b, BLK_OP_FLUSH, 0, 0, NULL, 0))
		goto close;
	ret = 0;
close:
	blk_close(&b);
out:
	umount(dir);
	rmdir(dir);
	return ret;
}

/* Wait for the test child @pid: its wait status. */
static int wait_child(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/*
 * A test child's status: exit 0 passes, 77 skips (it could not set up
 * what it needs: a mount namespace, io_uring off, another user).
 */
static void child_passed(int status)
{
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void enospc(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (!pid)
		_exit(enospc_child(kind));
	child_passed(wait_child(pid));
}

/* @n 4 KiB writes at once, then reads, at io_uring depth @depth. */
static void in_flight(unsigned int depth, unsigned int n, bool use_drain)
{
	char *path = make_file((uint64_t)n * 4096, false);
	uint8_t *buf = malloc((size_t)n * 4096),
		*rbuf = malloc((size_t)n * 4096);
	uint8_t *file = malloc((size_t)n * 4096);
	struct iovec *iov = calloc(n, sizeof(*iov));
	struct io *ios = calloc(n, sizeof(*ios));
	int pending = 0;
	struct blk b;
	unsigned int i;

	fill_pattern(buf, (size_t)n * 4096, depth);
	open_disk(&b, path, BLK_ENGINE_URING, false, depth);
	for (i = 0; i < n; i++) {
		/* Scattered order: request i writes block (i * 7) % n. */
		unsigned int blk_no = (i * 7) % n;

		iov[i] = (struct iovec){ buf + (size_t)blk_no * 4096, 4096 };
		ios[i] = (struct io){ .pending = &pending };
		ios[i].req =
			(struct blk_req){ .op = BLK_OP_WRITE,
					  .offset = (uint64_t)blk_no * 4096,
					  .len = 4096,
					  .iov = &iov[i],
					  .iovcnt = 1,
					  .done = io_done,
					  .opaque = &ios[i] };
		pending++;
		assert_int_equal(blk_submit(&b, &ios[i].req), 0);
	}
	if (use_drain) {
		blk_drain(&b);
		assert_int_equal(pending, 0);
	} else {
		wait_pending(&b, &pending);
	}
	for (i = 0; i < n; i++) {
		assert_true(ios[i].done);
		assert_int_equal(ios[i].result, 0);
	}
	pread_all(path, 0, file, (size_t)n * 4096);
	assert_memory_equal(file, buf, (size_t)n * 4096);
	/* And read it all back through the engine, also all at once. */
	for (i = 0; i < n; i++) {
		iov[i] = (struct iovec){ rbuf + (size_t)i * 4096, 4096 };
		ios[i] = (struct io){ .pending = &pending };
		ios[i].req = (struct blk_req){ .op = BLK_OP_READ,
					       .offset = (uint64_t)i * 4096,
					       .len = 4096,
					       .iov = &iov[i],
					       .iovcnt = 1,
					       .done = io_done,
					       .opaque = &ios[i] };
		pending++;
		assert_int_equal(blk_submit(&b, &ios[i].req), 0);
	}
	wait_pending(&b, &pending);
	assert_memory_equal(rbuf, buf, (size_t)n * 4096);
	blk_close(&b);
	unlink(path);
	free(path);
	free(buf);
	free(rbuf);
	free(file);
	free(iov);
	free(ios);
}

static void uring_depth_1(void **state)
{
	(void)state;
	in_flight(1, 200, false);
}

static void uring_depth_128(void **state)
{
	(void)state;
	in_flight(128, 1000, false);
}

static void uring_drain(void **state)
{
	(void)state;
	in_flight(8, 300, true);
	in_flight(128, 300, true);
}

/* Plugged: nothing reaches the kernel until blk_unplug(). */
static void uring_plug(void **state)
{
	char *path = make_file(65536, true);
	uint8_t buf[8][512];
	struct iovec iov[8];
	struct io ios[8];
	int pending = 0;
	struct blk b;
	struct pollfd p;
	unsigned int i;

	(void)state;
	open_disk(&b, path, BLK_ENGINE_URING, false, 0);
	blk_plug(&b);
	for (i = 0; i < 8; i++) {
		iov[i] = (struct iovec){ buf[i], 512 };
		ios[i] = (struct io){ .pending = &pending };
		ios[i].req = (struct blk_req){ .op = BLK_OP_READ,
					       .offset = i * 512,
					       .len = 512,
					       .iov = &iov[i],
					       .iovcnt = 1,
					       .done = io_done,
					       .opaque = &ios[i] };
		pending++;
		assert_int_equal(blk_submit(&b, &ios[i].req), 0);
	}
	p = (struct pollfd){ .fd = blk_event_fd(&b), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 50), 0);
	assert_int_equal(pending, 8);
	blk_unplug(&b);
	wait_pending(&b, &pending);
	for (i = 0; i < 8; i++)
		assert_int_equal(buf[i][0], 0xa5);
	blk_close(&b);
	unlink(path);
	free(path);
}

static void auto_engine(void **state)
{
	char *path = make_file(65536, false);
	struct blk b;

	(void)state;
	open_disk(&b, path, BLK_ENGINE_AUTO, false, 0);
	/* This kernel has io_uring: AUTO takes it. */
	assert_ptr_equal(b.engine, &blk_engine_uring);
	assert_ptr_equal(b.format, &blk_format_raw);
	assert_true(blk_event_fd(&b) >= 0);
	blk_close(&b);
	unlink(path);
	free(path);
}

/*
 * No io_uring (a seccomp filter makes io_uring_setup fail with ENOSYS, as
 * on kernels without it): AUTO falls back to system calls and works;
 * engine=uring is refused with a message.
 */
static int no_uring_child(const char *path)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]),
				   .filter = code };
	struct blk_options o = { .path = path, .discard = true };
	uint8_t buf[512];
	char err[256] = "";
	struct blk b;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 77;
	if (blk_open(&b, &o, err, sizeof(err)) || b.engine != &blk_engine_sync)
		return 1;
	if (rw(&b, BLK_OP_READ, 0, buf, sizeof(buf)) || buf[0] != 0xa5)
		return 2;
	blk_close(&b);
	o.engine = BLK_ENGINE_URING;
	if (blk_open(&b, &o, err, sizeof(err)) != -ENOSYS ||
	    !strstr(err, "io_uring") || !strstr(err, path))
		return 3;
	return 0;
}

static void no_uring_fallback(void **state)
{
	char *path = make_file(65536, true);
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(no_uring_child(path));
	status = wait_child(pid);
	unlink(path);
	free(path);
	child_passed(status);
}

static void open_fails(const struct blk_options *o, int want,
		       const char *needle)
{
	char err[512] = "";
	struct blk b;
	int r = blk_open(&b, o, err, sizeof(err));

	if (r != want || !strstr(err, needle) ||
	    (o->path && *o->path && !strstr(err, o->path)))
		fail_msg("blk_open(%s): %d '%s', want %d '%s'", o->path, r, err,
			 want, needle);
}

static void open_errors(void **state)
{
	char *path = make_file(1000, false);
	char dir[] = "/var/tmp/khyve-blkdir-XXXXXX";
	struct blk_options o = { .discard = true };

	(void)state;
	o.path = "/nonexistent/disk.img";
	open_fails(&o, -ENOENT, "no such file");
	assert_non_null(mkdtemp(dir));
	o.path = dir;
	open_fails(&o, -EISDIR, "is a directory");
	o.read_only = true;
	open_fails(&o, -EISDIR, "is a directory");
	o.read_only = false;
	o.path = "/dev/null";
	open_fails(&o, -EINVAL, "not a regular file or block device");
	/* 1000 bytes: not whole sectors. */
	o.path = path;
	open_fails(&o, -EINVAL, "not a multiple of the 512-byte sector size");
	assert_int_equal(truncate(path, 4096 * 3 + 512), 0);
	o.logical_block = 4096;
	o.physical_block = 4096;
	open_fails(&o, -EINVAL, "4096-byte sector size");
	o.logical_block = 1000;
	open_fails(&o, -EINVAL, "bad sector size");
	o.logical_block = 0;
	o.physical_block = 0;
	o.path = "";
	open_fails(&o, -EINVAL, "path is required");
	rmdir(dir);
	unlink(path);
	free(path);
}

static void sector_sizes(void **state)
{
	char *path = make_file(4096 * 8, false);
	struct blk_options o = { .discard = true,
				 .logical_block = 4096,
				 .physical_block = 16384 };
	uint8_t buf[4096];
	char err[256];
	struct blk b;

	(void)state;
	o.path = path;
	assert_int_equal(blk_open(&b, &o, err, sizeof(err)), 0);
	assert_int_equal(b.logical_block, 4096);
	assert_int_equal(b.physical_block, 16384);
	assert_int_equal(rw(&b, BLK_OP_READ, 4096 * 7, buf, 4096), 0);
	blk_close(&b);
	unlink(path);
	free(path);
}

/* Permission for the mode asked, as a user who may only read. */
static void permission(void **state)
{
	char *path = make_file(65536, false);
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(chmod(path, 0644), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct blk_options o = { .path = path, .discard = true };
		char err[256] = "";
		struct blk b;

		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(77);
		if (blk_open(&b, &o, err, sizeof(err)) != -EACCES ||
		    !strstr(err, "permission denied for reading and writing") ||
		    !strstr(err, path))
			_exit(1);
		o.read_only = true;
		if (blk_open(&b, &o, err, sizeof(err)))
			_exit(2);
		blk_close(&b);
		_exit(0);
	}
	status = wait_child(pid);
	unlink(path);
	free(path);
	child_passed(status);
}

/*
 * A loop block device over a file: size and sector sizes from the ioctls,
 * BLKDISCARD and BLKZEROOUT. Skipped where loop devices cannot be made.
 */
static void block_device(void **state)
{
	enum blk_engine_kind kind = *(const enum blk_engine_kind *)*state;
	char *path = make_file(4 << 20, true);
	struct loop_config cfg = { 0 };
	static uint8_t buf[65536];
	char dev[32];
	int ctl, n, lfd, ffd;
	blkcnt_t before;
	struct blk b;
	size_t i;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		goto skip_file;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		goto skip_file;
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	lfd = open(dev, O_RDWR | O_CLOEXEC);
	ffd = open(path, O_RDWR | O_CLOEXEC);
	if (lfd < 0 || ffd < 0)
		goto skip_fds;
	cfg.fd = (uint32_t)ffd;
	cfg.block_size = 512;
	cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
	if (ioctl(lfd, LOOP_CONFIGURE, &cfg))
		goto skip_fds;
	close(ffd);

	open_disk(&b, dev, kind, false, 0);
	assert_true(b.is_blockdev);
	assert_int_equal(b.size, 4 << 20);
	assert_int_equal(b.logical_block, 512);
	fill_pattern(buf, sizeof(buf), 5);
	assert_int_equal(rw(&b, BLK_OP_WRITE, 65536, buf, sizeof(buf)), 0);
	assert_int_equal(run(&b, BLK_OP_FLUSH, 0, 0, NULL, 0), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(rw(&b, BLK_OP_READ, 65536, buf, sizeof(buf)), 0);
	for (i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (uint8_t)(i * 7 + 5 + (i >> 9)));
	assert_int_equal(run(&b, BLK_OP_WRITE_ZEROES, 65536, 8192, NULL, 0), 0);
	assert_int_equal(rw(&b, BLK_OP_READ, 65536, buf, 8192), 0);
	for (i = 0; i < 8192; i++)
		assert_int_equal(buf[i], 0);
	before = blocks_of(path);
	if (b.can_discard) {
		assert_int_equal(
			run(&b, BLK_OP_DISCARD, 1 << 20, 2 << 20, NULL, 0), 0);
		assert_int_equal(run(&b, BLK_OP_FLUSH, 0, 0, NULL, 0), 0);
		assert_true(blocks_of(path) < before);
	}
	blk_close(&b);
	close(lfd); /* autoclear detaches the loop device */
	unlink(path);
	free(path);
	return;

skip_fds:
	if (lfd >= 0)
		close(lfd);
	if (ffd >= 0)
		close(ffd);
skip_file:
	unlink(path);
	free(path);
	skip();
}

#define BOTH(fn)                                           \
	cmocka_unit_test_prestate(fn, (void *)&kind_sync), \
		cmocka_unit_test_prestate(fn, (void *)&kind_uring)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(read_write),
		BOTH(many_iovecs),
		BOTH(nocache_and_sync),
		BOTH(discard_and_zeroes),
		BOTH(read_only),
		BOTH(bad_requests),
		BOTH(enospc),
		BOTH(block_device),
		cmocka_unit_test(uring_depth_1),
		cmocka_unit_test(uring_depth_128),
		cmocka_unit_test(uring_drain),
		cmocka_unit_test(uring_plug),
		cmocka_unit_test(auto_engine),
		cmocka_unit_test(no_uring_fallback),
		cmocka_unit_test(open_errors),
		cmocka_unit_test(sector_sizes),
		cmocka_unit_test(permission),
	};

	signal(SIGXFSZ, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
