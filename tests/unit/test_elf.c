/* The ELF loader against good, truncated and hostile images. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "boot/elf.h"

struct image {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	uint8_t payload[64];
};

static void make_image(struct image *im)
{
	memset(im, 0, sizeof(*im));
	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_X86_64;
	im->eh.e_entry = 0x100010;
	im->eh.e_phoff = offsetof(struct image, ph);
	im->eh.e_phentsize = sizeof(Elf64_Phdr);
	im->eh.e_phnum = 2;
	im->ph[0].p_type = PT_LOAD;
	im->ph[0].p_offset = offsetof(struct image, payload);
	im->ph[0].p_paddr = 0x100000;
	im->ph[0].p_filesz = 64;
	im->ph[0].p_memsz = 4096; /* with bss */
	im->ph[1].p_type = PT_NOTE;
	memset(im->payload, 0xab, sizeof(im->payload));
}

static int setup(void **state)
{
	struct guest_mem *mem = calloc(1, sizeof(*mem));

	guest_mem_layout(mem, 64ULL << 20);
	mem->host = calloc(1, mem->size);
	*state = mem;
	return 0;
}

static int teardown(void **state)
{
	struct guest_mem *mem = *state;

	free(mem->host);
	free(mem);
	return 0;
}

static void loads_segments(void **state)
{
	struct guest_mem *mem = *state;
	struct elf_image out;
	struct image im;
	const char *why = NULL;

	make_image(&im);
	memset(mem->host + 0x100000 + 64, 0xcc, 64); /* stale bss bytes */
	assert_int_equal(elf_load(mem, &im, sizeof(im), &out, &why), 0);
	assert_int_equal(out.entry, 0x100010);
	assert_int_equal(out.low, 0x100000);
	assert_int_equal(out.high, 0x101000);
	assert_memory_equal(mem->host + 0x100000, im.payload, 64);
	assert_int_equal(mem->host[0x100000 + 64], 0);
	assert_int_equal(mem->host[0x100000 + 127], 0);
}

static void rejects(struct guest_mem *mem, struct image *im, size_t size,
		    const char *expect)
{
	struct elf_image out;
	const char *why = NULL;

	assert_true(elf_load(mem, im, size, &out, &why) < 0);
	assert_non_null(why);
	if (!strstr(why, expect))
		fail_msg("got \"%s\", expected \"%s\"", why, expect);
}

static void bad_images(void **state)
{
	struct guest_mem *mem = *state;
	struct image im;

	make_image(&im);
	rejects(mem, &im, 3, "not an ELF");
	rejects(mem, &im, 10, "truncated");
	rejects(mem, &im, 40, "truncated");
	im.eh.e_ident[EI_CLASS] = ELFCLASS32;
	rejects(mem, &im, sizeof(im), "64-bit");
	make_image(&im);
	im.eh.e_machine = EM_AARCH64;
	rejects(mem, &im, sizeof(im), "x86-64");
	make_image(&im);
	im.eh.e_type = ET_DYN;
	rejects(mem, &im, sizeof(im), "ET_EXEC");
	make_image(&im);
	im.eh.e_phoff = 0xfffffffffffffff0ULL;
	rejects(mem, &im, sizeof(im), "program headers");
	make_image(&im);
	im.eh.e_phnum = 0xffff;
	rejects(mem, &im, sizeof(im), "program headers");
	make_image(&im);
	im.ph[0].p_offset = sizeof(im) - 10;
	rejects(mem, &im, sizeof(im), "end of the file");
	make_image(&im);
	im.ph[0].p_filesz = 0xffffffffffffff00ULL;
	im.ph[0].p_memsz = 0xffffffffffffff00ULL;
	rejects(mem, &im, sizeof(im), "end of the file");
	make_image(&im);
	im.ph[0].p_paddr = 63ULL << 20; /* runs past 64 MiB */
	im.ph[0].p_memsz = 2ULL << 20;
	rejects(mem, &im, sizeof(im), "outside guest RAM");
	make_image(&im);
	im.ph[0].p_paddr = 0xfffffffffffff000ULL;
	rejects(mem, &im, sizeof(im), "outside guest RAM");
	make_image(&im);
	im.ph[0].p_type = PT_NOTE;
	rejects(mem, &im, sizeof(im), "no loadable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(loads_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_images, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
