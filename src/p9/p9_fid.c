/*
 * The fid table (see p9_fid.h): buckets sized for the cap, so chains stay
 * short even when a client holds every fid it may.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "p9/p9_codec.h"
#include "p9/p9_fid.h"

static unsigned int fid_hash(const struct p9_fid_table *t, uint32_t num)
{
	return (num * 2654435761U) & (t->nbuckets - 1);
}

int p9_fid_table_init(struct p9_fid_table *t, unsigned int max)
{
	unsigned int n = 64;

	while (n < max / 4 && n < (1U << 20))
		n <<= 1;
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->nbuckets = n;
	t->count = 0;
	t->max = max;
	return 0;
}

void p9_fid_release(struct p9_fid *f)
{
	if (f->ofd >= 0)
		close(f->ofd);
	if (f->fd >= 0)
		close(f->fd);
	if (f->xfd >= 0)
		close(f->xfd);
	free(f->path);
	free(f->xname);
	free(f->xbuf);
	f->ofd = f->fd = f->xfd = -1;
	f->path = f->xname = NULL;
	f->xbuf = NULL;
	f->kind = P9_FID_FILE;
	f->oflags = 0;
	f->xsize = f->xfilled = 0;
}

void p9_fid_table_clear(struct p9_fid_table *t)
{
	unsigned int i;

	for (i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct p9_fid *f = t->buckets[i];

			t->buckets[i] = f->next;
			p9_fid_release(f);
			free(f);
		}
	}
	t->count = 0;
}

void p9_fid_table_exit(struct p9_fid_table *t)
{
	if (!t->buckets)
		return;
	p9_fid_table_clear(t);
	free(t->buckets);
	t->buckets = NULL;
}

struct p9_fid *p9_fid_lookup(struct p9_fid_table *t, uint32_t num)
{
	struct p9_fid *f;

	for (f = t->buckets[fid_hash(t, num)]; f; f = f->next)
		if (f->num == num)
			return f;
	return NULL;
}

struct p9_fid *p9_fid_new(struct p9_fid_table *t, uint32_t num, int *err)
{
	struct p9_fid *f;
	unsigned int h;

	if (num == P9_NOFID) {
		*err = -EBADF;
		return NULL;
	}
	if (p9_fid_lookup(t, num)) {
		*err = -EEXIST;
		return NULL;
	}
	if (t->count >= t->max) {
		*err = -EMFILE;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		*err = -ENOMEM;
		return NULL;
	}
	f->num = num;
	f->fd = f->ofd = f->xfd = -1;
	h = fid_hash(t, num);
	f->next = t->buckets[h];
	t->buckets[h] = f;
	t->count++;
	return f;
}

void p9_fid_del(struct p9_fid_table *t, struct p9_fid *f)
{
	struct p9_fid **pp = &t->buckets[fid_hash(t, f->num)];

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = f->next;
		t->count--;
	}
	p9_fid_release(f);
	free(f);
}

void p9_fid_for_each(struct p9_fid_table *t,
		     void (*fn)(struct p9_fid *f, void *arg), void *arg)
{
	unsigned int i;
	struct p9_fid *f;

	for (i = 0; i < t->nbuckets; i++)
		for (f = t->buckets[i]; f; f = f->next)
			fn(f, arg);
}
