/* The coordinator: its life, the jobs' lifecycle and what it reports (workers, metrics), on the
 * live state with an injected clock. The leases are coord_leases.c's; what changes is written
 * behind by server/wb.c; the kernels workers offer are kept by server/offers.c. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "alloc.h"
#include "coord_int.h"
#include "db.h"
#include "history.h"
#include "live.h"
#include "log.h"
#include "offers.h"
#include "passover.h"
#include "sched.h"
#include "wb.h"
#include "workers.h"

void coord_wake(struct coord *c)
{
	if (c->hooks.work)
		c->hooks.work(c->hooks.ctx);
}

void coord_job_ended(struct coord *c)
{
	if (c->hooks.jobs)
		c->hooks.jobs(c->hooks.ctx);
}

void coord_tell_expiry(struct coord *c)
{
	int64_t at = live_next_expiry(c->live), look = live_spec_look_at(c->live);

	if (look > coord_now(c) && (!at || look < at))
		at = look; /* parked lease requests ask again when a copy may be worth it (spec.h) */
	if (c->hooks.expiry)
		c->hooks.expiry(c->hooks.ctx, at);
}

/* The live state was read back after a failed write: its leases expire at other times. */
static void coord_reloaded(void *ctx)
{
	coord_tell_expiry(ctx);
}

static void forget_ended(void *ctx, int64_t id)
{
	passover_forget(ctx, id);
}

/* The jobs that ended are written and leave memory: nobody need pass them over any more. */
static void coord_written(void *ctx)
{
	struct coord *c = ctx;
	if (passover_size(c->passover))
		live_each_ended(c->live, forget_ended, c->passover);
}

void coord_free(struct coord *c)
{
	if (!c)
		return;
	wb_free(c->wb);
	sched_free(c->sched);
	live_free(c->live);
	workers_free(c->workers);
	history_free(c->history);
	offers_free(c->offers);
	passover_free(c->passover);
	free(c);
}

struct coord *coord_new(struct db *db, const struct coord_config *cfg, struct coord_clock clock,
			struct coord_hooks hooks)
{
	struct coord *c = t_calloc(1, sizeof *c);
	uint64_t seed = 0;
	if (!c)
		return NULL;
	if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
		seed = (uint64_t)clock.now_ms(clock.ctx) ^ (uint64_t)(uintptr_t)c;
	c->db = db;
	c->cfg = *cfg;
	c->clock = clock;
	c->hooks = hooks;
	c->sched = sched_new(cfg->lease_target_ms);
	c->live = live_new(seed, cfg->max_failures);
	c->workers = workers_new();
	c->history = history_new();
	c->offers = offers_new();
	c->passover = passover_new();
	if (c->live)
		c->wb = wb_new(db, c->live, cfg->lease_timeout_ms,
			       (struct wb_hooks){ coord_reloaded, c, coord_written });
	if (!c->sched || !c->live || !c->workers || !c->history || !c->offers || !c->passover ||
	    !c->wb) {
		coord_free(c);
		return NULL;
	}
	return c;
}

int64_t coord_now(struct coord *c)
{
	return c->clock.now_ms(c->clock.ctx);
}

const char *coord_errmsg(struct coord *c)
{
	return db_errmsg(c->db);
}

/* Quarantined workers are listed from the start, with when they were caught. */
static void list_quarantined(void *ctx, const struct live_quarantine_row *row)
{
	workers_seen(ctx, row->worker, row->at);
}

enum tally_err coord_load(struct coord *c)
{
	enum tally_err rc = wb_load(c->wb, coord_now(c));

	if (rc || (rc = coord_key_load(c)))
		return rc;
	live_each_quarantined(c->live, list_quarantined, c->workers);
	/* A job whose batches are all done and checked finishes now (the store should not hold
	 * one, but a job must never wait for nothing). */
	live_settle(c->live, coord_now(c));
	log_info("msg=\"state loaded\" jobs=%zu leases=%zu", live_jobs_count(c->live),
		 live_leases_count(c->live));
	return TALLY_OK;
}

/* --- durability (server/wb.h) --------------------------------------------------------------- */

