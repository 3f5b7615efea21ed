/* The leases resource, for workers: take work (long poll), heartbeat, complete, fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "seed.h"
#include "api.h"
#include "log.h"
#include "timefmt.h"
#include "users.h"

/* What a parked lease request keeps between its handler's runs. */
struct lease_poll {
	json_t *body; /* req.kernels borrow from it */
	struct lease_request req;
	int64_t deadline;
};

static void lease_poll_free(void *p)
{
	struct lease_poll *lp = p;
	json_decref(lp->body);
	free(lp);
}

static json_t *lease_to_json(const struct lease *l, uint64_t tag, int64_t now)
{
	char id[WIRE_LEASE_ID_MAX], job[24], expires[32];
	const struct job_spec *s = &l->spec;
	int64_t ttl = l->expires_at - now;

	/* "<id>-<tag>" (decode_lease_ref), the tag coord_lease_tag's for the lease's worker */
	snprintf(id, sizeof id, "%lld-%0*llx", (long long)l->id, DECODE_LEASE_TAG_DIGITS,
		 (unsigned long long)tag);
	snprintf(job, sizeof job, "%lld", (long long)l->job_id);
	/* Never other params than the job's: refused at submit, text that does not load back
	 * (out of memory) makes the reply a 503 rather than {}. */
	json_t *params = json_loads(job_params(s), 0, NULL);

	timefmt_rfc3339(l->expires_at, expires, sizeof expires);
	if (!json_is_object(params)) {
		json_decref(params);
		return NULL;
	}
	return json_pack("{s:s,s:s,s:s,s:i,s:o,s:o,s:I,s:I,s:I,s:I,s:s,s:f}", "id", id, "job_id",
			 job, "kernel", kernel_name_of(s), "kernel_version", (int)s->kernel_version,
			 "params", params, "seed", seed_json(s->seed),
			 "samples", (json_int_t)s->samples, "batch_size",
			 (json_int_t)s->batch_size, "first_batch", (json_int_t)l->first_batch,
			 "batch_count", (json_int_t)l->batch_count, "expires_at", expires, "ttl_s",
			 (double)(ttl > 0 ? ttl : 0) / 1000.0);
}

void leases_create(struct req *r, void *app)
{
	void (*free_fn)(void *) = lease_poll_free;
	struct api *a = app;
	struct lease_poll **state = (struct lease_poll **)req_state(r, &free_fn);
	struct lease_poll *lp = *state;
	struct decode_error e;
	struct lease lease;
	enum tally_err rc;

	if (!lp) {
		json_t *body;
		if (api_body(r, &body))
			return;
		if (!body) {
			reply_error(r, 400, "invalid_json", "body: empty; expected a JSON object");
			return;
		}
		if (!(lp = calloc(1, sizeof *lp))) {
			json_decref(body);
			api_reply_rc(r, a, TALLY_ENOMEM, NULL);
			return;
		}
		lp->body = body;
		*state = lp;
		if (decode_lease_request(body, &lp->req, &e)) {
			api_reply_decode(r, &e);
			return;
		}
		lp->deadline = req_started(r) + lp->req.wait_ms;
	}
	if (req_gone(r)) {
		/* A worker that died while parked, or gave up on a request that waited in a queue
		 * (a coordinator that hung), must not be handed a lease nobody will run. */
		reply_empty(r, 204);
		return;
	}
	rc = coord_lease(a->coord, &lp->req, &lease);
	if (!rc) {
		uint64_t tag = coord_lease_tag(a->coord, lease.id, lease.worker, req_caller(r)->name);
		reply_json(r, 200, lease_to_json(&lease, tag, coord_now(a->coord)));
		return;
	}
	if (rc == TALLY_EFORBIDDEN) {
		const char *why = coord_quarantined(a->coord, lp->req.worker);
		reply_error(r, 403, "worker_quarantined", "worker '%s' is quarantined: %s",
			    lp->req.worker, why ? why : "");
		return;
	}
	if (rc != TALLY_ENOTFOUND) {
		api_reply_rc(r, a, rc, NULL);
		return;
	}
	if (timefmt_mono_ms() >= lp->deadline || req_expired(r)) {
		reply_empty(r, 204);
		return;
	}
	reply_park(r, lp->deadline, API_WAKE_WORK);
}

