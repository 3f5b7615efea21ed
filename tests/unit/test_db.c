/* The store, on a fresh temporary database per test: rows saved whole and read back, upserts,
 * what db_load hands back after a restart (unfinished jobs, their ranges, live leases), meta
 * values, rollback, listing, and refusing a file that is not a database. */
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
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];
	tmpdb_make(&f->t);
	if (db_open(f->t.path, &f->db, err, sizeof err))
		fail_msg("db_open: %s", err);
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

static void reopen(struct fixture *f)
{
	char err[256];
	db_close(f->db);
	if (db_open(f->t.path, &f->db, err, sizeof err))
		fail_msg("db_open: %s", err);
}

static struct job make_job(int64_t id, const char *kernel, uint64_t samples, uint64_t bs)
{
	struct job j;
	memset(&j, 0, sizeof j);
	j.id = id;
	j.spec.kernel = kernel_find(kernel);
	j.spec.samples = samples;
	j.spec.batch_size = bs;
	j.spec.seed = 42;
	j.spec.kernel_version = j.spec.kernel->version;
	j.batches_total = kernel_batches(samples, bs);
	j.created_at = 1000;
	return j;
}

static struct lease make_lease(int64_t id, int64_t job_id, uint64_t first, uint64_t count)
{
	struct lease l;
	memset(&l, 0, sizeof l);
	l.id = id;
	l.job_id = job_id;
	l.first_batch = first;
	l.batch_count = count;
	l.state = LEASE_ACTIVE;
	l.granted_at = 2000;
	l.expires_at = 32000;
	snprintf(l.worker, sizeof l.worker, "w1");
	return l;
}

static void save_job(struct fixture *f, const struct job *j, uint64_t next_batch)
{
	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_job_save(f->db, j, "", next_batch, ""), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
}

static void test_job_saved_whole(void **state)
{
	struct fixture *f = *state;
	struct job j = make_job(7, "pi", 1003, 100), g;
	j.spec.seed = UINT64_MAX - 1; /* all 64 bits survive the signed column */
	save_job(f, &j, 0);
	assert_int_equal(db_job_get(f->db, 7, &g), TALLY_OK);
	assert_int_equal(g.state, JOB_QUEUED);
	assert_int_equal(g.batches_total, 11);
	assert_int_equal(g.spec.samples, 1003);
	assert_true(g.spec.seed == UINT64_MAX - 1);
	assert_int_equal(g.created_at, 1000);
	assert_int_equal(g.started_at, 0); /* unset times read back as 0 */
	assert_int_equal(g.finished_at, 0);
	assert_string_equal(g.error, "");
	assert_int_equal(db_job_get(f->db, 8, &g), TALLY_ENOTFOUND);

	/* Saved again: the same row, updated. */
	j.state = JOB_SUCCEEDED;
	j.batches_done = 11;
	j.samples_done = 1003;
	j.counts[0] = 790;
	j.counts[1] = 1003;
	j.started_at = 1500;
	j.finished_at = 1600;
	save_job(f, &j, 11);
	reopen(f);
	assert_int_equal(db_job_get(f->db, 7, &g), TALLY_OK);
	assert_int_equal(g.state, JOB_SUCCEEDED);
	assert_int_equal(g.batches_done, 11);
	assert_int_equal(g.counts[0], 790);
	assert_int_equal(g.counts[1], 1003);
	assert_int_equal(g.started_at, 1500);
	assert_int_equal(g.finished_at, 1600);
}

struct loaded {
	int64_t jobs[16];
	uint64_t next_batch[16];
	char failure[16][64];
	int njobs;
	struct batch_range ranges[16];
	int64_t range_job[16];
	int nranges;
	struct lease leases[16];
	int nleases;
	struct lease results[16]; /* pending checks and their opinions */
	uint64_t result_counts[16][KERNEL_MAX_KEYS];
	int nresults;
	char quarantined[256];
};

static int on_job(void *ctx, const struct job *job, uint64_t next_batch, const char *failure)
{
	struct loaded *l = ctx;
	l->jobs[l->njobs] = job->id;
	l->next_batch[l->njobs] = next_batch;
	snprintf(l->failure[l->njobs], sizeof l->failure[0], "%s", failure);
	l->njobs++;
	return 0;
}

static int on_range(void *ctx, int64_t job_id, const struct batch_range *r)
{
	struct loaded *l = ctx;
	l->range_job[l->nranges] = job_id;
	l->ranges[l->nranges++] = *r;
	return 0;
}

static int on_lease(void *ctx, const struct lease *lease)
{
	struct loaded *l = ctx;
	l->leases[l->nleases++] = *lease;
	return 0;
}

