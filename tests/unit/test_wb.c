/* Write-behind on a real SQLite file: every transition of enum wb_state, with failures injected
 * into the store (db_fail_next): a failed write, a failed commit and a failed reload, the
 * reload after each, what a crash then finds in the file, and the health probe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "db.h"
#include "live.h"
#include "tmpdb.h"
#include "wb.h"
#include "kernel.h"

#define T0 5000000
#define TIMEOUT 10000

struct fixture {
	struct tmpdb t;
	struct db *db;
	struct live *live;
	struct wb *wb;
	int reloads;
};

static void on_reloaded(void *ctx)
{
	((struct fixture *)ctx)->reloads++;
}

/* Opens the file and loads it, as a coordinator starting. */
static void start(struct fixture *f)
{
	char err[256];
	if (db_open(f->t.path, &f->db, err, sizeof err))
		fail_msg("%s", err);
	f->live = live_new(42, 0);
	f->wb = wb_new(f->db, f->live, TIMEOUT, (struct wb_hooks){ on_reloaded, f, NULL });
	assert_non_null(f->wb);
	assert_int_equal(wb_load(f->wb, T0), TALLY_OK);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
}

static void stop(struct fixture *f)
{
	wb_free(f->wb);
	live_free(f->live);
	db_close(f->db);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	tmpdb_make(&f->t);
	start(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	stop(f);
	tmpdb_remove(&f->t);
	free(f);
	return 0;
}

/* Submits a job to memory only; returns its id. */
static int64_t submit(struct fixture *f)
{
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 1000, .batch_size = 100,
				 .seed = 1, .params = "{}" };
	struct job j;
	assert_int_equal(live_submit(f->live, &spec, NULL, T0, &j), TALLY_OK);
	return j.id;
}

/* Returns 1 when the store has job id (committed, or written into the open transaction). */
static int stored(struct fixture *f, int64_t id)
{
	struct job j;
	enum tally_err rc = db_job_get(f->db, id, &j);
	assert_true(rc == TALLY_OK || rc == TALLY_ENOTFOUND);
	return rc == TALLY_OK;
}

/* A crash: memory is dropped and the file loaded again. Returns 1 when job id survived. */
static int survives_crash(struct fixture *f, int64_t id)
{
	stop(f);
	start(f);
	return live_job(f->live, id) != NULL;
}

/* CLEAN -> WRITTEN (wb_sync) -> CLEAN (wb_flush); a flush with nothing to do is CLEAN too. */
static void test_write_then_commit(void **state)
{
	struct fixture *f = *state;
	int64_t id;

	assert_int_equal(wb_dirty(f->wb), 0);
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	id = submit(f);
	assert_int_equal(wb_dirty(f->wb), 1); /* memory changed, nothing written yet */
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_int_equal(wb_sync(f->wb), TALLY_OK);
	assert_int_equal(wb_state(f->wb), WB_WRITTEN);
	assert_int_equal(wb_dirty(f->wb), 1);
	assert_true(stored(f, id)); /* the store's reads see the open transaction */
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_int_equal(wb_dirty(f->wb), 0);
	assert_int_equal(f->reloads, 0);
	assert_true(survives_crash(f, id));
}

/* WRITTEN -> a failed commit: the flush fails, memory is read back (CLEAN), and what was not
 * committed is gone from memory and file alike; the health check then probes with a write. */
