/* The jobs the coordinator holds in memory: every unfinished job (and a finished one until it is
 * written), in a list by ascending id and in hash tables by id and by Idempotency-Key (common/
 * htab.h), each a struct ljob with its batch bookkeeping; the list of jobs changed since the
 * last write, in the order they changed; and the scheduler's view of them (fair.h): which jobs
 * have work waiting for a lease, and which one the next lease goes to.
 *
 * Batch bookkeeping (struct ljob): batches [0, next_batch) have been handed out at least once,
 * [next_batch, batches_total) are fresh. Handed-out batches are done (job.batches_done), in a
 * live lease (job.batches_leased) or in the free ranges, which are leased again first.
 *
 * Ready: a job is ready while it is unfinished and has batches pending or checks open. Whether
 * it is, is worked out again at the next pick (jobtab_pick) for every job touched or
 * rescheduled since the last one: so whatever changes those counts must touch the job
 * (jobtab_touch) or reschedule it (jobtab_resched) in the same call, before or after the change.
 *
 * The table owns its jobs, and each job its params, error, prefix segments, free ranges and
 * pending checks: a struct job copied out of one borrows its params and error until the job
 * leaves the table.
 * The functions named ljob_* work on one job and touch nothing else: marking a job changed is
 * the caller's (jobtab_touch), so that rows are written in the order the caller changed them.
 * Unfinished jobs by owner (owners.h) are counted as jobs are added and taken out, and when a
 * job's state changes: every change of state is followed by jobtab_touch() (the job's row must
 * be written), which counts it again.
 *
 * Finding a job by id or key, or an owner's unfinished jobs, is O(1) expected; choosing the next lease's job costs what fair.h
 * says. Pure C, no I/O. Not thread-safe. */
#ifndef TALLY_JOBTAB_H
#define TALLY_JOBTAB_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "fair.h"
#include "htab.h"
#include "job.h"
#include "owners.h"
#include "ranges.h"
#include "stop.h"
#include "verify.h"

#define JOBTAB_REASON_MAX 201 /* a job's last fail reason, with the NUL */

struct ljob {
	struct job job; /* job.spec.params and job.error point to params and error */
	char *params;   /* its own: spec.params, "{}" when none */
	char *error;    /* its own: NULL until it fails */
	struct stop *stop;           /* with a target_stderr; NULL otherwise */
	struct verify_check *checks; /* pending */
	size_t checks_open;          /* of those, not leased now */
	uint64_t next_batch;
	struct ranges free;
	char last_failure[JOBTAB_REASON_MAX]; /* "" when none */
	char key[JOB_KEY_MAX];                /* the submit's Idempotency-Key; "" when none */
	int ranges_changed;                   /* since the last write */
	int dirty;
	int resched;              /* on the list of jobs whose readiness is to be worked out */
	struct ljob *next, *prev; /* by id, ascending */
	struct ljob *dnext;       /* on the list of changed jobs */
	struct ljob *rnext;       /* on the list of jobs to reschedule */
	struct htab_node byid, bykey;
	struct fair_member fair;
	struct owner_tally *owner; /* its owner's counts (owners.h) */
	enum job_state tallied;    /* the state it is counted under there */
};

struct jobtab {
	struct ljob *head, *tail;
	size_t n;
	struct htab byid, bykey; /* bykey: the jobs with a key */
	struct fair fair;
	struct owners owners; /* unfinished jobs by owner, kept by jobtab_touch() */
	struct ljob *dirty, **dirty_tail;
	struct ljob *resched;
	int64_t next_id;
};

/* Makes t empty; the first job submitted gets id 1. Allocates nothing; can't fail. */
void jobtab_init(struct jobtab *t);
/* Frees every job and t's arrays (next_id stays). Can't fail. */
void jobtab_clear(struct jobtab *t);

/* Adds a queued job of spec with the next id, under key (may be NULL; cut to JOB_KEY_MAX - 1
 * bytes), marked changed, scheduled by its spec's owner and priority. Returns it (borrowed,
 * like every job: until it is written finished or the table cleared), or NULL when out of
 * memory (nothing changes). */
struct ljob *jobtab_submit(struct jobtab *t, const struct job_spec *spec, const char *key,
			   int64_t now);
/* Adds a job as stored, unchanged (last_failure may be NULL), and moves next_id past its id.
 * Returns TALLY_OK, or TALLY_ENOMEM with t unchanged. */
TALLY_WUR enum tally_err jobtab_load(struct jobtab *t, const struct job *job, uint64_t next_batch,
				     const char *last_failure);
/* Moves next_id up to id (never down). */
void jobtab_set_next_id(struct jobtab *t, int64_t id);
/* Returns job id, or NULL. */
struct ljob *jobtab_find(const struct jobtab *t, int64_t id);
/* Returns the job submitted under key (not ""), or NULL. */
struct ljob *jobtab_by_key(const struct jobtab *t, const char *key);
/* Returns owner's queued and running jobs, O(1) expected. */
uint64_t jobtab_unfinished(const struct jobtab *t, const char *owner);
/* Returns the queued and running jobs of every owner. */
uint64_t jobtab_unfinished_total(const struct jobtab *t);
/* Returns the lowest first lease id of the unfinished jobs, or 0 when none has a lease. */
int64_t jobtab_oldest_lease(const struct jobtab *t);
/* Returns the id of the next unfinished job after `after` that stops early, or 0. */
int64_t jobtab_next_stopping(const struct jobtab *t, int64_t after);
/* Adds up, over the unfinished jobs, the batches waiting for a lease, the samples not yet
 * counted and the pending checks. */
