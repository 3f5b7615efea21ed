/* The leases resource, for workers: take work (long poll), heartbeat, complete, fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "seed.h"
#include "api.h"
#include "timefmt.h"

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

static json_t *lease_to_json(const struct lease *l, int64_t now)
{
	char id[24], job[24], expires[32];
	const struct job_spec *s = &l->spec;
	int64_t ttl = l->expires_at - now;

	snprintf(id, sizeof id, "%lld", (long long)l->id);
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
		reply_json(r, 200, lease_to_json(&lease, coord_now(a->coord)));
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

/* Reads the lease id from the path; replies 404 and returns -1 when it is not one. */
static int lease_id(struct req *r, int64_t *id)
{
	if (decode_id(req_param(r, 0), id)) {
		reply_error(r, 404, "not_found", "lease %.64s: no such lease", req_param(r, 0));
		return -1;
	}
	return 0;
}

static void reply_lease_rc(struct req *r, struct api *a, enum tally_err rc, int64_t id,
			   const char *detail)
{
	char msg[320];
	if (rc == TALLY_ENOTFOUND)
		snprintf(msg, sizeof msg, "lease %lld: no such lease", (long long)id);
	else if (rc == TALLY_ELOST)
		snprintf(msg, sizeof msg,
			 "lease %lld: lost (it expired and was reclaimed, failed, or its job was "
			 "cancelled)", (long long)id);
	else
		snprintf(msg, sizeof msg, "%s", detail ? detail : "");
	api_reply_rc(r, a, rc, msg);
}

void leases_heartbeat(struct req *r, void *app)
{
	struct api *a = app;
	struct lease lease;
	int64_t id;
	enum tally_err rc;
	char expires[32];

	if (lease_id(r, &id) || api_empty_body(r))
		return;
	if ((rc = coord_heartbeat(a->coord, id, &lease))) {
		reply_lease_rc(r, a, rc, id, NULL);
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
	int64_t id;
	int duplicate = 0;
	enum tally_err rc;
	char err[256] = "";

	if (lease_id(r, &id) || api_body(r, &body))
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
	rc = coord_complete(a->coord, id, &counts, &duplicate, err, sizeof err);
	if (rc) {
		reply_lease_rc(r, a, rc, id, err);
		return;
	}
	reply_json(r, 200, json_pack("{s:b,s:b}", "accepted", 1, "duplicate", duplicate));
}

void leases_fail(struct req *r, void *app)
{
	struct api *a = app;
	struct decode_error e;
	json_t *body;
	int64_t id;
	enum tally_err rc;
	char reason[DECODE_REASON_MAX];
	int fault, cannot_run;

	if (lease_id(r, &id) || api_body(r, &body))
		return;
	rc = decode_fail(body, reason, &fault, &cannot_run, &e);
	json_decref(body);
	if (rc) {
		api_reply_decode(r, &e);
		return;
	}
	if ((rc = coord_fail(a->coord, id, reason, fault, cannot_run))) {
		reply_lease_rc(r, a, rc, id, NULL);
		return;
	}
	reply_json(r, 200, json_pack("{s:b}", "accepted", 1));
}
