/* The store, on a fresh temporary database per test: rows saved whole and read back, upserts,
 * what db_load hands back after a restart (unfinished jobs, their ranges, live leases, pending
 * checks and their opinions, quarantined workers), a worker's results, meta values, rollback,
 * listing (by owner too), keys per owner, migrating version-3 and version-5 files, refusing
 * a file that is not a database, and retention: a delete takes every row of its job and nothing
 * else, expired jobs are found by when they finished, and the file gives its pages back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <sqlite3.h> /* to build a version-3 file by hand */
#include "db.h"
#include "schema.h"
#include "tmpdb.h"
#include "kernel.h"

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
	kernel_keys(j.spec.kernel, &j.keys);
	j.batches_total = job_batches(samples, bs);
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
	assert_string_equal(job_error(&g), "");
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

static enum tally_err on_job(void *ctx, const struct job *job, uint64_t next_batch, const char *failure)
{
	struct loaded *l = ctx;
	l->jobs[l->njobs] = job->id;
	l->next_batch[l->njobs] = next_batch;
	snprintf(l->failure[l->njobs], sizeof l->failure[0], "%s", failure);
	l->njobs++;
	return TALLY_OK;
}

static enum tally_err on_range(void *ctx, int64_t job_id, const struct batch_range *r)
{
	struct loaded *l = ctx;
	l->range_job[l->nranges] = job_id;
	l->ranges[l->nranges++] = *r;
	return TALLY_OK;
}

static enum tally_err on_lease(void *ctx, const struct lease *lease)
{
	struct loaded *l = ctx;
	l->leases[l->nleases++] = *lease;
	return TALLY_OK;
}

static enum tally_err on_result(void *ctx, const struct lease *lease, const uint64_t *counts)
{
	struct loaded *l = ctx;
	l->results[l->nresults] = *lease;
	memcpy(l->result_counts[l->nresults++], counts, sizeof l->result_counts[0]);
	return TALLY_OK;
}

