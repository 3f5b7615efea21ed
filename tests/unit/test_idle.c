/* --idle-exit's policy: when an idle worker exits, counted from its start or its last lease's
 * end, and its long polls cut to the time it has left (injected time, no sleeping). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "idle.h"

static void test_never_when_off(void **state)
{
	struct idle i;
	(void)state;
	idle_init(&i, 0, 1000);
	assert_false(idle_expired(&i, 1000));
	assert_false(idle_expired(&i, INT64_MAX / 2));
	assert_int_equal(idle_wait_s(&i, 1000, 30), 30);
	assert_int_equal(idle_wait_s(&i, INT64_MAX / 2, 60), 60);
	idle_init(&i, -5, 1000); /* never below 0 either */
	assert_false(idle_expired(&i, 1000000));
}

static void test_counted_from_the_start(void **state)
{
	struct idle i;
	(void)state;
	idle_init(&i, 10, 5000);
	assert_false(idle_expired(&i, 5000));
	assert_false(idle_expired(&i, 14999));
	assert_true(idle_expired(&i, 15000));
	assert_true(idle_expired(&i, 99000));
}

static void test_a_lease_starts_it_again(void **state)
{
	struct idle i;
	(void)state;
	idle_init(&i, 10, 0);
	idle_lease_ended(&i, 9000);
	assert_false(idle_expired(&i, 18999));
	assert_true(idle_expired(&i, 19000));
	/* A lease that ends after the limit had passed (a long one) also starts it again. */
	idle_lease_ended(&i, 500000);
	assert_false(idle_expired(&i, 509999));
	assert_true(idle_expired(&i, 510000));
}

static void test_long_poll_cut_to_the_time_left(void **state)
{
	struct idle i;
	(void)state;
	idle_init(&i, 5, 0);
	assert_int_equal(idle_wait_s(&i, 0, 30), 5);
	assert_int_equal(idle_wait_s(&i, 0, 3), 3); /* --wait shorter: kept */
	assert_int_equal(idle_wait_s(&i, 1000, 30), 4);
	assert_int_equal(idle_wait_s(&i, 1001, 30), 4); /* 3.999 s left: rounded up */
	assert_int_equal(idle_wait_s(&i, 4001, 30), 1);
	assert_int_equal(idle_wait_s(&i, 4999, 30), 1);
	assert_int_equal(idle_wait_s(&i, 5000, 30), 1); /* never 0: that would spin */
	assert_int_equal(idle_wait_s(&i, 90000, 30), 1);
	idle_init(&i, 3600, 0);
	assert_int_equal(idle_wait_s(&i, 0, 60), 60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_never_when_off),
		cmocka_unit_test(test_counted_from_the_start),
		cmocka_unit_test(test_a_lease_starts_it_again),
		cmocka_unit_test(test_long_poll_cut_to_the_time_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
