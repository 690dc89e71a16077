/*
 * 9P2000.L messages: the one place where the sizes, counts and string
 * lengths of a request are checked against the bytes that carry it.
 *
 * A request arrives scattered over iovecs (a virtqueue chain, a test's
 * buffer). p9_decode() reads its header, checks size[4] against the bytes
 * present and the negotiated msize, then decodes the body of each known
 * T-message into struct p9_req: integers by value, strings copied
 * NUL-terminated into the request's own arena (each with its own maximum
 * length, no embedded NULs), Twrite's payload left in place as a cursor
 * (struct p9_cur) over the request's iovecs. Bytes after the fields of a
 * message are ignored (Tfsync's datasync[4] is optional: old clients do
 * not send it).
 *
 * Replies are encoded straight into the response iovecs through the same
 * cursor: every put checks the space left and latches an overflow flag, so
 * a handler writes its fields and checks once. Bulk data (Rread) goes in
 * through p9_cur_iov(), which hands out the iovec pieces of the next bytes
 * for preadv()/pwritev().
 *
 * Wire format (little-endian) from the 9P2000.L description in
 * Linux's Documentation/filesystems/9p.rst and include/net/9p/9p.h.
 */
#ifndef KHYVE_P9_P9_CODEC_H
#define KHYVE_P9_P9_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/log.h"

/* Message types (9P2000.L and the 9P2000 ones .L keeps). */
enum p9_msg_type {
	P9_TLERROR = 6,
	P9_RLERROR,
	P9_TSTATFS = 8,
	P9_RSTATFS,
	P9_TLOPEN = 12,
	P9_RLOPEN,
	P9_TLCREATE = 14,
	P9_RLCREATE,
	P9_TSYMLINK = 16,
	P9_RSYMLINK,
	P9_TMKNOD = 18,
	P9_RMKNOD,
	P9_TRENAME = 20,
	P9_RRENAME,
	P9_TREADLINK = 22,
	P9_RREADLINK,
	P9_TGETATTR = 24,
	P9_RGETATTR,
	P9_TSETATTR = 26,
	P9_RSETATTR,
	P9_TXATTRWALK = 30,
	P9_RXATTRWALK,
	P9_TXATTRCREATE = 32,
	P9_RXATTRCREATE,
	P9_TREADDIR = 40,
	P9_RREADDIR,
	P9_TFSYNC = 50,
	P9_RFSYNC,
	P9_TLOCK = 52,
	P9_RLOCK,
	P9_TGETLOCK = 54,
	P9_RGETLOCK,
	P9_TLINK = 70,
	P9_RLINK,
	P9_TMKDIR = 72,
	P9_RMKDIR,
	P9_TRENAMEAT = 74,
	P9_RRENAMEAT,
	P9_TUNLINKAT = 76,
	P9_RUNLINKAT,
	P9_TVERSION = 100,
	P9_RVERSION,
	P9_TAUTH = 102,
	P9_RAUTH,
	P9_TATTACH = 104,
	P9_RATTACH,
	P9_TFLUSH = 108,
	P9_RFLUSH,
	P9_TWALK = 110,
	P9_RWALK,
	P9_TREAD = 116,
	P9_RREAD,
	P9_TWRITE = 118,
	P9_RWRITE,
	P9_TCLUNK = 120,
	P9_RCLUNK,
	P9_TREMOVE = 122,
	P9_RREMOVE,
};

#define P9_NOTAG 0xffffU
#define P9_NOFID 0xffffffffU
/* size[4] type[1] tag[2] */
#define P9_HDR_SIZE 7
/* Rlerror: header + ecode[4]; also Rread's header + count[4]. */
#define P9_RLERROR_SIZE 11
#define P9_MAXWELEM 16
#define P9_QID_SIZE 13
/* The largest msize negotiated, and the smallest accepted (Linux's own floor). */
#define P9_MSIZE_MAX (512U * 1024)
#define P9_MSIZE_MIN 4096U

/* String limits: a path component, a path, an xattr name, anything else. */
#define P9_NAME_MAX 255
#define P9_PATH_MAX 4095
#define P9_XATTR_NAME_MAX 255
#define P9_STR_MAX 4095

/* qid.type */
#define P9_QTDIR 0x80
#define P9_QTAPPEND 0x40
#define P9_QTEXCL 0x20
#define P9_QTSYMLINK 0x02
#define P9_QTFILE 0x00

/* Tlopen/Tlcreate flags (P9_DOTL_*: Linux's x86 open flags). */
#define P9_DOTL_RDONLY 00000000
#define P9_DOTL_WRONLY 00000001
#define P9_DOTL_RDWR 00000002
#define P9_DOTL_NOACCESS 00000003
#define P9_DOTL_ACCMODE 00000003
#define P9_DOTL_CREATE 00000100
#define P9_DOTL_EXCL 00000200
#define P9_DOTL_NOCTTY 00000400
#define P9_DOTL_TRUNC 00001000
#define P9_DOTL_APPEND 00002000
#define P9_DOTL_NONBLOCK 00004000
#define P9_DOTL_DSYNC 00010000
#define P9_DOTL_FASYNC 00020000
#define P9_DOTL_DIRECT 00040000
#define P9_DOTL_LARGEFILE 00100000
#define P9_DOTL_DIRECTORY 00200000
#define P9_DOTL_NOFOLLOW 00400000
#define P9_DOTL_NOATIME 01000000
#define P9_DOTL_CLOEXEC 02000000
#define P9_DOTL_SYNC 04000000

