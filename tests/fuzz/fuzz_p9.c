/*
 * libFuzzer target: 9P2000.L requests as a guest sends them. Each input is
 * a session on a small share: the harness answers Tversion and attaches
 * fid 0 to the root, then feeds the input's messages one by one, each
 * scattered over iovecs and answered into a reply area of varying size.
 * Any crash, hang, leak or sanitizer report is a bug; Rlerror is the usual
 * outcome.
 *
 * Input: byte 0 picks the mode (bit 0: a writable share on tmpfs, wiped
 * and rebuilt after the input; otherwise a read-only share) and byte 1 the
 * msize; then records of len[2] (little-endian), split[1], resp[1], and
 * len bytes of message. Build and run: make fuzz (clang).
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "p9/p9_codec.h"
#include "p9/p9_server.h"

static struct p9_server ro_srv, rw_srv;
static char ro_dir[64], rw_top[64], rw_dir[96];
static uint8_t *resp;

static void put_file(const char *dir, const char *name, const char *data)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		abort();
	if (write(fd, data, strlen(data)) < 0)
		abort();
	close(fd);
}

/* A little tree: files, a directory, symlinks in and out, a fifo, xattrs. */
static void populate(const char *dir)
{
	char path[256];

	chmod(dir, 0755);
	put_file(dir, "a", "hello");
	snprintf(path, sizeof(path), "%s/d", dir);
	mkdir(path, 0755);
	put_file(dir, "d/b", "world");
	snprintf(path, sizeof(path), "%s/up", dir);
	if (symlink("../..", path) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/root", dir);
	if (symlink("/", path) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/fifo", dir);
	mkfifo(path, 0644);
	snprintf(path, sizeof(path), "%s/a", dir);
	setxattr(path, "user.k", "v", 1, 0);
}

static int unlink_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	/* Keep the share itself: the server holds it open. */
	if (ftw->level > 0)
		remove(path);
	return 0;
}

static int open_up(const char *path, const struct stat *st, int flag,
		   struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D || flag == FTW_DNR || (st && S_ISDIR(st->st_mode)))
		chmod(path, 0700);
	return 0;
}

static void wipe(const char *dir)
{
	nftw(dir, open_up, 16, FTW_PHYS);
	nftw(dir, unlink_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void start(struct p9_server *s, const char *dir, bool ro)
{
	char err[256];

	if (p9_server_init(s, dir, ro, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
}

static void cleanup(void)
{
	p9_server_exit(&ro_srv);
	p9_server_exit(&rw_srv);
	wipe(ro_dir);
	rmdir(ro_dir);
	wipe(rw_top);
	rmdir(rw_dir);
	rmdir(rw_top);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	(void)argc;
	(void)argv;
	snprintf(ro_dir, sizeof(ro_dir), "/tmp/fuzzp9roXXXXXX");
	snprintf(rw_top, sizeof(rw_top), "%s/fuzzp9rwXXXXXX", shm);
	if (!mkdtemp(ro_dir) || !mkdtemp(rw_top))
		abort();
	populate(ro_dir);
	snprintf(rw_dir, sizeof(rw_dir), "%s/share", rw_top);
	if (mkdir(rw_dir, 0755) < 0)
		abort();
	populate(rw_dir);
	start(&ro_srv, ro_dir, true);
	start(&rw_srv, rw_dir, false);
	resp = malloc(P9_MSIZE_MAX);
	atexit(cleanup);
	return 0;
}

static void send(struct p9_server *s, const uint8_t *msg, size_t len,
		 unsigned int split, unsigned int resp_sel)
{
	static const size_t sizes[] = { 0, 10, 11, 12, 24, 64, 200, 4096 };
	struct iovec req[4], out[3];
	size_t cut[3], rlen, i, prev = 0;
	unsigned int n = 0;

	/* Up to four pieces, cut where split's bits say. */
	cut[0] = len ? (split & 7) % (len + 1) : 0;
	cut[1] = len ? ((split >> 3) * 13) % (len + 1) : 0;
	cut[2] = len;
	for (i = 0; i < 3; i++) {
		size_t c = cut[i] < prev ? prev : cut[i];

		req[n].iov_base = (void *)(msg + prev);
		req[n].iov_len = c - prev;
		n++;
		prev = c;
	}
	/* A reply area from tiny to the whole msize, in one to three parts. */
	rlen = (resp_sel & 0x80) ? P9_MSIZE_MAX : sizes[resp_sel & 7];
	if (resp_sel & 0x40 && rlen > 11) {
		out[0].iov_base = resp;
		out[0].iov_len = 11;
		out[1].iov_base = resp + 11;
		out[1].iov_len = 0;
		out[2].iov_base = resp + 11;
		out[2].iov_len = rlen - 11;
		p9_server_handle(s, req, n, out, 3);
	} else {
		out[0].iov_base = resp;
		out[0].iov_len = rlen;
		p9_server_handle(s, req, n, out, 1);
	}
}

/* Build and send a request for the harness itself. */
static void hello(struct p9_server *s, uint32_t msize)
{
	uint8_t buf[64];
	struct iovec iov = { buf, sizeof(buf) }, out = { resp, 4096 };
	struct p9_cur c;

	p9_cur_init(&c, &iov, 1, sizeof(buf));
	p9_reply_begin(&c, P9_TVERSION, P9_NOTAG);
	p9_put_u32(&c, msize);
	p9_put_str(&c, "9P2000.L", 8);
	iov.iov_len = p9_reply_end(&c);
	p9_server_handle(s, &iov, 1, &out, 1);
	iov.iov_len = sizeof(buf);
	p9_cur_init(&c, &iov, 1, sizeof(buf));
	p9_reply_begin(&c, P9_TATTACH, 1);
	p9_put_u32(&c, 0);
	p9_put_u32(&c, P9_NOFID);
	p9_put_str(&c, "", 0);
	p9_put_str(&c, "", 0);
	p9_put_u32(&c, 0);
	iov.iov_len = p9_reply_end(&c);
	p9_server_handle(s, &iov, 1, &out, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p9_server *s;
	bool rw;

	if (size < 2)
		return 0;
	rw = data[0] & 1;
	s = rw ? &rw_srv : &ro_srv;
	hello(s, 4096U + ((uint32_t)data[1] << 11));
	data += 2;
	size -= 2;
	while (size >= 4) {
		size_t len = data[0] | (size_t)data[1] << 8;
		unsigned int split = data[2], sel = data[3];

		data += 4;
		size -= 4;
		if (len > size)
			len = size;
		send(s, data, len, split, sel);
		data += len;
		size -= len;
	}
	p9_server_reset(s);
	if (rw) {
		wipe(rw_dir);
		populate(rw_dir);
	}
	return 0;
}
