/*
 * Tier 2 for virtio-9p: the host-side driver (vdriver) plays the guest's
 * v9fs transport, putting each 9P2000.L request (encoded with the test
 * client's encoder, tests/unit/p9_client.h) in device-readable buffers and
 * reading the reply from device-writable ones, scattered over several
 * descriptors and indirect tables as Linux does. Covers the config space
 * (mount tag), a whole session on a temporary share (version at 512 KiB,
 * attach, walk, lcreate, 1 MiB written and read back in msize chunks,
 * getattr, readdir, mkdir, rename, unlink), ".." staying inside the share,
 * a read-only share, a hostile chain (NEEDS_RESET), reset dropping the
 * session's fids, and virtio_9p_parse.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../unit/p9_client.h"
#include "devices/virtio_9p.h"
#include "vdriver.h"

#define ROOT 1
#define MSIZE P9_MSIZE_MAX
#define PIECE (64 * 1024) /* bytes per descriptor of a long buffer */
#define FEATURES                                                          \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(0) /* MOUNT_TAG */ | \
	 VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) |                        \
	 VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX))

struct fixture {
	struct vdriver d;
	struct virtio_9p *p;
	char share[64];
	struct p9c c; /* encoder and reply cursor only */
	uint64_t req_gpa, resp_gpa;
	struct iovec resp_iov[P9C_BUF / PIECE + 1];
	unsigned int resp_cnt;
};

static struct fixture fx;

static void rm_tree(const char *path)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fail_msg("cannot remove %s", path);
}

static void open_dev(struct fixture *f, const char *conf)
{
	struct virtio_9p_options o;
	char err[256] = "";

	assert_int_equal(virtio_9p_parse(conf, &o, err, sizeof(err)), 0);
	if (virtio_9p_init(&f->p, "virtio-9p-test", &f->d.mem, &o, err,
			   sizeof(err)))
		fail_msg("virtio_9p_init: %s", err);
	virtio_9p_options_free(&o);
	vdriver_attach(&f->d, virtio_9p_dev(f->p));
}

static void start(struct fixture *f)
{
	int st = vdriver_start(&f->d, FEATURES, 0);

	assert_true(st > 0 && (st & VIRTIO_STATUS_DRIVER_OK));
	assert_false(st & VIRTIO_STATUS_NEEDS_RESET);
}

static int setup_ro(void **state, bool ro)
{
	struct fixture *f = &fx;
	char conf[512];

	memset(f, 0, sizeof(*f));
	snprintf(f->share, sizeof(f->share), "/tmp/khyve-9p-XXXXXX");
	if (!mkdtemp(f->share))
		return -1;
	if (vdriver_init(&f->d, 128ULL << 20))
		return -1;
	snprintf(conf, sizeof(conf), "tag=kshare,share=%s%s", f->share,
		 ro ? ",ro" : "");
	open_dev(f, conf);
	p9c_alloc(&f->c);
	f->req_gpa = vdriver_alloc(&f->d, P9C_BUF, 4096);
	f->resp_gpa = vdriver_alloc(&f->d, P9C_BUF, 4096);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_ro(state, false);
}

