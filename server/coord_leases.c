/* The coordinator's leases (coord.h): grants sized by the lease policy, heartbeats, completes
 * (counts matched and checked, verification's discards), fails and expiry, on the live state. */
#include <stdio.h>
#include <string.h>
#include "coord_int.h"
#include "counts.h"
#include "db.h"
#include "live.h"
#include "log.h"
#include "offers.h"
#include "passover.h"
#include "sched.h"
#include "wb.h"

static uint64_t coord_size(void *ctx, const struct job *job, uint64_t remaining)
{
	struct coord *c = ctx;
	return sched_lease_batches(c->sched, c->sizing->worker, job->spec.batch_size, remaining,
				   c->sizing->max_batches);
}

static double coord_rate(void *ctx, const char *worker)
{
	return sched_rate(((struct coord *)ctx)->sched, worker);
}

/* Work for req's worker: a lease of the next job's batches, or else a speculative copy of a
 * lease that a job waits for last (server/spec.h). */
static enum tally_err coord_acquire(struct coord *c, const struct lease_request *req, int64_t now,
				    struct lease *out)
{
	const struct passover_worker *skip = passover_of(c->passover, req->worker, now);
	int64_t of = 0;
	enum tally_err rc = live_acquire(c->live, req->worker, req->kernels, req->nkernels,
					 req->max_batches, skip, now, c->cfg.lease_timeout_ms,
					 coord_size, c, out);

	if (rc != TALLY_ENOTFOUND)
		return rc;
	rc = live_speculate(c->live, req->worker, req->kernels, req->nkernels, req->max_batches,
			    skip, (size_t)c->cfg.max_speculative, now, c->cfg.lease_timeout_ms,
			    coord_rate, c, out, &of);
	if (!rc)
		log_info("msg=\"speculative copy granted\" lease=%lld of=%lld job=%lld worker=%s",
			 (long long)out->id, (long long)of, (long long)out->job_id, req->worker);
	return rc;
}

enum tally_err coord_lease(struct coord *c, const struct lease_request *req, struct lease *out)
{
	int64_t now = coord_now(c);
	enum tally_err rc;
	int reaped, failed;

	if (wb_broken(c->wb))
		return TALLY_EDB;
	workers_seen(c->workers, req->worker, now);
	for (size_t i = 0; i < req->nkernels; i++)
		offers_note(c->offers, req->kernels[i], now);
	reaped = live_reap(c->live, now, &failed);
	for (size_t i = 0; i < req->nskip; i++) { /* an older worker's list: remembered alike */
		const struct job *j = live_job(c->live, req->skip[i]);
		if (j && !job_is_final(j->state) &&
		    passover_add(c->passover, req->worker, req->skip[i], now))
			break; /* out of memory: the job may come to it again */
	}
	c->sizing = req;
	rc = coord_acquire(c, req, now, out);
	if (rc == TALLY_ETOOBIG) {
		/* The reserved ids are used up (the flushes fell behind): reserve more now. */
		if (!(rc = wb_commit(c->wb)))
			rc = coord_acquire(c, req, now, out);
		if (rc == TALLY_ETOOBIG)
			rc = TALLY_EDB;
	}
	c->sizing = NULL;
	if (rc == TALLY_EFORBIDDEN)
		coord_reported(c); /* a quarantine this pass made must be committed before it is told */
	c->counted.leases_expired += (uint64_t)reaped;
	if (!rc)
		c->counted.leases_granted++;
	if (reaped) {
		log_info("msg=\"leases expired\" count=%d", reaped);
		/* What this worker did not take (or cannot run), parked ones may. */
		coord_wake(c);
	}
	if (failed) {
		log_warn("msg=\"jobs failed: a batch failed too often\" count=%d", failed);
		coord_job_ended(c);
	}
	if (!rc)
		log_debug("msg=\"lease granted\" lease=%lld job=%lld worker=%s first_batch=%llu "
			  "batch_count=%llu",
			  (long long)out->id, (long long)out->job_id, req->worker,
			  (unsigned long long)out->first_batch, (unsigned long long)out->batch_count);
	/* Also when nothing was granted: the timer that woke this request is spent, and the next
	 * expiry must wake the parked ones again. */
	coord_tell_expiry(c);
	return rc;
}

