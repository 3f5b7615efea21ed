/* Live state in memory: the jobs (jobtab.c), the leases (leasetab.c) and the lease lifecycle
 * over them: grants, heartbeats, completes, fails, expiries, cancels, extends, settling; and
 * the changes handed to the writer. Verification's part of live.h is in verify.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "live_internal.h"
#include "rng.h"

_Static_assert(LIVE_REASON_MAX == JOBTAB_REASON_MAX, "a job keeps a whole fail reason");

struct live *live_new(uint64_t rand_seed, unsigned max_failures)
{
	struct live *lv = t_calloc(1, sizeof *lv);
	if (!lv)
		return NULL;
	if (leasetab_init(&lv->leases)) {
		free(lv);
		return NULL;
	}
	jobtab_init(&lv->jobs);
	lv->rnd = rand_seed;
	lv->max_failures = max_failures;
	return lv;
}

void live_clear(struct live *lv)
{
	verify_clear(&lv->verify); /* first: the jobs free their pending checks */
	leasetab_clear(&lv->leases);
	jobtab_clear(&lv->jobs);
}

void live_free(struct live *lv)
{
	if (!lv)
		return;
	live_clear(lv);
	leasetab_release(&lv->leases);
	free(lv);
}

/* --- loading -------------------------------------------------------------------------------- */

enum tally_err live_load_job(struct live *lv, const struct job *job, uint64_t next_batch,
			     const char *last_failure)
{
	return jobtab_load(&lv->jobs, job, next_batch, last_failure);
}

void live_load_result(struct live *lv, const struct lease *done, const uint64_t *counts)
{
	struct ljob *j = jobtab_find(&lv->jobs, done->job_id);
	if (j && j->stop && !done->check_of)
		stop_add(j->stop, done->first_batch, done->batch_count, counts);
}

int64_t live_next_stopping_job(const struct live *lv, int64_t after)
{
	return jobtab_next_stopping(&lv->jobs, after);
}

enum tally_err live_load_range(struct live *lv, int64_t job_id, const struct batch_range *r)
{
	struct ljob *j = jobtab_find(&lv->jobs, job_id);
	if (!j || !r->count)
		return TALLY_OK; /* a finished job's leftovers: nothing to lease */
	return ranges_give_back(&j->free, r->first, r->count, r->failures, r->strikes); /* clean */
}

enum tally_err live_load_lease(struct live *lv, const struct lease *lease)
{
	struct ljob *j = jobtab_find(&lv->jobs, lease->job_id);
	struct verify_check *ch;

	if (!j || lease->state != LEASE_ACTIVE)
		return TALLY_OK; /* the store keeps finished ones */
	if (!leasetab_add(&lv->leases, lease, &j->job.spec, j))
		return TALLY_ENOMEM;
	if (lease->check_of && (ch = verify_check_find(j->checks, lease->check_of)) &&
	    !ch->leased) {
		ch->leased = lease->id;
		j->checks_open--;
		jobtab_resched(&lv->jobs, j);
	}
	return TALLY_OK;
}

void live_set_next_job_id(struct live *lv, int64_t id)
{
	jobtab_set_next_id(&lv->jobs, id);
}

uint64_t live_seq_next(const struct live *lv)
{
	return lv->seq_next;
}

uint64_t live_seq_limit(const struct live *lv)
{
	return lv->seq_limit;
}

void live_set_seq(struct live *lv, uint64_t next, uint64_t limit)
{
	lv->seq_next = next;
	lv->seq_limit = limit < LIVE_SEQ_MAX ? limit : LIVE_SEQ_MAX;
}

/* --- jobs ----------------------------------------------------------------------------------- */

enum tally_err live_submit(struct live *lv, const struct job_spec *spec, const char *key,
			   int64_t now, struct job *out)
{
	struct ljob *j = jobtab_submit(&lv->jobs, spec, key, now);
	if (!j)
		return TALLY_ENOMEM;
	*out = j->job;
	return TALLY_OK;
}

const struct job *live_job_by_key(const struct live *lv, const char *key)
{
	struct ljob *j = jobtab_by_key(&lv->jobs, key);
	return j ? &j->job : NULL;
}