static int setup_readonly(void **state)
{
	return setup_ro(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_9p_destroy(f->p);
	vdriver_exit(&f->d);
	p9c_free(&f->c);
	rm_tree(f->share);
	return 0;
}

/* Split [gpa, gpa + len) into descriptors of at most PIECE bytes. */
static unsigned int pieces(uint64_t gpa, size_t len, struct vdriver_buf *b)
{
	unsigned int n = 0;

	do {
		size_t l = len < PIECE ? len : PIECE;

		b[n++] = (struct vdriver_buf){ gpa, (uint32_t)l };
		gpa += l;
		len -= l;
	} while (len);
	return n;
}

/*
 * Send the request built in c.req with @resp_room bytes for the reply;
 * 0 with the reply body at c.rc, or -ecode for Rlerror.
 */
static int send_req(struct fixture *f, size_t resp_room)
{
	static struct vdriver_buf out[P9C_BUF / PIECE + 1],
		in[P9C_BUF / PIECE + 1];
	struct p9c *c = &f->c;
	unsigned int n_out, n_in, i;
	uint16_t head, got, tag = c->tag;
	uint32_t len, size;
	uint8_t *resp = vdriver_ptr(&f->d, f->resp_gpa);
	size_t off = 0;

	memcpy(vdriver_ptr(&f->d, f->req_gpa), c->req, c->reqlen);
	memset(resp, 0xa5, 64);
	n_out = pieces(f->req_gpa, c->reqlen, out);
	n_in = pieces(f->resp_gpa, resp_room, in);
	head = vdriver_post(&f->d, 0, out, n_out, in, n_in, n_out + n_in > 3);
	vdriver_kick(&f->d, 0);
	assert_int_equal(vdriver_wait_used(&f->d, 0, &got, &len, 5000), 1);
	assert_int_equal(got, head);
	assert_true(len >= P9_HDR_SIZE && len <= resp_room);
	for (i = 0; i < n_in; i++) {
		f->resp_iov[i].iov_base = resp + off;
		f->resp_iov[i].iov_len = in[i].len;
		off += in[i].len;
	}
	f->resp_cnt = n_in;
	p9_cur_init(&c->rc, f->resp_iov, n_in, len);
	size = p9_get_u32(&c->rc);
	c->rtype = p9_get_u8(&c->rc);
	assert_int_equal(size, len);
	assert_int_equal(p9_get_u16(&c->rc), tag);
	c->tag = (uint16_t)(tag + 1);
	if (c->rtype == P9_RLERROR)
		return -(int)p9_get_u32(&c->rc);
	assert_int_equal(c->rtype, c->req[4] + 1);
	return 0;
}

/* One request of @type through the queue (formats as p9_client.h). */
static int vcall(struct fixture *f, uint8_t type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	p9c_build(&f->c, type, fmt, ap);
	va_end(ap);
	return send_req(f, MSIZE);
}

static void session(struct fixture *f)
{
	char v[16];

	assert_int_equal(vcall(f, P9_TVERSION, "ds", MSIZE, "9P2000.L"), 0);
	assert_int_equal(p9_get_u32(&f->c.rc), MSIZE);
	assert_int_equal(p9_get_str(&f->c.rc, v, sizeof(v) - 1), 0);
	assert_string_equal(v, "9P2000.L");
	assert_int_equal(
		vcall(f, P9_TATTACH, "ddssd", ROOT, P9_NOFID, "root", "", 0),
		0);
}

static struct p9_qid get_qid(struct p9_cur *c)
{
	struct p9_qid q;

	q.type = p9_get_u8(c);
	q.version = p9_get_u32(c);
	q.path = p9_get_u64(c);
	return q;
}

static int walk(struct fixture *f, uint32_t fid, uint32_t newfid, int n,
		const char **names, struct p9_qid *last)
{
	int ret = vcall(f, P9_TWALK, "ddW", fid, newfid, n, names);
	uint16_t nq, i;

	if (ret)
		return ret;
	nq = p9_get_u16(&f->c.rc);
	if (nq != n)
		return -ENOENT;
	for (i = 0; i < nq; i++)
		*last = get_qid(&f->c.rc);
	return 0;
}

/* Tgetattr: the qid and the size. */
static struct p9_qid getattr(struct fixture *f, uint32_t fid, uint64_t *size,
			     uint32_t *mode)
{
	struct p9_cur *c = &f->c.rc;
	struct p9_qid q;

	assert_int_equal(
		vcall(f, P9_TGETATTR, "dq", fid, (uint64_t)P9_GETATTR_BASIC),
		0);
	assert_true(p9_get_u64(c) & P9_GETATTR_SIZE);
	q = get_qid(c);
	*mode = p9_get_u32(c);
	p9_get_u32(c); /* uid */
	p9_get_u32(c); /* gid */
	p9_get_u64(c); /* nlink */
	p9_get_u64(c); /* rdev */
	*size = p9_get_u64(c);
	assert_false(c->overflow);
	return q;
}

/* ---- config space and parsing ---- */

static void test_config_tag(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev *dev = virtio_9p_dev(f->p);
	uint8_t cfg[2 + 6];
	uint16_t tag_len;

	assert_int_equal(dev->device_id, VIRTIO_ID_9P);
	assert_true(dev->host_features & VIRTIO_BIT(0));
	start(f);
	assert_true(f->d.features & VIRTIO_BIT(0));
	assert_int_equal(dev->config_size, 2 + 6);
	dev->ops->config_read(dev, 0, cfg, sizeof(cfg));
	memcpy(&tag_len, cfg, 2);
	assert_int_equal(tag_len, 6);
	assert_memory_equal(cfg + 2, "kshare", 6);
	/* A read at an offset, as a driver reading byte by byte. */
	dev->ops->config_read(dev, 3, cfg, 1);
	assert_int_equal(cfg[0], 's');
}

static void test_parse(void **state)
{
	static const char *const bad[] = {
		"",
		"tag=t",
		"share=/tmp",
		"tag=,share=/tmp",
		"tag=t,share=",
		"tag=a,tag=b,share=/tmp",
		"tag=t,share=/tmp,share=/var",
		"tag=t,share=/tmp,rw",
		"tag=t,share=/tmp,bogus=1",
		"tag=t;share=/tmp",
	};
	struct virtio_9p_options o;
	char err[256], longtag[300];
	unsigned int i;

	(void)state;
	assert_int_equal(
		virtio_9p_parse("tag=t,share=/tmp", &o, err, sizeof(err)), 0);
	assert_string_equal(o.tag, "t");
	assert_string_equal(o.share, "/tmp");
	assert_false(o.read_only);
	virtio_9p_options_free(&o);
	assert_int_equal(virtio_9p_parse("ro,share=/a b,tag=my-tag", &o, err,
					 sizeof(err)),
			 0);
	assert_string_equal(o.tag, "my-tag");
	assert_string_equal(o.share, "/a b");
	assert_true(o.read_only);
	virtio_9p_options_free(&o);
	/* The longest tag config space holds: 255 bytes. */
	memset(longtag, 'x', sizeof(longtag));
	memcpy(longtag, "tag=", 4);
	snprintf(longtag + 4 + 255, sizeof(longtag) - 4 - 255, ",share=/");
	assert_int_equal(virtio_9p_parse(longtag, &o, err, sizeof(err)), 0);
	assert_int_equal(strlen(o.tag), 255);
	virtio_9p_options_free(&o);
	longtag[4 + 255] = 'x';
	snprintf(longtag + 4 + 256, sizeof(longtag) - 4 - 256, ",share=/");
	err[0] = '\0';
	assert_int_equal(virtio_9p_parse(longtag, &o, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "tag="));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(virtio_9p_parse(bad[i], &o, err, sizeof(err)),
				 -EINVAL);
		assert_true(strncmp(err, "virtio-9p: ", 11) == 0);
		assert_null(o.tag);
		assert_null(o.share);
	}
	err[0] = '\0';
	assert_int_equal(virtio_9p_parse(NULL, &o, err, sizeof(err)), -EINVAL);
	assert_true(err[0] != '\0');
}

