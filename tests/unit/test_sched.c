/* The lease policy: sizes from measured rates, caps, and the bounded table of workers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include "sched.h"

static void test_unknown_worker_gets_default_rate(void **state)
{
	struct sched *s = sched_new(1000);
	(void)state;
	assert_true(sched_rate(s, "new") == SCHED_DEFAULT_RATE);
	/* one second at the default rate, in batches of 1e5 */
	assert_int_equal(sched_lease_batches(s, "new", 100000, 1000000, 0),
			 (uint64_t)(SCHED_DEFAULT_RATE / 100000));
	sched_free(s);
}

static void test_bounds(void **state)
{
	struct sched *s = sched_new(1000);
	(void)state;
	assert_int_equal(sched_lease_batches(s, "w", 100000, 3, 0), 3);      /* remaining */
	assert_int_equal(sched_lease_batches(s, "w", 1ULL << 40, 10, 0), 1); /* at least one */
	assert_int_equal(sched_lease_batches(s, "w", 1, 1ULL << 50, 7), 7);  /* max_batches */
	sched_free(s);
}

static void test_rate_follows_observations(void **state)
{
	struct sched *s = sched_new(500);
	(void)state;
	sched_observe(s, "fast", 1000000000, 1000, 1); /* 1e9/s */
	assert_true(sched_rate(s, "fast") == 1e9);
	/* half a second of 1e9/s in batches of 1e5 */
	assert_int_equal(sched_lease_batches(s, "fast", 100000, 1ULL << 40, 0), 5000);
	sched_observe(s, "fast", 500000000, 1000, 2); /* now 5e8/s: the estimate moves halfway */
	assert_true(sched_rate(s, "fast") == 7.5e8);
	/* Tiny durations are clamped, so a near-instant lease does not claim infinite speed. */
	sched_observe(s, "instant", 1000, 0, 3);
	assert_true(sched_rate(s, "instant") == 1000 * 1000.0 / 5);
	/* Others are unaffected. */
	assert_true(sched_rate(s, "slow") == SCHED_DEFAULT_RATE);
	sched_free(s);
}

static void test_table_evicts_stalest(void **state)
{
	struct sched *s = sched_new(1000);
	char name[32];
	(void)state;
	/* Far more workers than slots: every insert succeeds and lookups never return a wrong
	 * worker's rate. */
	for (int i = 0; i < 5 * SCHED_WORKERS; i++) {
		snprintf(name, sizeof name, "w%d", i);
		sched_observe(s, name, (uint64_t)(i + 1) * 1000, 1000, i);
		assert_true(sched_rate(s, name) == (double)(i + 1) * 1000);
	}
	int remembered = 0;
	for (int i = 0; i < 5 * SCHED_WORKERS; i++) {
		snprintf(name, sizeof name, "w%d", i);
		double r = sched_rate(s, name);
		assert_true(r == SCHED_DEFAULT_RATE || r == (double)(i + 1) * 1000);
		remembered += r != SCHED_DEFAULT_RATE;
	}
	assert_true(remembered <= SCHED_WORKERS);
	assert_true(remembered > SCHED_WORKERS / 2);
	sched_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_worker_gets_default_rate),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_rate_follows_observations),
		cmocka_unit_test(test_table_evicts_stalest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
