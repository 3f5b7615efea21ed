/* The pass-over memory (server/passover.h): each worker's jobs apart, its bound with the least
 * recently added evicted (a renewed one kept), expiry on the injected clock, the bound on
 * workers, forgetting an ended job for every worker, and a failed allocation that changes
 * nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include "alloc.h"
#include "passover.h"

#define T0 1000000 /* a start time, ms */

static void test_per_worker(void **state)
{
	struct passover *p = passover_new();
	const struct passover_worker *a, *b;
	(void)state;

	assert_non_null(p);
	assert_null(passover_of(p, "a", T0)); /* no memory for a worker that skipped nothing */
	assert_int_equal(passover_has(NULL, 1), 0);
	assert_int_equal(passover_add(p, "a", 1, T0), TALLY_OK);
	assert_int_equal(passover_add(p, "a", 2, T0), TALLY_OK);
	assert_int_equal(passover_add(p, "b", 2, T0), TALLY_OK);
	assert_int_equal(passover_add(p, "a", 1, T0 + 1), TALLY_OK); /* again: no new entry */
	assert_int_equal(passover_size(p), 3);
	assert_int_equal(passover_workers(p), 2);
	a = passover_of(p, "a", T0 + 2);
	assert_int_equal(passover_has(a, 1), 1);
	assert_int_equal(passover_has(a, 2), 1);
	assert_int_equal(passover_has(a, 3), 0);
	b = passover_of(p, "b", T0 + 2);
	assert_int_equal(passover_has(b, 1), 0);
	assert_int_equal(passover_has(b, 2), 1);
	assert_null(passover_of(p, "ab", T0 + 2));
	passover_free(p);
	passover_free(NULL);
}

static void test_bounded_per_worker(void **state)
{
	struct passover *p = passover_new();
	const struct passover_worker *w;
	(void)state;

	for (int64_t j = 1; j <= PASSOVER_JOBS_MAX; j++)
		assert_int_equal(passover_add(p, "w", j, T0 + j), TALLY_OK);
	assert_int_equal(passover_size(p), PASSOVER_JOBS_MAX);
	/* Job 1 renewed: now job 2 is the least recently added, and goes first. */
	assert_int_equal(passover_add(p, "w", 1, T0 + 1000), TALLY_OK);
	assert_int_equal(passover_add(p, "w", 10000, T0 + 1001), TALLY_OK);
	assert_int_equal(passover_size(p), PASSOVER_JOBS_MAX);
	w = passover_of(p, "w", T0 + 1002);
	assert_int_equal(passover_has(w, 1), 1);
	assert_int_equal(passover_has(w, 2), 0);
	assert_int_equal(passover_has(w, 3), 1);
	assert_int_equal(passover_has(w, 10000), 1);
	/* Another worker's jobs are bounded apart, and evict none of w's. */
	for (int64_t j = 1; j <= 2 * PASSOVER_JOBS_MAX; j++)
		assert_int_equal(passover_add(p, "x", 100000 + j, T0 + 2000), TALLY_OK);
	assert_int_equal(passover_size(p), 2 * PASSOVER_JOBS_MAX);
	assert_int_equal(passover_has(passover_of(p, "w", T0 + 2001), 3), 1);
	assert_int_equal(passover_has(passover_of(p, "x", T0 + 2001), 100000 + 1), 0);
	assert_int_equal(passover_has(passover_of(p, "x", T0 + 2001),
				      100000 + 2 * PASSOVER_JOBS_MAX), 1);
	passover_free(p);
}

static void test_expiry(void **state)
{
	struct passover *p = passover_new();
	const struct passover_worker *w;
	(void)state;

	assert_int_equal(passover_add(p, "w", 1, T0), TALLY_OK);
	assert_int_equal(passover_add(p, "w", 2, T0 + 1000), TALLY_OK);
	assert_int_equal(passover_add(p, "w", 3, T0 + 2000), TALLY_OK);
	assert_int_equal(passover_add(p, "w", 2, T0 + 3000), TALLY_OK); /* renewed */
	w = passover_of(p, "w", T0 + PASSOVER_TTL_MS - 1);
	assert_int_equal(passover_has(w, 1), 1);
	w = passover_of(p, "w", T0 + PASSOVER_TTL_MS); /* 1 has lived its time */
	assert_int_equal(passover_has(w, 1), 0);
	assert_int_equal(passover_has(w, 2), 1);
	assert_int_equal(passover_has(w, 3), 1);
	assert_int_equal(passover_size(p), 2);
	w = passover_of(p, "w", T0 + 2000 + PASSOVER_TTL_MS);
	assert_int_equal(passover_has(w, 3), 0);
	assert_int_equal(passover_has(w, 2), 1);
	/* Its last one gone, so is the worker's memory. */
	assert_null(passover_of(p, "w", T0 + 3000 + PASSOVER_TTL_MS));
	assert_int_equal(passover_size(p), 0);
	assert_int_equal(passover_workers(p), 0);

	/* A worker that never asks again goes at any call, with all its entries. */
	assert_int_equal(passover_add(p, "gone", 7, T0), TALLY_OK);
	assert_int_equal(passover_add(p, "here", 8, T0 + PASSOVER_TTL_MS), TALLY_OK);
	assert_int_equal(passover_workers(p), 1);
	assert_int_equal(passover_size(p), 1);
	assert_null(passover_of(p, "gone", T0 + PASSOVER_TTL_MS));
	passover_free(p);
}