void coord_stalled(struct coord *c, int64_t ms)
{
	if (ms <= 0 || !live_next_expiry(c->live))
		return;
	log_warn("msg=\"coordinator was stalled; live leases extended\" ms=%lld", (long long)ms);
	live_extend_all(c->live, ms);
	coord_tell_expiry(c);
}

int coord_dirty(struct coord *c)
{
	return wb_dirty(c->wb);
}

uint64_t coord_changes(struct coord *c)
{
	return c->changes;
}

enum tally_err coord_flush(struct coord *c)
{
	return wb_flush(c->wb);
}

enum tally_err coord_check(struct coord *c)
{
	return wb_check(c->wb, coord_now(c));
}

/* Brings the store up to date (in the open transaction) for a read of it. TALLY_EDB when the
 * live state is not there (broken) or the write failed: either way the reply cannot stand on
 * this pass's changes, and the next flush fails them. */
static enum tally_err coord_sync(struct coord *c)
{
	if (wb_broken(c->wb)) {
		wb_lose(c->wb);
		return TALLY_EDB;
	}
	return wb_sync(c->wb);
}

/* --- operations ----------------------------------------------------------------------------- */

void coord_reported(struct coord *c)
{
	if (coord_dirty(c))
		c->changes++;
}

enum tally_err coord_submit(struct coord *c, const struct job_spec *spec, const char *key,
			    struct job *out)
{
	enum tally_err rc;

	if (wb_broken(c->wb))
		return TALLY_EDB;
	if ((rc = coord_admit(c, spec->owner)))
		return rc;
	/* A kernel with no code here (maybe some workers' plug-in) becomes a kernel known by name
	 * only while the job is in memory (jobtab.h). */
	rc = live_submit(c->live, spec, key, coord_now(c), out);
	if (!rc) {
		c->changes++;
		c->counted.jobs_submitted++;
		log_info("msg=\"job submitted\" job=%lld kernel=%s samples=%llu batch_size=%llu "
			 "owner=\"%s\" priority=%d", (long long)out->id, kernel_name_of(&out->spec),
			 (unsigned long long)spec->samples, (unsigned long long)spec->batch_size,
			 spec->owner, spec->priority);
		coord_wake(c);
	}
	return rc;
}

enum tally_err coord_job(struct coord *c, struct coord_scope scope, int64_t id, struct job *out)
{
	const struct job *j = live_job(c->live, id);
	enum tally_err rc;

	if (wb_broken(c->wb))
		return TALLY_EDB;
	coord_reported(c);
	if (j)
		*out = *j;
	else if ((rc = db_job_get(c->db, id, out)))
		return rc;
	if (scope.owner && strcmp(scope.owner, out->spec.owner)) {
		memset(out, 0, sizeof *out); /* another's job: nothing of it leaves */
		return TALLY_ENOTFOUND;
	}
	return TALLY_OK;
}

enum tally_err coord_job_by_key(struct coord *c, const char *owner, const char *key,
				struct job *out)
{
	const struct job *j = live_job_by_key(c->live, key);
	enum tally_err rc;

	if (wb_broken(c->wb))
		return TALLY_EDB;
	coord_reported(c);
	if (j && !strcmp(j->spec.owner, owner)) {
		*out = *j;
		return TALLY_OK;
	}
	/* Memory finds one job by key: another owner's may hide this owner's, not yet written.
	 * Then the store is brought up to date (in the open transaction) to be searched. */
	if (j && (rc = coord_sync(c)))
		return rc;
	/* Written already (the store sees what the open transaction holds): memory may still
	 * have the fresher copy. */
	if ((rc = db_job_by_key(c->db, owner, key, out)))
		return rc;
	if ((j = live_job(c->live, out->id)))
		*out = *j;
	return TALLY_OK;
}

enum tally_err coord_jobs(struct coord *c, struct coord_scope scope, int state, int64_t before,
			  size_t limit, enum tally_err (*each)(void *ctx, const struct job *job),
			  void *ctx)
{
	/* The list is the store's: bring it up to date (in the open transaction) first. */
	enum tally_err rc = coord_sync(c);
	if (rc)
		return rc;
	coord_reported(c);
	rc = db_job_list(c->db, scope.owner, state, before, limit, each, ctx);
	if (rc == TALLY_EDB)
		wb_read_failed(c->wb);
	return rc;
}

