/*
 * The 9P2000.L operations on a share directory (see p9_server.h for the
 * confinement rules). p9_server_handle() decodes a request (p9_codec.c
 * checks every length), runs its operation against the fid table and the
 * host, and encodes the reply in place; any -errno becomes Rlerror.
 *
 * Operations that would leave state behind (a new fid) check first that
 * their reply fits, so a client never misses a fid it was given. Each fid
 * keeps a path relative to the share, used only by Tremove and Trename
 * (which name a fid, not a directory entry): it is re-resolved beneath the
 * share and checked against the fid's inode before use, so a stale path is
 * refused (ESTALE) rather than followed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "p9/p9_codec.h"
#include "p9/p9_fid.h"
#include "p9/p9_server.h"

/* At most this many pieces per preadv()/pwritev() (as a virtqueue chain). */
#define P9_IOV_MAX 1024
#define P9_DIRBUF_SIZE (64 * 1024)
#define P9_XATTR_SIZE_MAX (64 * 1024)
#define XATTR_USER_PREFIX "user."

static int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* --- host helpers --- */

static int stat_fd(int fd, struct stat *st)
{
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return neg_errno();
	return 0;
}

static void stat_qid(const struct stat *st, struct p9_qid *q)
{
	if (S_ISDIR(st->st_mode))
		q->type = P9_QTDIR;
	else if (S_ISLNK(st->st_mode))
		q->type = P9_QTSYMLINK;
	else
		q->type = P9_QTFILE;
	q->version = (uint32_t)((uint64_t)st->st_mtime ^
				((uint64_t)st->st_size << 8));
	q->path = st->st_ino;
}

/* The name of @fd in /proc/self/fd. */
static void fd_name(int fd, char buf[16])
{
	snprintf(buf, 16, "%d", fd);
}

