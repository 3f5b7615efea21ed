/* The coordinator: job lifecycle and lease handling on the live state, written behind to the
 * store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "coord.h"
#include "history.h"
#include "live.h"
#include "log.h"
#include "sched.h"
#include "workers.h"

/* Lease ids are reserved in blocks of this many sequence numbers; a new block is written when
 * half of the current one is used. */
#define COORD_SEQ_BLOCK (1ULL << 16)
#define COORD_SEQ_META "lease_seq_limit"

struct coord {
	struct db *db;
	struct live *live;
	struct sched *sched;
	struct workers *workers;
	struct history *history;
	struct coord_config cfg;
	struct coord_clock clock;
	struct coord_hooks hooks;
	const struct lease_request *sizing; /* the request being sized, during coord_lease */
	/* The kernels workers have offered ("name" or "name@version"), so that a job can say it
	 * waits for one nobody offers. The oldest is forgotten first when full. */
	struct {
		char offer[KERNEL_NAME_MAX + 12];
		int64_t at;
	} offers[COORD_OFFERS_MAX];
	size_t noffers;
	uint64_t changes;     /* changes whose replies wait for a flush */
	uint64_t seq_pending; /* a lease id limit written but not yet committed (0: none) */
	int synced;           /* changes are written but not committed */
	int lost;             /* a write failed between flushes: the next flush must fail */
	int broken;           /* the live state could not be loaded again after a failed write */
	int write_failed;     /* the last commit failed, and no commit has worked since */
	int64_t probed_at;    /* when coord_check last tried a write */
	struct coord_metrics counted; /* the counters of coord_metrics(), since the start */
};

struct coord *coord_new(struct db *db, const struct coord_config *cfg, struct coord_clock clock,
			struct coord_hooks hooks)
{
	struct coord *c = calloc(1, sizeof *c);
	uint64_t seed = 0;
	if (!c)
		return NULL;
	if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
		seed = (uint64_t)clock.now_ms(clock.ctx) ^ (uint64_t)(uintptr_t)c;
	c->sched = sched_new(cfg->lease_target_ms);
	c->live = live_new(seed, cfg->max_failures);
	c->workers = workers_new();
	c->history = history_new();
	if (!c->sched || !c->live || !c->workers || !c->history) {
		sched_free(c->sched);
		live_free(c->live);
		workers_free(c->workers);
		history_free(c->history);
		free(c);
		return NULL;
	}
	c->db = db;
	c->cfg = *cfg;
	c->clock = clock;
	c->hooks = hooks;
	return c;
}

void coord_free(struct coord *c)
{
	if (!c)
		return;
	sched_free(c->sched);
	live_free(c->live);
	workers_free(c->workers);
	history_free(c->history);
	free(c);
}

int64_t coord_now(struct coord *c)
{
	return c->clock.now_ms(c->clock.ctx);
}

const char *coord_errmsg(struct coord *c)
{
	return db_errmsg(c->db);
}

/* --- loading -------------------------------------------------------------------------------- */

struct loading {
	struct live *live;
	int64_t expires_at; /* the least expiry a loaded lease gets */
};

static int load_job(void *ctx, const struct job *job, uint64_t next_batch, const char *failure)
{
	return live_load_job(((struct loading *)ctx)->live, job, next_batch, failure);
}

static int load_range(void *ctx, int64_t job_id, const struct batch_range *r)
{
	return live_load_range(((struct loading *)ctx)->live, job_id, r);
}

static int load_check(void *ctx, const struct lease *checked, const uint64_t *counts)
{
	return live_load_check(((struct loading *)ctx)->live, checked, counts);
}

static int load_opinion(void *ctx, const struct lease *check, const uint64_t *counts)
{
	return live_load_opinion(((struct loading *)ctx)->live, check, counts);
}

/* A done lease of an early-stopping job: its counts go to their prefix segment. */
static int load_result(void *ctx, const struct lease *l, const uint64_t *counts)
{
	live_load_result(ctx, l, counts);
	return 0;
}

/* Reads the done leases of the early-stopping jobs just loaded. */
static enum tally_err load_results(struct live *lv, struct db *db)
{
	enum tally_err rc = TALLY_OK;
	for (int64_t id = 0; !rc && (id = live_next_stopping_job(lv, id));)
		rc = db_job_results(db, id, load_result, lv);
	return rc;
}

