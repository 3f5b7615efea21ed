/* Live state: the coordinator's working copy, in memory, of every unfinished job (its counts, its
 * batch bookkeeping, its given-back ranges) and every live lease. All lease logic is here: which
 * batches a grant takes, what a complete, fail, heartbeat, expiry or cancel does. Nothing here
 * touches the store; each change marks what it changed dirty, and the coordinator writes the
 * dirty objects behind (coord_flush), after which finished leases and jobs leave memory.
 *
 * Batch bookkeeping, per job: batches [0, next_batch) have been handed out at least once;
 * [next_batch, batches_total) are fresh. Handed-out batches are done (batches_done), in a live
 * lease (batches_leased), or in the job's free ranges after a lease expired or failed.
 *
 * Poison batches: batches given back by a lease that failed (a fail with fault, or an expiry)
 * carry the count of such leases, f, and are leased at most count >> f at a time: each failure
 * halves the leases around a bad batch until it is leased alone. A one-batch lease that fails is
 * a strike against its batch; at max_failures strikes the job fails, naming the batch. Random
 * worker deaths rarely hit the same batch alone that often: one-batch leases are short.
 *
 * Lease ids are (seq << LIVE_ID_RANDOM_BITS) | random bits: they increase (so the store appends)
 * and cannot be guessed from one's own. seq never passes the limit the coordinator has made
 * durable, so an id handed out before a crash is never handed out again after it.
 *
 * Pure C: time comes in as arguments, randomness from a seed given at creation. Not thread-safe. */
#ifndef TALLY_LIVE_H
#define TALLY_LIVE_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "job.h"

#define LIVE_ID_RANDOM_BITS 16
#define LIVE_SEQ_MAX (1ULL << (53 - LIVE_ID_RANDOM_BITS)) /* ids stay below 2^53 */
#define LIVE_REASON_MAX 201                                /* a fail reason, with the NUL */

struct live;

/* Decides a grant's size: from 1 to remaining (the policy's choice). */
typedef uint64_t (*live_size_fn)(void *ctx, const struct job *job, uint64_t remaining);

/* What the coordinator writes behind: a job row (with its bookkeeping), and its free ranges
 * when ranges_changed. The pointers are borrowed until live_written(). */
struct live_job_row {
	const struct job *job;
	const char *key; /* the submit's Idempotency-Key; "" when none (or loaded) */
	uint64_t next_batch;
	const char *last_failure; /* "" when none */
	const struct batch_range *free;
	size_t nfree;
	int ranges_changed;
};

/* A lease row: the lease, and when it finished (0: live). */
struct live_lease_row {
	const struct lease *lease;
	int64_t finished_at;
};

/* Returns a new, empty live state drawing id bits from rand_seed, or NULL when out of memory.
 * A batch that has been in max_failures failed leases fails its job (0: never). */
struct live *live_new(uint64_t rand_seed, unsigned max_failures);
void live_free(struct live *lv);
/* Forgets everything (after a failed write, before loading the store again). */
void live_clear(struct live *lv);

/* Loading from the store, in this order: jobs (unfinished, ascending id), their free ranges,
 * live leases. Loaded objects are clean. TALLY_ENOMEM. */
TALLY_WUR enum tally_err live_load_job(struct live *lv, const struct job *job,
				       uint64_t next_batch, const char *last_failure);
TALLY_WUR enum tally_err live_load_range(struct live *lv, int64_t job_id,
					 const struct batch_range *r);
TALLY_WUR enum tally_err live_load_lease(struct live *lv, const struct lease *lease);
/* Sets the next job id (one past the store's highest). */
void live_set_next_job_id(struct live *lv, int64_t id);

/* Lease id sequence: the next seq, and the limit it may not reach (durable in the store). */
uint64_t live_seq_next(const struct live *lv);
uint64_t live_seq_limit(const struct live *lv);
void live_set_seq(struct live *lv, uint64_t next, uint64_t limit);

/* Adds a queued job with the next id, under key (may be NULL; at most JOB_KEY_MAX - 1 bytes),
 * and fills *out. TALLY_ENOMEM. */
