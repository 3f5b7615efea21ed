/* The coordinator's service layer: what the API can ask of it, in typed terms. It owns the live
 * state (server/live.h), the lease policy and the clock, and writes the state behind to the
 * store; it knows nothing of HTTP. Every function runs on the caller's thread and is not
 * thread-safe: the HTTP layer calls it from its one event-loop thread (and, once that has
 * stopped, from the stopping thread).
 *
 * Durability: operations change memory only. coord_flush() writes every change since the last
 * flush in one transaction. A reply reporting a submit, cancel, complete or fail must wait for
 * that flush (coord_changes() counts them). Grants and heartbeats need not: if the flush is
 * lost, so is the grant, and its worker's complete is refused (404), never counted twice. */
#ifndef TALLY_COORD_H
#define TALLY_COORD_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "history.h"
#include "job.h"
#include "workers.h"

#define COORD_KERNELS_MAX WIRE_OFFERS_MAX
#define COORD_SKIP_MAX WIRE_SKIP_MAX /* jobs a lease request may ask to be passed over */

struct counts; /* common/counts.h */
struct db;     /* db/db.h */

/* The clock, injected so that tests can drive time. Returns ms since the epoch. */
struct coord_clock {
	int64_t (*now_ms)(void *ctx);
	void *ctx;
};

/* Called by the coordinator so that the HTTP layer can wake long polls. */
struct coord_hooks {
	void (*work)(void *ctx);              /* new work may be leasable now */
	/* The earliest live lease expires at `at` (0: none), or parked lease requests should ask
	 * again then (a speculative copy may be worth it by then: server/spec.h). */
	void (*expiry)(void *ctx, int64_t at);
	void (*jobs)(void *ctx);              /* a job finished or was cancelled */
	void *ctx;
};

struct coord_config {
	int64_t lease_timeout_ms; /* a lease's life after grant or heartbeat */
	int64_t lease_target_ms;  /* work per lease the policy aims at */
	unsigned max_failures;    /* failed leases a batch survives before its job fails; 0: any */
	uint64_t max_unfinished_jobs; /* queued and running jobs an owner may have; 0: no limit */
	uint64_t max_jobs_in_memory;  /* queued and running jobs of every owner; 0: no limit */
	uint64_t max_speculative;     /* speculative copies live at a time (server/spec.h); 0: none */
};

/* A worker's request for work, decoded. kernels[] are borrowed for the call. */
struct lease_request {
	char worker[WORKER_NAME_MAX];
	const char *kernels[COORD_KERNELS_MAX];
	size_t nkernels;
	uint64_t max_batches; /* 0: the policy chooses */
	int64_t skip[COORD_SKIP_MAX]; /* jobs the worker cannot run (an older worker's skip_jobs) */
	size_t nskip;
	int64_t wait_ms;
};

/* Whose jobs a call may see and act on: every job (owner NULL: an admin, an open coordinator,
 * or the coordinator itself), or only those whose job_spec.owner is `owner`. To a call, a job
 * outside its scope does not exist: TALLY_ENOTFOUND, exactly as for an id never used. */
struct coord_scope {
	const char *owner; /* borrowed for the call; NULL: every job */
};
#define COORD_ALL ((struct coord_scope){ NULL })

struct coord;

/* Returns a new coordinator over db (borrowed until coord_free), or NULL when out of memory.
 * hooks may have NULL members. coord_load() must run before anything else. */
struct coord *coord_new(struct db *db, const struct coord_config *cfg, struct coord_clock clock,
			struct coord_hooks hooks);
/* Loads the unfinished jobs and live leases from the store and reserves lease ids (a commit).
 * TALLY_EDB, TALLY_ENOMEM. */
TALLY_WUR enum tally_err coord_load(struct coord *c);
void coord_free(struct coord *c);
/* Returns the injected clock's time. */
int64_t coord_now(struct coord *c);

