/* Live state: the coordinator's working copy, in memory, of every unfinished job (its counts, its
 * batch bookkeeping, its given-back ranges) and every live lease. All lease logic is here: which
 * job a grant serves (fair.h) and which of its batches it takes, what a complete, fail,
 * heartbeat, expiry or cancel does. Nothing here
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
 * Verification: a job with spec.verify > 0 has that fraction of its completed leases (chosen at
 * random) checked: a check lease on the same batches goes to a worker that has given no opinion
 * on them yet, and its counts are compared, never added. Batches are deterministic, so equal
 * counts pass the check; a disagreement calls for one more worker's opinion, until two agree
 * (at most LIVE_OPINIONS_MAX opinions; past that the job fails). Every worker that disagreed
 * with the agreed counts is quarantined: it gets no more leases, its live leases are taken
 * back, and the coordinator discards its done leases in unfinished jobs (live_discard), whose
 * batches are then computed again. A job with pending checks does not finish.
 *
 * Lease ids are (seq << LIVE_ID_RANDOM_BITS) | random bits: they increase (so the store appends).
 * seq never passes the limit the coordinator has made durable, so an id handed out before a crash
 * is never handed out again after it. An id is no secret: what makes a lease its worker's is the
 * tag the coordinator gives it on the wire (coord.h, coord_lease_tag).
 *
 * Pure C: time comes in as arguments, randomness from a seed given at creation. Not thread-safe.
 * The parts, each with its own header and test: ranges.h (free ranges, the poison rule),
 * stop.h (prefix segments), leasetab.h (leases by id and expiry), jobtab.h (jobs and their
 * batches; fair.h, the scheduler over them), verify.h (checks, opinions, quarantine), spec.h
 * (speculative copies of the leases a job waits for last). */
#ifndef TALLY_LIVE_H
#define TALLY_LIVE_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "fair.h"   /* struct fair_flow_info */
#include "job.h"
#include "owners.h" /* struct owner_tally */
#include "passover.h" /* struct passover_worker */
#include "stop.h"   /* STOP_MIN_SAMPLES */
#include "verify.h" /* enum live_check_state; VERIFY_OPINIONS_MAX, VERIFY_REASON_MAX */

#define LIVE_STOP_MIN_SAMPLES STOP_MIN_SAMPLES /* the smallest prefix an early stop is decided on */
#define LIVE_ID_RANDOM_BITS 16
#define LIVE_SEQ_MAX (1ULL << (53 - LIVE_ID_RANDOM_BITS)) /* ids stay below 2^53 */
#define LIVE_REASON_MAX 201                                /* a fail reason, with the NUL */
#define LIVE_OPINIONS_MAX VERIFY_OPINIONS_MAX /* opinions a check gathers, its lease's own first */
#define LIVE_QUARANTINE_REASON_MAX VERIFY_REASON_MAX

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

/* A lease row: the lease, when it finished (0: live), and its counts when it is done (NULL
 * otherwise). */
struct live_lease_row {
	const struct lease *lease;
	int64_t finished_at;
	const uint64_t *counts;
};

/* A check's new state, kept on the checked lease's row (written after the lease rows). */
struct live_check_row {
	int64_t lease_id;
	enum live_check_state state;
};

/* A worker quarantined: caught at `at` by a check of job job_id, for reason. */
struct live_quarantine_row {
	const char *worker;
	const char *reason;
	int64_t at;
	int64_t job_id;
};

/* The writer live_each_dirty() calls, in this order: jobs, leases, checks, quarantines. A
 * return other than TALLY_OK stops the walk. */
struct live_writer {
	enum tally_err (*job)(void *ctx, const struct live_job_row *row);
	enum tally_err (*lease)(void *ctx, const struct live_lease_row *row);
	enum tally_err (*check)(void *ctx, const struct live_check_row *row);
	enum tally_err (*quarantine)(void *ctx, const struct live_quarantine_row *row);
	void *ctx;
};

/* Returns a new, empty live state drawing id bits from rand_seed, or NULL when out of memory.
 * A batch that has been in max_failures failed leases fails its job (0: never). */
struct live *live_new(uint64_t rand_seed, unsigned max_failures);
void live_free(struct live *lv);
/* Forgets everything (after a failed write, before loading the store again). */
void live_clear(struct live *lv);

/* Loading from the store, in this order: jobs (unfinished, ascending id), their free ranges,
 * pending checks (the checked lease and its counts), the opinions given on them so far (done
 * check leases), live leases, quarantined workers. Loaded objects are clean. TALLY_ENOMEM. */
TALLY_WUR enum tally_err live_load_job(struct live *lv, const struct job *job,
				       uint64_t next_batch, const char *last_failure);
/* Adds a done lease's counts (db_job_results) to its early-stopping job's prefix segments: for a
 * job just loaded, never for one whose leases completed here. */
