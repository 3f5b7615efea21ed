/* Kernel plug-ins, loaded the way tally loads them (dlopen, then tally_kernel_v1): their tables
 * against the header's rules; dice's determinism, streams and statistics; primes' counts below
 * 10^k summed over batches of several sizes, its params, its overflow checks and its stop flag.
 * TALLY_KERNEL_DIR names the directory of the built .so files; TALLY_HAVE_PRIMES says whether
 * primes.so was built (it needs libprimesieve). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "tally/kernel.h"

/* A loaded plug-in: the dlopen() handle and the table it exports (which lives until dlclose). */
struct plugin {
	void *dl;
	const struct tally_kernel *k;
};

static struct plugin dice, primes;
static const volatile int go; /* a stop flag that stays 0 */

/* Loads TALLY_KERNEL_DIR/file into *pl. Returns 0, or -1 after printing why. */
static int plugin_load(struct plugin *pl, const char *file)
{
	char path[4096];
	tally_kernel_v1_fn entry;

	snprintf(path, sizeof path, "%s/%s", TALLY_KERNEL_DIR, file);
	pl->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!pl->dl) {
		print_error("dlopen: %s\n", dlerror());
		return -1;
	}
	entry = (tally_kernel_v1_fn)dlsym(pl->dl, TALLY_KERNEL_ENTRY);
	pl->k = entry ? entry() : NULL;
	if (!pl->k) {
		print_error("%s: no %s, or it returned NULL\n", path, TALLY_KERNEL_ENTRY);
		return -1;
	}
	return 0;
}

static int load_all(void **state)
{
	(void)state;
	if (plugin_load(&dice, "dice.so"))
		return -1;
#ifdef TALLY_HAVE_PRIMES
	if (plugin_load(&primes, "primes.so"))
		return -1;
#endif
	return 0;
}

static int unload_all(void **state)
{
	(void)state;
	if (dice.dl)
		dlclose(dice.dl);
	if (primes.dl)
		dlclose(primes.dl);
	return 0;
}

/* Runs one batch that nobody stops, adding to counts; fails the test when run() fails. */
static void run_batch(const struct tally_kernel *k, void *st, uint64_t seed, uint64_t batch,
		      uint64_t first, uint64_t samples, uint64_t *counts)
{
	struct tally_batch b = { .seed = seed, .batch = batch, .first = first, .samples = samples,
				 .stop = &go };
	char err[256] = "";

	if (k->run(st, &b, counts, err, sizeof err)) {
		print_error("run(seed %llu, batch %llu, first %llu, samples %llu): %s\n",
			    (unsigned long long)seed, (unsigned long long)batch,
			    (unsigned long long)first, (unsigned long long)samples, err);
		fail();
	}
}

/* Whether s is 1 to max-1 characters of [a-z0-9_] (and '-' when dash), no digit first when
 * !dash: the header's rules for names and keys. */
static int name_ok(const char *s, size_t max, int dash)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max || (!dash && s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      (dash && *s == '-')))
			return 0;
	return 1;
}

/* Checks a table against the header's rules and the expected name, version and keys. */
static void check_table(const struct tally_kernel *k, const char *name, unsigned version,
			const char *const *keys)
{
	size_t n = 0;

	assert_int_equal(k->abi, TALLY_KERNEL_ABI);
	assert_true(name_ok(k->name, TALLY_KERNEL_NAME_MAX, 1));
	assert_string_equal(k->name, name);
	assert_int_equal(k->version, version);
	assert_non_null(k->run);
	assert_true((k->open == NULL) == (k->close == NULL));
	for (; k->keys[n]; n++) {
		assert_true(n < TALLY_KERNEL_KEYS_MAX);
		assert_true(name_ok(k->keys[n], TALLY_KERNEL_KEY_MAX, 0));
		assert_non_null(keys[n]);
		assert_string_equal(k->keys[n], keys[n]);
	}
	assert_true(n >= 1);
	assert_null(keys[n]);
}