static int load_quarantine(void *ctx, const char *worker, const char *reason, int64_t at)
{
	return live_load_quarantine(((struct loading *)ctx)->live, worker, reason, at);
}

/* A lease from before a restart gets a whole lease timeout from now: its worker could not reach
 * a coordinator that was down, and should not lose its work (nor strike its batches) for it. */
static int load_lease(void *ctx, const struct lease *lease)
{
	struct loading *ld = ctx;
	struct lease l = *lease;
	if (l.expires_at < ld->expires_at)
		l.expires_at = ld->expires_at;
	return live_load_lease(ld->live, &l);
}

/* Fills the (empty) live state from the store. Sets *seq_floor to the lowest lease sequence
 * number that no stored lease id has used. After a restart (not after a failed write, which
 * may recur) live leases get a whole lease timeout from now. */
static enum tally_err coord_read_store(struct coord *c, uint64_t *seq_floor, int64_t *limit,
				       int restart)
{
	struct loading ld = { c->live, restart ? coord_now(c) + c->cfg.lease_timeout_ms : 0 };
	struct db_loader l = { load_job,  load_range,      load_check, load_opinion,
			       load_lease, load_quarantine, &ld };
	int64_t max_job = 0, max_lease = 0;
	int skipped = 0;
	enum tally_err rc = db_load(c->db, &l, &max_job, &max_lease, &skipped);

	if (!rc)
		rc = load_results(c->live, c->db);
	if (!rc)
		rc = db_meta_get(c->db, COORD_SEQ_META, limit);
	if (rc) {
		live_clear(c->live);
		return rc;
	}
	if (skipped)
		log_warn("msg=\"jobs left out: this build lacks their kernel\" count=%d", skipped);
	live_set_next_job_id(c->live, max_job + 1);
	*seq_floor = ((uint64_t)max_lease >> LIVE_ID_RANDOM_BITS) + 1;
	return TALLY_OK;
}

/* Sets a meta value in a transaction of its own. */
static enum tally_err coord_write_meta(struct coord *c, const char *name, int64_t value)
{
	enum tally_err rc;
	if ((rc = db_begin(c->db)) || (rc = db_meta_set(c->db, name, value)) ||
	    (rc = db_commit(c->db)))
		db_rollback(c->db);
	return rc;
}

/* Quarantined workers are listed from the start, with when they were caught. */
static void list_quarantined(void *ctx, const struct live_quarantine_row *row)
{
	workers_seen(ctx, row->worker, row->at);
}

enum tally_err coord_load(struct coord *c)
{
	int64_t limit = 0;
	uint64_t next = 0;
	enum tally_err rc = coord_read_store(c, &next, &limit, 1);

	if (rc)
		return rc;
	/* Ids below the stored limit may have been handed out before a crash: start above it. */
	if ((uint64_t)limit > next)
		next = (uint64_t)limit;
	if ((rc = coord_write_meta(c, COORD_SEQ_META, (int64_t)(next + COORD_SEQ_BLOCK)))) {
		live_clear(c->live);
		return rc;
	}
	live_set_seq(c->live, next, next + COORD_SEQ_BLOCK);
	live_each_quarantined(c->live, list_quarantined, c->workers);
	/* A job whose batches are all done and checked finishes now (the store should not hold
	 * one, but a job must never wait for nothing). */
	live_settle(c->live, coord_now(c));
	log_info("msg=\"state loaded\" jobs=%zu leases=%zu", live_jobs_count(c->live),
		 live_leases_count(c->live));
	return TALLY_OK;
}

static void coord_tell_expiry(struct coord *c);

/* After a failed write: memory is ahead of the store, so it is read again. Lease sequence
 * numbers already handed out are never reused. */
static void coord_reload(struct coord *c)
{
	uint64_t next = live_seq_next(c->live), limit = live_seq_limit(c->live), floor = 0;
	int64_t stored = 0;

	live_clear(c->live);
	c->seq_pending = 0;
	c->synced = 0;
	if (coord_read_store(c, &floor, &stored, 0)) {
		c->broken = 1;
		log_error("msg=\"reloading state failed\" error=\"%s\"", db_errmsg(c->db));
		return;
	}
	c->broken = 0;
	live_set_seq(c->live, next, limit);
	coord_tell_expiry(c);
	log_warn("msg=\"state reloaded after a failed write\" jobs=%zu leases=%zu",
		 live_jobs_count(c->live), live_leases_count(c->live));
}