/* Whom the lease routes' 404s are counted against: the user and the worker name, into out. */
static size_t lease_caller(const struct lease_claim *c, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%c%s", c->user, '\0', c->worker);
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* Replies 404 to a call about a lease its caller has not got, and counts it against the caller
 * (429s follow past the limit: guessing is slow, on top of hopeless). */
static void lease_miss(struct req *r, struct api *a, const struct lease_claim *c)
{
	char who[WIRE_USER_NAME_MAX + WORKER_NAME_MAX];
	size_t len = lease_caller(c, who, sizeof who);
	int64_t now = timefmt_mono_ms();

	ratelimit_charge(&a->lease_misses, who, len, now);
	if (ratelimit_wait(&a->lease_misses, who, len, now)) /* once a burst: this one spent it */
		log_warn("msg=\"worker held back: too many calls about leases it has not got\" "
			 "worker=%s user=%s", c->worker, c->user[0] ? c->user : "-");
	reply_error(r, 404, "not_found", "lease %.64s: no such lease", req_param(r, 0));
}

/* Reads the lease a call claims: the path's "<id>-<tag>", the query's worker (400 when it is
 * missing or no worker name, or another query parameter comes) and the caller's user. Replies
 * 429 while that worker of that user has had too many 404s, and 404 when the claim is not its
 * lease (coord_lease_claim). Returns 0, or -1 after replying. */
static int lease_claim(struct req *r, struct api *a, struct lease_claim *c)
{
	static const char *const allowed[] = { "worker", NULL };
	const char *unknown = req_query_unknown(r, allowed);
	char who[WIRE_USER_NAME_MAX + WORKER_NAME_MAX], after[24];
	int64_t wait;

	c->worker = req_query(r, "worker");
	c->user = req_caller(r)->name;
	if (unknown) {
		reply_error(r, 400, "invalid_query", "%.64s: unknown query parameter", unknown);
		return -1;
	}
	if (!c->worker || !user_name_ok(c->worker)) { /* a worker's name has a user's rules */
		reply_error(r, 400, "invalid_query", "worker: required, the name of the worker the "
			    "lease was granted to (1 to 64 of A-Z, a-z, 0-9, '.', '_', ':', '@', '-')");
		return -1;
	}
	wait = ratelimit_wait(&a->lease_misses, who, lease_caller(c, who, sizeof who),
			      timefmt_mono_ms());
	if (wait) {
		snprintf(after, sizeof after, "%lld", (long long)((wait + 999) / 1000));
		reply_header(r, "Retry-After", after);
		reply_error(r, 429, "too_many_requests", "worker '%s': too many calls about leases it "
			    "has not got; retry after %s s", c->worker, after);
		return -1;
	}
	if (decode_lease_ref(req_param(r, 0), &c->id, &c->tag) || coord_lease_claim(a->coord, c)) {
		lease_miss(r, a, c);
		return -1;
	}
	return 0;
}

static void reply_lease_rc(struct req *r, struct api *a, enum tally_err rc,
			   const struct lease_claim *c, const char *detail)
{
	char msg[320];
	if (rc == TALLY_ENOTFOUND) {
		lease_miss(r, a, c);
		return;
	}
	if (rc == TALLY_ELOST)
		snprintf(msg, sizeof msg,
			 "lease %.64s: lost (it expired and was reclaimed, failed, or its job was "
			 "cancelled)", req_param(r, 0));
	else
		snprintf(msg, sizeof msg, "%s", detail ? detail : "");
	api_reply_rc(r, a, rc, msg);
}

void leases_heartbeat(struct req *r, void *app)
{
	struct api *a = app;
	struct lease lease;
	struct lease_claim c;
	enum tally_err rc;
	char expires[32];

	if (lease_claim(r, a, &c) || api_empty_body(r))
		return;
	if ((rc = coord_heartbeat(a->coord, c.id, &lease))) {
		reply_lease_rc(r, a, rc, &c, NULL);
		return;
	}
	timefmt_rfc3339(lease.expires_at, expires, sizeof expires);
	reply_json(r, 200, json_pack("{s:s,s:s,s:f}", "id", req_param(r, 0), "expires_at", expires,
				     "ttl_s",
				     (double)(lease.expires_at - coord_now(a->coord)) / 1000.0));
}

void leases_complete(struct req *r, void *app)
{
	struct api *a = app;
	struct decode_error e;
	struct counts counts;
	json_t *body;
	struct lease_claim c;
	int duplicate = 0, ended = 0;
	enum tally_err rc;
	char err[256] = "";

	if (lease_claim(r, a, &c) || api_body(r, &body))
		return;
	if (!body) {
		reply_error(r, 400, "missing_field", "counts: required");
		return;
	}
	rc = decode_complete(body, &counts, &e);
	json_decref(body);
	if (rc) {
		api_reply_decode(r, &e);
		return;
	}
	rc = coord_complete(a->coord, c.id, &counts, &duplicate, &ended, err, sizeof err);
	if (rc) {
		reply_lease_rc(r, a, rc, &c, err);
		return;
	}
	reply_json(r, 200, json_pack("{s:b,s:b,s:b}", "accepted", 1, "duplicate", duplicate,
				     "job_ended", ended));
}

void leases_fail(struct req *r, void *app)
{
	struct api *a = app;
	struct decode_error e;
	json_t *body;
	struct lease_claim c;
	enum tally_err rc;
	char reason[DECODE_REASON_MAX];
	int fault, cannot_run;

	if (lease_claim(r, a, &c) || api_body(r, &body))
		return;
	rc = decode_fail(body, reason, &fault, &cannot_run, &e);
	json_decref(body);
	if (rc) {
		api_reply_decode(r, &e);
		return;
	}
	if ((rc = coord_fail(a->coord, c.id, reason, fault, cannot_run))) {
		reply_lease_rc(r, a, rc, &c, NULL);
		return;
	}
	reply_json(r, 200, json_pack("{s:b}", "accepted", 1));
}