enum tally_err coord_cancel(struct coord *c, struct coord_scope scope, int64_t id,
			    struct job *out)
{
	const struct job *j = live_job(c->live, id);
	int was_cancelled = j && j->state == JOB_CANCELLED;
	enum tally_err rc;

	if (wb_broken(c->wb))
		return TALLY_EDB;
	if (scope.owner && (rc = coord_job(c, scope, id, out)))
		return rc;
	coord_reported(c);
	rc = live_cancel(c->live, id, coord_now(c), out);
	if (rc == TALLY_ENOTFOUND) {
		/* Not in memory: finished and written. */
		if ((rc = db_job_get(c->db, id, out)))
			return rc;
		return out->state == JOB_CANCELLED ? TALLY_OK : TALLY_ECONFLICT;
	}
	if (!rc && !was_cancelled) {
		c->changes++;
		log_info("msg=\"job cancelled\" job=%lld", (long long)id);
		coord_tell_expiry(c);
		coord_job_ended(c);
	}
	return rc;
}

/* coord_extend's one pass over a job's done leases: their counts go to its prefix segments
 * (a job just loaded), and the one holding the short last batch is kept. */
struct holding {
	struct live *live;
	int rebuild;    /* the job was just loaded: its segments are empty */
	int short_last; /* its last batch, `batch`, is short */
	uint64_t batch;
	struct lease lease;
	uint64_t counts[KERNEL_MAX_KEYS];
	int found;
};

static enum tally_err extend_scan(void *ctx, const struct lease *l, const uint64_t *counts)
{
	struct holding *h = ctx;
	if (h->rebuild)
		live_load_result(h->live, l, counts);
	if (!h->short_last || h->found || l->first_batch > h->batch ||
	    h->batch - l->first_batch >= l->batch_count)
		return TALLY_OK;
	h->lease = *l;
	memcpy(h->counts, counts, sizeof h->counts);
	h->found = 1;
	return TALLY_OK;
}

enum tally_err coord_extend(struct coord *c, struct coord_scope scope, int64_t id,
			    uint64_t samples, struct job *out)
{
	const struct job *j;
	struct holding *h = NULL;
	int loaded = 0;
	enum tally_err rc;

	if (wb_broken(c->wb))
		return TALLY_EDB;
	if (scope.owner && (rc = coord_job(c, scope, id, out)))
		return rc;
	coord_reported(c);
	/* The store must hold every done lease, to find the one with a short last batch. */
	if (wb_sync(c->wb))
		return TALLY_EDB;
	if (!(j = live_job(c->live, id))) {
		/* Finished and written: back into memory, unless it cannot grow. */
		if ((rc = db_job_get(c->db, id, out)))
			return rc;
		if (out->state == JOB_FAILED || out->state == JOB_CANCELLED)
			return TALLY_ECONFLICT;
		if (samples <= out->spec.samples)
			return TALLY_EINVAL;
		/* It becomes unfinished again: it must fit its owner's quota as a submit would. */
		if ((rc = coord_admit(c, out->spec.owner)))
			return rc;
		if ((rc = live_load_job(c->live, out, out->batches_total, "")))
			return rc;
		loaded = 1;
		j = live_job(c->live, id);
	}
	if (!(h = t_calloc(1, sizeof *h))) {
		rc = TALLY_ENOMEM;
		goto done;
	}
	h->live = c->live;
	h->rebuild = loaded;
	h->short_last = j->spec.samples % j->spec.batch_size != 0;
	h->batch = j->batches_total - 1;
	if ((h->rebuild || h->short_last) && (rc = db_job_results(c->db, id, extend_scan, h)))
		goto done;
	if (loaded && j->state == JOB_SUCCEEDED && h->short_last &&
	    j->batches_done == j->batches_total && !h->found) {
		/* Its short last batch was done before leases kept their counts (schema 4): it
		 * cannot be taken out to be computed again. */
		*out = *j;
		rc = TALLY_ECONFLICT;
		goto done;
	}
	rc = live_extend(c->live, id, samples, h->found ? &h->lease : NULL, h->counts,
			 coord_now(c), out);
	if (!rc) {
		c->changes++;
		log_info("msg=\"job extended\" job=%lld samples=%llu", (long long)id,
			 (unsigned long long)samples);
		coord_tell_expiry(c);
		coord_wake(c);
	}
done:
	if ((loaded && rc) || rc == TALLY_ENOMEM)
		wb_lose(c->wb); /* loaded for nothing, or half changed: the next flush reads it back */
	free(h);
	return rc;
}

