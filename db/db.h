/* The store: the only code that includes sqlite3.h. An opaque struct db owns one connection and
 * its prepared statements. The coordinator keeps live state in memory and writes it behind:
 * db_begin, then saves of whatever changed, then db_commit, so the file always holds one
 * consistent moment. At start it loads the unfinished jobs and live leases back (db_load).
 * Finished jobs and leases are read from here. Not thread-safe: one caller at a time (the HTTP
 * layer's event-loop thread). Functions that fail with TALLY_EDB leave a message for
 * db_errmsg(). Batch state is kept as ranges, so a job's size never changes its row count. */
#ifndef TALLY_DB_H
#define TALLY_DB_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "job.h"

struct db;

/* Opens (creating if needed) the database at path, in WAL mode, and migrates its schema.
 * On failure returns TALLY_EDB (or TALLY_ENOMEM) and writes why into err; *out is untouched. */
TALLY_WUR enum tally_err db_open(const char *path, struct db **out, char *err, size_t errlen);
/* Finalizes every statement and closes. Accepts NULL. */
void db_close(struct db *db);
/* Returns the last storage error message, borrowed until the next call. */
const char *db_errmsg(struct db *db);

/* Starts the write transaction, unless one is open. TALLY_EDB when the open one was rolled back
 * by SQLite itself (everything written into it is gone). */
TALLY_WUR enum tally_err db_begin(struct db *db);
/* Commits it (nothing to do when none is open). On failure it is rolled back: nothing since
 * db_begin happened. */
TALLY_WUR enum tally_err db_commit(struct db *db);
/* Undoes everything since db_begin. */
void db_rollback(struct db *db);

/* Saves (inserts or updates) a job row with its bookkeeping: next_batch (batches [0, next_batch)
 * handed out at least once) and the last failure reason. key (the submit's Idempotency-Key, ""
 * for none; unique per owner) and the owner are written when the row is inserted. Inside
 * db_begin/db_commit. */
TALLY_WUR enum tally_err db_job_save(struct db *db, const struct job *job, const char *key,
				     uint64_t next_batch, const char *last_failure);
/* Replaces a job's free (given-back) ranges with ranges[0..n). Inside db_begin/db_commit. */
TALLY_WUR enum tally_err db_ranges_save(struct db *db, int64_t job_id,
					const struct batch_range *ranges, size_t n);
/* Saves (inserts or updates) a lease; finished_at is 0 while it is live; counts (NULL: none, or
 * unchanged) are a done lease's. Inside db_begin/db_commit. */
TALLY_WUR enum tally_err db_lease_save(struct db *db, const struct lease *lease,
				       int64_t finished_at, const uint64_t *counts);
/* Records the state of the check of lease lease_id (enum live_check_state) on its row. */
TALLY_WUR enum tally_err db_check_save(struct db *db, int64_t lease_id, int state);
/* Records that worker was quarantined at `at` by a check of job job_id (0: none), for reason.
 * A worker already recorded keeps its first record. */
TALLY_WUR enum tally_err db_quarantine_save(struct db *db, const char *worker, int64_t at,
					    int64_t job_id, const char *reason);
/* What the result walks call per done lease, with its counts (the lease is borrowed for the
 * call). A return other than TALLY_OK stops the walk, which returns it. */
typedef enum tally_err (*db_result_fn)(void *ctx, const struct lease *l, const uint64_t *counts);
/* Calls each(ctx, lease, counts) for every done lease of worker with id >= since in an
 * unfinished job whose counts are known, by id. TALLY_EDB, or what each returned. */
TALLY_WUR enum tally_err db_worker_results(struct db *db, const char *worker, int64_t since,
					   db_result_fn each, void *ctx);
/* Calls each for every done lease of a job (not checks) with its counts, oldest first.
 * TALLY_EDB, or what each returned. */
TALLY_WUR enum tally_err db_job_results(struct db *db, int64_t job_id, db_result_fn each,
					void *ctx);
/* Reads and writes a named integer (the store's own settings and counters). db_meta_get
 * leaves *value alone when name is unset. */
TALLY_WUR enum tally_err db_meta_get(struct db *db, const char *name, int64_t *value);
TALLY_WUR enum tally_err db_meta_set(struct db *db, const char *name, int64_t value);

/* What db_load hands over, in order: every unfinished job with a kernel this build has
 * (ascending id), every free range of those, every done lease whose check is pending, with its
 * counts, every done check lease of those (its opinion), every live lease (lease.spec is not
 * filled), every quarantined worker. Checks come for finished jobs too: the callee skips them.
 * Arguments are borrowed for the call. A return other than TALLY_OK stops the load and is
 * returned. */