static void test_init_bad_share(void **state)
{
	struct fixture *f = *state;
	struct virtio_9p_options o = { .tag = "t" };
	struct virtio_9p *p;
	char err[256] = "", longtag[301];

	o.share = "/nonexistent/khyve-9p";
	assert_true(virtio_9p_init(&p, "v9p", &f->d.mem, &o, err, sizeof(err)) <
		    0);
	assert_non_null(strstr(err, "/nonexistent/khyve-9p"));
	/* A tag config space cannot hold (init called without the parser). */
	o.share = f->share;
	memset(longtag, 'x', sizeof(longtag) - 1);
	longtag[sizeof(longtag) - 1] = '\0';
	o.tag = longtag;
	assert_int_equal(
		virtio_9p_init(&p, "v9p", &f->d.mem, &o, err, sizeof(err)),
		-EINVAL);
	longtag[P9_NAME_MAX] = '\0'; /* 255: the most that fits */
	assert_int_equal(
		virtio_9p_init(&p, "v9p", &f->d.mem, &o, err, sizeof(err)), 0);
	virtio_9p_destroy(p);
	o.tag = "";
	assert_int_equal(
		virtio_9p_init(&p, "v9p", &f->d.mem, &o, err, sizeof(err)),
		-EINVAL);
	o.tag = "t";
	o.share = "/etc/hostname";
	err[0] = '\0';
	if (access(o.share, F_OK) == 0) {
		assert_true(virtio_9p_init(&p, "v9p", &f->d.mem, &o, err,
					   sizeof(err)) < 0);
		assert_true(err[0] != '\0');
	}
}

/* ---- a session through the queue ---- */