void live_load_result(struct live *lv, const struct lease *done, const uint64_t *counts);
/* Returns the id of the next unfinished job after `after` that stops early, or 0. */
int64_t live_next_stopping_job(const struct live *lv, int64_t after);
/* Grows job id to `samples` (more than it has). A short last batch is computed again: a live
 * lease on it is taken back, and done_last (the done lease holding it, with done_counts; NULL
 * when none) is discarded. A succeeded job runs again, unless it stopped early: a job of the
 * new size would stop at the same prefix. TALLY_ENOTFOUND (not in memory), TALLY_ECONFLICT
 * (failed or cancelled), TALLY_EINVAL (not larger), TALLY_ENOMEM. */
TALLY_WUR enum tally_err live_extend(struct live *lv, int64_t id, uint64_t samples,
				     const struct lease *done_last, const uint64_t *done_counts,
				     int64_t now, struct job *out);
TALLY_WUR enum tally_err live_load_range(struct live *lv, int64_t job_id,
					 const struct batch_range *r);
TALLY_WUR enum tally_err live_load_check(struct live *lv, const struct lease *checked,
					 const uint64_t *counts);
TALLY_WUR enum tally_err live_load_opinion(struct live *lv, const struct lease *check,
					   const uint64_t *counts);
TALLY_WUR enum tally_err live_load_lease(struct live *lv, const struct lease *lease);
TALLY_WUR enum tally_err live_load_quarantine(struct live *lv, const char *worker,
					      const char *reason, int64_t at);
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
/* Returns the reason of the last failed lease of unfinished job id (in memory), or NULL. */
const char *live_last_failure(const struct live *lv, int64_t id);
/* Cancels job id: its live leases become cancelled and its pending batches are dropped. Fills
 * *out. TALLY_ENOTFOUND when not in memory; TALLY_ECONFLICT when it succeeded or failed. */
TALLY_WUR enum tally_err live_cancel(struct live *lv, int64_t id, int64_t now, struct job *out);

/* Reclaims the leases whose expiry is <= now: their batches go back to pending (an expiry is a
 * failure). Returns how many; *failed_jobs counts the jobs this failed (may be NULL). */
int live_reap(struct live *lv, int64_t now, int *failed_jobs);
/* Grants worker a range of the job the scheduler chooses (fair.h: the highest priority, then
 * an equal share per owner and per job of an owner) among the unfinished jobs with pending
 * batches whose kernel is one of kernels[], sized by size(ctx, ...), live until now + ttl_ms,
 * and charges the job for it. Returned ranges come first, lowest batch first; within a job,
 * checks this worker can give an opinion on come before batches, unless they are larger than
 * max_batches (0: no cap; the size policy caps ordinary grants). The jobs of skip (may be NULL)
 * are passed over: the worker cannot run them (server/passover.h; at most PASSOVER_JOBS_MAX, each
 * looked up in O(1) expected, so they add at most that many steps to the choice).
 * TALLY_ENOTFOUND when nothing is pending; TALLY_EFORBIDDEN when worker is quarantined;
 * TALLY_ETOOBIG when the id sequence has reached its limit; TALLY_ENOMEM. */
TALLY_WUR enum tally_err live_acquire(struct live *lv, const char *worker,
				      const char *const *kernels, size_t nkernels,
				      uint64_t max_batches, const struct passover_worker *skip,
				      int64_t now, int64_t ttl_ms, live_size_fn size, void *ctx,
				      struct lease *out);
/* Returns worker's rate in samples/s (> 0: measured, or a default). */
typedef double (*live_rate_fn)(void *ctx, const char *worker);
/* Speculative execution (spec.h; call it when live_acquire() found nothing): grants worker a
 * copy of a live lease of a job with nothing left to lease (no batches pending, no check open),
 * that worker can run (as live_acquire() decides, and within max_batches), held by another
 * worker, neither a check lease nor a copy nor copied already: of those a copy would likely
 * finish sooner (rate(ctx, worker) against its worker's), the one expected to finish last. At
 * most max_live copies are live at a time (0: none is granted). The copy is live until now + ttl_ms; *of is set
 * to the id of the lease it copies. Whichever of the two completes first is counted; the other
 * is done then too, with nothing added (its worker's heartbeat is refused, its complete a
 * duplicate). A fail or an expiry of one gives nothing back while the other is live: it holds
 * the batches on. A copy is not written to the store while its original is live: a restart
 * forgets it (its worker's calls then find no lease), and the original goes on.
 * TALLY_ENOTFOUND (nothing worth copying: see live_spec_look_at()), TALLY_EFORBIDDEN
 * (quarantined), TALLY_ETOOBIG (the id sequence is at its limit), TALLY_ENOMEM. */
TALLY_WUR enum tally_err live_speculate(struct live *lv, const char *worker,
					const char *const *kernels, size_t nkernels,
					uint64_t max_batches, const struct passover_worker *skip,
					size_t max_live, int64_t now, int64_t ttl_ms,
					live_rate_fn rate, void *ctx, struct lease *out, int64_t *of);
/* Returns when the last live_speculate() that found nothing saw a lease become worth a copy
 * (spec_look_at(); 0: none): parked lease requests should ask again then. May be in the past. */
