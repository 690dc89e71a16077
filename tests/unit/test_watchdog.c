/* The stuck-vCPU watchdog's judgement, on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/watchdog.h"

static void stuck_after_samples(void **state)
{
	struct watchdog_state st = { 0 };
	int i;

	(void)state;
	/* Moving RIP: never stuck. */
	for (i = 0; i < 10; i++)
		assert_false(watchdog_judge(&st, 0x1000 + i, true, 0));
	/* Same RIP for N samples in a row: reported once, at the Nth. */
	for (i = 1; i < WATCHDOG_STUCK_SAMPLES; i++)
		assert_false(watchdog_judge(&st, 0x2000, true, 0));
	assert_true(watchdog_judge(&st, 0x2000, true, 0));
	for (i = 0; i < 5; i++)
		assert_false(watchdog_judge(&st, 0x2000, true, 0));
	/* It moved on, then stuck again: reported again. */
	for (i = 1; i < WATCHDOG_STUCK_SAMPLES; i++)
		assert_false(watchdog_judge(&st, 0x3000, true, 0));
	assert_true(watchdog_judge(&st, 0x3000, true, 0));
}

static void idle_or_user_is_not_stuck(void **state)
{
	struct watchdog_state st = { 0 };
	int i;

	(void)state;
	/* A halted vCPU waits for interrupts: idle, not stuck. */
	for (i = 0; i < 10; i++)
		assert_false(watchdog_judge(&st, 0x4000, false, 0));
	/* A user-mode spin loop is the guest's own business. */
	for (i = 0; i < 10; i++)
		assert_false(watchdog_judge(&st, 0x4000, true, 3));
}

static void hypercalls(void **state)
{
	static const uint8_t vmcall[] = { 0x0f, 0x01, 0xc1 };
	static const uint8_t vmmcall[] = { 0x0f, 0x01, 0xd9 };
	static const uint8_t other[] = { 0x0f, 0x01, 0xd0 }; /* xgetbv */

	(void)state;
	assert_true(watchdog_is_hypercall(vmcall, 3));
	assert_true(watchdog_is_hypercall(vmmcall, 3));
	assert_false(watchdog_is_hypercall(other, 3));
	assert_false(watchdog_is_hypercall(vmcall, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stuck_after_samples),
		cmocka_unit_test(idle_or_user_is_not_stuck),
		cmocka_unit_test(hypercalls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
