/*
 * The pure xsave/xrstor logic: which bytes of the standard-format area
 * xsave writes and how it merges XSTATE_BV, the xrstor header checks, and
 * what xrstor loads, initialises and refuses (MXCSR), on a made-up layout
 * with x87, SSE, AVX and opmask state. No vCPU needed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/pvm/pvm_xsave.h"

#define YMM_OFF 576
#define YMM_LEN 256
#define K_OFF 1088 /* opmask, component 5 */
#define K_LEN 64
#define AREA_LEN 1152
#define KBUF_LEN 4096
#define FP PVM_XFEATURE_FP
#define SSE PVM_XFEATURE_SSE
#define YMM PVM_XFEATURE_YMM
#define K (1ULL << 5)

static struct pvm_xsave_layout layout(void)
{
	struct pvm_xsave_layout l;

	memset(&l, 0, sizeof(l));
	l.supported = FP | SSE | YMM | K;
	l.offset[2] = YMM_OFF;
	l.size[2] = YMM_LEN;
	l.offset[5] = K_OFF;
	l.size[5] = K_LEN;
	l.mxcsr_mask = 0xffff;
	return l;
}

/* A guest area over @buf split in two segments, as across a page. */
static void area_over(struct pvm_area *a, uint8_t *buf, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->len = len;
	a->nr_segs = 2;
	a->seg[0].host = buf;
	a->seg[0].len = 600;
	a->seg[1].host = buf + 600;
	a->seg[1].len = len - 600;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void test_extent(void **state)
{
	struct pvm_xsave_layout l = layout();

	(void)state;
	assert_int_equal(pvm_xsave_extent(&l, 0), 576);
	assert_int_equal(pvm_xsave_extent(&l, FP | SSE), 576);
	assert_int_equal(pvm_xsave_extent(&l, FP | SSE | YMM), 832);
	assert_int_equal(pvm_xsave_extent(&l, K), 1152);
	assert_int_equal(pvm_xsave_extent(&l, 1ULL << 3), 0);
	assert_int_equal(pvm_xsave_extent(&l, 1ULL << 63), 0);
}

static void test_save(void **state)
{
	struct pvm_xsave_layout l = layout();
	uint8_t *kbuf = malloc(KBUF_LEN), *buf = malloc(AREA_LEN);
	uint8_t *before = malloc(AREA_LEN);
	uint64_t rfbm = FP | SSE | YMM;
	struct pvm_area a;

	(void)state;
	fill(kbuf, KBUF_LEN, 1);
	put32(kbuf + 24, 0x1fa0);
	put64(kbuf + 512, FP | YMM | K); /* XINUSE: SSE in its initial state */
	memset(buf, 0xee, AREA_LEN);
	put64(buf + 512, SSE | K | (1ULL << 9));
	memcpy(before, buf, AREA_LEN);
	area_over(&a, buf, AREA_LEN);

	assert_int_equal(pvm_xsave_save(&l, kbuf, KBUF_LEN, rfbm, true, &a), 0);
	assert_memory_equal(buf, kbuf, 24);
	assert_int_equal(get32(buf + 24), 0x1fa0);
	assert_int_equal(get32(buf + 28), 0xffff); /* the CPU's mask */
	assert_memory_equal(buf + 32, kbuf + 32, 128);
	assert_memory_equal(buf + 160, kbuf + 160, 256);
	assert_memory_equal(buf + 416, before + 416, 96); /* not written */
	/* RFBM bits take XINUSE, the others are kept. */
	assert_int_equal(get64(buf + 512), FP | YMM | K | (1ULL << 9));
	assert_memory_equal(buf + 520, before + 520, 56); /* rest of header */
	assert_memory_equal(buf + YMM_OFF, kbuf + YMM_OFF, YMM_LEN);
	assert_memory_equal(buf + K_OFF, before + K_OFF, K_LEN); /* not in RFBM */

	/* Without REX.W: 32-bit FIP/FDP, FCS/FDS stored as 0. */
	put64(kbuf + 8, 0xffffffff81234567ULL);
	put64(kbuf + 16, 0xffff888012345678ULL);
	assert_int_equal(pvm_xsave_save(&l, kbuf, KBUF_LEN, FP, false, &a), 0);
	assert_int_equal(get64(buf + 8), 0x81234567);
	assert_int_equal(get64(buf + 16), 0x12345678);

	/* x87 only: MXCSR and XMM left alone. */
	memcpy(buf, before, AREA_LEN);
	assert_int_equal(pvm_xsave_save(&l, kbuf, KBUF_LEN, FP, true, &a), 0);
	assert_memory_equal(buf + 24, before + 24, 8);
	assert_memory_equal(buf + 160, before + 160, 256);
	assert_int_equal(get64(buf + 512), SSE | K | (1ULL << 9) | FP);

	/* AVX only: MXCSR goes with it, x87 and XMM do not. */
	memcpy(buf, before, AREA_LEN);
	assert_int_equal(pvm_xsave_save(&l, kbuf, KBUF_LEN, YMM, true, &a), 0);
	assert_memory_equal(buf, before, 24);
	assert_int_equal(get32(buf + 24), get32(kbuf + 24));
	assert_memory_equal(buf + 160, before + 160, 256);
	assert_memory_equal(buf + YMM_OFF, kbuf + YMM_OFF, YMM_LEN);

	/* Opmask too: the area must reach 1152 bytes, the buffer too. */
	assert_int_equal(pvm_xsave_save(&l, kbuf, KBUF_LEN, rfbm | K, true, &a), 0);
	assert_memory_equal(buf + K_OFF, kbuf + K_OFF, K_LEN);
	a.len = 1100;
	assert_int_equal(pvm_xsave_save(&l, kbuf, KBUF_LEN, rfbm | K, true, &a), -EINVAL);
	a.len = AREA_LEN;
	assert_int_equal(pvm_xsave_save(&l, kbuf, 1000, rfbm | K, true, &a), -EINVAL);
	assert_int_equal(pvm_xsave_save(&l, kbuf, KBUF_LEN, 1ULL << 3, true, &a), -EINVAL);

	free(kbuf);
	free(buf);
	free(before);
}

static void test_check_header(void **state)
{
	uint8_t hdr[64] = { 0 };
	struct pvm_exc exc;
	uint64_t bv = 0;

	(void)state;
	put64(hdr, FP | SSE | YMM);
	assert_int_equal(pvm_xsave_check_header(hdr, FP | SSE | YMM, &bv, &exc), 0);
	assert_int_equal(bv, FP | SSE | YMM);
	/* Bytes 63:24 are not checked by the standard form. */
	hdr[40] = 1;
	assert_int_equal(pvm_xsave_check_header(hdr, FP | SSE | YMM, &bv, &exc), 0);
	/* XSTATE_BV outside XCR0. */
	assert_int_equal(pvm_xsave_check_header(hdr, FP | SSE, &bv, &exc), -EFAULT);
	assert_int_equal(exc.vector, PVM_VEC_GP);
	assert_true(exc.has_error_code);
	assert_int_equal(exc.error_code, 0);
	/* Compacted format. */
	put64(hdr + 8, (1ULL << 63) | FP | SSE | YMM);
	assert_int_equal(pvm_xsave_check_header(hdr, FP | SSE | YMM, &bv, &exc), -EFAULT);
	assert_int_equal(exc.vector, PVM_VEC_GP);
	/* Bytes 23:16. */
	put64(hdr + 8, 0);
	hdr[23] = 0x80;
	assert_int_equal(pvm_xsave_check_header(hdr, FP | SSE | YMM, &bv, &exc), -EFAULT);
}

struct restore_fixture {
	struct pvm_xsave_layout l;
	uint8_t *kbuf;
	uint8_t *kbuf_before;
	uint8_t *buf;
	struct pvm_area a;
};

static int restore_setup(void **state)
{
	struct restore_fixture *f = calloc(1, sizeof(*f));

	f->l = layout();
	f->kbuf = malloc(KBUF_LEN);
	f->kbuf_before = malloc(KBUF_LEN);
	f->buf = malloc(AREA_LEN);
	fill(f->kbuf, KBUF_LEN, 3);
	put32(f->kbuf + 24, 0x1f80);
	put32(f->kbuf + 28, 0xffff);
	put64(f->kbuf + 512, FP | SSE | YMM | K);
	put64(f->kbuf + 520, 0);
	memcpy(f->kbuf_before, f->kbuf, KBUF_LEN);
	fill(f->buf, AREA_LEN, 100);
	put32(f->buf + 24, 0x9fc0);
	put32(f->buf + 28, 0x12345678); /* ignored by xrstor */
	area_over(&f->a, f->buf, AREA_LEN);
	*state = f;
	return 0;
}

static int restore_teardown(void **state)
{
	struct restore_fixture *f = *state;

	free(f->kbuf);
	free(f->kbuf_before);
	free(f->buf);
	free(f);
	return 0;
}

static void test_restore_load(void **state)
{
	struct restore_fixture *f = *state;
	uint64_t rfbm = FP | SSE | YMM;
	struct pvm_exc exc;

	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, rfbm, rfbm, true,
					   &f->a, &exc), 0);
	assert_memory_equal(f->kbuf, f->buf, 24);
	assert_int_equal(get32(f->kbuf + 24), 0x9fc0);
	assert_int_equal(get32(f->kbuf + 28), 0xffff);
	assert_memory_equal(f->kbuf + 32, f->buf + 32, 128);
	assert_memory_equal(f->kbuf + 160, f->buf + 160, 256);
	assert_memory_equal(f->kbuf + 416, f->kbuf_before + 416, 96);
	assert_memory_equal(f->kbuf + YMM_OFF, f->buf + YMM_OFF, YMM_LEN);
	assert_memory_equal(f->kbuf + K_OFF, f->kbuf_before + K_OFF, K_LEN);
	assert_int_equal(get64(f->kbuf + 512), FP | SSE | YMM | K);
	assert_int_equal(get64(f->kbuf + 520), 0);
}

