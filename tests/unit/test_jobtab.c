/* The jobs in memory: ids and keys, loading, the list of changed jobs and what leaves once
 * written; and one job's batches: grants from given-back ranges before fresh ones, capped at a
 * prefix boundary, counts added with the overflow check and taken back out, early stopping, and
 * the end of a job dropping its checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "alloc.h"
#include "jobtab.h"
#include "kernel.h"

static struct job_spec spec_of(const char *kernel, uint64_t samples, double target)
{
	struct job_spec s = { .kernel = kernel_find(kernel), .samples = samples,
			      .batch_size = 1000, .seed = 7, .target_stderr = target,
			      .params = "{}" };
	return s;
}

static struct lease lease_of(const struct ljob *j, uint64_t first, uint64_t count)
{
	struct lease l = { .id = 1, .job_id = j->job.id, .spec = j->job.spec, .first_batch = first,
			   .batch_count = count, .state = LEASE_DONE };
	return l;
}

static size_t count_dirty(const struct jobtab *t)
{
	size_t n = 0;
	for (const struct ljob *j = t->dirty; j; j = j->dnext)
		n++;
	return n;
}

static enum tally_err note_id(void *ctx, const struct ljob *j)
{
	int64_t **ids = ctx;
	*(*ids)++ = j->job.id;
	return j->job.id == 99 ? TALLY_EDB : TALLY_OK;
}

/* Ids ascend from 1 and past loaded ones; keys find their job; the changed list keeps the
 * order of first changes; finished jobs leave once written, unfinished ones stay. */
static void test_table(void **state)
{
	struct jobtab t;
	struct job_spec pi = spec_of("pi", 10000, 0);
	struct job stored = { .id = 7, .spec = pi, .state = JOB_RUNNING, .batches_total = 10 };
	struct ljob *a, *b, *c;
	int64_t ids[8], *p = ids;
	(void)state;

	jobtab_init(&t);
	assert_non_null(a = jobtab_submit(&t, &pi, "key-a", 100));
	assert_int_equal(a->job.id, 1);
	assert_int_equal(a->job.state, JOB_QUEUED);
	assert_int_equal(a->job.batches_total, 10);
	assert_int_equal(a->job.keys.n, 2);
	assert_int_equal(a->job.created_at, 100);
	assert_null(a->stop);
	assert_int_equal(jobtab_load(&t, &stored, 3, "it broke"), TALLY_OK);
	assert_non_null(b = jobtab_submit(&t, &pi, NULL, 101));
	assert_int_equal(b->job.id, 8); /* past the loaded one */
	jobtab_set_next_id(&t, 5);      /* never down */
	assert_non_null(c = jobtab_submit(&t, &pi, "", 102));
	assert_int_equal(c->job.id, 9);
	assert_int_equal(t.n, 4);

	assert_ptr_equal(jobtab_find(&t, 7), t.head->next);
	assert_int_equal(jobtab_find(&t, 7)->next_batch, 3);
	assert_string_equal(jobtab_find(&t, 7)->last_failure, "it broke");
	assert_int_equal(jobtab_find(&t, 7)->job.first_lease_id, 1); /* leased before: any */
	assert_null(jobtab_find(&t, 2));
	assert_ptr_equal(jobtab_by_key(&t, "key-a"), a);
	assert_null(jobtab_by_key(&t, "key-b"));

	assert_int_equal(count_dirty(&t), 3); /* submitted: a, b, c; loaded: clean */
	jobtab_touch(&t, a);
	jobtab_touch(&t, jobtab_find(&t, 7));
	assert_int_equal(count_dirty(&t), 4);
	assert_int_equal(jobtab_each_dirty(&t, note_id, &p), TALLY_OK);
	assert_int_equal(p - ids, 4);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 8);
	assert_int_equal(ids[2], 9);
	assert_int_equal(ids[3], 7);

	b->job.state = JOB_SUCCEEDED;
	jobtab_written(&t);
	assert_false(jobtab_dirty(&t));
	assert_null(jobtab_find(&t, 8));
	assert_int_equal(t.n, 3);
	assert_ptr_equal(t.tail, c);
	c->job.state = JOB_CANCELLED; /* the tail leaves */
	jobtab_touch(&t, c);
	jobtab_written(&t);
	assert_ptr_equal(t.tail, jobtab_find(&t, 7));
	assert_non_null(c = jobtab_submit(&t, &pi, NULL, 103));
	assert_int_equal(c->job.id, 10);
	assert_ptr_equal(t.tail, c);

	jobtab_clear(&t);
	assert_int_equal(t.n, 0);
	assert_false(jobtab_dirty(&t));
	assert_non_null(a = jobtab_submit(&t, &pi, NULL, 104));
	assert_int_equal(a->job.id, 11); /* ids are never reused */
	jobtab_clear(&t);
}

