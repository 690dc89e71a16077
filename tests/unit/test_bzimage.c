/*
 * bzImage parsing and host-side payload decompression: synthetic bzImages
 * with each compression the kernel can use (made here with the same
 * libraries), then truncated, corrupt and unsupported ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "boot/bzimage.h"
#include "boot/decompress.h"

#define PLAIN_LEN 200000

static uint8_t plain[PLAIN_LEN];

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static size_t gzip_compress(uint8_t *out, size_t cap)
{
	z_stream zs = { 0 };

	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9,
				      Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = plain;
	zs.avail_in = PLAIN_LEN;
	zs.next_out = out;
	zs.avail_out = cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	deflateEnd(&zs);
	return zs.total_out; /* gzip's trailer already ends in the size */
}

static size_t xz_compress(uint8_t *out, size_t cap)
{
	size_t pos = 0;

	assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL,
						 plain, PLAIN_LEN, out, &pos, cap),
			 LZMA_OK);
	return pos;
}

static size_t lzma_compress(uint8_t *out, size_t cap)
{
	lzma_stream ls = LZMA_STREAM_INIT;
	lzma_options_lzma opt;

	lzma_lzma_preset(&opt, 6);
	assert_int_equal(lzma_alone_encoder(&ls, &opt), LZMA_OK);
	ls.next_in = plain;
	ls.avail_in = PLAIN_LEN;
	ls.next_out = out;
	ls.avail_out = cap;
	assert_int_equal(lzma_code(&ls, LZMA_FINISH), LZMA_STREAM_END);
	lzma_end(&ls);
	return ls.total_out;
}

/* The kernel's lz4 -l: legacy magic, then (size, block) per 8 MiB. */
static size_t lz4_compress(uint8_t *out, size_t cap)
{
	int n;

	put32(out, 0x184c2102);
	n = LZ4_compress_default((const char *)plain, (char *)out + 8,
				 PLAIN_LEN, (int)cap - 8);
	assert_true(n > 0);
	put32(out + 4, n);
	return 8 + n;
}

static size_t zstd_compress(uint8_t *out, size_t cap)
{
	size_t n = ZSTD_compress(out, cap, plain, PLAIN_LEN, 19);

	assert_false(ZSTD_isError(n));
	return n;
}

struct codec {
	const char *name;
	size_t (*compress)(uint8_t *out, size_t cap);
	int size_append;
};

static const struct codec codecs[] = {
	{ "gzip", gzip_compress, 0 }, { "xz", xz_compress, 1 },
	{ "lzma", lzma_compress, 1 }, { "lz4", lz4_compress, 1 },
	{ "zstd", zstd_compress, 1 },
};

/*
 * A bzImage: 4 setup sectors + boot sector, a setup header of protocol
 * 2.15, then the "protected-mode kernel": 512 bytes of stub + the payload.
 */
static uint8_t *make_bzimage(const struct codec *c, size_t *size)
{
	size_t cap = PLAIN_LEN + 65536, plen;
	uint8_t *img = calloc(1, 5 * 512 + 512 + cap);
	uint8_t *payload = img + 5 * 512 + 512;

	plen = c->compress(payload, cap);
	if (c->size_append) {
		put32(payload + plen, PLAIN_LEN);
		plen += 4;
	}
	img[0x1f1] = 4;
	img[0x1fe] = 0x55;
	img[0x1ff] = 0xaa;
	img[0x200] = 0xeb;
	img[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = 0x0f;
	img[0x207] = 0x02;
	img[0x211] = 0x01;      /* LOADED_HIGH */
	put32(img + 0x22c, 0x7fffffff);
	put32(img + 0x230, 0x200000);
	img[0x234] = 1;
	img[0x236] = 0x03;      /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
	put32(img + 0x238, 2047);
	put32(img + 0x248, 512); /* payload offset in the kernel part */
	put32(img + 0x24c, plen);
	put32(img + 0x258, 0x1000000);
	put32(img + 0x260, 0x800000);
	*size = 5 * 512 + 512 + plen;
	return img;
}

static void each_format(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < PLAIN_LEN; i++)
		plain[i] = (uint8_t)(i * 7 + i / 1000);
	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		struct bzimage bz;
		const char *why = NULL;
		size_t size, out_len;
		uint8_t *img = make_bzimage(&codecs[i], &size), *out;
		int r;

		assert_int_equal(bzimage_parse(img, size, &bz, &why), 0);
		assert_int_equal(bz.version, 0x020f);
		assert_int_equal(bz.cmdline_size, 2047);
		assert_int_equal(bz.hdr_len, 0x26c - 0x1f1);
		assert_string_equal(decompress_format(bz.payload, bz.payload_len),
				    codecs[i].name);
		assert_int_equal(decompress(bz.payload, bz.payload_len, &out,
					    &out_len, &why), 0);
		assert_int_equal(out_len, PLAIN_LEN);
		assert_memory_equal(out, plain, PLAIN_LEN);
		free(out);

		/* Truncated payload: a clear error, never a crash (its last
		 * four bytes then hold a random size, often absurd). */
		r = decompress(bz.payload, bz.payload_len / 2, &out, &out_len,
			       &why);
		assert_true(r == -EINVAL || r == -EFBIG);
		assert_true(strstr(why, "corrupt") || strstr(why, "size"));
		/* Flipped bytes in the middle. */
		img[5 * 512 + 512 + bz.payload_len / 2] ^= 0x5a;
		img[5 * 512 + 512 + bz.payload_len / 2 + 1] ^= 0xa5;
		if (decompress(bz.payload, bz.payload_len, &out, &out_len,
			       &why) == 0) {
			/* Some formats carry no checksum: output differs. */
			assert_memory_not_equal(out, plain, PLAIN_LEN);
			free(out);
		}
		free(img);
	}
}

