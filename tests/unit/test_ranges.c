/* A job's free ranges: give-backs merge with neighbours of the same history and only those,
 * checked against a model of every batch; the front range's grant follows the poison rule;
 * taking splits or removes the front; a give-back refused for want of memory changes nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "alloc.h"
#include "ranges.h"
#include "rng.h"

#define NB 300 /* batches in the model */

/* The model: every batch, free or not, with its history. */
struct model {
	int free[NB];
	unsigned failures[NB], strikes[NB];
};

/* Checks that rs holds exactly the model's maximal runs of free batches of one history. */
static void check_model(const struct ranges *rs, const struct model *m)
{
	size_t k = 0;
	for (uint64_t b = 0; b < NB;) {
		uint64_t e = b + 1;
		if (!m->free[b]) {
			b++;
			continue;
		}
		while (e < NB && m->free[e] && m->failures[e] == m->failures[b] &&
		       m->strikes[e] == m->strikes[b])
			e++;
		assert_true(k < rs->n);
		assert_int_equal(rs->range[k].first, b);
		assert_int_equal(rs->range[k].count, e - b);
		assert_int_equal(rs->range[k].failures, m->failures[b]);
		assert_int_equal(rs->range[k].strikes, m->strikes[b]);
		k++;
		b = e;
	}
	assert_int_equal(rs->n, k);
}

static void give_back(struct ranges *rs, uint64_t first, uint64_t count, unsigned f, unsigned s)
{
	assert_int_equal(ranges_give_back(rs, first, count, f, s), TALLY_OK);
}

/* Hand-made cases: merging left, right, both, and not across another history. */
static void test_merge(void **state)
{
	struct ranges rs;
	(void)state;

	ranges_init(&rs);
	give_back(&rs, 10, 5, 0, 0);
	give_back(&rs, 15, 5, 0, 0); /* left */
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.range[0].count, 10);
	give_back(&rs, 5, 5, 0, 0); /* right */
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.range[0].first, 5);
	give_back(&rs, 30, 5, 0, 0);
	give_back(&rs, 20, 10, 0, 0); /* both */
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.range[0].first, 5);
	assert_int_equal(rs.range[0].count, 30);
	give_back(&rs, 35, 1, 1, 1); /* another history: apart */
	give_back(&rs, 0, 5, 1, 0);
	assert_int_equal(rs.n, 3);
	assert_int_equal(rs.range[0].first, 0);
	assert_int_equal(rs.range[0].failures, 1);
	assert_int_equal(rs.range[2].first, 35);
	assert_int_equal(rs.range[2].strikes, 1);
	ranges_clear(&rs);
	assert_int_equal(rs.n, 0);
	ranges_release(&rs);
	assert_null(rs.range);
}

/* The front's grant: at most want, at most the range, halved by each failure down to one. */
static void test_front_poison_rule(void **state)
{
	static const struct {
		uint64_t count;
		unsigned failures;
		uint64_t want, take;
	} t[] = {
		{ 8, 0, 5, 5 },   { 8, 0, 50, 8 },  { 8, 1, 50, 4 },  { 8, 1, 3, 3 },
		{ 8, 2, 50, 2 },  { 8, 3, 50, 1 },  { 8, 4, 50, 1 },  { 9, 1, 50, 4 },
		{ 1, 1, 50, 1 },  { 100, 63, 50, 1 }, { 100, 64, 50, 1 }, { 100, 200, 50, 1 },
	};
	struct batch_range out;
	struct ranges rs;
	(void)state;

	ranges_init(&rs);
	assert_int_equal(ranges_front(&rs, 10, &out), 0);
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		ranges_clear(&rs);
		give_back(&rs, 40, t[i].count, t[i].failures, 2);
		give_back(&rs, 1000, 7, 0, 0); /* a later range plays no part */
		assert_int_equal(ranges_front(&rs, t[i].want, &out), 1);
		assert_int_equal(out.first, 40);
		assert_int_equal(out.count, t[i].take);
		assert_int_equal(out.failures, t[i].failures);
		assert_int_equal(out.strikes, 2);
	}
	ranges_release(&rs);
}