static void test_restore_init(void **state)
{
	struct restore_fixture *f = *state;
	uint64_t rfbm = FP | SSE | YMM | K;
	uint8_t zero[256] = { 0 };
	struct pvm_exc exc;

	/* XSTATE_BV 0: everything requested goes to its initial state... */
	f->a.len = 576;
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, rfbm, 0, true,
					   &f->a, &exc), 0);
	assert_int_equal(get32(f->kbuf), 0x037f); /* FCW; FSW 0 */
	assert_memory_equal(f->kbuf + 4, zero, 20);
	assert_memory_equal(f->kbuf + 32, zero, 128);
	assert_memory_equal(f->kbuf + 160, zero, 256);
	assert_memory_equal(f->kbuf + YMM_OFF, zero, YMM_LEN);
	assert_memory_equal(f->kbuf + K_OFF, zero, K_LEN);
	/* ...but the standard form still loads MXCSR from memory, and SSE is
	 * marked in use so that KVM keeps the non-default value. */
	assert_int_equal(get32(f->kbuf + 24), 0x9fc0);
	assert_int_equal(get64(f->kbuf + 512), SSE);

	/* With the default MXCSR nothing is marked in use. */
	put32(f->buf + 24, 0x1f80);
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, rfbm, 0, true,
					   &f->a, &exc), 0);
	assert_int_equal(get64(f->kbuf + 512), 0);
}

