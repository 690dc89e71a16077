/*
 * The 9P codec on its own: fields split across iovecs at every byte, the
 * size, count and string checks of p9_decode(), the reply encoder's limits.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "p9/p9_codec.h"

static struct p9_req req;

/* Encode into @buf: header then fields, size patched; returns the size. */
static size_t build(uint8_t *buf, size_t cap, uint8_t type, uint16_t tag,
		    void (*body)(struct p9_cur *c))
{
	struct iovec iov = { buf, cap };
	struct p9_cur c;

	p9_cur_init(&c, &iov, 1, cap);
	p9_reply_begin(&c, type, tag);
	body(&c);
	return p9_reply_end(&c);
}

/* Split @len bytes of @buf into iovecs of one byte each. */
static unsigned int shred(uint8_t *buf, size_t len, struct iovec *iov)
{
	size_t i;

	for (i = 0; i < len; i++) {
		iov[i].iov_base = buf + i;
		iov[i].iov_len = 1;
	}
	return (unsigned int)len;
}

static void body_setattr(struct p9_cur *c)
{
	p9_put_u32(c, 3);
	p9_put_u32(c, 0x1ff);
	p9_put_u32(c, 0644);
	p9_put_u32(c, 1000);
	p9_put_u32(c, 1001);
	p9_put_u64(c, 0x123456789abcdefULL);
	p9_put_u64(c, 1);
	p9_put_u64(c, 2);
	p9_put_u64(c, 3);
	p9_put_u64(c, 4);
}

static void fields_across_iovecs(void **state)
{
	uint8_t buf[256];
	struct iovec iov[256], two[2];
	size_t len, split;
	bool tag_ok;

	(void)state;
	len = build(buf, sizeof(buf), P9_TSETATTR, 0xbeef, body_setattr);
	assert_int_equal(len, 7 + 5 * 4 + 5 * 8);
	/* One byte per iovec. */
	assert_int_equal(
		p9_decode(iov, shred(buf, len, iov), 8192, &req, &tag_ok), 0);
	assert_true(tag_ok);
	assert_int_equal(req.tag, 0xbeef);
	assert_int_equal(req.u.setattr.fid, 3);
	assert_int_equal(req.u.setattr.mode, 0644);
	assert_int_equal(req.u.setattr.size, 0x123456789abcdefULL);
	assert_int_equal(req.u.setattr.mtime_nsec, 4);
	/* Two iovecs split at every point, with empty ones. */
	for (split = 0; split <= len; split++) {
		two[0].iov_base = buf;
		two[0].iov_len = split;
		two[1].iov_base = buf + split;
		two[1].iov_len = len - split;
		memset(&req.u, 0, sizeof(req.u));
		assert_int_equal(p9_decode(two, 2, 8192, &req, &tag_ok), 0);
		assert_int_equal(req.u.setattr.gid, 1001);
		assert_int_equal(req.u.setattr.atime_sec, 1);
	}
}

static void body_walk3(struct p9_cur *c)
{
	p9_put_u32(c, 1);
	p9_put_u32(c, 2);
	p9_put_u16(c, 3);
	p9_put_str(c, "a", 1);
	p9_put_str(c, "bcd", 3);
	p9_put_str(c, "..", 2);
}

static void body_walk17(struct p9_cur *c)
{
	int i;

	p9_put_u32(c, 1);
	p9_put_u32(c, 2);
	p9_put_u16(c, 17);
	for (i = 0; i < 17; i++)
		p9_put_str(c, "x", 1);
}

static void walk_names(void **state)
{
	uint8_t buf[512];
	struct iovec iov = { buf, 0 };
	bool tag_ok;

	(void)state;
	iov.iov_len = build(buf, sizeof(buf), P9_TWALK, 1, body_walk3);
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), 0);
	assert_int_equal(req.u.walk.nwname, 3);
	assert_string_equal(req.u.walk.wname[0], "a");
	assert_string_equal(req.u.walk.wname[1], "bcd");
	assert_string_equal(req.u.walk.wname[2], "..");
	iov.iov_len = build(buf, sizeof(buf), P9_TWALK, 1, body_walk17);
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EINVAL);
	assert_true(tag_ok);
	/* Every truncation of a good message is caught. */
	iov.iov_len = build(buf, sizeof(buf), P9_TWALK, 1, body_walk3);
	while (--iov.iov_len >= P9_HDR_SIZE)
		assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok),
				 -EPROTO);
	/* ...and so is a size[4] that cuts a string short. */
	iov.iov_len = build(buf, sizeof(buf), P9_TWALK, 1, body_walk3);
	buf[0] -= 1;
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EPROTO);
}