/* Stores a new queued job of spec->owner under key (an Idempotency-Key, or NULL; keys are per
 * owner) and fills *out. Refused with TALLY_EQUOTA when the owner has max_unfinished_jobs
 * queued and running already, TALLY_EFULL when every owner together has max_jobs_in_memory
 * (both O(1): counts kept per owner, server/owners.h; a retry under a key the owner used is
 * the caller's to answer first, coord_job_by_key, and never reaches a quota). A spec whose
 * kernel is kernel_placeholder() (decode_job_spec) gets spec->kernel_name made a kernel known by
 * name only (kernel_named) while the job is in memory. TALLY_ENOMEM, TALLY_EDB. */
TALLY_WUR enum tally_err coord_submit(struct coord *c, const struct job_spec *spec, const char *key,
				      struct job *out);
/* What a quota sees for owner: its queued and running jobs and its limit, every owner's and
 * the global limit (a limit of 0: none). Can't fail. */
struct coord_quota {
	uint64_t owner_unfinished, owner_limit;
	uint64_t unfinished, limit;
};
void coord_quota(struct coord *c, const char *owner, struct coord_quota *out);
/* Grows job id (in scope) to `samples` (see live_extend): the result then equals that of a new
 * job of that size with the same seed. TALLY_ENOTFOUND, TALLY_ECONFLICT (failed or cancelled;
 * *out is the job), TALLY_EINVAL (not larger than it is), TALLY_EDB. */
TALLY_WUR enum tally_err coord_extend(struct coord *c, struct coord_scope scope, int64_t id,
				      uint64_t samples, struct job *out);
/* Fills *out with the job owner submitted under key (owner "" for an open coordinator's);
 * TALLY_ENOTFOUND. Another owner's job under the same key is never found. */
TALLY_WUR enum tally_err coord_job_by_key(struct coord *c, const char *owner, const char *key,
					  struct job *out);
/* Fills *out with job id (in scope); TALLY_ENOTFOUND. */
TALLY_WUR enum tally_err coord_job(struct coord *c, struct coord_scope scope, int64_t id,
				   struct job *out);
/* Walks the jobs in scope newest first; see db_job_list (a return of each other than TALLY_OK
 * stops the walk and is returned). */
TALLY_WUR enum tally_err coord_jobs(struct coord *c, struct coord_scope scope, int state,
				    int64_t before, size_t limit,
				    enum tally_err (*each)(void *ctx, const struct job *job),
				    void *ctx);
/* Cancels job id (in scope); TALLY_ECONFLICT when it already finished (*out filled either
 * way). */
TALLY_WUR enum tally_err coord_cancel(struct coord *c, struct coord_scope scope, int64_t id,
				      struct job *out);
/* Deletes finished job id (in scope) with everything it owned: its store rows (the job with
 * its Idempotency-Key, leases, check leases, free ranges) and its history; its id is never used
 * again. Then hands back up to DB_RECLAIM_PAGES free pages of the file. The reply must wait for
 * the flush (coord_changes moves). TALLY_ENOTFOUND; TALLY_ECONFLICT when it is queued or
 * running (*out is the job); TALLY_EDB. */
TALLY_WUR enum tally_err coord_delete(struct coord *c, struct coord_scope scope, int64_t id,
				      struct job *out);
/* Retention: deletes (as coord_delete) up to max finished jobs (at most COORD_RETAIN_BATCH)
 * that finished more than age_ms before the injected clock's now, longest finished first, into
 * the pass's open transaction (the flush commits them), and hands back up to DB_RECLAIM_PAGES
 * free pages. Sets *deleted; *more to 1 when a full batch went or free pages are left (call
 * again soon). Never touches a queued or running job. TALLY_EDB (nothing deleted then counts:
 * the pass's flush fails). */
#define COORD_RETAIN_BATCH 256
TALLY_WUR enum tally_err coord_retain(struct coord *c, int64_t age_ms, size_t max,
				      size_t *deleted, int *more);

/* Leases the next range of work for req's worker. TALLY_ENOTFOUND when there is none now;
 * TALLY_EFORBIDDEN when the worker is quarantined (see coord_quarantined). */
TALLY_WUR enum tally_err coord_lease(struct coord *c, const struct lease_request *req,
				     struct lease *out);
/* A call about a lease (heartbeat, complete, fail) as its caller makes it: the lease's id and
 * tag (as the grant gave them), the worker name the call gives and the user whose token it sends
 * ("" for an open coordinator's callers). Names are borrowed for the call. */
