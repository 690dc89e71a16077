/*
 * libFuzzer target: a kernel image as khyve reads it from a file. The input
 * goes through the same steps as -f kexec: bzImage header parsing, payload
 * decompression, ELF loading into a small guest memory. Any crash, hang or
 * sanitizer report is a bug; errors are the expected outcome for most
 * inputs. Build and run: make fuzz (clang with -fsanitize=fuzzer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/bzimage.h"
#include "boot/decompress.h"
#include "boot/elf.h"

static struct guest_mem mem;

/*
 * Under ASan a 512 MiB allocation costs a lot of shadow memory per input;
 * outputs over 16 MiB exercise nothing more in the decoders than smaller
 * ones, so such inputs skip decompression (decompress() itself refuses only
 * above DECOMPRESS_MAX, tested in tests/unit/test_bzimage.c).
 */
static int try_decompress(const uint8_t *in, size_t len, uint8_t **out,
			  size_t *out_len)
{
	const char *why = NULL;
	uint32_t size;

	if (len < 4)
		return -1;
	memcpy(&size, in + len - 4, 4);
	if (size > (16U << 20))
		return -1;
	return decompress(in, len, out, out_len, &why);
}

static void load_elf(const uint8_t *data, size_t size)
{
	struct elf_image out;
	const char *why = NULL;

	if (elf_load(&mem, data, size, &out, &why) == 0 &&
	    (out.low > out.high || !guest_mem_ptr(&mem, out.low, out.high - out.low)))
		abort(); /* a success must describe memory that exists */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	struct bzimage bz;
	uint8_t *out;
	size_t out_len;

	if (!mem.host) {
		/* Small, so an absurd p_memsz costs little per input. */
		guest_mem_layout(&mem, 4ULL << 20);
		mem.host = calloc(1, mem.size);
	}
	if (bzimage_is_bzimage(data, size)) {
		if (bzimage_parse(data, size, &bz, &why))
			return 0;
		if (bz.payload < data || bz.payload + bz.payload_len > data + size)
			abort();
		if (try_decompress(bz.payload, bz.payload_len, &out,
				   &out_len) == 0) {
			load_elf(out, out_len);
			free(out);
		}
		return 0;
	}
	if (decompress_format(data, size) &&
	    try_decompress(data, size, &out, &out_len) == 0)
		free(out);
	load_elf(data, size);
	return 0;
}
