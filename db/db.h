/* The store: the only code that includes sqlite3.h. An opaque struct db owns one connection and
 * its prepared statements; each function is one query or one transaction. Not thread-safe: its
 * callers take turns (the HTTP layer's app lock serializes handlers and the committer). Functions that fail with TALLY_EDB leave a message for
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

/* Group commit. With it on, the writes of many operations share one transaction (each its own
 * savepoint, so a failed operation still undoes only itself) until db_flush() commits it: the
 * caller must not report any of them done before that. Off by default. */
void db_set_group(struct db *db, int on);
/* Returns 1 when writes are waiting for db_flush(). */
int db_dirty(const struct db *db);
/* Commits the shared transaction. On failure every operation since the last flush is undone
 * and TALLY_EDB returned. Nothing to do (TALLY_OK) when nothing was written. */
TALLY_WUR enum tally_err db_flush(struct db *db);

/* Inserts a new queued job and fills *out with it. */
TALLY_WUR enum tally_err db_job_insert(struct db *db, const struct job_spec *spec, int64_t now,
				       struct job *out);
/* Reads job id into *out. TALLY_ENOTFOUND when there is none. */
TALLY_WUR enum tally_err db_job_get(struct db *db, int64_t id, struct job *out);
/* Calls each(ctx, job) for up to limit jobs with id < before (0: no bound), newest first, only
 * those in state `state` unless state < 0. A non-zero return from each stops the walk. */
TALLY_WUR enum tally_err db_job_list(struct db *db, int state, int64_t before, size_t limit,
				     int (*each)(void *ctx, const struct job *job), void *ctx);
/* Cancels a queued or running job: its live leases become lost, its pending batches are dropped.
 * Fills *out. TALLY_ECONFLICT when it already succeeded or failed (then *out is filled too);
 * cancelling a cancelled job succeeds. */
TALLY_WUR enum tally_err db_job_cancel(struct db *db, int64_t id, int64_t now, struct job *out);

/* Chooses how many batches a lease on job gets, from 1 to remaining. */
typedef uint64_t (*db_size_fn)(void *ctx, const struct job *job, uint64_t remaining);

/* In one transaction: returns expired leases' batches to pending, picks the oldest queued or
 * running job whose kernel is in kernels[0..nkernels) and that has pending batches, and leases
 * the next contiguous pending range of it (sized by size()) to worker until now + ttl_ms.
 * *reaped counts the expired leases reclaimed on the way (also on TALLY_ENOTFOUND).
 * TALLY_ENOTFOUND when no job has work for this worker. */
TALLY_WUR enum tally_err db_lease_acquire(struct db *db, const char *worker,
					  const char *const *kernels, size_t nkernels, int64_t now,
					  int64_t ttl_ms, db_size_fn size, void *ctx,
					  struct lease *out, int *reaped);
/* Reads lease id (with its job's spec) into *out. TALLY_ENOTFOUND when there is none. */
TALLY_WUR enum tally_err db_lease_get(struct db *db, int64_t id, struct lease *out);
/* Extends a live lease to now + ttl_ms and fills *out. TALLY_ELOST when it is no longer live
 * (*out still filled), TALLY_ENOTFOUND when there is no such lease. */
TALLY_WUR enum tally_err db_lease_heartbeat(struct db *db, int64_t id, int64_t now, int64_t ttl_ms,
					    struct lease *out);
/* In one transaction: marks a live lease done, adds counts[] (the kernel's key order) and its
 * samples to its job, and finishes the job when its last batch is done. *duplicate is set to 1
 * (and nothing changes) when the lease was already completed. TALLY_ELOST when the lease was
 * reclaimed, failed or cancelled; TALLY_ECOUNTS when a total would overflow. *finished is set
 * when this complete finished the job. */
TALLY_WUR enum tally_err db_lease_complete(struct db *db, int64_t id, const uint64_t *counts,
					   int64_t now, int *duplicate, int *finished);
/* Gives a live lease's batches back to pending and records reason on its job.
 * TALLY_ELOST when it is not live. */
TALLY_WUR enum tally_err db_lease_fail(struct db *db, int64_t id, const char *reason, int64_t now);
/* Returns the batches of every lease that expired at or before now to pending; *reaped counts
 * the leases. */
TALLY_WUR enum tally_err db_reap(struct db *db, int64_t now, int *reaped);
/* Sets *out to the earliest expiry among live leases, or 0 when there are none. */
TALLY_WUR enum tally_err db_next_expiry(struct db *db, int64_t *out);

#endif
