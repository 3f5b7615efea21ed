/* The jobs resource: submit, read, list, cancel, extend and delete jobs; each caller sees only the jobs
 * in its scope (api_scope: an admin every job, a user its own). */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include "seed.h"
#include "api.h"
#include "counts.h"
#include "log.h"
#include "timefmt.h"

#define JOBS_LIMIT_DEFAULT 50
#define JOBS_LIMIT_MAX WIRE_LIST_MAX

static json_t *json_time(int64_t ms)
{
	char ts[32];
	if (!ms)
		return json_null();
	timefmt_rfc3339(ms, ts, sizeof ts);
	return json_string(ts);
}

/* Returns a new reference to the array of names in a newline-separated list. */
static json_t *name_list(const char *s)
{
	json_t *a = json_array();
	while (a && *s) {
		size_t n = strcspn(s, "\n");
		if (json_array_append_new(a, json_stringn(s, n))) {
			json_decref(a);
			return NULL;
		}
		s += n + (s[n] == '\n');
	}
	return a;
}

/* Returns a new reference to a JSON string of text: as it is when it is valid UTF-8, else with
 * every byte outside printable ASCII as '?' (a reason cut short inside a character, or a
 * worker's raw bytes). NULL when out of memory. */
static json_t *text_json(const char *text)
{
	json_t *v = json_string(text);
	char ascii[JOB_ERROR_MAX];
	return v ? v : json_string(text_ascii(text, ascii, sizeof ascii));
}

/* Returns a new reference to a job's params object ({} when it has none), or NULL (out of
 * memory: never other params than the job's). */
static json_t *params_json(const struct job *j)
{
	json_t *p = json_loads(job_params(&j->spec), 0, NULL);
	if (!json_is_object(p)) {
		json_decref(p);
		p = NULL;
	}
	return p;
}

/* Returns a new reference to the job object, or NULL when out of memory. */
static json_t *job_to_json_at(struct api *a, const struct job *j, int64_t now)
{
	const struct kernel *k = j->spec.kernel;
	json_t *o;
	char id[24];
	int64_t end = j->finished_at ? j->finished_at : now;
	double elapsed = j->started_at ? (double)(end - j->started_at) / 1000.0 : 0.0;
	uint64_t pending = j->batches_total - j->batches_done - j->batches_leased;
	json_t *result = j->batches_done ? kernel_result(k, &j->keys, j->counts) : NULL;

	if (j->state == JOB_CANCELLED)
		pending = j->batches_total - j->batches_done;
	snprintf(id, sizeof id, "%lld", (long long)j->id);
	o = json_pack("{s:s,s:o,s:i,s:s,s:i,s:s,s:I,s:I,s:o,s:o,s:f,s:{s:I,s:I,s:I,s:I},s:f,s:o,s:o,"
			 "s:o,s:o,s:o,s:o,s:o,s:f,s:{s:I,s:I,s:I,s:o}}",
			 "id", id, "owner", j->spec.owner[0] ? json_string(j->spec.owner) : json_null(),
			 "priority", j->spec.priority,
			 "kernel", kernel_name_of(&j->spec), "kernel_version",
			 (int)j->spec.kernel_version,
			 "state", job_state_name(j->state),
			 "samples", (json_int_t)j->spec.samples,
			 "batch_size", (json_int_t)j->spec.batch_size,
			 "seed", seed_json(j->spec.seed), "params", params_json(j),
			 "verify", j->spec.verify,
			 "batches", "total", (json_int_t)j->batches_total,
			 "done", (json_int_t)j->batches_done,
			 "leased", (json_int_t)j->batches_leased,
			 "pending", (json_int_t)pending,
			 "progress", (double)j->samples_done / (double)j->spec.samples,
			 "counts", counts_encode(&j->keys, j->counts),
			 "result", result ? result : json_null(),
			 "error", job_error(j)[0] ? text_json(job_error(j)) : json_null(),
			 "created_at", json_time(j->created_at),
			 "started_at", json_time(j->started_at),
			 "finished_at", json_time(j->finished_at),
			 "elapsed_s", j->started_at ? json_real(elapsed) : json_null(),
			 "rate", elapsed > 0 ? (double)j->samples_done / elapsed : 0.0,
			 "verification", "passed", (json_int_t)j->checks_passed,
			 "pending", (json_int_t)j->checks_pending,
			 "mismatches", (json_int_t)j->mismatches,
			 "quarantined", name_list(j->quarantined));
	if (o && j->spec.target_stderr > 0 &&
	    (json_object_set_new(o, "target_stderr", json_real(j->spec.target_stderr)) ||
	     json_object_set_new(o, "stopped_early",
				 json_boolean(j->state == JOB_SUCCEEDED &&
					      j->batches_done < j->batches_total)))) {
		json_decref(o);
		return NULL;
	}
	/* Why its last lease failed or was given back (an unfinished job): what a job that makes
	 * no progress is waiting on, such as a program no worker allows. */
	const char *why_failed = job_is_final(j->state) ? NULL : coord_last_failure(a->coord, j->id);
	if (o && why_failed && json_object_set_new(o, "last_failure", text_json(why_failed))) {
		json_decref(o);
		return NULL;
	}
	/* A job for a kernel no worker has offered yet says so, instead of looking stuck. */
	if (o && !job_is_final(j->state) && !j->batches_done && !j->batches_leased &&
	    !coord_kernel_offered(a->coord, kernel_name_of(&j->spec), j->spec.kernel_version)) {
		char why[128];
		snprintf(why, sizeof why, "no worker offers kernel %s%s yet", kernel_name_of(&j->spec),
			 k->version ? "" : " (a plug-in this coordinator does not have)");
		json_object_set_new(o, "waiting_for", json_string(why));
	}
	return o;
}

