/* Kernels: determinism, independence of batches, statistics, short last batches and batch
 * arithmetic (the JSON form of counts: test_counts.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "runrange.h"
#include "kernel.h"
#include "pi.h"
#include "rng.h"

static const struct kernel *pi(void)
{
	const struct kernel *k = kernel_find("pi");
	assert_non_null(k);
	return k;
}

static void test_registry(void **state)
{
	(void)state;
	assert_non_null(kernel_find("pi"));
	assert_non_null(kernel_find("count"));
	assert_null(kernel_find("Pi"));
	assert_null(kernel_find(""));
	assert_string_equal(kernel_at(0)->name, "pi");
	assert_null(kernel_at(2));
}

static void test_batch_arithmetic(void **state)
{
	(void)state;
	assert_int_equal(job_batches(10, 3), 4);
	assert_int_equal(job_batches(9, 3), 3);
	assert_int_equal(job_batches(1, 1), 1);
	assert_int_equal(job_batches(1ULL << 62, 1), 1ULL << 62);
	assert_int_equal(job_range_samples(10, 3, 0, 4), 10);
	assert_int_equal(job_range_samples(10, 3, 3, 1), 1); /* the short last batch */
	assert_int_equal(job_range_samples(10, 3, 1, 2), 6);
	assert_int_equal(job_range_samples(10, 3, 4, 1), 0);
}

static void test_pi_deterministic(void **state)
{
	uint64_t a[2] = { 0 }, b[2] = { 0 };
	(void)state;
	pi()->run(42, 7, 700, 100000, NULL, a);
	pi()->run(42, 7, 700, 100000, NULL, b);
	assert_memory_equal(a, b, sizeof a);
	assert_int_equal(a[1], 100000);
	assert_true(a[0] > 0 && a[0] < a[1]);
}

static void test_pi_batches_independent(void **state)
{
	uint64_t a[2] = { 0 }, b[2] = { 0 }, c[2] = { 0 };
	(void)state;
	pi()->run(42, 0, 0, 100000, NULL, a);
	pi()->run(42, 1, 100000, 100000, NULL, b);
	pi()->run(43, 0, 0, 100000, NULL, c);
	/* Distinct streams: equal counts would be a 1-in-hundreds coincidence, not a collision,
	 * so compare the first samples instead: runs of 1..64 samples must differ somewhere. */
	int differs_batch = 0, differs_seed = 0;
	for (uint64_t n = 1; n <= 64; n++) {
		uint64_t x[2] = { 0 }, y[2] = { 0 }, z[2] = { 0 };
		pi()->run(42, 0, 0, n, NULL, x);
		pi()->run(42, 1, 0, n, NULL, y);
		pi()->run(43, 0, 0, n, NULL, z);
		differs_batch |= x[0] != y[0];
		differs_seed |= x[0] != z[0];
	}
	assert_true(differs_batch);
	assert_true(differs_seed);
	assert_int_equal(a[1] + b[1] + c[1], 300000);
}

static void test_pi_prefix_property(void **state)
{
	/* A batch's stream does not depend on its length: the first n samples of a longer batch
	 * are the n samples of a shorter one, so inside(n) is non-decreasing in n. */
	uint64_t prev = 0;
	(void)state;
	for (uint64_t n = 1; n <= 200; n++) {
		uint64_t c[2] = { 0 };
		pi()->run(5, 3, 0, n, NULL, c);
		assert_true(c[0] >= prev && c[0] <= prev + 1);
		prev = c[0];
	}
}

static void test_pi_statistics(void **state)
{
	uint64_t c[2] = { 0 };
	(void)state;
	kernel_run_range(pi(), 2026, 10000000, 100000, 0, 100, c);
	assert_int_equal(c[1], 10000000);
	double p = (double)c[0] / (double)c[1];
	double est = 4 * p, se = 4 * sqrt(p * (1 - p) / (double)c[1]);
	assert_true(fabs(est - 3.14159265358979323846) < 6 * se);
	assert_true(se < 0.001);
}

