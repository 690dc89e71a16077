/*
 * Decompressing a bzImage's payload on the host with the host's libraries
 * (zlib, liblzma, liblz4, libzstd), so the guest never runs its own
 * decompressor. Each format is an entry in a table: magic bytes and a
 * decoder. The kernel's build appends the uncompressed size as the last
 * four bytes of every payload (scripts/Makefile.lib, size_append; gzip's
 * own trailer is the same field), which sizes the output exactly.
 */
#ifndef KHYVE_BOOT_DECOMPRESS_H
#define KHYVE_BOOT_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define DECOMPRESS_MAX (512ULL << 20)

/* The format name of @in ("gzip", "xz", ...) or NULL when unknown. */
const char *decompress_format(const uint8_t *in, size_t len);
/*
 * Decompress @in into a new buffer of exactly the size its trailer names.
 * 0, or -errno with *why: unknown format (-ENOTSUP), corrupt or truncated
 * data (-EINVAL), output over DECOMPRESS_MAX (-EFBIG).
 */
int decompress(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
	       const char **why) __must_check;

#endif