const struct job *live_job(const struct live *lv, int64_t id)
{
	struct ljob *j = jobtab_find(&lv->jobs, id);
	return j ? &j->job : NULL;
}

const char *live_last_failure(const struct live *lv, int64_t id)
{
	struct ljob *j = jobtab_find(&lv->jobs, id);
	return j && j->last_failure[0] ? j->last_failure : NULL;
}

int64_t live_oldest_lease(const struct live *lv)
{
	return jobtab_oldest_lease(&lv->jobs);
}

/* --- leases --------------------------------------------------------------------------------- */

const struct lease *live_lease(const struct live *lv, int64_t id)
{
	struct llease *l = leasetab_find(&lv->leases, id);
	return l ? &l->lease : NULL;
}

void live_extend_all(struct live *lv, int64_t ms)
{
	leasetab_shift(&lv->leases, ms);
	for (size_t i = 0; i < leasetab_live(&lv->leases); i++)
		leasetab_touch(&lv->leases, leasetab_live_at(&lv->leases, i));
}

void live_each_lease(const struct live *lv, void (*each)(void *ctx, const struct lease *l),
		     void *ctx)
{
	for (size_t i = 0; i < leasetab_live(&lv->leases); i++)
		each(ctx, &leasetab_live_at(&lv->leases, i)->lease);
}

int64_t live_next_expiry(const struct live *lv)
{
	return leasetab_next_expiry(&lv->leases);
}

/* --- the lifecycle's steps ------------------------------------------------------------------ */

int64_t live_next_id(struct live *lv)
{
	return (int64_t)((lv->seq_next << LIVE_ID_RANDOM_BITS) |
			 (rng_splitmix64(&lv->rnd) & ((1u << LIVE_ID_RANDOM_BITS) - 1)));
}

/* Ends job j in a final state: its live leases are cancelled, its pending batches and checks
 * dropped. */
static void job_end(struct live *lv, struct ljob *j, enum job_state state, int64_t now)
{
	ljob_end(j, state, now, &lv->verify);
	leasetab_cancel_job(&lv->leases, j, now);
	jobtab_touch(&lv->jobs, j);
}

void live_job_fail(struct live *lv, struct ljob *j, int64_t now, int *job_failed,
		   const char *fmt, ...)
{
	char error[JOB_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error, sizeof error, fmt, ap);
	va_end(ap);
	if (ljob_set_error(j, error)) /* the job fails all the same, saying less */
		j->job.error = "failed; its error message found no memory";
	job_end(lv, j, JOB_FAILED, now);
	if (job_failed)
		*job_failed = 1;
}

void live_lease_finish(struct live *lv, struct llease *l, enum lease_state s, int64_t now)
{
	leasetab_unlive(&lv->leases, l);
	l->lease.state = s;
	l->finished_at = now;
	leasetab_touch(&lv->leases, l);
	jobtab_resched(&lv->jobs, l->job); /* its batches or its check are pending again, or not */
}

enum tally_err live_lease_end(struct live *lv, struct llease *l, enum lease_state s, int64_t now,
			      int fault, const char *reason, int *job_failed)
{
	struct ljob *j = l->job;
	const struct lease *le = &l->lease;
	int alone = le->batch_count == 1;
	unsigned failures = le->failures + (fault ? 1 : 0);
	unsigned strikes = le->strikes + (fault && alone ? 1 : 0);
	int poison = fault && alone && lv->max_failures && strikes >= lv->max_failures;
	enum tally_err rc;

	if (le->check_of) {
		live_check_lease_end(lv, l, s, now, fault, reason, job_failed);
		return TALLY_OK;
	}
	if (l->twin && live_spec_end(lv, l, s, now, failures, strikes))
		return TALLY_OK; /* its twin holds its batches on */
	if (s != LEASE_DONE && !poison &&
	    (rc = ljob_give_back(j, le->first_batch, le->batch_count, failures, strikes)))
		return rc;
	j->job.batches_leased -= le->batch_count;
	live_lease_finish(lv, l, s, now);
	jobtab_touch(&lv->jobs, j);
	if (poison)
		live_job_fail(lv, j, now, job_failed,
			      "batch %llu failed %u times; last failure: %.900s",
			      (unsigned long long)le->first_batch, strikes, reason);
	return TALLY_OK;
}