/* For a lease that is not in memory: TALLY_ELOST when the store has it (it finished, or its job
 * is one this build cannot run), TALLY_ENOTFOUND when nobody does. *stored is filled when it
 * is there. */
static enum tally_err coord_stored_lease(struct coord *c, int64_t id, struct lease *stored)
{
	enum tally_err rc = db_lease_get(c->db, id, stored);
	if (rc == TALLY_EDB && !stored->spec.kernel && stored->id == id)
		return TALLY_ELOST; /* its job's kernel is unknown to this build */
	return rc ? rc : TALLY_ELOST;
}

/* Notes a call about lease id from its worker, for the registry. */
static void coord_heard(struct coord *c, int64_t id)
{
	const struct lease *l = live_lease(c->live, id);
	if (l)
		workers_seen(c->workers, l->worker, coord_now(c));
}

enum tally_err coord_heartbeat(struct coord *c, int64_t id, struct lease *out)
{
	enum tally_err rc;
	if (wb_broken(c->wb))
		return TALLY_EDB;
	coord_heard(c, id);
	rc = live_heartbeat(c->live, id, coord_now(c), c->cfg.lease_timeout_ms, out);
	if (rc == TALLY_ENOTFOUND) {
		memset(out, 0, sizeof *out);
		return coord_stored_lease(c, id, out);
	}
	if (!rc)
		coord_tell_expiry(c);
	return rc;
}

static enum tally_err discard_result(void *ctx, const struct lease *l, const uint64_t *counts)
{
	struct coord *c = ctx;
	return live_discard(c->live, l, counts, coord_now(c));
}

/* Takes the done leases of workers quarantined just now out of their unfinished jobs (their
 * batches are computed again), then finishes the jobs that are done. *finished counts those. */
static enum tally_err coord_discard(struct coord *c, int *finished)
{
	char name[WORKER_NAME_MAX];
	enum tally_err rc;
	int64_t since;

	*finished = 0;
	while (live_take_suspect(c->live, name)) {
		log_warn("msg=\"worker quarantined: its counts disagreed with other workers'\" "
			 "worker=%s reason=\"%s\"", name, live_quarantined(c->live, name));
		/* Its done leases are in the store once the changes are written (uncommitted). */
		if ((rc = wb_sync(c->wb)) ||
		    ((since = live_oldest_lease(c->live)) &&
		     (rc = db_worker_results(c->db, name, since, discard_result, c)))) {
			wb_lose(c->wb); /* the next flush undoes all of it */
			return rc == TALLY_ENOMEM ? rc : TALLY_EDB;
		}
	}
	*finished = live_settle(c->live, coord_now(c));
	coord_wake(c); /* discarded batches, and a check that wants another opinion */
	return TALLY_OK;
}

static enum tally_err complete_lease(struct coord *c, int64_t id, const struct counts *counts,
				     int *duplicate, int *ended, char *err, size_t errlen)
{
	const struct lease *live = live_lease(c->live, id);
	struct lease lease;
	uint64_t values[KERNEL_MAX_KEYS] = { 0 };
	struct count_keys keys;
	const struct job *job;
	int finished = 0;
	const char *why;
	enum tally_err rc;
	int64_t now = coord_now(c);

	*duplicate = 0;
	if (live) {
		lease = *live;
	} else {
		memset(&lease, 0, sizeof lease);
		rc = coord_stored_lease(c, id, &lease);
		if (rc != TALLY_ELOST)
			return rc;
	}
	/* The lease's state answers first: a repeat is acknowledged and a lost lease refused
	 * whatever the counts say. */
	if (lease.state == LEASE_DONE) {
		*duplicate = 1;
		return TALLY_OK;
	}
	if (lease.state != LEASE_ACTIVE || !live)
		return TALLY_ELOST;
	if (!(job = live_job(c->live, lease.job_id)))
		return TALLY_ELOST;
	keys = job->keys;
	if (counts_match(counts, lease.spec.kernel, &keys, values, err, errlen))
		return TALLY_ECOUNTS;
	why = kernel_check(lease.spec.kernel, &keys, values, lease_samples(&lease));
	if (why) {
		snprintf(err, errlen, "%s", why);
		return TALLY_ECOUNTS;
	}
	rc = live_complete(c->live, id, values, &keys, now, &finished);
	if (rc == TALLY_ECOUNTS)
		snprintf(err, errlen, "counts: a job total would pass 2^63-1");
	if (rc == TALLY_ENOMEM)
		wb_lose(c->wb); /* memory is half changed: the next flush reads the store back */
	if (rc)
		return rc;
	c->changes++;
	if (!lease.check_of) {
		const struct job *j = live_job(c->live, lease.job_id);
		c->counted.batches_completed += lease.batch_count;
		c->counted.samples_completed += lease_samples(&lease);
		if (j)
			history_add(c->history, j->id, j->spec.owner, now, j->samples_done,
				    j->counts);
	} else {
		int settled = 0;
		if ((rc = coord_discard(c, &settled)))
			return rc;
		finished += settled;
	}
	sched_observe(c->sched, lease.worker, lease_samples(&lease), now - lease.granted_at, now);
	log_debug("msg=\"lease completed\" lease=%lld job=%lld worker=%s", (long long)id,
		  (long long)lease.job_id, lease.worker);
	coord_tell_expiry(c);
	if (finished) {
		*ended = 1;
		log_info("msg=\"job ended\" job=%lld", (long long)lease.job_id);
		coord_job_ended(c);
	}
	return TALLY_OK;
}