/* Taking part of the front moves its start; taking all of it removes it. */
static void test_take(void **state)
{
	struct ranges rs;
	(void)state;

	ranges_init(&rs);
	give_back(&rs, 10, 5, 0, 0);
	give_back(&rs, 20, 5, 0, 0);
	ranges_take(&rs, 2);
	assert_int_equal(rs.range[0].first, 12);
	assert_int_equal(rs.range[0].count, 3);
	ranges_take(&rs, 3);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.range[0].first, 20);
	ranges_take(&rs, 5);
	assert_int_equal(rs.n, 0);
	ranges_release(&rs);
}

/* Random give-backs of leased runs and grants from the front, against the model. */
static void test_random_against_model(void **state)
{
	static struct model m;
	static const unsigned hist[][2] = { { 0, 0 }, { 1, 0 }, { 1, 1 }, { 3, 2 } };
	struct ranges rs;
	uint64_t seed = 11;
	(void)state;

	memset(&m, 0, sizeof m);
	ranges_init(&rs);
	for (int step = 0; step < 20000; step++) {
		uint64_t r = rng_splitmix64(&seed);
		if (r % 3) { /* give back a run of leased batches */
			uint64_t b = (r >> 8) % NB, e = b, len = 1 + (r >> 20) % 12;
			const unsigned *h = hist[(r >> 32) % 4];
			if (m.free[b])
				continue;
			while (e < NB && !m.free[e] && e - b < len)
				e++;
			give_back(&rs, b, e - b, h[0], h[1]);
			for (uint64_t k = b; k < e; k++) {
				m.free[k] = 1;
				m.failures[k] = h[0];
				m.strikes[k] = h[1];
			}
		} else { /* a grant from the front */
			struct batch_range out;
			uint64_t want = 1 + (r >> 8) % 20;
			if (!ranges_front(&rs, want, &out))
				continue;
			assert_true(out.count >= 1 && out.count <= want);
			for (uint64_t k = out.first; k < out.first + out.count; k++) {
				assert_true(m.free[k]);
				assert_int_equal(m.failures[k], out.failures);
				m.free[k] = 0;
			}
			assert_true(out.first == 0 || !m.free[out.first - 1]);
			ranges_take(&rs, out.count);
		}
		check_model(&rs, &m);
	}
	ranges_release(&rs);
}

/* A give-back that needs room and cannot have it changes nothing; merges need none. */
static void test_give_back_enomem(void **state)
{
	struct ranges rs;
	size_t n;
	(void)state;

	ranges_init(&rs);
	alloc_fail_after(0, 0);
	assert_int_equal(ranges_give_back(&rs, 5, 5, 0, 0), TALLY_ENOMEM);
	assert_int_equal(rs.n, 0);
	for (uint64_t b = 0; ; b += 10) { /* fill the array to its capacity */
		give_back(&rs, b, 5, 0, 0);
		if (rs.n == rs.cap)
			break;
	}
	n = rs.n;
	alloc_fail_after(0, 1);
	assert_int_equal(ranges_give_back(&rs, 1000, 5, 0, 0), TALLY_ENOMEM);
	assert_int_equal(ranges_give_back(&rs, 7, 1, 1, 0), TALLY_ENOMEM); /* another history */
	assert_int_equal(rs.n, n);
	assert_int_equal(rs.range[0].first, 0);
	assert_int_equal(rs.range[0].count, 5);
	assert_int_equal(rs.range[n - 1].first, 10 * (n - 1));
	give_back(&rs, 5, 5, 0, 0); /* merges need no room */
	assert_int_equal(rs.n, n - 1);
	alloc_fail_never();
	give_back(&rs, 1000, 5, 0, 0);
	assert_int_equal(rs.n, n);
	ranges_release(&rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_front_poison_rule),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_give_back_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