/* Ends job j early when one of its complete prefixes reached its target. Returns 1 if so. */
static int job_stop_eval(struct live *lv, struct ljob *j, int64_t now)
{
	if (!ljob_stop_eval(j))
		return 0;
	job_end(lv, j, JOB_SUCCEEDED, now);
	return 1;
}

/* Succeeds job j when all its batches are done and checked, unless quarantined workers' counts
 * may still be in it. Returns 1 when it did. */
static int job_settle(struct live *lv, struct ljob *j, int64_t now)
{
	if (lv->verify.nsuspects || j->job.state != JOB_RUNNING ||
	    j->job.batches_done != j->job.batches_total || j->job.checks_pending)
		return 0;
	j->job.state = JOB_SUCCEEDED;
	j->job.finished_at = now;
	jobtab_touch(&lv->jobs, j);
	return 1;
}

/* --- the lifecycle -------------------------------------------------------------------------- */

/* A worker asking for a lease (what it can run), and what it can do for the job found. */
struct asker {
	const char *worker;
	const char *const *kernels;
	size_t nkernels;
	uint64_t max_batches;
	const struct passover_worker *skip; /* jobs it cannot run */
	struct verify_check *ch; /* a check it can give an opinion on, or NULL: */
	uint64_t remaining;      /* then the batches pending */
	unsigned version;        /* the kernel's version it offers (0: not said) */
};

/* 1 when the asking worker can take some of j: a check it has given no opinion on, or pending
 * batches, of a kernel it offers (in the job's version), and j is not one it skips. */
static int can_take(void *ctx, struct ljob *j)
{
	struct asker *a = ctx;

	a->ch = NULL;
	if (job_is_final(j->job.state) || !ljob_wants(j, a->kernels, a->nkernels, &a->version) ||
	    passover_has(a->skip, j->job.id))
		return 0;
	if (j->checks_open && (a->ch = verify_check_for(j->checks, a->worker, a->max_batches)))
		return 1;
	return (a->remaining = ljob_pending(j)) != 0;
}

enum tally_err live_acquire(struct live *lv, const char *worker, const char *const *kernels,
			    size_t nkernels, uint64_t max_batches,
			    const struct passover_worker *skip, int64_t now, int64_t ttl_ms,
			    live_size_fn size, void *ctx, struct lease *out)
{
	struct asker a = { worker, kernels, nkernels, max_batches, skip, NULL, 0, 0 };
	struct ljob *j;
	struct llease *l;
	struct verify_check *ch;
	struct batch_range r = { 0 };

	if (verify_quarantined(&lv->verify, worker))
		return TALLY_EFORBIDDEN;
	if (!(j = jobtab_pick(&lv->jobs, can_take, &a)))
		return TALLY_ENOTFOUND;
	ch = a.ch;
	if (lv->seq_next >= lv->seq_limit)
		return TALLY_ETOOBIG;
	if (!(l = t_calloc(1, sizeof *l)))
		return TALLY_ENOMEM;
	if (ch) {
		/* The checked lease's batches, all of them: the counts compared must cover the same. */
		r.first = ch->first;
		r.count = ch->count;
		l->lease.check_of = ch->lease_id;
	} else {
		uint64_t take = size(ctx, &j->job, a.remaining);
		if (take < 1)
			take = 1;
		if (take > a.remaining)
			take = a.remaining;
		r = ljob_next(j, take);
		l->lease.failures = r.failures;
		l->lease.strikes = r.strikes;
	}
	l->lease.id = live_next_id(lv);
	if (!j->job.spec.kernel_version && a.version) {
		/* A kernel known here by name only: the job is computed with the version of the
		 * first worker that takes some of it, and only workers with that one after. */
		j->job.spec.kernel_version = a.version;
		jobtab_touch(&lv->jobs, j);
	}
	l->lease.job_id = j->job.id;
	l->lease.spec = j->job.spec;
	l->lease.first_batch = r.first;
	l->lease.batch_count = r.count;
	l->lease.state = LEASE_ACTIVE;
	l->lease.granted_at = now;
	l->lease.expires_at = now + ttl_ms;
	snprintf(l->lease.worker, sizeof l->lease.worker, "%s", worker);
	l->job = j;
	if (leasetab_insert(&lv->leases, l)) {
		free(l);
		return TALLY_ENOMEM;
	}
	lv->seq_next++;
	jobtab_charge(&lv->jobs, j);
	if (ch) {
		ch->leased = l->lease.id;
		j->checks_open--;
	} else {
		ljob_take(j, r.count);
	}
	if (!j->job.first_lease_id)
		j->job.first_lease_id = l->lease.id;
	if (j->job.state == JOB_QUEUED)
		j->job.state = JOB_RUNNING;
	if (!j->job.started_at)
		j->job.started_at = now;
	jobtab_touch(&lv->jobs, j);
	leasetab_touch(&lv->leases, l);
	*out = l->lease;
	return TALLY_OK;
}