static void test_bounded_workers(void **state)
{
	struct passover *p = passover_new();
	char name[32];
	(void)state;

	for (int i = 0; i < PASSOVER_WORKERS_MAX; i++) {
		snprintf(name, sizeof name, "w%d", i);
		assert_int_equal(passover_add(p, name, i + 1, T0 + i), TALLY_OK);
		assert_int_equal(passover_add(p, name, i + 2, T0 + i), TALLY_OK);
	}
	assert_int_equal(passover_workers(p), PASSOVER_WORKERS_MAX);
	/* w0 added to again: w1 is now the least recently added to, and goes whole. */
	assert_int_equal(passover_add(p, "w0", 99999, T0 + 5000), TALLY_OK);
	assert_int_equal(passover_add(p, "new", 1, T0 + 5001), TALLY_OK);
	assert_int_equal(passover_workers(p), PASSOVER_WORKERS_MAX);
	assert_int_equal(passover_size(p), 2 * PASSOVER_WORKERS_MAX - 2 + 1 + 1);
	assert_null(passover_of(p, "w1", T0 + 5002));
	assert_int_equal(passover_has(passover_of(p, "w0", T0 + 5002), 1), 1);
	assert_int_equal(passover_has(passover_of(p, "w2", T0 + 5002), 3), 1);
	assert_int_equal(passover_has(passover_of(p, "new", T0 + 5002), 1), 1);
	passover_free(p);
}

static void test_forget_ended_job(void **state)
{
	struct passover *p = passover_new();
	(void)state;

	assert_int_equal(passover_add(p, "a", 5, T0), TALLY_OK);
	assert_int_equal(passover_add(p, "a", 6, T0), TALLY_OK);
	assert_int_equal(passover_add(p, "b", 5, T0), TALLY_OK);
	passover_forget(p, 5);
	passover_forget(p, 42); /* never passed over: nothing */
	assert_int_equal(passover_size(p), 1);
	assert_int_equal(passover_workers(p), 1); /* b's memory went with its last job */
	assert_int_equal(passover_has(passover_of(p, "a", T0), 5), 0);
	assert_int_equal(passover_has(passover_of(p, "a", T0), 6), 1);
	assert_null(passover_of(p, "b", T0));
	passover_forget(p, 6);
	assert_int_equal(passover_workers(p), 0);
	passover_free(p);
}

static void test_out_of_memory_changes_nothing(void **state)
{
	struct passover *p = passover_new();
	(void)state;

	assert_int_equal(passover_add(p, "a", 1, T0), TALLY_OK);
	for (long n = 0; n < 3; n++) { /* a new worker: its memory, its table, its entry */
		alloc_fail_after(n, 0);
		assert_int_equal(passover_add(p, "b", 2, T0), TALLY_ENOMEM);
		alloc_fail_never();
		assert_int_equal(passover_workers(p), 1);
		assert_int_equal(passover_size(p), 1);
		assert_null(passover_of(p, "b", T0));
	}
	alloc_fail_after(0, 0); /* a known worker's new entry */
	assert_int_equal(passover_add(p, "a", 2, T0), TALLY_ENOMEM);
	alloc_fail_never();
	assert_int_equal(passover_size(p), 1);
	assert_int_equal(passover_has(passover_of(p, "a", T0), 1), 1);
	assert_int_equal(passover_has(passover_of(p, "a", T0), 2), 0);
	alloc_fail_after(0, 1);
	assert_null(passover_new());
	alloc_fail_never();
	passover_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_worker),
		cmocka_unit_test(test_bounded_per_worker),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_bounded_workers),
		cmocka_unit_test(test_forget_ended_job),
		cmocka_unit_test(test_out_of_memory_changes_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
