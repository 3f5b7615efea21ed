/* The store, on a fresh temporary database per test: job insert, range leasing, completion
 * exactly once, expiry and re-leasing, failure, cancel, listing, restart, and O(1) size in the
 * number of batches. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "db.h"
#include "tmpdb.h"

struct fixture {
	struct tmpdb t;
	struct db *db;
	uint64_t size; /* what the size callback answers */
	int reaped;    /* what the last acquire reclaimed */
	int finished;  /* what the last complete said */
};

static uint64_t fixed_size(void *ctx, const struct job *job, uint64_t remaining)
{
	struct fixture *f = ctx;
	(void)job;
	return f->size < remaining ? f->size : remaining;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];
	tmpdb_make(&f->t);
	if (db_open(f->t.path, &f->db, err, sizeof err))
		fail_msg("db_open: %s", err);
	f->size = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->db);
	tmpdb_remove(&f->t);
	free(f);
	return 0;
}

static const char *const pi_only[] = { "pi" };

static struct job submit(struct fixture *f, const char *kernel, uint64_t samples, uint64_t bs)
{
	struct job_spec spec = { kernel_find(kernel), samples, bs, 42, 0 };
	struct job j;
	assert_int_equal(db_job_insert(f->db, &spec, 1000, &j), TALLY_OK);
	return j;
}

static enum tally_err take(struct fixture *f, uint64_t n, int64_t now, struct lease *l)
{
	f->size = n;
	return db_lease_acquire(f->db, "w1", pi_only, 1, now, 30000, fixed_size, f, l, &f->reaped);
}

static void complete_ok(struct fixture *f, const struct lease *l, int64_t now)
{
	uint64_t counts[KERNEL_MAX_KEYS] = { 0 };
	int dup = -1;
	kernel_run_range(l->spec.kernel, l->spec.seed, l->spec.samples, l->spec.batch_size,
			 l->first_batch, l->batch_count, counts);
	assert_int_equal(db_lease_complete(f->db, l->id, counts, now, &dup, &f->finished), TALLY_OK);
	assert_int_equal(dup, 0);
}

static void test_insert_and_get(void **state)
{
	struct fixture *f = *state;
	struct job j = submit(f, "pi", 1003, 100), g;
	assert_int_equal(j.state, JOB_QUEUED);
	assert_int_equal(j.batches_total, 11);
	assert_int_equal(j.created_at, 1000);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.spec.samples, 1003);
	assert_int_equal(g.spec.seed, 42);
	assert_int_equal(db_job_get(f->db, j.id + 1, &g), TALLY_ENOTFOUND);
}

static void test_seed_keeps_all_64_bits(void **state)
{
	struct fixture *f = *state;
	struct job_spec spec = { kernel_find("pi"), 10, 10, UINT64_MAX - 1, 0 };
	struct job j, g;
	assert_int_equal(db_job_insert(f->db, &spec, 1, &j), TALLY_OK);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_true(g.spec.seed == UINT64_MAX - 1);
}

static void test_leases_cover_the_job_exactly_once(void **state)
{
	struct fixture *f = *state;
	struct job j = submit(f, "pi", 1003, 100), g;
	struct lease l;
	uint64_t next = 0;
	/* Ranges of 3 batches: 0-2, 3-5, 6-8, 9-10. */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(take(f, 3, 2000, &l), TALLY_OK);
		assert_int_equal(l.job_id, j.id);
		assert_int_equal(l.first_batch, next);
		assert_int_equal(l.batch_count, i < 3 ? 3 : 2);
		next += l.batch_count;
		complete_ok(f, &l, 3000);
		assert_int_equal(f->finished, i == 3); /* the last complete finishes the job */
	}
	assert_int_equal(take(f, 3, 4000, &l), TALLY_ENOTFOUND);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.state, JOB_SUCCEEDED);
	assert_int_equal(g.batches_done, 11);
	assert_int_equal(g.batches_leased, 0);
	assert_int_equal(g.samples_done, 1003);
	assert_int_equal(g.counts[1], 1003);
	assert_int_equal(g.finished_at, 3000);
	assert_int_equal(g.started_at, 2000);
	/* The same counts as computing the whole job in one go. */
	uint64_t whole[2] = { 0 };
	kernel_run_range(kernel_find("pi"), 42, 1003, 100, 0, 11, whole);
	assert_int_equal(g.counts[0], whole[0]);
}

