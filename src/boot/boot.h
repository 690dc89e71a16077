/*
 * Getting the guest started: firmware mapped below 4 GiB (-f bootrom), or a
 * kernel loaded and entered directly (-f kexec): an ELF enters in 64-bit mode
 * with the Linux boot protocol's zero page, command line and initrd.
 * Everything is checked before the VM runs; a bad file gets one sentence.
 */
#ifndef KHYVE_BOOT_BOOT_H
#define KHYVE_BOOT_BOOT_H

#include <stddef.h>

#include "config/config.h"
#include "core/vm.h"

/*
 * Load what @cfg asks into @vm and set up vCPU 0; @rsdp_gpa (0: none) goes
 * to the kernel in boot_params. 0 or -errno with @err.
 */
int boot_load(struct vm *vm, const struct config *cfg, uint64_t rsdp_gpa,
	      char *err, size_t errlen) __must_check;
/*
 * Read the whole of @path (at most @max bytes) into a new buffer. 0, or
 * -errno with @err naming the file and the problem.
 */
int boot_read_file(const char *what, const char *path, size_t max, void **buf,
		   size_t *size, char *err, size_t errlen) __must_check;

#endif