void jobtab_totals(const struct jobtab *t, uint64_t *pending_batches, uint64_t *remaining_samples,
		   uint64_t *checks_pending);

/* Marks j changed (once until written; the list keeps the order of first changes), counts it
 * under its owner in its state now, and reschedules it. Can't fail. */
void jobtab_touch(struct jobtab *t, struct ljob *j);
/* Has j's readiness worked out again at the next pick (its pending batches or open checks may
 * have changed). Can't fail. */
void jobtab_resched(struct jobtab *t, struct ljob *j);
/* Returns the job the next lease goes to (fair.h): the first ready job, in the scheduler's
 * order, for which ok(ctx, j) returns non-zero (the asking worker can run it); NULL when none.
 * Charge it once its lease is granted. ok must not change t. */
struct ljob *jobtab_pick(struct jobtab *t, int (*ok)(void *ctx, struct ljob *j), void *ctx);
/* Charges j (picked) for one lease granted: its owner's and its own share move on. Can't
 * fail. */
void jobtab_charge(struct jobtab *t, struct ljob *j);
/* Returns 1 when a job changed since jobtab_written(). */
int jobtab_dirty(const struct jobtab *t);
/* Calls fn(ctx, j) for every changed job, in order. Returns TALLY_OK, or fn's first other
 * return, at which it stopped. */
TALLY_WUR enum tally_err jobtab_each_dirty(const struct jobtab *t,
					   enum tally_err (*fn)(void *ctx, const struct ljob *j),
					   void *ctx);
/* Marks every job written; finished ones leave the table and are freed. Can't fail. */
void jobtab_written(struct jobtab *t);

/* Sets j's error to a copy of text (cut to JOB_ERROR_MAX - 1 bytes). Returns TALLY_OK, or
 * TALLY_ENOMEM with the error as it was. */
TALLY_WUR enum tally_err ljob_set_error(struct ljob *j, const char *text);
/* Returns the batches of j that wait for a lease: neither done nor leased. */
uint64_t ljob_pending(const struct ljob *j);
/* Returns 1 when a worker offering kernels (each "name" or "name@version") can compute j's
 * batches, and sets *version to the version it offers (0: not said). */
int ljob_wants(const struct ljob *j, const char *const *kernels, size_t n, unsigned *version);
/* Returns the batches a lease of at most want (1 to ljob_pending()) takes: from the front free
 * range (as the poison rule allows, with its history) when there is one, fresh ones otherwise;
 * never across an early-stopping prefix's boundary. Takes nothing: see ljob_take(). */
struct batch_range ljob_next(const struct ljob *j, uint64_t want);
/* Leases the count batches ljob_next() returned. Can't fail. */
void ljob_take(struct ljob *j, uint64_t count);
/* Gives batches [first, first + count) back to j's free ranges with their history. Returns
 * TALLY_OK, or TALLY_ENOMEM with the ranges unchanged. */
TALLY_WUR enum tally_err ljob_give_back(struct ljob *j, uint64_t first, uint64_t count,
					unsigned failures, unsigned strikes);
/* Returns TALLY_ECOUNTS when adding counts (in the job's names' order) to j's would pass
 * INT64_MAX (the store's integer), TALLY_OK otherwise. Changes nothing. */
TALLY_WUR enum tally_err ljob_can_count(const struct ljob *j, const uint64_t *counts);
/* Counts done lease l (of j, not a check) with counts: j's totals, done batches and samples,
 * and prefix segments. Call ljob_can_count() first. Can't fail. */
void ljob_count(struct ljob *j, const struct lease *l, const uint64_t *counts);
/* Takes done lease l's counts back out of j and gives its batches back (l's worker was caught
 * lying). Returns TALLY_OK; TALLY_ECONFLICT when they cannot be j's (nothing changes);
 * TALLY_ENOMEM (j's counts and ranges unchanged). */
TALLY_WUR enum tally_err ljob_uncount(struct ljob *j, const struct lease *l,
				      const uint64_t *counts);
/* Evaluates j's early-stopping prefixes that have become complete (j stops early and is
 * running), and returns 1 when one reached the target: j's counts, done batches and samples are
 * then that prefix's (ending j, with its leases, is the caller's). */
int ljob_stop_eval(struct ljob *j);
/* Adds a pending check of done lease l (of j) with counts as its first opinion. Returns it
 * (j's), or NULL when out of memory (nothing changes). */
struct verify_check *ljob_add_check(struct ljob *j, const struct lease *l, const uint64_t *counts);
/* Puts j in final state at now: its pending checks are dropped (marked changed in v), and its
 * batches no longer pending or leased. Its leases are the caller's to end. Can't fail. */
void ljob_end(struct ljob *j, enum job_state state, int64_t now, struct verify *v);
/* Adds worker to the names of the workers j caught lying, while they fit. */
void ljob_caught(struct ljob *j, const char *worker);

#endif