/* --- writing behind ------------------------------------------------------------------------- */

static enum tally_err save_job(void *ctx, const struct live_job_row *row)
{
	struct db *db = ctx;
	enum tally_err rc = db_job_save(db, row->job, row->key, row->next_batch, row->last_failure);
	if (!rc && row->ranges_changed)
		rc = db_ranges_save(db, row->job->id, row->free, row->nfree);
	return rc;
}

static enum tally_err save_lease(void *ctx, const struct live_lease_row *row)
{
	return db_lease_save(ctx, row->lease, row->finished_at, row->counts);
}

static enum tally_err save_check(void *ctx, const struct live_check_row *row)
{
	return db_check_save(ctx, row->lease_id, (int)row->state);
}

static enum tally_err save_quarantine(void *ctx, const struct live_quarantine_row *row)
{
	return db_quarantine_save(ctx, row->worker, row->at, row->job_id, row->reason);
}

/* Writes the changes into the open transaction (not committing), so that the store's own reads
 * see them. On failure the transaction is rolled back and the state reloaded. */
static enum tally_err coord_sync(struct coord *c)
{
	enum tally_err rc;
	uint64_t next = live_seq_next(c->live), limit = live_seq_limit(c->live);
	int more_ids = !c->seq_pending && limit - next < COORD_SEQ_BLOCK / 2;
	struct live_writer w = { save_job, save_lease, save_check, save_quarantine, c->db };

	if (!live_dirty(c->live) && !more_ids)
		return TALLY_OK;
	if ((rc = db_begin(c->db)))
		goto fail;
	if ((rc = (enum tally_err)live_each_dirty(c->live, &w)))
		goto fail;
	if (more_ids) {
		if ((rc = db_meta_set(c->db, COORD_SEQ_META, (int64_t)(next + COORD_SEQ_BLOCK))))
			goto fail;
		c->seq_pending = next + COORD_SEQ_BLOCK;
	}
	live_written(c->live);
	c->synced = 1;
	return TALLY_OK;
fail:
	db_rollback(c->db);
	coord_reload(c);
	return rc;
}

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
	return c->lost || c->broken || c->synced || live_dirty(c->live);
}

uint64_t coord_changes(struct coord *c)
{
	return c->changes;
}

/* Writes and commits the changes; on failure the state is reloaded. */
static enum tally_err coord_commit(struct coord *c)
{
	enum tally_err rc = coord_sync(c);
	if (!rc && c->synced) {
		rc = db_commit(c->db);
		c->synced = 0;
		if (rc) {
			coord_reload(c);
		} else {
			c->write_failed = 0; /* a write worked */
			if (c->seq_pending) {
				live_set_seq(c->live, live_seq_next(c->live), c->seq_pending);
				c->seq_pending = 0;
			}
		}
	}
	return rc;
}

enum tally_err coord_flush(struct coord *c)
{
	enum tally_err rc;
	if (c->broken) {
		coord_reload(c); /* the store may answer again */
		if (c->broken) {
			c->write_failed = 1;
			return TALLY_EDB;
		}
	}
	if (c->lost) {
		/* A write between flushes failed: the changes before it are gone, and those after
		 * it go too, so that one answer covers them all. */
		c->lost = 0;
		db_rollback(c->db);
		coord_reload(c);
		rc = TALLY_EDB;
	} else {
		rc = coord_commit(c);
	}
	if (rc)
		log_error("msg=\"commit failed\" error=\"%s\"", db_errmsg(c->db));
	if (rc)
		c->write_failed = 1;
	return rc;
}

/* --- operations ----------------------------------------------------------------------------- */

/* A reply that reports state must not get ahead of the store: while changes are uncommitted, it
 * waits for the flush like a reply reporting a change of its own. */
static void coord_reported(struct coord *c)
{
	if (coord_dirty(c))
		c->changes++;
}

static void coord_wake(struct coord *c)
{
	if (c->hooks.work)
		c->hooks.work(c->hooks.ctx);
}

static void coord_job_ended(struct coord *c)
{
	if (c->hooks.jobs)
		c->hooks.jobs(c->hooks.ctx);
}

