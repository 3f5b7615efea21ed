/* Inside the store: struct db, its prepared statements and the helpers the db_*.c files share.
 * Included by db/ only (it includes sqlite3.h); everything else sees the opaque struct db of
 * db.h. The files: db.c (open, schema, transactions, settings, the statement table),
 * db_jobs.c (job rows and free ranges), db_leases.c (lease, check and quarantine rows, and done
 * leases with their counts), db_load.c (the live state read back at start), db_retain.c (deleting finished jobs and giving
 * their space back). */
#ifndef TALLY_DB_INT_H
#define TALLY_DB_INT_H

#include <sqlite3.h>
#include "db.h"

/* Every statement, prepared once at open (db.c's table holds their SQL). */
enum db_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_JOB_SAVE,
	ST_JOB_GET,
	ST_JOB_BY_KEY,
	ST_JOB_LIST,
	ST_JOB_LIST_STATE,
	ST_JOB_LIST_OWNER,
	ST_JOB_LIST_OWNER_STATE,
	ST_JOB_LOAD,
	ST_JOB_MAX,
	ST_RANGE_DROP_JOB,
	ST_RANGE_INSERT,
	ST_RANGE_LOAD,
	ST_LEASE_SAVE,
	ST_LEASE_GET,
	ST_LEASE_LOAD,
	ST_LEASE_MAX,
	ST_META_GET,
	ST_META_SET,
	ST_CHECK_SAVE,
	ST_CHECK_LOAD,
	ST_OPINION_LOAD,
	ST_QUAR_SAVE,
	ST_QUAR_LOAD,
	ST_WORKER_RESULTS,
	ST_JOB_COUNTS,
	ST_JOB_RESULTS,
	ST_JOB_DELETE,
	ST_JOB_LEASES_DELETE,
	ST_JOB_ID_KEEP,
	ST_JOB_EXPIRED,
	ST_RECLAIM,
	ST_COUNT
};

/* A job row: read by db_job_from_row(). */
#define JOB_COLS                                                                                  \
	"id, kernel, samples, batch_size, seed, state, batches_total, batches_done, "              \
	"batches_leased, samples_done, c0, c1, c2, c3, c4, c5, c6, c7, error, created_at, "        \
	"started_at, finished_at, kernel_version, verify, checks_passed, checks_pending, "       \
	"mismatches, quarantined, first_lease, params, keys, target_stderr, owner, priority"
#define JOB_NCOLS 34

/* A lease with its counts: read by db_each_result(). The lease comes whole (its times too), so
 * that a caller saving it again (a discard) does not clear them. */
#define RESULT_COLS                                                                               \
	"l.id, l.job_id, l.first_batch, l.batch_count, l.worker, l.check_of, l.c0, l.c1, l.c2, "   \
	"l.c3, l.c4, l.c5, l.c6, l.c7, l.granted_at, l.expires_at, l.failures, l.strikes"

struct db {
	sqlite3 *conn;
	sqlite3_stmt *st[ST_COUNT];
	int in_tx;
	unsigned fail_next; /* DB_FAIL_* a test armed */
	char errmsg[256];
	/* The text of the last job read (db_job_from_row), which it borrows. */
	char job_params[KERNEL_PARAMS_MAX];
	char job_error[JOB_ERROR_MAX];
};

/* Records the connection's error as "what: <SQLite's message>"; returns TALLY_EDB for the
 * caller to pass on. */
enum tally_err db_error(struct db *db, const char *what);
/* Returns 1 when a test armed a failure of kind what (a DB_FAIL_* bit; db_fail_next), which is
 * then disarmed and described in errmsg as a failure of `doing`. */
int db_injected(struct db *db, unsigned what, const char *doing);
/* Returns statement which, reset and with its bindings cleared, ready to bind. Borrowed. */
sqlite3_stmt *db_stmt(struct db *db, enum db_stmt which);
/* Runs a statement that returns no rows. TALLY_EDB. */
TALLY_WUR enum tally_err db_exec(struct db *db, sqlite3_stmt *s, const char *what);
/* Ends a loop of sqlite3_step() over s that stopped at step, or at a callback's stop (TALLY_OK
 * when none): resets s and returns stop, else TALLY_EDB when step is not SQLITE_DONE. */
TALLY_WUR enum tally_err db_step_end(struct db *db, sqlite3_stmt *s, int step,
				     enum tally_err stop, const char *what);
/* Binds a time: NULL when unset (0). */
void db_bind_time(sqlite3_stmt *s, int i, int64_t t);

/* Fills *j from a row selected with JOB_COLS. A kernel this build has no code for is known by
 * name only; TALLY_EDB for a row that names no kernel, or bad count names. */
TALLY_WUR enum tally_err db_job_from_row(struct db *db, sqlite3_stmt *s, struct job *j);
/* Clears *l and fills what every lease query selects first: id, job_id, first_batch,
 * batch_count. */
void db_lease_head(sqlite3_stmt *s, struct lease *l);
/* Runs a bound statement selecting RESULT_COLS, calling each(ctx, lease, counts) per row.
 * TALLY_EDB, or what each returned to stop. */
TALLY_WUR enum tally_err db_each_result(struct db *db, sqlite3_stmt *s, const char *what,
					db_result_fn each, void *ctx);
/* Reads the one integer of a statement that returns one row. TALLY_EDB. */
TALLY_WUR enum tally_err db_read_one(struct db *db, enum db_stmt which, int64_t *out);

#endif
