/* Speculative execution: the policy (server/spec.h: expected finishes, when a copy is worth it,
 * when to look again) and its use by the live state (live_speculate): copies only of what a job
 * waits for last, never to the lease's own worker, one per lease, a bound on them; the first
 * complete counts and the other is done with nothing added; a fail or an expiry of one copy
 * gives nothing back while the other is live; a copy is written only once it is alone; cancel
 * and extend end both; and, over random runs, every batch counted exactly once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "kernel.h"
#include "live.h"
#include "spec.h"

#define T0 1000000
#define TTL 10000

static const char *const pi_only[] = { "pi" };

/* --- the policy ----------------------------------------------------------------------------- */

static void test_policy(void **state)
{
	/* 100,000 samples at 1e6/s: 100 ms. */
	struct spec_lease l = { T0, 100000, 1e6 };
	int64_t at = 0;
	(void)state;

	assert_int_equal(spec_duration(100000, 1e6), 100);
	assert_int_equal(spec_duration(1, 1e9), 1); /* never 0 */
	assert_int_equal(spec_expect(&l, T0), T0 + 100);
	assert_int_equal(spec_expect(&l, T0 + 60), T0 + 100);
	/* Overdue: as long again as it has taken. */
	assert_int_equal(spec_expect(&l, T0 + 150), T0 + 300);
	/* A worker 10x faster wins while 13.3 ms of the 100 are left... */
	assert_true(spec_worth(&l, 1e7, T0));
	assert_true(spec_worth(&l, 1e7, T0 + 86));
	assert_false(spec_worth(&l, 1e7, T0 + 95));
	/* ...one as fast does not, until the lease is overdue by a third of its time. */
	assert_false(spec_worth(&l, 1e6, T0));
	assert_false(spec_worth(&l, 1e6, T0 + 120));
	assert_true(spec_worth(&l, 1e6, T0 + 134));
	/* A slower one never wins on time. */
	assert_false(spec_worth(&l, 1e5, T0 + 100));
	assert_int_equal(spec_look_at(&l, T0), T0 + 200);
	assert_int_equal(spec_look_at(&l, T0 + 200), 0);
	assert_true(spec_worth(&l, 1e6, T0 + 200)); /* what the look time promises */
	spec_earlier(&at, 0);
	assert_int_equal(at, 0);
	spec_earlier(&at, 50);
	spec_earlier(&at, 70);
	assert_int_equal(at, 50);
	spec_earlier(&at, 20);
	assert_int_equal(at, 20);
}

/* --- the live state ------------------------------------------------------------------------- */

/* Worker rates: names starting with 's' are slow (1e4 samples/s), the rest 1e6. */
static double rate_of(void *ctx, const char *worker)
{
	(void)ctx;
	return worker[0] == 's' ? 1e4 : 1e6;
}

static uint64_t size_fixed(void *ctx, const struct job *job, uint64_t remaining)
{
	(void)job;
	(void)remaining;
	return *(const uint64_t *)ctx;
}

/* A live state failing a job at max_failures strikes of a batch (0: never). */
static struct live *fresh(unsigned max_failures)
{
	struct live *lv = live_new(9, max_failures);
	assert_non_null(lv);
	live_set_seq(lv, 1, LIVE_SEQ_MAX);
	return lv;
}

/* Submits a pi job of samples in batches of 1000. */
static int64_t job_of(struct live *lv, uint64_t samples)
{
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = samples,
				 .batch_size = 1000, .seed = 3, .params = "{}" };
	struct job j;
	assert_int_equal(live_submit(lv, &spec, NULL, T0, &j), TALLY_OK);
	return j.id;
}

/* Grants worker n batches at now. */
static struct lease take(struct live *lv, const char *worker, uint64_t n, int64_t now)
{
	struct lease l;
	assert_int_equal(live_acquire(lv, worker, pi_only, 1, 0, NULL, now, TTL, size_fixed, &n, &l),
			 TALLY_OK);
	return l;
}

/* What worker gets when it asks at now: a lease of at most n batches, else a copy (*of set),
 * else an error. */