static json_t *job_to_json(struct api *a, const struct job *j)
{
	return job_to_json_at(a, j, coord_now(a->coord));
}

/* Replies to a failed request about job id: 404 naming it when there is no such job. */
static void reply_job_rc(struct req *r, struct api *a, enum tally_err rc, int64_t id)
{
	char msg[96];
	snprintf(msg, sizeof msg, "job %lld: no such job", (long long)id);
	api_reply_rc(r, a, rc, msg);
}

static int job_id(struct req *r, struct api *a, int64_t *id)
{
	(void)a;
	if (decode_id(req_param(r, 0), id)) {
		reply_error(r, 404, "not_found", "job %.64s: no such job (ids are positive integers)",
			    req_param(r, 0));
		return -1;
	}
	return 0;
}

/* Returns 1 unless key is 1 to JOB_KEY_MAX - 1 printable ASCII characters. */
static int idempotency_key_bad(const char *key)
{
	size_t n = strlen(key);
	if (!n || n >= JOB_KEY_MAX)
		return 1;
	for (; *key; key++)
		if (*key < 0x20 || *key > 0x7e)
			return 1;
	return 0;
}

/* Replies to a submit (or an extend of a finished job) a quota refused: its 429 names the
 * limit. */
static void reply_refused(struct req *r, struct api *a, enum tally_err rc, const char *owner)
{
	struct coord_quota q;
	char msg[256];

	coord_quota(a->coord, owner, &q);
	if (rc == TALLY_EQUOTA)
		snprintf(msg, sizeof msg, "%s%.64s%s has %llu unfinished (queued or running) jobs, the "
			 "limit (--max-unfinished-jobs %llu); submit again once one finishes or is "
			 "cancelled", *owner ? "user '" : "the open coordinator", owner,
			 *owner ? "'" : "", (unsigned long long)q.owner_unfinished,
			 (unsigned long long)q.owner_limit);
	else
		snprintf(msg, sizeof msg, "the coordinator holds %llu unfinished (queued or running) "
			 "jobs, the limit (--max-jobs-in-memory %llu); submit again once some finish",
			 (unsigned long long)q.unfinished, (unsigned long long)q.limit);
	api_reply_rc(r, a, rc, msg);
}