static void strings(void **state)
{
	uint8_t buf[8192];
	char out[300];
	struct iovec iov = { buf, sizeof(buf) };
	struct p9_cur c;

	(void)state;
	/* len > max: ENAMETOOLONG, the cursor skips it. */
	p9_cur_init(&c, &iov, 1, sizeof(buf));
	p9_put_u16(&c, 256);
	memset(buf + 2, 'a', 256);
	p9_cur_init(&c, &iov, 1, 258);
	assert_int_equal(p9_get_str(&c, out, 255), -ENAMETOOLONG);
	assert_false(c.overflow);
	assert_int_equal(c.left, 0);
	/* exactly max */
	p9_cur_init(&c, &iov, 1, 258);
	assert_int_equal(p9_get_str(&c, out, 256), 0);
	assert_int_equal(strlen(out), 256);
	/* past the limit */
	p9_cur_init(&c, &iov, 1, 100);
	assert_int_equal(p9_get_str(&c, out, 299), -EPROTO);
	assert_true(c.overflow);
	/* an embedded NUL */
	buf[10] = 0;
	p9_cur_init(&c, &iov, 1, 258);
	assert_int_equal(p9_get_str(&c, out, 299), -EINVAL);
	/* a short length field */
	p9_cur_init(&c, &iov, 1, 1);
	assert_int_equal(p9_get_str(&c, out, 299), -EPROTO);
}

static uint32_t g_count;

static void body_read(struct p9_cur *c)
{
	p9_put_u32(c, 1);
	p9_put_u64(c, 0);
	p9_put_u32(c, g_count);
}

static void body_write(struct p9_cur *c)
{
	p9_put_u32(c, 1);
	p9_put_u64(c, 77);
	p9_put_u32(c, g_count);
	p9_put_bytes(c, "payload!", 8);
}

static void sizes_and_counts(void **state)
{
	uint8_t buf[128], big[16];
	struct iovec iov = { buf, 0 }, out[4];
	unsigned int n;
	bool tag_ok;
	char data[9] = { 0 };

	(void)state;
	/* header only partly there */
	iov.iov_len = 6;
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EPROTO);
	assert_false(tag_ok);
	/* count over msize */
	g_count = 8193;
	iov.iov_len = build(buf, sizeof(buf), P9_TREAD, 5, body_read);
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EINVAL);
	g_count = 8192;
	iov.iov_len = build(buf, sizeof(buf), P9_TREADDIR, 5, body_read);
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), 0);
	/* size over msize */
	assert_int_equal(p9_decode(&iov, 1, 20, &req, &tag_ok), -EMSGSIZE);
	/* size under a header, over the bytes there */
	buf[0] = 6;
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EPROTO);
	buf[0] = 200;
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EPROTO);
	/* Twrite: count must be within the message */
	g_count = 8;
	iov.iov_len = build(buf, sizeof(buf), P9_TWRITE, 5, body_write);
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), 0);
	assert_int_equal(req.u.write.count, 8);
	assert_int_equal(req.u.write.offset, 77);
	assert_int_equal(p9_cur_iov(&req.u.write.data, 8, out, 4, &n), 8);
	assert_int_equal(n, 1);
	memcpy(data, out[0].iov_base, 8);
	assert_string_equal(data, "payload!");
	g_count = 9;
	iov.iov_len = build(buf, sizeof(buf), P9_TWRITE, 5, body_write);
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EPROTO);
	/* Bytes beyond size[4] in the buffer are not the message's. */
	g_count = 8;
	iov.iov_len = build(buf, sizeof(buf), P9_TWRITE, 5, body_write);
	buf[0] -= 1;
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EPROTO);
	/* unknown type */
	memset(big, 0, sizeof(big));
	big[0] = 16;
	big[4] = 99;
	iov.iov_base = big;
	iov.iov_len = 16;
	assert_int_equal(p9_decode(&iov, 1, 8192, &req, &tag_ok), -EOPNOTSUPP);
	assert_true(tag_ok);
}