enum tally_err coord_complete(struct coord *c, int64_t id, const struct counts *counts,
			      int *duplicate, int *ended, char *err, size_t errlen)
{
	enum tally_err rc;
	int ended_here = 0;
	*duplicate = 0;
	if (wb_broken(c->wb))
		return TALLY_EDB;
	coord_heard(c, id);
	rc = complete_lease(c, id, counts, duplicate, &ended_here, err, errlen);
	if (ended)
		*ended = ended_here;
	if (rc == TALLY_ELOST || rc == TALLY_ENOTFOUND)
		c->counted.completes_lost++;
	else if (rc == TALLY_ECOUNTS)
		c->counted.completes_bad_counts++;
	else if (!rc && *duplicate)
		c->counted.completes_duplicate++;
	/* A complete counted just now moves coord_changes(); so does any other answer (a repeat,
	 * a lost lease) given while what it reports is not yet committed. */
	if (!(rc == TALLY_OK && !*duplicate))
		coord_reported(c);
	return rc;
}

/* Remembers that failed lease id's worker cannot run its job, so that it is passed over for that
 * worker from now on (server/passover.h). */
static void coord_cannot_run(struct coord *c, int64_t id)
{
	const struct lease *l = live_lease(c->live, id); /* in memory until written */
	if (l && passover_add(c->passover, l->worker, l->job_id, coord_now(c)))
		log_warn("msg=\"out of memory: the job may be offered to this worker again\" "
			 "job=%lld worker=%s", (long long)l->job_id, l->worker);
}

enum tally_err coord_fail(struct coord *c, int64_t id, const char *reason, int fault,
			  int cannot_run)
{
	int failed = 0;
	enum tally_err rc;

	coord_heard(c, id);
	rc = wb_broken(c->wb) ? TALLY_EDB
			      : live_fail(c->live, id, reason, fault, coord_now(c), &failed);
	char clean[201];
	struct lease stored;

	if (rc == TALLY_ENOTFOUND) {
		memset(&stored, 0, sizeof stored);
		return coord_stored_lease(c, id, &stored);
	}
	if (!rc) {
		c->changes++; /* a strike, or a job failed: its reply waits for the commit */
		c->counted.leases_failed++;
		if (cannot_run)
			coord_cannot_run(c, id);
		log_warn("msg=\"lease failed\" lease=%lld fault=%d reason=\"%s\"", (long long)id,
			 fault, log_clean(reason, clean, sizeof clean));
		coord_tell_expiry(c);
		coord_wake(c);
		if (failed) {
			log_warn("msg=\"job failed: a batch failed too often\" lease=%lld", (long long)id);
			coord_job_ended(c);
		}
	}
	return rc;
}

enum tally_err coord_reap(struct coord *c)
{
	int failed;
	int reaped = live_reap(c->live, coord_now(c), &failed);
	c->counted.leases_expired += (uint64_t)reaped;
	if (reaped) {
		log_info("msg=\"leases expired\" count=%d", reaped);
		coord_tell_expiry(c);
		coord_wake(c);
	}
	if (failed) {
		log_warn("msg=\"jobs failed: a batch failed too often\" count=%d", failed);
		coord_job_ended(c);
	}
	return TALLY_OK;
}