TALLY_WUR enum tally_err live_submit(struct live *lv, const struct job_spec *spec, const char *key,
				     int64_t now, struct job *out);
/* Returns the job submitted under key since the last load, or NULL. */
const struct job *live_job_by_key(const struct live *lv, const char *key);
/* Returns job id when it is in memory (unfinished, or finished and not yet written), or NULL. */
const struct job *live_job(const struct live *lv, int64_t id);
/* Cancels job id: its live leases become cancelled and its pending batches are dropped. Fills
 * *out. TALLY_ENOTFOUND when not in memory; TALLY_ECONFLICT when it succeeded or failed. */
TALLY_WUR enum tally_err live_cancel(struct live *lv, int64_t id, int64_t now, struct job *out);

/* Reclaims the leases whose expiry is <= now: their batches go back to pending (an expiry is a
 * failure). Returns how many; *failed_jobs counts the jobs this failed (may be NULL). */
int live_reap(struct live *lv, int64_t now, int *failed_jobs);
/* Grants worker the next range of the oldest unfinished job with pending batches whose kernel is
 * one of kernels[], sized by size(ctx, ...), live until now + ttl_ms. Returned ranges come
 * first, lowest batch first. TALLY_ENOTFOUND when nothing is pending; TALLY_ETOOBIG when the id
 * sequence has reached its limit; TALLY_ENOMEM. */
TALLY_WUR enum tally_err live_acquire(struct live *lv, const char *worker,
				      const char *const *kernels, size_t nkernels, int64_t now,
				      int64_t ttl_ms, live_size_fn size, void *ctx,
				      struct lease *out);
/* Returns lease id when it is in memory (live, or finished and not yet written), or NULL. */
const struct lease *live_lease(const struct live *lv, int64_t id);
/* Extends live lease id to now + ttl_ms; fills *out. TALLY_ENOTFOUND (not in memory),
 * TALLY_ELOST (not live). */
TALLY_WUR enum tally_err live_heartbeat(struct live *lv, int64_t id, int64_t now, int64_t ttl_ms,
					struct lease *out);
/* Marks live lease id done and adds counts[] (the kernel's key order) to its job, which succeeds
 * when it was the last. *finished is set then. TALLY_ENOTFOUND, TALLY_ELOST, TALLY_ECOUNTS
 * (a total would pass 2^63-1; nothing changes). */
TALLY_WUR enum tally_err live_complete(struct live *lv, int64_t id, const uint64_t *counts,
				       int64_t now, int *finished);
/* Gives live lease id's batches back and records reason on its job. With fault, the lease counts
 * as a failure of its batches, which may fail the job (*job_failed is set then; may be NULL).
 * TALLY_ENOTFOUND, TALLY_ELOST. */
TALLY_WUR enum tally_err live_fail(struct live *lv, int64_t id, const char *reason, int fault,
				   int64_t now, int *job_failed);
/* Pushes every live lease's expiry ms later (the coordinator was stalled that long, so no
 * heartbeat could be heard). */
void live_extend_all(struct live *lv, int64_t ms);
/* Calls each(ctx, lease) for every live lease. */
void live_each_lease(const struct live *lv, void (*each)(void *ctx, const struct lease *l),
		     void *ctx);
/* Returns when the first live lease expires, or 0 when none is live. */
int64_t live_next_expiry(const struct live *lv);

/* Returns 1 when anything changed since live_written(). */
int live_dirty(const struct live *lv);
/* Calls job_fn for each changed job and then lease_fn for each changed lease; stops at the first
 * non-zero return, which it returns. */
int live_each_dirty(struct live *lv, int (*job_fn)(void *ctx, const struct live_job_row *row),
		    int (*lease_fn)(void *ctx, const struct live_lease_row *row), void *ctx);
/* Marks everything clean after it was written; finished leases and jobs leave memory. */
void live_written(struct live *lv);
/* Counts of what is in memory, for tests and metrics. */
size_t live_jobs_count(const struct live *lv);
size_t live_leases_count(const struct live *lv);

#endif