static void test_dice_table(void **state)
{
	static const char *const keys[] = { "doubles", "samples", NULL };

	(void)state;
	check_table(dice.k, "dice", 1, keys);
	assert_null(dice.k->open);
	assert_non_null(dice.k->check);
	assert_non_null(dice.k->result);
}

static void test_dice_deterministic(void **state)
{
	uint64_t a[2] = { 0 }, b[2] = { 0 }, c[2] = { 5, 7 };

	(void)state;
	run_batch(dice.k, NULL, 42, 7, 700000, 100000, a);
	run_batch(dice.k, NULL, 42, 7, 700000, 100000, b);
	assert_memory_equal(a, b, sizeof a);
	assert_int_equal(a[1], 100000);
	/* first is not an input of dice's counts, and run() adds to what counts hold. */
	run_batch(dice.k, NULL, 42, 7, 0, 100000, c);
	assert_int_equal(c[0], a[0] + 5);
	assert_int_equal(c[1], a[1] + 7);
}

static void test_dice_streams_differ(void **state)
{
	/* Compare the rolls themselves, not one total: the doubles among the first n samples, n
	 * from 1 to 64, agree for two unrelated streams with probability (26/36)^64, about 1e-9. */
	int differs_batch = 0, differs_seed = 0, differs_split = 0;

	(void)state;
	for (uint64_t n = 1; n <= 64; n++) {
		uint64_t x[2] = { 0 }, y[2] = { 0 }, z[2] = { 0 }, w[2] = { 0 };

		run_batch(dice.k, NULL, 42, 0, 0, n, x);
		run_batch(dice.k, NULL, 42, 1, 0, n, y);
		run_batch(dice.k, NULL, 43, 0, 0, n, z);
		run_batch(dice.k, NULL, 42 ^ 1, 1 ^ 1, 0, n, w); /* seed ^ batch is not the key */
		differs_batch |= x[0] != y[0];
		differs_seed |= x[0] != z[0];
		differs_split |= y[0] != w[0];
	}
	assert_true(differs_batch);
	assert_true(differs_seed);
	assert_true(differs_split);
}

static void test_dice_statistics(void **state)
{
	/* Within 5 standard errors of 1/6: sqrt((1/6)(5/6)/n) is 3.7e-4 for n = 10^6. Exact
	 * values are fixed by the seed, so this passes or fails the same way every time. */
	static const uint64_t seeds[] = { 1, 42, 0xDEADBEEF };
	const double n = 1e6, se = sqrt(1.0 / 6 * 5 / 6 / n);
	uint64_t all[2] = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		uint64_t c[2] = { 0 };

		run_batch(dice.k, NULL, seeds[i], i, 0, (uint64_t)n, c);
		assert_int_equal(c[1], (uint64_t)n);
		assert_true(fabs((double)c[0] / n - 1.0 / 6) < 5 * se);
		all[0] += c[0];
		all[1] += c[1];
	}
	/* Ten batches of one job add up to a plausible total too. */
	for (uint64_t b = 0; b < 10; b++)
		run_batch(dice.k, NULL, 7, b, b * 100000, 100000, all);
	assert_int_equal(all[1], 4000000);
	assert_true(fabs((double)all[0] / 4e6 - 1.0 / 6) < 5 * sqrt(1.0 / 6 * 5 / 6 / 4e6));
}

static void test_dice_check(void **state)
{
	(void)state;
	assert_null(dice.k->check((const uint64_t[]){ 1, 6 }, 6));
	assert_null(dice.k->check((const uint64_t[]){ 0, 0 }, 0));
	assert_null(dice.k->check((const uint64_t[]){ 6, 6 }, 6));
	assert_non_null(dice.k->check((const uint64_t[]){ 1, 6 }, 7));
	assert_non_null(dice.k->check((const uint64_t[]){ 1, 7 }, 6));
	assert_non_null(dice.k->check((const uint64_t[]){ 7, 6 }, 6));
}

