/*
 * Tier 2 for virtio-rnd: the host-side driver posts writable buffers and
 * checks they come back filled (and different), honours the 64 KiB cap,
 * and that a hostile chain sets NEEDS_RESET without harming the process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/virtio_rnd.h"
#include "vdriver.h"

struct fixture {
	struct vdriver d;
	struct virtio_rnd *rnd;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	if (vdriver_init(&f.d, 128ULL << 20) ||
	    virtio_rnd_init(&f.rnd, "virtio-rnd-test", &f.d.mem))
		return -1;
	vdriver_attach(&f.d, virtio_rnd_dev(f.rnd));
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_rnd_destroy(f->rnd);
	vdriver_exit(&f->d);
	return 0;
}

static void test_fills_buffers(void **state)
{
	struct fixture *f = *state;
	static const uint8_t zero[256];
	uint64_t a[2];
	unsigned int i;

	assert_true(vdriver_start(&f->d, ~0ULL, 0) & VIRTIO_STATUS_DRIVER_OK);
	for (i = 0; i < 2; i++) {
		struct vdriver_buf in = { vdriver_alloc(&f->d, 256, 16), 256 };
		uint16_t head, got;
		uint32_t len;

		a[i] = in.gpa;
		memset(vdriver_ptr(&f->d, in.gpa), 0, 256);
		head = vdriver_post(&f->d, 0, NULL, 0, &in, 1, i == 1);
		vdriver_kick(&f->d, 0);
		assert_int_equal(vdriver_wait_used(&f->d, 0, &got, &len, 5000), 1);
		assert_int_equal(got, head);
		assert_int_equal(len, 256);
		assert_memory_not_equal(vdriver_ptr(&f->d, in.gpa), zero, 256);
	}
	assert_memory_not_equal(vdriver_ptr(&f->d, a[0]),
				vdriver_ptr(&f->d, a[1]), 256);
}

static void test_request_capped(void **state)
{
	struct fixture *f = *state;
	struct vdriver_buf in[2] = {
		{ vdriver_alloc(&f->d, 48 * 1024, 16), 48 * 1024 },
		{ vdriver_alloc(&f->d, 48 * 1024, 16), 48 * 1024 },
	};
	uint16_t head;
	uint32_t len;

	assert_true(vdriver_start(&f->d, ~0ULL, 0) & VIRTIO_STATUS_DRIVER_OK);
	vdriver_post(&f->d, 0, NULL, 0, in, 2, false);
	vdriver_kick(&f->d, 0);
	assert_int_equal(vdriver_wait_used(&f->d, 0, &head, &len, 5000), 1);
	assert_int_equal(len, 64 * 1024);
}

static void test_hostile_chain(void **state)
{
	struct fixture *f = *state;
	struct vdriver_buf in = { ~0ULL - 100, 4096 }; /* wraps around */
	uint16_t head;
	uint32_t len;

	assert_true(vdriver_start(&f->d, ~0ULL, 0) & VIRTIO_STATUS_DRIVER_OK);
	vdriver_post(&f->d, 0, NULL, 0, &in, 1, false);
	vdriver_kick(&f->d, 0);
	assert_true(vdriver_wait_config(&f->d, 5000));
	assert_true(vdriver_status(&f->d) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(vdriver_wait_used(&f->d, 0, &head, &len, 100), 0);
	/* After a reset it serves again. */
	test_fills_buffers(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fills_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chain, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