void jobs_create(struct req *r, void *app)
{
	struct api *a = app;
	struct decode_error e;
	struct job_spec spec;
	char params[KERNEL_PARAMS_MAX];
	struct job job;
	uint64_t seed = 0;
	json_t *body;
	enum tally_err rc;
	char loc[64];

	const char *key = req_header(r, "Idempotency-Key");
	int seed_given;

	if (key && idempotency_key_bad(key)) {
		reply_error(r, 400, "invalid_field",
			    "Idempotency-Key: 1 to %d printable ASCII characters", JOB_KEY_MAX - 1);
		return;
	}
	if (api_body(r, &body))
		return;
	if (!body) {
		reply_error(r, 400, "invalid_json", "body: empty; expected a JSON object");
		return;
	}
	/* A default seed every JSON reader can hold exactly: 53 bits. */
	if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
		seed = (uint64_t)timefmt_now_ms();
	seed &= (1ULL << 53) - 1;
	seed_given = json_object_get(body, "seed") != NULL;
	rc = decode_job_spec(body, seed, &spec, params, &e);
	json_decref(body);
	if (rc) {
		api_reply_decode(r, &e);
		return;
	}
	snprintf(spec.owner, sizeof spec.owner, "%s", api_owner(r));
	if (key && (rc = coord_job_by_key(a->coord, spec.owner, key, &job)) != TALLY_ENOTFOUND) {
		/* A retry: the same job again, if it asks for the same work. */
		if (rc)
			api_reply_rc(r, a, rc, NULL);
		else if (strcmp(kernel_name_of(&job.spec), spec.kernel_name) ||
			 job.spec.samples != spec.samples ||
			 strcmp(job_params(&job.spec), job_params(&spec)) ||
			 job.spec.target_stderr != spec.target_stderr ||
			 job.spec.batch_size != spec.batch_size || job.spec.verify != spec.verify ||
			 job.spec.priority != spec.priority ||
			 (seed_given && job.spec.seed != spec.seed))
			reply_error(r, 409, "conflict",
				    "Idempotency-Key: already used for job %lld, with other kernel, "
				    "params, samples, batch_size, seed, verify, target_stderr or priority",
				    (long long)job.id);
		else
			reply_json(r, 200, job_to_json(a, &job));
		return;
	}
	if ((rc = coord_submit(a->coord, &spec, key, &job))) {
		reply_refused(r, a, rc, spec.owner);
		return;
	}
	snprintf(loc, sizeof loc, "/v1/jobs/%lld", (long long)job.id);
	reply_header(r, "Location", loc);
	reply_json(r, 201, job_to_json(a, &job));
}

/* GET /v1/jobs/<id>[?wait_s=N]: with wait_s, the reply waits until the job has finished (or N
 * seconds have passed), so that a curl user can wait for a result in one request. */
void jobs_get(struct req *r, void *app)
{
	static const char *const allowed[] = { "wait_s", NULL };
	struct api *a = app;
	const char *unknown = req_query_unknown(r, allowed);
	const char *wait_s = req_query(r, "wait_s");
	struct job job;
	uint64_t wait = 0;
	int64_t id;
	enum tally_err rc;

	if (job_id(r, a, &id))
		return;
	if (unknown) {
		reply_error(r, 400, "invalid_query", "%.64s: unknown query parameter", unknown);
		return;
	}
	if (wait_s && num_parse_u64(wait_s, 0, API_WAIT_MAX_S, &wait)) {
		reply_error(r, 400, "invalid_query", "wait_s: must be an integer from 0 to %d",
			    API_WAIT_MAX_S);
		return;
	}
	if ((rc = coord_job(a->coord, api_scope(r), id, &job))) {
		reply_job_rc(r, a, rc, id);
		return;
	}
	if (wait && !job_is_final(job.state) && !req_expired(r) &&
	    timefmt_mono_ms() < req_started(r) + (int64_t)wait * 1000) {
		reply_park(r, req_started(r) + (int64_t)wait * 1000, API_WAKE_JOBS);
		return;
	}
	reply_json(r, 200, job_to_json(a, &job));
}

