/* The dashboard's progress history: every point kept while there is room, then thinned by halves
 * so that the points span the whole run and end at the latest state; bounded in jobs: the most
 * recent jobs are kept, the owner holding the most slots giving up its oldest first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "history.h"

static void add_as(struct history *h, const char *owner, int64_t job, uint64_t k)
{
	uint64_t c[KERNEL_MAX_KEYS] = { k * 3, k };
	history_add(h, job, owner, (int64_t)k, k, c);
}

static void add(struct history *h, int64_t job, uint64_t k)
{
	add_as(h, "alice", job, k);
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

/* 70 jobs updated in turn, three rounds (as the fair scheduler runs them): the 64 most recent
 * keep all their points. Evicting the lowest id held, a job older than every one held took the
 * slot of the job that had just taken one (job 7 kept 1 point); evicting the least recently
 * updated, every job would evict the next one due and all would keep 1. */
static void test_jobs_in_turn_keep_their_points(void **state)
{
	struct history *h = history_new();
	size_t n;
	(void)state;

	for (uint64_t k = 1; k <= 3; k++)
		for (int64_t j = 1; j <= HISTORY_JOBS + 6; j++)
			add(h, j, k);
	for (int64_t j = 1; j <= 6; j++) /* older than every job held: no slot */
		assert_null(history_get(h, j, &n));
	for (int64_t j = 7; j <= HISTORY_JOBS + 6; j++) {
		assert_non_null(history_get(h, j, &n));
		assert_int_equal(n, 3);
	}
	history_free(h);
}

/* Jobs run newest first (higher priority on newer jobs): the newest are kept, with all their
 * points, though older jobs ran since. */
static void test_newest_kept_whatever_order_jobs_run_in(void **state)
{
	struct history *h = history_new();
	size_t n;
	(void)state;

	for (int64_t j = HISTORY_JOBS + 6; j >= 1; j--)
		for (uint64_t k = 1; k <= 3; k++)
			add(h, j, k);
	for (int64_t j = 1; j <= 6; j++)
		assert_null(history_get(h, j, &n));
	for (int64_t j = 7; j <= HISTORY_JOBS + 6; j++) {
		assert_non_null(history_get(h, j, &n));
		assert_int_equal(n, 3);
	}
	/* A freed slot is taken by any job, however old. */
	history_remove(h, 50);
	add(h, 1, 1);
	assert_non_null(history_get(h, 1, &n));
	history_free(h);
}

/* One owner's flood of newer jobs replaces its own jobs' points, never another owner's while it
 * holds more slots than that owner. */
static void test_one_owner_cannot_evict_the_others(void **state)
{
	const int64_t flood = 10, end = flood + 5 * HISTORY_JOBS;
	struct history *h = history_new();
	size_t n;
	(void)state;

	for (int64_t j = 1; j <= 4; j++)
		add_as(h, "bob", j, 1);
	for (int64_t j = flood; j < end; j++)
		add_as(h, "mallory", j, 1);
	for (int64_t j = 1; j <= 4; j++) {
		assert_non_null(history_get(h, j, &n));
		assert_int_equal(n, 1);
	}
	/* mallory keeps the rest, its most recent jobs. */
	for (int64_t j = end - (HISTORY_JOBS - 4); j < end; j++)
		assert_non_null(history_get(h, j, &n));
	assert_null(history_get(h, end - (HISTORY_JOBS - 3), &n));
	/* bob's new job takes the slot of mallory's oldest. */
	add_as(h, "bob", end, 1);
	assert_non_null(history_get(h, 1, &n));
	assert_non_null(history_get(h, end, &n));
	assert_null(history_get(h, end - (HISTORY_JOBS - 4), &n));
	history_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keeps_then_thins),
		cmocka_unit_test(test_bounded_in_jobs),
		cmocka_unit_test(test_jobs_in_turn_keep_their_points),
		cmocka_unit_test(test_newest_kept_whatever_order_jobs_run_in),
		cmocka_unit_test(test_one_owner_cannot_evict_the_others),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