static void test_complete_twice_counts_once(void **state)
{
	struct fixture *f = *state;
	struct job j = submit(f, "pi", 1000, 100), g;
	struct lease l;
	uint64_t counts[KERNEL_MAX_KEYS] = { 7, 200 };
	int dup;
	assert_int_equal(take(f, 2, 10, &l), TALLY_OK);
	assert_int_equal(db_lease_complete(f->db, l.id, counts, 20, &dup, &f->finished), TALLY_OK);
	assert_int_equal(dup, 0);
	assert_int_equal(db_lease_complete(f->db, l.id, counts, 30, &dup, &f->finished), TALLY_OK);
	assert_int_equal(dup, 1);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.counts[0], 7);
	assert_int_equal(g.counts[1], 200);
	assert_int_equal(g.batches_done, 2);
}

static void test_expired_lease_is_released_and_lost(void **state)
{
	struct fixture *f = *state;
	struct job j = submit(f, "pi", 1000, 100), g;
	struct lease a, b, c, got;
	uint64_t counts[KERNEL_MAX_KEYS] = { 7, 200 };
	int dup, reaped;

	assert_int_equal(take(f, 2, 0, &a), TALLY_OK);     /* batches 0-1, expires at 30000 */
	assert_int_equal(take(f, 2, 10, &b), TALLY_OK);    /* batches 2-3 */
	/* Not yet expired: nothing reaped; a late heartbeat is still fine. */
	assert_int_equal(db_reap(f->db, 29999, &reaped), TALLY_OK);
	assert_int_equal(reaped, 0);
	/* At 30000 lease a expires; the next acquire reclaims it and hands out its range first. */
	assert_int_equal(take(f, 5, 30005, &c), TALLY_OK);
	assert_int_equal(f->reaped, 1);
	assert_int_equal(c.first_batch, 0);
	assert_int_equal(c.batch_count, 2);
	assert_int_equal(db_lease_get(f->db, a.id, &got), TALLY_OK);
	assert_int_equal(got.state, LEASE_EXPIRED);
	/* The late complete and heartbeat of a are refused and change nothing. */
	assert_int_equal(db_lease_complete(f->db, a.id, counts, 30010, &dup, &f->finished), TALLY_ELOST);
	assert_int_equal(db_lease_heartbeat(f->db, a.id, 30010, 30000, &got), TALLY_ELOST);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.batches_done, 0);
	assert_int_equal(g.counts[1], 0);
	/* b expired too (granted at 10): reaped separately, its range comes next. */
	assert_int_equal(db_reap(f->db, 30010, &reaped), TALLY_OK);
	assert_int_equal(reaped, 1);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.batches_leased, 2);
	assert_int_equal(take(f, 1, 30020, &got), TALLY_OK);
	assert_int_equal(got.first_batch, 2);
	assert_int_equal(got.batch_count, 1);
	assert_int_equal(take(f, 9, 30020, &got), TALLY_OK); /* the rest of b's range */
	assert_int_equal(got.first_batch, 3);
	assert_int_equal(got.batch_count, 1);
	assert_int_equal(take(f, 9, 30020, &got), TALLY_OK); /* then fresh batches */
	assert_int_equal(got.first_batch, 4);
	assert_int_equal(got.batch_count, 6);
}

static void test_heartbeat_extends(void **state)
{
	struct fixture *f = *state;
	struct lease l, got;
	int reaped;
	submit(f, "pi", 1000, 100);
	assert_int_equal(take(f, 2, 0, &l), TALLY_OK);
	assert_int_equal(db_lease_heartbeat(f->db, l.id, 20000, 30000, &got), TALLY_OK);
	assert_int_equal(got.expires_at, 50000);
	assert_int_equal(db_reap(f->db, 40000, &reaped), TALLY_OK);
	assert_int_equal(reaped, 0);
	assert_int_equal(db_lease_heartbeat(f->db, 999, 1, 1, &got), TALLY_ENOTFOUND);
}