static void test_pi_short_last_batch(void **state)
{
	uint64_t whole[2] = { 0 }, parts[2] = { 0 };
	(void)state;
	/* 1003 samples in batches of 100: ten full batches and one of 3. */
	kernel_run_range(pi(), 9, 1003, 100, 0, 11, whole);
	assert_int_equal(whole[1], 1003);
	for (uint64_t b = 0; b < 11; b++)
		kernel_run_range(pi(), 9, 1003, 100, b, 1, parts);
	assert_memory_equal(whole, parts, sizeof whole);
	uint64_t last[2] = { 0 }, direct[2] = { 0 };
	kernel_run_range(pi(), 9, 1003, 100, 10, 1, last);
	pi()->run(9, 10, 1000, 3, NULL, direct);
	assert_memory_equal(last, direct, sizeof last);
	assert_int_equal(last[1], 3);
	/* A range past the end adds nothing. */
	uint64_t none[2] = { 0 };
	kernel_run_range(pi(), 9, 1003, 100, 11, 5, none);
	assert_int_equal(none[1], 0);
}

static void test_pi_known_answers(void **state)
{
	/* The stream is a published format (docs/algorithm.md): these counts were computed by the C
	 * kernel and, independently, by tests/integration/recompute.py. A change here changes
	 * every job's counts and needs a new kernel version. */
	static const struct { uint64_t seed, batch, n, inside; } kat[] = {
		{ 42, 0, 1000, 758 }, { 42, 1, 1000, 779 }, { 42, 2, 500, 390 },
		{ 42, 0, 999, 757 },  { 42, 0, 9, 9 },      { 42, 0, 1, 1 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
		uint64_t c[2] = { 0 };
		pi()->run(kat[i].seed, kat[i].batch, kat[i].batch * 1000, kat[i].n, NULL, c);
		assert_int_equal(c[0], kat[i].inside);
		assert_int_equal(c[1], kat[i].n);
	}
}

static void test_pi_paths_agree(void **state)
{
	static const char *const paths[] = { "scalar", "avx2", "avx512" };
	static const uint64_t lens[] = { 0, 1, 7, 8, 9, 15, 16, 17, 1000, 4099, 100000 };
	uint64_t seed = 0x9E3779B97F4A7C15ULL;
	int tried = 0;
	(void)state;
	assert_int_equal(pi_set_path("no-such-path"), -1);
	for (int t = 0; t < 40; t++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t batch = seed >> 3, n = lens[t % (sizeof lens / sizeof lens[0])];
		uint64_t want[2] = { 0 };
		assert_int_equal(pi_set_path("scalar"), 0);
		pi()->run(seed, batch, 0, n, NULL, want);
		for (size_t p = 1; p < sizeof paths / sizeof paths[0]; p++) {
			uint64_t got[2] = { 0 };
			if (pi_set_path(paths[p]))
				continue; /* this CPU lacks it */
			assert_string_equal(pi_path(), paths[p]);
			pi()->run(seed, batch, 0, n, NULL, got);
			assert_memory_equal(want, got, sizeof want);
			tried++;
		}
	}
	print_message("compared %d vector runs with the scalar path\n", tried);
	/* Leave the best path in place for the rest of the tests. */
	assert_int_equal(pi_set_path("scalar"), 0);
	assert_int_equal(pi_set_path(pi_path_supported("avx512") ? "avx512"
				     : pi_path_supported("avx2") ? "avx2" : "scalar"), 0);
}

/* docs/algorithm.md's pi_counts, written as the spec says (lane by lane, rng_stream_key): every
 * path of the kernel must give its counts. */
static uint64_t pi_reference(uint64_t seed, uint64_t batch, uint64_t n)
{
	uint64_t inside = 0;
	for (uint64_t l = 0; l < 8; l++) {
		uint64_t s[4];
		rng_xoshiro_seed(rng_stream_key(0x5049000000000001ULL, seed, batch, l), s);
		for (uint64_t i = l; i < n; i += 8) {
			uint64_t r = rng_xoshiro_next(s), x = r >> 33, y = (r >> 2) & 0x7FFFFFFF;
			inside += x * x + y * y < (1ULL << 62);
		}
	}
	return inside;
}

static void test_pi_matches_the_spec(void **state)
{
	static const char *const paths[] = { "scalar", "avx2", "avx512" };
	static const uint64_t lens[] = { 0, 1, 7, 8, 9, 17, 1000, 4099 };
	(void)state;
	for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
		if (pi_set_path(paths[p]))
			continue; /* this CPU lacks it */
		for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
			uint64_t seed = 42 + t, batch = 7 * t + (t << 40), got[2] = { 0 };
			pi()->run(seed, batch, 0, lens[t], NULL, got);
			assert_int_equal(got[0], pi_reference(seed, batch, lens[t]));
			assert_int_equal(got[1], lens[t]);
		}
	}
	assert_int_equal(pi_set_path(pi_path_supported("avx512") ? "avx512"
				     : pi_path_supported("avx2") ? "avx2" : "scalar"), 0);
}

