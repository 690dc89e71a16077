/*
 * A small 9P2000.L client for the tests: builds requests with the codec's
 * encoder, hands them to p9_server_handle() and checks the reply's header.
 * p9c_call() returns 0 with the reply body at c->rc, or -ecode for an
 * Rlerror. Format letters: b u8, w u16, d u32, q u64, s string,
 * W walk names (an int count then a const char ** array).
 */
#ifndef KHYVE_TESTS_P9_CLIENT_H
#define KHYVE_TESTS_P9_CLIENT_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "p9/p9_codec.h"
#include "p9/p9_server.h"

#define P9C_BUF (P9_MSIZE_MAX + 4096)

struct p9c {
	struct p9_server s;
	uint8_t *req, *resp;
	size_t reqlen, resplen;
	uint16_t tag;
	uint8_t rtype;
	struct p9_cur rc;
	struct iovec riov;
};

static inline void p9c_alloc(struct p9c *c)
{
	c->req = calloc(1, P9C_BUF);
	c->resp = calloc(1, P9C_BUF);
	c->tag = 1;
}

static inline void p9c_free(struct p9c *c)
{
	free(c->req);
	free(c->resp);
}

/* Encode a request of @type into c->req; returns its size. */
static inline size_t p9c_build(struct p9c *c, uint8_t type, const char *fmt,
			       va_list ap)
{
	struct iovec iov = { c->req, P9C_BUF };
	struct p9_cur o;
	const char **names;
	const char *str;
	int n, i;

	p9_cur_init(&o, &iov, 1, SIZE_MAX);
	p9_reply_begin(&o, type, c->tag);
	for (; *fmt; fmt++) {
		switch (*fmt) {
		case 'b':
			p9_put_u8(&o, (uint8_t)va_arg(ap, int));
			break;
		case 'w':
			p9_put_u16(&o, (uint16_t)va_arg(ap, int));
			break;
		case 'd':
			p9_put_u32(&o, va_arg(ap, uint32_t));
			break;
		case 'q':
			p9_put_u64(&o, va_arg(ap, uint64_t));
			break;
		case 's':
			str = va_arg(ap, const char *);
			p9_put_str(&o, str, strlen(str));
			break;
		case 'W':
			n = va_arg(ap, int);
			names = va_arg(ap, const char **);
			p9_put_u16(&o, (uint16_t)n);
			for (i = 0; i < n; i++)
				p9_put_str(&o, names[i], strlen(names[i]));
			break;
		case 'D': /* raw data: size_t len, const void * */
			n = (int)va_arg(ap, size_t);
			str = va_arg(ap, const char *);
			p9_put_bytes(&o, str, (size_t)n);
			break;
		}
	}
	c->reqlen = p9_reply_end(&o);
	return c->reqlen;
}

/* Build a request into c->req without sending it. */
static inline size_t p9c_make(struct p9c *c, uint8_t type, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = p9c_build(c, type, fmt, ap);
	va_end(ap);
	return n;
}

/* Send c->req (c->reqlen bytes) and parse the reply header. */
static inline int p9c_send_iov(struct p9c *c, const struct iovec *req,
			       unsigned int req_cnt, const struct iovec *resp,
			       unsigned int resp_cnt)
{
	uint32_t size, ecode;
	uint16_t tag;

	c->resplen = p9_server_handle(&c->s, req, req_cnt, resp, resp_cnt);
	if (c->resplen == 0)
		return -1000;
	p9_cur_init(&c->rc, resp, resp_cnt, c->resplen);
	size = p9_get_u32(&c->rc);
	c->rtype = p9_get_u8(&c->rc);
	tag = p9_get_u16(&c->rc);
	if (size != c->resplen)
		return -1001;
	c->tag = tag;
	if (c->rtype == P9_RLERROR) {
		ecode = p9_get_u32(&c->rc);
		return -(int)ecode;
	}
	return 0;
}

static inline int p9c_send(struct p9c *c)
{
	struct iovec q = { c->req, c->reqlen };

	c->riov.iov_base = c->resp;
	c->riov.iov_len = P9C_BUF;
	return p9c_send_iov(c, &q, 1, &c->riov, 1);
}

static inline int p9c_call(struct p9c *c, uint8_t type, const char *fmt, ...)
{
	uint16_t tag = c->tag;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	p9c_build(c, type, fmt, ap);
	va_end(ap);
	ret = p9c_send(c);
	if (ret > -1000 && c->tag != tag)
		return -1002;
	if (ret == 0 && c->rtype != type + 1)
		return -1003;
	c->tag = (uint16_t)(tag + 1);
	return ret;
}

#endif
