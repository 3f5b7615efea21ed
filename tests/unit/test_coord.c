/* The coordinator with an injected clock: lease expiry, the lease policy's adaptation, count
 * checks, the hooks that wake long polls, verification by recomputation (a liar caught, its work
 * discarded, its quarantine kept across a restart), speculative copies (the loser's complete a
 * duplicate, a copy forgotten by a restart), a failed allocation undone by the next
 * flush, and deleting finished jobs (DELETE's states and scopes, retention's cutoff), all
 * without sleeping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "runrange.h"
#include "alloc.h"
#include "coord.h"
#include "coord_int.h" /* the pass-over memory's size, to see it emptied */
#include "counts.h"
#include "db.h"
#include "kernel.h"
#include "live.h"
#include "passover.h"
#include "spec.h"
#include "tmpdb.h"

struct fixture {
	struct tmpdb t;
	struct db *db;
	struct coord *c;
	int64_t now;
	int woken;
	int ended;
	int64_t expiry;
};

static int64_t fake_now(void *ctx)
{
	return ((struct fixture *)ctx)->now;
}

static void on_work(void *ctx)
{
	((struct fixture *)ctx)->woken++;
}

static void on_expiry(void *ctx, int64_t at)
{
	((struct fixture *)ctx)->expiry = at;
}

static void on_jobs(void *ctx)
{
	((struct fixture *)ctx)->ended++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct coord_config cfg = { .lease_timeout_ms = 10000, .lease_target_ms = 1000,
				    .max_speculative = SPEC_LIVE_DEFAULT };
	char err[256];
	tmpdb_make(&f->t);
	if (db_open(f->t.path, &f->db, err, sizeof err))
		fail_msg("%s", err);
	f->now = 1000000;
	f->c = coord_new(f->db, &cfg, (struct coord_clock){ fake_now, f },
			 (struct coord_hooks){ on_work, on_expiry, on_jobs, f });
	if (!f->c || coord_load(f->c))
		fail_msg("coord_load: %s", db_errmsg(f->db));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	coord_free(f->c);
	db_close(f->db);
	tmpdb_remove(&f->t);
	free(f);
	return 0;
}

static struct lease_request request(const char *worker, uint64_t max_batches)
{
	struct lease_request r = { .nkernels = 1, .max_batches = max_batches };
	snprintf(r.worker, sizeof r.worker, "%s", worker);
	r.kernels[0] = "pi";
	return r;
}

/* Counts for lease l, honest or (lie) with "inside" one too many: still within the kernel's
 * check, so only another worker's recomputation can tell. */
static struct counts counts_as(const struct lease *l, int lie)
{
	struct counts c = { 0 };
	kernel_keys(l->spec.kernel, &c.keys);
	kernel_run_range(l->spec.kernel, l->spec.seed, l->spec.samples, l->spec.batch_size,
			 l->first_batch, l->batch_count, c.v);
	c.v[0] += lie ? 1 : 0;
	return c;
}

static struct counts counts_for(const struct lease *l)
{
	return counts_as(l, 0);
}

/* Counts written as a JSON object, decoded as decode_complete() does. */
static struct counts parsed(const char *text)
{
	struct counts c;
	json_t *o = json_loads(text, 0, NULL);
	assert_non_null(o);
	assert_int_equal(counts_decode(o, &c), TALLY_OK);
	json_decref(o);
	return c;
}

static void test_submit_wakes_and_lease_sets_expiry(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 1000000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request req = request("a", 5);
	struct job j;
	struct lease l;
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(f->woken, 1);
	assert_int_equal(coord_lease(f->c, &req, &l), TALLY_OK);
	assert_int_equal(l.batch_count, 5);
	assert_int_equal(l.expires_at, f->now + 10000);
	assert_int_equal(f->expiry, f->now + 10000);
}

static void test_expiry_without_sleeping(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 4), b = request("b", 4);
	struct job j;
	struct lease la, lb;
	char err[128];
	int dup;
	struct counts counts;

	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &la), TALLY_OK);
	f->now += 9999; /* one ms before expiry: a heartbeat keeps it */
	assert_int_equal(coord_heartbeat(f->c, la.id, &la), TALLY_OK);
	f->now += 10000; /* expired now */
	f->woken = 0;
	assert_int_equal(coord_reap(f->c), TALLY_OK);
	assert_int_equal(f->woken, 1);
	assert_int_equal(coord_lease(f->c, &b, &lb), TALLY_OK);
	assert_int_equal(lb.first_batch, la.first_batch);
	assert_int_equal(lb.batch_count, la.batch_count / 2); /* halved after a failure */
	counts = counts_for(&la);
	assert_int_equal(coord_complete(f->c, la.id, &counts, &dup, NULL, err, sizeof err), TALLY_ELOST);
	assert_int_equal(f->ended, 0);
	counts = counts_for(&lb);
	assert_int_equal(coord_complete(f->c, lb.id, &counts, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 0);
	assert_int_equal(f->ended, 0); /* 2 of 10 batches: not finished */
	assert_int_equal(coord_complete(f->c, lb.id, &counts, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 1);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.samples_done, 2000);
}

static void test_counts_checked_against_lease(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 2);
	struct job j;
	struct lease l;
	char err[128];
	int dup;
	struct {
		const char *counts;
		const char *needle;
	} bad[] = {
		{ "{\"inside\": 10, \"samples\": 1999}", "samples" },
		{ "{\"inside\": 2001, \"samples\": 2000}", "inside" },
		{ "{\"inside\": 10}", "samples" },
		{ "{\"inside\": 10, \"samples\": 2000, \"x\": 1}", "counts.x" },
	};
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct counts c = parsed(bad[i].counts);
		assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_ECOUNTS);
		assert_non_null(strstr(err, bad[i].needle));
	}
	/* Refused counts leave the lease live: the right ones are still accepted. */
	struct counts good = counts_for(&l);
	assert_int_equal(coord_complete(f->c, l.id, &good, &dup, NULL, err, sizeof err), TALLY_OK);
	/* The lease's state answers before the counts: a repeat is acknowledged even with counts
	 * that would be refused, and a lost lease is lost whatever its counts. */
	struct counts junk = parsed("{\"inside\": 1}");
	assert_int_equal(coord_complete(f->c, l.id, &junk, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 1);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	f->now += 20000;
	assert_int_equal(coord_reap(f->c), TALLY_OK);
	assert_int_equal(coord_complete(f->c, l.id, &junk, &dup, NULL, err, sizeof err), TALLY_ELOST);
	assert_int_equal(coord_complete(f->c, 424242, &good, &dup, NULL, err, sizeof err),
			 TALLY_ENOTFOUND);
}