/* Tells the HTTP layer when the next lease may expire, so that long polls wake to take it. */
static void coord_tell_expiry(struct coord *c)
{
	if (c->hooks.expiry)
		c->hooks.expiry(c->hooks.ctx, live_next_expiry(c->live));
}

enum tally_err coord_submit(struct coord *c, const struct job_spec *spec, const char *key,
			    struct job *out)
{
	enum tally_err rc = c->broken ? TALLY_EDB
				      : live_submit(c->live, spec, key, coord_now(c), out);
	if (!rc) {
		c->changes++;
		c->counted.jobs_submitted++;
		log_info("msg=\"job submitted\" job=%lld kernel=%s samples=%llu batch_size=%llu",
			 (long long)out->id, spec->kernel->name, (unsigned long long)spec->samples,
			 (unsigned long long)spec->batch_size);
		coord_wake(c);
	}
	return rc;
}

enum tally_err coord_job(struct coord *c, int64_t id, struct job *out)
{
	const struct job *j = live_job(c->live, id);
	if (c->broken)
		return TALLY_EDB;
	coord_reported(c);
	if (j) {
		*out = *j;
		return TALLY_OK;
	}
	return db_job_get(c->db, id, out);
}

enum tally_err coord_job_by_key(struct coord *c, const char *key, struct job *out)
{
	const struct job *j = live_job_by_key(c->live, key);
	enum tally_err rc;

	if (c->broken)
		return TALLY_EDB;
	coord_reported(c);
	if (j) {
		*out = *j;
		return TALLY_OK;
	}
	/* Written already (the store sees what the open transaction holds): memory may still
	 * have the fresher copy. */
	if ((rc = db_job_by_key(c->db, key, out)))
		return rc;
	if ((j = live_job(c->live, out->id)))
		*out = *j;
	return TALLY_OK;
}

enum tally_err coord_jobs(struct coord *c, int state, int64_t before, size_t limit,
			  int (*each)(void *ctx, const struct job *job), void *ctx)
{
	/* The list is the store's: bring it up to date (in the open transaction) first. */
	enum tally_err rc = c->broken ? TALLY_EDB : coord_sync(c);
	if (rc) {
		c->lost = 1;
		return rc;
	}
	coord_reported(c);
	rc = db_job_list(c->db, state, before, limit, each, ctx);
	if (rc == TALLY_EDB && c->synced)
		c->lost = 1; /* the failure may have taken the open transaction with it */
	return rc;
}

enum tally_err coord_cancel(struct coord *c, int64_t id, struct job *out)
{
	const struct job *j = live_job(c->live, id);
	int was_cancelled = j && j->state == JOB_CANCELLED;
	enum tally_err rc;

	if (c->broken)
		return TALLY_EDB;
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

static int extend_scan(void *ctx, const struct lease *l, const uint64_t *counts)
{
	struct holding *h = ctx;
	if (h->rebuild)
		live_load_result(h->live, l, counts);
	if (!h->short_last || h->found || l->first_batch > h->batch ||
	    h->batch - l->first_batch >= l->batch_count)
		return 0;
	h->lease = *l;
	memcpy(h->counts, counts, sizeof h->counts);
	h->found = 1;
	return 0;
}

enum tally_err coord_extend(struct coord *c, int64_t id, uint64_t samples, struct job *out)
{
	const struct job *j;
	struct holding *h = NULL;
	int loaded = 0;
	enum tally_err rc;