const char *coord_last_failure(struct coord *c, int64_t id)
{
	return live_last_failure(c->live, id);
}

int coord_kernel_offered(struct coord *c, const char *name, unsigned version)
{
	return offers_has(c->offers, name, version);
}

static void count_lease(void *ctx, const struct lease *l)
{
	workers_holds(ctx, l->worker, l->id, l->granted_at);
}

struct workers_walk {
	struct coord *c;
	int64_t now;
	enum tally_err (*each)(void *ctx, const struct coord_worker *w);
	void *ctx;
	enum tally_err stopped; /* what each returned to stop the walk */
};

static int walk_worker(void *ctx, const struct worker_info *info)
{
	struct workers_walk *ww = ctx;
	struct coord_worker w = { *info, sched_known_rate(ww->c->sched, info->name), WORKER_LOST,
				  live_quarantined(ww->c->live, info->name) };
	if (w.reason)
		w.state = WORKER_QUARANTINED;
	else if (info->leases)
		w.state = WORKER_ACTIVE;
	else if (ww->now - info->last_seen <= ww->c->cfg.lease_timeout_ms)
		w.state = WORKER_IDLE;
	ww->stopped = ww->each(ww->ctx, &w);
	return ww->stopped != TALLY_OK;
}

/* A quarantined worker the registry has forgotten (it holds WORKERS_MAX names) is listed
 * still, as last seen when it was caught. */
static void walk_forgotten(void *ctx, const struct live_quarantine_row *row)
{
	struct workers_walk *ww = ctx;
	struct worker_info info = { row->worker, row->at, row->at, 0, 0 };
	if (!ww->stopped && !workers_known(ww->c->workers, row->worker))
		walk_worker(ww, &info);
}

enum tally_err coord_workers(struct coord *c,
			     enum tally_err (*each)(void *ctx, const struct coord_worker *w),
			     void *ctx)
{
	struct workers_walk ww = { c, coord_now(c), each, ctx, TALLY_OK };
	if (wb_broken(c->wb))
		return TALLY_EDB;
	workers_reset_leases(c->workers);
	live_each_lease(c->live, count_lease, c->workers);
	workers_each(c->workers, walk_worker, &ww);
	live_each_quarantined(c->live, walk_forgotten, &ww);
	return ww.stopped;
}

static enum tally_err count_worker(void *ctx, const struct coord_worker *w)
{
	struct coord_metrics *m = ctx;
	m->workers[w->state]++;
	return TALLY_OK;
}

enum tally_err coord_metrics(struct coord *c, struct coord_metrics *out)
{
	struct live_totals t;
	enum tally_err rc;

	/* Jobs by state are the store's: bring it up to date (in the open transaction) first. */
	if ((rc = coord_sync(c)))
		return rc;
	*out = c->counted;
	if ((rc = db_job_counts(c->db, out->jobs))) {
		wb_read_failed(c->wb);
		return rc;
	}
	live_totals(c->live, &t);
	out->leases_active = t.leases_active;
	out->queue_batches = t.pending_batches;
	out->queue_samples = t.remaining_samples;
	out->checks_pending = t.checks_pending;
	out->quarantined = t.quarantined;
	out->spec_granted = t.spec_granted;
	out->spec_won = t.spec_won;
	coord_owner_metrics(c, out);
	return coord_workers(c, count_worker, out);
}

enum tally_err coord_history(struct coord *c, struct coord_scope scope, int64_t id,
			     struct job *job, const struct history_point **points, size_t *n)
{
	enum tally_err rc = coord_job(c, scope, id, job);
	*points = rc ? NULL : history_get(c->history, id, n);
	if (rc)
		*n = 0;
	return rc;
}

const char *coord_quarantined(struct coord *c, const char *worker)
{
	return live_quarantined(c->live, worker);
}

enum tally_err coord_next_expiry(struct coord *c, int64_t *at)
{
	*at = live_next_expiry(c->live);
	return TALLY_OK;
}
