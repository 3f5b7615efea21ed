/* The store's lease rows: a lease read back with its job's spec, leases saved whole, the state
 * of checks and quarantines, and the walks over done leases with their counts. */
#include <stdio.h>
#include <string.h>
#include "db_int.h"
#include "kernel.h"

void db_lease_head(sqlite3_stmt *s, struct lease *l)
{
	memset(l, 0, sizeof *l);
	l->id = sqlite3_column_int64(s, 0);
	l->job_id = sqlite3_column_int64(s, 1);
	l->first_batch = (uint64_t)sqlite3_column_int64(s, 2);
	l->batch_count = (uint64_t)sqlite3_column_int64(s, 3);
}

enum tally_err db_lease_get(struct db *db, int64_t id, struct lease *out)
{
	sqlite3_stmt *s = db_stmt(db, ST_LEASE_GET);
	enum tally_err rc = TALLY_OK;
	int step;

	sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = TALLY_ENOTFOUND;
	} else if (step != SQLITE_ROW) {
		rc = db_error(db, "reading lease");
	} else {
		const char *worker = (const char *)sqlite3_column_text(s, 7);
		const char *kernel = (const char *)sqlite3_column_text(s, 8);
		db_lease_head(s, out);
		out->state = (enum lease_state)sqlite3_column_int(s, 4);
		out->granted_at = sqlite3_column_int64(s, 5);
		out->expires_at = sqlite3_column_int64(s, 6);
		snprintf(out->worker, sizeof out->worker, "%s", worker ? worker : "");
		out->spec.kernel = kernel ? kernel_stored(kernel) : NULL;
		snprintf(out->spec.kernel_name, sizeof out->spec.kernel_name, "%s",
			 kernel ? kernel : "");
		out->spec.samples = (uint64_t)sqlite3_column_int64(s, 9);
		out->spec.batch_size = (uint64_t)sqlite3_column_int64(s, 10);
		out->spec.seed = (uint64_t)sqlite3_column_int64(s, 11);
		out->spec.kernel_version = (unsigned)sqlite3_column_int(s, 12);
		if (!out->spec.kernel) {
			snprintf(db->errmsg, sizeof db->errmsg, "lease %lld: unknown kernel",
				 (long long)id);
			rc = TALLY_EDB;
		}
	}
	sqlite3_reset(s);
	return rc;
}

enum tally_err db_lease_save(struct db *db, const struct lease *l, int64_t finished_at,
			     const uint64_t *counts)
{
	sqlite3_stmt *s = db_stmt(db, ST_LEASE_SAVE);

	sqlite3_bind_int64(s, 1, l->id);
	sqlite3_bind_int64(s, 2, l->job_id);
	sqlite3_bind_int64(s, 3, (int64_t)l->first_batch);
	sqlite3_bind_int64(s, 4, (int64_t)l->batch_count);
	sqlite3_bind_text(s, 5, l->worker, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, (int)l->state);
	sqlite3_bind_int64(s, 7, l->granted_at);
	sqlite3_bind_int64(s, 8, l->expires_at);
	db_bind_time(s, 9, finished_at);
	sqlite3_bind_int(s, 10, (int)l->failures);
	sqlite3_bind_int(s, 11, (int)l->strikes);
	if (l->check_of)
		sqlite3_bind_int64(s, 12, l->check_of);
	for (int i = 0; counts && i < KERNEL_MAX_KEYS; i++)
		sqlite3_bind_int64(s, 13 + i, (int64_t)counts[i]);
	return db_exec(db, s, "saving a lease");
}

enum tally_err db_check_save(struct db *db, int64_t lease_id, int state)
{
	sqlite3_stmt *s = db_stmt(db, ST_CHECK_SAVE);
	sqlite3_bind_int64(s, 1, lease_id);
	sqlite3_bind_int(s, 2, state);
	return db_exec(db, s, "saving a check");
}

enum tally_err db_quarantine_save(struct db *db, const char *worker, int64_t at, int64_t job_id,
				  const char *reason)
{
	sqlite3_stmt *s = db_stmt(db, ST_QUAR_SAVE);
	sqlite3_bind_text(s, 1, worker, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, at);
	if (job_id)
		sqlite3_bind_int64(s, 3, job_id);
	sqlite3_bind_text(s, 4, reason, -1, SQLITE_STATIC);
	return db_exec(db, s, "saving a quarantine");
}

/* Fills a done lease and its counts from a row selected with RESULT_COLS. */
static void lease_counts_from_row(sqlite3_stmt *s, struct lease *l, uint64_t *counts)
{
	const char *worker = (const char *)sqlite3_column_text(s, 4);
	db_lease_head(s, l);
	snprintf(l->worker, sizeof l->worker, "%s", worker ? worker : "");
	l->check_of = sqlite3_column_int64(s, 5);
	l->state = LEASE_DONE;
	for (int i = 0; i < KERNEL_MAX_KEYS; i++)
		counts[i] = (uint64_t)sqlite3_column_int64(s, 6 + i);
	l->granted_at = sqlite3_column_int64(s, 14);
	l->expires_at = sqlite3_column_int64(s, 15);
	l->failures = (unsigned)sqlite3_column_int(s, 16);
	l->strikes = (unsigned)sqlite3_column_int(s, 17);
}

enum tally_err db_each_result(struct db *db, sqlite3_stmt *s, const char *what, db_result_fn each,
			      void *ctx)
{
	struct lease l;
	uint64_t counts[KERNEL_MAX_KEYS];
	enum tally_err stop = TALLY_OK;
	int step = SQLITE_DONE;

	while (!stop && (step = sqlite3_step(s)) == SQLITE_ROW) {
		lease_counts_from_row(s, &l, counts);
		stop = each(ctx, &l, counts);
	}
	return db_step_end(db, s, step, stop, what);
}

enum tally_err db_worker_results(struct db *db, const char *worker, int64_t since,
				 db_result_fn each, void *ctx)
{
	sqlite3_stmt *s = db_stmt(db, ST_WORKER_RESULTS);
	sqlite3_bind_text(s, 1, worker, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, since);
	return db_each_result(db, s, "reading a worker's results", each, ctx);
}

enum tally_err db_job_results(struct db *db, int64_t job_id, db_result_fn each, void *ctx)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_RESULTS);
	sqlite3_bind_int64(s, 1, job_id);
	return db_each_result(db, s, "reading a job's results", each, ctx);
}