static void test_session(void **state)
{
	struct fixture *f = *state;
	const uint32_t chunk = MSIZE - 23; /* Twrite's header */
	const uint32_t rchunk = MSIZE - 11; /* Rread's header */
	const size_t total = 1 << 20;
	const char *name[2];
	uint8_t *data = malloc(total), *back = malloc(total);
	struct p9_qid root, q, q2;
	char path[128], ent[P9_NAME_MAX + 1];
	uint64_t size, off;
	uint32_t mode, count;
	struct stat st;
	bool seen_file = false, seen_dir = false;
	size_t i;

	assert_non_null(data);
	assert_non_null(back);
	for (i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 12));
	start(f);
	session(f);
	root = getattr(f, ROOT, &size, &mode);
	assert_int_equal(root.type, P9_QTDIR);
	assert_true(S_ISDIR(mode));

	/* lcreate a file through a clone of the root fid. */
	assert_int_equal(walk(f, ROOT, 2, 0, NULL, &q), 0);
	assert_int_equal(vcall(f, P9_TLCREATE, "dsddd", 2, "data.bin",
			       P9_DOTL_RDWR, 0644, 0),
			 0);
	q = get_qid(&f->c.rc);
	assert_int_equal(q.type, P9_QTFILE);
	/* Write 1 MiB in msize chunks, read it back. */
	for (off = 0; off < total; off += count) {
		size_t n = total - off < chunk ? total - off : chunk;

		assert_int_equal(vcall(f, P9_TWRITE, "dqdD", 2, off,
				       (uint32_t)n, n, data + off),
				 0);
		count = p9_get_u32(&f->c.rc);
		assert_int_equal(count, n);
	}
	snprintf(path, sizeof(path), "%s/data.bin", f->share);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, total);
	for (off = 0; off < total; off += count) {
		assert_int_equal(vcall(f, P9_TREAD, "dqd", 2, off, rchunk), 0);
		count = p9_get_u32(&f->c.rc);
		assert_true(count > 0 && count <= rchunk);
		assert_true(off + count <= total);
		p9_get_bytes(&f->c.rc, back + off, count);
		assert_false(f->c.rc.overflow);
	}
	assert_memory_equal(back, data, total);
	/* Past the end: nothing. */
	assert_int_equal(vcall(f, P9_TREAD, "dqd", 2, (uint64_t)total, 4096),
			 0);
	assert_int_equal(p9_get_u32(&f->c.rc), 0);
	assert_int_equal(vcall(f, P9_TCLUNK, "d", 2), 0);

	/* walk and getattr. */
	name[0] = "data.bin";
	assert_int_equal(walk(f, ROOT, 3, 1, name, &q2), 0);
	assert_true(q2.path == q.path);
	q2 = getattr(f, 3, &size, &mode);
	assert_int_equal(size, total);
	assert_true(S_ISREG(mode));
	assert_int_equal(mode & 0777, 0644);
	assert_int_equal(vcall(f, P9_TCLUNK, "d", 3), 0);

	/* mkdir, then readdir lists both. */
	assert_int_equal(vcall(f, P9_TMKDIR, "dsdd", ROOT, "sub", 0755, 0), 0);
	assert_int_equal(get_qid(&f->c.rc).type, P9_QTDIR);
	snprintf(path, sizeof(path), "%s/sub", f->share);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(walk(f, ROOT, 4, 0, NULL, &q2), 0);
	assert_int_equal(vcall(f, P9_TLOPEN, "dd", 4, P9_DOTL_RDONLY), 0);
	assert_int_equal(vcall(f, P9_TREADDIR, "dqd", 4, (uint64_t)0, 8192), 0);
	count = p9_get_u32(&f->c.rc);
	while (count > 0) {
		size_t before = f->c.rc.pos;

		get_qid(&f->c.rc);
		p9_get_u64(&f->c.rc); /* offset */
		p9_get_u8(&f->c.rc); /* type */
		assert_int_equal(p9_get_str(&f->c.rc, ent, P9_NAME_MAX), 0);
		seen_file |= !strcmp(ent, "data.bin");
		seen_dir |= !strcmp(ent, "sub");
		assert_true(f->c.rc.pos - before <= count);
		count -= (uint32_t)(f->c.rc.pos - before);
	}
	assert_true(seen_file && seen_dir);
	assert_int_equal(vcall(f, P9_TCLUNK, "d", 4), 0);

	/* rename into the new directory, then unlink it and the directory. */
	name[0] = "sub";
	assert_int_equal(walk(f, ROOT, 5, 1, name, &q2), 0);
	assert_int_equal(vcall(f, P9_TRENAMEAT, "dsds", ROOT, "data.bin", 5,
			       "moved.bin"),
			 0);
	snprintf(path, sizeof(path), "%s/sub/moved.bin", f->share);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, total);
	name[0] = "data.bin";
	assert_int_equal(walk(f, ROOT, 6, 1, name, &q2), -ENOENT);
	assert_int_equal(vcall(f, P9_TUNLINKAT, "dsd", 5, "moved.bin", 0), 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(vcall(f, P9_TUNLINKAT, "dsd", ROOT, "sub", 0),
			 -EISDIR);
	assert_int_equal(vcall(f, P9_TUNLINKAT, "dsd", ROOT, "sub",
			       P9_DOTL_AT_REMOVEDIR),
			 0);
	snprintf(path, sizeof(path), "%s/sub", f->share);
	assert_int_equal(stat(path, &st), -1);
	free(data);
	free(back);
}

