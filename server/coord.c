/* The coordinator: job lifecycle and lease handling on top of the store and the lease policy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "coord.h"
#include "log.h"
#include "sched.h"

struct coord {
	struct db *db;
	struct sched *sched;
	struct coord_config cfg;
	struct coord_clock clock;
	struct coord_hooks hooks;
	const struct lease_request *sizing; /* the request being sized, during coord_lease */
};

struct coord *coord_new(struct db *db, const struct coord_config *cfg, struct coord_clock clock,
			struct coord_hooks hooks)
{
	struct coord *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->sched = sched_new(cfg->lease_target_ms);
	if (!c->sched) {
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
	int64_t at = 0;
	if (c->hooks.expiry && !db_next_expiry(c->db, &at))
		c->hooks.expiry(c->hooks.ctx, at);
}

enum tally_err coord_submit(struct coord *c, const struct job_spec *spec, struct job *out)
{
	enum tally_err rc = db_job_insert(c->db, spec, coord_now(c), out);
	if (!rc) {
		log_info("msg=\"job submitted\" job=%lld kernel=%s samples=%llu batch_size=%llu",
			 (long long)out->id, spec->kernel->name, (unsigned long long)spec->samples,
			 (unsigned long long)spec->batch_size);
		coord_wake(c);
	}
	return rc;
}

enum tally_err coord_job(struct coord *c, int64_t id, struct job *out)
{
	return db_job_get(c->db, id, out);
}

enum tally_err coord_jobs(struct coord *c, int state, int64_t before, size_t limit,
			  int (*each)(void *ctx, const struct job *job), void *ctx)
{
	return db_job_list(c->db, state, before, limit, each, ctx);
}

enum tally_err coord_cancel(struct coord *c, int64_t id, struct job *out)
{
	enum tally_err rc = db_job_cancel(c->db, id, coord_now(c), out);
	if (!rc) {
		log_info("msg=\"job cancelled\" job=%lld", (long long)id);
		coord_tell_expiry(c);
		coord_job_ended(c);
	}
	return rc;
}

static uint64_t coord_size(void *ctx, const struct job *job, uint64_t remaining)
{
	struct coord *c = ctx;
	return sched_lease_batches(c->sched, c->sizing->worker, job->spec.batch_size, remaining,
				   c->sizing->max_batches);
}

enum tally_err coord_lease(struct coord *c, const struct lease_request *req, struct lease *out)
{
	enum tally_err rc;
	int reaped = 0;

	c->sizing = req;
	rc = db_lease_acquire(c->db, req->worker, req->kernels, req->nkernels, coord_now(c),
			      c->cfg.lease_timeout_ms, coord_size, c, out, &reaped);
	c->sizing = NULL;
	if (reaped) {
		log_info("msg=\"leases expired\" count=%d", reaped);
		/* What this worker did not take (or cannot run), parked ones may. */
		coord_wake(c);
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

enum tally_err coord_heartbeat(struct coord *c, int64_t id, struct lease *out)
{
	enum tally_err rc = db_lease_heartbeat(c->db, id, coord_now(c), c->cfg.lease_timeout_ms, out);
	if (!rc)
		coord_tell_expiry(c);
	return rc;
}

enum tally_err coord_complete(struct coord *c, int64_t id, const json_t *counts, int *duplicate,
			      char *err, size_t errlen)
{
	struct lease lease;
	uint64_t values[KERNEL_MAX_KEYS] = { 0 };
	int finished = 0;
	const char *why;
	enum tally_err rc;
	int64_t now = coord_now(c);

	*duplicate = 0;
	if ((rc = db_lease_get(c->db, id, &lease)))
		return rc;
	/* The lease's state answers first: a repeat is acknowledged and a lost lease refused
	 * whatever the counts say; db_lease_complete checks it again inside its transaction. */
	if (lease.state == LEASE_DONE) {
		*duplicate = 1;
		return TALLY_OK;
	}
	if (lease.state != LEASE_ACTIVE)
		return TALLY_ELOST;
	if (kernel_counts_decode(lease.spec.kernel, counts, values, err, errlen))
		return TALLY_ECOUNTS;
	why = lease.spec.kernel->check(values, lease_samples(&lease));
	if (why) {
		snprintf(err, errlen, "%s", why);
		return TALLY_ECOUNTS;
	}
	rc = db_lease_complete(c->db, id, values, now, duplicate, &finished);
	if (rc == TALLY_ECOUNTS)
		snprintf(err, errlen, "counts: a job total would pass 2^63-1");
	if (rc)
		return rc;
	if (!*duplicate) {
		sched_observe(c->sched, lease.worker, lease_samples(&lease), now - lease.granted_at,
			      now);
		log_debug("msg=\"lease completed\" lease=%lld job=%lld worker=%s", (long long)id,
			  (long long)lease.job_id, lease.worker);
		coord_tell_expiry(c);
		if (finished) {
			log_info("msg=\"job succeeded\" job=%lld", (long long)lease.job_id);
			coord_job_ended(c);
		}
	}
	return TALLY_OK;
}

enum tally_err coord_fail(struct coord *c, int64_t id, const char *reason)
{
	enum tally_err rc = db_lease_fail(c->db, id, reason, coord_now(c));
	char clean[201];
	if (!rc) {
		log_warn("msg=\"lease failed\" lease=%lld reason=\"%s\"", (long long)id,
			 log_clean(reason, clean, sizeof clean));
		coord_tell_expiry(c);
		coord_wake(c);
	}
	return rc;
}

enum tally_err coord_reap(struct coord *c)
{
	int reaped = 0;
	enum tally_err rc = db_reap(c->db, coord_now(c), &reaped);
	if (!rc && reaped) {
		log_info("msg=\"leases expired\" count=%d", reaped);
		coord_tell_expiry(c);
		coord_wake(c);
	}
	return rc;
}

enum tally_err coord_next_expiry(struct coord *c, int64_t *at)
{
	return db_next_expiry(c->db, at);
}

enum tally_err coord_check(struct coord *c)
{
	int64_t at;
	return db_next_expiry(c->db, &at);
}

void coord_set_group(struct coord *c, int on)
{
	db_set_group(c->db, on);
}

int coord_dirty(struct coord *c)
{
	return db_dirty(c->db);
}

enum tally_err coord_flush(struct coord *c)
{
	enum tally_err rc = db_flush(c->db);
	if (rc)
		log_error("msg=\"commit failed\" error=\"%s\"", db_errmsg(c->db));
	return rc;
}