/* Oldest first lease, the next stopping job and the totals pass over finished jobs. */
static void test_scans(void **state)
{
	struct jobtab t;
	struct job_spec pi = spec_of("pi", 10000, 0), stopping = spec_of("pi", 10000, 0.01);
	struct ljob *a, *b, *c;
	uint64_t pending = 0, remaining = 0, checks = 0;
	(void)state;

	jobtab_init(&t);
	assert_non_null(a = jobtab_submit(&t, &stopping, NULL, 1));
	assert_non_null(b = jobtab_submit(&t, &pi, NULL, 1));
	assert_non_null(c = jobtab_submit(&t, &stopping, NULL, 1));
	assert_non_null(a->stop);
	assert_int_equal(jobtab_oldest_lease(&t), 0);
	b->job.first_lease_id = 40;
	c->job.first_lease_id = 30;
	a->job.first_lease_id = 20;
	a->job.state = JOB_FAILED;
	assert_int_equal(jobtab_oldest_lease(&t), 30);
	assert_int_equal(jobtab_next_stopping(&t, 0), 3);
	assert_int_equal(jobtab_next_stopping(&t, 3), 0);
	b->job.batches_done = 4;
	b->job.batches_leased = 2;
	b->job.samples_done = 4000;
	c->job.checks_pending = 2;
	jobtab_totals(&t, &pending, &remaining, &checks);
	assert_int_equal(pending, 4 + 10);
	assert_int_equal(remaining, 6000 + 10000);
	assert_int_equal(checks, 2);
	jobtab_clear(&t);
}

/* Grants take the front given-back range first (halved by its failures), then fresh batches,
 * never across a prefix boundary; what they take is gone from the pending batches. */
static void test_grants(void **state)
{
	struct jobtab t;
	struct job_spec pi = spec_of("pi", 100000, 0), stopping = spec_of("pi", 100000, 0.01);
	struct ljob *j, *s;
	struct batch_range r;
	(void)state;

	jobtab_init(&t);
	assert_non_null(j = jobtab_submit(&t, &pi, NULL, 1));
	assert_int_equal(ljob_pending(j), 100);
	r = ljob_next(j, 30);
	assert_int_equal(r.first, 0);
	assert_int_equal(r.count, 30);
	ljob_take(j, r.count);
	assert_int_equal(j->next_batch, 30);
	assert_int_equal(ljob_pending(j), 70);
	assert_false(j->ranges_changed);

	assert_int_equal(ljob_give_back(j, 10, 8, 1, 0), TALLY_OK); /* a failed lease's */
	j->job.batches_leased -= 8;
	assert_true(j->ranges_changed);
	for (uint64_t first = 10, want = 4; j->free.n; want = want > 1 ? want / 2 : 1) {
		r = ljob_next(j, 30); /* 8 >> 1, then what is left >> 1, down to one */
		assert_int_equal(r.first, first);
		assert_int_equal(r.count, want);
		assert_int_equal(r.failures, 1);
		ljob_take(j, r.count);
		first += r.count;
	}
	assert_int_equal(j->next_batch, 30); /* fresh ones untouched */
	r = ljob_next(j, 5);
	assert_int_equal(r.first, 30);
	assert_int_equal(r.failures, 0);

	assert_non_null(s = jobtab_submit(&t, &stopping, NULL, 1));
	ljob_take(s, 9);
	r = ljob_next(s, 50);
	assert_int_equal(r.first, 9);
	assert_int_equal(r.count, 1); /* segment [8, 10) */
	jobtab_clear(&t);
}

