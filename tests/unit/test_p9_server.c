/*
 * The 9P server driven by a test client (p9_client.h) against a temporary
 * share: every operation with its effect checked on the host, escapes out
 * of the share refused, a read-only share refusing every change, and bad
 * messages and fids answered with Rlerror.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "p9/p9_fid.h"
#include "p9_client.h"

#define ROOT 0
#define NOFID P9_NOFID

struct fixture {
	struct p9c c;
	char top[64]; /* temp dir holding share/ and outside/ */
	char share[96];
};

static char *hpath(struct fixture *f, const char *rel)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->share, rel);
	return buf[i];
}

static void write_host(const char *path, const char *data)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(data, fp);
	fclose(fp);
}

static char *read_host(const char *path)
{
	static char buf[4096];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static int start(struct fixture *f, bool ro, uint32_t msize)
{
	char err[256];
	struct p9c *c = &f->c;

	assert_int_equal(p9_server_init(&c->s, f->share, ro, err, sizeof(err)),
			 0);
	assert_int_equal(p9c_call(c, P9_TVERSION, "ds", msize, "9P2000.L"), 0);
	assert_int_equal(p9_get_u32(&c->rc), msize);
	assert_int_equal(
		p9c_call(c, P9_TATTACH, "ddssd", ROOT, NOFID, "root", "", 0),
		0);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[256];

	umask(022);
	strcpy(f->top, "/tmp/p9testXXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(f->share, sizeof(f->share), "%s/share", f->top);
	assert_int_equal(mkdir(f->share, 0755), 0);
	snprintf(path, sizeof(path), "%s/outside", f->top);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/outside/secret", f->top);
	write_host(path, "OUTSIDE");
	assert_int_equal(mkdir(hpath(f, "dir"), 0755), 0);
	assert_int_equal(mkdir(hpath(f, "dir/sub"), 0755), 0);
	write_host(hpath(f, "dir/file"), "hello world");
	write_host(hpath(f, "top.txt"), "top");
	p9c_alloc(&f->c);
	*state = f;
	return start(f, false, 8192);
}

static int setup_ro(void **state)
{
	struct fixture *f;

	setup(state);
	f = *state;
	p9_server_exit(&f->c.s);
	return start(f, true, 8192);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	p9_server_exit(&f->c.s);
	p9c_free(&f->c);
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s; rm -rf %s", f->top,
		 f->top);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Walk from @fid to @newfid along @path ('/'-separated); returns nwqid or -ecode. */
static int walk(struct p9c *c, uint32_t fid, uint32_t newfid, const char *path,
		struct p9_qid *last)
{
	const char *names[P9_MAXWELEM + 2];
	char buf[1024];
	int n = 0, ret, i;
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = strtok(buf, "/"); p; p = strtok(NULL, "/"))
		names[n++] = p;
	ret = p9c_call(c, P9_TWALK, "ddW", fid, newfid, n, names);
	if (ret)
		return ret;
	ret = p9_get_u16(&c->rc);
	for (i = 0; i < ret; i++) {
		struct p9_qid q;

		q.type = p9_get_u8(&c->rc);
		q.version = p9_get_u32(&c->rc);
		q.path = p9_get_u64(&c->rc);
		if (last)
			*last = q;
	}
	return ret;
}

static int lopen(struct p9c *c, uint32_t fid, uint32_t flags)
{
	return p9c_call(c, P9_TLOPEN, "dd", fid, flags);
}

static int clunk(struct p9c *c, uint32_t fid)
{
	return p9c_call(c, P9_TCLUNK, "d", fid);
}

static int getattr(struct p9c *c, uint32_t fid, struct stat *st,
		   struct p9_qid *q)
{
	int ret =
		p9c_call(c, P9_TGETATTR, "dq", fid, (uint64_t)P9_GETATTR_BASIC);

	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	assert_int_equal(p9_get_u64(&c->rc), P9_GETATTR_BASIC);
	q->type = p9_get_u8(&c->rc);
	q->version = p9_get_u32(&c->rc);
	q->path = p9_get_u64(&c->rc);
	st->st_mode = p9_get_u32(&c->rc);
	st->st_uid = p9_get_u32(&c->rc);
	st->st_gid = p9_get_u32(&c->rc);
	st->st_nlink = p9_get_u64(&c->rc);
	st->st_rdev = p9_get_u64(&c->rc);
	st->st_size = (off_t)p9_get_u64(&c->rc);
	st->st_blksize = (blksize_t)p9_get_u64(&c->rc);
	st->st_blocks = (blkcnt_t)p9_get_u64(&c->rc);
	st->st_atim.tv_sec = (time_t)p9_get_u64(&c->rc);
	st->st_atim.tv_nsec = (long)p9_get_u64(&c->rc);
	st->st_mtim.tv_sec = (time_t)p9_get_u64(&c->rc);
	st->st_mtim.tv_nsec = (long)p9_get_u64(&c->rc);
	st->st_ctim.tv_sec = (time_t)p9_get_u64(&c->rc);
	st->st_ctim.tv_nsec = (long)p9_get_u64(&c->rc);
	st->st_ino = q->path;
	return 0;
}

/* Tread of up to @count bytes into @buf; returns bytes or -ecode. */
static long readf(struct p9c *c, uint32_t fid, uint64_t off, uint32_t count,
		  void *buf)
{
	int ret = p9c_call(c, P9_TREAD, "dqd", fid, off, count);
	uint32_t n;

	if (ret)
		return ret;
	n = p9_get_u32(&c->rc);
	p9_get_bytes(&c->rc, buf, n);
	assert_false(c->rc.overflow);
	return n;
}

static long writef(struct p9c *c, uint32_t fid, uint64_t off, const void *buf,
		   size_t len)
{
	int ret = p9c_call(c, P9_TWRITE, "dqdD", fid, off, (uint32_t)len, len,
			   buf);

	if (ret)
		return ret;
	return p9_get_u32(&c->rc);
}

static void session(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	char v[64];

	/* msize is clamped to 512 KiB; an unknown version gets "unknown". */
	assert_int_equal(p9c_call(c, P9_TVERSION, "ds", 1U << 20, "9P2000.L"),
			 0);
	assert_int_equal(p9_get_u32(&c->rc), P9_MSIZE_MAX);
	/* Tversion dropped every fid. */
	assert_int_equal(walk(c, ROOT, 1, "", NULL), -EBADF);
	assert_int_equal(p9c_call(c, P9_TVERSION, "ds", 8192, "9P2000.u"), 0);
	assert_int_equal(p9_get_u32(&c->rc), 8192);
	assert_int_equal(p9_get_str(&c->rc, v, sizeof(v) - 1), 0);
	assert_string_equal(v, "unknown");
	/* Without a 9P2000.L session nothing else is served. */
	assert_int_equal(
		p9c_call(c, P9_TATTACH, "ddssd", ROOT, NOFID, "", "", 0),
		-EPROTO);
	assert_int_equal(p9c_call(c, P9_TVERSION, "ds", 1024, "9P2000.L"),
			 -EINVAL);
	assert_int_equal(p9c_call(c, P9_TVERSION, "ds", 8192, "9P2000.L"), 0);
	assert_int_equal(p9c_call(c, P9_TAUTH, "dssd", 5, "u", "", 0),
			 -EOPNOTSUPP);
	assert_int_equal(p9c_call(c, P9_TATTACH, "ddssd", ROOT, 5, "", "", 0),
			 -EBADF);
	assert_int_equal(
		p9c_call(c, P9_TATTACH, "ddssd", ROOT, NOFID, "", "", 0), 0);
	/* A fid in use is not given again. */
	assert_int_equal(
		p9c_call(c, P9_TATTACH, "ddssd", ROOT, NOFID, "", "", 0),
		-EEXIST);
	assert_int_equal(
		p9c_call(c, P9_TATTACH, "ddssd", NOFID, NOFID, "", "", 0),
		-EBADF);
	assert_int_equal(p9c_call(c, P9_TFLUSH, "w", 7), 0);
	assert_int_equal(c->rtype, P9_RFLUSH);
}

static void walks(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	struct p9_qid q;
	struct stat st;
	const char *many[17];
	int i;

	assert_int_equal(walk(c, ROOT, 1, "dir/file", &q), 2);
	assert_int_equal(q.type, P9_QTFILE);
	assert_int_equal(stat(hpath(f, "dir/file"), &st), 0);
	assert_int_equal(q.path, st.st_ino);
	assert_int_equal(walk(c, ROOT, 2, "dir/sub", &q), 2);
	assert_int_equal(q.type, P9_QTDIR);
	/* Partial: qids up to the failing step, no new fid. */
	assert_int_equal(walk(c, ROOT, 3, "dir/nope/x", NULL), 1);
	assert_int_equal(clunk(c, 3), -EBADF);
	assert_int_equal(walk(c, ROOT, 3, "nope", NULL), -ENOENT);
	/* Through a file. */
	assert_int_equal(walk(c, 1, 3, "x", NULL), -ENOTDIR);
	/* Clone, and walking a fid onto itself. */
	assert_int_equal(walk(c, 2, 3, "", NULL), 0);
	assert_int_equal(walk(c, 3, 3, "..", &q), 1);
	assert_int_equal(stat(hpath(f, "dir"), &st), 0);
	assert_int_equal(q.path, st.st_ino);
	/* newfid in use, unknown fid, too many names. */
	assert_int_equal(walk(c, ROOT, 1, "dir", NULL), -EEXIST);
	assert_int_equal(walk(c, 99, 100, "dir", NULL), -EBADF);
	for (i = 0; i < 17; i++)
		many[i] = "dir";
	assert_int_equal(p9c_call(c, P9_TWALK, "ddW", ROOT, 5, 17, many),
			 -EINVAL);
	/* 16 is fine: "." steps stay put. */
	for (i = 0; i < 16; i++)
		many[i] = ".";
	assert_int_equal(p9c_call(c, P9_TWALK, "ddW", ROOT, 5, 16, many), 0);
	assert_int_equal(p9_get_u16(&c->rc), 16);
	/* A name with a slash is not a path. */
	assert_int_equal(walk(c, ROOT, 6, "", NULL), 0);
	{
		const char *bad[] = { "dir/file" };

		assert_int_equal(p9c_call(c, P9_TWALK, "ddW", ROOT, 7, 1, bad),
				 -EINVAL);
	}
}

static void escapes(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	struct p9_qid root_q, q;
	struct stat st;
	char path[256], buf[64];

	assert_int_equal(walk(c, ROOT, 1, "", &root_q), 0);
	assert_int_equal(stat(f->share, &st), 0);
	/* ".." at the root stays at the root, however many. */
	assert_int_equal(walk(c, ROOT, 2, "../../..", &q), 3);
	assert_int_equal(q.path, st.st_ino);
	assert_int_equal(walk(c, ROOT, 3, "../outside/secret", NULL), 1);
	assert_int_equal(walk(c, 2, 3, "outside", NULL), -ENOENT);
	assert_int_equal(walk(c, ROOT, 3, "dir/../../outside", NULL), 3);
	assert_int_equal(clunk(c, 3), -EBADF);

	/* The root's ".." entry names the root itself. */
	assert_int_equal(lopen(c, 1, P9_DOTL_RDONLY), 0);
	assert_int_equal(p9c_call(c, P9_TREADDIR, "dqd", 1, (uint64_t)0, 4096),
			 0);
	{
		uint32_t len = p9_get_u32(&c->rc);
		size_t end = c->rc.pos + len;
		bool seen = false;

		while (c->rc.pos < end) {
			uint64_t ino;

			p9_cur_skip(&c->rc, 5);
			ino = p9_get_u64(&c->rc);
			p9_cur_skip(&c->rc, 9);
			assert_int_equal(p9_get_str(&c->rc, buf, 63), 0);
			if (!strcmp(buf, "..")) {
				assert_int_equal(ino, st.st_ino);
				seen = true;
			}
		}
		assert_true(seen);
	}

	/* Symlinks to / and out of the share are never walked through. */
	assert_int_equal(symlink("/", hpath(f, "toroot")), 0);
	assert_int_equal(symlink("../outside", hpath(f, "up")), 0);
	snprintf(path, sizeof(path), "%s/outside", f->top);
	assert_int_equal(symlink(path, hpath(f, "abs")), 0);
	assert_int_equal(walk(c, ROOT, 3, "toroot", &q), 1);
	assert_int_equal(q.type, P9_QTSYMLINK);
	assert_int_equal(lopen(c, 3, P9_DOTL_RDONLY), -ELOOP);
	assert_int_equal(walk(c, ROOT, 4, "toroot/etc/passwd", NULL), 1);
	assert_int_equal(clunk(c, 4), -EBADF);
	assert_int_equal(walk(c, ROOT, 4, "up/secret", NULL), 1);
	assert_int_equal(walk(c, ROOT, 4, "abs/secret", NULL), 1);
	assert_int_equal(walk(c, 3, 4, "etc", NULL), -ENOTDIR);
	assert_int_equal(walk(c, 3, 4, "..", NULL), -ENOTDIR);

	/* A symlink swapped in between two walks leads nowhere. */
	assert_int_equal(mkdir(hpath(f, "swap"), 0755), 0);
	assert_int_equal(walk(c, ROOT, 5, "swap", NULL), 1);
	assert_int_equal(rename(hpath(f, "swap"), hpath(f, "swap.old")), 0);
	assert_int_equal(symlink(path, hpath(f, "swap")), 0);
	/* The fid is still the directory it was (now swap.old, inside). */
	assert_int_equal(walk(c, 5, 6, "secret", NULL), -ENOENT);
	assert_int_equal(walk(c, ROOT, 6, "swap/secret", NULL), 1);
	/* Creating through the fid lands inside the share. */
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 5, "new",
				  P9_DOTL_WRONLY, 0644, 0),
			 0);
	assert_int_equal(access(hpath(f, "swap.old/new"), F_OK), 0);
	snprintf(path, sizeof(path), "%s/outside/new", f->top);
	assert_int_equal(access(path, F_OK), -1);
	/* Tremove of a fid whose name now holds something else: refused. */
	assert_int_equal(walk(c, ROOT, 7, "top.txt", NULL), 1);
	assert_int_equal(rename(hpath(f, "top.txt"), hpath(f, "moved.txt")), 0);
	write_host(hpath(f, "top.txt"), "other");
	assert_int_equal(p9c_call(c, P9_TREMOVE, "d", 7), -ESTALE);
	assert_int_equal(access(hpath(f, "top.txt"), F_OK), 0);
	assert_int_equal(access(hpath(f, "moved.txt"), F_OK), 0);
	/* An absolute target made by the guest is stored as given, not followed. */
	assert_int_equal(p9c_call(c, P9_TSYMLINK, "dssd", ROOT, "guestabs",
				  "/etc/passwd", 0),
			 0);
	assert_int_equal(walk(c, ROOT, 9, "guestabs", &q), 1);
	assert_int_equal(q.type, P9_QTSYMLINK);
	assert_int_equal(lopen(c, 9, P9_DOTL_RDONLY), -ELOOP);
	assert_int_equal(
		p9c_call(c, P9_TGETATTR, "dq", 9, (uint64_t)P9_GETATTR_BASIC),
		0);
	p9_cur_skip(&c->rc, 8 + P9_QID_SIZE);
	assert_true(S_ISLNK(p9_get_u32(&c->rc)));
	assert_int_equal(p9c_call(c, P9_TXATTRWALK, "dds", 9, 10, "user.x"),
			 -EOPNOTSUPP);
	assert_int_equal(walk(c, 9, 10, "passwd", NULL), -ENOTDIR);
	/* Readlink gives the target as stored; the server never follows it. */
	assert_int_equal(p9c_call(c, P9_TREADLINK, "d", 3), 0);
	assert_int_equal(p9_get_str(&c->rc, buf, sizeof(buf) - 1), 0);
	assert_string_equal(buf, "/");
	/*
	 * Creating through a symlink does not follow it: EEXIST with EXCL,
	 * ELOOP opening the existing name without.
	 */
	snprintf(path, sizeof(path), "%s/outside/created", f->top);
	assert_int_equal(symlink(path, hpath(f, "dangling")), 0);
	assert_int_equal(walk(c, ROOT, 8, "", NULL), 0);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 8, "dangling",
				  P9_DOTL_WRONLY | P9_DOTL_CREATE, 0644, 0),
			 -ELOOP);
	assert_int_equal(
		p9c_call(c, P9_TLCREATE, "dsddd", 8, "dangling",
			 P9_DOTL_WRONLY | P9_DOTL_CREATE | P9_DOTL_EXCL, 0644,
			 0),
		-EEXIST);
	assert_int_equal(access(path, F_OK), -1);
}

