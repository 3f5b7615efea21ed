/* The dashboard's progress history: every point kept while there is room, then thinned by halves
 * so that the points span the whole run and end at the latest state; bounded in jobs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "history.h"

static void add(struct history *h, int64_t job, uint64_t k)
{
	uint64_t c[KERNEL_MAX_KEYS] = { k * 3, k };
	history_add(h, job, (int64_t)k, k, c);
}

static void test_keeps_then_thins(void **state)
{
	struct history *h = history_new();
	const struct history_point *p;
	size_t n;
	(void)state;

	assert_non_null(h);
	assert_null(history_get(h, 1, &n));
	assert_int_equal(n, 0);
	for (uint64_t k = 1; k <= HISTORY_POINTS; k++)
		add(h, 1, k);
	p = history_get(h, 1, &n);
	assert_int_equal(n, HISTORY_POINTS);
	assert_int_equal(p[0].samples, 1);
	assert_int_equal(p[HISTORY_POINTS - 1].counts[0], 3 * HISTORY_POINTS);
	for (uint64_t k = HISTORY_POINTS + 1; k <= 10000; k++)
		add(h, 1, k);
	p = history_get(h, 1, &n);
	assert_true(n > HISTORY_POINTS / 2 && n <= HISTORY_POINTS);
	assert_int_equal(p[n - 1].samples, 10000); /* ends at the latest */
	assert_int_equal(p[n - 1].t, 10000);
	assert_true(p[0].samples <= 200);          /* and still starts near the start */
	for (size_t i = 1; i < n; i++) {
		assert_true(p[i].samples > p[i - 1].samples);
		assert_int_equal(p[i].counts[0], 3 * p[i].samples);
	}
	history_free(h);
}

static void test_bounded_in_jobs(void **state)
{
	struct history *h = history_new();
	size_t n;
	(void)state;

	for (int64_t j = 1; j <= HISTORY_JOBS + 5; j++)
		add(h, j, 7);
	for (int64_t j = 1; j <= 5; j++) /* the oldest went */
		assert_null(history_get(h, j, &n));
	for (int64_t j = 6; j <= HISTORY_JOBS + 5; j++) {
		assert_non_null(history_get(h, j, &n));
		assert_int_equal(n, 1);
	}
	add(h, HISTORY_JOBS + 5, 8); /* its own slot, not a new one */
	assert_non_null(history_get(h, 6, &n));
	history_free(h);
	history_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keeps_then_thins),
		cmocka_unit_test(test_bounded_in_jobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