	if (c->broken)
		return TALLY_EDB;
	coord_reported(c);
	/* The store must hold every done lease, to find the one with a short last batch. */
	if ((rc = coord_sync(c))) {
		c->lost = 1;
		return TALLY_EDB;
	}
	if (!(j = live_job(c->live, id))) {
		/* Finished and written: back into memory, unless it cannot grow. */
		if ((rc = db_job_get(c->db, id, out)))
			return rc;
		if (out->state == JOB_FAILED || out->state == JOB_CANCELLED)
			return TALLY_ECONFLICT;
		if (samples <= out->spec.samples)
			return TALLY_EINVAL;
		if ((rc = live_load_job(c->live, out, out->batches_total, "")))
			return rc;
		loaded = 1;
		j = live_job(c->live, id);
	}
	if (!(h = calloc(1, sizeof *h))) {
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
		c->lost = 1; /* loaded for nothing, or half changed: the next flush reads it back */
	free(h);
	return rc;
}

static uint64_t coord_size(void *ctx, const struct job *job, uint64_t remaining)
{
	struct coord *c = ctx;
	return sched_lease_batches(c->sched, c->sizing->worker, job->spec.batch_size, remaining,
				   c->sizing->max_batches);
}

static enum tally_err coord_acquire(struct coord *c, const struct lease_request *req, int64_t now,
				    struct lease *out)
{
	return live_acquire(c->live, req->worker, req->kernels, req->nkernels, req->max_batches,
			    req->skip, req->nskip, now,
			    c->cfg.lease_timeout_ms, coord_size, c, out);
}

/* Remembers the kernels a worker offers. */
static void coord_offers(struct coord *c, const struct lease_request *req, int64_t now)
{
	for (size_t i = 0; i < req->nkernels; i++) {
		size_t k, oldest = 0;
		for (k = 0; k < c->noffers; k++) {
			if (!strcmp(c->offers[k].offer, req->kernels[i]))
				break;
			if (c->offers[k].at < c->offers[oldest].at)
				oldest = k;
		}
		if (k == c->noffers)
			k = c->noffers < COORD_OFFERS_MAX ? c->noffers++ : oldest;
		snprintf(c->offers[k].offer, sizeof c->offers[k].offer, "%s", req->kernels[i]);
		c->offers[k].at = now;
	}
}

const char *coord_last_failure(struct coord *c, int64_t id)
{
	return live_last_failure(c->live, id);
}

int coord_kernel_offered(struct coord *c, const char *name, unsigned version)
{
	for (size_t k = 0; k < c->noffers; k++) {
		unsigned v;
		if (kernel_offer_is(c->offers[k].offer, name, &v) && (!v || !version || v == version))
			return 1;
	}
	return 0;
}

enum tally_err coord_lease(struct coord *c, const struct lease_request *req, struct lease *out)
{
	int64_t now = coord_now(c);
	enum tally_err rc;
	int reaped, failed;