struct lease_claim {
	int64_t id;
	uint64_t tag;
	const char *worker;
	const char *user;
};
/* Returns the tag of lease id granted to worker, which called as user: a keyed hash (SipHash-2-4
 * under a random 128-bit key kept in the store, coord_claim.c) of the three, so that it cannot be
 * made or guessed from other leases' ids and tags, and a lease read back after a restart keeps
 * it. Pure; can't fail. */
uint64_t coord_lease_tag(const struct coord *c, int64_t id, const char *worker, const char *user);
/* Returns TALLY_OK when claim's tag is the one coord_lease_tag gives for its id, worker and user;
 * TALLY_ENOTFOUND otherwise: a lease claimed by another worker or user, or with a tag forged or
 * changed, is one that does not exist. The API acts on a lease (coord_heartbeat, coord_complete,
 * coord_fail) only for a claim this accepted. Can't fail otherwise. */
TALLY_WUR enum tally_err coord_lease_claim(const struct coord *c, const struct lease_claim *claim);
/* Extends lease id. TALLY_ELOST, TALLY_ENOTFOUND. */
TALLY_WUR enum tally_err coord_heartbeat(struct coord *c, int64_t id, struct lease *out);
/* Matches counts (borrowed; decoded by decode_complete) to lease id's job names under its
 * kernel's rules (counts_match) and checks them with the kernel, then adds them to the job once
 * (a check lease's are compared instead; a worker caught lying is quarantined and its done
 * leases in unfinished jobs discarded). The lease's state answers first: *duplicate is set when
 * it was already completed (whatever the counts), and a lost lease is lost. *ended (when not
 * NULL) is set when this complete ended its job (its last batches, or a check that settled it),
 * so that a worker can let go of what it keeps for the job. TALLY_ECOUNTS with a message in err
 * when the counts cannot be right; TALLY_ELOST; TALLY_ENOTFOUND; TALLY_ENOMEM, TALLY_EDB. */
TALLY_WUR enum tally_err coord_complete(struct coord *c, int64_t id, const struct counts *counts,
					int *duplicate, int *ended, char *err, size_t errlen);
/* Gives lease id's batches back. With fault, the lease counts as a failure of its batches (see
 * server/live.h, poison batches). With cannot_run, its worker cannot run its job (an exec
 * program it does not allow): the job is passed over for that worker from now on (bounded and
 * expiring: server/passover.h). TALLY_ELOST, TALLY_ENOTFOUND. */
TALLY_WUR enum tally_err coord_fail(struct coord *c, int64_t id, const char *reason, int fault,
				    int cannot_run);
/* Reclaims expired leases now; wakes long polls when any were. */
TALLY_WUR enum tally_err coord_reap(struct coord *c);

/* A worker as the coordinator sees it: quarantined (caught by a check: reason says how), active
 * (it holds a lease), idle (heard from within the lease timeout) or lost; rate is its measured
 * samples/s (0 until measured). */