struct list_ctx {
	struct api *a;
	json_t *jobs;
	int64_t now;
	int64_t last;
	int oom;
};

static enum tally_err list_one(void *ctx, const struct job *job)
{
	struct list_ctx *l = ctx;
	if (json_array_append_new(l->jobs, job_to_json_at(l->a, job, l->now))) {
		l->oom = 1;
		return TALLY_ENOMEM;
	}
	l->last = job->id;
	return TALLY_OK;
}

void jobs_list(struct req *r, void *app)
{
	static const char *const allowed[] = { "state", "limit", "cursor", "owner", NULL };
	struct api *a = app;
	struct list_ctx l = { .a = a, .now = coord_now(a->coord) };
	struct coord_scope scope = api_scope(r);
	const char *unknown = req_query_unknown(r, allowed);
	const char *owner_s = req_query(r, "owner");
	const char *state_s = req_query(r, "state");
	const char *limit_s = req_query(r, "limit");
	const char *cursor_s = req_query(r, "cursor");
	enum job_state state;
	uint64_t limit = JOBS_LIMIT_DEFAULT;
	int64_t cursor = 0;
	enum tally_err rc;
	char next[24];

	if (unknown) {
		reply_error(r, 400, "invalid_query", "%.64s: unknown query parameter", unknown);
		return;
	}
	if (state_s && job_state_parse(state_s, &state)) {
		reply_error(r, 400, "invalid_query",
			    "state: must be queued, running, succeeded, failed or cancelled");
		return;
	}
	if (limit_s && num_parse_u64(limit_s, 1, JOBS_LIMIT_MAX, &limit)) {
		reply_error(r, 400, "invalid_query", "limit: must be an integer from 1 to %d",
			    JOBS_LIMIT_MAX);
		return;
	}
	if (cursor_s && decode_id(cursor_s, &cursor)) {
		reply_error(r, 400, "invalid_query", "cursor: not a cursor this server gave");
		return;
	}
	if (owner_s && !user_name_ok(owner_s)) {
		reply_error(r, 400, "invalid_query", "owner: must be a user name (1 to %d of A-Z, "
			    "a-z, 0-9 and ._:@-)", USER_NAME_MAX - 1);
		return;
	}
	if (!(l.jobs = json_array())) {
		api_reply_rc(r, a, TALLY_ENOMEM, NULL);
		return;
	}
	/* An admin's filter; to anyone else, another owner's jobs do not exist. */
	if (owner_s && scope.owner && strcmp(owner_s, scope.owner)) {
		reply_json(r, 200, json_pack("{s:o,s:n}", "jobs", l.jobs, "next_cursor"));
		return;
	}
	if (owner_s)
		scope.owner = owner_s;
	rc = coord_jobs(a->coord, scope, state_s ? (int)state : -1, cursor, limit, list_one, &l);
	if (rc || l.oom) {
		json_decref(l.jobs);
		api_reply_rc(r, a, rc ? rc : TALLY_ENOMEM, NULL);
		return;
	}
	snprintf(next, sizeof next, "%lld", (long long)l.last);
	reply_json(r, 200,
		   json_pack("{s:o,s:o}", "jobs", l.jobs, "next_cursor",
			     json_array_size(l.jobs) == limit ? json_string(next) : json_null()));
}