static enum tally_err ask_n(struct live *lv, const char *worker, uint64_t n, int64_t now,
			    struct lease *out, int64_t *of)
{
	enum tally_err rc = live_acquire(lv, worker, pi_only, 1, 0, NULL, now, TTL, size_fixed,
					 &n, out);
	*of = 0;
	if (rc == TALLY_ENOTFOUND)
		rc = live_speculate(lv, worker, pi_only, 1, 0, NULL, SPEC_LIVE_DEFAULT, now, TTL,
				    rate_of, NULL, out, of);
	return rc;
}

static enum tally_err ask(struct live *lv, const char *worker, int64_t now, struct lease *out,
			  int64_t *of)
{
	return ask_n(lv, worker, 1000, now, out, of);
}

/* Completes l with counts batch_count in every key. */
static enum tally_err finish(struct live *lv, const struct lease *l, int64_t now, int *done)
{
	uint64_t c[KERNEL_MAX_KEYS];
	for (size_t i = 0; i < KERNEL_MAX_KEYS; i++)
		c[i] = l->batch_count;
	return live_complete(lv, l->id, c, NULL, now, done);
}

static enum lease_state state_of(struct live *lv, int64_t id)
{
	const struct lease *l = live_lease(lv, id);
	assert_non_null(l);
	return l->state;
}

static void totals(struct live *lv, struct live_totals *t)
{
	live_totals(lv, t);
}

/* "slow" holds batches 0-4, "a" 5-9: a copy goes to "b" of slow's lease only once nothing is
 * pending, never to slow itself nor to "a" of its own; one copy per lease. Its complete counts,
 * slow's lease is done with it (its heartbeat and complete refused here: the coordinator
 * answers the complete as a duplicate), and the job's counts are exact. */
static void test_copy_of_the_last_lease(void **state)
{
	struct live *lv = fresh(0);
	int64_t id = job_of(lv, 12000), of;
	struct lease s, a, a2, c, none;
	struct live_totals t;
	int done = -1;
	(void)state;

	s = take(lv, "slow", 5, T0);
	a = take(lv, "a", 5, T0);
	/* Batches 10-11 are pending: no copy yet. */
	assert_int_equal(live_speculate(lv, "b", pi_only, 1, 0, NULL, SPEC_LIVE_DEFAULT, T0 + 1,
					TTL, rate_of, NULL, &c, &of),
			 TALLY_ENOTFOUND);
	a2 = take(lv, "a", 5, T0 + 1); /* the last two */
	assert_int_equal(a2.batch_count, 2);
	/* Its own lease, never; "a" as fast as itself: its own leases are not worth a copy. */
	assert_int_equal(ask(lv, "slow", T0 + 2, &none, &of), TALLY_ENOTFOUND);
	assert_int_equal(ask(lv, "b", T0 + 2, &c, &of), TALLY_OK);
	assert_int_equal(of, s.id);
	assert_string_equal(c.worker, "b");
	assert_int_equal(c.first_batch, 0);
	assert_int_equal(c.batch_count, 5);
	assert_int_equal(c.check_of, 0);
	assert_int_equal(c.expires_at, T0 + 2 + TTL);
	assert_int_equal(live_job(lv, id)->batches_leased, 12); /* the copied ones once */
	assert_int_equal(ask(lv, "d", T0 + 2, &none, &of), TALLY_ENOTFOUND); /* one per lease */
	assert_int_equal(finish(lv, &c, T0 + 10, &done), TALLY_OK);
	assert_int_equal(done, 0);
	assert_int_equal(state_of(lv, s.id), LEASE_DONE);
	assert_int_equal(live_heartbeat(lv, s.id, T0 + 11, TTL, &none), TALLY_ELOST);
	assert_int_equal(finish(lv, &s, T0 + 11, &done), TALLY_ELOST);
	assert_int_equal(finish(lv, &a, T0 + 12, &done), TALLY_OK);
	assert_int_equal(finish(lv, &a2, T0 + 13, &done), TALLY_OK);
	assert_int_equal(done, 1);
	assert_int_equal(live_job(lv, id)->state, JOB_SUCCEEDED);
	assert_int_equal(live_job(lv, id)->batches_done, 12);
	assert_int_equal(live_job(lv, id)->batches_leased, 0);
	assert_int_equal(live_job(lv, id)->counts[0], 12);
	totals(lv, &t);
	assert_int_equal(t.spec_granted, 1);
	assert_int_equal(t.spec_won, 1);
	assert_int_equal(t.leases_active, 0);
	live_free(lv);
}

