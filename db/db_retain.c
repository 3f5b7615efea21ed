/* Retention in the store: deleting a finished job with every row it owns, finding the jobs that
 * finished long enough ago, and handing freed pages back to the file system (incremental
 * auto-vacuum, in bounded steps). */
#include "db_int.h"

enum tally_err db_job_delete(struct db *db, int64_t id)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_LEASES_DELETE);
	enum tally_err rc;

	/* Children first: leases and free ranges reference the job (foreign keys are on). */
	sqlite3_bind_int64(s, 1, id);
	if ((rc = db_exec(db, s, "deleting a job's leases")))
		return rc;
	s = db_stmt(db, ST_RANGE_DROP_JOB);
	sqlite3_bind_int64(s, 1, id);
	if ((rc = db_exec(db, s, "deleting a job's free ranges")))
		return rc;
	s = db_stmt(db, ST_JOB_DELETE);
	sqlite3_bind_int64(s, 1, id);
	if ((rc = db_exec(db, s, "deleting a job")))
		return rc;
	if (!sqlite3_changes(db->conn))
		return TALLY_ENOTFOUND;
	s = db_stmt(db, ST_JOB_ID_KEEP);
	sqlite3_bind_int64(s, 1, id);
	return db_exec(db, s, "keeping a deleted job's id");
}

enum tally_err db_jobs_expired(struct db *db, int64_t before, int64_t *ids, size_t max,
			       size_t *n)
{
	sqlite3_stmt *s = db_stmt(db, ST_JOB_EXPIRED);
	int step = SQLITE_DONE;

	*n = 0;
	sqlite3_bind_int64(s, 1, before);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	while (*n < max && (step = sqlite3_step(s)) == SQLITE_ROW)
		ids[(*n)++] = sqlite3_column_int64(s, 0);
	if (*n == max)
		step = SQLITE_DONE; /* LIMIT max: nothing more was to come */
	return db_step_end(db, s, step, TALLY_OK, "finding expired jobs");
}

/* Reads one integer pragma into *out. */
static enum tally_err pragma_int(struct db *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	enum tally_err rc = TALLY_OK;

	if (sqlite3_prepare_v2(db->conn, sql, -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		rc = db_error(db, "reading the file's pages");
	else
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc;
}

enum tally_err db_pages(struct db *db, int64_t *pages, int64_t *free_pages)
{
	enum tally_err rc = pragma_int(db, "PRAGMA page_count", pages);
	return rc ? rc : pragma_int(db, "PRAGMA freelist_count", free_pages);
}

enum tally_err db_reclaim(struct db *db, int *more)
{
	sqlite3_stmt *s = db_stmt(db, ST_RECLAIM);
	int64_t pages = 0, free_pages = 0;
	enum tally_err rc;
	int step;

	*more = 0;
	if (db_injected(db, DB_FAIL_WRITE, "reclaiming free pages"))
		return TALLY_EDB;
	/* The pragma yields a row per page it frees: it runs to the end only when stepped so. */
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		;
	if ((rc = db_step_end(db, s, step, TALLY_OK, "reclaiming free pages")))
		return rc;
	if (!(rc = db_pages(db, &pages, &free_pages)))
		*more = free_pages > 0;
	return rc;
}