enum tally_err live_heartbeat(struct live *lv, int64_t id, int64_t now, int64_t ttl_ms,
			      struct lease *out)
{
	struct llease *l = leasetab_find(&lv->leases, id);
	if (!l)
		return TALLY_ENOTFOUND;
	*out = l->lease;
	if (l->lease.state != LEASE_ACTIVE)
		return TALLY_ELOST;
	l->lease.expires_at = now + ttl_ms;
	leasetab_fix(&lv->leases, l);
	leasetab_touch(&lv->leases, l);
	*out = l->lease;
	return TALLY_OK;
}

enum tally_err live_complete(struct live *lv, int64_t id, const uint64_t *counts,
			     const struct count_keys *keys, int64_t now, int *finished)
{
	struct llease *l = leasetab_find(&lv->leases, id);
	struct ljob *j;

	*finished = 0;
	if (!l)
		return TALLY_ENOTFOUND;
	if (l->lease.state != LEASE_ACTIVE || verify_quarantined(&lv->verify, l->lease.worker))
		return TALLY_ELOST; /* (a quarantine takes its worker's leases back) */
	j = l->job;
	if (keys && keys->n > j->job.keys.n) {
		/* An open kernel's batches named new counts: the job's names grow. */
		j->job.keys = *keys;
		jobtab_touch(&lv->jobs, j);
	}
	if (l->lease.check_of) {
		struct verify_check *ch = verify_check_find(j->checks, l->lease.check_of);
		int waiting = ch && ch->leased == l->lease.id; /* not settled or dropped meanwhile */
		memcpy(l->counts, counts, sizeof l->counts);
		l->has_counts = 1;
		(void)live_lease_end(lv, l, LEASE_DONE, now, 0, "", NULL); /* a check lease */
		if (waiting && live_check_opinion(lv, j, ch, &l->lease, counts, now))
			return TALLY_ENOMEM;
		*finished = job_is_final(j->job.state) || job_settle(lv, j, now);
		return TALLY_OK;
	}
	if (ljob_can_count(j, counts))
		return TALLY_ECOUNTS; /* refused: the lease stays live, with no counts */
	memcpy(l->counts, counts, sizeof l->counts);
	l->has_counts = 1;
	if (live_lease_end(lv, l, LEASE_DONE, now, 0, "", NULL))
		return TALLY_ENOMEM; /* not reached: a done lease gives nothing back */
	ljob_count(j, &l->lease, counts);
	if (j->job.spec.verify > 0 &&
	    (double)(rng_splitmix64(&lv->rnd) >> 11) * 0x1.0p-53 < j->job.spec.verify) {
		/* Out of memory, the lease goes unchecked: checks are a sample. */
		struct verify_check *ch = ljob_add_check(j, &l->lease, counts);
		if (ch)
			verify_touch(&lv->verify, ch);
	}
	*finished = job_stop_eval(lv, j, now) || job_settle(lv, j, now);
	return TALLY_OK;
}

