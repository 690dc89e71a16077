/*
 * 9P2000.L encoding and decoding over iovecs (see p9_codec.h). Every read
 * of a request goes through the cursor, which never moves past its limit:
 * the limit is size[4] once the header is checked, so no field is ever
 * taken from beyond the message or the buffers that hold it. Decoders read
 * all their fields and look at the latched overflow once at the end.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "p9/p9_codec.h"

size_t p9_iov_size(const struct iovec *iov, unsigned int cnt)
{
	size_t total = 0;
	unsigned int i;

	for (i = 0; i < cnt; i++) {
		if (iov[i].iov_len > SIZE_MAX - total)
			return SIZE_MAX;
		total += iov[i].iov_len;
	}
	return total;
}

void p9_cur_init(struct p9_cur *c, const struct iovec *iov, unsigned int cnt,
		 size_t limit)
{
	size_t total = p9_iov_size(iov, cnt);

	c->iov = iov;
	c->cnt = cnt;
	c->idx = 0;
	c->off = 0;
	c->pos = 0;
	c->left = limit < total ? limit : total;
	c->overflow = false;
}

/* Copy @len bytes between @buf and the iovecs at @c, advancing @c. */
static void cur_copy(struct p9_cur *c, void *buf, size_t len, bool to_iov)
{
	uint8_t *p = buf;

	if (c->overflow || len > c->left) {
		c->overflow = true;
		return;
	}
	c->left -= len;
	c->pos += len;
	while (len) {
		const struct iovec *v = &c->iov[c->idx];
		size_t n = v->iov_len - c->off;

		if (n == 0) {
			c->idx++;
			c->off = 0;
			continue;
		}
		if (n > len)
			n = len;
		if (buf) {
			if (to_iov)
				memcpy((uint8_t *)v->iov_base + c->off, p, n);
			else
				memcpy(p, (uint8_t *)v->iov_base + c->off, n);
			p += n;
		}
		c->off += n;
		len -= n;
	}
}

void p9_cur_skip(struct p9_cur *c, size_t len)
{
	cur_copy(c, NULL, len, false);
}

void p9_get_bytes(struct p9_cur *c, void *buf, size_t len)
{
	if (c->overflow || len > c->left) {
		c->overflow = true;
		memset(buf, 0, len);
		return;
	}
	cur_copy(c, buf, len, false);
}

void p9_put_bytes(struct p9_cur *c, const void *buf, size_t len)
{
	cur_copy(c, (void *)buf, len, true);
}

uint8_t p9_get_u8(struct p9_cur *c)
{
	uint8_t b;

	p9_get_bytes(c, &b, 1);
	return b;
}