/* The original completes first: the copy is done, nothing added, and no win is counted. A
 * slower asker gets no copy, and learns when a copy would be worth it. */
static void test_original_wins(void **state)
{
	struct live *lv = fresh(0);
	int64_t id = job_of(lv, 5000), of;
	struct lease a, c, none;
	struct live_totals t;
	int done = -1;
	(void)state;

	a = take(lv, "a", 5, T0); /* 5000 samples at 1e6/s: 5 ms */
	assert_int_equal(ask(lv, "slow", T0, &none, &of), TALLY_ENOTFOUND);
	assert_int_equal(live_spec_look_at(lv), T0 + 10);
	assert_int_equal(ask(lv, "b", T0 + 10, &c, &of), TALLY_OK); /* overdue by its time */
	assert_int_equal(finish(lv, &a, T0 + 11, &done), TALLY_OK);
	assert_int_equal(done, 1);
	assert_int_equal(state_of(lv, c.id), LEASE_DONE);
	assert_int_equal(finish(lv, &c, T0 + 12, &done), TALLY_ELOST);
	assert_int_equal(live_job(lv, id)->counts[0], 5);
	totals(lv, &t);
	assert_int_equal(t.spec_granted, 1);
	assert_int_equal(t.spec_won, 0);
	live_free(lv);
}

/* A fail or an expiry of one copy gives nothing back while the other is live, which takes the
 * batches' history on; once both failed, the batches come back with both failures. */
static void test_fail_and_expiry_of_one_copy(void **state)
{
	struct live *lv = fresh(3);
	int64_t id = job_of(lv, 10000), of;
	struct lease s, c, again, none;
	int done = -1, failed = 0;
	(void)state;

	s = take(lv, "slow", 10, T0);
	assert_int_equal(ask(lv, "b", T0, &c, &of), TALLY_OK);
	assert_int_equal(live_fail(lv, s.id, "disk on fire", 1, T0 + 1, &failed), TALLY_OK);
	assert_int_equal(failed, 0);
	assert_int_equal(live_job(lv, id)->batches_leased, 10);
	assert_int_equal(ask(lv, "d", T0 + 1, &none, &of), TALLY_ENOTFOUND); /* nothing back */
	assert_int_equal(live_lease(lv, c.id)->failures, 1);
	/* Alone now, the copy expires: its batches come back with both failures. */
	assert_int_equal(live_reap(lv, T0 + TTL, &failed), 1);
	again = take(lv, "d", 10, T0 + TTL);
	assert_int_equal(again.first_batch, 0);
	assert_int_equal(again.batch_count, 10 >> 2); /* the poison rule */
	assert_int_equal(again.failures, 2);
	live_free(lv);

	/* The original expires while its copy is live: the copy finishes the job. */
	lv = fresh(3);
	id = job_of(lv, 3000);
	s = take(lv, "slow", 3, T0);
	assert_int_equal(ask(lv, "b", T0 + 1, &c, &of), TALLY_OK);
	assert_int_equal(live_heartbeat(lv, c.id, T0 + 5000, TTL, &none), TALLY_OK);
	assert_int_equal(live_reap(lv, T0 + TTL, &failed), 1);
	assert_int_equal(state_of(lv, s.id), LEASE_EXPIRED);
	assert_int_equal(live_job(lv, id)->batches_leased, 3);
	assert_int_equal(finish(lv, &c, T0 + TTL, &done), TALLY_OK);
	assert_int_equal(done, 1);
	assert_int_equal(live_job(lv, id)->counts[0], 3);
	live_free(lv);
}

/* A store of lease rows by id, as the coordinator writes them. */
struct rows {
	int64_t id[16];
	enum lease_state state[16];
	int counts[16];
	size_t n;
};

static enum tally_err row_job(void *ctx, const struct live_job_row *row)
{
	(void)ctx;
	(void)row;
	return TALLY_OK;
}