struct coord_worker {
	struct worker_info info;
	double rate;
	enum worker_state state;
	const char *reason; /* NULL unless quarantined */
};
/* GET /metrics' jobs by owner and fair share are bounded: COORD_OWNERS_SHOWN owners each. */
#define COORD_OWNERS_SHOWN 50
/* An owner's unfinished jobs; owner "other" sums those past the first COORD_OWNERS_SHOWN. */
struct coord_owner_jobs {
	char owner[WIRE_USER_NAME_MAX];
	uint64_t queued, running;
};
/* An owner's place in the fair share of one priority (server/fair.h, struct fair_flow_info). */
struct coord_owner_fair {
	char owner[WIRE_USER_NAME_MAX];
	int priority;
	int64_t lead;   /* its pass minus its priority's virtual time, in leases */
	uint64_t ready; /* its jobs with work waiting */
};
/* What GET /metrics shows: counters since the start, and gauges read now. */
struct coord_metrics {
	uint64_t jobs[5]; /* stored jobs by enum job_state */
	uint64_t jobs_submitted;
	uint64_t batches_completed, samples_completed; /* by accepted completes */
	uint64_t leases_granted, leases_expired, leases_failed;
	uint64_t completes_duplicate;   /* repeats, acknowledged and not counted */
	uint64_t completes_lost;        /* refused: the lease was lost, or never existed */
	uint64_t completes_bad_counts;  /* refused: counts that cannot be right */
	uint64_t spec_granted, spec_won; /* speculative copies granted, and those that won */
	uint64_t leases_active;         /* gauges from here on */
	uint64_t queue_batches;         /* waiting for a lease, over unfinished jobs */
	uint64_t queue_samples;         /* not yet counted, over unfinished jobs */
	uint64_t checks_pending;
	uint64_t quarantined;
	uint64_t workers[WORKER_STATES]; /* by enum worker_state */
	/* The COORD_OWNERS_SHOWN owners with the most unfinished jobs, most first (the lower
	 * name on a tie), then "other" with the rest when there are more (an owner named
	 * "other" among them takes the rest into its own counts). */
	struct coord_owner_jobs by_owner[COORD_OWNERS_SHOWN + 1];
	size_t nby_owner;
	/* The first COORD_OWNERS_SHOWN (owner, priority) with work waiting, in the order leases
	 * go to them: highest priority, then lowest lead, then name. */
	struct coord_owner_fair fair[COORD_OWNERS_SHOWN];
	size_t nfair;
};
/* Fills *out. Reads the store (jobs by state) after writing pending changes into the open
 * transaction. TALLY_EDB. */
TALLY_WUR enum tally_err coord_metrics(struct coord *c, struct coord_metrics *out);
/* Fills *job with job id (in scope) and points *points at its progress history
 * (server/history.h; *n of them, borrowed until the next coordinator call; none for a job not
 * run since the start). TALLY_ENOTFOUND. */
TALLY_WUR enum tally_err coord_history(struct coord *c, struct coord_scope scope, int64_t id,
				       struct job *job, const struct history_point **points,
				       size_t *n);
/* Returns why worker is quarantined (borrowed until the next call), or NULL. */
const char *coord_quarantined(struct coord *c, const char *worker);
/* Returns the reason the last failed (or given back) lease of unfinished job id gave, or NULL.
 * Valid until the next call into the coordinator. */
const char *coord_last_failure(struct coord *c, int64_t id);
/* Returns 1 when a worker has offered kernel name (in version `version`, or any when 0) since
 * the coordinator started (server/offers.h). */
int coord_kernel_offered(struct coord *c, const char *name, unsigned version);
/* Calls each(ctx, w) (w borrowed for the call) for every worker heard from since the start (at
 * most WORKERS_MAX) and every quarantined one. A return other than TALLY_OK stops the walk and
 * is returned; TALLY_EDB. */
TALLY_WUR enum tally_err coord_workers(struct coord *c,
				       enum tally_err (*each)(void *ctx,
							      const struct coord_worker *w),
				       void *ctx);

/* Sets *at to when the first live lease expires (0: none), for the HTTP layer's timer at start,
 * so that leases from before a restart wake long polls too. */
TALLY_WUR enum tally_err coord_next_expiry(struct coord *c, int64_t *at);
/* Tells the coordinator it was stalled for ms (the process stopped, or a pass that took that
 * long): live leases get that much longer, since their heartbeats could not be heard. */
void coord_stalled(struct coord *c, int64_t ms);
/* Returns 1 when there are changes that coord_flush() has not committed. */
int coord_dirty(struct coord *c);
/* Counts the changes so far whose replies must wait for coord_flush() (submits, cancels,
 * completes, fails, and reads of uncommitted state): the HTTP layer holds a reply when its
 * handler moved this count. */
uint64_t coord_changes(struct coord *c);
/* Writes every change since the last flush and commits them together (server/wb.h). On failure
 * none of them happened: the live state is loaded again from the store, and TALLY_EDB
 * returned. */
TALLY_WUR enum tally_err coord_flush(struct coord *c);
/* Checks that the store answers a query, and, after a failed commit, that it takes a write
 * again. TALLY_EDB when it does not. */
TALLY_WUR enum tally_err coord_check(struct coord *c);

/* Returns the storage error behind the last TALLY_EDB, borrowed. */
const char *coord_errmsg(struct coord *c);

#endif