static void test_pi_check(void **state)
{
	uint64_t ok[2] = { 5, 10 }, wrong_n[2] = { 5, 9 }, too_many[2] = { 11, 10 };
	(void)state;
	assert_null(pi()->check(ok, 10));
	assert_non_null(pi()->check(wrong_n, 10));
	assert_non_null(pi()->check(too_many, 10));
}

static void test_pi_result(void **state)
{
	uint64_t none[2] = { 0, 0 }, half[2] = { 50, 100 };
	json_t *r;
	(void)state;
	assert_null(pi()->result(none));
	r = pi()->result(half);
	assert_non_null(r);
	assert_true(fabs(json_real_value(json_object_get(r, "pi")) - 2.0) < 1e-12);
	assert_true(fabs(json_real_value(json_object_get(r, "stderr")) - 0.2) < 1e-12);
	json_decref(r);
}

static void test_count_kernel(void **state)
{
	const struct kernel *k = kernel_find("count");
	uint64_t c[1] = { 0 };
	(void)state;
	kernel_run_range(k, 1, 1003, 100, 0, 11, c);
	assert_int_equal(c[0], 1003);
	assert_null(k->check(c, 1003));
	assert_non_null(k->check(c, 1002));
}

/* A plug-in's result with a "stderr" member only when hits <= samples, and samples >= 1000. */
static int late_stderr(const uint64_t *counts, char *out, size_t outlen)
{
	if (counts[0] > counts[1] || counts[1] < 1000)
		return -1;
	snprintf(out, outlen, "{\"p\": 0.5, \"stderr\": 0.01}");
	return 0;
}

/* A plug-in's result without one (as primes'). */
static int no_stderr(const uint64_t *counts, char *out, size_t outlen)
{
	snprintf(out, outlen, "{\"hits\": %llu}", (unsigned long long)counts[0]);
	return 0;
}

/* Which kernels may take target_stderr: a result with a stderr, here. */
static void test_has_stderr(void **state)
{
	static const char *const keys[] = { "hits", "samples", NULL };
	struct tally_kernel late = { .abi = TALLY_KERNEL_ABI, .name = "late", .version = 1,
				     .keys = keys, .result = late_stderr };
	struct tally_kernel none = late, bare = late;
	struct kernel k = { .name = "late", .version = 1, .nkeys = 2, .keys = keys, .abi = &late };
	(void)state;

	assert_true(kernel_has_stderr(pi()));
	assert_false(kernel_has_stderr(kernel_find("count"))); /* a result, no stderr */
	assert_false(kernel_has_stderr(kernel_find("exec")));
	assert_false(kernel_has_stderr(kernel_placeholder())); /* known by name only */
	assert_true(kernel_has_stderr(&k));
	none.result = no_stderr;
	k.abi = &none;
	assert_false(kernel_has_stderr(&k));
	bare.result = NULL;
	k.abi = &bare;
	assert_false(kernel_has_stderr(&k));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_batch_arithmetic),
		cmocka_unit_test(test_pi_deterministic),
		cmocka_unit_test(test_pi_batches_independent),
		cmocka_unit_test(test_pi_prefix_property),
		cmocka_unit_test(test_pi_statistics),
		cmocka_unit_test(test_pi_short_last_batch),
		cmocka_unit_test(test_pi_known_answers),
		cmocka_unit_test(test_pi_paths_agree),
		cmocka_unit_test(test_pi_matches_the_spec),
		cmocka_unit_test(test_pi_check),
		cmocka_unit_test(test_pi_result),
		cmocka_unit_test(test_count_kernel),
		cmocka_unit_test(test_has_stderr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
