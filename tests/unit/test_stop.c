/* Early stopping's prefixes: the fixed segment boundaries, leases capped to one segment, and a
 * job stopped at the first complete prefix whose stderr reaches the target, whatever order its
 * batches were done in; small prefixes, degenerate estimates and the last batch never stop one;
 * a batch taken back is evaluated again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "stop.h"
#include "kernel.h"

/* A running pi job of `batches` batches of batch_size samples. */
static struct job pi_job(uint64_t batches, uint64_t batch_size, double target)
{
	struct job j = { 0 };
	j.spec.kernel = kernel_find("pi");
	j.spec.samples = batches * batch_size;
	j.spec.batch_size = batch_size;
	j.spec.target_stderr = target;
	kernel_keys(j.spec.kernel, &j.keys);
	j.batches_total = batches;
	j.state = JOB_RUNNING;
	return j;
}

/* Adds batch b as done, with `inside` of its `samples` samples inside. */
static void add_batch(struct stop *st, uint64_t b, uint64_t inside, uint64_t samples)
{
	uint64_t c[KERNEL_MAX_KEYS] = { inside, samples };
	stop_add(st, b, 1, c);
}

/* The prefix boundaries: 0..8, then every number with three significant bits (moved from
 * test_live.c). */
static void test_boundaries(void **state)
{
	(void)state;
	static const uint64_t first[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32 };
	for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
		assert_int_equal(job_stop_boundary(i), first[i]);
	for (uint64_t b = 0; b < 5000; b++) {
		size_t i = job_stop_segment(b);
		assert_true(job_stop_boundary(i) <= b && b < job_stop_boundary(i + 1));
	}
	assert_int_equal(job_stop_segment((1ULL << 62) - 1), JOB_STOP_SEGMENTS - 1);
	assert_int_equal(job_stop_boundary(JOB_STOP_SEGMENTS), 1ULL << 62);
}

/* A lease is cut at the end of its first batch's segment, never lengthened. */
static void test_cap(void **state)
{
	static const struct {
		uint64_t first, count, want;
	} t[] = {
		{ 0, 5, 1 },   { 7, 5, 1 },    { 8, 100, 2 },  { 9, 100, 1 }, { 16, 3, 3 },
		{ 16, 4, 4 },  { 16, 5, 4 },   { 17, 9, 3 },   { 96, 1, 1 },  { 96, 50, 16 },
		{ 1000, 1000, 24 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		assert_int_equal(stop_cap(t[i].first, t[i].count), t[i].want);
}

/* The prefix of 20 batches reaches a target of 0.012 (stderr 0.01162) and that of 16 does not
 * (0.01300): done out of order, the job stops at 20 once every batch before 20 is done, with
 * exactly the counts of those 20. */
static void test_stops_at_the_first_complete_prefix(void **state)
{
	struct job j = pi_job(1000, 1000, 0.012);
	struct stop *st = stop_new();
	uint64_t counts[KERNEL_MAX_KEYS], batches = 0;
	(void)state;

	assert_non_null(st);
	for (uint64_t b = 16; b < 40; b++) /* later segments first */
		add_batch(st, b, 785, 1000);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 0);
	assert_int_equal(st->next, 0);
	for (uint64_t b = 15; b > 0; b--)
		add_batch(st, b, 785, 1000);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 0); /* batch 0 is missing */
	assert_int_equal(st->next, 0);
	add_batch(st, 0, 785, 1000);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 1);
	assert_int_equal(batches, 20);
	assert_int_equal(counts[0], 785 * 20);
	assert_int_equal(counts[1], 1000 * 20);
	assert_int_equal(st->next, job_stop_segment(19) + 1);
	stop_free(st);
}

/* A done lease taken back makes its segment, and every later one, count again. */
static void test_take_back_evaluates_again(void **state)
{
	struct job j = pi_job(1000, 1000, 1e-9); /* never reached */
	struct stop *st = stop_new();
	uint64_t counts[KERNEL_MAX_KEYS], batches = 0, c3[KERNEL_MAX_KEYS] = { 785, 1000 };
	(void)state;

	assert_non_null(st);
	for (uint64_t b = 0; b < 16; b++)
		add_batch(st, b, 785, 1000);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 0);
	assert_int_equal(st->next, job_stop_segment(16)); /* [16, 20) is not done */
	stop_take(st, 3, 1, c3);
	assert_int_equal(st->next, 3);
	assert_int_equal(st->seg[3].done, 0);
	assert_int_equal(st->seg[3].counts[0], 0);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 0);
	assert_int_equal(st->next, 3);
	stop_add(st, 3, 1, c3);
	j.spec.target_stderr = 0.0131; /* now the prefix of 16 reaches it: 0.01300 */
	assert_int_equal(stop_eval(st, &j, counts, &batches), 1);
	assert_int_equal(batches, 16);
	assert_int_equal(counts[1], 16000);
	stop_free(st);
}

/* Prefixes of fewer than STOP_MIN_SAMPLES samples never stop a job, however large its target. */
static void test_small_prefixes_never_stop(void **state)
{
	struct job j = pi_job(1000, 10, 1.0);
	struct stop *st = stop_new();
	uint64_t counts[KERNEL_MAX_KEYS], batches = 0;
	(void)state;

	assert_non_null(st);
	for (uint64_t b = 0; b < 96; b++)
		add_batch(st, b, 8, 10);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 0); /* 960 samples */
	for (uint64_t b = 96; b < 112; b++)
		add_batch(st, b, 8, 10);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 1);
	assert_int_equal(batches, 112); /* the first prefix of 1000 samples or more */
	assert_true(112 * 10 >= STOP_MIN_SAMPLES && 96 * 10 < STOP_MIN_SAMPLES);
	stop_free(st);
}

/* A stderr of 0 (every sample inside) is no estimate; and the last batch ends no prefix. */
static void test_degenerate_and_last_batch(void **state)
{
	struct job j = pi_job(20, 1000, 1.0);
	struct stop *st = stop_new();
	uint64_t counts[KERNEL_MAX_KEYS], batches = 0;
	(void)state;

	assert_non_null(st);
	for (uint64_t b = 0; b < 20; b++)
		add_batch(st, b, 1000, 1000);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 0);
	stop_free(st);

	st = stop_new();
	assert_non_null(st);
	j = pi_job(20, 1000, 0.012); /* reached by the prefix of 20, the whole job */
	for (uint64_t b = 0; b < 20; b++)
		add_batch(st, b, 785, 1000);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 0);
	j = pi_job(21, 1000, 0.012);
	assert_int_equal(stop_eval(st, &j, counts, &batches), 1);
	assert_int_equal(batches, 20);
	stop_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_stops_at_the_first_complete_prefix),
		cmocka_unit_test(test_take_back_evaluates_again),
		cmocka_unit_test(test_small_prefixes_never_stop),
		cmocka_unit_test(test_degenerate_and_last_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