static int on_result(void *ctx, const struct lease *lease, const uint64_t *counts)
{
	struct loaded *l = ctx;
	l->results[l->nresults] = *lease;
	memcpy(l->result_counts[l->nresults++], counts, sizeof l->result_counts[0]);
	return 0;
}

static int on_quarantine(void *ctx, const char *worker, const char *reason, int64_t at)
{
	struct loaded *l = ctx;
	(void)at;
	snprintf(l->quarantined, sizeof l->quarantined, "%s: %s", worker, reason);
	return 0;
}

static void test_load_gives_back_live_state(void **state)
{
	struct fixture *f = *state;
	struct job running = make_job(1, "pi", 1000, 100), done = make_job(2, "pi", 10, 10),
		   queued = make_job(3, "count", 50, 10);
	struct batch_range free[] = { { 2, 1, 0, 0 }, { 5, 2, 3, 1 } };
	struct lease live = make_lease(1 << 16, 1, 0, 2), finished = make_lease(2 << 16, 1, 3, 1),
		     old = make_lease(3 << 16, 2, 0, 1);
	struct db_loader fns;
	struct loaded l = { 0 };
	int64_t max_job = -1, max_lease = -1;
	int skipped = -1;

	running.state = JOB_RUNNING;
	done.state = JOB_SUCCEEDED;
	live.failures = 2;
	finished.state = LEASE_DONE;
	old.state = LEASE_DONE;
	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_job_save(f->db, &running, "", 8, "worker crashed"), TALLY_OK);
	assert_int_equal(db_job_save(f->db, &done, "", 1, ""), TALLY_OK);
	assert_int_equal(db_job_save(f->db, &queued, "", 0, ""), TALLY_OK);
	assert_int_equal(db_ranges_save(f->db, 1, free, 2), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &live, 0, NULL), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &finished, 2500, NULL), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &old, 2600, NULL), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	reopen(f);

	fns = (struct db_loader){ on_job, on_range, on_result, on_result, on_lease, on_quarantine, &l };
	assert_int_equal(db_load(f->db, &fns, &max_job, &max_lease, &skipped), TALLY_OK);
	assert_int_equal(max_job, 3);
	assert_int_equal(max_lease, 3 << 16);
	assert_int_equal(skipped, 0);
	assert_int_equal(l.njobs, 2); /* the succeeded job stays in the store */
	assert_int_equal(l.jobs[0], 1);
	assert_int_equal(l.jobs[1], 3);
	assert_int_equal(l.next_batch[0], 8);
	assert_string_equal(l.failure[0], "worker crashed");
	assert_string_equal(l.failure[1], "");
	assert_int_equal(l.nranges, 2);
	assert_int_equal(l.ranges[0].first, 2);
	assert_int_equal(l.ranges[1].first, 5);
	assert_int_equal(l.ranges[1].count, 2);
	assert_int_equal(l.ranges[1].failures, 3);
	assert_int_equal(l.ranges[1].strikes, 1);
	assert_int_equal(l.nleases, 1); /* only the live one */
	assert_int_equal(l.leases[0].id, live.id);
	assert_int_equal(l.leases[0].batch_count, 2);
	assert_int_equal(l.leases[0].expires_at, 32000);
	assert_int_equal(l.leases[0].failures, 2);
	assert_string_equal(l.leases[0].worker, "w1");

	/* Ranges are replaced, not added to. */
	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_ranges_save(f->db, 1, free + 1, 1), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	memset(&l, 0, sizeof l);
	assert_int_equal(db_load(f->db, &fns, &max_job, &max_lease, &skipped), TALLY_OK);
	assert_int_equal(l.nranges, 1);
	assert_int_equal(l.ranges[0].first, 5);
}

static void test_lease_rows(void **state)
{
	struct fixture *f = *state;
	struct job j = make_job(1, "pi", 1000, 100);
	struct lease l = make_lease(77, 1, 4, 3), got;

	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_job_save(f->db, &j, "", 7, ""), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &l, 0, NULL), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	assert_int_equal(db_lease_get(f->db, 77, &got), TALLY_OK);
	assert_int_equal(got.state, LEASE_ACTIVE);
	assert_int_equal(got.first_batch, 4);
	assert_ptr_equal(got.spec.kernel, kernel_find("pi")); /* with its job's spec */
	assert_int_equal(got.spec.batch_size, 100);
	l.state = LEASE_EXPIRED;
	l.expires_at = 40000;
	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &l, 41000, NULL), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	assert_int_equal(db_lease_get(f->db, 77, &got), TALLY_OK);
	assert_int_equal(got.state, LEASE_EXPIRED);
	assert_int_equal(got.expires_at, 40000);
	assert_int_equal(db_lease_get(f->db, 78, &got), TALLY_ENOTFOUND);
}