struct db_loader {
	enum tally_err (*job)(void *ctx, const struct job *job, uint64_t next_batch,
			      const char *last_failure);
	enum tally_err (*range)(void *ctx, int64_t job_id, const struct batch_range *range);
	db_result_fn check;   /* a done lease whose check is pending, with its counts */
	db_result_fn opinion; /* a done check lease of one of those, with its counts */
	enum tally_err (*lease)(void *ctx, const struct lease *lease);
	enum tally_err (*quarantine)(void *ctx, const char *worker, const char *reason,
				     int64_t at);
	void *ctx;
};
/* Loads live state through l. Sets *max_job_id and *max_lease_id to the highest ids stored and
 * *skipped to the unfinished jobs left out because this build lacks their kernel. */
TALLY_WUR enum tally_err db_load(struct db *db, const struct db_loader *l, int64_t *max_job_id,
				 int64_t *max_lease_id, int *skipped);

/* A job read from the store borrows its params and error from db until the next job is read. */
/* Reads job id as stored. TALLY_ENOTFOUND. */
TALLY_WUR enum tally_err db_job_get(struct db *db, int64_t id, struct job *out);
/* Reads the job owner submitted with Idempotency-Key key. TALLY_ENOTFOUND. */
TALLY_WUR enum tally_err db_job_by_key(struct db *db, const char *owner, const char *key,
				       struct job *out);
/* Calls each(ctx, job) (job borrowed for the call) for up to limit jobs with id < before (0: no
 * bound), newest first, only those of owner when owner is not NULL, only those in `state` when
 * state >= 0. A return other than TALLY_OK stops the walk and is returned; TALLY_EDB,
 * TALLY_ENOMEM. */
TALLY_WUR enum tally_err db_job_list(struct db *db, const char *owner, int state,
				     int64_t before, size_t limit,
				     enum tally_err (*each)(void *ctx, const struct job *job),
				     void *ctx);
/* Counts the stored jobs by state: counts[enum job_state]. */
TALLY_WUR enum tally_err db_job_counts(struct db *db, uint64_t counts[5]);
/* Reads lease id (with its job's spec) as stored. TALLY_ENOTFOUND. */
TALLY_WUR enum tally_err db_lease_get(struct db *db, int64_t id, struct lease *out);
/* Retention (db_retain.c). Deleted rows leave free pages; the file is in incremental
 * auto-vacuum (set at open, see db_open), so db_reclaim hands them back to the file system in
 * bounded steps. */
#define DB_RECLAIM_PAGES 256 /* pages db_reclaim gives back at most, per call */
/* Deletes job id and every row it owns: its leases (check leases too) and free ranges; its
 * Idempotency-Key is a column of its row. Its id is remembered, so that it is never used again.
 * Quarantine records that name it stay (they are the worker's). Inside db_begin/db_commit.
 * TALLY_ENOTFOUND, TALLY_EDB. */
TALLY_WUR enum tally_err db_job_delete(struct db *db, int64_t id);
/* Fills ids[0..*n) with up to max finished jobs (succeeded, failed or cancelled) whose
 * finished_at is before `before` (ms since the epoch), the longest finished first. TALLY_EDB. */
TALLY_WUR enum tally_err db_jobs_expired(struct db *db, int64_t before, int64_t *ids, size_t max,
					 size_t *n);
/* Gives up to DB_RECLAIM_PAGES free pages back (PRAGMA incremental_vacuum): the file shrinks at
 * the next checkpoint. Sets *more to 1 when free pages are left. TALLY_EDB. */
TALLY_WUR enum tally_err db_reclaim(struct db *db, int *more);
/* Returns the file's size in pages and its free pages, for tests and benchmarks. TALLY_EDB. */
TALLY_WUR enum tally_err db_pages(struct db *db, int64_t *pages, int64_t *free_pages);

/* Runs a trivial read: TALLY_OK while the file can be read. */
TALLY_WUR enum tally_err db_check(struct db *db);

/* Tests only: makes the next call of each kind in what (DB_FAIL_* bits) fail with TALLY_EDB, as a
 * full disk would (a failed commit rolls back). Each kind fails once, then works again. Product
 * code never calls it. */
#define DB_FAIL_WRITE 1u  /* the next statement that writes (BEGIN and saves; not COMMIT) */
#define DB_FAIL_COMMIT 2u /* the next db_commit with a transaction open */
#define DB_FAIL_LOAD 4u   /* the next db_load */
void db_fail_next(struct db *db, unsigned what);

#endif