static void bad_headers(void **state)
{
	struct bzimage bz;
	const char *why = NULL;
	size_t size;
	uint8_t *img = make_bzimage(&codecs[0], &size);

	(void)state;
	assert_int_equal(bzimage_parse(img, 0x100, &bz, &why), -EINVAL);
	img[0x206] = 0x05; /* protocol 2.05 */
	assert_int_equal(bzimage_parse(img, size, &bz, &why), -ENOTSUP);
	assert_non_null(strstr(why, "2.06"));
	img[0x206] = 0x0f;
	img[0x236] = 0;
	assert_int_equal(bzimage_parse(img, size, &bz, &why), -ENOTSUP);
	assert_non_null(strstr(why, "64-bit"));
	img[0x236] = 3;
	img[0x211] = 0;
	assert_int_equal(bzimage_parse(img, size, &bz, &why), -ENOTSUP);
	img[0x211] = 1;
	img[0x1fe] = 0;
	assert_int_equal(bzimage_parse(img, size, &bz, &why), -EINVAL);
	img[0x1fe] = 0x55;
	/* Payload running past the end: truncated file. */
	assert_int_equal(bzimage_parse(img, size - 100, &bz, &why), -EINVAL);
	assert_non_null(strstr(why, "truncated"));
	/* Setup sectors beyond the file. */
	img[0x1f1] = 200;
	assert_int_equal(bzimage_parse(img, size, &bz, &why), -EINVAL);
	img[0x1f1] = 4;
	put32(img + 0x248, 0xfffffff0);
	assert_int_equal(bzimage_parse(img, size, &bz, &why), -EINVAL);
	put32(img + 0x248, 512);
	put32(img + 0x24c, 0xffffffff);
	assert_int_equal(bzimage_parse(img, size, &bz, &why), -EINVAL);
	free(img);
}

static void unsupported_and_absurd(void **state)
{
	static const uint8_t bz2[] = "BZh91AY&SY\0\0\0\0\0\0\0\0";
	static const uint8_t junk[] = "\x00\x01\x02\x03\x04\x05\x06\x07\x08";
	uint8_t gz[32] = { 0x1f, 0x8b, 8, 0 };
	const char *why = NULL;
	size_t out_len;
	uint8_t *out;

	(void)state;
	assert_string_equal(decompress_format(bz2, sizeof(bz2)), "bzip2");
	assert_int_equal(decompress(bz2, sizeof(bz2), &out, &out_len, &why),
			 -ENOTSUP);
	assert_null(decompress_format(junk, sizeof(junk)));
	assert_int_equal(decompress(junk, sizeof(junk), &out, &out_len, &why),
			 -ENOTSUP);
	/* A size trailer of 4 GiB - 1: refused before allocating. */
	memset(gz + 28, 0xff, 4);
	assert_int_equal(decompress(gz, sizeof(gz), &out, &out_len, &why),
			 -EFBIG);
	assert_int_equal(decompress(gz, 5, &out, &out_len, &why), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_format),
		cmocka_unit_test(bad_headers),
		cmocka_unit_test(unsupported_and_absurd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
