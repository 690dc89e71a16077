/*
 * A disk's -s conf, in either of the two forms HyperKit accepts:
 *
 *   bhyve's    PATH[,ro][,nocache][,direct|sync][,nodelete]
 *                  [,sectorsize=L[/P]][,format=raw|qcow2][,discard=on|off]
 *                  [,engine=uring|sync]
 *   HyperKit's file://PATH?sync=..&buffered=0|1,format=qcow[,qcow-config=..]
 *
 * HyperKit's second form is mirage-block's URI: buffered=0 is O_DIRECT;
 * sync= says what a flush does (none, os, drive, or 0/1), and is accepted
 * without effect because khyve's flush always reaches stable storage.
 * qcow-config= carries mirage-qcow's tuning, ';'-separated: its discard
 * and read_only keys count, the others (compaction, checks) are accepted
 * and have no effect here. Anything unknown is an error naming it.
 */
#include "block/blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_OPTIONS                                         \
	"ro, nocache, direct, sync, nodelete, sectorsize=, " \
	"format=, discard=, engine=, qcow-config="

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "on", "true", "1", "yes" };
	static const char *const no[] = { "off", "false", "0", "no" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_u32(const char *s, char **end, uint32_t *out)
{
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, end, 10);
	if (errno || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* "L" or "L/P", powers of two, 512 <= L <= P <= 64 KiB. */
static int parse_sectorsize(const char *v, struct blk_options *o)
{
	uint32_t l, p;
	char *end;

	if (parse_u32(v, &end, &l))
		return -EINVAL;
	p = l;
	if (*end == '/' && parse_u32(end + 1, &end, &p))
		return -EINVAL;
	if (*end)
		return -EINVAL;
	if (l < 512 || p < l || p > 65536 || (l & (l - 1)) || (p & (p - 1)))
		return -EINVAL;
	o->logical_block = l;
	o->physical_block = p;
	return 0;
}

/* mirage-qcow's "key=value;key=value". */
static int parse_qcow_config(char *v, struct blk_options *o, char *err,
			     size_t errlen)
{
	static const char *const ignored[] = {
		"compact_after_unmaps",
		"compact_ms",
		"check_on_connect",
		"runtime_asserts",
		"keep_erased",
	};
	char *save = NULL, *kv;

	for (kv = strtok_r(v, ";", &save); kv;
	     kv = strtok_r(NULL, ";", &save)) {
		char *val = strchr(kv, '=');
		bool known = false, b;
		size_t i;

		if (!val)
			goto bad;
		*val++ = '\0';
		if (!strcmp(kv, "discard") || !strcmp(kv, "read_only")) {
			if (parse_bool(val, &b))
				goto bad_value;
			if (!strcmp(kv, "discard"))
				o->discard = b;
			else if (b)
				o->read_only = true;
			continue;
		}
		for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
			known |= !strcmp(kv, ignored[i]);
		if (!known)
			goto bad;
		continue;
bad_value:
		snprintf(err, errlen, "qcow-config: bad value '%s' for %s", val,
			 kv);
		return -EINVAL;
bad:
		snprintf(err, errlen, "qcow-config: unknown setting '%s'", kv);
		return -EINVAL;
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* file://PATH?k=v&k=v: PATH is percent-decoded in place. */
static int parse_uri(char *uri, struct blk_conf *c, char *err, size_t errlen)
{
	char *path = uri + strlen("file://");
	char *query = strchr(path, '?');
	char *save = NULL, *kv, *in, *out;

	if (query)
		*query++ = '\0';
	for (in = out = path; *in; in++, out++) {
		if (*in == '%' && hexval(in[1]) >= 0 && hexval(in[2]) >= 0) {
			*out = (char)(hexval(in[1]) << 4 | hexval(in[2]));
			in += 2;
		} else {
			*out = *in;
		}
	}
	*out = '\0';
	if (!*path) {
		snprintf(err, errlen, "file:// names no path");
		return -EINVAL;
	}
	c->path = strdup(path);
	if (!c->path)
		return -ENOMEM;
	for (kv = query ? strtok_r(query, "&", &save) : NULL; kv;
	     kv = strtok_r(NULL, "&", &save)) {
		char *val = strchr(kv, '=');
		bool b;

		if (val)
			*val++ = '\0';
		if (val && !strcmp(kv, "buffered") && !parse_bool(val, &b)) {
			c->opts.nocache = !b;
		} else if (val && !strcmp(kv, "sync") &&
			   (!parse_bool(val, &b) || !strcmp(val, "none") ||
			    !strcmp(val, "os") || !strcmp(val, "drive"))) {
			continue;
		} else {
			snprintf(err, errlen,
				 "file://%s: unknown or bad "
				 "parameter '%s' (expected sync=0|1, "
				 "buffered=0|1)",
				 c->path, kv);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_option(char *opt, struct blk_conf *c, char *err, size_t errlen)
{
	struct blk_options *o = &c->opts;
	char *val = strchr(opt, '=');

	if (val)
		*val++ = '\0';
	if (!val) {
		if (!strcmp(opt, "ro"))
			o->read_only = true;
		else if (!strcmp(opt, "nocache"))
			o->nocache = true;
		else if (!strcmp(opt, "direct") || !strcmp(opt, "sync"))
			o->sync = true;
		else if (!strcmp(opt, "nodelete"))
			o->discard = false;
		else
			goto unknown;
		return 0;
	}
	if (!strcmp(opt, "sectorsize")) {
		if (parse_sectorsize(val, o))
			goto bad_value;
	} else if (!strcmp(opt, "format")) {
		if (!strcmp(val, "raw"))
			o->format = BLK_FORMAT_RAW;
		else if (!strcmp(val, "qcow2") || !strcmp(val, "qcow"))
			o->format = BLK_FORMAT_QCOW2;
		else
			goto bad_value;
	} else if (!strcmp(opt, "discard")) {
		if (parse_bool(val, &o->discard))
			goto bad_value;
	} else if (!strcmp(opt, "engine")) {
		if (!strcmp(val, "uring") || !strcmp(val, "io_uring"))
			o->engine = BLK_ENGINE_URING;
		else if (!strcmp(val, "sync"))
			o->engine = BLK_ENGINE_SYNC;
		else
			goto bad_value;
	} else if (!strcmp(opt, "qcow-config")) {
		return parse_qcow_config(val, o, err, errlen);
	} else {
		goto unknown;
	}
	return 0;

bad_value:
	snprintf(err, errlen, "bad value '%s' for disk option %s", val, opt);
	return -EINVAL;
unknown:
	snprintf(err, errlen, "unknown disk option '%s' (expected %s)", opt,
		 CONF_OPTIONS);
	return -EINVAL;
}

int blk_conf_parse(const char *conf, struct blk_conf *c, char *err,
		   size_t errlen)
{
	char *copy, *tok, *save = NULL;
	int r = 0;

	memset(c, 0, sizeof(*c));
	c->opts.discard = true;
	c->opts.engine = BLK_ENGINE_AUTO;
	c->opts.format = BLK_FORMAT_AUTO;
	if (!conf || !*conf || *conf == ',') {
		snprintf(
			err, errlen,
			"a disk image path is required "
			"(PATH[,ro][,nocache][,direct][,sectorsize=L[/P]]...)");
		return -EINVAL;
	}
	copy = strdup(conf);
	if (!copy)
		return -ENOMEM;
	tok = strtok_r(copy, ",", &save);
	if (!strncmp(tok, "file://", strlen("file://"))) {
		r = parse_uri(tok, c, err, errlen);
	} else {
		c->path = strdup(tok);
		if (!c->path)
			r = -ENOMEM;
	}
	while (!r && (tok = strtok_r(NULL, ",", &save)))
		r = parse_option(tok, c, err, errlen);
	free(copy);
	c->opts.path = c->path;
	return r;
}

void blk_conf_free(struct blk_conf *c)
{
	free(c->path);
	c->path = NULL;
	c->opts.path = NULL;
}