static void test_dotdot_stays_inside(void **state)
{
	struct fixture *f = *state;
	const char *up[3] = { "..", "..", ".." };
	const char *slash[1] = { "../etc" };
	struct p9_qid root, q;
	uint64_t size;
	uint32_t mode;
	char path[128];
	struct stat st;

	start(f);
	session(f);
	root = getattr(f, ROOT, &size, &mode);
	assert_int_equal(walk(f, ROOT, 2, 3, up, &q), 0);
	assert_true(q.path == root.path);
	q = getattr(f, 2, &size, &mode);
	assert_true(q.path == root.path);
	/* A file created from there lands in the share. */
	assert_int_equal(vcall(f, P9_TLCREATE, "dsddd", 2, "escaped",
			       P9_DOTL_WRONLY, 0600, 0),
			 0);
	snprintf(path, sizeof(path), "%s/escaped", f->share);
	assert_int_equal(stat(path, &st), 0);
	/* No '/' inside a name. */
	assert_true(walk(f, ROOT, 3, 1, slash, &q) < 0);
}

static void test_read_only(void **state)
{
	struct fixture *f = *state;
	const char *name[1] = { "existing" };
	struct p9_qid q;
	char path[128];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/existing", f->share);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello", 5), 5);
	close(fd);
	start(f);
	session(f);
	assert_int_equal(walk(f, ROOT, 2, 0, NULL, &q), 0);
	assert_int_equal(
		vcall(f, P9_TLCREATE, "dsddd", 2, "new", P9_DOTL_RDWR, 0644, 0),
		-EROFS);
	assert_int_equal(vcall(f, P9_TMKDIR, "dsdd", ROOT, "d", 0755, 0),
			 -EROFS);
	assert_int_equal(vcall(f, P9_TUNLINKAT, "dsd", ROOT, "existing", 0),
			 -EROFS);
	assert_int_equal(
		vcall(f, P9_TRENAMEAT, "dsds", ROOT, "existing", ROOT, "other"),
		-EROFS);
	/* Opening an existing file for writing or truncation. */
	assert_int_equal(walk(f, ROOT, 4, 1, name, &q), 0);
	assert_int_equal(vcall(f, P9_TLOPEN, "dd", 4, P9_DOTL_WRONLY), -EROFS);
	assert_int_equal(
		vcall(f, P9_TLOPEN, "dd", 4, P9_DOTL_RDONLY | P9_DOTL_TRUNC),
		-EROFS);
	assert_int_equal(vcall(f, P9_TSETATTR, "dddddqqqqq", 4, P9_SETATTR_SIZE,
			       0, 0, 0, (uint64_t)0, (uint64_t)0, (uint64_t)0,
			       (uint64_t)0, (uint64_t)0),
			 -EROFS);
	/* Reading still works. */
	assert_int_equal(walk(f, ROOT, 3, 1, name, &q), 0);
	assert_int_equal(vcall(f, P9_TLOPEN, "dd", 3, P9_DOTL_RDONLY), 0);
	assert_int_equal(vcall(f, P9_TREAD, "dqd", 3, (uint64_t)0, 100), 0);
	assert_int_equal(p9_get_u32(&f->c.rc), 5);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 5);
	snprintf(path, sizeof(path), "%s/new", f->share);
	assert_int_equal(stat(path, &st), -1);
}