static void test_rollback_and_meta(void **state)
{
	struct fixture *f = *state;
	struct job j = make_job(5, "pi", 100, 10), g;
	int64_t v = -1;

	assert_int_equal(db_meta_get(f->db, "x", &v), TALLY_OK);
	assert_int_equal(v, -1); /* unset: left alone */
	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_begin(f->db), TALLY_OK); /* already open: fine */
	assert_int_equal(db_job_save(f->db, &j, "", 0, ""), TALLY_OK);
	assert_int_equal(db_meta_set(f->db, "x", 12), TALLY_OK);
	assert_int_equal(db_job_get(f->db, 5, &g), TALLY_OK); /* the transaction sees itself */
	db_rollback(f->db);
	assert_int_equal(db_job_get(f->db, 5, &g), TALLY_ENOTFOUND);
	assert_int_equal(db_meta_get(f->db, "x", &v), TALLY_OK);
	assert_int_equal(v, -1);
	assert_int_equal(db_commit(f->db), TALLY_OK); /* nothing open: nothing to do */

	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_meta_set(f->db, "x", 12), TALLY_OK);
	assert_int_equal(db_meta_set(f->db, "x", 1LL << 40), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	reopen(f);
	assert_int_equal(db_meta_get(f->db, "x", &v), TALLY_OK);
	assert_int_equal(v, 1LL << 40);
}

struct collect {
	int64_t ids[16];
	int n;
};

static int collect_one(void *ctx, const struct job *job)
{
	struct collect *c = ctx;
	c->ids[c->n++] = job->id;
	return 0;
}

static void test_list_newest_first_with_cursor(void **state)
{
	struct fixture *f = *state;
	struct collect c = { 0 };
	assert_int_equal(db_begin(f->db), TALLY_OK);
	for (int i = 1; i <= 5; i++) {
		struct job j = make_job(i, "pi", 100, 10);
		j.state = i == 1 ? JOB_RUNNING : JOB_QUEUED;
		assert_int_equal(db_job_save(f->db, &j, "", 0, ""), TALLY_OK);
	}
	assert_int_equal(db_commit(f->db), TALLY_OK);
	assert_int_equal(db_job_list(f->db, -1, 0, 2, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], 5);
	assert_int_equal(c.ids[1], 4);
	assert_int_equal(db_job_list(f->db, -1, 4, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 5);
	assert_int_equal(c.ids[4], 1);
	c.n = 0;
	assert_int_equal(db_job_list(f->db, JOB_RUNNING, 0, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], 1);
}

/* A job this build has no kernel for stays in the store, untouched, and is counted. */
static void test_load_skips_unknown_kernels(void **state)
{
	struct fixture *f = *state;
	static const struct kernel gone = { .name = "gone", .version = 1, .nkeys = 1 };
	struct job j = make_job(1, "pi", 100, 10), g;
	struct loaded l = { 0 };
	struct db_loader fns = { on_job, on_range, on_result, on_result, on_lease, on_quarantine, &l };
	int64_t max_job, max_lease;
	int skipped = 0;

	j.spec.kernel = &gone;
	save_job(f, &j, 0);
	assert_int_equal(db_load(f->db, &fns, &max_job, &max_lease, &skipped), TALLY_OK);
	assert_int_equal(skipped, 1);
	assert_int_equal(l.njobs, 0);
	assert_int_equal(max_job, 1);
	assert_int_equal(db_job_get(f->db, 1, &g), TALLY_EDB);
	assert_non_null(strstr(db_errmsg(f->db), "gone"));
}

static void test_huge_job_is_small(void **state)
{
	struct fixture *f = *state;
	struct job j = make_job(1, "pi", 1000000000000000ULL, 1), g; /* 1e15 batches */
	struct lease l = make_lease(1 << 16, 1, 0, 1000);
	struct stat wal;
	char path[128];

	j.state = JOB_RUNNING;
	j.batches_leased = 1000;
	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_job_save(f->db, &j, "", 1000, ""), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &l, 0, NULL), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	assert_int_equal(db_job_get(f->db, 1, &g), TALLY_OK);
	assert_int_equal(g.batches_total, 1000000000000000ULL);
	snprintf(path, sizeof path, "%s-wal", f->t.path);
	assert_int_equal(stat(path, &wal), 0);
	assert_true(wal.st_size < 256 * 1024);
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_job_saved_whole),
		T(test_load_gives_back_live_state),
		T(test_lease_rows),
		T(test_rollback_and_meta),
		T(test_list_newest_first_with_cursor),
		T(test_load_skips_unknown_kernels),
		T(test_huge_job_is_small),
		cmocka_unit_test(test_open_rejects_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