static void create_read_write(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	struct stat st;
	char buf[64];

	assert_int_equal(walk(c, ROOT, 1, "dir", NULL), 1);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 1, "new.txt",
				  P9_DOTL_RDWR | P9_DOTL_CREATE, 0664, 0),
			 0);
	assert_int_equal(p9_get_u8(&c->rc), P9_QTFILE);
	assert_int_equal(writef(c, 1, 0, "hello", 5), 5);
	assert_int_equal(writef(c, 1, 5, " there", 6), 6);
	assert_int_equal(readf(c, 1, 0, sizeof(buf), buf), 11);
	assert_memory_equal(buf, "hello there", 11);
	assert_int_equal(readf(c, 1, 6, 3, buf), 3);
	assert_memory_equal(buf, "the", 3);
	assert_int_equal(readf(c, 1, 100, 10, buf), 0);
	assert_int_equal(p9c_call(c, P9_TFSYNC, "dd", 1, 0), 0);
	assert_int_equal(p9c_call(c, P9_TFSYNC, "dd", 1, 1), 0);
	assert_int_equal(p9c_call(c, P9_TFSYNC, "d", 1), 0);
	assert_string_equal(read_host(hpath(f, "dir/new.txt")), "hello there");
	/* Exactly the guest's mode, not masked by the host's umask. */
	assert_int_equal(stat(hpath(f, "dir/new.txt"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0664);
	assert_int_equal(clunk(c, 1), 0);
	assert_int_equal(clunk(c, 1), -EBADF);

	/* An existing name: EEXIST with EXCL, opened without. */
	assert_int_equal(walk(c, ROOT, 1, "dir", NULL), 1);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 1, "new.txt",
				  P9_DOTL_RDWR | P9_DOTL_CREATE | P9_DOTL_EXCL,
				  0600, 0),
			 -EEXIST);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 1, "new.txt",
				  P9_DOTL_RDONLY, 0600, 0),
			 0);
	assert_int_equal(readf(c, 1, 0, 5, buf), 5);
	/* Opened read-only: writes fail; opened twice: refused. */
	assert_int_equal(writef(c, 1, 0, "x", 1), -EBADF);
	assert_int_equal(lopen(c, 1, P9_DOTL_RDONLY), -EBUSY);
	assert_int_equal(clunk(c, 1), 0);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", ROOT, "..",
				  P9_DOTL_RDWR, 0600, 0),
			 -EINVAL);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", ROOT, "a/b",
				  P9_DOTL_RDWR, 0600, 0),
			 -EINVAL);

	/* Tlopen with TRUNC, APPEND; reads of an unopened fid. */
	assert_int_equal(walk(c, ROOT, 2, "dir/file", NULL), 2);
	assert_int_equal(readf(c, 2, 0, 5, buf), -EBADF);
	assert_int_equal(lopen(c, 2, P9_DOTL_WRONLY | P9_DOTL_TRUNC), 0);
	assert_int_equal(stat(hpath(f, "dir/file"), &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(writef(c, 2, 0, "abc", 3), 3);
	assert_int_equal(readf(c, 2, 0, 5, buf), -EBADF);
	assert_int_equal(clunk(c, 2), 0);
	assert_int_equal(walk(c, ROOT, 2, "dir/file", NULL), 2);
	assert_int_equal(lopen(c, 2, P9_DOTL_WRONLY | P9_DOTL_APPEND), 0);
	assert_int_equal(writef(c, 2, 0, "def", 3), 3);
	assert_int_equal(clunk(c, 2), 0);
	assert_string_equal(read_host(hpath(f, "dir/file")), "abcdef");
	/* A directory opens read-only only. */
	assert_int_equal(walk(c, ROOT, 3, "dir", NULL), 1);
	assert_int_equal(lopen(c, 3, P9_DOTL_WRONLY), -EISDIR);
	assert_int_equal(lopen(c, 3, P9_DOTL_RDONLY), 0);
	assert_int_equal(readf(c, 3, 0, 5, buf), -EISDIR);
}

static void large_io(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	const size_t chunk = P9_MSIZE_MAX - 64, total = 4 * chunk + 1000;
	uint8_t *data = malloc(total), *back = calloc(1, total);
	struct iovec resp[200], req;
	size_t off, i;
	struct stat st;
	int ret;

	for (i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 12));
	assert_int_equal(
		p9c_call(c, P9_TVERSION, "ds", P9_MSIZE_MAX, "9P2000.L"), 0);
	assert_int_equal(p9_get_u32(&c->rc), P9_MSIZE_MAX);
	assert_int_equal(
		p9c_call(c, P9_TATTACH, "ddssd", ROOT, NOFID, "", "", 0), 0);
	assert_int_equal(walk(c, ROOT, 1, "", NULL), 0);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 1, "big",
				  P9_DOTL_RDWR | P9_DOTL_CREATE, 0644, 0),
			 0);
	for (off = 0; off < total; off += chunk) {
		size_t n = total - off < chunk ? total - off : chunk;

		assert_int_equal(writef(c, 1, off, data + off, n), n);
	}
	assert_int_equal(stat(hpath(f, "big"), &st), 0);
	assert_int_equal(st.st_size, total);
	/* A count over msize is refused; one at msize is cut to fit. */
	assert_int_equal(
		p9c_call(c, P9_TREAD, "dqd", 1, (uint64_t)0, P9_MSIZE_MAX + 1),
		-EINVAL);
	assert_int_equal(
		p9c_call(c, P9_TREAD, "dqd", 1, (uint64_t)0, P9_MSIZE_MAX), 0);
	assert_int_equal(p9_get_u32(&c->rc), P9_MSIZE_MAX - P9_RLERROR_SIZE);
	/*
	 * Reads into a scattered reply as Linux's zero-copy path lays it out:
	 * an 11-byte header, then pages.
	 */
	for (off = 0; off < total;) {
		uint32_t n;

		resp[0].iov_base = c->resp;
		resp[0].iov_len = P9_RLERROR_SIZE;
		for (i = 1; i < 200; i++) {
			resp[i].iov_base = c->resp + 64 + (i - 1) * 4096;
			resp[i].iov_len = 4096;
		}
		p9c_make(c, P9_TREAD, "dqd", 1, (uint64_t)off,
			 (uint32_t)(P9_MSIZE_MAX - 24));
		req.iov_base = c->req;
		req.iov_len = c->reqlen;
		ret = p9c_send_iov(c, &req, 1, resp, 200);
		assert_int_equal(ret, 0);
		n = p9_get_u32(&c->rc);
		assert_true(n > 0 && n <= 199 * 4096);
		p9_get_bytes(&c->rc, back + off, n);
		assert_false(c->rc.overflow);
		off += n;
	}
	assert_memory_equal(back, data, total);
	assert_int_equal(clunk(c, 1), 0);
	free(data);
	free(back);
}