/* POST /v1/jobs/<id>/extend {"samples": n}: the job grows to n samples. */
void jobs_extend(struct req *r, void *app)
{
	struct api *a = app;
	struct decode_error e;
	struct job job;
	json_t *body;
	uint64_t samples;
	int64_t id;
	enum tally_err rc;

	if (job_id(r, a, &id) || api_body(r, &body))
		return;
	if (!body) {
		reply_error(r, 400, "missing_field", "samples: required");
		return;
	}
	rc = decode_extend(body, &samples, &e);
	json_decref(body);
	if (rc) {
		api_reply_decode(r, &e);
		return;
	}
	rc = coord_extend(a->coord, api_scope(r), id, samples, &job);
	if (rc == TALLY_EINVAL) {
		reply_error(r, 400, "invalid_field", "samples: must be more than the job's %llu",
			    (unsigned long long)job.spec.samples);
		return;
	}
	if (rc == TALLY_ECONFLICT) {
		reply_error(r, 409, "conflict", "job %lld is %s: it cannot grow", (long long)id,
			    job_state_name(job.state));
		return;
	}
	if (rc == TALLY_EQUOTA || rc == TALLY_EFULL) { /* a finished job would run again */
		reply_refused(r, a, rc, job.spec.owner);
		return;
	}
	if (rc) {
		reply_job_rc(r, a, rc, id);
		return;
	}
	reply_json(r, 200, job_to_json(a, &job));
}

void jobs_cancel(struct req *r, void *app)
{
	struct api *a = app;
	struct job job;
	int64_t id;
	enum tally_err rc;

	if (job_id(r, a, &id) || api_empty_body(r))
		return;
	rc = coord_cancel(a->coord, api_scope(r), id, &job);
	if (rc == TALLY_ECONFLICT) {
		reply_error(r, 409, "conflict", "job %lld: already %s", (long long)id,
			    job_state_name(job.state));
		return;
	}
	if (rc) {
		reply_job_rc(r, a, rc, id);
		return;
	}
	reply_json(r, 200, job_to_json(a, &job));
}

/* DELETE /v1/jobs/<id>: a finished job goes, with everything it owned (204, once committed); a
 * queued or running one is refused (409 job_not_finished: cancel it first). */
void jobs_delete(struct req *r, void *app)
{
	struct api *a = app;
	struct job job;
	int64_t id;
	enum tally_err rc;

	if (job_id(r, a, &id) || api_empty_body(r))
		return;
	rc = coord_delete(a->coord, api_scope(r), id, &job);
	if (rc == TALLY_ECONFLICT) {
		reply_error(r, 409, "job_not_finished",
			    "job %lld is %s: only a finished job can be deleted (cancel it first)",
			    (long long)id, job_state_name(job.state));
		return;
	}
	if (rc) {
		reply_job_rc(r, a, rc, id);
		return;
	}
	reply_empty(r, 204);
}

/* GET /v1/jobs/<id>/history: the job's progress points, for the dashboard's plot. */
void jobs_history(struct req *r, void *app)
{
	static const char *const allowed[] = { NULL };
	struct api *a = app;
	const char *unknown = req_query_unknown(r, allowed);
	const struct history_point *p;
	struct job job;
	json_t *points;
	char msg[96];
	size_t n;
	int64_t id;
	enum tally_err rc;

	if (job_id(r, a, &id))
		return;
	if (unknown) {
		reply_error(r, 400, "invalid_query", "%.64s: unknown query parameter", unknown);
		return;
	}
	if ((rc = coord_history(a->coord, api_scope(r), id, &job, &p, &n))) {
		reply_job_rc(r, a, rc, id);
		return;
	}
	if (!(points = json_array())) {
		api_reply_rc(r, a, TALLY_ENOMEM, NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *result = p[i].samples ? kernel_result(job.spec.kernel, &job.keys, p[i].counts) : NULL;
		if (!result)
			result = json_null();
		if (json_array_append_new(points, json_pack("{s:o,s:I,s:o}", "t", json_time(p[i].t),
							    "samples", (json_int_t)p[i].samples,
							    "result", result))) {
			json_decref(points);
			api_reply_rc(r, a, TALLY_ENOMEM, NULL);
			return;
		}
	}
	snprintf(msg, sizeof msg, "%lld", (long long)id);
	reply_json(r, 200, json_pack("{s:s,s:o}", "job_id", msg, "points", points));
}