int64_t live_spec_look_at(const struct live *lv);
/* Returns lease id when it is in memory (live, or finished and not yet written), or NULL. */
const struct lease *live_lease(const struct live *lv, int64_t id);
/* Extends live lease id to now + ttl_ms; fills *out. TALLY_ENOTFOUND (not in memory),
 * TALLY_ELOST (not live). */
TALLY_WUR enum tally_err live_heartbeat(struct live *lv, int64_t id, int64_t now, int64_t ttl_ms,
					struct lease *out);
/* Marks live lease id done and adds counts[] (in the order of keys, the job's names with any new
 * ones an open kernel's batches gave appended; NULL: the job's) to its job, which succeeds
 * when it was the last (and no check is pending). A check lease's counts are its opinion
 * instead: they settle the check or call for another, and may quarantine workers (see
 * live_take_suspect). *finished is set when the job ended (succeeded, or failed because its
 * workers could not agree). TALLY_ENOTFOUND, TALLY_ELOST, TALLY_ECOUNTS (a total would pass
 * 2^63-1; nothing changes), TALLY_ENOMEM (a check half settled: read the state back from the
 * store). */
TALLY_WUR enum tally_err live_complete(struct live *lv, int64_t id, const uint64_t *counts,
				       const struct count_keys *keys, int64_t now, int *finished);
/* Gives live lease id's batches back and records reason on its job. With fault, the lease counts
 * as a failure of its batches, which may fail the job (*job_failed is set then; may be NULL).
 * TALLY_ENOTFOUND, TALLY_ELOST. */
TALLY_WUR enum tally_err live_fail(struct live *lv, int64_t id, const char *reason, int fault,
				   int64_t now, int *job_failed);
/* Returns why worker is quarantined, or NULL when it is not. */
const char *live_quarantined(const struct live *lv, const char *worker);
/* Calls each(ctx, row) for every quarantined worker. */
void live_each_quarantined(const struct live *lv,
			   void (*each)(void *ctx, const struct live_quarantine_row *row), void *ctx);
/* Copies into name (WORKER_NAME_MAX bytes) a worker quarantined since the last call whose done
 * leases must now be discarded, and returns 1; 0 when there is none. Until the queue is empty
 * no job finishes: its counts may still include that worker's. */
int live_take_suspect(struct live *lv, char *name);
/* Discards a done lease of a quarantined worker, as stored (with its counts): a counted lease's
 * counts leave its job and its batches go back to pending; a check lease's opinion is
 * withdrawn. Jobs not in memory or finished are left alone. TALLY_ENOMEM. */
TALLY_WUR enum tally_err live_discard(struct live *lv, const struct lease *stored,
				      const uint64_t *counts, int64_t now);
/* Returns the lowest first lease id of the unfinished jobs (0: none has a lease): no done
 * lease of theirs has a lower id. */
int64_t live_oldest_lease(const struct live *lv);
/* Finishes every running job that has all its batches done and no check pending (after the
 * suspects were discarded). Returns how many finished. */
int live_settle(struct live *lv, int64_t now);

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
/* Hands every changed object to w. Returns TALLY_OK, or the first other return of w's, at which
 * it stopped (nothing is marked written: see live_written()). */
TALLY_WUR enum tally_err live_each_dirty(struct live *lv, const struct live_writer *w);
/* Marks everything clean after it was written; finished leases and jobs leave memory. */
void live_written(struct live *lv);
/* What GET /metrics shows of the live state: live leases, batches waiting for a lease and
 * samples not yet counted (over unfinished jobs), pending checks, quarantined workers. */
struct live_totals {
	uint64_t leases_active;
	uint64_t pending_batches;
	uint64_t remaining_samples;
	uint64_t checks_pending;
	uint64_t quarantined;
	uint64_t spec_granted, spec_won; /* speculative copies granted, and those that won */
};
void live_totals(const struct live *lv, struct live_totals *out);
/* Returns owner's queued and running jobs, O(1) expected (server/owners.h); with owner NULL,
 * every owner's. */
uint64_t live_unfinished(const struct live *lv, const char *owner);
/* Calls fn(ctx, e) for every owner with a job in memory (e borrowed for the call). */
void live_each_owner(const struct live *lv, void (*fn)(void *ctx, const struct owner_tally *e),
		     void *ctx);
/* Calls fn(ctx, info) for every owner and priority with work waiting (server/fair.h). */
void live_each_flow(const struct live *lv,
		    void (*fn)(void *ctx, const struct fair_flow_info *info), void *ctx);
/* Calls fn(ctx, id) for every job that ended (succeeded, failed or cancelled) since
 * live_written(): the dirty ones, O(jobs changed since). */
void live_each_ended(const struct live *lv, void (*fn)(void *ctx, int64_t id), void *ctx);
/* Counts of what is in memory, for tests and metrics. */
size_t live_jobs_count(const struct live *lv);
/* The scheduler's measure of cost so far (server/fair.h's steps), for tests. */
uint64_t live_pick_steps(const struct live *lv);
size_t live_leases_count(const struct live *lv);

#endif