	if (c->broken)
		return TALLY_EDB;
	workers_seen(c->workers, req->worker, now);
	coord_offers(c, req, now);
	reaped = live_reap(c->live, now, &failed);
	c->sizing = req;
	rc = coord_acquire(c, req, now, out);
	if (rc == TALLY_ETOOBIG) {
		/* The reserved ids are used up (the flushes fell behind): reserve more now. */
		if (c->lost)
			rc = TALLY_EDB; /* committing now would commit what the next flush must undo */
		else if ((rc = coord_commit(c)))
			c->lost = 1;
		else
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
	if (c->broken)
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

static int discard_result(void *ctx, const struct lease *l, const uint64_t *counts)
{
	struct coord *c = ctx;
	return (int)live_discard(c->live, l, counts, coord_now(c));
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
		if ((rc = coord_sync(c)) || ((since = live_oldest_lease(c->live)) &&
					       (rc = db_worker_results(c->db, name, since,
								       discard_result, c)))) {
			c->lost = 1; /* the next flush undoes all of it */
			return rc == TALLY_ENOMEM ? rc : TALLY_EDB;
		}
	}
	*finished = live_settle(c->live, coord_now(c));
	coord_wake(c); /* discarded batches, and a check that wants another opinion */
	return TALLY_OK;
}

static enum tally_err complete_lease(struct coord *c, int64_t id, const json_t *counts,
				     int *duplicate, char *err, size_t errlen)
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
	if (kernel_counts_decode(lease.spec.kernel, &keys, counts, values, err, errlen))
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
		c->lost = 1; /* memory is half changed: the next flush reads the store back */
	if (rc)
		return rc;
	c->changes++;
	if (!lease.check_of) {
		const struct job *j = live_job(c->live, lease.job_id);
		c->counted.batches_completed += lease.batch_count;
		c->counted.samples_completed += lease_samples(&lease);
		if (j)
			history_add(c->history, j->id, now, j->samples_done, j->counts);
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
		log_info("msg=\"job ended\" job=%lld", (long long)lease.job_id);
		coord_job_ended(c);
	}
	return TALLY_OK;
}

enum tally_err coord_complete(struct coord *c, int64_t id, const json_t *counts, int *duplicate,
			      char *err, size_t errlen)
{
	enum tally_err rc;
	*duplicate = 0;
	if (c->broken)
		return TALLY_EDB;
	coord_heard(c, id);
	rc = complete_lease(c, id, counts, duplicate, err, errlen);
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

enum tally_err coord_fail(struct coord *c, int64_t id, const char *reason, int fault)
{
	int failed = 0;
	enum tally_err rc;

	coord_heard(c, id);
	rc = c->broken ? TALLY_EDB : live_fail(c->live, id, reason, fault, coord_now(c), &failed);
	char clean[201];
	struct lease stored;

	if (rc == TALLY_ENOTFOUND) {
		memset(&stored, 0, sizeof stored);
		return coord_stored_lease(c, id, &stored);
	}
	if (!rc) {
		c->changes++; /* a strike, or a job failed: its reply waits for the commit */
		c->counted.leases_failed++;
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

static void count_lease(void *ctx, const struct lease *l)
{
	workers_holds(ctx, l->worker, l->id, l->granted_at);
}

struct workers_walk {
	struct coord *c;
	int64_t now;
	int (*each)(void *ctx, const struct coord_worker *w);
	void *ctx;
	int stopped; /* each returned non-zero */
};

static int walk_worker(void *ctx, const struct worker_info *info)
{
	struct workers_walk *ww = ctx;
	struct coord_worker w = { *info, sched_known_rate(ww->c->sched, info->name), "lost",
				  live_quarantined(ww->c->live, info->name) };
	if (w.reason)
		w.state = "quarantined";
	else if (info->leases)
		w.state = "active";
	else if (ww->now - info->last_seen <= ww->c->cfg.lease_timeout_ms)
		w.state = "idle";
	ww->stopped = ww->each(ww->ctx, &w);
	return ww->stopped;
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

enum tally_err coord_workers(struct coord *c, int (*each)(void *ctx, const struct coord_worker *w),
			     void *ctx)
{
	struct workers_walk ww = { c, coord_now(c), each, ctx, 0 };
	if (c->broken)
		return TALLY_EDB;
	workers_reset_leases(c->workers);
	live_each_lease(c->live, count_lease, c->workers);
	workers_each(c->workers, walk_worker, &ww);
	live_each_quarantined(c->live, walk_forgotten, &ww);
	return TALLY_OK;
}

static int count_worker(void *ctx, const struct coord_worker *w)
{
	struct coord_metrics *m = ctx;
	if (!strcmp(w->state, "quarantined"))
		m->workers_quarantined++;
	else if (!strcmp(w->state, "active"))
		m->workers_active++;
	else if (!strcmp(w->state, "idle"))
		m->workers_idle++;
	else
		m->workers_lost++;
	return 0;
}

enum tally_err coord_metrics(struct coord *c, struct coord_metrics *out)
{
	struct live_totals t;
	enum tally_err rc;

	/* Jobs by state are the store's: bring it up to date (in the open transaction) first. */
	if ((rc = c->broken ? TALLY_EDB : coord_sync(c))) {
		c->lost = 1;
		return rc;
	}
	*out = c->counted;
	if ((rc = db_job_counts(c->db, out->jobs))) {
		if (c->synced)
			c->lost = 1; /* the failure may have taken the open transaction with it */
		return rc;
	}
	live_totals(c->live, &t);
	out->leases_active = t.leases_active;
	out->queue_batches = t.pending_batches;
	out->queue_samples = t.remaining_samples;
	out->checks_pending = t.checks_pending;
	out->quarantined = t.quarantined;
	return coord_workers(c, count_worker, out);
}

enum tally_err coord_history(struct coord *c, int64_t id, struct job *job,
			     const struct history_point **points, size_t *n)
{
	enum tally_err rc = coord_job(c, id, job);
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

enum tally_err coord_check(struct coord *c)
{
	enum tally_err rc;
	if (c->broken) {
		coord_reload(c);
		if (c->broken)
			return TALLY_EDB;
	}
	if (!c->write_failed)
		return db_check(c->db);
	/* Writes failed last time: healthy again only once a write works (space freed, say). */
	if (c->synced || live_dirty(c->live) || c->lost)
		return TALLY_EDB; /* the next pass's commit will tell */
	if (coord_now(c) - c->probed_at < 1000)
		return TALLY_EDB; /* probed within the second: /healthz must stay cheap */
	c->probed_at = coord_now(c);
	if ((rc = coord_write_meta(c, "health_probe", coord_now(c)))) /* a value that changes */
		return rc;
	c->write_failed = 0;
	return TALLY_OK;
}