static void test_dice_result(void **state)
{
	char out[TALLY_KERNEL_RESULT_MAX];
	double p, se, expected;
	int used = 0;

	(void)state;
	/* p = 1/4 of 8: stderr sqrt(3/16 / 8), 1/6 printed with 17 digits. */
	assert_int_equal(dice.k->result((const uint64_t[]){ 2, 8 }, out, sizeof out), 0);
	assert_string_equal(out, "{\"p\": 0.25, \"stderr\": 0.15309310892394862, "
				 "\"expected\": 0.16666666666666666}");
	assert_int_equal(dice.k->result((const uint64_t[]){ 166667, 1000000 }, out, sizeof out), 0);
	assert_int_equal(sscanf(out, "{\"p\": %lf, \"stderr\": %lf, \"expected\": %lf}%n", &p, &se,
				&expected, &used), 3);
	assert_int_equal((size_t)used, strlen(out));
	assert_true(p == 166667 / 1e6);
	assert_true(se == sqrt(p * (1 - p) / 1e6));
	assert_true(expected == 1.0 / 6);
	assert_int_equal(dice.k->result((const uint64_t[]){ 0, 0 }, out, sizeof out), -1);
	/* Too small a buffer: -1, never a truncated object. */
	assert_int_equal(dice.k->result((const uint64_t[]){ 2, 8 }, out, 20), -1);
}

static void test_dice_stop(void **state)
{
	static const volatile int stop = 1;
	struct tally_batch b = { .seed = 1, .batch = 0, .first = 0, .samples = 1ULL << 62,
				 .stop = &stop };
	uint64_t c[2] = { 0 };
	char err[64];

	(void)state;
	/* 2^62 samples would take centuries: returning at all is the test. */
	assert_int_equal(dice.k->run(NULL, &b, c, err, sizeof err), 0);
	/* Zero samples: nothing to add. */
	b.samples = 0;
	b.stop = &go;
	assert_int_equal(dice.k->run(NULL, &b, c, err, sizeof err), 0);
	assert_int_equal(c[1], 0);
}

#ifdef TALLY_HAVE_PRIMES

/* The primes in [lo, lo + n) by trial division: the check that shares nothing with primesieve. */
static uint64_t primes_trial(uint64_t lo, uint64_t n)
{
	uint64_t found = 0;

	for (uint64_t x = lo; x < lo + n; x++) {
		int prime = x >= 2;

		for (uint64_t d = 2; prime && d * d <= x; d += 1 + (d > 2))
			prime = x % d != 0;
		found += prime;
	}
	return found;
}

/* Opens primes with params; fails the test when open() refuses them. The state is new: the
 * caller closes it. */
static void *primes_open(const char *params)
{
	void *st = NULL;
	char err[256] = "";

	if (primes.k->open(params, &st, err, sizeof err)) {
		print_error("open(%s): %s\n", params, err);
		fail();
	}
	return st;
}

/* The primes in [0, n), as the sum of batches of size samples (the last one short). */
static uint64_t primes_batched(void *st, uint64_t n, uint64_t size)
{
	uint64_t total = 0;

	for (uint64_t b = 0, first = 0; first < n; b++, first += size)
		run_batch(primes.k, st, 99, b, first, n - first < size ? n - first : size, &total);
	return total;
}

static void test_primes_table(void **state)
{
	static const char *const keys[] = { "primes", NULL };

	(void)state;
	check_table(primes.k, "primes", 1, keys);
	assert_non_null(primes.k->open);
	assert_non_null(primes.k->check);
	assert_non_null(primes.k->result);
}

static void test_primes_below_powers_of_ten(void **state)
{
	/* pi(10^k), k = 0 to 9 (OEIS A006880). */
	static const uint64_t pi10[] = { 0, 4, 25, 168, 1229, 9592, 78498, 664579, 5761455,
					 50847534 };
	/* Batch sizes: 1 and 2 (every number its own batch: 0, 1, 2 at the edges), primes, a
	 * power of ten, a size that leaves a short last batch, and one batch for everything
	 * (0 below). Those making more than 20,000 batches are left out. */
	static const uint64_t sizes[] = { 1, 2, 7, 7919, 1000000, 123456789, 0 };
	void *st = primes_open("{}");
	uint64_t n = 1;

	(void)state;
	for (size_t k = 0; k < sizeof pi10 / sizeof pi10[0]; k++, n *= 10) {
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			uint64_t size = sizes[i] ? sizes[i] : n;

			if (n / size > 20000)
				continue;
			if (primes_batched(st, n, size) != pi10[k]) {
				print_error("pi(10^%zu) in batches of %llu\n", k,
					    (unsigned long long)size);
				fail();
			}
		}
	}
	primes.k->close(st);
}