static enum tally_err row_lease(void *ctx, const struct live_lease_row *row)
{
	struct rows *r = ctx;
	size_t i = 0;
	while (i < r->n && r->id[i] != row->lease->id)
		i++;
	assert_true(i < 16);
	r->n += i == r->n;
	r->id[i] = row->lease->id;
	r->state[i] = row->lease->state;
	r->counts[i] = row->counts != NULL;
	return TALLY_OK;
}

static enum tally_err row_check(void *ctx, const struct live_check_row *row)
{
	(void)ctx;
	(void)row;
	return TALLY_OK;
}

static enum tally_err row_quarantine(void *ctx, const struct live_quarantine_row *row)
{
	(void)ctx;
	(void)row;
	return TALLY_OK;
}

static void write_rows(struct live *lv, struct rows *r)
{
	struct live_writer w = { row_job, row_lease, row_check, row_quarantine, r };
	assert_int_equal(live_each_dirty(lv, &w), TALLY_OK);
	live_written(lv);
}

/* Returns the row of lease id (-1: none). */
static int row_of(const struct rows *r, int64_t id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->id[i] == id)
			return (int)i;
	return -1;
}

/* A copy beside its original is never written (a restart forgets it); once alone it is, live;
 * the loser of a race is written done without counts, the winner with them. */
static void test_rows_written(void **state)
{
	struct live *lv = fresh(0);
	struct rows r = { 0 };
	int64_t of;
	struct lease s, c, s2, c2, none;
	int done;
	(void)state;

	(void)job_of(lv, 5000);
	s = take(lv, "slow", 5, T0);
	assert_int_equal(ask(lv, "b", T0, &c, &of), TALLY_OK);
	assert_int_equal(live_heartbeat(lv, c.id, T0 + 1, TTL, &none), TALLY_OK);
	write_rows(lv, &r);
	assert_true(row_of(&r, s.id) >= 0);
	assert_int_equal(row_of(&r, c.id), -1);
	assert_int_equal(finish(lv, &c, T0 + 2, &done), TALLY_OK);
	write_rows(lv, &r);
	assert_int_equal(r.state[row_of(&r, c.id)], LEASE_DONE);
	assert_int_equal(r.counts[row_of(&r, c.id)], 1);
	assert_int_equal(r.state[row_of(&r, s.id)], LEASE_DONE);
	assert_int_equal(r.counts[row_of(&r, s.id)], 0);

	(void)job_of(lv, 5000);
	s2 = take(lv, "slow", 5, T0 + 3);
	assert_int_equal(ask(lv, "b", T0 + 3, &c2, &of), TALLY_OK);
	write_rows(lv, &r);
	assert_int_equal(row_of(&r, c2.id), -1);
	assert_int_equal(live_fail(lv, s2.id, "gone", 0, T0 + 4, NULL), TALLY_OK);
	write_rows(lv, &r);
	assert_int_equal(r.state[row_of(&r, s2.id)], LEASE_FAILED);
	assert_int_equal(r.state[row_of(&r, c2.id)], LEASE_ACTIVE); /* alone: the store has it */
	live_free(lv);
}

/* At most SPEC_LIVE_DEFAULT copies are live; a cancelled job's pairs end with it. An extend that
 * recomputes a short last batch takes both copies of its lease back. */
static void test_bound_cancel_and_extend(void **state)
{
	struct live *lv = fresh(0);
	char name[16];
	int64_t id = job_of(lv, 1000 * (SPEC_LIVE_DEFAULT + 1)), id2, of;
	struct lease l;
	struct job j;
	(void)state;

	for (int i = 0; i <= SPEC_LIVE_DEFAULT; i++) {
		snprintf(name, sizeof name, "s%d", i);
		(void)take(lv, name, 1, T0);
	}
	for (int i = 0; i <= SPEC_LIVE_DEFAULT; i++) {
		snprintf(name, sizeof name, "f%d", i);
		assert_int_equal(ask(lv, name, T0, &l, &of),
				 i < SPEC_LIVE_DEFAULT ? TALLY_OK : TALLY_ENOTFOUND);
	}
	assert_int_equal(live_cancel(lv, id, T0 + 1, &j), TALLY_OK);
	id2 = job_of(lv, 2500); /* a short last batch */
	(void)take(lv, "slow", 3, T0 + 1);
	assert_int_equal(ask(lv, "b", T0 + 1, &l, &of), TALLY_OK); /* the pairs ended */
	assert_int_equal(live_extend(lv, id2, 3500, NULL, NULL, T0 + 2, &j), TALLY_OK);
	assert_int_equal(state_of(lv, of), LEASE_CANCELLED);
	assert_int_equal(state_of(lv, l.id), LEASE_CANCELLED);
	assert_int_equal(j.batches_leased, 0);
	l = take(lv, "b", 10, T0 + 3);
	assert_int_equal(l.first_batch, 0);
	assert_int_equal(l.batch_count, 3); /* the given-back range, then the fresh batch */
	live_free(lv);
}