static void test_lease_size_adapts_to_worker_rate(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 1ULL << 40,
					 .batch_size = 100000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("fast", 0);
	struct job j;
	struct lease l;
	char err[128];
	int dup;
	struct counts c;
	char text[96];

	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	assert_int_equal(l.batch_count, 200); /* 1 s at the default 2e7/s */
	/* It came back in 10 ms: 2e7 samples / 0.01 s = 2e9/s, so the next lease is far bigger. */
	f->now += 10;
	snprintf(text, sizeof text, "{\"inside\": 0, \"samples\": %llu}",
		 (unsigned long long)(l.batch_count * 100000));
	c = parsed(text);
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	assert_int_equal(l.batch_count, 20000);
}

static void test_cancel_and_fail_wake(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 2);
	struct job j;
	struct lease l;
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	f->woken = 0;
	assert_int_equal(coord_fail(f->c, l.id, "oops", 1, 0), TALLY_OK);
	assert_int_equal(f->woken, 1);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	assert_int_equal(l.first_batch, 0);
	assert_int_equal(coord_cancel(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_CANCELLED);
	assert_int_equal(f->ended, 1);
	assert_int_equal(f->expiry, 0); /* no live lease left */
	assert_int_equal(coord_heartbeat(f->c, l.id, &l), TALLY_ELOST);
}

static void test_finishing_job_wakes_waiters(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 2000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 0);
	struct job j;
	struct lease l;
	char err[128];
	int dup, ended = -1;
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	assert_int_equal(l.batch_count, 2);
	struct counts c = counts_for(&l);
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, &ended, err, sizeof err), TALLY_OK);
	assert_int_equal(f->ended, 1);
	assert_int_equal(ended, 1); /* the worker is told: it may let go of the job's programs */
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, &ended, err, sizeof err), TALLY_OK);
	assert_int_equal(f->ended, 1); /* a duplicate finishes nothing */
	assert_int_equal(ended, 0);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
}

/* A restart without the last flush: a crash. The store is opened again and loaded. */
static void crash_and_restart(struct fixture *f)
{
	struct coord_config cfg = { .lease_timeout_ms = 10000, .lease_target_ms = 1000,
				    .max_speculative = SPEC_LIVE_DEFAULT };
	char err[256];
	coord_free(f->c);
	db_close(f->db);
	if (db_open(f->t.path, &f->db, err, sizeof err))
		fail_msg("%s", err);
	f->c = coord_new(f->db, &cfg, (struct coord_clock){ fake_now, f },
			 (struct coord_hooks){ on_work, on_expiry, on_jobs, f });
	if (!f->c || coord_load(f->c))
		fail_msg("coord_load: %s", db_errmsg(f->db));
}

/* Only submits, cancels and completes make a reply wait for the flush. */
static void test_changes_that_replies_wait_for(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 2);
	struct job j;
	struct lease l, l2;
	char err[128];
	int dup;
	uint64_t n = coord_changes(f->c);

	assert_int_equal(coord_dirty(f->c), 0);
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_true(coord_changes(f->c) == ++n);
	assert_int_equal(coord_dirty(f->c), 1);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_dirty(f->c), 0);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	assert_int_equal(coord_heartbeat(f->c, l.id, &l), TALLY_OK);
	assert_true(coord_changes(f->c) == n); /* grants, heartbeats: written behind */
	assert_int_equal(coord_dirty(f->c), 1);
	assert_int_equal(coord_lease(f->c, &a, &l2), TALLY_OK);
	assert_int_equal(coord_fail(f->c, l2.id, "x", 1, 0), TALLY_OK);
	assert_true(coord_changes(f->c) == ++n); /* a fail may strike a batch or fail the job */
	struct counts c = counts_for(&l);
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_true(coord_changes(f->c) == ++n);
	/* A repeat reports the first complete, not yet committed: its reply waits too. */
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 1);
	assert_true(coord_changes(f->c) == ++n);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	/* Committed: a repeat (now answered from the store) and a job read wait for nothing. */
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 1);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_true(coord_changes(f->c) == n);
	assert_int_equal(coord_cancel(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_true(coord_changes(f->c) > n);
	n = coord_changes(f->c);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK); /* reads the uncommitted cancel */
	assert_true(coord_changes(f->c) == ++n);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_cancel(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_true(coord_changes(f->c) == n);
}

/* What was flushed survives a crash; what was not is gone, and the batches of a grant that was
 * lost are granted again under a new id, so its worker's complete is refused, never counted. */
static void test_crash_keeps_exactly_the_flushed(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 2);
	struct job j;
	struct lease kept, lost, done_late, again;
	char err[128];
	int dup;

	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &kept), TALLY_OK);      /* batches 0-1 */
	assert_int_equal(coord_lease(f->c, &a, &done_late), TALLY_OK); /* batches 2-3 */
	struct counts c = counts_for(&kept);
	assert_int_equal(coord_complete(f->c, kept.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &lost), TALLY_OK); /* batches 4-5, never flushed */
	c = counts_for(&done_late);
	assert_int_equal(coord_complete(f->c, done_late.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	f->now += 9000; /* 1 s of the leases' 10 left when the coordinator comes back */
	crash_and_restart(f);
	int64_t at = 0;
	assert_int_equal(coord_next_expiry(f->c, &at), TALLY_OK);
	assert_int_equal(at, f->now + 10000); /* a whole lease timeout from the restart */

	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.batches_done, 2);
	assert_int_equal(j.batches_leased, 2);
	/* The unflushed complete was never acknowledged; its lease is live again, so the
	 * worker's retry counts it once. */
	assert_int_equal(coord_complete(f->c, done_late.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 0);
	c = counts_for(&lost);
	assert_int_equal(coord_complete(f->c, lost.id, &c, &dup, NULL, err, sizeof err), TALLY_ENOTFOUND);
	assert_int_equal(coord_lease(f->c, &a, &again), TALLY_OK);
	assert_int_equal(again.first_batch, lost.first_batch);
	assert_true(again.id > lost.id); /* ids are never handed out twice */
	c = counts_for(&kept);
	assert_int_equal(coord_complete(f->c, kept.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 1); /* answered from the store */
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.batches_done, 4);
}

/* Finished leases leave memory once written; the store answers for them. */
static void test_written_leases_answer_from_the_store(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 1);
	struct job j;
	struct lease expired, failed;
	char err[128];
	int dup;

	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &expired), TALLY_OK);
	f->now += 10000;
	assert_int_equal(coord_reap(f->c), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &failed), TALLY_OK);
	assert_int_equal(coord_fail(f->c, failed.id, "x", 1, 0), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	struct counts c = counts_for(&expired);
	assert_int_equal(coord_complete(f->c, expired.id, &c, &dup, NULL, err, sizeof err), TALLY_ELOST);
	assert_int_equal(coord_heartbeat(f->c, failed.id, &failed), TALLY_ELOST);
	assert_int_equal(coord_fail(f->c, failed.id, "again", 1, 0), TALLY_ELOST);
	assert_int_equal(coord_complete(f->c, 12345, &c, &dup, NULL, err, sizeof err), TALLY_ENOTFOUND);
}