static void test_reload_after_failed_commit(void **state)
{
	struct fixture *f = *state;
	int64_t kept, gone, later;

	kept = submit(f);
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	gone = submit(f);
	assert_int_equal(wb_sync(f->wb), TALLY_OK);
	db_fail_next(f->db, DB_FAIL_COMMIT);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_int_equal(f->reloads, 1);
	assert_non_null(live_job(f->live, kept));
	assert_null(live_job(f->live, gone));
	assert_false(stored(f, gone));

	/* Unhealthy until a write works: a probe that fails, none again within the second, then
	 * one that works. */
	db_fail_next(f->db, DB_FAIL_WRITE);
	assert_int_equal(wb_check(f->wb, T0), TALLY_EDB);
	assert_int_equal(wb_check(f->wb, T0 + 999), TALLY_EDB);
	assert_int_equal(wb_check(f->wb, T0 + 1000), TALLY_OK);
	assert_int_equal(wb_check(f->wb, T0 + 1001), TALLY_OK); /* healthy: a read suffices */

	/* The service goes on: ids are not handed out twice, and the next flush commits. */
	later = submit(f);
	assert_true(later > kept);
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	assert_true(survives_crash(f, kept));
	assert_true(live_job(f->live, later) != NULL);
	assert_null(live_job(f->live, gone));
}

/* A failed write mid-pass: LOST at once (memory read back); nothing more is committed in that
 * pass, and its flush fails; the pass after works. */
static void test_failed_write_loses_the_pass(void **state)
{
	struct fixture *f = *state;
	int64_t a, b, c;

	a = submit(f);
	db_fail_next(f->db, DB_FAIL_WRITE);
	assert_int_equal(wb_sync(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_LOST);
	assert_int_equal(f->reloads, 1);
	assert_null(live_job(f->live, a));
	b = submit(f);
	assert_int_equal(wb_commit(f->wb), TALLY_EDB); /* would commit what the flush must undo */
	assert_int_equal(wb_sync(f->wb), TALLY_OK);     /* written, and still lost */
	assert_int_equal(wb_state(f->wb), WB_LOST);
	assert_int_equal(wb_dirty(f->wb), 1);
	assert_int_equal(wb_check(f->wb, T0), TALLY_OK); /* no flush failed yet: a read */
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_int_equal(f->reloads, 2);
	assert_false(stored(f, b)); /* rolled back */
	c = submit(f);
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	assert_true(survives_crash(f, c));
	assert_null(live_job(f->live, b));
}

/* wb_lose (memory half changed) and wb_read_failed (a read that may have rolled back the open
 * transaction) make the flush fail; a failed read with nothing written does not. */
static void test_lose_and_read_failed(void **state)
{
	struct fixture *f = *state;
	int64_t a, b;

	a = submit(f);
	wb_read_failed(f->wb);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_int_equal(wb_sync(f->wb), TALLY_OK);
	wb_read_failed(f->wb);
	assert_int_equal(wb_state(f->wb), WB_LOST);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_null(live_job(f->live, a));

	b = submit(f);
	wb_lose(f->wb);
	assert_int_equal(wb_state(f->wb), WB_LOST);
	assert_int_equal(wb_dirty(f->wb), 1);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_null(live_job(f->live, b));
	assert_false(survives_crash(f, b));
}

/* wb_commit mid-pass: CLEAN after it; a failed one is LOST (BROKEN_LOST when the reload fails
 * too), and the flush of that pass fails. */
static void test_commit_mid_pass(void **state)
{
	struct fixture *f = *state;
	int64_t a, b;

	a = submit(f);
	assert_int_equal(wb_commit(f->wb), TALLY_OK);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_int_equal(wb_dirty(f->wb), 0);
	b = submit(f);
	db_fail_next(f->db, DB_FAIL_COMMIT | DB_FAIL_LOAD);
	assert_int_equal(wb_commit(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_BROKEN_LOST);
	assert_int_equal(wb_broken(f->wb), 1);
	assert_int_equal(live_jobs_count(f->live), 0); /* memory is empty */
	assert_int_equal(wb_commit(f->wb), TALLY_EDB);
	/* The store answers again: read back, and the pass still fails. */
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_non_null(live_job(f->live, a));
	assert_null(live_job(f->live, b));
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
}

/* A failed commit whose reload fails too: BROKEN, memory empty, every flush fails until a
 * reload works; then CLEAN, and the flush that did it succeeds (it had already failed). */
static void test_broken_until_the_store_answers(void **state)
{
	struct fixture *f = *state;
	int64_t a, b;

	a = submit(f);
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	b = submit(f);
	db_fail_next(f->db, DB_FAIL_COMMIT | DB_FAIL_LOAD);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_BROKEN);
	assert_int_equal(wb_dirty(f->wb), 1);
	assert_int_equal(live_jobs_count(f->live), 0);
	db_fail_next(f->db, DB_FAIL_LOAD);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_BROKEN);
	assert_int_equal(f->reloads, 0); /* the hook is told of reloads that worked only */
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_int_equal(f->reloads, 1);
	assert_non_null(live_job(f->live, a));
	assert_null(live_job(f->live, b));

	/* Broken again, repaired by the health check this time. */
	b = submit(f);
	db_fail_next(f->db, DB_FAIL_COMMIT | DB_FAIL_LOAD);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_BROKEN);
	db_fail_next(f->db, DB_FAIL_LOAD);
	assert_int_equal(wb_check(f->wb, T0), TALLY_EDB);
	assert_int_equal(wb_check(f->wb, T0), TALLY_OK); /* read back, and a probe write worked */
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_non_null(live_job(f->live, a));
}