static void fd_path(int fd, char buf[32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

/*
 * Open the node @fd (an O_PATH descriptor) again with @flags: the magic
 * link names exactly that inode, whatever happened to its path.
 */
static int reopen_fd(struct p9_server *s, int fd, int flags)
{
	char name[16];
	int ret;

	fd_name(fd, name);
	ret = openat(s->proc_fd, name, flags | O_CLOEXEC | O_NOCTTY);
	return ret < 0 ? neg_errno() : ret;
}

static int chmod_fd(struct p9_server *s, int fd, mode_t mode)
{
	char name[16];

	fd_name(fd, name);
	if (fchmodat(s->proc_fd, name, mode & 07777, 0) < 0)
		return neg_errno();
	return 0;
}

/* A name for a new directory entry: one component, not "." or "..". */
static int check_name(const char *name)
{
	if (!name[0] || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

static bool is_root(const struct p9_server *s, const struct stat *st)
{
	return st->st_dev == s->root_dev && st->st_ino == s->root_ino;
}

/* --- paths kept for Tremove/Trename --- */

static char *path_join(const char *dir, const char *name)
{
	size_t dl, nl;
	char *p;

	if (!dir)
		return NULL;
	dl = strlen(dir);
	nl = strlen(name);
	if (dl + 1 + nl > P9_PATH_MAX)
		return NULL;
	p = malloc(dl + nl + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (dl)
		p[dl++] = '/';
	memcpy(p + dl, name, nl + 1);
	return p;
}

static char *path_parent(const char *path)
{
	const char *slash;

	if (!path)
		return NULL;
	slash = strrchr(path, '/');
	return slash ? strndup(path, (size_t)(slash - path)) : strdup("");
}

/*
 * The directory holding @f and @f's name in it, re-resolved from the share
 * root along @f's path without following symlinks, and checked to still
 * hold @f's inode under that name.
 */
static int fid_parent(struct p9_server *s, struct p9_fid *f, int *pfd,
		      const char **base)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	const char *slash;
	struct stat st;
	int fd;

	if (!f->path)
		return -ESTALE;
	if (!f->path[0])
		return -EBUSY;
	slash = strrchr(f->path, '/');
	if (!slash) {
		fd = fcntl(s->root_fd, F_DUPFD_CLOEXEC, 0);
		*base = f->path;
	} else {
		char *dir = strndup(f->path, (size_t)(slash - f->path));

		if (!dir)
			return -ENOMEM;
		fd = (int)syscall(SYS_openat2, s->root_fd, dir, &how,
				  sizeof(how));
		free(dir);
		*base = slash + 1;
	}
	if (fd < 0)
		return neg_errno();
	if (fstatat(fd, *base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_dev != f->dev || st.st_ino != f->ino) {
		close(fd);
		return -ESTALE;
	}
	*pfd = fd;
	return 0;
}

struct rename_paths {
	const char *from, *to;
	size_t from_len;
};

static void rename_fid_path(struct p9_fid *f, void *arg)
{
	const struct rename_paths *rp = arg;
	size_t tl, rl;
	char *np;

	if (!f->path || strncmp(f->path, rp->from, rp->from_len) ||
	    (f->path[rp->from_len] && f->path[rp->from_len] != '/'))
		return;
	np = NULL;
	tl = rp->to ? strlen(rp->to) : 0;
	rl = strlen(f->path + rp->from_len);
	if (rp->to && tl + rl <= P9_PATH_MAX) {
		np = malloc(tl + rl + 1);
		if (np) {
			memcpy(np, rp->to, tl);
			memcpy(np + tl, f->path + rp->from_len, rl + 1);
		}
	}
	free(f->path);
	f->path = np;
}

/* After @from was renamed to @to, move the paths of the fids below it. */
static void rename_paths(struct p9_server *s, const char *from, const char *to)
{
	struct rename_paths rp = { from, to, from ? strlen(from) : 0 };

	if (from && from[0])
		p9_fid_for_each(s->fids, rename_fid_path, &rp);
}

/* --- fids --- */

static int get_fid(struct p9_server *s, uint32_t num, struct p9_fid **out)
{
	struct p9_fid *f = p9_fid_lookup(s->fids, num);

	if (!f || f->kind != P9_FID_FILE)
		return -EBADF;
	*out = f;
	return 0;
}

/* Set @f to the node @fd (taking it) at @path (taking it). */
static void fid_set_node(struct p9_fid *f, int fd, const struct stat *st,
			 char *path)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	f->fd = fd;
	f->type = st->st_mode & S_IFMT;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->path = path;
}

static int need_room(const struct p9_cur *out, size_t n)
{
	return out->left < n ? -EMSGSIZE : 0;
}

/* --- session --- */

static int op_version(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	const char *v = r->u.version.version;
	uint32_t msize = r->u.version.msize;

	if (msize < P9_MSIZE_MIN)
		return -EINVAL;
	if (msize > P9_MSIZE_MAX)
		msize = P9_MSIZE_MAX;
	p9_fid_table_clear(s->fids);
	if (!strncmp(v, "9P2000.L", 8) && (v[8] == '\0' || v[8] == '.')) {
		s->versioned = true;
		s->msize = msize;
		v = "9P2000.L";
	} else {
		s->versioned = false;
		s->msize = P9_MSIZE_MAX;
		v = "unknown";
	}
	p9_put_u32(out, msize);
	p9_put_str(out, v, strlen(v));
	return 0;
}

static int op_attach(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f;
	struct p9_qid q;
	struct stat st;
	char *path;
	int ret, fd;

	if (r->u.attach.afid != P9_NOFID)
		return -EBADF;
	ret = need_room(out, P9_QID_SIZE);
	if (ret)
		return ret;
	fd = fcntl(s->root_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return neg_errno();
	ret = stat_fd(fd, &st);
	if (ret)
		goto err_fd;
	path = strdup("");
	if (!path) {
		ret = -ENOMEM;
		goto err_fd;
	}
	f = p9_fid_new(s->fids, r->u.attach.fid, &ret);
	if (!f)
		goto err_path;
	fid_set_node(f, fd, &st, path);
	stat_qid(&st, &q);
	p9_put_qid(out, &q);
	return 0;
err_path:
	free(path);
err_fd:
	close(fd);
	return ret;
}

/* --- walk --- */

/*
 * One step from the directory @dfd (stat @dst, path @dpath) to @name: a
 * new O_PATH descriptor in *@nfd, its stat and path. Never follows a
 * symlink and never climbs above the share's root.
 */
static int walk_one(struct p9_server *s, int dfd, const struct stat *dst,
		    const char *dpath, const char *name, int *nfd,
		    struct stat *st, char **npath)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	int fd, ret;

	if (!name[0] || strchr(name, '/'))
		return -EINVAL;
	if (!strcmp(name, ".") || (!strcmp(name, "..") && is_root(s, dst))) {
		if (!S_ISDIR(dst->st_mode))
			return -ENOTDIR;
		fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
		*npath = dpath ? strdup(dpath) : NULL;
	} else if (!strcmp(name, "..")) {
		fd = openat(dfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		*npath = path_parent(dpath);
	} else {
		fd = (int)syscall(SYS_openat2, dfd, name, &how, sizeof(how));
		*npath = path_join(dpath, name);
	}
	if (fd < 0) {
		ret = neg_errno();
		goto err_path;
	}
	ret = stat_fd(fd, st);
	if (ret) {
		close(fd);
		goto err_path;
	}
	*nfd = fd;
	return 0;
err_path:
	free(*npath);
	*npath = NULL;
	return ret;
}

static int op_walk(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	uint16_t n = r->u.walk.nwname, i;
	struct p9_qid qids[P9_MAXWELEM];
	struct p9_fid *f, *nf;
	struct stat st;
	char *path;
	int ret, fd;

	ret = get_fid(s, r->u.walk.fid, &f);
	if (ret)
		return ret;
	if (r->u.walk.newfid != r->u.walk.fid) {
		if (p9_fid_lookup(s->fids, r->u.walk.newfid))
			return -EEXIST;
	} else if (f->ofd >= 0) {
		return -EBUSY;
	}
	ret = need_room(out, 2 + (size_t)n * P9_QID_SIZE);
	if (ret)
		return ret;
	fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return neg_errno();
	ret = stat_fd(fd, &st);
	if (ret)
		goto err_fd;
	path = f->path ? strdup(f->path) : NULL;
	for (i = 0; i < n; i++) {
		struct stat nst;
		char *npath;
		int nfd;

		ret = walk_one(s, fd, &st, path, r->u.walk.wname[i], &nfd, &nst,
			       &npath);
		if (ret)
			break;
		close(fd);
		free(path);
		fd = nfd;
		st = nst;
		path = npath;
		stat_qid(&st, &qids[i]);
	}
	if (i < n) {
		/* A partial walk: Rwalk with the qids so far, no newfid. */
		free(path);
		if (i == 0)
			goto err_fd;
		close(fd);
		goto reply;
	}
	if (r->u.walk.newfid == r->u.walk.fid) {
		nf = f;
	} else {
		nf = p9_fid_new(s->fids, r->u.walk.newfid, &ret);
		if (!nf) {
			free(path);
			goto err_fd;
		}
	}
	fid_set_node(nf, fd, &st, path);
reply:
	p9_put_u16(out, i);
	for (n = 0; n < i; n++)
		p9_put_qid(out, &qids[n]);
	return 0;
err_fd:
	close(fd);
	return ret;
}

/* --- open and create --- */

/* 9P2000.L open flags to the host's; what the server does not pass is dropped. */
static int host_open_flags(uint32_t fl)
{
	static const struct {
		uint32_t p9;
		int host;
	} map[] = {
		{ P9_DOTL_TRUNC, O_TRUNC },
		{ P9_DOTL_APPEND, O_APPEND },
		{ P9_DOTL_DSYNC, O_DSYNC },
		{ P9_DOTL_SYNC, O_SYNC },
		{ P9_DOTL_DIRECTORY, O_DIRECTORY },
		{ P9_DOTL_EXCL, O_EXCL },
	};
	int flags, i;

	switch (fl & P9_DOTL_ACCMODE) {
	case P9_DOTL_WRONLY:
		flags = O_WRONLY;
		break;
	case P9_DOTL_RDWR:
		flags = O_RDWR;
		break;
	default:
		flags = O_RDONLY;
		break;
	}
	for (i = 0; i < (int)(sizeof(map) / sizeof(map[0])); i++)
		if (fl & map[i].p9)
			flags |= map[i].host;
	return flags | O_LARGEFILE;
}

static bool open_writes(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static int op_lopen(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	int flags = host_open_flags(r->u.lopen.flags) & ~O_EXCL;
	struct p9_fid *f;
	struct p9_qid q;
	struct stat st;
	int ret, fd;

	ret = get_fid(s, r->u.lopen.fid, &f);
	if (ret)
		return ret;
	if (f->ofd >= 0)
		return -EBUSY;
	if (s->read_only && open_writes(flags))
		return -EROFS;
	switch (f->type) {
	case S_IFREG:
		break;
	case S_IFDIR:
		flags |= O_DIRECTORY;
		break;
	case S_IFIFO:
		/* Never wait for the other end on the I/O thread. */
		flags |= O_NONBLOCK;
		break;
	case S_IFLNK:
		return -ELOOP;
	default:
		/* Devices and sockets are the guest kernel's own business. */
		return -EPERM;
	}
	ret = need_room(out, P9_QID_SIZE + 4);
	if (ret)
		return ret;
	fd = reopen_fd(s, f->fd, flags);
	if (fd < 0)
		return fd;
	ret = stat_fd(fd, &st);
	if (ret) {
		close(fd);
		return ret;
	}
	f->ofd = fd;
	f->oflags = flags;
	stat_qid(&st, &q);
	p9_put_qid(out, &q);
	p9_put_u32(out, 0); /* iounit: the client uses msize */
	return 0;
}

/*
 * Tlcreate of a name that exists: open it if it is a regular file. Anything
 * else (a FIFO would block the I/O thread, a device has effects on open)
 * is refused as existing; O_NONBLOCK covers a swap after the check.
 */
static int open_existing(int dfd, const char *name, int flags)
{
	struct stat st;
	int fd, ret;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return neg_errno();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (!S_ISREG(st.st_mode))
		return -EEXIST;
	fd = openat(dfd, name, flags | O_NONBLOCK);
	if (fd < 0)
		return neg_errno();
	ret = stat_fd(fd, &st);
	if (!ret && !S_ISREG(st.st_mode))
		ret = -EEXIST;
	if (!ret && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK & ~O_ACCMODE) < 0)
		ret = neg_errno();
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int op_lcreate(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	int flags = host_open_flags(r->u.lcreate.flags);
	const char *name = r->u.lcreate.name;
	mode_t mode = r->u.lcreate.mode & 07777;
	struct p9_fid *f;
	struct p9_qid q;
	struct stat st;
	int ret, ofd, pfd;
	char *path;

	ret = get_fid(s, r->u.lcreate.fid, &f);
	if (ret)
		return ret;
	ret = check_name(name);
	if (ret)
		return ret;
	if (f->ofd >= 0)
		return -EBUSY;
	if (f->type != S_IFDIR)
		return -ENOTDIR;
	ret = need_room(out, P9_QID_SIZE + 4);
	if (ret)
		return ret;
	flags |= O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	flags &= ~O_DIRECTORY;
	ofd = openat(f->fd, name, flags | O_EXCL, mode);
	if (ofd >= 0) {
		/* Exactly the guest's mode, whatever khyve's umask. */
		ret = fchmod(ofd, mode) < 0 ? neg_errno() : 0;
		if (ret)
			goto err_ofd;
	} else if (errno == EEXIST && !(flags & O_EXCL)) {
		ret = open_existing(f->fd, name, flags & ~O_CREAT);
		if (ret < 0)
			return ret;
		ofd = ret;
	}
	if (ofd < 0)
		return neg_errno();
	ret = stat_fd(ofd, &st);
	if (ret)
		goto err_ofd;
	pfd = reopen_fd(s, ofd, O_PATH);
	if (pfd < 0) {
		ret = pfd;
		goto err_ofd;
	}
	path = path_join(f->path, name);
	fid_set_node(f, pfd, &st, path);
	f->ofd = ofd;
	f->oflags = flags & ~(O_CREAT | O_EXCL | O_TRUNC);
	stat_qid(&st, &q);
	p9_put_qid(out, &q);
	p9_put_u32(out, 0);
	return 0;
err_ofd:
	close(ofd);
	return ret;
}

/* Stat @name in the directory @dfd for a reply's qid; set its mode if @mode. */
static int created_qid(struct p9_server *s, int dfd, const char *name,
		       mode_t mode, bool set_mode, struct p9_cur *out)
{
	struct p9_qid q;
	struct stat st;
	int fd, ret;

	fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	ret = stat_fd(fd, &st);
	if (!ret && set_mode && !S_ISLNK(st.st_mode))
		ret = chmod_fd(s, fd, mode);
	if (!ret)
		ret = stat_fd(fd, &st);
	close(fd);
	if (ret)
		return ret;
	stat_qid(&st, &q);
	p9_put_qid(out, &q);
	return 0;
}

/* The directory fid @num for creating @name in it. */
static int get_dir(struct p9_server *s, uint32_t num, const char *name,
		   struct p9_fid **out)
{
	int ret = get_fid(s, num, out);

	if (!ret)
		ret = check_name(name);
	if (!ret && (*out)->type != S_IFDIR)
		ret = -ENOTDIR;
	return ret;
}

static int op_mkdir(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	mode_t mode = r->u.mkdir.mode & 07777;
	struct p9_fid *d;
	int ret;

	ret = get_dir(s, r->u.mkdir.dfid, r->u.mkdir.name, &d);
	if (ret)
		return ret;
	if (mkdirat(d->fd, r->u.mkdir.name, mode) < 0)
		return neg_errno();
	return created_qid(s, d->fd, r->u.mkdir.name, mode, true, out);
}

static int op_symlink(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *d;
	int ret;

	ret = get_dir(s, r->u.symlink.fid, r->u.symlink.name, &d);
	if (ret)
		return ret;
	if (symlinkat(r->u.symlink.target, d->fd, r->u.symlink.name) < 0)
		return neg_errno();
	return created_qid(s, d->fd, r->u.symlink.name, 0, false, out);
}

static int op_mknod(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	mode_t mode = r->u.mknod.mode;
	struct p9_fid *d;
	int ret;

	ret = get_dir(s, r->u.mknod.dfid, r->u.mknod.name, &d);
	if (ret)
		return ret;
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	case S_IFCHR:
	case S_IFBLK:
		/* No host device nodes on the guest's say. */
		return -EPERM;
	default:
		return -EINVAL;
	}
	if (mknodat(d->fd, r->u.mknod.name, (mode & S_IFMT) | (mode & 07777),
		    0) < 0)
		return neg_errno();
	return created_qid(s, d->fd, r->u.mknod.name, mode & 07777, true, out);
}

/* --- attributes --- */

static int op_getattr(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f;
	struct p9_qid q;
	struct stat st;
	int ret;

	ret = get_fid(s, r->u.getattr.fid, &f);
	if (ret)
		return ret;
	ret = stat_fd(f->fd, &st);
	if (ret)
		return ret;
	(void)s;
	stat_qid(&st, &q);
	p9_put_u64(out, P9_GETATTR_BASIC);
	p9_put_qid(out, &q);
	p9_put_u32(out, st.st_mode);
	p9_put_u32(out, st.st_uid);
	p9_put_u32(out, st.st_gid);
	p9_put_u64(out, st.st_nlink);
	p9_put_u64(out, st.st_rdev);
	p9_put_u64(out, (uint64_t)st.st_size);
	p9_put_u64(out, (uint64_t)st.st_blksize);
	p9_put_u64(out, (uint64_t)st.st_blocks);
	p9_put_u64(out, (uint64_t)st.st_atim.tv_sec);
	p9_put_u64(out, (uint64_t)st.st_atim.tv_nsec);
	p9_put_u64(out, (uint64_t)st.st_mtim.tv_sec);
	p9_put_u64(out, (uint64_t)st.st_mtim.tv_nsec);
	p9_put_u64(out, (uint64_t)st.st_ctim.tv_sec);
	p9_put_u64(out, (uint64_t)st.st_ctim.tv_nsec);
	p9_put_u64(out, 0); /* btime */
	p9_put_u64(out, 0);
	p9_put_u64(out, 0); /* gen */
	p9_put_u64(out, 0); /* data_version */
	return 0;
}

static int set_time(uint32_t valid, uint32_t bit, uint32_t set_bit,
		    uint64_t sec, uint64_t nsec, struct timespec *ts)
{
	if (!(valid & bit)) {
		ts->tv_sec = 0;
		ts->tv_nsec = UTIME_OMIT;
	} else if (!(valid & set_bit)) {
		ts->tv_sec = 0;
		ts->tv_nsec = UTIME_NOW;
	} else {
		if (nsec >= 1000000000ULL || sec > (uint64_t)INT64_MAX)
			return -EINVAL;
		ts->tv_sec = (time_t)sec;
		ts->tv_nsec = (long)nsec;
	}
	return 0;
}

static int truncate_fid(struct p9_server *s, struct p9_fid *f, uint64_t size)
{
	int fd, ret = 0;

	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (f->type == S_IFDIR)
		return -EISDIR;
	if (f->type != S_IFREG)
		return -EINVAL;
	if (f->ofd >= 0 && (f->oflags & O_ACCMODE) != O_RDONLY)
		return ftruncate(f->ofd, (off_t)size) < 0 ? neg_errno() : 0;
	fd = reopen_fd(s, f->fd, O_WRONLY);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0)
		ret = neg_errno();
	close(fd);
	return ret;
}

static int op_setattr(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	uint32_t valid = r->u.setattr.valid;
	struct timespec ts[2];
	struct p9_fid *f;
	int ret;

	(void)out;
	ret = get_fid(s, r->u.setattr.fid, &f);
	if (ret)
		return ret;
	ret = set_time(valid, P9_SETATTR_ATIME, P9_SETATTR_ATIME_SET,
		       r->u.setattr.atime_sec, r->u.setattr.atime_nsec, &ts[0]);
	if (!ret)
		ret = set_time(valid, P9_SETATTR_MTIME, P9_SETATTR_MTIME_SET,
			       r->u.setattr.mtime_sec, r->u.setattr.mtime_nsec,
			       &ts[1]);
	if (ret)
		return ret;
	if (valid & P9_SETATTR_MODE) {
		if (f->type == S_IFLNK)
			return -EOPNOTSUPP;
		ret = chmod_fd(s, f->fd, r->u.setattr.mode);
		if (ret)
			return ret;
	}
	if (valid & (P9_SETATTR_UID | P9_SETATTR_GID)) {
		uid_t uid =
			valid & P9_SETATTR_UID ? r->u.setattr.uid : (uid_t)-1;
		gid_t gid =
			valid & P9_SETATTR_GID ? r->u.setattr.gid : (gid_t)-1;

		if (fchownat(f->fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return neg_errno();
	}
	if (valid & P9_SETATTR_SIZE) {
		ret = truncate_fid(s, f, r->u.setattr.size);
		if (ret)
			return ret;
	}
	if (valid & (P9_SETATTR_ATIME | P9_SETATTR_MTIME)) {
		if (utimensat(f->fd, "", ts,
			      AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return neg_errno();
	}
	return 0;
}

static int op_statfs(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f;
	struct statfs sf;
	uint64_t fsid;
	int ret;

	ret = get_fid(s, r->u.fid.fid, &f);
	if (ret)
		return ret;
	if (fstatfs(f->fd, &sf) < 0)
		return neg_errno();
	memcpy(&fsid, &sf.f_fsid, sizeof(fsid));
	p9_put_u32(out, (uint32_t)sf.f_type);
	p9_put_u32(out, (uint32_t)sf.f_bsize);
	p9_put_u64(out, sf.f_blocks);
	p9_put_u64(out, sf.f_bfree);
	p9_put_u64(out, sf.f_bavail);
	p9_put_u64(out, sf.f_files);
	p9_put_u64(out, sf.f_ffree);
	p9_put_u64(out, fsid);
	p9_put_u32(out, (uint32_t)sf.f_namelen);
	return 0;
}

static int op_readlink(struct p9_server *s, struct p9_req *r,
		       struct p9_cur *out)
{
	char buf[P9_PATH_MAX + 1];
	struct p9_fid *f;
	ssize_t n;
	int ret;

	ret = get_fid(s, r->u.fid.fid, &f);
	if (ret)
		return ret;
	if (f->type != S_IFLNK)
		return -EINVAL;
	n = readlinkat(f->fd, "", buf, sizeof(buf));
	if (n < 0)
		return neg_errno();
	if ((size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	p9_put_str(out, buf, (size_t)n);
	return 0;
}

/* --- data --- */

static int read_xattr(struct p9_fid *f, uint64_t offset, uint32_t count,
		      struct p9_cur *out)
{
	size_t n = 0;

	if (offset < f->xsize) {
		n = f->xsize - offset;
		if (n > count)
			n = count;
	}
	p9_put_u32(out, (uint32_t)n);
	if (n)
		p9_put_bytes(out, f->xbuf + offset, n);
	return 0;
}

static int op_read(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f = p9_fid_lookup(s->fids, r->u.read.fid);
	uint32_t count = r->u.read.count;
	unsigned int cnt;
	size_t len;
	ssize_t got;

	if (!f || f->kind == P9_FID_XATTR_WRITE)
		return -EBADF;
	if (out->left < 4)
		return -EMSGSIZE;
	if (count > out->left - 4)
		count = (uint32_t)(out->left - 4);
	if (f->kind == P9_FID_XATTR_READ)
		return read_xattr(f, r->u.read.offset, count, out);
	if (f->ofd < 0)
		return -EBADF;
	if (r->u.read.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	p9_put_u32(out, 0);
	len = p9_cur_iov(out, count, s->iov, P9_IOV_MAX, &cnt);
	if (!len)
		got = 0;
	else if (f->type == S_IFREG)
		got = preadv(f->ofd, s->iov, (int)cnt, (off_t)r->u.read.offset);
	else /* a FIFO has no offsets */
		got = readv(f->ofd, s->iov, (int)cnt);
	if (got < 0)
		return neg_errno();
	p9_cur_skip(out, (size_t)got);
	p9_iov_put_u32_at(out->iov, out->cnt, P9_HDR_SIZE, (uint32_t)got);
	return 0;
}

static int write_xattr(struct p9_fid *f, struct p9_req *r, struct p9_cur *out)
{
	uint64_t off = r->u.write.offset;
	uint32_t count = r->u.write.count;

	if (off > f->xsize || count > f->xsize - off)
		return -ENOSPC;
	p9_get_bytes(&r->u.write.data, f->xbuf + off, count);
	if (off + count > f->xfilled)
		f->xfilled = off + count;
	p9_put_u32(out, count);
	return 0;
}

static int op_write(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f = p9_fid_lookup(s->fids, r->u.write.fid);
	unsigned int cnt;
	size_t len;
	ssize_t put;

	if (!f || f->kind == P9_FID_XATTR_READ)
		return -EBADF;
	if (f->kind == P9_FID_XATTR_WRITE)
		return write_xattr(f, r, out);
	if (f->ofd < 0)
		return -EBADF;
	if (r->u.write.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	len = p9_cur_iov(&r->u.write.data, r->u.write.count, s->iov, P9_IOV_MAX,
			 &cnt);
	if (!len)
		put = 0;
	else if (f->type == S_IFREG)
		put = pwritev(f->ofd, s->iov, (int)cnt,
			      (off_t)r->u.write.offset);
	else
		put = writev(f->ofd, s->iov, (int)cnt);
	if (put < 0)
		return neg_errno();
	p9_put_u32(out, (uint32_t)put);
	return 0;
}

static uint8_t dirent_qid_type(unsigned char d_type)
{
	if (d_type == DT_DIR)
		return P9_QTDIR;
	if (d_type == DT_LNK)
		return P9_QTSYMLINK;
	return P9_QTFILE;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/*
 * Entries from the directory offset @offset (a d_off the host gave for an
 * earlier entry, or 0), as many as fit in @count bytes. The host's d_off
 * goes to the client as each entry's offset, so a later Treaddir resumes
 * exactly after the last entry it got.
 */
static int op_readdir(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	uint32_t count = r->u.read.count, used = 0;
	unsigned int emitted = 0;
	bool full = false, at_root;
	struct p9_fid *f;
	int ret;

	ret = get_fid(s, r->u.read.fid, &f);
	if (ret)
		return ret;
	if (f->ofd < 0 || f->type != S_IFDIR)
		return -EBADF;
	if (r->u.read.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (out->left < 4)
		return -EMSGSIZE;
	if (count > out->left - 4)
		count = (uint32_t)(out->left - 4);
	at_root = f->dev == s->root_dev && f->ino == s->root_ino;
	if (lseek(f->ofd, (off_t)r->u.read.offset, SEEK_SET) < 0)
		return neg_errno();
	p9_put_u32(out, 0);
	while (!full) {
		long n = syscall(SYS_getdents64, f->ofd, s->dirbuf,
				 P9_DIRBUF_SIZE);
		long pos = 0;

		if (n < 0)
			return neg_errno();
		if (n == 0)
			break;
		while (pos < n) {
			const struct linux_dirent64 *d =
				(const void *)((char *)s->dirbuf + pos);
			size_t nl = strlen(d->d_name);
			struct p9_qid q = { dirent_qid_type(d->d_type), 0,
					    d->d_ino };

			/* The root's ".." is itself: no host inode leaks out. */
			if (at_root && !strcmp(d->d_name, ".."))
				q.path = s->root_ino;
			size_t esz = P9_QID_SIZE + 8 + 1 + 2 + nl;

			if (used + esz > count) {
				full = true;
				break;
			}
			p9_put_qid(out, &q);
			p9_put_u64(out, (uint64_t)d->d_off);
			p9_put_u8(out, d->d_type);
			p9_put_str(out, d->d_name, nl);
			used += (uint32_t)esz;
			emitted++;
			pos += d->d_reclen;
		}
	}
	/* Room for not even one entry would read as the end of the directory. */
	if (full && !emitted)
		return -EINVAL;
	p9_iov_put_u32_at(out->iov, out->cnt, P9_HDR_SIZE, used);
	return 0;
}

static int op_fsync(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f;
	int ret;

	(void)out;
	ret = get_fid(s, r->u.fsync.fid, &f);
	if (ret)
		return ret;
	if (f->ofd < 0)
		return -EBADF;
	ret = r->u.fsync.datasync ? fdatasync(f->ofd) : fsync(f->ofd);
	return ret < 0 ? neg_errno() : 0;
}

/* --- locks: open file description locks, so fids conflict like processes --- */

static int lock_to_flock(struct p9_req *r, struct flock *fl)
{
	static const short types[] = { F_RDLCK, F_WRLCK, F_UNLCK };
	uint64_t start = r->u.lock.start, len = r->u.lock.length;

	if (r->u.lock.type > P9_LOCK_TYPE_UNLCK)
		return -EINVAL;
	if (start > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX ||
	    (len && start + len - 1 > (uint64_t)INT64_MAX))
		return -EINVAL;
	memset(fl, 0, sizeof(*fl));
	fl->l_type = types[r->u.lock.type];
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)start;
	fl->l_len = (off_t)len;
	return 0;
}

static int op_lock(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f;
	struct flock fl;
	uint8_t status = P9_LOCK_SUCCESS;
	int ret;

	ret = get_fid(s, r->u.lock.fid, &f);
	if (ret)
		return ret;
	if (f->ofd < 0)
		return -EBADF;
	ret = lock_to_flock(r, &fl);
	if (ret)
		return ret;
	/* Never sleep on the I/O thread: a blocking client polls on BLOCKED. */
	if (fcntl(f->ofd, F_OFD_SETLK, &fl) < 0) {
		if (errno != EAGAIN && errno != EACCES)
			return neg_errno();
		status = P9_LOCK_BLOCKED;
	}
	p9_put_u8(out, status);
	return 0;
}

static int op_getlock(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	const char *cid = r->u.lock.client_id;
	struct p9_fid *f;
	struct flock fl;
	uint8_t type;
	int ret;

	ret = get_fid(s, r->u.lock.fid, &f);
	if (ret)
		return ret;
	if (f->ofd < 0)
		return -EBADF;
	ret = lock_to_flock(r, &fl);
	if (ret)
		return ret;
	if (fl.l_type == F_UNLCK)
		return -EINVAL;
	if (fcntl(f->ofd, F_OFD_GETLK, &fl) < 0)
		return neg_errno();
	if (fl.l_type == F_UNLCK) {
		p9_put_u8(out, P9_LOCK_TYPE_UNLCK);
		p9_put_u64(out, r->u.lock.start);
		p9_put_u64(out, r->u.lock.length);
		p9_put_u32(out, r->u.lock.proc_id);
	} else {
		type = fl.l_type == F_RDLCK ? P9_LOCK_TYPE_RDLCK :
					      P9_LOCK_TYPE_WRLCK;
		p9_put_u8(out, type);
		p9_put_u64(out, (uint64_t)fl.l_start);
		p9_put_u64(out, (uint64_t)fl.l_len);
		/* An OFD lock has no process (-1): report 0. */
		p9_put_u32(out, fl.l_pid > 0 ? (uint32_t)fl.l_pid : 0);
	}
	p9_put_str(out, cid, strlen(cid));
	return 0;
}

/* --- names --- */

static int op_link(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *d, *f;
	char name[16];
	int ret;

	(void)out;
	ret = get_dir(s, r->u.link.dfid, r->u.link.name, &d);
	if (!ret)
		ret = get_fid(s, r->u.link.fid, &f);
	if (ret)
		return ret;
	if (f->type == S_IFDIR)
		return -EPERM;
	if (f->type == S_IFLNK) {
		/* A symlink itself: needs CAP_DAC_READ_SEARCH on the host. */
		ret = linkat(f->fd, "", d->fd, r->u.link.name, AT_EMPTY_PATH);
	} else {
		fd_name(f->fd, name);
		ret = linkat(s->proc_fd, name, d->fd, r->u.link.name,
			     AT_SYMLINK_FOLLOW);
	}
	return ret < 0 ? neg_errno() : 0;
}

static int op_unlinkat(struct p9_server *s, struct p9_req *r,
		       struct p9_cur *out)
{
	int flags =
		r->u.unlinkat.flags & P9_DOTL_AT_REMOVEDIR ? AT_REMOVEDIR : 0;
	struct p9_fid *d;
	int ret;

	(void)out;
	ret = get_dir(s, r->u.unlinkat.dirfid, r->u.unlinkat.name, &d);
	if (ret)
		return ret;
	if (unlinkat(d->fd, r->u.unlinkat.name, flags) < 0)
		return neg_errno();
	return 0;
}

static int op_renameat(struct p9_server *s, struct p9_req *r,
		       struct p9_cur *out)
{
	struct p9_fid *od, *nd;
	char *from, *to;
	int ret;

	(void)out;
	ret = get_dir(s, r->u.renameat.olddirfid, r->u.renameat.oldname, &od);
	if (!ret)
		ret = get_dir(s, r->u.renameat.newdirfid, r->u.renameat.newname,
			      &nd);
	if (ret)
		return ret;
	if (renameat(od->fd, r->u.renameat.oldname, nd->fd,
		     r->u.renameat.newname) < 0)
		return neg_errno();
	from = path_join(od->path, r->u.renameat.oldname);
	to = path_join(nd->path, r->u.renameat.newname);
	rename_paths(s, from, to);
	free(from);
	free(to);
	return 0;
}

static int op_rename(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f, *nd;
	const char *base;
	char *from, *to;
	int ret, pfd;

	(void)out;
	ret = get_fid(s, r->u.rename.fid, &f);
	if (!ret)
		ret = get_dir(s, r->u.rename.dfid, r->u.rename.name, &nd);
	if (ret)
		return ret;
	ret = fid_parent(s, f, &pfd, &base);
	if (ret)
		return ret;
	if (renameat(pfd, base, nd->fd, r->u.rename.name) < 0)
		ret = neg_errno();
	close(pfd);
	if (ret)
		return ret;
	from = f->path ? strdup(f->path) : NULL;
	to = path_join(nd->path, r->u.rename.name);
	rename_paths(s, from, to);
	free(from);
	free(to);
	return 0;
}

static int op_remove(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	const char *base;
	struct p9_fid *f;
	int ret, pfd;

	(void)out;
	f = p9_fid_lookup(s->fids, r->u.fid.fid);
	if (!f)
		return -EBADF;
	/* Tremove clunks the fid whatever the outcome. */
	if (f->kind != P9_FID_FILE) {
		ret = -EBADF;
		goto out;
	}
	if (s->read_only) {
		ret = -EROFS;
		goto out;
	}
	ret = fid_parent(s, f, &pfd, &base);
	if (ret)
		goto out;
	if (unlinkat(pfd, base, f->type == S_IFDIR ? AT_REMOVEDIR : 0) < 0)
		ret = neg_errno();
	close(pfd);
out:
	p9_fid_del(s->fids, f);
	return ret;
}

/* --- xattrs: user.* only --- */

static bool xattr_name_ok(const char *name)
{
	return !strncmp(name, XATTR_USER_PREFIX, strlen(XATTR_USER_PREFIX)) &&
	       name[strlen(XATTR_USER_PREFIX)];
}

/* The user.* names of the list @buf (@len bytes), compacted in place. */
static size_t filter_xattr_list(char *buf, size_t len)
{
	size_t in = 0, kept = 0;

	while (in < len) {
		size_t n = strnlen(buf + in, len - in) + 1;

		if (in + n > len)
			break;
		if (xattr_name_ok(buf + in)) {
			memmove(buf + kept, buf + in, n);
			kept += n;
		}
		in += n;
	}
	return kept;
}

/* Read the value of @name (or the name list when empty) of the node @fd. */
static int xattr_fetch(int fd, const char *name, uint8_t **buf, size_t *len)
{
	char path[32];
	ssize_t n;
	uint8_t *b;

	fd_path(fd, path);
	n = name[0] ? getxattr(path, name, NULL, 0) : listxattr(path, NULL, 0);
	if (n < 0)
		return neg_errno();
	if (n > P9_XATTR_SIZE_MAX * 16)
		return -E2BIG;
	b = malloc((size_t)n + 1);
	if (!b)
		return -ENOMEM;
	n = name[0] ? getxattr(path, name, b, (size_t)n) :
		      listxattr(path, (char *)b, (size_t)n);
	if (n < 0) {
		/* ERANGE: it grew in between; the client may ask again. */
		free(b);
		return neg_errno();
	}
	if (!name[0])
		n = (ssize_t)filter_xattr_list((char *)b, (size_t)n);
	*buf = b;
	*len = (size_t)n;
	return 0;
}

static int op_xattrwalk(struct p9_server *s, struct p9_req *r,
			struct p9_cur *out)
{
	const char *name = r->u.xattrwalk.name;
	struct p9_fid *f, *nf;
	uint8_t *buf;
	size_t len;
	int ret;

	ret = get_fid(s, r->u.xattrwalk.fid, &f);
	if (ret)
		return ret;
	if (r->u.xattrwalk.newfid == r->u.xattrwalk.fid)
		return -EINVAL;
	if (p9_fid_lookup(s->fids, r->u.xattrwalk.newfid))
		return -EEXIST;
	if (name[0] && !xattr_name_ok(name))
		return -EOPNOTSUPP;
	ret = need_room(out, 8);
	if (ret)
		return ret;
	if (f->type == S_IFREG || f->type == S_IFDIR) {
		ret = xattr_fetch(f->fd, name, &buf, &len);
		if (ret)
			return ret;
	} else if (name[0]) {
		/* Linux keeps user.* off anything but files and directories. */
		return -EOPNOTSUPP;
	} else {
		buf = NULL;
		len = 0;
	}
	nf = p9_fid_new(s->fids, r->u.xattrwalk.newfid, &ret);
	if (!nf) {
		free(buf);
		return ret;
	}
	nf->kind = P9_FID_XATTR_READ;
	nf->xbuf = buf;
	nf->xsize = len;
	p9_put_u64(out, len);
	return 0;
}

static int op_xattrcreate(struct p9_server *s, struct p9_req *r,
			  struct p9_cur *out)
{
	const char *name = r->u.xattrcreate.name;
	uint64_t size = r->u.xattrcreate.size;
	struct p9_fid *f;
	uint8_t *buf;
	char *xname;
	int ret;

	(void)out;
	ret = get_fid(s, r->u.xattrcreate.fid, &f);
	if (ret)
		return ret;
	if (!xattr_name_ok(name) || (f->type != S_IFREG && f->type != S_IFDIR))
		return -EOPNOTSUPP;
	if (r->u.xattrcreate.flags &
	    ~(uint32_t)(P9_XATTR_CREATE | P9_XATTR_REPLACE))
		return -EINVAL;
	if (size > P9_XATTR_SIZE_MAX)
		return -E2BIG;
	buf = calloc(1, (size_t)size + 1);
	xname = strdup(name);
	if (!buf || !xname) {
		free(buf);
		free(xname);
		return -ENOMEM;
	}
	/* The fid now stands for the attribute; its node is kept for Tclunk. */
	if (f->ofd >= 0)
		close(f->ofd);
	f->ofd = -1;
	f->xfd = f->fd;
	f->fd = -1;
	f->kind = P9_FID_XATTR_WRITE;
	f->xbuf = buf;
	f->xname = xname;
	f->xsize = (size_t)size;
	f->xfilled = 0;
	f->xflags = (int)r->u.xattrcreate.flags;
	return 0;
}

/* Tclunk of a Txattrcreate fid sets (or, empty with REPLACE, removes) it. */
static int xattr_commit(struct p9_fid *f)
{
	char path[32];
	int ret;

	if (f->xfilled != f->xsize)
		return -EINVAL;
	fd_path(f->xfd, path);
	if (f->xsize == 0 && (f->xflags & P9_XATTR_REPLACE))
		ret = removexattr(path, f->xname);
	else
		ret = setxattr(path, f->xname, f->xbuf, f->xsize, f->xflags);
	return ret < 0 ? neg_errno() : 0;
}

static int op_clunk(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	struct p9_fid *f = p9_fid_lookup(s->fids, r->u.fid.fid);
	int ret = 0;

	(void)out;
	if (!f)
		return -EBADF;
	if (f->kind == P9_FID_XATTR_WRITE)
		ret = xattr_commit(f);
	p9_fid_del(s->fids, f);
	return ret;
}

static int op_flush(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	/* Every request is answered before the next is read: nothing pending. */
	(void)s;
	(void)r;
	(void)out;
	return 0;
}

static int op_auth(struct p9_server *s, struct p9_req *r, struct p9_cur *out)
{
	(void)s;
	(void)r;
	(void)out;
	return -EOPNOTSUPP;
}

struct p9_op {
	int (*fn)(struct p9_server *s, struct p9_req *r, struct p9_cur *out);
	bool modifies; /* EROFS on a read-only share */
};

static const struct p9_op p9_ops[256] = {
	[P9_TVERSION] = { op_version, false },
	[P9_TAUTH] = { op_auth, false },
	[P9_TATTACH] = { op_attach, false },
	[P9_TFLUSH] = { op_flush, false },
	[P9_TWALK] = { op_walk, false },
	[P9_TLOPEN] = { op_lopen, false },
	[P9_TLCREATE] = { op_lcreate, true },
	[P9_TSYMLINK] = { op_symlink, true },
	[P9_TMKNOD] = { op_mknod, true },
	[P9_TRENAME] = { op_rename, true },
	[P9_TREADLINK] = { op_readlink, false },
	[P9_TGETATTR] = { op_getattr, false },
	[P9_TSETATTR] = { op_setattr, true },
	[P9_TXATTRWALK] = { op_xattrwalk, false },
	[P9_TXATTRCREATE] = { op_xattrcreate, true },
	[P9_TREADDIR] = { op_readdir, false },
	[P9_TFSYNC] = { op_fsync, false },
	[P9_TLOCK] = { op_lock, false },
	[P9_TGETLOCK] = { op_getlock, false },
	[P9_TLINK] = { op_link, true },
	[P9_TMKDIR] = { op_mkdir, true },
	[P9_TRENAMEAT] = { op_renameat, true },
	[P9_TUNLINKAT] = { op_unlinkat, true },
	[P9_TREAD] = { op_read, false },
	[P9_TWRITE] = { op_write, true },
	[P9_TCLUNK] = { op_clunk, false },
	/* Checks read-only itself: the fid goes away either way. */
	[P9_TREMOVE] = { op_remove, false },
	[P9_TSTATFS] = { op_statfs, false },
};

size_t p9_server_handle(struct p9_server *s, const struct iovec *req,
			unsigned int req_cnt, const struct iovec *resp,
			unsigned int resp_cnt)
{
	size_t limit = s->msize, n;
	struct p9_req *r = s->req;
	const struct p9_op *op;
	struct p9_cur out;
	uint16_t tag;
	bool tag_ok;
	int ret;

	if (p9_iov_size(resp, resp_cnt) < P9_RLERROR_SIZE)
		return 0;
	ret = p9_decode(req, req_cnt, s->msize, r, &tag_ok);
	tag = tag_ok ? r->tag : P9_NOTAG;
	if (ret)
		goto err;
	op = &p9_ops[r->type];
	if (!op->fn) {
		ret = -EOPNOTSUPP;
		goto err;
	}
	if (!s->versioned && r->type != P9_TVERSION) {
		ret = -EPROTO;
		goto err;
	}
	if (s->read_only && op->modifies) {
		ret = -EROFS;
		goto err;
	}
	p9_cur_init(&out, resp, resp_cnt, limit);
	p9_reply_begin(&out, (uint8_t)(r->type + 1), tag);
	ret = op->fn(s, r, &out);
	if (!ret) {
		n = p9_reply_end(&out);
		if (n)
			return n;
		ret = -EMSGSIZE;
	}
err:
	return p9_encode_rlerror(resp, resp_cnt, limit, tag, (uint32_t)-ret);
}

void p9_server_reset(struct p9_server *s)
{
	p9_fid_table_clear(s->fids);
	s->versioned = false;
	s->msize = P9_MSIZE_MAX;
}

int p9_server_init(struct p9_server *s, const char *share_dir, bool read_only,
		   char *err, size_t errlen)
{
	struct stat st;
	int ret;

	memset(s, 0, sizeof(*s));
	s->root_fd = s->proc_fd = -1;
	s->read_only = read_only;
	s->msize = P9_MSIZE_MAX;
	s->root_fd = open(share_dir, O_PATH | O_CLOEXEC);
	if (s->root_fd < 0) {
		ret = neg_errno();
		snprintf(err, errlen, "share %s: %s", share_dir,
			 strerror(-ret));
		return ret;
	}
	if (fstat(s->root_fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "share %s: not a directory", share_dir);
		ret = -ENOTDIR;
		goto err_root;
	}
	s->root_dev = st.st_dev;
	s->root_ino = st.st_ino;
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0) {
		ret = neg_errno();
		snprintf(err, errlen, "/proc/self/fd: %s", strerror(-ret));
		goto err_root;
	}
	s->fids = calloc(1, sizeof(*s->fids));
	s->req = malloc(sizeof(*s->req));
	s->dirbuf = malloc(P9_DIRBUF_SIZE);
	s->iov = calloc(P9_IOV_MAX, sizeof(*s->iov));
	if (!s->fids || !s->req || !s->dirbuf || !s->iov) {
		ret = -ENOMEM;
		goto err_mem;
	}
	ret = p9_fid_table_init(s->fids, P9_SERVER_MAX_FIDS);
	if (ret)
		goto err_mem;
	return 0;
err_mem:
	snprintf(err, errlen, "9P server: out of memory");
	free(s->fids);
	free(s->req);
	free(s->dirbuf);
	free(s->iov);
	close(s->proc_fd);
err_root:
	close(s->root_fd);
	s->root_fd = s->proc_fd = -1;
	return ret;
}

void p9_server_exit(struct p9_server *s)
{
	if (s->fids) {
		p9_fid_table_exit(s->fids);
		free(s->fids);
	}
	free(s->req);
	free(s->dirbuf);
	free(s->iov);
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	if (s->root_fd >= 0)
		close(s->root_fd);
	memset(s, 0, sizeof(*s));
	s->root_fd = s->proc_fd = -1;
}
