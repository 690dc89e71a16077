/* bzImage header parsing; see bzimage.h. */
#include "boot/bzimage.h"

#include <errno.h>
#include <string.h>

#define OFF_SETUP_SECTS 0x1f1
#define OFF_BOOT_FLAG 0x1fe
#define OFF_JUMP 0x200
#define OFF_HEADER 0x202
#define OFF_VERSION 0x206
#define OFF_LOADFLAGS 0x211
#define OFF_INITRD_ADDR_MAX 0x22c
#define OFF_KERNEL_ALIGNMENT 0x230
#define OFF_RELOCATABLE 0x234
#define OFF_XLOADFLAGS 0x236
#define OFF_CMDLINE_SIZE 0x238
#define OFF_PAYLOAD_OFFSET 0x248
#define OFF_PAYLOAD_LENGTH 0x24c
#define OFF_PREF_ADDRESS 0x258
#define OFF_INIT_SIZE 0x260
#define HDR_MIN_END 0x264
#define LOADED_HIGH 0x01

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | (uint32_t)le16(p + 2) << 16;
}

bool bzimage_is_bzimage(const uint8_t *image, size_t size)
{
	return size >= OFF_HEADER + 4 && !memcmp(image + OFF_HEADER, "HdrS", 4);
}

int bzimage_parse(const uint8_t *image, size_t size, struct bzimage *bz,
		  const char **why)
{
	size_t setup_len, hdr_end;
	unsigned int setup_sects;
	uint32_t poff, plen;

	memset(bz, 0, sizeof(*bz));
	if (!bzimage_is_bzimage(image, size) || size < HDR_MIN_END ||
	    le16(image + OFF_BOOT_FLAG) != 0xaa55) {
		*why = "not a bzImage (no setup header)";
		return -EINVAL;
	}
	bz->version = le16(image + OFF_VERSION);
	if (bz->version < BZ_MIN_VERSION) {
		*why = "boot protocol older than 2.06";
		return -ENOTSUP;
	}
	if (!(image[OFF_LOADFLAGS] & LOADED_HIGH)) {
		*why = "not a bzImage (zImage loaded low)";
		return -ENOTSUP;
	}
	if (!(le16(image + OFF_XLOADFLAGS) & BZ_XLF_KERNEL_64)) {
		*why = "not a 64-bit kernel (no 64-bit entry point)";
		return -ENOTSUP;
	}
	/* The header ends where the jump at 0x200 lands. */
	hdr_end = OFF_JUMP + 2 + image[OFF_JUMP + 1];
	if (hdr_end > size || hdr_end < HDR_MIN_END) {
		*why = "setup header truncated";
		return -EINVAL;
	}
	bz->hdr = image + OFF_SETUP_SECTS;
	bz->hdr_len = hdr_end - OFF_SETUP_SECTS;

	setup_sects = image[OFF_SETUP_SECTS] ? image[OFF_SETUP_SECTS] : 4;
	setup_len = (setup_sects + 1) * 512;
	if (setup_len >= size) {
		*why = "truncated: no protected-mode kernel after the setup code";
		return -EINVAL;
	}
	bz->kernel = image + setup_len;
	bz->kernel_len = size - setup_len;

	poff = le32(image + OFF_PAYLOAD_OFFSET);
	plen = le32(image + OFF_PAYLOAD_LENGTH);
	if (!plen || poff > bz->kernel_len || plen > bz->kernel_len - poff) {
		*why = "compressed payload beyond the end of the file (truncated?)";
		return -EINVAL;
	}
	bz->payload = bz->kernel + poff;
	bz->payload_len = plen;
	bz->init_size = le32(image + OFF_INIT_SIZE);
	bz->pref_address = (uint64_t)le32(image + OFF_PREF_ADDRESS) |
			   (uint64_t)le32(image + OFF_PREF_ADDRESS + 4) << 32;
	bz->kernel_alignment = le32(image + OFF_KERNEL_ALIGNMENT);
	bz->relocatable = image[OFF_RELOCATABLE];
	bz->cmdline_size = le32(image + OFF_CMDLINE_SIZE);
	bz->initrd_addr_max = le32(image + OFF_INITRD_ADDR_MAX);
	return 0;
}