/* A done lease's counts are added, refused past INT64_MAX, and taken back out when its worker
 * lied; counts that cannot be the job's are left alone. */
static void test_counts(void **state)
{
	struct jobtab t;
	struct job_spec pi = spec_of("pi", 10000, 0);
	uint64_t c[KERNEL_MAX_KEYS] = { 785, 1000 }, big[KERNEL_MAX_KEYS] = { INT64_MAX, 1 };
	struct ljob *j;
	struct lease l;
	(void)state;

	jobtab_init(&t);
	assert_non_null(j = jobtab_submit(&t, &pi, NULL, 1));
	l = lease_of(j, 2, 1);
	ljob_take(j, 3);
	assert_int_equal(ljob_can_count(j, c), TALLY_OK);
	ljob_count(j, &l, c);
	assert_int_equal(j->job.counts[0], 785);
	assert_int_equal(j->job.counts[1], 1000);
	assert_int_equal(j->job.batches_done, 1);
	assert_int_equal(j->job.samples_done, 1000);
	assert_int_equal(ljob_can_count(j, big), TALLY_ECOUNTS);
	assert_int_equal(j->job.counts[0], 785);

	assert_int_equal(ljob_uncount(j, &l, big), TALLY_ECONFLICT);
	assert_int_equal(j->free.n, 0);
	alloc_fail_after(0, 0);
	assert_int_equal(ljob_uncount(j, &l, c), TALLY_ENOMEM);
	assert_int_equal(j->job.counts[0], 785);
	assert_int_equal(j->job.batches_done, 1);
	assert_int_equal(ljob_uncount(j, &l, c), TALLY_OK);
	assert_int_equal(j->job.counts[0], 0);
	assert_int_equal(j->job.batches_done, 0);
	assert_int_equal(j->job.samples_done, 0);
	assert_int_equal(j->free.n, 1);
	assert_int_equal(j->free.range[0].first, 2);
	assert_int_equal(j->free.range[0].failures, 0);
	l = lease_of(j, 0, 2);
	assert_int_equal(ljob_uncount(j, &l, c), TALLY_ECONFLICT); /* more batches than done */
	jobtab_clear(&t);
}

/* A stopping job stops at the prefix its counts reach, with exactly that prefix's counts. */
static void test_stop(void **state)
{
	struct jobtab t;
	struct job_spec stopping = spec_of("pi", 1000 * 1000, 0.012);
	uint64_t c[KERNEL_MAX_KEYS] = { 785, 1000 };
	struct ljob *j;
	(void)state;

	jobtab_init(&t);
	assert_non_null(j = jobtab_submit(&t, &stopping, NULL, 1));
	assert_int_equal(ljob_stop_eval(j), 0); /* queued */
	j->job.state = JOB_RUNNING;
	ljob_take(j, 30);
	for (uint64_t b = 0; b < 30; b++) {
		struct lease l = lease_of(j, b, 1);
		ljob_count(j, &l, c);
		if (b < 19)
			assert_int_equal(ljob_stop_eval(j), 0);
	}
	assert_int_equal(ljob_stop_eval(j), 1);
	assert_int_equal(j->job.batches_done, 20);
	assert_int_equal(j->job.samples_done, 20000);
	assert_int_equal(j->job.counts[0], 785 * 20);
	jobtab_clear(&t);
}

/* The end of a job drops its pending checks onto the changed ones and empties its pending
 * batches; the names of the workers it caught are kept while they fit. */