static void encoder(void **state)
{
	uint8_t a[5], b[3], c2[100];
	struct iovec iov[3] = { { a, 5 }, { b, 3 }, { c2, 100 } }, pieces[3];
	struct p9_cur c;
	struct p9_qid q = { P9_QTDIR, 0x01020304, 0x1122334455667788ULL };
	unsigned int n;

	(void)state;
	/* A reply spread over iovecs. */
	p9_cur_init(&c, iov, 3, 108);
	p9_reply_begin(&c, P9_RATTACH, 0x4455);
	p9_put_qid(&c, &q);
	assert_int_equal(p9_reply_end(&c), 20);
	assert_int_equal(a[0], 20);
	assert_int_equal(a[4], P9_RATTACH);
	assert_int_equal(b[0], 0x55);
	assert_int_equal(b[1], 0x44);
	assert_int_equal(b[2], P9_QTDIR);
	assert_int_equal(c2[0], 0x04);
	assert_int_equal(c2[11], 0x11);
	/* The limit holds: overflow latches and the reply is refused. */
	p9_cur_init(&c, iov, 3, 19);
	p9_reply_begin(&c, P9_RATTACH, 1);
	p9_put_qid(&c, &q);
	assert_true(c.overflow);
	assert_int_equal(p9_reply_end(&c), 0);
	/* Rlerror needs 11 bytes. */
	assert_int_equal(p9_encode_rlerror(iov, 3, 10, 7, EIO), 0);
	assert_int_equal(p9_encode_rlerror(iov, 3, 11, 7, EIO), 11);
	assert_int_equal(a[4], P9_RLERROR);
	assert_int_equal(b[1], 0);
	assert_int_equal(b[2], EIO); /* ecode[4] straddles b and c2 */
	assert_int_equal(c2[0], 0);
	/* Pieces for preadv: cut at the limit and at max pieces. */
	p9_cur_init(&c, iov, 3, 50);
	p9_cur_skip(&c, 3);
	assert_int_equal(p9_cur_iov(&c, 1000, pieces, 3, &n), 47);
	assert_int_equal(n, 3);
	assert_ptr_equal(pieces[0].iov_base, a + 3);
	assert_int_equal(pieces[0].iov_len, 2);
	assert_int_equal(pieces[2].iov_len, 42);
	assert_int_equal(p9_cur_iov(&c, 1000, pieces, 2, &n), 5);
	/* Strings over 65535 bytes cannot be encoded. */
	p9_cur_init(&c, iov, 3, 108);
	p9_put_str(&c, (const char *)c2, 70000);
	assert_true(c.overflow);
	assert_int_equal(p9_iov_size(iov, 3), 108);
}

static void every_type_truncated(void **state)
{
	/* Each known T-type with a body of zeroes cut at every length. */
	static const uint8_t types[] = {
		P9_TSTATFS,  P9_TLOPEN,	    P9_TLCREATE,     P9_TSYMLINK,
		P9_TMKNOD,   P9_TRENAME,    P9_TREADLINK,    P9_TGETATTR,
		P9_TSETATTR, P9_TXATTRWALK, P9_TXATTRCREATE, P9_TREADDIR,
		P9_TFSYNC,   P9_TLOCK,	    P9_TGETLOCK,     P9_TLINK,
		P9_TMKDIR,   P9_TRENAMEAT,  P9_TUNLINKAT,    P9_TVERSION,
		P9_TAUTH,    P9_TATTACH,    P9_TFLUSH,	     P9_TWALK,
		P9_TREAD,    P9_TWRITE,	    P9_TCLUNK,	     P9_TREMOVE,
	};
	uint8_t buf[128];
	struct iovec iov = { buf, 0 };
	unsigned int i, len, ok;
	bool tag_ok;

	(void)state;
	for (i = 0; i < sizeof(types); i++) {
		ok = 0;
		for (len = P9_HDR_SIZE; len <= sizeof(buf); len++) {
			memset(buf, 0, sizeof(buf));
			buf[0] = (uint8_t)len;
			buf[4] = types[i];
			iov.iov_len = len;
			if (p9_decode(&iov, 1, 8192, &req, &tag_ok) == 0)
				ok++;
			else
				assert_int_equal(ok, 0);
		}
		/* Some length is the right one (and all longer ones parse). */
		assert_true(ok > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fields_across_iovecs),
		cmocka_unit_test(walk_names),
		cmocka_unit_test(strings),
		cmocka_unit_test(sizes_and_counts),
		cmocka_unit_test(encoder),
		cmocka_unit_test(every_type_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
