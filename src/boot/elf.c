/* ELF64 loading; see elf.h. */
#include "boot/elf.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

bool elf_is_elf(const void *image, size_t size)
{
	return size >= SELFMAG && !memcmp(image, ELFMAG, SELFMAG);
}

static int check_header(const Elf64_Ehdr *eh, size_t size, const char **why)
{
	uint64_t ph_end;

	if (size < sizeof(*eh)) {
		*why = "truncated ELF header";
		return -EINVAL;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64) {
		*why = "not a 64-bit little-endian x86-64 ELF";
		return -EINVAL;
	}
	if (eh->e_type != ET_EXEC) {
		*why = "not an ELF executable (ET_EXEC)";
		return -EINVAL;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || !eh->e_phnum) {
		*why = "ELF has no usable program headers";
		return -EINVAL;
	}
	ph_end = eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > size || ph_end > size) {
		*why = "ELF program headers beyond the end of the file";
		return -EINVAL;
	}
	return 0;
}

int elf_load(const struct guest_mem *mem, const void *image, size_t size,
	     struct elf_image *out, const char **why)
{
	const Elf64_Ehdr *eh = image;
	const Elf64_Phdr *ph;
	bool loaded = false;
	int i, err;

	if (!elf_is_elf(image, size)) {
		*why = "not an ELF file";
		return -ENOEXEC;
	}
	err = check_header(eh, size, why);
	if (err)
		return err;
	ph = (const Elf64_Phdr *)((const uint8_t *)image + eh->e_phoff);
	out->low = UINT64_MAX;
	out->high = 0;
	for (i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		uint8_t *dst;

		if (p->p_type != PT_LOAD || !p->p_memsz)
			continue;
		if (p->p_filesz > p->p_memsz || p->p_offset > size ||
		    p->p_filesz > size - p->p_offset) {
			*why = "ELF segment beyond the end of the file";
			return -EINVAL;
		}
		dst = guest_mem_ptr(mem, p->p_paddr, p->p_memsz);
		if (!dst) {
			*why = "ELF segment outside guest RAM (more memory with -m?)";
			return -E2BIG;
		}
		memcpy(dst, (const uint8_t *)image + p->p_offset, p->p_filesz);
		memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
		if (p->p_paddr < out->low)
			out->low = p->p_paddr;
		if (p->p_paddr + p->p_memsz > out->high)
			out->high = p->p_paddr + p->p_memsz;
		loaded = true;
	}
	if (!loaded) {
		*why = "ELF has no loadable segment";
		return -EINVAL;
	}
	out->entry = eh->e_entry;
	return 0;
}