static void test_end_and_caught(void **state)
{
	struct jobtab t;
	struct verify v = { 0 };
	struct job_spec pi = spec_of("pi", 10000, 0);
	uint64_t c[KERNEL_MAX_KEYS] = { 785, 1000 };
	struct verify_check *ch;
	struct ljob *j;
	struct lease l;
	char name[WORKER_NAME_MAX];
	(void)state;

	jobtab_init(&t);
	assert_non_null(j = jobtab_submit(&t, &pi, NULL, 1));
	l = lease_of(j, 0, 2);
	assert_non_null(ch = ljob_add_check(j, &l, c));
	assert_int_equal(j->checks_open, 1);
	assert_int_equal(j->job.checks_pending, 1);
	alloc_fail_after(0, 0);
	assert_null(ljob_add_check(j, &l, c));
	assert_int_equal(j->job.checks_pending, 1);
	assert_int_equal(ljob_give_back(j, 5, 2, 0, 0), TALLY_OK);
	ljob_end(j, JOB_CANCELLED, 50, &v);
	assert_null(j->checks);
	assert_int_equal(j->checks_open, 0);
	assert_int_equal(j->job.checks_pending, 0);
	assert_int_equal(ch->state, CHECK_DROPPED);
	assert_ptr_equal(v.dirty, ch);
	assert_int_equal(j->job.state, JOB_CANCELLED);
	assert_int_equal(j->job.finished_at, 50);
	assert_int_equal(j->free.n, 0);
	assert_true(j->ranges_changed);
	verify_written(&v); /* frees the dropped check */

	for (int i = 0; i < 10; i++) {
		memset(name, 'a' + i, sizeof name - 1);
		name[sizeof name - 1] = '\0';
		ljob_caught(j, name);
	}
	assert_int_equal(strlen(j->job.quarantined), 4 * (WORKER_NAME_MAX - 1) + 3); /* 4 fit */
	assert_int_equal(j->job.quarantined[WORKER_NAME_MAX - 1], '\n');
	jobtab_clear(&t);
}

static int any(void *ctx, struct ljob *j)
{
	(void)ctx;
	(void)j;
	return 1;
}

/* Picks by owner and priority from the spec; a job is picked while it has batches pending or
 * checks open (worked out again for jobs touched or rescheduled), never once it ended; one
 * written finished leaves the scheduler and the tables. */
static void test_pick_ready(void **state)
{
	struct jobtab t;
	struct job_spec a = spec_of("pi", 3000, 0), b = spec_of("pi", 3000, 0);
	uint64_t c[KERNEL_MAX_KEYS] = { 785, 1000 };
	struct verify v = { 0 };
	struct ljob *ja, *jb, *jc;
	struct lease l;
	(void)state;

	snprintf(a.owner, sizeof a.owner, "ann");
	snprintf(b.owner, sizeof b.owner, "bob");
	b.priority = 5;
	jobtab_init(&t);
	assert_null(jobtab_pick(&t, any, NULL));
	assert_non_null(ja = jobtab_submit(&t, &a, NULL, 1));
	assert_non_null(jb = jobtab_submit(&t, &b, "kb", 1));
	assert_non_null(jc = jobtab_submit(&t, &a, NULL, 1));
	assert_int_equal(t.fair.flows.n, 2);
	assert_ptr_equal(jobtab_pick(&t, any, NULL), jb); /* priority 5 */
	ljob_take(jb, 3);
	jobtab_touch(&t, jb);
	assert_ptr_equal(jobtab_pick(&t, any, NULL), ja); /* jb has nothing pending */
	jobtab_charge(&t, ja);
	assert_ptr_equal(jobtab_pick(&t, any, NULL), jc); /* ann's jobs take turns */
	jobtab_charge(&t, jc);
	l = lease_of(jb, 0, 1);
	assert_non_null(ljob_add_check(jb, &l, c)); /* a check open: jb is ready again */
	jobtab_resched(&t, jb);
	assert_ptr_equal(jobtab_pick(&t, any, NULL), jb);
	jb->checks_open = 0;
	assert_int_equal(ljob_give_back(jb, 2, 1, 1, 0), TALLY_OK); /* a batch given back */
	jb->job.batches_leased--;
	jobtab_touch(&t, jb);
	assert_ptr_equal(jobtab_pick(&t, any, NULL), jb);
	ljob_end(jb, JOB_CANCELLED, 2, &v);
	jobtab_touch(&t, jb);
	assert_ptr_equal(jobtab_pick(&t, any, NULL), ja);
	verify_written(&v); /* frees the dropped check */
	jobtab_written(&t);
	assert_null(jobtab_find(&t, 2));
	assert_null(jobtab_by_key(&t, "kb"));
	assert_int_equal(t.fair.flows.n, 1); /* bob's went with his last job */
	assert_int_equal(t.fair.members, 2);
	jobtab_clear(&t);
	assert_int_equal(t.fair.members, 0);
}