static enum tally_err on_quarantine(void *ctx, const char *worker, const char *reason, int64_t at)
{
	struct loaded *l = ctx;
	(void)at;
	snprintf(l->quarantined, sizeof l->quarantined, "%s: %s", worker, reason);
	return TALLY_OK;
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

static enum tally_err collect_one(void *ctx, const struct job *job)
{
	struct collect *c = ctx;
	c->ids[c->n++] = job->id;
	return TALLY_OK;
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
	assert_int_equal(db_job_list(f->db, NULL, -1, 0, 2, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], 5);
	assert_int_equal(c.ids[1], 4);
	assert_int_equal(db_job_list(f->db, NULL, -1, 4, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 5);
	assert_int_equal(c.ids[4], 1);
	c.n = 0;
	assert_int_equal(db_job_list(f->db, NULL, JOB_RUNNING, 0, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], 1);
}

/* A job for a kernel this build has no code for (a workers' plug-in) loads, with its name,
 * params, version and count names as stored; reading it makes no kernel of the name (the
 * coordinator's job in memory does: test_coord). */
static void test_load_keeps_unknown_kernels(void **state)
{
	struct fixture *f = *state;
	static const struct kernel gone = { .name = "gone", .version = 3, .nkeys = 1 };
	struct job j = make_job(1, "pi", 100, 10), g;
	struct loaded l = { 0 };
	struct db_loader fns = { on_job, on_range, on_result, on_result, on_lease, on_quarantine, &l };
	int64_t max_job, max_lease;
	int skipped = 0;

	j.spec.kernel = &gone;
	j.spec.kernel_version = 3;
	j.spec.params = "{\"start\":7}";
	memset(&j.keys, 0, sizeof j.keys);
	j.keys.n = 2;
	snprintf(j.keys.name[0], sizeof j.keys.name[0], "primes");
	snprintf(j.keys.name[1], sizeof j.keys.name[1], "twins");
	j.counts[1] = 5;
	save_job(f, &j, 0);
	assert_int_equal(db_load(f->db, &fns, &max_job, &max_lease, &skipped), TALLY_OK);
	assert_int_equal(skipped, 0);
	assert_int_equal(l.njobs, 1);
	assert_int_equal(max_job, 1);
	assert_int_equal(db_job_get(f->db, 1, &g), TALLY_OK);
	assert_string_equal(kernel_name_of(&g.spec), "gone");
	assert_ptr_equal(g.spec.kernel, kernel_placeholder());
	assert_true(g.spec.kernel->open);
	assert_int_equal(kernel_named_count(), 0);
	assert_int_equal(g.spec.kernel_version, 3);
	assert_string_equal(g.spec.params, "{\"start\":7}");
	assert_int_equal(g.keys.n, 2);
	assert_string_equal(g.keys.name[1], "twins");
	assert_int_equal(g.counts[1], 5);
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

/* What verification stores, as db_load and db_worker_results hand it back. */
struct verified {
	struct lease checks[8], opinions[8], leases[8];
	uint64_t check_counts[8][KERNEL_MAX_KEYS], opinion_counts[8][KERNEL_MAX_KEYS];
	int nchecks, nopinions, nleases, njobs;
	char quar_worker[4][WORKER_NAME_MAX];
	char quar_reason[4][128];
	int64_t quar_at[4];
	int nquar;
	struct lease results[8];
	uint64_t result_counts[8][KERNEL_MAX_KEYS];
	int nresults, stop_after;
};

static enum tally_err v_job(void *ctx, const struct job *job, uint64_t next_batch, const char *failure)
{
	(void)job;
	(void)next_batch;
	(void)failure;
	((struct verified *)ctx)->njobs++;
	return TALLY_OK;
}

static enum tally_err v_range(void *ctx, int64_t job_id, const struct batch_range *r)
{
	(void)ctx;
	(void)job_id;
	(void)r;
	return TALLY_OK;
}

static enum tally_err v_check(void *ctx, const struct lease *lease, const uint64_t *counts)
{
	struct verified *v = ctx;
	assert_true(v->nchecks < 8);
	v->checks[v->nchecks] = *lease;
	memcpy(v->check_counts[v->nchecks++], counts, sizeof v->check_counts[0]);
	return TALLY_OK;
}

static enum tally_err v_opinion(void *ctx, const struct lease *lease, const uint64_t *counts)
{
	struct verified *v = ctx;
	assert_true(v->nopinions < 8);
	v->opinions[v->nopinions] = *lease;
	memcpy(v->opinion_counts[v->nopinions++], counts, sizeof v->opinion_counts[0]);
	return TALLY_OK;
}

static enum tally_err v_lease(void *ctx, const struct lease *lease)
{
	struct verified *v = ctx;
	assert_true(v->nleases < 8);
	v->leases[v->nleases++] = *lease;
	return TALLY_OK;
}

static enum tally_err v_quarantine(void *ctx, const char *worker, const char *reason, int64_t at)
{
	struct verified *v = ctx;
	assert_true(v->nquar < 4);
	snprintf(v->quar_worker[v->nquar], sizeof v->quar_worker[0], "%s", worker);
	snprintf(v->quar_reason[v->nquar], sizeof v->quar_reason[0], "%s", reason);
	v->quar_at[v->nquar++] = at;
	return TALLY_OK;
}

static enum tally_err v_result(void *ctx, const struct lease *lease, const uint64_t *counts)
{
	struct verified *v = ctx;
	assert_true(v->nresults < 8);
	v->results[v->nresults] = *lease;
	memcpy(v->result_counts[v->nresults++], counts, sizeof v->result_counts[0]);
	return v->stop_after && v->nresults == v->stop_after ? TALLY_ECONFLICT : TALLY_OK;
}

static struct lease worker_lease(int64_t seq, int64_t job_id, uint64_t first, uint64_t count,
				 const char *worker, enum lease_state s, int64_t check_of)
{
	struct lease l = make_lease(seq << 16, job_id, first, count);
	snprintf(l.worker, sizeof l.worker, "%s", worker);
	l.state = s;
	l.check_of = check_of;
	return l;
}

/* Verification's rows: a done lease whose check is pending (state 1, CHECK_PENDING) comes back
 * with its counts, the done check leases on it as opinions, a live check lease with check_of;
 * settled checks and their opinions stay behind. Quarantines come back oldest first, each
 * worker's first record kept. A worker's results are its done leases with counts in unfinished
 * jobs, by id: not live, discarded or pre-verification (no counts) leases, nor finished jobs'. */
static void test_verify_rows_load_back(void **state)
{
	struct fixture *f = *state;
	struct job running = make_job(1, "pi", 1000, 100), done = make_job(2, "pi", 1000, 100), g;
	struct lease checked = worker_lease(1, 1, 0, 2, "w1", LEASE_DONE, 0);
	struct lease opinion = worker_lease(2, 1, 0, 2, "w2", LEASE_DONE, checked.id);
	struct lease live_check = worker_lease(3, 1, 0, 2, "w3", LEASE_ACTIVE, checked.id);
	struct lease plain = worker_lease(4, 1, 2, 1, "w1", LEASE_DONE, 0);
	struct lease passed = worker_lease(5, 1, 3, 1, "w1", LEASE_DONE, 0);
	struct lease passed_op = worker_lease(6, 1, 3, 1, "w2", LEASE_DONE, passed.id);
	struct lease old = worker_lease(7, 1, 4, 1, "w1", LEASE_DONE, 0);
	struct lease gone = worker_lease(8, 1, 5, 1, "w1", LEASE_DISCARDED, 0);
	struct lease live = worker_lease(9, 1, 6, 1, "w1", LEASE_ACTIVE, 0);
	struct lease fin = worker_lease(10, 2, 0, 1, "w1", LEASE_DONE, 0);
	uint64_t c_checked[KERNEL_MAX_KEYS] = { 150, 200 };
	uint64_t c_opinion[KERNEL_MAX_KEYS] = { 151, 200 };
	uint64_t c_plain[KERNEL_MAX_KEYS] = { 70, 100 }, c_passed[KERNEL_MAX_KEYS] = { 75, 100 };
	uint64_t c_gone[KERNEL_MAX_KEYS] = { 1, 100 }, c_fin[KERNEL_MAX_KEYS] = { 80, 100 };
	struct db_loader fns = { v_job, v_range, v_check, v_opinion, v_lease, v_quarantine, NULL };
	struct verified v = { 0 };
	int64_t max_job, max_lease;
	int skipped;

	running.state = JOB_RUNNING;
	running.spec.verify = 0.5;
	running.checks_passed = 2;
	running.checks_pending = 1;
	running.mismatches = 1;
	snprintf(running.quarantined, sizeof running.quarantined, "liar\nother");
	done.state = JOB_SUCCEEDED;
	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_job_save(f->db, &running, "", 7, ""), TALLY_OK);
	assert_int_equal(db_job_save(f->db, &done, "", 10, ""), TALLY_OK);
	/* Saved live first, as the coordinator does, then done with counts. */
	assert_int_equal(db_lease_save(f->db, &live_check, 0, NULL), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &checked, 2500, c_checked), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &opinion, 2600, c_opinion), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &plain, 2700, c_plain), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &plain, 2700, NULL), TALLY_OK); /* counts kept */
	assert_int_equal(db_lease_save(f->db, &passed, 2800, c_passed), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &passed_op, 2900, c_passed), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &old, 3000, NULL), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &gone, 3100, c_gone), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &live, 0, NULL), TALLY_OK);
	assert_int_equal(db_lease_save(f->db, &fin, 3200, c_fin), TALLY_OK);
	assert_int_equal(db_check_save(f->db, checked.id, 1), TALLY_OK); /* CHECK_PENDING */
	assert_int_equal(db_check_save(f->db, passed.id, 1), TALLY_OK);
	assert_int_equal(db_check_save(f->db, passed.id, 2), TALLY_OK); /* CHECK_PASSED */
	assert_int_equal(db_quarantine_save(f->db, "liar", 5000, 1, "job 1, batches 0-1"),
			 TALLY_OK);
	assert_int_equal(db_quarantine_save(f->db, "liar", 6000, 2, "again"), TALLY_OK);
	assert_int_equal(db_quarantine_save(f->db, "other", 4000, 0, "earlier"), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	reopen(f);

	assert_int_equal(db_job_get(f->db, 1, &g), TALLY_OK);
	assert_true(g.spec.verify == 0.5);
	assert_int_equal(g.checks_passed, 2);
	assert_int_equal(g.checks_pending, 1);
	assert_int_equal(g.mismatches, 1);
	assert_string_equal(g.quarantined, "liar\nother");
	assert_int_equal(db_job_get(f->db, 2, &g), TALLY_OK);
	assert_true(g.spec.verify == 0);
	assert_string_equal(g.quarantined, "");

	fns.ctx = &v;
	assert_int_equal(db_load(f->db, &fns, &max_job, &max_lease, &skipped), TALLY_OK);
	assert_int_equal(v.njobs, 1);
	assert_int_equal(v.nchecks, 1);
	assert_int_equal(v.checks[0].id, checked.id);
	assert_int_equal(v.checks[0].job_id, 1);
	assert_int_equal(v.checks[0].first_batch, 0);
	assert_int_equal(v.checks[0].batch_count, 2);
	assert_int_equal(v.checks[0].state, LEASE_DONE);
	assert_int_equal(v.checks[0].check_of, 0);
	assert_string_equal(v.checks[0].worker, "w1");
	assert_memory_equal(v.check_counts[0], c_checked, sizeof c_checked);
	assert_int_equal(v.nopinions, 1);
	assert_int_equal(v.opinions[0].id, opinion.id);
	assert_int_equal(v.opinions[0].check_of, checked.id);
	assert_string_equal(v.opinions[0].worker, "w2");
	assert_memory_equal(v.opinion_counts[0], c_opinion, sizeof c_opinion);
	assert_int_equal(v.nleases, 2);
	assert_int_equal(v.leases[0].id == live_check.id ? v.leases[0].check_of
							  : v.leases[1].check_of,
			 checked.id);
	assert_int_equal(v.leases[0].id == live.id ? v.leases[0].check_of : v.leases[1].check_of,
			 0);
	assert_int_equal(v.nquar, 2);
	assert_string_equal(v.quar_worker[0], "other");
	assert_int_equal(v.quar_at[0], 4000);
	assert_string_equal(v.quar_worker[1], "liar");
	assert_string_equal(v.quar_reason[1], "job 1, batches 0-1");
	assert_int_equal(v.quar_at[1], 5000);

	assert_int_equal(db_worker_results(f->db, "w1", 0, v_result, &v), TALLY_OK);
	assert_int_equal(v.nresults, 3);
	assert_int_equal(v.results[0].id, checked.id);
	assert_memory_equal(v.result_counts[0], c_checked, sizeof c_checked);
	assert_int_equal(v.results[1].id, plain.id);
	assert_memory_equal(v.result_counts[1], c_plain, sizeof c_plain);
	assert_int_equal(v.results[2].id, passed.id);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(v.results[i].state, LEASE_DONE);
		assert_int_equal(v.results[i].job_id, 1);
		assert_string_equal(v.results[i].worker, "w1");
		assert_int_equal(v.results[i].granted_at, 2000); /* whole, so a rewrite keeps them */
		assert_int_equal(v.results[i].expires_at, 32000);
	}
	assert_int_equal(v.results[1].first_batch, 2);
	assert_int_equal(v.results[1].batch_count, 1);
	v.nresults = 0; /* since: leases with lower ids are not read */
	assert_int_equal(db_worker_results(f->db, "w1", plain.id, v_result, &v), TALLY_OK);
	assert_int_equal(v.nresults, plain.id < passed.id ? 2 : 1);
	assert_int_equal(v.results[0].id, plain.id);
	v.nresults = 0;
	assert_int_equal(db_worker_results(f->db, "w2", 0, v_result, &v), TALLY_OK);
	assert_int_equal(v.nresults, 2);
	assert_int_equal(v.results[0].check_of, checked.id);
	assert_int_equal(v.results[1].check_of, passed.id);
	v.nresults = 0;
	assert_int_equal(db_worker_results(f->db, "nobody", 0, v_result, &v), TALLY_OK);
	assert_int_equal(v.nresults, 0);
	v.stop_after = 1; /* a return other than TALLY_OK stops the walk and is returned */
	assert_int_equal(db_worker_results(f->db, "w1", 0, v_result, &v), TALLY_ECONFLICT);
	assert_int_equal(v.nresults, 1);
}

