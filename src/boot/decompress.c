/* Payload decompression; see decompress.h. */
#include "boot/decompress.h"

#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define LZ4_LEGACY_MAGIC 0x184c2102U
#define LZ4_LEGACY_BLOCK (8U << 20)

struct format {
	const char *name;
	const uint8_t *magic;
	size_t magic_len;
	/* Whether the size trailer follows the data (all but gzip, whose
	 * own trailer ends in the size). */
	bool size_appended;
	/* Fill @out (@out_len bytes exactly); 0 or -EINVAL. */
	int (*decode)(const uint8_t *in, size_t len, uint8_t *out,
		      size_t out_len);
};

static int gzip_decode(const uint8_t *in, size_t len, uint8_t *out,
		       size_t out_len)
{
	z_stream zs = { 0 };
	int r;

	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = len;
	zs.next_out = out;
	zs.avail_out = out_len;
	r = inflate(&zs, Z_FINISH);
	inflateEnd(&zs);
	return r == Z_STREAM_END && zs.total_out == out_len ? 0 : -EINVAL;
}

static int lzma_run(lzma_stream *ls, const uint8_t *in, size_t len,
		    uint8_t *out, size_t out_len)
{
	lzma_ret r;

	ls->next_in = in;
	ls->avail_in = len;
	ls->next_out = out;
	ls->avail_out = out_len;
	r = lzma_code(ls, LZMA_FINISH);
	/* LZMA "alone" streams may end without an end marker: full output. */
	if (r == LZMA_BUF_ERROR && ls->avail_out == 0)
		r = LZMA_STREAM_END;
	lzma_end(ls);
	return (r == LZMA_STREAM_END || (r == LZMA_OK && !ls->avail_out)) &&
			       ls->total_out == out_len ?
		       0 :
		       -EINVAL;
}

static int xz_decode(const uint8_t *in, size_t len, uint8_t *out,
		     size_t out_len)
{
	lzma_stream ls = LZMA_STREAM_INIT;

	if (lzma_stream_decoder(&ls, UINT64_MAX, 0) != LZMA_OK)
		return -ENOMEM;
	return lzma_run(&ls, in, len, out, out_len);
}

static int lzma_decode(const uint8_t *in, size_t len, uint8_t *out,
		       size_t out_len)
{
	lzma_stream ls = LZMA_STREAM_INIT;

	if (lzma_alone_decoder(&ls, UINT64_MAX) != LZMA_OK)
		return -ENOMEM;
	return lzma_run(&ls, in, len, out, out_len);
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* LZ4 legacy frames (lz4 -l): magic, then (size, block) pairs of 8 MiB. */
static int lz4_decode(const uint8_t *in, size_t len, uint8_t *out,
		      size_t out_len)
{
	size_t pos = 0, done = 0;

	while (done < out_len && len - pos >= 4) {
		uint32_t chunk = le32(in + pos);
		int n;

		pos += 4;
		if (chunk == LZ4_LEGACY_MAGIC)
			continue;
		if (chunk > len - pos || chunk > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK))
			return -EINVAL;
		n = LZ4_decompress_safe((const char *)in + pos,
					(char *)out + done, (int)chunk,
					(int)(out_len - done < LZ4_LEGACY_BLOCK ?
						      out_len - done :
						      LZ4_LEGACY_BLOCK));
		if (n < 0)
			return -EINVAL;
		pos += chunk;
		done += n;
	}
	return done == out_len ? 0 : -EINVAL;
}

static int zstd_decode(const uint8_t *in, size_t len, uint8_t *out,
		       size_t out_len)
{
	size_t n = ZSTD_decompress(out, out_len, in, len);

	return !ZSTD_isError(n) && n == out_len ? 0 : -EINVAL;
}

static const struct format formats[] = {
	{ "gzip", (const uint8_t *)"\x1f\x8b", 2, false, gzip_decode },
	{ "xz", (const uint8_t *)"\xfd" "7zXZ\0", 6, true, xz_decode },
	{ "lzma", (const uint8_t *)"\x5d\x00\x00", 3, true, lzma_decode },
	{ "lz4", (const uint8_t *)"\x02\x21\x4c\x18", 4, true, lz4_decode },
	{ "zstd", (const uint8_t *)"\x28\xb5\x2f\xfd", 4, true, zstd_decode },
	/* Known, but no decoder: booted through the bzImage's own entry. */
	{ "bzip2", (const uint8_t *)"BZh", 3, true, NULL },
	{ "lzo", (const uint8_t *)"\x89LZO", 4, true, NULL },
};

static const struct format *find(const uint8_t *in, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (len >= formats[i].magic_len &&
		    !memcmp(in, formats[i].magic, formats[i].magic_len))
			return &formats[i];
	return NULL;
}

const char *decompress_format(const uint8_t *in, size_t len)
{
	const struct format *f = find(in, len);

	return f ? f->name : NULL;
}

int decompress(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
	       const char **why)
{
	const struct format *f = find(in, len);
	uint32_t size;
	uint8_t *buf;
	int r;

	if (!f || !f->decode) {
		*why = "compression format not supported";
		return -ENOTSUP;
	}
	if (len < 8) {
		*why = "compressed kernel truncated";
		return -EINVAL;
	}
	size = le32(in + len - 4);
	if (!size || size > DECOMPRESS_MAX) {
		*why = "uncompressed kernel size out of range";
		return -EFBIG;
	}
	buf = malloc(size);
	if (!buf) {
		*why = "out of memory";
		return -ENOMEM;
	}
	r = f->decode(in, f->size_appended ? len - 4 : len, buf, size);
	if (r) {
		free(buf);
		*why = "compressed kernel is corrupt or truncated";
		return r;
	}
	*out = buf;
	*out_len = size;
	return 0;
}