static void attributes(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	struct stat st, hst;
	struct p9_qid q;

	assert_int_equal(walk(c, ROOT, 1, "dir/file", NULL), 2);
	assert_int_equal(getattr(c, 1, &st, &q), 0);
	assert_int_equal(stat(hpath(f, "dir/file"), &hst), 0);
	assert_int_equal(st.st_mode, hst.st_mode);
	assert_int_equal(st.st_size, hst.st_size);
	assert_int_equal(st.st_ino, hst.st_ino);
	assert_int_equal(st.st_nlink, hst.st_nlink);
	assert_int_equal(st.st_uid, hst.st_uid);
	assert_int_equal(st.st_mtim.tv_sec, hst.st_mtim.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, hst.st_mtim.tv_nsec);
	assert_int_equal(q.type, P9_QTFILE);

	/* chmod */
	assert_int_equal(p9c_call(c, P9_TSETATTR, "dddddqqqqq", 1,
				  P9_SETATTR_MODE, 0600, 0, 0, (uint64_t)0,
				  (uint64_t)0, (uint64_t)0, (uint64_t)0,
				  (uint64_t)0),
			 0);
	assert_int_equal(stat(hpath(f, "dir/file"), &hst), 0);
	assert_int_equal(hst.st_mode & 07777, 0600);
	/* truncate down and up */
	assert_int_equal(p9c_call(c, P9_TSETATTR, "dddddqqqqq", 1,
				  P9_SETATTR_SIZE, 0, 0, 0, (uint64_t)5,
				  (uint64_t)0, (uint64_t)0, (uint64_t)0,
				  (uint64_t)0),
			 0);
	assert_string_equal(read_host(hpath(f, "dir/file")), "hello");
	assert_int_equal(p9c_call(c, P9_TSETATTR, "dddddqqqqq", 1,
				  P9_SETATTR_SIZE, 0, 0, 0, (uint64_t)100000,
				  (uint64_t)0, (uint64_t)0, (uint64_t)0,
				  (uint64_t)0),
			 0);
	assert_int_equal(stat(hpath(f, "dir/file"), &hst), 0);
	assert_int_equal(hst.st_size, 100000);
	/* times: given values, then now */
	assert_int_equal(
		p9c_call(c, P9_TSETATTR, "dddddqqqqq", 1,
			 P9_SETATTR_ATIME | P9_SETATTR_ATIME_SET |
				 P9_SETATTR_MTIME | P9_SETATTR_MTIME_SET,
			 0, 0, 0, (uint64_t)0, (uint64_t)1000000, (uint64_t)5,
			 (uint64_t)2000000, (uint64_t)123456789),
		0);
	assert_int_equal(stat(hpath(f, "dir/file"), &hst), 0);
	assert_int_equal(hst.st_atim.tv_sec, 1000000);
	assert_int_equal(hst.st_atim.tv_nsec, 5);
	assert_int_equal(hst.st_mtim.tv_sec, 2000000);
	assert_int_equal(hst.st_mtim.tv_nsec, 123456789);
	assert_int_equal(getattr(c, 1, &st, &q), 0);
	assert_int_equal(st.st_mtim.tv_sec, 2000000);
	assert_int_equal(st.st_atim.tv_nsec, 5);
	assert_int_equal(p9c_call(c, P9_TSETATTR, "dddddqqqqq", 1,
				  P9_SETATTR_MTIME, 0, 0, 0, (uint64_t)0,
				  (uint64_t)0, (uint64_t)0, (uint64_t)0,
				  (uint64_t)0),
			 0);
	assert_int_equal(stat(hpath(f, "dir/file"), &hst), 0);
	assert_true(hst.st_mtim.tv_sec > time(NULL) - 100);
	assert_int_equal(hst.st_atim.tv_sec, 1000000);
	/* nsec out of range */
	assert_int_equal(p9c_call(c, P9_TSETATTR, "dddddqqqqq", 1,
				  P9_SETATTR_MTIME | P9_SETATTR_MTIME_SET, 0, 0,
				  0, (uint64_t)0, (uint64_t)0, (uint64_t)0,
				  (uint64_t)1, (uint64_t)1000000000),
			 -EINVAL);
	/* chown: done where the host allows it, EPERM otherwise */
	int ret = p9c_call(c, P9_TSETATTR, "dddddqqqqq", 1,
			   P9_SETATTR_UID | P9_SETATTR_GID, 0, 1234, 5678,
			   (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0,
			   (uint64_t)0);
	assert_int_equal(stat(hpath(f, "dir/file"), &hst), 0);
	if (geteuid() == 0) {
		assert_int_equal(ret, 0);
		assert_int_equal(hst.st_uid, 1234);
		assert_int_equal(hst.st_gid, 5678);
	} else {
		assert_int_equal(ret, -EPERM);
	}
	/* Directory: size refused, mode fine. */
	assert_int_equal(walk(c, ROOT, 2, "dir", NULL), 1);
	assert_int_equal(p9c_call(c, P9_TSETATTR, "dddddqqqqq", 2,
				  P9_SETATTR_SIZE, 0, 0, 0, (uint64_t)0,
				  (uint64_t)0, (uint64_t)0, (uint64_t)0,
				  (uint64_t)0),
			 -EISDIR);
	assert_int_equal(getattr(c, 2, &st, &q), 0);
	assert_int_equal(q.type, P9_QTDIR);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(getattr(c, 77, &st, &q), -EBADF);
}

/* All names in a directory by Treaddir with @count-byte replies. */
static int list_dir(struct p9c *c, uint32_t fid, uint32_t count,
		    char names[][64], int max, uint64_t start)
{
	uint64_t off = start;
	int n = 0;

	for (;;) {
		uint32_t len;
		size_t end;

		assert_int_equal(
			p9c_call(c, P9_TREADDIR, "dqd", fid, off, count), 0);
		len = p9_get_u32(&c->rc);
		assert_true(len <= count);
		if (!len)
			break;
		end = c->rc.pos + len;
		while (c->rc.pos < end) {
			p9_cur_skip(&c->rc, P9_QID_SIZE);
			off = p9_get_u64(&c->rc);
			(void)p9_get_u8(&c->rc);
			assert_true(n < max);
			assert_int_equal(p9_get_str(&c->rc, names[n], 63), 0);
			n++;
		}
		assert_false(c->rc.overflow);
	}
	return n;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void readdir_listing(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	static char names[400][64], again[400][64], host[400][64];
	char name[128];
	int i, n, m, h = 0;
	struct dirent *de;
	DIR *d;

	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name),
			 "dir/entry-with-a-longish-name-%03d", i);
		write_host(hpath(f, name), "x");
	}
	assert_int_equal(walk(c, ROOT, 1, "dir", NULL), 1);
	assert_int_equal(p9c_call(c, P9_TREADDIR, "dqd", 1, (uint64_t)0, 4096),
			 -EBADF);
	assert_int_equal(lopen(c, 1, P9_DOTL_RDONLY | P9_DOTL_DIRECTORY), 0);
	n = list_dir(c, 1, 300, names, 400, 0);
	d = opendir(hpath(f, "dir"));
	while ((de = readdir(d)))
		memcpy(host[h++], de->d_name, strnlen(de->d_name, 63) + 1);
	closedir(d);
	assert_int_equal(n, 304); /* . .. file sub + 300 */
	assert_int_equal(n, h);
	qsort(names, (size_t)n, 64, cmp_names);
	qsort(host, (size_t)h, 64, cmp_names);
	for (i = 0; i < n; i++)
		assert_string_equal(names[i], host[i]);
	/* Big replies give the same listing; resuming mid-way is stable. */
	m = list_dir(c, 1, 8000, again, 400, 0);
	assert_int_equal(m, n);
	{
		uint64_t mid;
		uint32_t len;

		assert_int_equal(
			p9c_call(c, P9_TREADDIR, "dqd", 1, (uint64_t)0, 200),
			0);
		len = p9_get_u32(&c->rc);
		assert_true(len > 0);
		p9_cur_skip(&c->rc, P9_QID_SIZE);
		mid = p9_get_u64(&c->rc);
		m = list_dir(c, 1, 1000, again, 400, mid);
		assert_int_equal(m, n - 1);
	}
	/* Room for no entry at all is an error, not the end. */
	assert_int_equal(p9c_call(c, P9_TREADDIR, "dqd", 1, (uint64_t)0, 10),
			 -EINVAL);
}

