/* The lease policy: sizes from measured rates, caps, and the bounds of the rates remembered. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <cmocka.h>
#include "alloc.h"
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

/* Past SCHED_WORKERS_MAX workers, the one measured longest ago goes; lookups never return
 * another worker's rate. */
static void test_bounded_by_count(void **state)
{
	struct sched *s = sched_new(1000);
	const int extra = 1000, n = SCHED_WORKERS_MAX + extra;
	char name[32];
	(void)state;
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof name, "w%d", i);
		sched_observe(s, name, (uint64_t)(i + 1) * 1000, 1000, i);
	}
	assert_int_equal(sched_size(s), SCHED_WORKERS_MAX);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof name, "w%d", i);
		assert_true(sched_known_rate(s, name) == (i < extra ? 0 : (double)(i + 1) * 1000));
	}
	/* Measured again, the oldest becomes the newest: the next newcomer evicts w1001. */
	sched_observe(s, "w1000", 1000, 1000, n);
	sched_observe(s, "newcomer", 1000, 1000, n + 1);
	assert_true(sched_known_rate(s, "w1000") > 0);
	assert_true(sched_known_rate(s, "w1001") == 0);
	sched_free(s);
}

/* A worker not measured for SCHED_IDLE_MS is forgotten; one measured meanwhile stays. */
static void test_forgets_idle_workers(void **state)
{
	struct sched *s = sched_new(1000);
	(void)state;
	sched_observe(s, "gone", 1000000, 1000, 0);
	sched_observe(s, "busy", 1000000, 1000, 0);
	sched_observe(s, "busy", 1000000, 1000, SCHED_IDLE_MS - 1);
	sched_observe(s, "other", 1000000, 1000, SCHED_IDLE_MS - 1);
	assert_int_equal(sched_size(s), 3);
	sched_observe(s, "other", 1000000, 1000, SCHED_IDLE_MS);
	assert_true(sched_known_rate(s, "gone") == 0);
	assert_true(sched_rate(s, "gone") == SCHED_DEFAULT_RATE);
	assert_true(sched_known_rate(s, "busy") == 1e6);
	assert_int_equal(sched_size(s), 2);
	sched_free(s);
}

/* Out of memory, a new worker is not remembered and the others are untouched. */
static void test_out_of_memory_forgets_only_the_newcomer(void **state)
{
	struct sched *s = sched_new(1000);
	char name[32];
	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "w%d", i);
		sched_observe(s, name, 1000, 1000, i);
	}
	for (long k = 0; k < 2; k++) {
		alloc_fail_after(k, 0);
		sched_observe(s, "new", 5000, 1000, 100);
		alloc_fail_never();
	}
	assert_true(sched_known_rate(s, "new") == 0 || sched_known_rate(s, "new") == 5000);
	assert_true(sched_size(s) <= 101);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "w%d", i);
		assert_true(sched_known_rate(s, name) == 1000);
	}
	alloc_fail_after(0, 1);
	sched_observe(s, "new2", 5000, 1000, 101);
	alloc_fail_never();
	assert_true(sched_known_rate(s, "new2") == 0);
	sched_free(s);
}

/* The fleet: 10,000 workers of speeds spread log-uniformly over 1e6..1e9 samples/s. Once
 * each has completed a lease, each one's next lease is sized to its own speed (a table of 1,024
 * sized most of them by the default). */
static void test_ten_thousand_workers_each_get_their_own_size(void **state)
{
	struct sched *s = sched_new(1000);
	char name[32];
	(void)state;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 10000; i++) {
			double rate = 1e6 * pow(1000.0, (double)i / 9999.0);
			snprintf(name, sizeof name, "node-%05d", i);
			/* The first lease: the default's size, timed at this worker's speed. */
			uint64_t samples = (uint64_t)(SCHED_DEFAULT_RATE);
			sched_observe(s, name, samples, (int64_t)((double)samples / rate * 1000.0 + 0.5),
				      (int64_t)pass * 20000 + i);
		}
	for (int i = 0; i < 10000; i++) {
		double rate = 1e6 * pow(1000.0, (double)i / 9999.0);
		snprintf(name, sizeof name, "node-%05d", i);
		/* A second of its speed, in batches of 1e4 samples, within the ms rounding above. */
		double want = rate / 1e4, got = (double)sched_lease_batches(s, name, 10000,
									   UINT64_MAX, 0);
		if (got < want * 0.97 - 1 || got > want * 1.03 + 1)
			fail_msg("%s (%.3g samples/s): %.0f batches, want about %.0f", name, rate,
				 got, want);
	}
	sched_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_worker_gets_default_rate),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_rate_follows_observations),
		cmocka_unit_test(test_bounded_by_count),
		cmocka_unit_test(test_forgets_idle_workers),
		cmocka_unit_test(test_out_of_memory_forgets_only_the_newcomer),
		cmocka_unit_test(test_ten_thousand_workers_each_get_their_own_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