static enum tally_err count_job(void *ctx, const struct job *job)
{
	(void)job;
	(*(int *)ctx)++;
	return TALLY_OK;
}

/* A list reads the store, brought up to date first: it shows what memory holds. */
static void test_list_sees_unflushed_changes(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 1);
	struct job j;
	struct lease l;
	int n = 0;

	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	assert_int_equal(coord_jobs(f->c, COORD_ALL, JOB_RUNNING, 0, 10, count_job, &n), TALLY_OK);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(coord_jobs(f->c, COORD_ALL, JOB_QUEUED, 0, 10, count_job, &n), TALLY_OK);
	assert_int_equal(n, 1);
	assert_int_equal(coord_dirty(f->c), 1); /* written, not yet committed */
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_dirty(f->c), 0);
}

struct seen {
	char names[4][WORKER_NAME_MAX];
	char states[4][16];
	unsigned leases[4];
	int64_t lease_id[4];
	int n;
};

static enum tally_err see_worker(void *ctx, const struct coord_worker *w)
{
	struct seen *s = ctx;
	int i = s->n++;
	snprintf(s->names[i], sizeof s->names[i], "%s", w->info.name);
	snprintf(s->states[i], sizeof s->states[i], "%s", worker_state_name(w->state));
	s->leases[i] = w->info.leases;
	s->lease_id[i] = w->info.lease_id;
	return TALLY_OK;
}

static int seen_index(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return i;
	fail_msg("worker %s not listed", name);
	return -1;
}

/* The registry: a worker holding a lease is active, one heard from lately idle, else lost. */
static void test_workers_listed_with_state(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("alpha", 1), b = request("beta", 1);
	struct job j;
	struct lease la, la2, lb;
	struct seen s = { 0 };
	int i;

	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &la), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &la2), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &b, &lb), TALLY_OK);
	assert_int_equal(coord_fail(f->c, lb.id, "x", 0, 0), TALLY_OK);
	assert_int_equal(coord_workers(f->c, see_worker, &s), TALLY_OK);
	assert_int_equal(s.n, 2);
	i = seen_index(&s, "alpha");
	assert_string_equal(s.states[i], "active");
	assert_int_equal(s.leases[i], 2);
	assert_int_equal(s.lease_id[i] == la.id || s.lease_id[i] == la2.id, 1);
	i = seen_index(&s, "beta");
	assert_string_equal(s.states[i], "idle");
	assert_int_equal(s.leases[i], 0);
	assert_int_equal(s.lease_id[i], 0);

	f->now += 10001; /* past the lease timeout: alpha's leases expire at the next reap */
	assert_int_equal(coord_reap(f->c), TALLY_OK);
	memset(&s, 0, sizeof s);
	assert_int_equal(coord_workers(f->c, see_worker, &s), TALLY_OK);
	assert_string_equal(s.states[seen_index(&s, "alpha")], "lost");
	assert_string_equal(s.states[seen_index(&s, "beta")], "lost");
}

/* A stalled coordinator heard no heartbeats: live leases get the stall's length on top. */
static void test_stall_extends_live_leases(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
					 .batch_size = 1000, .seed = 1, .verify = 0,
					 .params = "{}" };
	struct lease_request a = request("a", 1);
	struct job j;
	struct lease l;
	int64_t at = 0, granted = f->now;

	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_OK);
	f->now += 15000; /* stopped 15 s, past the 10 s timeout */
	coord_stalled(f->c, 15000);
	assert_int_equal(f->expiry, granted + 25000);
	assert_int_equal(coord_next_expiry(f->c, &at), TALLY_OK);
	assert_int_equal(at, granted + 25000);
	assert_int_equal(coord_heartbeat(f->c, l.id, &l), TALLY_OK); /* not lost */
	f->now += 10001;
	assert_int_equal(coord_reap(f->c), TALLY_OK); /* nothing more heard: it expires after all */
	assert_int_equal(coord_heartbeat(f->c, l.id, &l), TALLY_ELOST);
}