static void test_restore_partial(void **state)
{
	struct restore_fixture *f = *state;
	struct pvm_exc exc;

	/* RFBM = x87: MXCSR, XMM and the rest untouched. */
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, FP, FP | SSE, true,
					   &f->a, &exc), 0);
	assert_memory_equal(f->kbuf, f->buf, 24);
	assert_memory_equal(f->kbuf + 24, f->kbuf_before + 24, 8);
	assert_memory_equal(f->kbuf + 160, f->kbuf_before + 160, KBUF_LEN - 160);
	assert_int_equal(get64(f->kbuf + 512), FP | SSE | YMM | K);

	/* RFBM = AVX with XSTATE_BV[2] = 0: YMM init, MXCSR loaded, XMM kept. */
	memcpy(f->kbuf, f->kbuf_before, KBUF_LEN);
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, YMM, FP, true,
					   &f->a, &exc), 0);
	assert_int_equal(get32(f->kbuf + 24), 0x9fc0);
	assert_memory_equal(f->kbuf + 160, f->kbuf_before + 160, 256);
	assert_memory_equal(f->kbuf, f->kbuf_before, 24);
	assert_int_equal(get64(f->kbuf + 512), FP | SSE | K);
}

static void test_restore_32bit_x87(void **state)
{
	struct restore_fixture *f = *state;
	struct pvm_exc exc;

	put32(f->buf + 8, 0x81234567);
	put32(f->buf + 12, 0x10); /* FCS, dropped */
	put32(f->buf + 16, 0x12345678);
	put32(f->buf + 20, 0x18); /* FDS, dropped */
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, FP, FP, false,
					   &f->a, &exc), 0);
	assert_int_equal(get64(f->kbuf + 8), 0x81234567);
	assert_int_equal(get64(f->kbuf + 16), 0x12345678);
}

static void test_restore_refused(void **state)
{
	struct restore_fixture *f = *state;
	struct pvm_exc exc;

	/* Reserved MXCSR bits: #GP(0), buffer untouched. */
	put32(f->buf + 24, 0x10000);
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, FP | SSE,
					   FP | SSE, true, &f->a, &exc), -EFAULT);
	assert_int_equal(exc.vector, PVM_VEC_GP);
	assert_int_equal(exc.error_code, 0);
	assert_memory_equal(f->kbuf, f->kbuf_before, KBUF_LEN);
	/* The same MXCSR is not looked at when RFBM has neither SSE nor AVX. */
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, FP, FP | SSE,
					   true, &f->a, &exc), 0);

	/* An area too short for what must be loaded, a buffer too short. */
	memcpy(f->kbuf, f->kbuf_before, KBUF_LEN);
	f->a.len = 800;
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, KBUF_LEN, YMM, YMM,
					   true, &f->a, &exc), -EINVAL);
	f->a.len = AREA_LEN;
	assert_int_equal(pvm_xsave_restore(&f->l, f->kbuf, 800, YMM, YMM, true,
					   &f->a, &exc), -EINVAL);
	assert_memory_equal(f->kbuf, f->kbuf_before, KBUF_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extent),
		cmocka_unit_test(test_save),
		cmocka_unit_test(test_check_header),
		cmocka_unit_test_setup_teardown(test_restore_load, restore_setup,
						restore_teardown),
		cmocka_unit_test_setup_teardown(test_restore_init, restore_setup,
						restore_teardown),
		cmocka_unit_test_setup_teardown(test_restore_partial, restore_setup,
						restore_teardown),
		cmocka_unit_test_setup_teardown(test_restore_32bit_x87, restore_setup,
						restore_teardown),
		cmocka_unit_test_setup_teardown(test_restore_refused, restore_setup,
						restore_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
