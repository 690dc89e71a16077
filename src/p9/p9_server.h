/*
 * A 9P2000.L file server on a host directory (the share), as Linux's v9fs
 * client uses it (mount -t 9p -o trans=virtio,version=9p2000.L). It knows
 * nothing of virtio: a transport hands it one request message at a time,
 * scattered over iovecs, and gets the reply written into other iovecs.
 *
 * Confinement: every fid holds an O_PATH|O_NOFOLLOW descriptor of its node,
 * and a walk moves one component at a time from it (no '/' in a name, never
 * following a symlink: a symlink can be walked to but not through, so a
 * symlink swapped in between two walks leads nowhere). ".." at the share's
 * root stays at the root. New names are single components created with
 * *at() calls relative to the directory fid's descriptor, and files are
 * (re)opened through /proc/self/fd of that descriptor, so the guest never
 * names a host path. Symlink targets are stored as given and never followed
 * by the server: the guest's kernel resolves them in its own namespace.
 *
 * Identity: files are created and accessed as khyve's own host user;
 * Tsetattr's uid/gid change ownership where the host lets that user
 * (e.g. when khyve runs as root), and the gid of create requests is
 * ignored. Only user.* extended attributes are served.
 *
 * Threads: a server is driven by one thread at a time (the device's I/O
 * thread). Requests run synchronously, so Tflush has nothing to cancel.
 */
#ifndef KHYVE_P9_P9_SERVER_H
#define KHYVE_P9_P9_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/log.h"

/* Most fids one client may hold at once. */
#define P9_SERVER_MAX_FIDS 65536

struct p9_fid_table;
struct p9_req;

struct p9_server {
	int root_fd; /* O_PATH|O_DIRECTORY on the share */
	int proc_fd; /* O_PATH on /proc/self/fd: reopens fids */
	dev_t root_dev;
	ino_t root_ino;
	bool read_only;
	bool versioned; /* a Tversion was answered */
	uint32_t msize; /* negotiated; P9_MSIZE_MAX until Tversion */
	struct p9_fid_table *fids;
	struct p9_req *req; /* the request being decoded */
	void *dirbuf; /* getdents64 buffer for Treaddir */
	struct iovec *iov; /* scratch for preadv/pwritev (VQ_MAX_SEGS) */
};

/*
 * Serve the directory @share_dir (read-only when @read_only: every
 * modifying request gets EROFS). Returns 0, or -errno with one line in
 * @err (e.g. "share /x: No such file or directory", "share /x: not a
 * directory").
 */
int p9_server_init(struct p9_server *s, const char *share_dir, bool read_only,
		   char *err, size_t errlen) __must_check;

/*
 * Handle one request message held in @req (@req_cnt iovecs; bytes past its
 * size[4] are ignored) and write the reply into @resp (@resp_cnt iovecs).
 * Returns the reply's size in bytes. A request that cannot be served (bad
 * size, string, count or fid, host error) gets Rlerror with a Linux errno
 * (EPROTO, EINVAL, EBADF, ENOENT, EROFS...) and its tag when the header
 * was readable (P9_NOTAG otherwise). Returns 0 only when @resp has no room
 * even for the 11 bytes of Rlerror. Replies never exceed the negotiated
 * msize; Rread and Rreaddir data go straight into @resp.
 */
size_t p9_server_handle(struct p9_server *s, const struct iovec *req,
			unsigned int req_cnt, const struct iovec *resp,
			unsigned int resp_cnt);

/* Drop every fid (as a Tversion does); used on device reset. */
void p9_server_reset(struct p9_server *s);

/* Close everything the server holds. */
void p9_server_exit(struct p9_server *s);

#endif