/* Tgetattr request_mask / Rgetattr valid. */
#define P9_GETATTR_MODE 0x00000001ULL
#define P9_GETATTR_NLINK 0x00000002ULL
#define P9_GETATTR_UID 0x00000004ULL
#define P9_GETATTR_GID 0x00000008ULL
#define P9_GETATTR_RDEV 0x00000010ULL
#define P9_GETATTR_ATIME 0x00000020ULL
#define P9_GETATTR_MTIME 0x00000040ULL
#define P9_GETATTR_CTIME 0x00000080ULL
#define P9_GETATTR_INO 0x00000100ULL
#define P9_GETATTR_SIZE 0x00000200ULL
#define P9_GETATTR_BLOCKS 0x00000400ULL
#define P9_GETATTR_BASIC 0x000007ffULL

/* Tsetattr valid. */
#define P9_SETATTR_MODE 0x00000001U
#define P9_SETATTR_UID 0x00000002U
#define P9_SETATTR_GID 0x00000004U
#define P9_SETATTR_SIZE 0x00000008U
#define P9_SETATTR_ATIME 0x00000010U
#define P9_SETATTR_MTIME 0x00000020U
#define P9_SETATTR_CTIME 0x00000040U
#define P9_SETATTR_ATIME_SET 0x00000080U
#define P9_SETATTR_MTIME_SET 0x00000100U

/* Tunlinkat flags. */
#define P9_DOTL_AT_REMOVEDIR 0x200

/* Tlock/Tgetlock. */
#define P9_LOCK_TYPE_RDLCK 0
#define P9_LOCK_TYPE_WRLCK 1
#define P9_LOCK_TYPE_UNLCK 2
#define P9_LOCK_FLAGS_BLOCK 1
#define P9_LOCK_FLAGS_RECLAIM 2
#define P9_LOCK_SUCCESS 0
#define P9_LOCK_BLOCKED 1
#define P9_LOCK_ERROR 2
#define P9_LOCK_GRACE 3

/* Txattrcreate flags (as setxattr(2)'s). */
#define P9_XATTR_CREATE 1
#define P9_XATTR_REPLACE 2

struct p9_qid {
	uint8_t type;
	uint32_t version;
	uint64_t path;
};

/*
 * A position in a list of iovecs, with a limit: never reads or writes past
 * @left bytes. Any access that does not fit latches @overflow and does
 * nothing.
 */
struct p9_cur {
	const struct iovec *iov;
	unsigned int cnt;
	unsigned int idx; /* current iovec */
	size_t off; /* offset in iov[idx] */
	size_t pos; /* bytes consumed since p9_cur_init() */
	size_t left; /* bytes that may still be consumed */
	bool overflow;
};

/* Start at the first byte of @iov; at most @limit bytes (SIZE_MAX: all). */
void p9_cur_init(struct p9_cur *c, const struct iovec *iov, unsigned int cnt,
		 size_t limit);
/* Total bytes in @cnt iovecs (saturating). */
size_t p9_iov_size(const struct iovec *iov, unsigned int cnt);

/* Little-endian integers; 0 (and overflow latched) past the limit. */
uint8_t p9_get_u8(struct p9_cur *c);
uint16_t p9_get_u16(struct p9_cur *c);
uint32_t p9_get_u32(struct p9_cur *c);
uint64_t p9_get_u64(struct p9_cur *c);
/*
 * string[s]: len[2] then bytes. Copies into @dst (@max bytes + NUL) and
 * returns 0; -ENAMETOOLONG when longer than @max, -EINVAL when it holds a
 * NUL byte, -EPROTO when it runs past the end (also latched in @c).
 */
int p9_get_str(struct p9_cur *c, char *dst, size_t max) __must_check;

/* Little-endian integers; nothing written (overflow latched) past the limit. */
void p9_put_u8(struct p9_cur *c, uint8_t v);
void p9_put_u16(struct p9_cur *c, uint16_t v);
void p9_put_u32(struct p9_cur *c, uint32_t v);
void p9_put_u64(struct p9_cur *c, uint64_t v);
/* string[s] of @len bytes (len <= 65535, else overflow). */
void p9_put_str(struct p9_cur *c, const char *s, size_t len);
/* qid[13]: type[1] version[4] path[8]. */
void p9_put_qid(struct p9_cur *c, const struct p9_qid *q);
/* Copy @len bytes in (put) or out (get). */
void p9_put_bytes(struct p9_cur *c, const void *buf, size_t len);
void p9_get_bytes(struct p9_cur *c, void *buf, size_t len);