static void test_fail_returns_batches(void **state)
{
	struct fixture *f = *state;
	struct job j = submit(f, "pi", 1000, 100), g;
	struct lease l, again;
	assert_int_equal(take(f, 4, 0, &l), TALLY_OK);
	assert_int_equal(db_lease_fail(f->db, l.id, "boom", 5), TALLY_OK);
	assert_int_equal(db_lease_fail(f->db, l.id, "boom", 6), TALLY_ELOST);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.batches_leased, 0);
	assert_int_equal(take(f, 10, 7, &again), TALLY_OK);
	assert_int_equal(again.first_batch, 0);
	assert_int_equal(again.batch_count, 4);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct job j = submit(f, "pi", 1000, 100), g;
	struct lease l, l2;
	uint64_t counts[KERNEL_MAX_KEYS] = { 7, 200 };
	int dup;
	assert_int_equal(take(f, 2, 0, &l), TALLY_OK);
	assert_int_equal(take(f, 2, 0, &l2), TALLY_OK);
	assert_int_equal(db_lease_fail(f->db, l2.id, "x", 1), TALLY_OK); /* a free range too */
	assert_int_equal(db_job_cancel(f->db, j.id, 50, &g), TALLY_OK);
	assert_int_equal(g.state, JOB_CANCELLED);
	assert_int_equal(g.batches_leased, 0);
	assert_int_equal(g.finished_at, 50);
	/* The leased batches are never counted; no more leases for the job. */
	assert_int_equal(db_lease_complete(f->db, l.id, counts, 60, &dup, &f->finished), TALLY_ELOST);
	assert_int_equal(take(f, 2, 70, &l), TALLY_ENOTFOUND);
	assert_int_equal(db_job_cancel(f->db, j.id, 80, &g), TALLY_OK); /* idempotent */
	assert_int_equal(g.finished_at, 50);
	/* A finished job cannot be cancelled. */
	struct job done = submit(f, "pi", 100, 100);
	assert_int_equal(take(f, 1, 90, &l), TALLY_OK);
	complete_ok(f, &l, 91);
	assert_int_equal(db_job_cancel(f->db, done.id, 92, &g), TALLY_ECONFLICT);
	assert_int_equal(g.state, JOB_SUCCEEDED);
	assert_int_equal(db_job_cancel(f->db, 12345, 92, &g), TALLY_ENOTFOUND);
}

static void test_kernel_filter_and_order(void **state)
{
	struct fixture *f = *state;
	struct job c = submit(f, "count", 10, 10);
	struct job p = submit(f, "pi", 10, 10);
	struct lease l;
	const char *const both[] = { "count", "pi" };
	(void)c;
	assert_int_equal(take(f, 1, 0, &l), TALLY_OK); /* only pi: skips the older count job */
	assert_int_equal(l.job_id, p.id);
	f->size = 1;
	assert_int_equal(db_lease_acquire(f->db, "w", both, 2, 0, 1000, fixed_size, f, &l,
					  &f->reaped),
			 TALLY_OK);
	assert_int_equal(l.job_id, c.id);
	assert_int_equal(db_lease_acquire(f->db, "w", both, 2, 0, 1000, fixed_size, f, &l,
					  &f->reaped),
			 TALLY_ENOTFOUND);
}

struct collect {
	int64_t ids[16];
	int n;
};

static int collect_one(void *ctx, const struct job *j)
{
	struct collect *c = ctx;
	c->ids[c->n++] = j->id;
	return 0;
}

static void test_list_newest_first_with_cursor(void **state)
{
	struct fixture *f = *state;
	struct collect c = { 0 };
	struct lease l;
	for (int i = 0; i < 5; i++)
		submit(f, "pi", 100, 10);
	assert_int_equal(db_job_list(f->db, -1, 0, 2, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], 5);
	assert_int_equal(c.ids[1], 4);
	assert_int_equal(db_job_list(f->db, -1, 4, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 5);
	assert_int_equal(c.ids[4], 1);
	assert_int_equal(take(f, 1, 0, &l), TALLY_OK); /* job 1 now running */
	c.n = 0;
	assert_int_equal(db_job_list(f->db, JOB_RUNNING, 0, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], 1);
}

static void test_state_survives_reopen(void **state)
{
	struct fixture *f = *state;
	struct job j = submit(f, "pi", 1000, 100), g;
	struct lease l, got;
	char err[256];
	assert_int_equal(take(f, 3, 0, &l), TALLY_OK);
	complete_ok(f, &l, 1);
	assert_int_equal(take(f, 3, 2, &l), TALLY_OK);
	db_close(f->db);
	assert_int_equal(db_open(f->t.path, &f->db, err, sizeof err), TALLY_OK);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.batches_done, 3);
	assert_int_equal(g.batches_leased, 3);
	assert_int_equal(db_lease_get(f->db, l.id, &got), TALLY_OK);
	assert_int_equal(got.state, LEASE_ACTIVE);
	complete_ok(f, &l, 3); /* the lease granted before the restart completes after it */
	assert_int_equal(take(f, 100, 4, &l), TALLY_OK);
	assert_int_equal(l.first_batch, 6);
	assert_int_equal(l.batch_count, 4);
}

