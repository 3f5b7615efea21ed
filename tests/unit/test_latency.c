/* Latency histograms: each observation lands in the first bucket whose bound holds it, the last
 * bucket (+Inf) takes the rest, and the count and sum follow. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "latency.h"

static void test_bounds(void **state)
{
	(void)state;
	assert_true(isinf(latency_le[LATENCY_BUCKETS - 1]));
	for (size_t i = 1; i < LATENCY_BUCKETS; i++)
		assert_true(latency_le[i] > latency_le[i - 1]);
}

static void test_buckets(void **state)
{
	static const struct {
		int64_t us;
		size_t bucket;
	} cases[] = {
		{ 0, 0 },          { 500, 0 },    /* at the bound: in it */
		{ 501, 1 },        { 1000, 1 },   { 2500, 2 },       { 2501, 3 },
		{ 100000, 7 },     { 999999, 10 }, { 1000000, 10 }, { 2500000, 11 },
		{ 2500001, 12 },   { INT64_C(86400000000), 12 }, /* a day: +Inf */
	};
	(void)state;

	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct latency l = { 0 };
		latency_add(&l, cases[k].us);
		for (size_t i = 0; i < LATENCY_BUCKETS; i++)
			if (l.bucket[i] != (i == cases[k].bucket)) {
				print_error("%lld us: bucket %zu holds %llu\n", (long long)cases[k].us, i,
					    (unsigned long long)l.bucket[i]);
				fail();
			}
		assert_int_equal(l.count, 1);
		assert_true(fabs(l.sum_s - (double)cases[k].us / 1e6) < 1e-9);
	}
}

static void test_count_and_sum(void **state)
{
	struct latency l = { 0 };
	uint64_t total = 0;
	(void)state;

	for (int64_t us = 0; us < 3000000; us += 1000)
		latency_add(&l, us);
	for (size_t i = 0; i < LATENCY_BUCKETS; i++)
		total += l.bucket[i];
	assert_int_equal(l.count, 3000);
	assert_int_equal(total, 3000);
	assert_true(fabs(l.sum_s - 2999.0 * 3000 / 2 / 1000) < 1e-6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_count_and_sum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