/* A mid-pass failure whose reload fails: BROKEN_LOST. A repair (the health check) leaves it LOST,
 * so the pass's flush still fails; wb_lose in BROKEN is BROKEN_LOST too. */
static void test_broken_lost(void **state)
{
	struct fixture *f = *state;
	int64_t a;

	a = submit(f);
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	submit(f);
	db_fail_next(f->db, DB_FAIL_WRITE | DB_FAIL_LOAD);
	assert_int_equal(wb_sync(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_BROKEN_LOST);
	assert_int_equal(wb_check(f->wb, T0), TALLY_OK); /* read back; no flush failed yet */
	assert_int_equal(wb_state(f->wb), WB_LOST);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_non_null(live_job(f->live, a));

	db_fail_next(f->db, DB_FAIL_COMMIT | DB_FAIL_LOAD);
	submit(f);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_int_equal(wb_state(f->wb), WB_BROKEN);
	wb_lose(f->wb);
	assert_int_equal(wb_state(f->wb), WB_BROKEN_LOST);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB); /* read back: LOST, so this flush fails */
	assert_int_equal(wb_state(f->wb), WB_CLEAN);
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
}

/* Lease ids: a new block is reserved with the changes when half of the current one is used,
 * and takes effect only once committed; a failed commit keeps the ids already handed out. */
static void test_lease_ids_reserved_in_committed_blocks(void **state)
{
	struct fixture *f = *state;
	uint64_t limit = live_seq_limit(f->live), next;

	live_set_seq(f->live, limit - 10, limit);
	assert_int_equal(wb_sync(f->wb), TALLY_OK); /* nothing changed, but ids are needed */
	assert_int_equal(wb_state(f->wb), WB_WRITTEN);
	assert_true(live_seq_limit(f->live) == limit); /* not committed yet */
	db_fail_next(f->db, DB_FAIL_COMMIT);
	assert_int_equal(wb_flush(f->wb), TALLY_EDB);
	assert_true(live_seq_next(f->live) == limit - 10); /* handed out before: never again */
	assert_true(live_seq_limit(f->live) == limit);
	assert_int_equal(wb_flush(f->wb), TALLY_OK);
	next = live_seq_next(f->live);
	assert_true(live_seq_limit(f->live) > limit);
	limit = live_seq_limit(f->live);
	/* After a crash, ids start above the committed limit. */
	stop(f);
	start(f);
	assert_true(live_seq_next(f->live) >= limit);
	assert_true(live_seq_next(f->live) > next);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_write_then_commit),
		T(test_reload_after_failed_commit),
		T(test_failed_write_loses_the_pass),
		T(test_lose_and_read_failed),
		T(test_commit_mid_pass),
		T(test_broken_until_the_store_answers),
		T(test_broken_lost),
		T(test_lease_ids_reserved_in_committed_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