static void test_huge_job_is_small(void **state)
{
	struct fixture *f = *state;
	struct stat before, after;
	struct lease l;
	struct job j, g;
	(void)j;
	assert_int_equal(stat(f->t.path, &before), 0);
	j = submit(f, "pi", 1000000000000000ULL, 1); /* 1e15 batches */
	assert_int_equal(take(f, 1000, 0, &l), TALLY_OK);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.batches_total, 1000000000000000ULL);
	assert_int_equal(g.batches_leased, 1000);
	char wal[128];
	snprintf(wal, sizeof wal, "%s-wal", f->t.path);
	assert_int_equal(stat(wal, &after), 0);
	assert_true(after.st_size < 256 * 1024);
}

static void test_open_rejects_garbage(void **state)
{
	struct tmpdb t;
	struct db *db = NULL;
	char err[256] = "";
	FILE *fp;
	(void)state;
	tmpdb_make(&t);
	fp = fopen(t.path, "w");
	fputs("this is not a database, just some text that is long enough to be a header......"
	      "................................................................................",
	      fp);
	fclose(fp);
	assert_int_equal(db_open(t.path, &db, err, sizeof err), TALLY_EDB);
	assert_null(db);
	assert_non_null(strstr(err, t.path));
	tmpdb_remove(&t);
}

static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct job j, g;
	struct lease a, b;
	uint64_t counts[KERNEL_MAX_KEYS] = { 7, 100 };
	int dup;
	char err[256];

	j = submit(f, "pi", 1000, 100);
	db_set_group(f->db, 1);
	assert_int_equal(db_dirty(f->db), 0);
	assert_int_equal(take(f, 1, 10, &a), TALLY_OK);
	assert_int_equal(db_dirty(f->db), 1);
	assert_int_equal(take(f, 1, 10, &b), TALLY_OK);
	assert_int_equal(db_lease_complete(f->db, a.id, counts, 20, &dup, &f->finished), TALLY_OK);
	/* A refused operation undoes only itself. */
	assert_int_equal(db_lease_fail(f->db, a.id, "late", 21), TALLY_ELOST);
	assert_int_equal(db_job_cancel(f->db, 999, 22, &g), TALLY_ENOTFOUND);
	assert_int_equal(db_flush(f->db), TALLY_OK);
	assert_int_equal(db_dirty(f->db), 0);
	/* Written: it survives a reopen. */
	db_close(f->db);
	assert_int_equal(db_open(f->t.path, &f->db, err, sizeof err), TALLY_OK);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.batches_done, 1);
	assert_int_equal(g.batches_leased, 1);
	/* Not flushed: gone with a crash (here, a close without flush). */
	db_set_group(f->db, 1);
	assert_int_equal(db_lease_complete(f->db, b.id, counts, 30, &dup, &f->finished), TALLY_OK);
	db_close(f->db);
	assert_int_equal(db_open(f->t.path, &f->db, err, sizeof err), TALLY_OK);
	assert_int_equal(db_job_get(f->db, j.id, &g), TALLY_OK);
	assert_int_equal(g.batches_done, 1);
	assert_int_equal(db_flush(f->db), TALLY_OK); /* nothing to do */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_insert_and_get),
		T(test_seed_keeps_all_64_bits),
		T(test_leases_cover_the_job_exactly_once),
		T(test_complete_twice_counts_once),
		T(test_expired_lease_is_released_and_lost),
		T(test_heartbeat_extends),
		T(test_fail_returns_batches),
		T(test_cancel),
		T(test_kernel_filter_and_order),
		T(test_list_newest_first_with_cursor),
		T(test_state_survives_reopen),
		T(test_huge_job_is_small),
		T(test_group_commit),
		cmocka_unit_test(test_open_rejects_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