static void test_many_in_flight(void **state)
{
	struct fixture *f = *state;
	const unsigned int n = 64;
	uint16_t heads[64], head;
	uint64_t reqs = vdriver_alloc(&f->d, 64 * 64, 64);
	uint64_t resps = vdriver_alloc(&f->d, 64 * 256, 64);
	bool seen[64] = { false };
	uint32_t len;
	unsigned int i, j;

	start(f);
	session(f);
	/* 64 Tgetattr of the root, one kick: all answered, each its tag. */
	for (i = 0; i < n; i++) {
		struct vdriver_buf out, in = { resps + 256 * i, 256 };

		f->c.tag = (uint16_t)(100 + i);
		p9c_make(&f->c, P9_TGETATTR, "dq", ROOT,
			 (uint64_t)P9_GETATTR_BASIC);
		out = (struct vdriver_buf){ reqs + 64 * i,
					    (uint32_t)f->c.reqlen };
		memcpy(vdriver_ptr(&f->d, out.gpa), f->c.req, f->c.reqlen);
		heads[i] = vdriver_post(&f->d, 0, &out, 1, &in, 1, i & 1);
	}
	vdriver_kick(&f->d, 0);
	for (i = 0; i < n; i++) {
		uint8_t *r;

		assert_int_equal(vdriver_wait_used(&f->d, 0, &head, &len, 5000),
				 1);
		for (j = 0; j < n && heads[j] != head; j++)
			;
		assert_true(j < n && !seen[j]);
		seen[j] = true;
		r = vdriver_ptr(&f->d, resps + 256 * j);
		assert_true(len > P9_HDR_SIZE && len <= 256);
		assert_int_equal(r[4], P9_RGETATTR);
		assert_int_equal(r[5] | r[6] << 8, 100 + j);
	}
}

static void test_short_reply_buffer(void **state)
{
	struct fixture *f = *state;

	start(f);
	session(f);
	/* Room for Rlerror only: a getattr cannot fit, the error does. */
	p9c_make(&f->c, P9_TGETATTR, "dq", ROOT, (uint64_t)P9_GETATTR_BASIC);
	assert_true(send_req(f, P9_RLERROR_SIZE) < 0);
	/* The session goes on. */
	assert_int_equal(vcall(f, P9_TCLUNK, "d", ROOT), 0);
	assert_int_equal(vcall(f, P9_TCLUNK, "d", ROOT), -EBADF);
}

static void test_bad_chain_needs_reset(void **state)
{
	struct fixture *f = *state;
	struct vdriver_buf out = { ~0ULL - 100, 64 }, in = { f->resp_gpa, 64 };
	uint16_t head;
	uint32_t len;

	start(f);
	session(f);
	/* A buffer outside guest RAM (its end wraps around). */
	vdriver_post(&f->d, 0, &out, 1, &in, 1, false);
	vdriver_kick(&f->d, 0);
	assert_true(vdriver_wait_config(&f->d, 5000));
	assert_true(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(vdriver_wait_used(&f->d, 0, &head, &len, 100), 0);
	/* Reset: a new session works. */
	start(f);
	session(f);
	assert_int_equal(vcall(f, P9_TCLUNK, "d", ROOT), 0);
}

static void test_reset_drops_fids(void **state)
{
	struct fixture *f = *state;
	struct p9_qid q;
	uint64_t size;
	uint32_t mode;
	unsigned int i;

	start(f);
	session(f);
	assert_int_equal(walk(f, ROOT, 7, 0, NULL, &q), 0);
	getattr(f, 7, &size, &mode);
	/* Requests queued when the driver resets, never answered. */
	for (i = 0; i < 16; i++) {
		struct vdriver_buf out = { f->req_gpa, (uint32_t)f->c.reqlen },
				   in = { f->resp_gpa, 4096 };

		vdriver_post(&f->d, 0, &out, 1, &in, 1, false);
	}
	vdriver_kick(&f->d, 0);
	vdriver_reset(&f->d);
	assert_int_equal(vdriver_status(&f->d), 0);
	start(f);
	/* A new driver: no session until Tversion. */
	assert_int_equal(
		vcall(f, P9_TGETATTR, "dq", 7, (uint64_t)P9_GETATTR_BASIC),
		-EPROTO);
	assert_int_equal(vcall(f, P9_TVERSION, "ds", MSIZE, "9P2000.L"), 0);
	/* The fids of the old session are gone. */
	assert_int_equal(
		vcall(f, P9_TGETATTR, "dq", 7, (uint64_t)P9_GETATTR_BASIC),
		-EBADF);
	assert_int_equal(
		vcall(f, P9_TGETATTR, "dq", ROOT, (uint64_t)P9_GETATTR_BASIC),
		-EBADF);
	assert_int_equal(
		vcall(f, P9_TATTACH, "ddssd", ROOT, P9_NOFID, "root", "", 0),
		0);
	getattr(f, ROOT, &size, &mode);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_config_tag, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_init_bad_share, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotdot_stays_inside, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup_readonly,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_short_reply_buffer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_chain_needs_reset,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_drops_fids, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
