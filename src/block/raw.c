/*
 * The raw format: the disk is the file, byte for byte, so a request goes
 * to the engine as it is. Raw has no magic: it is what a file is when no
 * other format claims it (or when format=raw says so).
 */
#include "block/blk.h"

#include <errno.h>

static bool raw_probe(const uint8_t *head, size_t len)
{
	(void)head;
	(void)len;
	return false;
}

/* The size and sector sizes blk_open() read from the file are the disk's. */
static int raw_open(struct blk *b, char *err, size_t errlen)
{
	(void)b;
	(void)err;
	(void)errlen;
	return 0;
}

static int raw_submit(struct blk *b, struct blk_req *req)
{
	/* blk_submit() checked the range; kept here as the format's promise. */
	if (req->op != BLK_OP_FLUSH &&
	    (req->offset > b->size || req->len > b->size - req->offset))
		return -EINVAL;
	return b->engine->submit(b, req);
}

static int raw_close(struct blk *b)
{
	(void)b;
	return 0;
}

const struct blk_format_ops blk_format_raw = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.submit = raw_submit,
	.close = raw_close,
};