/*
 * Describe the next @len bytes at @c as up to @max iovecs in @out, without
 * moving @c; returns how many bytes they cover (less than @len when @c has
 * less room or @max iovecs are too few) and sets *@n.
 */
size_t p9_cur_iov(const struct p9_cur *c, size_t len, struct iovec *out,
		  unsigned int max, unsigned int *n);
/* Move @c forward @len bytes (overflow if it has not that many). */
void p9_cur_skip(struct p9_cur *c, size_t len);
/* Write @v little-endian at byte @pos of the iovecs (for size and count). */
void p9_iov_put_u32_at(const struct iovec *iov, unsigned int cnt, size_t pos,
		       uint32_t v);

/* A decoded T-message. Strings point into @arena. */
struct p9_req {
	uint32_t size;
	uint8_t type;
	uint16_t tag;
	union {
		struct {
			uint32_t msize;
			const char *version;
		} version;
		struct { /* Tattach and Tauth (fid is Tauth's afid) */
			uint32_t fid, afid;
			const char *uname, *aname;
			uint32_t n_uname;
		} attach;
		struct {
			uint16_t oldtag;
		} flush;
		struct {
			uint32_t fid, newfid;
			uint16_t nwname;
			const char *wname[P9_MAXWELEM];
		} walk;
		struct { /* Tstatfs, Treadlink, Tclunk, Tremove */
			uint32_t fid;
		} fid;
		struct {
			uint32_t fid, flags;
		} lopen;
		struct {
			uint32_t fid;
			const char *name;
			uint32_t flags, mode, gid;
		} lcreate;
		struct {
			uint32_t fid;
			const char *name, *target;
			uint32_t gid;
		} symlink;
		struct {
			uint32_t dfid;
			const char *name;
			uint32_t mode, major, minor, gid;
		} mknod;
		struct {
			uint32_t fid, dfid;
			const char *name;
		} rename;
		struct {
			uint32_t fid;
			uint64_t mask;
		} getattr;
		struct {
			uint32_t fid, valid, mode, uid, gid;
			uint64_t size, atime_sec, atime_nsec, mtime_sec,
				mtime_nsec;
		} setattr;
		struct {
			uint32_t fid, newfid;
			const char *name;
		} xattrwalk;
		struct {
			uint32_t fid;
			const char *name;
			uint64_t size;
			uint32_t flags;
		} xattrcreate;
		struct { /* Tread and Treaddir */
			uint32_t fid;
			uint64_t offset;
			uint32_t count;
		} read;
		struct {
			uint32_t fid;
			uint64_t offset;
			uint32_t count;
			struct p9_cur data; /* exactly count bytes */
		} write;
		struct {
			uint32_t fid, datasync;
		} fsync;
		struct { /* Tlock and Tgetlock (no flags) */
			uint32_t fid;
			uint8_t type;
			uint32_t flags;
			uint64_t start, length;
			uint32_t proc_id;
			const char *client_id;
		} lock;
		struct {
			uint32_t dfid, fid;
			const char *name;
		} link;
		struct {
			uint32_t dfid;
			const char *name;
			uint32_t mode, gid;
		} mkdir;
		struct {
			uint32_t olddirfid;
			const char *oldname;
			uint32_t newdirfid;
			const char *newname;
		} renameat;
		struct {
			uint32_t dirfid;
			const char *name;
			uint32_t flags;
		} unlinkat;
	} u;
	/* Room for every string of any one message. */
	char arena[P9_MAXWELEM * (P9_NAME_MAX + 1) + 2 * (P9_STR_MAX + 1)];
};

/*
 * Decode the request in @iov. @msize bounds size[4] (P9_MSIZE_MAX before a
 * Tversion). Returns 0, or -errno with *@tag_ok telling whether
 * req->type and req->tag were read (so that an Rlerror can carry the tag):
 * -EPROTO truncated message or bad size[4], -EMSGSIZE size over @msize,
 * -EINVAL bad field (nwname > 16, count over msize, NUL in a string),
 * -ENAMETOOLONG a string over its limit, -EOPNOTSUPP unknown type.
 */
int p9_decode(const struct iovec *iov, unsigned int cnt, uint32_t msize,
	      struct p9_req *req, bool *tag_ok) __must_check;

/* Start a reply of @type for @tag at the start of @c (size patched later). */
void p9_reply_begin(struct p9_cur *c, uint8_t type, uint16_t tag);
/*
 * Finish a reply: write its size[4] at byte 0. Returns the bytes used, or 0
 * when it overflowed its space.
 */
size_t p9_reply_end(struct p9_cur *c);
/*
 * Encode Rlerror(@ecode) for @tag into @iov, at most @limit bytes. Returns
 * the size (11), or 0 when the space is too small.
 */
size_t p9_encode_rlerror(const struct iovec *iov, unsigned int cnt,
			 size_t limit, uint16_t tag, uint32_t ecode);

#endif
