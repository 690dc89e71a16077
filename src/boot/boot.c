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
#include "boot/elf.h"
#include "core/vcpu.h"

#define BZIMAGE_MAGIC_OFFSET 0x202

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

	fd = open(path, O_RDONLY | O_CLOEXEC);
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

static bool is_bzimage(const uint8_t *k, size_t size)
{
	uint32_t magic;

	if (size < BZIMAGE_MAGIC_OFFSET + 4)
		return false;
	memcpy(&magic, k + BZIMAGE_MAGIC_OFFSET, 4);
	return magic == BP_HDRS_MAGIC && k[0x1fe] == 0x55 && k[0x1ff] == 0xaa;
}

/* Put the initrd as high in low RAM as it fits, page aligned. */
static int load_initrd(struct vm *vm, const char *path, uint64_t kernel_end,
		       uint64_t *gpa, uint64_t *size, char *err, size_t errlen)
{
	uint64_t top = vm->mem.low_size;
	size_t len;
	void *data;
	int r;

	*gpa = *size = 0;
	if (!path || !*path)
		return 0;
	r = boot_read_file("initrd", path, vm->mem.low_size, &data, &len, err,
			   errlen);
	if (r)
		return r;
	if (len + kernel_end > top) {
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
	struct boot_params_info info = { 0 };
	struct e820_entry map[E820_MAX];
	struct elf_image elf;
	const char *why = "";
	size_t size, cmdlen = strlen(cfg->cmdline);
	uint8_t *kernel, *bp;
	int r;

	if (cmdlen >= LAYOUT_CMDLINE_MAX)
		return fail(err, errlen, -E2BIG, "kernel command line too long "
			    "(%zu bytes, at most %llu)", cmdlen,
			    LAYOUT_CMDLINE_MAX - 1);
	r = boot_read_file("kernel", cfg->kernel, vm->mem.size, (void **)&kernel,
			   &size, err, errlen);
	if (r)
		return r;
	if (is_bzimage(kernel, size)) {
		free(kernel);
		return fail(err, errlen, -ENOTSUP, "kernel %s: bzImage boot is "
			    "not supported yet (give the ELF vmlinux)", cfg->kernel);
	}
	if (!elf_is_elf(kernel, size)) {
		free(kernel);
		return fail(err, errlen, -ENOEXEC, "kernel %s: neither an ELF "
			    "vmlinux nor a bzImage", cfg->kernel);
	}
	r = elf_load(&vm->mem, kernel, size, &elf, &why);
	free(kernel);
	if (r)
		return fail(err, errlen, r, "kernel %s: %s", cfg->kernel, why);
	if (elf.low < LAYOUT_HIGH_MEM)
		return fail(err, errlen, -EINVAL, "kernel %s: loads below 1 MiB, "
			    "where the boot tables are", cfg->kernel);
	r = load_initrd(vm, cfg->initrd, elf.high, &info.initrd_gpa,
			&info.initrd_size, err, errlen);
	if (r)
		return r;

	info.rsdp_gpa = rsdp_gpa;
	info.cmdline_gpa = LAYOUT_CMDLINE;
	info.cmdline_len = cmdlen;
	info.e820 = map;
	info.e820_count = e820_build(&vm->mem, map);
	bp = guest_mem_ptr(&vm->mem, LAYOUT_BOOT_PARAMS, BP_SIZE);
	r = guest_mem_write(&vm->mem, LAYOUT_CMDLINE, cfg->cmdline, cmdlen + 1);
	if (!r)
		r = long_mode_write_tables(&vm->mem);
	if (r || !bp)
		return fail(err, errlen, -EFAULT, "cannot write the boot tables");
	boot_params_fill(bp, &info, NULL, 0);
	long_mode_enter(&vm->vcpus[0], elf.entry, LAYOUT_BOOT_PARAMS);
	return 0;
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