enum tally_err live_fail(struct live *lv, int64_t id, const char *reason, int fault, int64_t now,
			 int *job_failed)
{
	struct llease *l = leasetab_find(&lv->leases, id);
	enum tally_err rc;

	if (job_failed)
		*job_failed = 0;
	if (!l)
		return TALLY_ENOTFOUND;
	if (l->lease.state != LEASE_ACTIVE)
		return TALLY_ELOST;
	if ((rc = live_lease_end(lv, l, LEASE_FAILED, now, fault,
				 reason[0] ? reason : "(no reason given)", job_failed)))
		return rc;
	snprintf(l->job->last_failure, sizeof l->job->last_failure, "%s", reason);
	return TALLY_OK;
}

int live_reap(struct live *lv, int64_t now, int *failed_jobs)
{
	struct llease *l;
	int n = 0, failed;
	if (failed_jobs)
		*failed_jobs = 0;
	while ((l = leasetab_expired(&lv->leases, now))) {
		failed = 0;
		if (live_lease_end(lv, l, LEASE_EXPIRED, now, 1,
				   "lease expired (its worker was lost, or too slow to heartbeat)",
				   &failed))
			break; /* out of memory: try again at the next reap */
		n++;
		if (failed_jobs)
			*failed_jobs += failed;
	}
	return n;
}

enum tally_err live_extend(struct live *lv, int64_t id, uint64_t samples,
			   const struct lease *done_last, const uint64_t *done_counts, int64_t now,
			   struct job *out)
{
	struct ljob *j = jobtab_find(&lv->jobs, id);
	struct llease *l;
	struct job *job;
	enum tally_err rc;

	if (!j)
		return TALLY_ENOTFOUND;
	job = &j->job;
	*out = *job;
	if (job->state == JOB_FAILED || job->state == JOB_CANCELLED)
		return TALLY_ECONFLICT;
	if (samples <= job->spec.samples)
		return TALLY_EINVAL;
	if (job->state == JOB_SUCCEEDED && j->stop && job->batches_done < job->batches_total) {
		/* It stopped early: a job of the new size stops at the same prefix. */
		job->spec.samples = samples;
		job->batches_total = job_batches(samples, job->spec.batch_size);
		jobtab_touch(&lv->jobs, j);
		*out = *job;
		return TALLY_OK;
	}
	if (job->state == JOB_SUCCEEDED) {
		job->state = JOB_RUNNING;
		job->finished_at = 0;
	}
	if (job->spec.samples % job->spec.batch_size) {
		/* The last batch was short: it is computed again in full. A lease on it is taken
		 * back (its worker's counts would be the short batch's); done, its counts come out. */
		while ((l = leasetab_live_holding(&lv->leases, j, job->batches_total - 1)))
			if ((rc = live_lease_end(lv, l, LEASE_CANCELLED, now, 0, "", NULL)))
				return rc; /* (a speculative pair: one, then the other) */
		if (done_last && (rc = live_discard(lv, done_last, done_counts, now)))
			return rc;
	}
	job->spec.samples = samples;
	job->batches_total = job_batches(samples, job->spec.batch_size);
	jobtab_touch(&lv->jobs, j);
	job_stop_eval(lv, j, now);
	*out = *job;
	return TALLY_OK;
}

enum tally_err live_cancel(struct live *lv, int64_t id, int64_t now, struct job *out)
{
	struct ljob *j = jobtab_find(&lv->jobs, id);

	if (!j)
		return TALLY_ENOTFOUND;
	*out = j->job;
	if (j->job.state == JOB_SUCCEEDED || j->job.state == JOB_FAILED)
		return TALLY_ECONFLICT;
	if (j->job.state == JOB_CANCELLED)
		return TALLY_OK;
	job_end(lv, j, JOB_CANCELLED, now);
	*out = j->job;
	return TALLY_OK;
}

int live_settle(struct live *lv, int64_t now)
{
	int n = 0;
	for (struct ljob *j = lv->jobs.head; j; j = j->next)
		n += job_stop_eval(lv, j, now) || job_settle(lv, j, now);
	return n;
}