static void complete_as(struct fixture *f, const struct lease *l, int lie)
{
	struct counts c = counts_as(l, lie);
	char err[128] = "";
	int dup = -1;
	assert_int_equal(coord_complete(f->c, l->id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 0);
}

/* Verification end to end, with verify 1: A lies in every lease, its opinion on a check of B's
 * lease included. It is caught, its done leases are discarded (its opinion withdrawn, its
 * batches computed again), and the job ends with the counts of an honest run. A is listed as
 * quarantined, its discarded leases keep their times in the store, and after a restart it is
 * still refused leases. */
static void test_verify_liar_caught_and_discarded(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 20000,
					 .batch_size = 1000, .seed = 3, .verify = 1.0,
					 .params = "{}" };
	struct lease_request a = request("A", 2), b = request("B", 2), c = request("C", 2);
	struct lease_request *const order[] = { &c, &b, &a };
	uint64_t expect[KERNEL_MAX_KEYS] = { 0 };
	struct lease lb, l, a_leases[3], stored;
	struct seen s = { 0 };
	struct job j;
	const char *why;
	char err[128], reason[LIVE_QUARANTINE_REASON_MAX];
	int dup, forbidden = 0, idle = 0;
	struct counts counts;

	kernel_run_range(spec.kernel, spec.seed, spec.samples, spec.batch_size, 0, 20, expect);
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &b, &lb), TALLY_OK);
	complete_as(f, &lb, 0);
	assert_int_equal(coord_lease(f->c, &a, &a_leases[0]), TALLY_OK);
	assert_int_equal(a_leases[0].check_of, lb.id); /* checks come before batches */
	assert_int_equal(a_leases[0].first_batch, lb.first_batch);
	complete_as(f, &a_leases[0], 1);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(coord_lease(f->c, &a, &a_leases[i]), TALLY_OK);
		assert_int_equal(a_leases[i].check_of, 0);
		complete_as(f, &a_leases[i], 1);
	}
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.batches_done, 6);
	assert_int_equal(j.mismatches, 1);

	for (int k = 0; j.state != JOB_SUCCEEDED && idle < 3 && k < 200; k++) {
		struct lease_request *r = order[k % 3];
		enum tally_err rc = coord_lease(f->c, r, &l);
		f->now += 10;
		if (rc == TALLY_EFORBIDDEN) {
			assert_ptr_equal(r, &a);
			forbidden++;
			continue;
		}
		if (rc == TALLY_ENOTFOUND) {
			idle++;
			continue;
		}
		assert_int_equal(rc, TALLY_OK);
		idle = 0;
		complete_as(f, &l, r == &a);
		if (k % 5 == 0)
			assert_int_equal(coord_flush(f->c), TALLY_OK);
		assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	}
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_int_equal(f->ended, 1);
	assert_true(forbidden > 0);
	assert_memory_equal(j.counts, expect, sizeof expect);
	assert_int_equal(j.samples_done, 20000);
	assert_int_equal(j.batches_done, 20);
	assert_int_equal(j.checks_pending, 0);
	assert_true(j.checks_passed >= 10); /* every honest lease of 2 batches or fewer */
	assert_true(j.mismatches >= 1);
	assert_string_equal(j.quarantined, "A");
	why = coord_quarantined(f->c, "A");
	assert_non_null(why);
	assert_non_null(strstr(why, "job 1, batches"));
	assert_null(coord_quarantined(f->c, "B"));
	assert_null(coord_quarantined(f->c, "C"));
	assert_int_equal(coord_workers(f->c, see_worker, &s), TALLY_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.states[seen_index(&s, "A")], "quarantined");
	assert_string_not_equal(s.states[seen_index(&s, "B")], "quarantined");
	assert_string_not_equal(s.states[seen_index(&s, "C")], "quarantined");

	assert_int_equal(coord_flush(f->c), TALLY_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(db_lease_get(f->db, a_leases[i].id, &stored), TALLY_OK);
		assert_int_equal(stored.state, LEASE_DISCARDED);
		assert_int_equal(stored.granted_at, a_leases[i].granted_at);
		assert_int_equal(stored.expires_at, a_leases[i].expires_at);
		counts = counts_as(&a_leases[i], 1);
		assert_int_equal(coord_complete(f->c, a_leases[i].id, &counts, &dup, NULL, err, sizeof err),
				 TALLY_ELOST);
	}

	/* A clean restart: the quarantine is in the store. */
	snprintf(reason, sizeof reason, "%s", why);
	crash_and_restart(f);
	assert_non_null(coord_quarantined(f->c, "A"));
	assert_string_equal(coord_quarantined(f->c, "A"), reason);
	assert_int_equal(coord_lease(f->c, &a, &l), TALLY_EFORBIDDEN);
	assert_int_equal(coord_lease(f->c, &b, &l), TALLY_ENOTFOUND);
	memset(&s, 0, sizeof s);
	assert_int_equal(coord_workers(f->c, see_worker, &s), TALLY_OK);
	assert_string_equal(s.states[seen_index(&s, "A")], "quarantined");
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_memory_equal(j.counts, expect, sizeof expect);
	assert_string_equal(j.quarantined, "A");
}

/* A pending check survives a restart: written with the lease it checks, loaded back pending,
 * and granted to another worker (not the one that computed the lease). A check lease granted
 * and written before a restart is still that worker's: not granted again, and its complete
 * counts. */
static void test_verify_pending_check_survives_restart(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 4000,
					 .batch_size = 1000, .seed = 5, .verify = 1.0,
					 .params = "{}" };
	struct lease_request a = request("A", 2), b = request("B", 2), c = request("C", 2);
	uint64_t expect[KERNEL_MAX_KEYS] = { 0 };
	struct lease a1, a2, b1, c2, none;
	struct job j;

	kernel_run_range(spec.kernel, spec.seed, spec.samples, spec.batch_size, 0, 4, expect);
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &a, &a1), TALLY_OK);
	complete_as(f, &a1, 0);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	crash_and_restart(f); /* no check lease granted yet */

	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.checks_pending, 1);
	assert_int_equal(j.batches_done, 2);
	assert_int_equal(j.state, JOB_RUNNING);
	assert_int_equal(coord_lease(f->c, &a, &a2), TALLY_OK);
	assert_int_equal(a2.check_of, 0); /* not its own check */
	assert_int_equal(a2.first_batch, 2);
	complete_as(f, &a2, 0);
	assert_int_equal(coord_lease(f->c, &b, &b1), TALLY_OK);
	assert_true(b1.check_of == a1.id || b1.check_of == a2.id);
	assert_int_equal(b1.first_batch, b1.check_of == a1.id ? 0 : 2);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	crash_and_restart(f); /* B's check lease is live */

	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.checks_pending, 2);
	assert_int_equal(coord_lease(f->c, &c, &c2), TALLY_OK);
	assert_int_equal(c2.check_of, b1.check_of == a1.id ? a2.id : a1.id); /* the other one */
	assert_int_equal(coord_lease(f->c, &c, &none), TALLY_ENOTFOUND);
	complete_as(f, &b1, 0);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.checks_passed, 1);
	assert_int_equal(j.state, JOB_RUNNING);
	complete_as(f, &c2, 0);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_int_equal(j.checks_passed, 2);
	assert_int_equal(j.checks_pending, 0);
	assert_int_equal(j.mismatches, 0);
	assert_memory_equal(j.counts, expect, sizeof expect);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
}

/* S holds batches 0-3 of an 8-batch job, F does 4-7 in 10 ms (its rate measured) and asks again
 * long after S's lease was due: it gets a copy. */
static void speculate_setup(struct fixture *f, struct job *j, struct lease *s, struct lease *copy)
{
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 8000,
				 .batch_size = 1000, .seed = 9, .params = "{}" };
	struct lease_request rs = request("S", 4), rf = request("F", 4);
	struct lease fl, none;

	assert_int_equal(coord_submit(f->c, &spec, NULL, j), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &rs, s), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &rf, &fl), TALLY_OK);
	/* S's lease is due in 1 ms (at the default rate): not worth a copy yet, but the parked
	 * request is to ask again when it would be. */
	assert_int_equal(coord_lease(f->c, &rf, &none), TALLY_ENOTFOUND);
	assert_int_equal(f->expiry, f->now + 2);
	f->now += 10;
	complete_as(f, &fl, 0);
	f->now += 100;
	assert_int_equal(coord_lease(f->c, &rf, copy), TALLY_OK);
	assert_int_equal(copy->first_batch, s->first_batch);
	assert_int_equal(copy->batch_count, s->batch_count);
	assert_string_equal(copy->worker, "F");
}

/* The copy's complete counts; S's is then acknowledged as a duplicate (200, nothing added),
 * its heartbeat is refused (409: it stops), before and after the flush; /metrics counts the
 * copy and its win. */
