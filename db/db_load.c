/* The live state read back from the store at start (and after a failed write): unfinished jobs,
 * their free ranges, pending checks with their opinions, live leases, quarantined workers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "db_int.h"

/* A load in progress: where rows go, and scratch space for a job row. */
struct loading {
	struct db *db;
	const struct db_loader *l;
	struct job *j;
	int *skipped;
};

/* Runs statement which, calling row(ld, s) for each row until one returns other than TALLY_OK
 * (returned). */
static enum tally_err load_rows(struct loading *ld, enum db_stmt which, const char *what,
				enum tally_err (*row)(struct loading *ld, sqlite3_stmt *s))
{
	sqlite3_stmt *s = db_stmt(ld->db, which);
	enum tally_err stop = TALLY_OK;
	int step = SQLITE_DONE;

	while (!stop && (step = sqlite3_step(s)) == SQLITE_ROW)
		stop = row(ld, s);
	return db_step_end(ld->db, s, step, stop, what);
}

/* An unfinished job; one whose kernel this build lacks is counted in *skipped instead. */
static enum tally_err job_row(struct loading *ld, sqlite3_stmt *s)
{
	const char *failure = (const char *)sqlite3_column_text(s, JOB_NCOLS + 1);
	if (db_job_from_row(ld->db, s, ld->j)) {
		(*ld->skipped)++; /* it stays as stored */
		return TALLY_OK;
	}
	return ld->l->job(ld->l->ctx, ld->j, (uint64_t)sqlite3_column_int64(s, JOB_NCOLS),
			  failure ? failure : "");
}

static enum tally_err range_row(struct loading *ld, sqlite3_stmt *s)
{
	struct batch_range r = { (uint64_t)sqlite3_column_int64(s, 1),
				 (uint64_t)sqlite3_column_int64(s, 2),
				 (unsigned)sqlite3_column_int(s, 3), (unsigned)sqlite3_column_int(s, 4) };
	return ld->l->range(ld->l->ctx, sqlite3_column_int64(s, 0), &r);
}

static enum tally_err lease_row(struct loading *ld, sqlite3_stmt *s)
{
	const char *worker = (const char *)sqlite3_column_text(s, 6);
	struct lease lease;

	db_lease_head(s, &lease);
	lease.state = LEASE_ACTIVE;
	lease.granted_at = sqlite3_column_int64(s, 4);
	lease.expires_at = sqlite3_column_int64(s, 5);
	lease.failures = (unsigned)sqlite3_column_int(s, 7);
	lease.strikes = (unsigned)sqlite3_column_int(s, 8);
	lease.check_of = sqlite3_column_int64(s, 9);
	snprintf(lease.worker, sizeof lease.worker, "%s", worker ? worker : "");
	return ld->l->lease(ld->l->ctx, &lease);
}

static enum tally_err quarantine_row(struct loading *ld, sqlite3_stmt *s)
{
	const char *worker = (const char *)sqlite3_column_text(s, 0);
	const char *reason = (const char *)sqlite3_column_text(s, 1);
	return ld->l->quarantine(ld->l->ctx, worker ? worker : "", reason ? reason : "",
				 sqlite3_column_int64(s, 2));
}

enum tally_err db_load(struct db *db, const struct db_loader *l, int64_t *max_job_id,
		       int64_t *max_lease_id, int *skipped)
{
	struct loading ld = { db, l, NULL, skipped };
	enum tally_err rc;

	*skipped = 0;
	if (db_injected(db, DB_FAIL_LOAD, "loading"))
		return TALLY_EDB;
	if (!(ld.j = t_malloc(sizeof *ld.j)))
		return TALLY_ENOMEM;
	if (!(rc = db_read_one(db, ST_JOB_MAX, max_job_id)) &&
	    !(rc = db_read_one(db, ST_LEASE_MAX, max_lease_id)) &&
	    !(rc = load_rows(&ld, ST_JOB_LOAD, "loading jobs", job_row)) &&
	    !(rc = load_rows(&ld, ST_RANGE_LOAD, "loading free ranges", range_row)) &&
	    !(rc = db_each_result(db, db_stmt(db, ST_CHECK_LOAD), "loading checks", l->check,
				  l->ctx)) &&
	    !(rc = db_each_result(db, db_stmt(db, ST_OPINION_LOAD), "loading checks", l->opinion,
				  l->ctx)) &&
	    !(rc = load_rows(&ld, ST_LEASE_LOAD, "loading leases", lease_row)))
		rc = load_rows(&ld, ST_QUAR_LOAD, "loading quarantined workers", quarantine_row);
	free(ld.j);
	return rc;
}