/* --- writing behind ------------------------------------------------------------------------- */

int live_dirty(const struct live *lv)
{
	return jobtab_dirty(&lv->jobs) || leasetab_dirty(&lv->leases) ||
	       verify_dirty(&lv->verify);
}

static enum tally_err write_job(void *ctx, const struct ljob *j)
{
	const struct live_writer *w = ctx;
	struct live_job_row row = { &j->job, j->key, j->next_batch, j->last_failure,
				    j->free.range, j->free.n, j->ranges_changed };
	return w->job(w->ctx, &row);
}

static enum tally_err write_lease(void *ctx, const struct llease *l)
{
	const struct live_writer *w = ctx;
	struct live_lease_row row = { &l->lease, l->finished_at, l->has_counts ? l->counts : NULL };
	if (l->copy && l->twin)
		return TALLY_OK; /* a copy beside its original: a restart forgets it (spec.h) */
	return w->lease(w->ctx, &row);
}

static enum tally_err write_check(void *ctx, const struct verify_check *ch)
{
	const struct live_writer *w = ctx;
	struct live_check_row row = { ch->lease_id, ch->state };
	return w->check(w->ctx, &row);
}

static enum tally_err write_quarantine(void *ctx, const struct verify_quar *q)
{
	const struct live_writer *w = ctx;
	struct live_quarantine_row row = { q->worker, q->reason, q->at, q->job_id };
	return w->quarantine(w->ctx, &row);
}

enum tally_err live_each_dirty(struct live *lv, const struct live_writer *w)
{
	enum tally_err rc;
	void *ctx = (void *)w;

	if ((rc = jobtab_each_dirty(&lv->jobs, write_job, ctx)) ||
	    (rc = leasetab_each_dirty(&lv->leases, write_lease, ctx)))
		return rc;
	return verify_each_dirty(&lv->verify, write_check, write_quarantine, ctx);
}

void live_written(struct live *lv)
{
	verify_written(&lv->verify); /* first: the jobs free their pending checks */
	leasetab_written(&lv->leases);
	jobtab_written(&lv->jobs);
}

void live_totals(const struct live *lv, struct live_totals *out)
{
	memset(out, 0, sizeof *out);
	out->leases_active = leasetab_live(&lv->leases);
	jobtab_totals(&lv->jobs, &out->pending_batches, &out->remaining_samples,
		      &out->checks_pending);
	out->quarantined = verify_count(&lv->verify);
	out->spec_granted = lv->spec.granted;
	out->spec_won = lv->spec.won;
}

uint64_t live_unfinished(const struct live *lv, const char *owner)
{
	return owner ? jobtab_unfinished(&lv->jobs, owner) : jobtab_unfinished_total(&lv->jobs);
}

void live_each_owner(const struct live *lv, void (*fn)(void *ctx, const struct owner_tally *e),
		     void *ctx)
{
	owners_each(&lv->jobs.owners, fn, ctx);
}

void live_each_flow(const struct live *lv,
		    void (*fn)(void *ctx, const struct fair_flow_info *info), void *ctx)
{
	fair_each_ready(&lv->jobs.fair, fn, ctx);
}

struct ended_walk {
	void (*fn)(void *ctx, int64_t id);
	void *ctx;
};

static enum tally_err tell_ended(void *ctx, const struct ljob *j)
{
	const struct ended_walk *w = ctx;
	if (job_is_final(j->job.state))
		w->fn(w->ctx, j->job.id);
	return TALLY_OK;
}

void live_each_ended(const struct live *lv, void (*fn)(void *ctx, int64_t id), void *ctx)
{
	struct ended_walk w = { fn, ctx };
	if (jobtab_each_dirty(&lv->jobs, tell_ended, &w))
		return; /* tell_ended can't fail */
}

uint64_t live_pick_steps(const struct live *lv)
{
	return lv->jobs.fair.steps;
}

size_t live_jobs_count(const struct live *lv)
{
	return lv->jobs.n;
}

size_t live_leases_count(const struct live *lv)
{
	return leasetab_count(&lv->leases);
}