static void dir_ops(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	struct stat st, st2;
	struct statvfs sv;
	char buf[64];
	struct p9_qid q;

	/* mkdir with an exact mode */
	assert_int_equal(
		p9c_call(c, P9_TMKDIR, "dsdd", ROOT, "newdir", 0775, 0), 0);
	assert_int_equal(p9_get_u8(&c->rc), P9_QTDIR);
	assert_int_equal(stat(hpath(f, "newdir"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0775);
	assert_int_equal(
		p9c_call(c, P9_TMKDIR, "dsdd", ROOT, "newdir", 0775, 0),
		-EEXIST);
	/* symlink + readlink */
	assert_int_equal(
		p9c_call(c, P9_TSYMLINK, "dssd", ROOT, "ln", "dir/file", 0), 0);
	assert_int_equal(p9_get_u8(&c->rc), P9_QTSYMLINK);
	assert_int_equal(readlink(hpath(f, "ln"), buf, sizeof(buf)), 8);
	assert_int_equal(walk(c, ROOT, 1, "ln", NULL), 1);
	assert_int_equal(p9c_call(c, P9_TREADLINK, "d", 1), 0);
	assert_int_equal(p9_get_str(&c->rc, buf, 63), 0);
	assert_string_equal(buf, "dir/file");
	assert_int_equal(walk(c, ROOT, 2, "dir", NULL), 1);
	assert_int_equal(p9c_call(c, P9_TREADLINK, "d", 2), -EINVAL);
	/* hard link */
	assert_int_equal(walk(c, ROOT, 3, "dir/file", NULL), 2);
	assert_int_equal(p9c_call(c, P9_TLINK, "dds", ROOT, 3, "hard"), 0);
	assert_int_equal(stat(hpath(f, "hard"), &st), 0);
	assert_int_equal(stat(hpath(f, "dir/file"), &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(p9c_call(c, P9_TLINK, "dds", ROOT, 2, "dirlink"),
			 -EPERM);
	/* mknod: regular and fifo; devices refused */
	assert_int_equal(p9c_call(c, P9_TMKNOD, "dsdddd", ROOT, "fifo",
				  S_IFIFO | 0640, 0, 0, 0),
			 0);
	assert_int_equal(lstat(hpath(f, "fifo"), &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(p9c_call(c, P9_TMKNOD, "dsdddd", ROOT, "reg",
				  S_IFREG | 0600, 0, 0, 0),
			 0);
	assert_int_equal(lstat(hpath(f, "reg"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(p9c_call(c, P9_TMKNOD, "dsdddd", ROOT, "null",
				  S_IFCHR | 0666, 1, 3, 0),
			 -EPERM);
	assert_int_equal(access(hpath(f, "null"), F_OK), -1);
	/* Tlcreate of an existing fifo's name does not open (and block on) it */
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 2, "../fifo",
				  P9_DOTL_RDONLY | P9_DOTL_CREATE, 0644, 0),
			 -EINVAL);
	assert_int_equal(walk(c, ROOT, 8, "", NULL), 0);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 8, "fifo",
				  P9_DOTL_RDONLY | P9_DOTL_CREATE, 0644, 0),
			 -EEXIST);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 8, "dir",
				  P9_DOTL_RDONLY | P9_DOTL_CREATE, 0644, 0),
			 -EISDIR);
	assert_int_equal(clunk(c, 8), 0);
	/* a fifo opens without waiting for a writer */
	assert_int_equal(walk(c, ROOT, 4, "fifo", NULL), 1);
	assert_int_equal(lopen(c, 4, P9_DOTL_RDONLY), 0);
	assert_int_equal(readf(c, 4, 0, 10, buf), 0);
	assert_int_equal(clunk(c, 4), 0);
	/* renameat across directories, and the fids follow */
	assert_int_equal(walk(c, ROOT, 4, "dir/sub", NULL), 2);
	assert_int_equal(walk(c, ROOT, 5, "newdir", NULL), 1);
	assert_int_equal(
		p9c_call(c, P9_TRENAMEAT, "dsds", 2, "sub", 5, "moved"), 0);
	assert_int_equal(access(hpath(f, "newdir/moved"), F_OK), 0);
	assert_int_equal(access(hpath(f, "dir/sub"), F_OK), -1);
	assert_int_equal(p9c_call(c, P9_TREMOVE, "d", 4), 0);
	assert_int_equal(access(hpath(f, "newdir/moved"), F_OK), -1);
	/* Trename of a fid */
	assert_int_equal(walk(c, ROOT, 6, "reg", NULL), 1);
	assert_int_equal(p9c_call(c, P9_TRENAME, "dds", 6, 5, "reg2"), 0);
	assert_int_equal(access(hpath(f, "newdir/reg2"), F_OK), 0);
	assert_int_equal(p9c_call(c, P9_TRENAME, "dds", ROOT, 5, "x"), -EBUSY);
	assert_int_equal(p9c_call(c, P9_TREMOVE, "d", 6), 0);
	assert_int_equal(access(hpath(f, "newdir/reg2"), F_OK), -1);
	assert_int_equal(clunk(c, 6), -EBADF);
	/* unlinkat: file, non-empty dir, empty dir */
	assert_int_equal(p9c_call(c, P9_TUNLINKAT, "dsd", ROOT, "hard", 0), 0);
	assert_int_equal(access(hpath(f, "hard"), F_OK), -1);
	assert_int_equal(p9c_call(c, P9_TUNLINKAT, "dsd", ROOT, "dir",
				  P9_DOTL_AT_REMOVEDIR),
			 -ENOTEMPTY);
	assert_int_equal(p9c_call(c, P9_TUNLINKAT, "dsd", ROOT, "newdir", 0),
			 -EISDIR);
	assert_int_equal(p9c_call(c, P9_TUNLINKAT, "dsd", ROOT, "newdir",
				  P9_DOTL_AT_REMOVEDIR),
			 0);
	assert_int_equal(access(hpath(f, "newdir"), F_OK), -1);
	assert_int_equal(p9c_call(c, P9_TUNLINKAT, "dsd", ROOT, "..",
				  P9_DOTL_AT_REMOVEDIR),
			 -EINVAL);
	/* Tremove of the root is refused (and clunks it) */
	assert_int_equal(walk(c, ROOT, 7, "", &q), 0);
	assert_int_equal(p9c_call(c, P9_TREMOVE, "d", 7), -EBUSY);
	assert_int_equal(clunk(c, 7), -EBADF);
	/* statfs matches the host */
	assert_int_equal(p9c_call(c, P9_TSTATFS, "d", ROOT), 0);
	assert_int_equal(statvfs(f->share, &sv), 0);
	(void)p9_get_u32(&c->rc);
	assert_int_equal(p9_get_u32(&c->rc), sv.f_bsize);
	assert_int_equal(p9_get_u64(&c->rc), sv.f_blocks);
	p9_cur_skip(&c->rc, 8 * 5);
	assert_int_equal(p9_get_u32(&c->rc), sv.f_namemax);
}

static int lock(struct p9c *c, uint32_t fid, uint8_t type, uint64_t start,
		uint64_t len)
{
	int ret = p9c_call(c, P9_TLOCK, "dbdqqds", fid, type, 0, start, len, 42,
			   "client");

	return ret ? ret : p9_get_u8(&c->rc);
}

static void locks(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	char cid[64];

	assert_int_equal(walk(c, ROOT, 1, "top.txt", NULL), 1);
	assert_int_equal(walk(c, ROOT, 2, "top.txt", NULL), 1);
	assert_int_equal(lock(c, 1, P9_LOCK_TYPE_WRLCK, 0, 0), -EBADF);
	assert_int_equal(lopen(c, 1, P9_DOTL_RDWR), 0);
	assert_int_equal(lopen(c, 2, P9_DOTL_RDWR), 0);
	assert_int_equal(lock(c, 1, P9_LOCK_TYPE_WRLCK, 0, 10),
			 P9_LOCK_SUCCESS);
	assert_int_equal(lock(c, 2, P9_LOCK_TYPE_WRLCK, 5, 10),
			 P9_LOCK_BLOCKED);
	assert_int_equal(lock(c, 2, P9_LOCK_TYPE_RDLCK, 10, 10),
			 P9_LOCK_SUCCESS);
	/* Tgetlock reports the conflicting lock honestly */
	assert_int_equal(p9c_call(c, P9_TGETLOCK, "dbqqds", 2,
				  P9_LOCK_TYPE_WRLCK, (uint64_t)0, (uint64_t)0,
				  7, "me"),
			 0);
	assert_int_equal(p9_get_u8(&c->rc), P9_LOCK_TYPE_WRLCK);
	assert_int_equal(p9_get_u64(&c->rc), 0);
	assert_int_equal(p9_get_u64(&c->rc), 10);
	(void)p9_get_u32(&c->rc);
	assert_int_equal(p9_get_str(&c->rc, cid, 63), 0);
	assert_string_equal(cid, "me");
	assert_int_equal(lock(c, 1, P9_LOCK_TYPE_UNLCK, 0, 0), P9_LOCK_SUCCESS);
	assert_int_equal(lock(c, 2, P9_LOCK_TYPE_WRLCK, 5, 3), P9_LOCK_SUCCESS);
	assert_int_equal(p9c_call(c, P9_TGETLOCK, "dbqqds", 1,
				  P9_LOCK_TYPE_RDLCK, (uint64_t)100,
				  (uint64_t)5, 7, "me"),
			 0);
	assert_int_equal(p9_get_u8(&c->rc), P9_LOCK_TYPE_UNLCK);
	assert_int_equal(p9_get_u64(&c->rc), 100);
	/* Bad type and range */
	assert_int_equal(lock(c, 1, 9, 0, 0), -EINVAL);
	assert_int_equal(lock(c, 1, P9_LOCK_TYPE_RDLCK, UINT64_MAX, 2),
			 -EINVAL);
	/* Closing a fid drops its locks */
	assert_int_equal(clunk(c, 2), 0);
	assert_int_equal(lock(c, 1, P9_LOCK_TYPE_WRLCK, 0, 0), P9_LOCK_SUCCESS);
}

static void xattrs(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	char buf[256];
	uint64_t size;
	ssize_t n;

	if (setxattr(hpath(f, "top.txt"), "user.probe", "1", 1, 0) < 0) {
		assert_int_equal(errno, EOPNOTSUPP);
		skip();
	}
	/* Set: clone a fid, xattrcreate, write the value, clunk. */
	assert_int_equal(walk(c, ROOT, 1, "top.txt", NULL), 1);
	assert_int_equal(walk(c, 1, 2, "", NULL), 0);
	assert_int_equal(p9c_call(c, P9_TXATTRCREATE, "dsqd", 2, "user.color",
				  (uint64_t)5, 0),
			 0);
	assert_int_equal(writef(c, 2, 0, "green", 5), 5);
	assert_int_equal(clunk(c, 2), 0);
	n = getxattr(hpath(f, "top.txt"), "user.color", buf, sizeof(buf));
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "green", 5);
	/* Get */
	assert_int_equal(p9c_call(c, P9_TXATTRWALK, "dds", 1, 3, "user.color"),
			 0);
	size = p9_get_u64(&c->rc);
	assert_int_equal(size, 5);
	assert_int_equal(readf(c, 3, 0, 100, buf), 5);
	assert_memory_equal(buf, "green", 5);
	assert_int_equal(readf(c, 3, 2, 100, buf), 3);
	assert_int_equal(writef(c, 3, 0, "x", 1), -EBADF);
	assert_int_equal(clunk(c, 3), 0);
	/* List: user.* names only */
	assert_int_equal(p9c_call(c, P9_TXATTRWALK, "dds", 1, 3, ""), 0);
	size = p9_get_u64(&c->rc);
	assert_int_equal(size, sizeof("user.probe") + sizeof("user.color"));
	n = readf(c, 3, 0, sizeof(buf), buf);
	assert_int_equal(n, size);
	assert_non_null(memmem(buf, (size_t)n, "user.color", 11));
	assert_int_equal(clunk(c, 3), 0);
	/* Missing, wrong size, foreign namespaces */
	assert_int_equal(p9c_call(c, P9_TXATTRWALK, "dds", 1, 3, "user.none"),
			 -ENODATA);
	assert_int_equal(
		p9c_call(c, P9_TXATTRWALK, "dds", 1, 3, "trusted.overlay"),
		-EOPNOTSUPP);
	assert_int_equal(walk(c, 1, 4, "", NULL), 0);
	assert_int_equal(p9c_call(c, P9_TXATTRCREATE, "dsqd", 4,
				  "security.evil", (uint64_t)1, 0),
			 -EOPNOTSUPP);
	assert_int_equal(p9c_call(c, P9_TXATTRCREATE, "dsqd", 4, "user.big",
				  (uint64_t)1 << 20, 0),
			 -E2BIG);
	assert_int_equal(p9c_call(c, P9_TXATTRCREATE, "dsqd", 4, "user.short",
				  (uint64_t)4, 0),
			 0);
	assert_int_equal(writef(c, 4, 2, "abc", 3), -ENOSPC);
	assert_int_equal(writef(c, 4, 0, "ab", 2), 2);
	assert_int_equal(clunk(c, 4), -EINVAL);
	assert_int_equal(getxattr(hpath(f, "top.txt"), "user.short", buf, 10),
			 -1);
	/* XATTR_CREATE on an existing name */
	assert_int_equal(walk(c, 1, 4, "", NULL), 0);
	assert_int_equal(p9c_call(c, P9_TXATTRCREATE, "dsqd", 4, "user.color",
				  (uint64_t)1, P9_XATTR_CREATE),
			 0);
	assert_int_equal(writef(c, 4, 0, "r", 1), 1);
	assert_int_equal(clunk(c, 4), -EEXIST);
	/* Remove: empty value with REPLACE */
	assert_int_equal(walk(c, 1, 4, "", NULL), 0);
	assert_int_equal(p9c_call(c, P9_TXATTRCREATE, "dsqd", 4, "user.color",
				  (uint64_t)0, P9_XATTR_REPLACE),
			 0);
	assert_int_equal(clunk(c, 4), 0);
	assert_int_equal(getxattr(hpath(f, "top.txt"), "user.color", buf, 10),
			 -1);
	assert_int_equal(errno, ENODATA);
}

static void read_only(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	char buf[64];

	assert_int_equal(walk(c, ROOT, 1, "dir/file", NULL), 2);
	assert_int_equal(walk(c, ROOT, 2, "dir", NULL), 1);
	assert_int_equal(lopen(c, 1, P9_DOTL_WRONLY), -EROFS);
	assert_int_equal(lopen(c, 1, P9_DOTL_RDWR), -EROFS);
	assert_int_equal(lopen(c, 1, P9_DOTL_RDONLY | P9_DOTL_TRUNC), -EROFS);
	assert_int_equal(lopen(c, 1, P9_DOTL_RDONLY), 0);
	assert_int_equal(readf(c, 1, 0, 5, buf), 5);
	assert_int_equal(writef(c, 1, 0, "x", 1), -EROFS);
	assert_int_equal(p9c_call(c, P9_TLCREATE, "dsddd", 2, "n",
				  P9_DOTL_RDWR | P9_DOTL_CREATE, 0644, 0),
			 -EROFS);
	assert_int_equal(p9c_call(c, P9_TMKDIR, "dsdd", 2, "n", 0755, 0),
			 -EROFS);
	assert_int_equal(p9c_call(c, P9_TSYMLINK, "dssd", 2, "n", "x", 0),
			 -EROFS);
	assert_int_equal(p9c_call(c, P9_TMKNOD, "dsdddd", 2, "n",
				  S_IFIFO | 0644, 0, 0, 0),
			 -EROFS);
	assert_int_equal(p9c_call(c, P9_TLINK, "dds", 2, 1, "n"), -EROFS);
	assert_int_equal(p9c_call(c, P9_TRENAMEAT, "dsds", 2, "file", 2, "n"),
			 -EROFS);
	assert_int_equal(p9c_call(c, P9_TRENAME, "dds", 1, 2, "n"), -EROFS);
	assert_int_equal(p9c_call(c, P9_TUNLINKAT, "dsd", 2, "file", 0),
			 -EROFS);
	assert_int_equal(p9c_call(c, P9_TSETATTR, "dddddqqqqq", 1,
				  P9_SETATTR_MODE, 0777, 0, 0, (uint64_t)0,
				  (uint64_t)0, (uint64_t)0, (uint64_t)0,
				  (uint64_t)0),
			 -EROFS);
	assert_int_equal(p9c_call(c, P9_TXATTRCREATE, "dsqd", 2, "user.x",
				  (uint64_t)1, 0),
			 -EROFS);
	assert_int_equal(p9c_call(c, P9_TREMOVE, "d", 1), -EROFS);
	/* Tremove clunked the fid anyway. */
	assert_int_equal(clunk(c, 1), -EBADF);
	/* Nothing changed on the host. */
	assert_string_equal(read_host(hpath(f, "dir/file")), "hello world");
	assert_int_equal(access(hpath(f, "dir/n"), F_OK), -1);
	/* Reading is fine. */
	assert_int_equal(p9c_call(c, P9_TSTATFS, "d", ROOT), 0);
	assert_int_equal(lopen(c, 2, P9_DOTL_RDONLY), 0);
	assert_int_equal(p9c_call(c, P9_TREADDIR, "dqd", 2, (uint64_t)0, 4096),
			 0);
}

/* Send raw bytes; returns the Rlerror ecode (or 0 / negative test codes). */
static int raw(struct p9c *c, const void *bytes, size_t len, uint16_t *tag)
{
	struct iovec q = { (void *)bytes, len };
	struct iovec r = { c->resp, P9C_BUF };
	int ret = p9c_send_iov(c, &q, 1, &r, 1);

	*tag = c->tag;
	return ret;
}

static void bad_messages(void **state)
{
	struct fixture *f = *state;
	struct p9c *c = &f->c;
	uint8_t m[64];
	struct iovec q, r;
	uint16_t tag;
	const uint8_t hdr_only[] = { 7, 0, 0, 0, P9_TCLUNK, 0x34, 0x12 };
	uint32_t fids_ops[] = { P9_TSTATFS, P9_TREADLINK, P9_TCLUNK,
				P9_TREMOVE, P9_TLOPEN,	  P9_TGETATTR };
	unsigned int i;

	memset(m, 0, sizeof(m));
	/* Less than a header: Rlerror without a tag. */
	assert_int_equal(raw(c, hdr_only, 3, &tag), -EPROTO);
	assert_int_equal(tag, P9_NOTAG);
	/* size[4] says more than there is: truncated. */
	assert_int_equal(raw(c, hdr_only, 7, &tag), -EPROTO);
	assert_int_equal(tag, 0x1234);
	memcpy(m, hdr_only, 7);
	m[0] = 100;
	assert_int_equal(raw(c, m, 11, &tag), -EPROTO);
	m[0] = 3;
	assert_int_equal(raw(c, m, 11, &tag), -EPROTO);
	/* size over msize */
	p9c_make(c, P9_TREAD, "dqd", ROOT, (uint64_t)0, 10);
	p9_iov_put_u32_at(&(struct iovec){ c->req, P9C_BUF }, 1, 0, 9000);
	q.iov_base = c->req;
	q.iov_len = 9000;
	r.iov_base = c->resp;
	r.iov_len = P9C_BUF;
	assert_int_equal(p9c_send_iov(c, &q, 1, &r, 1), -EMSGSIZE);
	/* A string running past the end of the message. */
	p9c_make(c, P9_TREAD, "dqd", ROOT, (uint64_t)0, 0);
	{
		uint8_t w[] = { 0, 0, 0, 0, P9_TWALK, 1, 0,   0, 0,   0,  0,
				1, 0, 0, 0, 1,	      0, 200, 0, 'a', 'b' };

		w[0] = sizeof(w);
		assert_int_equal(raw(c, w, sizeof(w), &tag), -EPROTO);
		assert_int_equal(tag, 1);
		/* A NUL inside a name. */
		w[17] = 2;
		w[19] = 0;
		w[0] = 21;
		assert_int_equal(raw(c, w, 21, &tag), -EINVAL);
	}
	/* Twrite's count past the message. */
	{
		uint8_t w[] = {
			0, 0, 0, 0, P9_TWRITE, 1, 0, 0,	  0, 0, 0, 0,
			0, 0, 0, 0, 0,	       0, 0, 100, 0, 0, 0, 'x'
		};

		w[0] = sizeof(w);
		assert_int_equal(raw(c, w, sizeof(w), &tag), -EPROTO);
	}
	/* Unknown and 9P2000-only types. */
	m[0] = 11;
	m[4] = 200;
	assert_int_equal(raw(c, m, 11, &tag), -EOPNOTSUPP);
	m[4] = 112; /* Topen */
	assert_int_equal(raw(c, m, 11, &tag), -EOPNOTSUPP);
	/* A name over 255 bytes. */
	{
		char longname[300];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[299] = '\0';
		assert_int_equal(
			p9c_call(c, P9_TMKDIR, "dsdd", ROOT, longname, 0755, 0),
			-ENAMETOOLONG);
	}
	/* Unknown fids on every fid-taking request. */
	for (i = 0; i < sizeof(fids_ops) / sizeof(fids_ops[0]); i++)
		assert_int_equal(p9c_call(c, (uint8_t)fids_ops[i], "dqq", 555,
					  (uint64_t)0, (uint64_t)0),
				 -EBADF);
	assert_int_equal(p9c_call(c, P9_TREAD, "dqd", 555, (uint64_t)0, 1),
			 -EBADF);
	assert_int_equal(writef(c, 555, 0, "x", 1), -EBADF);
	assert_int_equal(p9c_call(c, P9_TMKDIR, "dsdd", 555, "x", 0755, 0),
			 -EBADF);
	assert_int_equal(p9c_call(c, P9_TXATTRWALK, "dds", 555, 556, ""),
			 -EBADF);
	assert_int_equal(p9c_call(c, P9_TRENAMEAT, "dsds", ROOT, "a", 555, "b"),
			 -EBADF);
	/* No room for even an Rlerror: nothing written. */
	p9c_make(c, P9_TREAD, "dqd", ROOT, (uint64_t)0, 0);
	q.iov_base = c->req;
	q.iov_len = c->reqlen;
	r.iov_len = 10;
	assert_int_equal(p9_server_handle(&c->s, &q, 1, &r, 1), 0);
	/* Room for an Rlerror only: a walk that would not fit is refused. */
	r.iov_len = 11;
	{
		const char *names[] = { "dir" };

		p9c_make(c, P9_TWALK, "ddW", ROOT, 9, 1, names);
	}
	q.iov_len = c->reqlen;
	assert_int_equal(p9_server_handle(&c->s, &q, 1, &r, 1), 11);
	assert_int_equal(walk(c, 9, 10, "", NULL), -EBADF);
	/* Still serving afterwards. */
	assert_int_equal(walk(c, ROOT, 9, "dir", NULL), 1);
}

static void fid_table(void **state)
{
	struct p9_fid_table t;
	struct p9_fid *a, *b;
	int err = 0;

	(void)state;
	assert_int_equal(p9_fid_table_init(&t, 3), 0);
	a = p9_fid_new(&t, 0, &err);
	assert_non_null(a);
	assert_int_equal(a->fd, -1);
	assert_null(p9_fid_new(&t, 0, &err));
	assert_int_equal(err, -EEXIST);
	assert_null(p9_fid_new(&t, P9_NOFID, &err));
	assert_int_equal(err, -EBADF);
	/* Numbers that share a bucket stay apart. */
	b = p9_fid_new(&t, 64, &err);
	assert_non_null(b);
	assert_non_null(p9_fid_new(&t, 0x80000000U, &err));
	assert_null(p9_fid_new(&t, 5, &err));
	assert_int_equal(err, -EMFILE);
	assert_ptr_equal(p9_fid_lookup(&t, 64), b);
	p9_fid_del(&t, a);
	assert_null(p9_fid_lookup(&t, 0));
	assert_ptr_equal(p9_fid_lookup(&t, 64), b);
	assert_non_null(p9_fid_new(&t, 5, &err));
	p9_fid_table_clear(&t);
	assert_null(p9_fid_lookup(&t, 64));
	assert_int_equal(t.count, 0);
	p9_fid_table_exit(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(session, setup, teardown),
		cmocka_unit_test_setup_teardown(walks, setup, teardown),
		cmocka_unit_test_setup_teardown(escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(create_read_write, setup,
						teardown),
		cmocka_unit_test_setup_teardown(large_io, setup, teardown),
		cmocka_unit_test_setup_teardown(attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(readdir_listing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(dir_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(locks, setup, teardown),
		cmocka_unit_test_setup_teardown(xattrs, setup, teardown),
		cmocka_unit_test_setup_teardown(read_only, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(bad_messages, setup, teardown),
		cmocka_unit_test(fid_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