/* Out of memory at any allocation of a submit or a load, the table is as it was. */
static void test_out_of_memory(void **state)
{
	struct jobtab t;
	struct job_spec pi = spec_of("pi", 10000, 0.01);
	struct job stored = { .id = 40, .spec = pi, .state = JOB_RUNNING, .batches_total = 10 };
	struct ljob *j = NULL;
	long fails = 0;
	(void)state;

	snprintf(pi.owner, sizeof pi.owner, "ann");
	jobtab_init(&t);
	for (long n = 0; !j; n++) {
		alloc_fail_after(n, 0);
		j = jobtab_submit(&t, &pi, "key", 1);
		alloc_fail_never();
		if (j)
			break;
		fails++;
		assert_int_equal(t.n, 0);
		assert_int_equal(t.next_id, 1);
		assert_int_equal(t.fair.members, 0);
		assert_null(jobtab_by_key(&t, "key"));
		assert_false(jobtab_dirty(&t));
	}
	assert_true(fails >= 5); /* the job, its segments, the two tables, the scheduler's flow */
	assert_int_equal(j->job.id, 1);
	for (long n = 0;; n++) {
		enum tally_err rc;
		alloc_fail_after(n, 0);
		rc = jobtab_load(&t, &stored, 0, NULL);
		alloc_fail_never();
		if (!rc)
			break;
		assert_int_equal(rc, TALLY_ENOMEM);
		assert_int_equal(t.n, 1);
		assert_null(jobtab_find(&t, 40));
	}
	assert_non_null(jobtab_find(&t, 40));
	assert_ptr_equal(jobtab_pick(&t, any, NULL), j);
	jobtab_clear(&t);
}

/* Many jobs: each found by id and by key, and every one picked in turn. */
static void test_many_jobs(void **state)
{
	enum { N = 10000 };
	struct jobtab t;
	struct job_spec pi = spec_of("pi", 1000, 0);
	char key[16];
	static unsigned char picked[N + 1];
	(void)state;

	jobtab_init(&t);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(pi.owner, sizeof pi.owner, "u%d", i % 7);
		assert_non_null(jobtab_submit(&t, &pi, i % 3 ? NULL : key, 1));
	}
	jobtab_written(&t);
	for (int i = 0; i < N; i++) {
		struct ljob *j = jobtab_find(&t, i + 1);
		assert_non_null(j);
		assert_int_equal(j->job.id, i + 1);
		snprintf(key, sizeof key, "k%d", i);
		assert_ptr_equal(jobtab_by_key(&t, key), i % 3 ? NULL : j);
	}
	assert_null(jobtab_find(&t, N + 1));
	memset(picked, 0, sizeof picked);
	for (int i = 0; i < N; i++) { /* each job's one batch */
		struct ljob *j = jobtab_pick(&t, any, NULL);
		assert_non_null(j);
		assert_false(picked[j->job.id]++);
		jobtab_charge(&t, j);
		ljob_take(j, 1);
		jobtab_touch(&t, j);
	}
	assert_null(jobtab_pick(&t, any, NULL));
	jobtab_clear(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_scans),
		cmocka_unit_test(test_grants),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_end_and_caught),
		cmocka_unit_test(test_pick_ready),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test(test_many_jobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