static void test_speculative_copy_wins_once(void **state)
{
	struct fixture *f = *state;
	uint64_t expect[KERNEL_MAX_KEYS] = { 0 };
	struct coord_metrics m;
	struct lease s, copy, beat;
	struct counts c;
	struct job j;
	char err[128];
	int dup = -1;

	speculate_setup(f, &j, &s, &copy);
	kernel_run_range(j.spec.kernel, j.spec.seed, 8000, 1000, 0, 8, expect);
	complete_as(f, &copy, 0);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_memory_equal(j.counts, expect, sizeof expect);
	assert_int_equal(coord_heartbeat(f->c, s.id, &beat), TALLY_ELOST);
	c = counts_for(&s);
	assert_int_equal(coord_complete(f->c, s.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 1);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_complete(f->c, s.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(dup, 1); /* from the store */
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_memory_equal(j.counts, expect, sizeof expect);
	assert_int_equal(j.batches_done, 8);
	assert_int_equal(coord_metrics(f->c, &m), TALLY_OK);
	assert_int_equal(m.spec_granted, 1);
	assert_int_equal(m.spec_won, 1);
	assert_int_equal(m.completes_duplicate, 2);
	assert_int_equal(m.batches_completed, 8);
}

/* A restart forgets a copy beside its original (its worker's calls find no lease, 404) and the
 * original goes on; a copy left alone by its original's fail is stored, and completes the job
 * after the next restart. */
static void test_speculative_copy_across_restarts(void **state)
{
	struct fixture *f = *state;
	uint64_t expect[KERNEL_MAX_KEYS] = { 0 };
	struct lease_request rg = request("G", 4);
	struct lease s, copy, copy2, beat;
	struct counts c;
	struct job j;
	char err[128];
	int dup = -1;

	speculate_setup(f, &j, &s, &copy);
	kernel_run_range(j.spec.kernel, j.spec.seed, 8000, 1000, 0, 8, expect);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	crash_and_restart(f);
	assert_int_equal(coord_heartbeat(f->c, copy.id, &beat), TALLY_ENOTFOUND);
	c = counts_for(&copy);
	assert_int_equal(coord_complete(f->c, copy.id, &c, &dup, NULL, err, sizeof err),
			 TALLY_ENOTFOUND);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.batches_leased, 4);
	assert_int_equal(coord_heartbeat(f->c, s.id, &beat), TALLY_OK);
	/* S's lease is overdue: G gets a copy; then S gives up, and G's copy is the lease. */
	assert_int_equal(coord_lease(f->c, &rg, &copy2), TALLY_OK);
	assert_true(copy2.id > copy.id);
	assert_int_equal(coord_fail(f->c, s.id, "stopping", 0, 0), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	crash_and_restart(f);
	complete_as(f, &copy2, 0);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_memory_equal(j.counts, expect, sizeof expect);
}

/* Leases and completes whatever w is given until nothing is left, flushing after each. */
static void run_dry(struct fixture *f, const struct lease_request *w)
{
	struct lease l;
	struct counts c;
	char err[128];
	int dup;

	for (int k = 0; k < 100 && coord_lease(f->c, w, &l) == TALLY_OK; k++) {
		c = counts_for(&l);
		assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
		assert_int_equal(coord_flush(f->c), TALLY_OK);
	}
}

/* An allocation that fails inside an operation (the allocator seam): the operation says so, the
 * next flush fails and reads the state back from the store (the whole pass is undone, a complete
 * of another job's in it too), and the service goes on to counts bit-identical to those of a
 * run without the failure. */
static void test_failed_allocation_reloads_and_goes_on(void **state)
{
	struct fixture *f = *state;
	struct job_spec a_spec = { .kernel = kernel_find("pi"), .samples = 4000,
				   .batch_size = 1000, .seed = 9, .params = "{}" };
	struct job_spec b_spec = { .kernel = kernel_find("pi"), .samples = 6000,
				   .batch_size = 1000, .seed = 11, .params = "{}" };
	struct lease_request w = request("w", 2);
	uint64_t want_a[KERNEL_MAX_KEYS] = { 0 }, want_b[KERNEL_MAX_KEYS] = { 0 };
	struct job a, b;
	struct lease undone;
	struct counts c;
	char err[128];
	int dup;

	kernel_run_range(a_spec.kernel, 9, 6500, 1000, 0, 7, want_a); /* a after its extend */
	kernel_run_range(b_spec.kernel, 11, 6000, 1000, 0, 6, want_b);
	assert_int_equal(coord_submit(f->c, &a_spec, NULL, &a), TALLY_OK);
	run_dry(f, &w);
	assert_int_equal(coord_submit(f->c, &b_spec, NULL, &b), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);

	/* One pass: a complete of b's, then an extend of a (finished: read back into memory) whose
	 * allocation fails. */
	assert_int_equal(coord_lease(f->c, &w, &undone), TALLY_OK);
	c = counts_for(&undone);
	assert_int_equal(coord_complete(f->c, undone.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	alloc_fail_after(2, 0); /* the first two read a back into memory (the job, its params); the
				 * third fails */
	assert_int_equal(coord_extend(f->c, COORD_ALL, a.id, 6500, &a), TALLY_ENOMEM);
	alloc_fail_never();
	assert_int_equal(coord_dirty(f->c), 1);
	f->expiry = -1;
	assert_int_equal(coord_flush(f->c), TALLY_EDB);
	assert_int_equal(f->expiry, 0); /* read back: no live lease now */
	assert_int_equal(coord_dirty(f->c), 0);
	/* The complete's reply waited for that flush and failed; its grant was never committed. */
	assert_int_equal(coord_complete(f->c, undone.id, &c, &dup, NULL, err, sizeof err), TALLY_ENOTFOUND);
	assert_int_equal(coord_job(f->c, COORD_ALL, b.id, &b), TALLY_OK);
	assert_int_equal(b.batches_done, 0);
	assert_int_equal(coord_job(f->c, COORD_ALL, a.id, &a), TALLY_OK);
	assert_int_equal(a.state, JOB_SUCCEEDED);
	assert_int_equal(a.spec.samples, 4000);

	/* The service goes on. */
	assert_int_equal(coord_extend(f->c, COORD_ALL, a.id, 6500, &a), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	run_dry(f, &w);
	assert_int_equal(coord_job(f->c, COORD_ALL, a.id, &a), TALLY_OK);
	assert_int_equal(coord_job(f->c, COORD_ALL, b.id, &b), TALLY_OK);
	assert_int_equal(a.state, JOB_SUCCEEDED);
	assert_int_equal(b.state, JOB_SUCCEEDED);
	assert_int_equal(a.samples_done, 6500);
	assert_int_equal(b.samples_done, 6000);
	assert_memory_equal(a.counts, want_a, sizeof want_a);
	assert_memory_equal(b.counts, want_b, sizeof want_b);
	crash_and_restart(f);
	assert_int_equal(coord_job(f->c, COORD_ALL, a.id, &a), TALLY_OK);
	assert_memory_equal(a.counts, want_a, sizeof want_a);
}

/* Owners: a job outside the caller's scope does not exist for any call (get, list, cancel,
 * extend, history), an admin's scope (COORD_ALL) sees them all, and an Idempotency-Key is per
 * owner, also while both owners' jobs are in memory only, and after they are written. */
static void test_scope_and_keys_per_owner(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 10000,
				 .batch_size = 1000, .seed = 1, .params = "{}" };
	struct coord_scope alice = { "alice" }, bob = { "bob" };
	const struct history_point *p;
	struct job ja, jb, j;
	size_t np;
	int n = 0;

	snprintf(spec.owner, sizeof spec.owner, "alice");
	spec.priority = 7;
	assert_int_equal(coord_submit(f->c, &spec, "k1", &ja), TALLY_OK);
	snprintf(spec.owner, sizeof spec.owner, "bob");
	spec.priority = -3;
	/* Alice's job holds "k1" in memory: Bob's key is his own. */
	assert_int_equal(coord_job_by_key(f->c, "bob", "k1", &j), TALLY_ENOTFOUND);
	assert_int_equal(coord_submit(f->c, &spec, "k1", &jb), TALLY_OK);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(coord_job_by_key(f->c, "alice", "k1", &j), TALLY_OK);
		assert_int_equal(j.id, ja.id);
		assert_int_equal(coord_job_by_key(f->c, "bob", "k1", &j), TALLY_OK);
		assert_int_equal(j.id, jb.id);
		assert_int_equal(j.spec.priority, -3);
		assert_string_equal(j.spec.owner, "bob");
		assert_int_equal(coord_job_by_key(f->c, "carol", "k1", &j), TALLY_ENOTFOUND);
		assert_int_equal(coord_flush(f->c), TALLY_OK); /* then from the store */
	}

	assert_int_equal(coord_job(f->c, alice, ja.id, &j), TALLY_OK);
	assert_int_equal(j.spec.priority, 7);
	assert_int_equal(coord_job(f->c, bob, ja.id, &j), TALLY_ENOTFOUND);
	assert_int_equal(j.id, 0); /* nothing of Alice's job in Bob's hands */
	assert_int_equal(coord_job(f->c, COORD_ALL, ja.id, &j), TALLY_OK);
	assert_int_equal(coord_history(f->c, bob, ja.id, &j, &p, &np), TALLY_ENOTFOUND);
	assert_int_equal(coord_history(f->c, alice, ja.id, &j, &p, &np), TALLY_OK);
	assert_int_equal(coord_extend(f->c, bob, ja.id, 20000, &j), TALLY_ENOTFOUND);
	assert_int_equal(coord_cancel(f->c, bob, ja.id, &j), TALLY_ENOTFOUND);
	assert_int_equal(coord_job(f->c, alice, ja.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.spec.samples, 10000);
	assert_int_equal(coord_jobs(f->c, bob, -1, 0, 10, count_job, &n), TALLY_OK);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(coord_jobs(f->c, COORD_ALL, -1, 0, 10, count_job, &n), TALLY_OK);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(coord_jobs(f->c, (struct coord_scope){ "carol" }, -1, 0, 10, count_job,
				    &n), TALLY_OK);
	assert_int_equal(n, 0);
	assert_int_equal(coord_extend(f->c, alice, ja.id, 20000, &j), TALLY_OK);
	assert_int_equal(coord_cancel(f->c, alice, ja.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_CANCELLED);
	assert_int_equal(coord_cancel(f->c, COORD_ALL, jb.id, &j), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
}

/* Submits a one-batch job of owner under key (or NULL) and, with finish, runs it to success
 * (lease, complete). */
static struct job one_batch_job(struct fixture *f, const char *owner, const char *key,
				int finish)
{
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 1000,
				 .batch_size = 1000, .seed = 3, .params = "{}" };
	struct lease_request req = request("w", 1);
	struct job j;
	struct lease l;
	struct counts c;
	char err[128];
	int dup;

	snprintf(spec.owner, sizeof spec.owner, "%s", owner);
	assert_int_equal(coord_submit(f->c, &spec, key, &j), TALLY_OK);
	if (!finish)
		return j;
	assert_int_equal(coord_lease(f->c, &req, &l), TALLY_OK);
	assert_int_equal(l.job_id, j.id);
	c = counts_for(&l);
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(coord_job(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	return j;
}

/* DELETE's states and scopes: a queued or running job is refused (the job handed back), another
 * owner's is not found, a finished one goes (even one finished in this very pass, not yet
 * written), its reply waits for the flush, its history and key go with it, and after a restart
 * it is still gone and its id is not used again. */
static void test_delete_states_and_scopes(void **state)
{
	struct fixture *f = *state;
	struct coord_scope alice = { "alice" }, bob = { "bob" };
	struct lease_request req = request("w", 1);
	const struct history_point *p;
	struct job ja, jb, j;
	struct lease l;
	struct counts c;
	char err[128];
	size_t np;
	uint64_t changes;
	int dup;

	ja = one_batch_job(f, "alice", "key", 0);
	jb = one_batch_job(f, "bob", "key", 0);
	assert_int_equal(coord_delete(f->c, alice, ja.id, &j), TALLY_ECONFLICT);
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(coord_lease(f->c, &req, &l), TALLY_OK);
	assert_int_equal(l.job_id, ja.id);
	assert_int_equal(coord_delete(f->c, COORD_ALL, ja.id, &j), TALLY_ECONFLICT);
	assert_int_equal(j.state, JOB_RUNNING);
	c = counts_for(&l);
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(coord_history(f->c, alice, ja.id, &j, &p, &np), TALLY_OK);
	assert_true(np > 0);
	/* Finished in this pass, not yet written: another's job is not there to Bob. */
	assert_int_equal(coord_delete(f->c, bob, ja.id, &j), TALLY_ENOTFOUND);
	changes = coord_changes(f->c);
	assert_int_equal(coord_delete(f->c, alice, ja.id, &j), TALLY_OK);
	assert_true(coord_changes(f->c) > changes); /* the 204 waits for the commit */
	assert_int_equal(coord_job(f->c, alice, ja.id, &j), TALLY_ENOTFOUND);
	assert_int_equal(coord_delete(f->c, alice, ja.id, &j), TALLY_ENOTFOUND);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_history(f->c, COORD_ALL, ja.id, &j, &p, &np), TALLY_ENOTFOUND);
	assert_int_equal(np, 0);
	assert_int_equal(coord_job_by_key(f->c, "alice", "key", &j), TALLY_ENOTFOUND);

	/* Bob's cancelled job: not Alice's to delete; an admin's. */
	assert_int_equal(coord_cancel(f->c, bob, jb.id, &j), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_delete(f->c, alice, jb.id, &j), TALLY_ENOTFOUND);
	assert_int_equal(coord_delete(f->c, COORD_ALL, jb.id, &j), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);

	crash_and_restart(f);
	assert_int_equal(coord_job(f->c, COORD_ALL, ja.id, &j), TALLY_ENOTFOUND);
	assert_int_equal(coord_job(f->c, COORD_ALL, jb.id, &j), TALLY_ENOTFOUND);
	j = one_batch_job(f, "alice", "key", 0); /* the key is free again */
	assert_int_equal(j.id, jb.id + 1); /* the newest deleted id is not handed out again */
}

/* A delete whose commit fails did not happen: the job is back after the flush's reload. */
static void test_delete_undone_by_failed_commit(void **state)
{
	struct fixture *f = *state;
	struct job ja = one_batch_job(f, "", NULL, 1), j;

	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_delete(f->c, COORD_ALL, ja.id, &j), TALLY_OK);
	db_fail_next(f->db, DB_FAIL_COMMIT);
	assert_int_equal(coord_flush(f->c), TALLY_EDB);
	assert_int_equal(coord_job(f->c, COORD_ALL, ja.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
}

/* Retention by the injected clock: a finished job goes once it ended more than age_ms ago, not
 * a millisecond before; unfinished jobs never, however old; at most max per call (more set). */
static void test_retention_cutoff(void **state)
{
	struct fixture *f = *state;
	int64_t t0 = f->now;
	struct job done, cancelled, queued, j;
	size_t deleted = 0;
	int more = 0;

	done = one_batch_job(f, "", NULL, 1);
	queued = one_batch_job(f, "", NULL, 0);
	f->now += 5000;
	cancelled = one_batch_job(f, "", NULL, 0);
	assert_int_equal(coord_cancel(f->c, COORD_ALL, cancelled.id, &j), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);

	f->now = t0 + 10000; /* done ended at t0: exactly age_ms ago, not more */
	assert_int_equal(coord_retain(f->c, 10000, 100, &deleted, &more), TALLY_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(coord_dirty(f->c), 0); /* nothing to delete: nothing written */
	f->now = t0 + 10001;
	assert_int_equal(coord_retain(f->c, 10000, 100, &deleted, &more), TALLY_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(more, 0);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_job(f->c, COORD_ALL, done.id, &j), TALLY_ENOTFOUND);
	assert_int_equal(coord_job(f->c, COORD_ALL, cancelled.id, &j), TALLY_OK);
	f->now = t0 + 15001;
	assert_int_equal(coord_retain(f->c, 10000, 100, &deleted, &more), TALLY_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_job(f->c, COORD_ALL, cancelled.id, &j), TALLY_ENOTFOUND);
	f->now += 365LL * 86400 * 1000;
	assert_int_equal(coord_retain(f->c, 10000, 100, &deleted, &more), TALLY_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(coord_job(f->c, COORD_ALL, queued.id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_QUEUED);

	/* Bounded: three old jobs, two per call. */
	assert_int_equal(coord_cancel(f->c, COORD_ALL, queued.id, &j), TALLY_OK);
	for (int i = 0; i < 2; i++)
		(void)one_batch_job(f, "", NULL, 1);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	f->now += 10001;
	assert_int_equal(coord_retain(f->c, 10000, 2, &deleted, &more), TALLY_OK);
	assert_int_equal(deleted, 2);
	assert_int_equal(more, 1);
	assert_int_equal(coord_retain(f->c, 10000, 2, &deleted, &more), TALLY_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_retain(f->c, 10000, 2, &deleted, &more), TALLY_OK);
	assert_int_equal(deleted, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* Issue 14: jobs a worker cannot run (an exec program it does not allow) starved the one it
 * could behind them. Now its fail says cannot_run and the coordinator passes them over for that
 * worker: behind more of them than it remembers (PASSOVER_JOBS_MAX), the runnable job still
 * comes within one lease per job, since each job given back was charged its turn. Other workers
 * get them; an older worker's skip_jobs is remembered alike; jobs that ended are forgotten. */
static void test_jobs_a_worker_cannot_run_are_passed_over(void **state)
{
	enum { BAD = PASSOVER_JOBS_MAX + 44 };
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 1000, .batch_size = 1000,
				 .seed = 1, .params = "{}" };
	struct lease_request w = request("w", 0), v = request("v", 0), old = request("old", 0);
	struct job j, good;
	struct lease l;
	int64_t first = 0;
	int leases = 0;

	for (int i = 0; i < BAD; i++) {
		assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
		if (!i)
			first = j.id;
	}
	assert_int_equal(coord_submit(f->c, &spec, NULL, &good), TALLY_OK);
	for (;;) {
		assert_int_equal(coord_lease(f->c, &w, &l), TALLY_OK);
		leases++;
		if (l.job_id == good.id)
			break;
		assert_int_equal(coord_fail(f->c, l.id, "argv[0]: not allowed", 0, 1), TALLY_OK);
		assert_true(leases <= BAD);
		if (leases % 64 == 0)
			assert_int_equal(coord_flush(f->c), TALLY_OK);
	}
	assert_int_equal(leases, BAD + 1); /* each bad job once, then the good one */
	assert_int_equal(passover_size(f->c->passover), PASSOVER_JOBS_MAX);
	assert_int_equal(coord_fail(f->c, l.id, "stopping", 0, 0), TALLY_OK);
	/* The memory is w's: another worker gets the oldest job. */
	assert_int_equal(coord_lease(f->c, &v, &l), TALLY_OK);
	assert_int_equal(l.job_id, first);
	assert_int_equal(coord_fail(f->c, l.id, "stopping", 0, 0), TALLY_OK);
	/* An older worker's list is remembered (but for ids of no job in memory): the job stays
	 * passed over without it. */
	old.skip[old.nskip++] = first;
	old.skip[old.nskip++] = good.id + 1000;
	assert_int_equal(coord_lease(f->c, &old, &l), TALLY_OK);
	assert_true(l.job_id != first);
	assert_int_equal(coord_fail(f->c, l.id, "stopping", 0, 0), TALLY_OK);
	old.nskip = 0;
	assert_int_equal(coord_lease(f->c, &old, &l), TALLY_OK);
	assert_true(l.job_id != first);
	assert_int_equal(coord_fail(f->c, l.id, "stopping", 0, 0), TALLY_OK);
	/* cannot_run with a lease that is not live changes nothing. */
	assert_int_equal(coord_fail(f->c, l.id, "again", 0, 1), TALLY_ELOST);
	assert_int_equal(passover_size(f->c->passover), PASSOVER_JOBS_MAX + 1);
	/* Ended jobs are forgotten by everyone when their end is written. */
	for (int64_t id = first; id <= good.id; id++)
		assert_int_equal(coord_cancel(f->c, COORD_ALL, id, &j), TALLY_OK);
	assert_int_equal(passover_size(f->c->passover), PASSOVER_JOBS_MAX + 1);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(passover_size(f->c->passover), 0);
	assert_int_equal(passover_workers(f->c->passover), 0);
}

/* Kernels known by name only live while a job in memory names them: thousands of made-up names
 * submitted and cancelled leave none behind (there is no table to fill), nor does a finished
 * and deleted job; a job held over a restart holds its name again; a stored job's name reads
 * back without being made a kernel. */
static void test_kernel_names_go_with_their_jobs(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { .kernel = kernel_placeholder(), .samples = 10, .batch_size = 10,
				 .seed = 1, .params = "{}" };
	struct lease_request req = request("w", 1);
	struct job j, first = { 0 }, kept;
	struct lease l;
	struct counts c = { 0 };
	char err[128];
	int dup;

	assert_int_equal(kernel_named_count(), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(spec.kernel_name, sizeof spec.kernel_name, "made-up-%d", i);
		assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
		if (!i)
			first = j;
		assert_int_equal(coord_cancel(f->c, COORD_ALL, j.id, &j), TALLY_OK);
		if (i % 500 == 499)
			assert_int_equal(coord_flush(f->c), TALLY_OK);
		assert_true(kernel_named_count() <= 500);
	}
	assert_int_equal(kernel_named_count(), 0);
	assert_null(kernel_known("made-up-0"));
	assert_int_equal(coord_job(f->c, COORD_ALL, first.id, &j), TALLY_OK);
	assert_string_equal(kernel_name_of(&j.spec), "made-up-0");
	assert_int_equal(kernel_named_count(), 0);

	/* Two jobs of one name share it; one finishes, is deleted, and the name stays for the
	 * other, over a restart, until it is cancelled too. */
	snprintf(spec.kernel_name, sizeof spec.kernel_name, "kept");
	assert_int_equal(coord_submit(f->c, &spec, NULL, &j), TALLY_OK);
	assert_int_equal(coord_submit(f->c, &spec, NULL, &kept), TALLY_OK);
	assert_int_equal(kernel_named_count(), 1);
	req.kernels[0] = "kept";
	assert_int_equal(coord_lease(f->c, &req, &l), TALLY_OK);
	assert_int_equal(l.job_id, j.id);
	assert_string_equal(kernel_name_of(&l.spec), "kept");
	c.keys.n = 1;
	snprintf(c.keys.name[0], sizeof c.keys.name[0], "hits");
	c.v[0] = 3;
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(coord_delete(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(kernel_named_count(), 1);
	crash_and_restart(f);
	assert_int_equal(kernel_named_count(), 1);
	assert_non_null(kernel_known("kept"));
	assert_int_equal(coord_cancel(f->c, COORD_ALL, kept.id, &j), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(kernel_named_count(), 0);
	assert_int_equal(coord_job(f->c, COORD_ALL, kept.id, &j), TALLY_OK);
	assert_string_equal(kernel_name_of(&j.spec), "kept");
	assert_int_equal(j.state, JOB_CANCELLED);
}

/* A lease's tag binds it to its id, its worker and its user; only the exact claim is accepted,
 * and the tag is the same after a restart (the key is kept in the store), unlike another
 * store's. */
static void test_lease_tags_bind_and_survive_restart(void **state)
{
	struct fixture *f = *state;
	struct tmpdb other;
	struct db *odb;
	struct coord *oc;
	struct coord_config cfg = { .lease_timeout_ms = 10000, .lease_target_ms = 1000,
				    .max_speculative = SPEC_LIVE_DEFAULT };
	char err[256];
	uint64_t tag = coord_lease_tag(f->c, 17, "node-a", "w1");
	struct lease_claim ok = { 17, tag, "node-a", "w1" };
	const struct lease_claim bad[] = {
		{ 17, tag, "node-b", "w1" },     { 17, tag, "node-a", "w2" },
		{ 18, tag, "node-a", "w1" },     { 17, tag ^ 1, "node-a", "w1" },
		{ 17, tag ^ (1ULL << 63), "node-a", "w1" }, { 17, tag, "node-a", "" },
		{ 17, tag, "node-aw1", "" },     { 17, tag, "node-", "aw1" },
	};

	assert_int_equal(coord_lease_claim(f->c, &ok), TALLY_OK);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(coord_lease_claim(f->c, &bad[i]), TALLY_ENOTFOUND);
	crash_and_restart(f);
	assert_int_equal(coord_lease_tag(f->c, 17, "node-a", "w1"), tag);
	assert_int_equal(coord_lease_claim(f->c, &ok), TALLY_OK);
	/* Another store, another key: its tags say nothing of this one's. */
	tmpdb_make(&other);
	if (db_open(other.path, &odb, err, sizeof err))
		fail_msg("%s", err);
	oc = coord_new(odb, &cfg, (struct coord_clock){ fake_now, f }, (struct coord_hooks){ 0 });
	assert_non_null(oc);
	assert_int_equal(coord_load(oc), TALLY_OK);
	assert_int_not_equal(coord_lease_tag(oc, 17, "node-a", "w1"), tag);
	coord_free(oc);
	db_close(odb);
	tmpdb_remove(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_submit_wakes_and_lease_sets_expiry),
		T(test_jobs_a_worker_cannot_run_are_passed_over),
		T(test_expiry_without_sleeping),
		T(test_counts_checked_against_lease),
		T(test_lease_size_adapts_to_worker_rate),
		T(test_cancel_and_fail_wake),
		T(test_finishing_job_wakes_waiters),
		T(test_changes_that_replies_wait_for),
		T(test_crash_keeps_exactly_the_flushed),
		T(test_written_leases_answer_from_the_store),
		T(test_list_sees_unflushed_changes),
		T(test_scope_and_keys_per_owner),
		T(test_workers_listed_with_state),
		T(test_stall_extends_live_leases),
		T(test_verify_liar_caught_and_discarded),
		T(test_verify_pending_check_survives_restart),
		T(test_failed_allocation_reloads_and_goes_on),
		T(test_delete_states_and_scopes),
		T(test_delete_undone_by_failed_commit),
		T(test_retention_cutoff),
		T(test_kernel_names_go_with_their_jobs),
		T(test_lease_tags_bind_and_survive_restart),
		T(test_speculative_copy_wins_once),
		T(test_speculative_copy_across_restarts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