static void test_primes_start(void **state)
{
	/* params.start moves sample 0 to start; first adds to it. */
	static const struct {
		const char *params;
		uint64_t first, samples, lo; /* lo: the batch's first number */
	} cases[] = {
		{ "{\"start\": 1000000000}", 0, 1000, 1000000000 },
		{ "{\"start\":999999500}", 500, 1000, 1000000000 },
		{ "{}", 1000000000, 1000, 1000000000 },
		{ " \n{\r\n\t\"start\"\t:\t999999000 }\n", 0, 1000, 999999000 },
		{ "{\"start\": 0}", 0, 1000, 0 },
		{ "{ \"start\" : 2 }", 0, 1, 2 },
		{ "{\"start\": 4294967291}", 0, 1, 4294967291 }, /* 2^32 - 5, a prime */
		{ "{\"start\": 4294967291}", 1, 4, 4294967292 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		void *st = primes_open(cases[i].params);
		uint64_t c = 0;

		run_batch(primes.k, st, 1, 3, cases[i].first, cases[i].samples, &c);
		if (c != primes_trial(cases[i].lo, cases[i].samples)) {
			print_error("%s, first %llu: %llu primes\n", cases[i].params,
				    (unsigned long long)cases[i].first, (unsigned long long)c);
			fail();
		}
		primes.k->close(st);
	}
	/* The known value, independently of the trial division above: 49 primes in
	 * [10^9, 10^9 + 1000). */
	assert_int_equal(primes_trial(1000000000, 1000), 49);
}

static void test_primes_bad_params(void **state)
{
	static const struct {
		const char *params, *says;
	} cases[] = {
		{ "{\"start\": -1}", "params.start: must be an integer 0 to 18446744073709551615" },
		{ "{\"start\": 1.5}", "params.start" },
		{ "{\"start\": 1e3}", "params.start" },
		{ "{\"start\": 1E3}", "params.start" },
		{ "{\"start\": \"5\"}", "params.start" },
		{ "{\"start\": null}", "params.start" },
		{ "{\"start\": true}", "params.start" },
		{ "{\"start\": 01}", "params.start" },
		{ "{\"start\": }", "params.start" },
		{ "{\"start\": +1}", "params.start" },
		{ "{\"start\": 18446744073709551616}", "params.start" }, /* 2^64 */
		{ "{\"start\": 99999999999999999999999}", "params.start" },
		{ "{\"start\": 1, \"start\": 2}", "params.start: given twice" },
		{ "{\"stop\": 1}", "params: unknown member \"stop\" (the only one is \"start\")" },
		{ "{\"start\": 1, \"end\": 2}", "unknown member \"end\"" },
		{ "{\"Start\": 1}", "unknown member \"Start\"" },
		{ "{\"st\\u0061rt\": 1}", "unknown member \"st?0061rt\"" },
		{ "{\"a_member_name_much_longer_than_any_message_should_quote\": 1}",
		  "unknown member \"a_member_name_much_l...\"" },
		{ "{\"\\\"\": 1}", "unknown member \"?\"" },
		{ "", "params: must be a JSON object" },
		{ "null", "JSON object" },
		{ "[]", "JSON object" },
		{ "7", "JSON object" },
		{ "{", "JSON object" },
		{ "}", "JSON object" },
		{ "{\"start\": 1", "JSON object" },
		{ "{\"start\": 1,}", "JSON object" },
		{ "{\"start\": 1} x", "JSON object" },
		{ "{\"start\": 1}{}", "JSON object" },
		{ "{\"start\" 1}", "JSON object" },
		{ "{\"start\": 1 2}", "JSON object" },
		{ "{\"start", "JSON object" },
		{ "{,}", "JSON object" },
		{ "{start: 1}", "JSON object" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		void *st = &st; /* must stay as it was */
		char err[256];

		memset(err, 'x', sizeof err);
		/* A member other than "start": TALLY_KERNEL_PARAMS_UNKNOWN; anything else: -1. */
		int want = strstr(cases[i].says, "unknown member") ? TALLY_KERNEL_PARAMS_UNKNOWN : -1;
		if (primes.k->open(cases[i].params, &st, err, sizeof err) != want ||
		    !memchr(err, '\0', sizeof err) || !strstr(err, cases[i].says) || st != &st) {
			print_error("open(%s) said \"%.*s\"\n", cases[i].params, (int)sizeof err,
				    err);
			fail();
		}
	}
	/* A short err buffer gets a cut, NUL-terminated message. */
	{
		void *st = NULL;
		char err[8];

		assert_int_equal(primes.k->open("{\"start\": -1}", &st, err, sizeof err), -1);
		assert_string_equal(err, "params.");
	}
	/* The largest start is fine: only a batch past 2^64 - 1 is not. */
	primes.k->close(primes_open("{\"start\": 18446744073709551615}"));
}

static void test_primes_overflow(void **state)
{
	/* Batches whose numbers would pass 2^64 - 1 fail, before primesieve is asked. */
	static const struct {
		const char *params;
		uint64_t first, samples;
	} cases[] = {
		{ "{\"start\": 18446744073709551615}", 1, 1 },
		{ "{\"start\": 18446744073709551615}", 0, 2 },
		{ "{\"start\": 18446744073709551606}", 0, 11 }, /* 2^64 - 10 */
		{ "{\"start\": 18446744073709551606}", 5, 6 },
		{ "{\"start\": 18446744073709551606}", 1ULL << 63, 1 },
		{ "{}", UINT64_MAX, 2 },
		{ "{}", 2, UINT64_MAX },
		{ "{\"start\": 9223372036854775808}", 1ULL << 63, 1 }, /* 2^63 + 2^63 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		void *st = primes_open(cases[i].params);
		struct tally_batch b = { .first = cases[i].first, .samples = cases[i].samples,
					 .stop = &go };
		uint64_t c = 7;
		char err[256] = "";

		assert_int_equal(primes.k->run(st, &b, &c, err, sizeof err), -1);
		assert_non_null(strstr(err, "params.start + first + samples"));
		assert_int_equal(c, 7);
		primes.k->close(st);
	}
}

static void test_primes_top(void **state)
{
	/* The last 100 numbers below 2^64 hold three primes: 2^64 - 95, - 83 and - 59. Slow-ish
	 * (primesieve sieves up to 2^32 first), so once only. */
	void *st = primes_open("{\"start\": 18446744073709551516}");
	uint64_t c = 0;

	(void)state;
	run_batch(primes.k, st, 0, 0, 0, 100, &c);
	assert_int_equal(c, 3);
	primes.k->close(st);
}

/* A batch of primes run on its own thread: see test_primes_stop and _threads. */
struct primes_job {
	void *st;
	struct tally_batch b;
	uint64_t counts[1];
	int rc;
};

static void *primes_thread(void *arg)
{
	struct primes_job *j = arg;
	char err[256];

	j->rc = primes.k->run(j->st, &j->b, j->counts, err, sizeof err);
	return NULL;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_primes_stop(void **state)
{
	/* A stopped batch returns within one chunk of 2^30 numbers. t1, the time of such a chunk
	 * here (under valgrind too), scales the limits: a run that ignored the flag would take
	 * 64 t1 for these 2^36 numbers. */
	static const volatile int stopped = 1;
	volatile int stop = 0;
	struct primes_job j = { .st = primes_open("{}"), .b = { .samples = 1ULL << 36,
								.stop = &stopped } };
	uint64_t c = 0;
	double t0 = now(), t1;
	pthread_t t;

	(void)state;
	run_batch(primes.k, j.st, 0, 0, 0, 1ULL << 30, &c);
	t1 = now() - t0;
	assert_int_equal(c, 54400028); /* pi(2^30 - 1) */

	/* Stopped before it starts. */
	t0 = now();
	primes_thread(&j);
	assert_int_equal(j.rc, 0);
	assert_true(now() - t0 < 2 * t1 + 0.5);

	/* Stopped while it runs. */
	j.b.stop = &stop;
	t0 = now();
	assert_int_equal(pthread_create(&t, NULL, primes_thread, &j), 0);
	nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	stop = 1;
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(j.rc, 0);
	if (now() - t0 >= 4 * t1 + 0.5) {
		print_error("stopped after %.1f s, a chunk takes %.1f s\n", now() - t0, t1);
		fail();
	}
	primes.k->close(j.st);
}

static void test_primes_threads(void **state)
{
	/* One state, run from two threads at once: pi(10^8) as two halves in 10 batches each. */
	enum { JOBS = 2, BATCHES = 10 };
	const uint64_t size = 100000000 / (JOBS * BATCHES);
	void *st = primes_open("{}");
	uint64_t total = 0;

	(void)state;
	for (int round = 0; round < BATCHES; round++) {
		struct primes_job j[JOBS];
		pthread_t t[JOBS];

		for (int i = 0; i < JOBS; i++) {
			uint64_t batch = (uint64_t)(round * JOBS + i);

			j[i] = (struct primes_job){ .st = st, .b = { .batch = batch,
				.first = batch * size, .samples = size, .stop = &go } };
			assert_int_equal(pthread_create(&t[i], NULL, primes_thread, &j[i]), 0);
		}
		for (int i = 0; i < JOBS; i++) {
			assert_int_equal(pthread_join(t[i], NULL), 0);
			assert_int_equal(j[i].rc, 0);
			total += j[i].counts[0];
		}
	}
	assert_int_equal(total, 5761455);
	primes.k->close(st);
}

static void test_primes_check_result(void **state)
{
	char out[TALLY_KERNEL_RESULT_MAX];

	(void)state;
	assert_null(primes.k->check((const uint64_t[]){ 0 }, 0));
	assert_null(primes.k->check((const uint64_t[]){ 4 }, 10));
	assert_null(primes.k->check((const uint64_t[]){ 10 }, 10));
	assert_non_null(primes.k->check((const uint64_t[]){ 11 }, 10));
	assert_non_null(primes.k->check((const uint64_t[]){ 1 }, 0));
	assert_int_equal(primes.k->result((const uint64_t[]){ 50847534 }, out, sizeof out), 0);
	assert_string_equal(out, "{\"primes\": 50847534}");
	assert_int_equal(primes.k->result((const uint64_t[]){ UINT64_MAX }, out, sizeof out), 0);
	assert_string_equal(out, "{\"primes\": 18446744073709551615}");
	assert_int_equal(primes.k->result((const uint64_t[]){ 0 }, out, sizeof out), 0);
	assert_string_equal(out, "{\"primes\": 0}");
	assert_int_equal(primes.k->result((const uint64_t[]){ 123 }, out, 10), -1);
}

#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dice_table),
		cmocka_unit_test(test_dice_deterministic),
		cmocka_unit_test(test_dice_streams_differ),
		cmocka_unit_test(test_dice_statistics),
		cmocka_unit_test(test_dice_check),
		cmocka_unit_test(test_dice_result),
		cmocka_unit_test(test_dice_stop),
#ifdef TALLY_HAVE_PRIMES
		cmocka_unit_test(test_primes_table),
		cmocka_unit_test(test_primes_below_powers_of_ten),
		cmocka_unit_test(test_primes_start),
		cmocka_unit_test(test_primes_bad_params),
		cmocka_unit_test(test_primes_overflow),
		cmocka_unit_test(test_primes_top),
		cmocka_unit_test(test_primes_stop),
		cmocka_unit_test(test_primes_threads),
		cmocka_unit_test(test_primes_check_result),
#endif
	};

	return cmocka_run_group_tests(tests, load_all, unload_all);
}
