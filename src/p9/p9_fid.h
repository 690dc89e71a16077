/*
 * The 9P server's fid table: fid numbers chosen by the client, mapped to
 * what the server holds for each. A chained hash on the fid number (Linux
 * hands out small sequential fids; other clients may not), with a hard cap
 * on how many fids one client may hold. Private to src/p9.
 */
#ifndef KHYVE_P9_P9_FID_H
#define KHYVE_P9_P9_FID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/log.h"

enum p9_fid_kind {
	P9_FID_FILE, /* a file, directory or other node */
	P9_FID_XATTR_READ, /* Txattrwalk: the value (or name list) to Tread */
	P9_FID_XATTR_WRITE, /* Txattrcreate: Twrite the value, set at Tclunk */
};

struct p9_fid {
	uint32_t num;
	struct p9_fid *next; /* hash chain */
	enum p9_fid_kind kind;
	int fd; /* O_PATH|O_NOFOLLOW on the node (-1: xattr fids) */
	int ofd; /* after Tlopen/Tlcreate: the open file, else -1 */
	int oflags; /* host open flags of ofd */
	mode_t type; /* st_mode & S_IFMT */
	dev_t dev;
	ino_t ino;
	/* Relative to the share ("" is its root); NULL when too long. */
	char *path;
	/* Xattr fids. */
	char *xname;
	uint8_t *xbuf;
	size_t xsize; /* value size (read: bytes held; write: announced) */
	size_t xfilled; /* write: bytes received so far */
	int xflags;
	int xfd; /* write: O_PATH fd of the node to set it on */
};

struct p9_fid_table {
	struct p9_fid **buckets;
	unsigned int nbuckets; /* power of two */
	unsigned int count;
	unsigned int max;
};

/* An empty table holding at most @max fids. -ENOMEM. */
int p9_fid_table_init(struct p9_fid_table *t, unsigned int max) __must_check;
/* Free every fid (closing its fds) and the table. */
void p9_fid_table_exit(struct p9_fid_table *t);
/* Free every fid, keep the table (Tversion). */
void p9_fid_table_clear(struct p9_fid_table *t);
/* The fid numbered @num, or NULL. */
struct p9_fid *p9_fid_lookup(struct p9_fid_table *t, uint32_t num);
/*
 * A new, empty fid numbered @num (fds -1) in the table. NULL with *@err
 * -EEXIST (in use), -EMFILE (table full), -ENOMEM, or -EBADF for NOFID.
 */
struct p9_fid *p9_fid_new(struct p9_fid_table *t, uint32_t num, int *err);
/* Remove @f from the table, close its fds and free it. */
void p9_fid_del(struct p9_fid_table *t, struct p9_fid *f);
/* Close @f's fds and free what it holds, leaving it empty (fds -1). */
void p9_fid_release(struct p9_fid *f);
/* Call @fn for each fid. @fn must not add or delete fids. */
void p9_fid_for_each(struct p9_fid_table *t,
		     void (*fn)(struct p9_fid *f, void *arg), void *arg);

#endif
