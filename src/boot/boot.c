/* Boot set-up; see boot.h. */
#include "boot/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "arch/x86/long_mode.h"
#include "boot/boot_params.h"
#include "boot/bzimage.h"
#include "boot/decompress.h"
#include "boot/elf.h"
#include "core/vcpu.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__printf(4, 5);

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

int boot_read_file(const char *what, const char *path, size_t max, void **buf,
		   size_t *size, char *err, size_t errlen)
{
	struct stat st;
	size_t done = 0;
	uint8_t *p;
	int fd, e;

	/* Non-blocking: a FIFO must fail the regular-file check, not hang. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fail(err, errlen, -errno, "%s %s: %s", what, path,
			    strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, -EINVAL, "%s %s: not a regular file",
			    what, path);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return fail(err, errlen, -EFBIG, "%s %s: too large (%lld bytes, "
			    "at most %zu)", what, path, (long long)st.st_size, max);
	}
	p = malloc(st.st_size ? st.st_size : 1);
	if (!p) {
		close(fd);
		return fail(err, errlen, -ENOMEM, "%s %s: out of memory", what,
			    path);
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, p + done, st.st_size - done);

		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			free(p);
			close(fd);
			return fail(err, errlen, -e, "%s %s: read error: %s",
				    what, path, strerror(e));
		}
		done += n;
	}
	close(fd);
	*buf = p;
	*size = done;
	return 0;
}

static int load_bootrom(struct vm *vm, const char *path, char *err,
			size_t errlen)
{
	size_t size, padded;
	uint8_t *image, *rom;
	int r;

	r = boot_read_file("bootrom", path, VM_BOOTROM_MAX, (void **)&image,
			   &size, err, errlen);
	if (r)
		return r;
	if (!size) {
		free(image);
		return fail(err, errlen, -EINVAL, "bootrom %s: empty file", path);
	}
	/* The reset vector is at the end: pad at the front to whole pages. */
	padded = (size + 4095) & ~4095UL;
	rom = malloc(padded);
	if (!rom) {
		free(image);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	memset(rom, 0xff, padded - size);
	memcpy(rom + padded - size, image, size);
	free(image);
	r = vm_map_bootrom(vm, rom, padded);
	free(rom);
	if (r)
		return fail(err, errlen, r, "bootrom %s: cannot map it: %s", path,
			    strerror(-r));
	return 0;
}

/* Where and how the kernel was loaded. */
struct kernel_load {
	uint64_t entry;
	uint64_t end;            /* first byte after the kernel's memory */
	const uint8_t *hdr;      /* bzImage setup header, or NULL for an ELF */
	size_t hdr_len;
	uint64_t initrd_max;     /* highest initrd byte + 1 the kernel accepts */
	uint32_t cmdline_max;
};

static int load_elf(struct vm *vm, const char *path, const uint8_t *image,
		    size_t size, struct kernel_load *kl, char *err, size_t errlen)
{
	struct elf_image elf;
	const char *why = "";
	int r = elf_load(&vm->mem, image, size, &elf, &why);

	if (r)
		return fail(err, errlen, r, "kernel %s: %s", path, why);
	if (elf.low < LAYOUT_HIGH_MEM)
		return fail(err, errlen, -EINVAL, "kernel %s: loads below 1 MiB, "
			    "where the boot tables are", path);
	kl->entry = elf.entry;
	kl->end = elf.high;
	return 0;
}

/*
 * A bzImage whose payload the host cannot decompress: load the
 * protected-mode kernel at its preferred address and enter its own 64-bit
 * entry point (startup_64, 0x200 in), which decompresses in the guest.
 */
static int load_bzimage_entry(struct vm *vm, const char *path,
			      const struct bzimage *bz, struct kernel_load *kl,
			      char *err, size_t errlen)
{
	uint64_t load = bz->pref_address ? bz->pref_address : 0x1000000;
	uint64_t need = bz->init_size > bz->kernel_len ? bz->init_size :
							 bz->kernel_len;

	if (!guest_mem_ptr(&vm->mem, load, need))
		return fail(err, errlen, -E2BIG, "kernel %s: needs %llu MiB "
			    "from %llu MiB on: more memory with -m", path,
			    (unsigned long long)(need >> 20),
			    (unsigned long long)(load >> 20));
	if (guest_mem_write(&vm->mem, load, bz->kernel, bz->kernel_len))
		return fail(err, errlen, -EFAULT, "kernel %s: cannot load it",
			    path);
	kl->entry = load + 0x200;
	kl->end = load + need;
	return 0;
}

static int load_bzimage(struct vm *vm, const char *path, const uint8_t *image,
			size_t size, struct kernel_load *kl, char *err,
			size_t errlen)
{
	const char *why = "", *format;
	struct bzimage bz;
	uint8_t *elf;
	size_t elf_len;
	int r = bzimage_parse(image, size, &bz, &why);

	if (r)
		return fail(err, errlen, r, "kernel %s: %s", path, why);
	kl->hdr = bz.hdr;
	kl->hdr_len = bz.hdr_len;
	kl->cmdline_max = bz.cmdline_size;
	if (bz.initrd_addr_max)
		kl->initrd_max = (uint64_t)bz.initrd_addr_max + 1;
	format = decompress_format(bz.payload, bz.payload_len);
	r = decompress(bz.payload, bz.payload_len, &elf, &elf_len, &why);
	if (r == -ENOTSUP) {
		debug("kernel %s: %s payload: booting its own 64-bit entry",
		      path, format ? format : "unknown");
		return load_bzimage_entry(vm, path, &bz, kl, err, errlen);
	}
	if (r)
		return fail(err, errlen, r, "kernel %s: %s payload: %s", path,
			    format, why);
	if (!elf_is_elf(elf, elf_len)) {
		free(elf);
		return fail(err, errlen, -EINVAL, "kernel %s: the %s payload "
			    "is not an ELF vmlinux", path, format);
	}
	r = load_elf(vm, path, elf, elf_len, kl, err, errlen);
	free(elf);
	return r;
}

/* Put the initrd as high as the kernel accepts, page aligned. */
static int load_initrd(struct vm *vm, const char *path,
		       const struct kernel_load *kl, uint64_t *gpa,
		       uint64_t *size, char *err, size_t errlen)
{
	uint64_t top = vm->mem.low_size;
	size_t len;
	void *data;
	int r;

	*gpa = *size = 0;
	if (!path || !*path)
		return 0;
	if (kl->initrd_max && kl->initrd_max < top)
		top = kl->initrd_max;
	r = boot_read_file("initrd", path, vm->mem.low_size, &data, &len, err,
			   errlen);
	if (r)
		return r;
	if (top < kl->end || len > top - kl->end) {
		free(data);
		return fail(err, errlen, -E2BIG, "initrd %s: %zu bytes do not fit "
			    "in guest memory after the kernel (more memory with -m?)",
			    path, len);
	}
	*gpa = (top - len) & ~4095ULL;
	*size = len;
	r = guest_mem_write(&vm->mem, *gpa, data, len);
	free(data);
	return r ? fail(err, errlen, r, "initrd %s: cannot place it", path) : 0;
}

static int load_kexec(struct vm *vm, const struct config *cfg,
		      uint64_t rsdp_gpa, char *err, size_t errlen)
{
	struct kernel_load kl = { .cmdline_max = LAYOUT_CMDLINE_MAX - 1 };
	struct boot_params_info info = { 0 };
	struct e820_entry map[E820_MAX];
	size_t size, cmdlen = strlen(cfg->cmdline);
	uint8_t *kernel, *bp;
	int r;

	r = boot_read_file("kernel", cfg->kernel, DECOMPRESS_MAX,
			   (void **)&kernel, &size, err, errlen);
	if (r)
		return r;
	if (bzimage_is_bzimage(kernel, size))
		r = load_bzimage(vm, cfg->kernel, kernel, size, &kl, err, errlen);
	else if (elf_is_elf(kernel, size))
		r = load_elf(vm, cfg->kernel, kernel, size, &kl, err, errlen);
	else
		r = fail(err, errlen, -ENOEXEC, "kernel %s: neither an ELF "
			 "vmlinux nor a bzImage", cfg->kernel);
	if (!r && (cmdlen > kl.cmdline_max || cmdlen >= LAYOUT_CMDLINE_MAX))
		r = fail(err, errlen, -E2BIG, "kernel command line too long "
			 "(%zu bytes; this kernel takes at most %u)", cmdlen,
			 kl.cmdline_max);
	if (!r)
		r = load_initrd(vm, cfg->initrd, &kl, &info.initrd_gpa,
				&info.initrd_size, err, errlen);
	if (r)
		goto out;

	info.rsdp_gpa = rsdp_gpa;
	info.cmdline_gpa = LAYOUT_CMDLINE;
	info.cmdline_len = cmdlen;
	info.e820 = map;
	info.e820_count = e820_build(&vm->mem, map);
	bp = guest_mem_ptr(&vm->mem, LAYOUT_BOOT_PARAMS, BP_SIZE);
	r = guest_mem_write(&vm->mem, LAYOUT_CMDLINE, cfg->cmdline, cmdlen + 1);
	if (!r)
		r = long_mode_write_tables(&vm->mem);
	if (r || !bp) {
		r = fail(err, errlen, -EFAULT, "cannot write the boot tables");
		goto out;
	}
	/* The setup header points into the kernel image: fill before free. */
	boot_params_fill(bp, &info, kl.hdr, kl.hdr_len);
	long_mode_enter(&vm->vcpus[0], kl.entry, LAYOUT_BOOT_PARAMS);
out:
	free(kernel);
	return r;
}

int boot_load(struct vm *vm, const struct config *cfg, uint64_t rsdp_gpa,
	      char *err, size_t errlen)
{
	switch (cfg->boot) {
	case BOOT_BOOTROM:
		return load_bootrom(vm, cfg->bootrom, err, errlen);
	case BOOT_KEXEC:
		return load_kexec(vm, cfg, rsdp_gpa, err, errlen);
	default:
		return fail(err, errlen, -EINVAL, "nothing to boot: give "
			    "-f kexec,KERNEL,INITRD,CMDLINE or -f bootrom,FILE");
	}
}