uint16_t p9_get_u16(struct p9_cur *c)
{
	uint8_t b[2];

	p9_get_bytes(c, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

uint32_t p9_get_u32(struct p9_cur *c)
{
	uint8_t b[4];

	p9_get_bytes(c, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

uint64_t p9_get_u64(struct p9_cur *c)
{
	uint64_t lo = p9_get_u32(c);

	return lo | (uint64_t)p9_get_u32(c) << 32;
}

int p9_get_str(struct p9_cur *c, char *dst, size_t max)
{
	uint16_t len = p9_get_u16(c);

	dst[0] = '\0';
	if (c->overflow || len > c->left) {
		c->overflow = true;
		return -EPROTO;
	}
	if (len > max) {
		p9_cur_skip(c, len);
		return -ENAMETOOLONG;
	}
	p9_get_bytes(c, dst, len);
	dst[len] = '\0';
	if (memchr(dst, '\0', len))
		return -EINVAL;
	return 0;
}

void p9_put_u8(struct p9_cur *c, uint8_t v)
{
	p9_put_bytes(c, &v, 1);
}

void p9_put_u16(struct p9_cur *c, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	p9_put_bytes(c, b, 2);
}

void p9_put_u32(struct p9_cur *c, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };

	p9_put_bytes(c, b, 4);
}

void p9_put_u64(struct p9_cur *c, uint64_t v)
{
	p9_put_u32(c, (uint32_t)v);
	p9_put_u32(c, (uint32_t)(v >> 32));
}

void p9_put_str(struct p9_cur *c, const char *s, size_t len)
{
	if (len > UINT16_MAX) {
		c->overflow = true;
		return;
	}
	p9_put_u16(c, (uint16_t)len);
	p9_put_bytes(c, s, len);
}

void p9_put_qid(struct p9_cur *c, const struct p9_qid *q)
{
	p9_put_u8(c, q->type);
	p9_put_u32(c, q->version);
	p9_put_u64(c, q->path);
}

size_t p9_cur_iov(const struct p9_cur *c, size_t len, struct iovec *out,
		  unsigned int max, unsigned int *n)
{
	unsigned int idx = c->idx, k = 0;
	size_t off = c->off, done = 0;

	if (c->overflow)
		len = 0;
	if (len > c->left)
		len = c->left;
	while (done < len && idx < c->cnt && k < max) {
		size_t avail = c->iov[idx].iov_len - off;

		if (avail == 0) {
			idx++;
			off = 0;
			continue;
		}
		if (avail > len - done)
			avail = len - done;
		out[k].iov_base = (uint8_t *)c->iov[idx].iov_base + off;
		out[k].iov_len = avail;
		k++;
		done += avail;
		off += avail;
	}
	*n = k;
	return done;
}

void p9_iov_put_u32_at(const struct iovec *iov, unsigned int cnt, size_t pos,
		       uint32_t v)
{
	struct p9_cur c;

	p9_cur_init(&c, iov, cnt, SIZE_MAX);
	p9_cur_skip(&c, pos);
	p9_put_u32(&c, v);
}

/* Hands out pieces of the request's string arena. */
struct arena {
	char *p;
	size_t left;
	int err;
};

static const char *get_str(struct p9_cur *c, struct arena *a, size_t max)
{
	char *dst = a->p;
	int ret;

	if (a->left < max + 1) {
		/* Cannot happen with the arena sized for the largest message. */
		a->err = a->err ? a->err : -EPROTO;
		c->overflow = true;
		return "";
	}
	ret = p9_get_str(c, dst, max);
	if (ret < 0) {
		if (!a->err)
			a->err = ret;
		return "";
	}
	a->p += strlen(dst) + 1;
	a->left -= strlen(dst) + 1;
	return dst;
}

static int decode_walk(struct p9_cur *c, struct arena *a, struct p9_req *r)
{
	unsigned int i;

	r->u.walk.fid = p9_get_u32(c);
	r->u.walk.newfid = p9_get_u32(c);
	r->u.walk.nwname = p9_get_u16(c);
	if (c->overflow)
		return -EPROTO;
	if (r->u.walk.nwname > P9_MAXWELEM)
		return -EINVAL;
	for (i = 0; i < r->u.walk.nwname; i++)
		r->u.walk.wname[i] = get_str(c, a, P9_NAME_MAX);
	return 0;
}

static void decode_lock(struct p9_cur *c, struct arena *a, struct p9_req *r,
			bool has_flags)
{
	r->u.lock.fid = p9_get_u32(c);
	r->u.lock.type = p9_get_u8(c);
	r->u.lock.flags = has_flags ? p9_get_u32(c) : 0;
	r->u.lock.start = p9_get_u64(c);
	r->u.lock.length = p9_get_u64(c);
	r->u.lock.proc_id = p9_get_u32(c);
	r->u.lock.client_id = get_str(c, a, P9_STR_MAX);
}

/* The body of @r->type; -EOPNOTSUPP for types a client never sends. */
static int decode_body(struct p9_cur *c, struct arena *a, uint32_t msize,
		       struct p9_req *r)
{
	int ret = 0;

	switch (r->type) {
	case P9_TVERSION:
		r->u.version.msize = p9_get_u32(c);
		r->u.version.version = get_str(c, a, P9_STR_MAX);
		break;
	case P9_TAUTH:
		r->u.attach.afid = p9_get_u32(c);
		r->u.attach.fid = r->u.attach.afid;
		r->u.attach.uname = get_str(c, a, P9_STR_MAX);
		r->u.attach.aname = get_str(c, a, P9_STR_MAX);
		r->u.attach.n_uname = p9_get_u32(c);
		break;
	case P9_TATTACH:
		r->u.attach.fid = p9_get_u32(c);
		r->u.attach.afid = p9_get_u32(c);
		r->u.attach.uname = get_str(c, a, P9_STR_MAX);
		r->u.attach.aname = get_str(c, a, P9_STR_MAX);
		r->u.attach.n_uname = p9_get_u32(c);
		break;
	case P9_TFLUSH:
		r->u.flush.oldtag = p9_get_u16(c);
		break;
	case P9_TWALK:
		ret = decode_walk(c, a, r);
		break;
	case P9_TSTATFS:
	case P9_TREADLINK:
	case P9_TCLUNK:
	case P9_TREMOVE:
		r->u.fid.fid = p9_get_u32(c);
		break;
	case P9_TLOPEN:
		r->u.lopen.fid = p9_get_u32(c);
		r->u.lopen.flags = p9_get_u32(c);
		break;
	case P9_TLCREATE:
		r->u.lcreate.fid = p9_get_u32(c);
		r->u.lcreate.name = get_str(c, a, P9_NAME_MAX);
		r->u.lcreate.flags = p9_get_u32(c);
		r->u.lcreate.mode = p9_get_u32(c);
		r->u.lcreate.gid = p9_get_u32(c);
		break;
	case P9_TSYMLINK:
		r->u.symlink.fid = p9_get_u32(c);
		r->u.symlink.name = get_str(c, a, P9_NAME_MAX);
		r->u.symlink.target = get_str(c, a, P9_PATH_MAX);
		r->u.symlink.gid = p9_get_u32(c);
		break;
	case P9_TMKNOD:
		r->u.mknod.dfid = p9_get_u32(c);
		r->u.mknod.name = get_str(c, a, P9_NAME_MAX);
		r->u.mknod.mode = p9_get_u32(c);
		r->u.mknod.major = p9_get_u32(c);
		r->u.mknod.minor = p9_get_u32(c);
		r->u.mknod.gid = p9_get_u32(c);
		break;
	case P9_TRENAME:
		r->u.rename.fid = p9_get_u32(c);
		r->u.rename.dfid = p9_get_u32(c);
		r->u.rename.name = get_str(c, a, P9_NAME_MAX);
		break;
	case P9_TGETATTR:
		r->u.getattr.fid = p9_get_u32(c);
		r->u.getattr.mask = p9_get_u64(c);
		break;
	case P9_TSETATTR:
		r->u.setattr.fid = p9_get_u32(c);
		r->u.setattr.valid = p9_get_u32(c);
		r->u.setattr.mode = p9_get_u32(c);
		r->u.setattr.uid = p9_get_u32(c);
		r->u.setattr.gid = p9_get_u32(c);
		r->u.setattr.size = p9_get_u64(c);
		r->u.setattr.atime_sec = p9_get_u64(c);
		r->u.setattr.atime_nsec = p9_get_u64(c);
		r->u.setattr.mtime_sec = p9_get_u64(c);
		r->u.setattr.mtime_nsec = p9_get_u64(c);
		break;
	case P9_TXATTRWALK:
		r->u.xattrwalk.fid = p9_get_u32(c);
		r->u.xattrwalk.newfid = p9_get_u32(c);
		r->u.xattrwalk.name = get_str(c, a, P9_XATTR_NAME_MAX);
		break;
	case P9_TXATTRCREATE:
		r->u.xattrcreate.fid = p9_get_u32(c);
		r->u.xattrcreate.name = get_str(c, a, P9_XATTR_NAME_MAX);
		r->u.xattrcreate.size = p9_get_u64(c);
		r->u.xattrcreate.flags = p9_get_u32(c);
		break;
	case P9_TREAD:
	case P9_TREADDIR:
		r->u.read.fid = p9_get_u32(c);
		r->u.read.offset = p9_get_u64(c);
		r->u.read.count = p9_get_u32(c);
		if (!c->overflow && r->u.read.count > msize)
			ret = -EINVAL;
		break;
	case P9_TWRITE:
		r->u.write.fid = p9_get_u32(c);
		r->u.write.offset = p9_get_u64(c);
		r->u.write.count = p9_get_u32(c);
		if (c->overflow)
			break;
		/* The payload must be inside the message: size[4] bounds c. */
		if (r->u.write.count > c->left)
			return -EPROTO;
		r->u.write.data = *c;
		r->u.write.data.left = r->u.write.count;
		p9_cur_skip(c, r->u.write.count);
		break;
	case P9_TFSYNC:
		r->u.fsync.fid = p9_get_u32(c);
		r->u.fsync.datasync = c->left >= 4 ? p9_get_u32(c) : 0;
		break;
	case P9_TLOCK:
		decode_lock(c, a, r, true);
		break;
	case P9_TGETLOCK:
		decode_lock(c, a, r, false);
		break;
	case P9_TLINK:
		r->u.link.dfid = p9_get_u32(c);
		r->u.link.fid = p9_get_u32(c);
		r->u.link.name = get_str(c, a, P9_NAME_MAX);
		break;
	case P9_TMKDIR:
		r->u.mkdir.dfid = p9_get_u32(c);
		r->u.mkdir.name = get_str(c, a, P9_NAME_MAX);
		r->u.mkdir.mode = p9_get_u32(c);
		r->u.mkdir.gid = p9_get_u32(c);
		break;
	case P9_TRENAMEAT:
		r->u.renameat.olddirfid = p9_get_u32(c);
		r->u.renameat.oldname = get_str(c, a, P9_NAME_MAX);
		r->u.renameat.newdirfid = p9_get_u32(c);
		r->u.renameat.newname = get_str(c, a, P9_NAME_MAX);
		break;
	case P9_TUNLINKAT:
		r->u.unlinkat.dirfid = p9_get_u32(c);
		r->u.unlinkat.name = get_str(c, a, P9_NAME_MAX);
		r->u.unlinkat.flags = p9_get_u32(c);
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (ret)
		return ret;
	if (c->overflow)
		return -EPROTO;
	return a->err;
}

int p9_decode(const struct iovec *iov, unsigned int cnt, uint32_t msize,
	      struct p9_req *req, bool *tag_ok)
{
	struct arena a = { req->arena, sizeof(req->arena), 0 };
	size_t have = p9_iov_size(iov, cnt);
	struct p9_cur c;

	*tag_ok = false;
	p9_cur_init(&c, iov, cnt, P9_HDR_SIZE);
	req->size = p9_get_u32(&c);
	req->type = p9_get_u8(&c);
	req->tag = p9_get_u16(&c);
	if (c.overflow)
		return -EPROTO;
	*tag_ok = true;
	if (req->size < P9_HDR_SIZE || req->size > have)
		return -EPROTO;
	if (req->size > msize)
		return -EMSGSIZE;
	/* From here on the cursor is bounded by size[4]. */
	c.left = req->size - P9_HDR_SIZE;
	return decode_body(&c, &a, msize, req);
}

void p9_reply_begin(struct p9_cur *c, uint8_t type, uint16_t tag)
{
	p9_put_u32(c, 0);
	p9_put_u8(c, type);
	p9_put_u16(c, tag);
}

size_t p9_reply_end(struct p9_cur *c)
{
	if (c->overflow || c->pos > UINT32_MAX)
		return 0;
	p9_iov_put_u32_at(c->iov, c->cnt, 0, (uint32_t)c->pos);
	return c->pos;
}

size_t p9_encode_rlerror(const struct iovec *iov, unsigned int cnt,
			 size_t limit, uint16_t tag, uint32_t ecode)
{
	struct p9_cur c;

	p9_cur_init(&c, iov, cnt, limit);
	if (c.left < P9_RLERROR_SIZE)
		return 0;
	p9_reply_begin(&c, P9_RLERROR, tag);
	p9_put_u32(&c, ecode);
	return p9_reply_end(&c);
}