static void hold(void *ctx, const struct lease *l)
{
	unsigned char *holders = ctx;
	for (uint64_t b = l->first_batch; b < l->first_batch + l->batch_count; b++)
		assert_true(++holders[b] <= 2);
}

/* Random runs of eight workers (two slow), with completes, fails, stalls that expire and copies
 * wherever the policy grants them: no batch is in more than two live leases, batches_leased
 * counts each leased batch once, each batch is counted once, and the job succeeds once with
 * exact counts. */
static void run_random(uint64_t seed)
{
	struct live *lv = fresh(0);
	const char *const names[8] = { "slow1", "slow2", "a", "b", "c", "d", "e", "f" };
	struct lease held[8];
	int holding[8] = { 0 }, finishes = 0;
	static unsigned char done[400], holders[400];
	int64_t now = T0, id = job_of(lv, 400 * 1000);
	uint64_t x = seed;
	struct live_totals t;

	memset(done, 0, sizeof done);
	for (int k = 0; !finishes && k < 200000; k++) {
		int w = k % 8, f = 0;
		struct lease *l = &held[w];
		int64_t of;
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		unsigned r = (unsigned)(x >> 33) % 100;
		now += 2;
		(void)live_reap(lv, now, NULL);
		if (holding[w] && r < 3) {
			holding[w] = 0; /* stalls: its lease expires */
		} else if (holding[w] && (r < 8 || now - l->granted_at > (w < 2 ? 400 : 40))) {
			enum tally_err rc = r < 8 ? live_fail(lv, l->id, "x", r & 1, now, NULL)
						  : finish(lv, l, now, &f);
			if (rc == TALLY_OK && r >= 8) {
				for (uint64_t b = l->first_batch; b < l->first_batch + l->batch_count; b++) {
					assert_int_equal(done[b], 0);
					done[b] = 1;
				}
			} else if (rc != TALLY_OK) {
				enum lease_state s = state_of(lv, l->id);
				assert_true(s == LEASE_DONE || s == LEASE_EXPIRED);
			}
			finishes += f;
			holding[w] = 0;
		} else if (holding[w]) {
			holding[w] = live_heartbeat(lv, l->id, now, 200, l) == TALLY_OK;
		} else {
			enum tally_err rc = ask_n(lv, names[w], 1 + r % 20, now, l, &of);
			assert_true(rc == TALLY_OK || rc == TALLY_ENOTFOUND);
			holding[w] = rc == TALLY_OK;
		}
		memset(holders, 0, sizeof holders);
		live_each_lease(lv, hold, holders);
		uint64_t leased = 0, ndone = 0;
		for (size_t b = 0; b < 400; b++) {
			assert_false(done[b] && holders[b]);
			leased += holders[b] > 0;
			ndone += done[b];
		}
		const struct job *j = live_job(lv, id);
		assert_int_equal(j->batches_leased, leased);
		assert_int_equal(j->batches_done, ndone);
	}
	assert_int_equal(finishes, 1);
	assert_int_equal(live_job(lv, id)->counts[0], 400);
	assert_int_equal(live_job(lv, id)->batches_leased, 0);
	totals(lv, &t);
	assert_true(t.spec_granted > 0);
	live_free(lv);
}

static void test_random_runs_count_once(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++)
		run_random(seed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_copy_of_the_last_lease),
		cmocka_unit_test(test_original_wins),
		cmocka_unit_test(test_fail_and_expiry_of_one_copy),
		cmocka_unit_test(test_rows_written),
		cmocka_unit_test(test_bound_cancel_and_extend),
		cmocka_unit_test(test_random_runs_count_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
