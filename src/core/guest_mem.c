/* Guest RAM backed by a memfd; see guest_mem.h for the layout. */
#include "core/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void guest_mem_layout(struct guest_mem *mem, uint64_t size)
{
	mem->size = size;
	mem->low_size = size < GUEST_PCI_HOLE_START ? size : GUEST_PCI_HOLE_START;
	mem->high_size = size - mem->low_size;
}

int guest_mem_init(struct guest_mem *mem, uint64_t size)
{
	int err;

	guest_mem_layout(mem, size);
	mem->fd = memfd_create("khyve-ram", MFD_CLOEXEC);
	if (mem->fd < 0)
		return -errno;
	if (ftruncate(mem->fd, (off_t)size) < 0)
		goto err_close;
	/* MAP_NORESERVE: pages are allocated as the guest touches them. */
	mem->host = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_NORESERVE, mem->fd, 0);
	if (mem->host == MAP_FAILED)
		goto err_close;
	madvise(mem->host, size, MADV_DONTDUMP);
	return 0;

err_close:
	err = -errno;
	close(mem->fd);
	mem->fd = -1;
	return err;
}

void guest_mem_exit(struct guest_mem *mem)
{
	if (mem->host && mem->host != MAP_FAILED)
		munmap(mem->host, mem->size);
	if (mem->fd >= 0)
		close(mem->fd);
	mem->host = NULL;
	mem->fd = -1;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	if (end <= mem->low_size)
		return mem->host + gpa;
	if (gpa >= GUEST_4G && end - GUEST_4G <= mem->high_size)
		return mem->host + mem->low_size + (gpa - GUEST_4G);
	return NULL;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src,
		    uint64_t len)
{
	void *p = guest_mem_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst,
		   uint64_t len)
{
	const void *p = guest_mem_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}