/* Makes t a database file at schema version `version` (its first migrations run by hand),
 * holding what sql inserts, and opens it with db_open (which migrates it). */
static struct db *open_old_file(struct tmpdb *t, int version, const char *sql)
{
	sqlite3 *conn = NULL;
	struct db *db = NULL;
	char err[256] = "", pragma[64];

	tmpdb_make(t);
	assert_int_equal(sqlite3_open(t->path, &conn), SQLITE_OK);
	for (int i = 0; i < version; i++)
		assert_int_equal(sqlite3_exec(conn, schema_migrations[i], NULL, NULL, NULL),
				 SQLITE_OK);
	snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d;", version);
	assert_int_equal(sqlite3_exec(conn, pragma, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(conn, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(conn);
	if (db_open(t->path, &db, err, sizeof err))
		fail_msg("db_open: %s", err);
	return db;
}

/* A version-3 file (before verification) opens as version 4: its jobs, done and live leases
 * are kept, with verification off and no counts on the old done leases (never discarded). */
static void test_migrates_version_3(void **state)
{
	struct tmpdb t;
	struct db *db;
	sqlite3 *conn = NULL;
	sqlite3_stmt *s = NULL;
	struct verified v = { 0 };
	struct db_loader fns = { v_job, v_range, v_check, v_opinion, v_lease, v_quarantine, &v };
	struct job g;
	struct lease l;
	uint64_t c[KERNEL_MAX_KEYS] = { 70, 100 };
	char sql[1024];
	int64_t max_job, max_lease;
	int skipped;
	(void)state;

	snprintf(sql, sizeof sql,
		 "INSERT INTO jobs(id, kernel, kernel_version, samples, batch_size, seed, state, "
		 "batches_total, next_batch, batches_done, batches_leased, samples_done, c0, c1, "
		 "created_at, started_at) VALUES (1, 'pi', %u, 1000, 100, 42, 1, 10, 4, 3, 1, 300, "
		 "230, 300, 1000, 1500), (2, 'pi', %u, 100, 100, 1, 2, 1, 1, 1, 0, 100, 80, 100, "
		 "1000, 1500);"
		 "INSERT INTO leases(id, job_id, first_batch, batch_count, worker, state, "
		 "granted_at, expires_at, finished_at) VALUES "
		 "(65536, 1, 0, 3, 'w1', 1, 2000, 32000, 2500), "
		 "(131072, 1, 3, 1, 'w1', 0, 2000, 32000, NULL);",
		 kernel_find("pi")->version, kernel_find("pi")->version);
	db = open_old_file(&t, 3, sql);
	assert_int_equal(db_job_get(db, 1, &g), TALLY_OK);
	assert_int_equal(g.state, JOB_RUNNING);
	assert_int_equal(g.batches_done, 3);
	assert_int_equal(g.counts[0], 230);
	assert_int_equal(g.counts[1], 300);
	assert_true(g.spec.verify == 0);
	assert_int_equal(g.checks_passed, 0);
	assert_int_equal(g.checks_pending, 0);
	assert_int_equal(g.mismatches, 0);
	assert_string_equal(g.quarantined, "");
	assert_int_equal(db_job_get(db, 2, &g), TALLY_OK);
	assert_int_equal(g.state, JOB_SUCCEEDED);
	assert_int_equal(db_load(db, &fns, &max_job, &max_lease, &skipped), TALLY_OK);
	assert_int_equal(v.njobs, 1);
	assert_int_equal(max_job, 2);
	assert_int_equal(max_lease, 131072);
	assert_int_equal(v.nleases, 1);
	assert_int_equal(v.leases[0].id, 131072);
	assert_int_equal(v.leases[0].check_of, 0);
	assert_int_equal(v.nchecks, 0);
	assert_int_equal(v.nopinions, 0);
	assert_int_equal(v.nquar, 0);
	assert_int_equal(db_worker_results(db, "w1", 0, v_result, &v), TALLY_OK);
	assert_int_equal(v.nresults, 0); /* its done lease has no counts */
	assert_int_equal(db_lease_get(db, 65536, &l), TALLY_OK);
	assert_int_equal(l.state, LEASE_DONE);

	/* The new columns and table take writes. */
	l = make_lease(3 << 16, 1, 4, 1);
	l.state = LEASE_DONE;
	assert_int_equal(db_begin(db), TALLY_OK);
	assert_int_equal(db_lease_save(db, &l, 2600, c), TALLY_OK);
	assert_int_equal(db_check_save(db, l.id, 1), TALLY_OK);
	assert_int_equal(db_quarantine_save(db, "w9", 7000, 1, "x"), TALLY_OK);
	assert_int_equal(db_commit(db), TALLY_OK);
	memset(&v, 0, sizeof v);
	assert_int_equal(db_load(db, &fns, &max_job, &max_lease, &skipped), TALLY_OK);
	assert_int_equal(v.nchecks, 1);
	assert_memory_equal(v.check_counts[0], c, sizeof c);
	assert_int_equal(v.nquar, 1);
	db_close(db);

	assert_int_equal(sqlite3_open(t.path, &conn), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(conn, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), SCHEMA_VERSION);
	assert_int_equal(SCHEMA_VERSION, 7);
	sqlite3_finalize(s);
	/* An old file is rewritten once into incremental auto-vacuum (schema.h, checklist 4). */
	assert_int_equal(sqlite3_prepare_v2(conn, "PRAGMA auto_vacuum", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 2);
	sqlite3_finalize(s);
	sqlite3_close(conn);
	tmpdb_remove(&t);
}

/* Owners and priorities are stored; a list reads one owner's jobs (and state); an
 * Idempotency-Key is unique per owner, not across owners. */
static void test_owner_rows(void **state)
{
	struct fixture *f = *state;
	static const char *const owners[] = { "alice", "bob", "alice", "", "bob" };
	struct collect c = { 0 };
	struct job j, g;

	assert_int_equal(db_begin(f->db), TALLY_OK);
	for (int i = 1; i <= 5; i++) {
		j = make_job(i, "pi", 100, 10);
		j.state = i == 3 ? JOB_RUNNING : JOB_QUEUED;
		snprintf(j.spec.owner, sizeof j.spec.owner, "%s", owners[i - 1]);
		j.spec.priority = i * 10 - 30;
		assert_int_equal(db_job_save(f->db, &j, i <= 2 ? "same-key" : "", 0, ""), TALLY_OK);
	}
	assert_int_equal(db_commit(f->db), TALLY_OK);
	assert_int_equal(db_job_get(f->db, 1, &g), TALLY_OK);
	assert_string_equal(g.spec.owner, "alice");
	assert_int_equal(g.spec.priority, -20);
	assert_int_equal(db_job_get(f->db, 5, &g), TALLY_OK);
	assert_int_equal(g.spec.priority, 20);
	assert_int_equal(db_job_by_key(f->db, "alice", "same-key", &g), TALLY_OK);
	assert_int_equal(g.id, 1);
	assert_int_equal(db_job_by_key(f->db, "bob", "same-key", &g), TALLY_OK);
	assert_int_equal(g.id, 2);
	assert_int_equal(db_job_by_key(f->db, "", "same-key", &g), TALLY_ENOTFOUND);
	assert_int_equal(db_job_list(f->db, "alice", -1, 0, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], 3);
	assert_int_equal(c.ids[1], 1);
	c.n = 0;
	assert_int_equal(db_job_list(f->db, "alice", JOB_QUEUED, 0, 10, collect_one, &c),
			 TALLY_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], 1);
	c.n = 0;
	assert_int_equal(db_job_list(f->db, "", -1, 0, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], 4);
	c.n = 0;
	assert_int_equal(db_job_list(f->db, "bob", -1, 5, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 1); /* below the cursor */
	/* The same owner's key twice is refused by the store (the coordinator never tries). */
	j = make_job(6, "pi", 100, 10);
	snprintf(j.spec.owner, sizeof j.spec.owner, "alice");
	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_job_save(f->db, &j, "same-key", 0, ""), TALLY_EDB);
	db_rollback(f->db);
}

/* A version-5 file (before users) opens as version 6: its jobs have no owner ('': an admin's to
 * see) and priority 0, and keep their Idempotency-Keys, under no owner. */
static void test_migrates_version_5(void **state)
{
	struct tmpdb t;
	struct db *db;
	struct job g, j;
	struct collect c = { 0 };
	char sql[1024];
	(void)state;

	snprintf(sql, sizeof sql,
		 "INSERT INTO jobs(id, kernel, kernel_version, samples, batch_size, seed, state, "
		 "batches_total, created_at, idempotency_key) VALUES (1, 'pi', %u, 1000, 100, 42, "
		 "0, 10, 1000, 'old-key');", kernel_find("pi")->version);
	db = open_old_file(&t, 5, sql);
	assert_int_equal(db_job_get(db, 1, &g), TALLY_OK);
	assert_string_equal(g.spec.owner, "");
	assert_int_equal(g.spec.priority, 0);
	assert_int_equal(db_job_by_key(db, "", "old-key", &g), TALLY_OK);
	assert_int_equal(g.id, 1);
	assert_int_equal(db_job_by_key(db, "alice", "old-key", &g), TALLY_ENOTFOUND);
	/* A user's job may take the old key: keys are per owner now. */
	j = make_job(2, "pi", 100, 10);
	snprintf(j.spec.owner, sizeof j.spec.owner, "alice");
	assert_int_equal(db_begin(db), TALLY_OK);
	assert_int_equal(db_job_save(db, &j, "old-key", 0, ""), TALLY_OK);
	assert_int_equal(db_commit(db), TALLY_OK);
	assert_int_equal(db_job_list(db, "alice", -1, 0, 10, collect_one, &c), TALLY_OK);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], 2);
	db_close(db);
	tmpdb_remove(&t);
}


/* Counts the rows of table (a trusted name) whose `where` holds, on a connection of its own
 * (the store is closed: it holds its file's lock). */
static int64_t rows(const char *path, const char *table, const char *where)
{
	sqlite3 *conn = NULL;
	sqlite3_stmt *s = NULL;
	char sql[256];
	int64_t n;

	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s", table, where);
	assert_int_equal(sqlite3_open(path, &conn), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(conn, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(conn);
	return n;
}

/* Saves job id (finished at `finished`, 0: running) under key, with two leases, a check lease
 * of the first, and a free range. */
static void save_owned_job(struct db *db, int64_t id, const char *key, int64_t finished)
{
	struct job j = make_job(id, "pi", 1000, 100);
	struct lease l = make_lease(id << 16, id, 0, 2), ck;
	struct batch_range r = { 5, 2, 0, 0 };
	uint64_t c[KERNEL_MAX_KEYS] = { 150, 200 };

	j.state = finished ? JOB_SUCCEEDED : JOB_RUNNING;
	j.finished_at = finished;
	assert_int_equal(db_job_save(db, &j, key, 4, ""), TALLY_OK);
	assert_int_equal(db_ranges_save(db, id, &r, 1), TALLY_OK);
	l.state = LEASE_DONE;
	assert_int_equal(db_lease_save(db, &l, 2500, c), TALLY_OK);
	assert_int_equal(db_check_save(db, l.id, 1), TALLY_OK);
	ck = make_lease((id << 16) + 1, id, 0, 2);
	ck.check_of = l.id;
	assert_int_equal(db_lease_save(db, &ck, 0, NULL), TALLY_OK);
	l = make_lease((id << 16) + 2, id, 2, 2);
	assert_int_equal(db_lease_save(db, &l, 0, NULL), TALLY_OK);
}

/* db_job_delete takes the job's row (its key with it), its leases, its check lease and its
 * ranges, and nothing of the other jobs; its id is never used again, even when it was the
 * highest; a missing job is TALLY_ENOTFOUND. */
static void test_delete_takes_every_row_and_nothing_else(void **state)
{
	struct fixture *f = *state;
	struct verified v = { 0 };
	struct db_loader fns = { v_job, v_range, v_check, v_opinion, v_lease, v_quarantine, &v };
	struct job g;
	int64_t max_job, max_lease;
	int skipped;

	assert_int_equal(db_begin(f->db), TALLY_OK);
	save_owned_job(f->db, 1, "k1", 5000);
	save_owned_job(f->db, 2, "k2", 0);
	save_owned_job(f->db, 3, "k3", 6000);
	assert_int_equal(db_quarantine_save(f->db, "liar", 7000, 3, "caught"), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);

	assert_int_equal(db_begin(f->db), TALLY_OK);
	assert_int_equal(db_job_delete(f->db, 3), TALLY_OK);
	assert_int_equal(db_job_delete(f->db, 3), TALLY_ENOTFOUND);
	assert_int_equal(db_job_delete(f->db, 99), TALLY_ENOTFOUND);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	assert_int_equal(db_job_get(f->db, 3, &g), TALLY_ENOTFOUND);
	assert_int_equal(db_job_by_key(f->db, "", "k3", &g), TALLY_ENOTFOUND);
	assert_int_equal(db_job_by_key(f->db, "", "k1", &g), TALLY_OK);
	assert_int_equal(db_load(f->db, &fns, &max_job, &max_lease, &skipped), TALLY_OK);
	assert_int_equal(max_job, 3); /* the deleted id stays used */
	db_close(f->db);
	f->db = NULL;

	assert_int_equal(rows(f->t.path, "jobs", "id = 3"), 0);
	assert_int_equal(rows(f->t.path, "leases", "job_id = 3"), 0);
	assert_int_equal(rows(f->t.path, "free_ranges", "job_id = 3"), 0);
	assert_int_equal(rows(f->t.path, "jobs", "1"), 2);
	assert_int_equal(rows(f->t.path, "leases", "job_id = 1"), 3);
	assert_int_equal(rows(f->t.path, "leases", "job_id = 2"), 3);
	assert_int_equal(rows(f->t.path, "leases", "1"), 6);
	assert_int_equal(rows(f->t.path, "free_ranges", "1"), 2);
	assert_int_equal(rows(f->t.path, "quarantine", "worker = 'liar'"), 1); /* the worker's */
	reopen(f);
}

/* Finished jobs are found by when they finished, oldest first, at most max; unfinished ones
 * never; deleting them and reclaiming gives the file's pages back. */
static void test_expired_and_reclaimed(void **state)
{
	struct fixture *f = *state;
	int64_t ids[8], pages = 0, free_pages = 0, before = 0;
	size_t n = 0;
	int more = 1;

	assert_int_equal(db_begin(f->db), TALLY_OK);
	for (int64_t id = 1; id <= 300; id++)
		save_owned_job(f->db, id, "", id % 3 ? 10000 - id : 0);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	assert_int_equal(db_jobs_expired(f->db, 9990, ids, 8, &n), TALLY_OK);
	assert_int_equal(n, 8);
	assert_int_equal(ids[0], 299); /* finished at 9701: the longest ago */
	assert_int_equal(ids[1], 298);
	assert_int_equal(ids[2], 296); /* 297 is running */
	assert_int_equal(db_jobs_expired(f->db, 9996, ids, 8, &n), TALLY_OK);
	assert_int_equal(n, 8);
	assert_int_equal(db_jobs_expired(f->db, 9700, ids, 8, &n), TALLY_OK);
	assert_int_equal(n, 0);
	assert_int_equal(db_pages(f->db, &before, &free_pages), TALLY_OK);
	assert_int_equal(db_begin(f->db), TALLY_OK);
	for (int64_t id = 1; id <= 300; id++)
		if (id % 3)
			assert_int_equal(db_job_delete(f->db, id), TALLY_OK);
	assert_int_equal(db_pages(f->db, &pages, &free_pages), TALLY_OK);
	assert_true(free_pages > 0);
	while (more)
		assert_int_equal(db_reclaim(f->db, &more), TALLY_OK);
	assert_int_equal(db_commit(f->db), TALLY_OK);
	assert_int_equal(db_pages(f->db, &pages, &free_pages), TALLY_OK);
	assert_int_equal(free_pages, 0);
	assert_true(pages < before);
	assert_int_equal(db_jobs_expired(f->db, 99999, ids, 8, &n), TALLY_OK);
	assert_int_equal(n, 0);
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
		T(test_load_keeps_unknown_kernels),
		T(test_huge_job_is_small),
		T(test_verify_rows_load_back),
		T(test_owner_rows),
		T(test_delete_takes_every_row_and_nothing_else),
		T(test_expired_and_reclaimed),
		cmocka_unit_test(test_migrates_version_3),
		cmocka_unit_test(test_migrates_version_5),
		cmocka_unit_test(test_open_rejects_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
