/* The pull loop. Counts computed for a lease are kept until the coordinator answers for them:
 * transport errors and 5xx are retried with capped exponential backoff and full jitter. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include "seed.h"
#include "client.h"
#include "compute.h"
#include "counts.h"
#include "idle.h"
#include "job.h"
#include "log.h"
#include "loop.h"
#include "resident.h"
#include "timefmt.h"

#define LOOP_BACKOFF_MIN_MS 100
/* The cap bounds how long a worker takes to find a coordinator back (with client.h's connect
 * timeout, under the 5 s test_docker's Swarm test holds it to). */
#define LOOP_BACKOFF_MAX_MS 2000
#define LOOP_STOP_GRACE_MS 10000 /* how long a stopping worker keeps trying to deliver */
/* A lease call's path: /v1/leases/<id>/heartbeat?worker=<name> and the like. */
#define LOOP_PATH_MAX (32 + WIRE_LEASE_ID_MAX + WIRE_WORKER_NAME_MAX)

struct loop {
	const struct loop_config *cfg;
	volatile sig_atomic_t *stop;
	struct client *client;
	struct idle idle; /* --idle-exit */
	struct resident *resident; /* exec's resident programs; NULL when exec is off */
	unsigned attempt; /* consecutive failures, for backoff */
	char cannot_run[24]; /* the job last given back as one it cannot run */
};

/* Sleeps ms, waking early when stop is set or the idle time is up (unless ignore_stop). */
static void loop_sleep(struct loop *l, int64_t ms, int ignore_stop)
{
	while (ms > 0 &&
	       (ignore_stop || !(*l->stop || idle_expired(&l->idle, timefmt_mono_ms())))) {
		int64_t step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* Exponential backoff with jitter: min/2 plus a random delay in [0, min(max, min * 2^attempt)]. */
static void loop_backoff(struct loop *l, int ignore_stop)
{
	uint64_t cap = LOOP_BACKOFF_MIN_MS, r = 0;
	for (unsigned i = 0; i < l->attempt && cap < LOOP_BACKOFF_MAX_MS; i++)
		cap *= 2;
	if (cap > LOOP_BACKOFF_MAX_MS)
		cap = LOOP_BACKOFF_MAX_MS;
	if (getrandom(&r, sizeof r, 0) != sizeof r)
		r = (uint64_t)timefmt_mono_ms();
	l->attempt++;
	loop_sleep(l, (int64_t)(LOOP_BACKOFF_MIN_MS / 2 + r % (cap + 1)), ignore_stop);
}

/* The lease as the worker needs it. */
struct held {
	char id[WIRE_LEASE_ID_MAX];
	char job_id[24];
	const struct kernel *k;
	uint64_t seed, samples, batch_size, first, count;
	double ttl_s;
	char params[KERNEL_PARAMS_MAX]; /* compact JSON */
};

/* Reads a lease. Returns 0; -1 when it is unusable (h->id is set when the lease had one, so that
 * it can be given back). A lease is checked as strictly as a request: wrong counts computed from a
 * garbled lease would be accepted by a coordinator that checks only their totals. */
static int held_parse(const struct loop *l, const json_t *j, struct held *h)
{
	const char *id = NULL, *kernel = NULL, *job = NULL;
	json_t *seed = NULL, *params = NULL;
	char *text = NULL;
	json_int_t samples = 0, bs = 0, first = -1, count = 0, version = 0;
	json_error_t e;

	memset(h, 0, sizeof *h);
	if (json_is_object(j) && json_is_string(json_object_get(j, "id")))
		snprintf(h->id, sizeof h->id, "%s", json_string_value(json_object_get(j, "id")));
	if (json_unpack_ex((json_t *)j, &e, 0, "{s:s,s:s,s:s,s:I,s:o,s:I,s:I,s:I,s:I,s:F,s?o}",
			   "id", &id, "job_id", &job, "kernel", &kernel, "kernel_version", &version,
			   "seed", &seed, "samples", &samples, "batch_size", &bs, "first_batch",
			   &first, "batch_count", &count, "ttl_s", &h->ttl_s, "params", &params)) {
		log_error("msg=\"bad lease from the coordinator\" error=\"%s\"", e.text);
		return -1;
	}
	snprintf(h->job_id, sizeof h->job_id, "%s", job);
	if (params && !json_is_object(params)) {
		log_error("msg=\"bad lease from the coordinator\" error=\"params: not an object\"");
		return -1;
	}
	text = params ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!text || strlen(text) >= sizeof h->params) {
		snprintf(h->params, sizeof h->params, "{}");
		if (params && json_object_size(params)) {
			free(text);
			log_error("msg=\"unusable lease\" lease=%s error=\"params too long\"", h->id);
			return -1;
		}
	} else {
		snprintf(h->params, sizeof h->params, "%s", text);
	}
	free(text);
	h->k = kernel_find(kernel);
	if (h->k && !h->k->run && !h->k->abi && !(l->cfg->exec && l->cfg->exec->nallow))
		h->k = NULL; /* exec, not allowed here */
	if (h->k && (json_int_t)h->k->version != version) {
		/* Counts from another version of a kernel are other numbers: never mix them. */
		log_error("msg=\"kernel version mismatch\" lease=%s kernel=%s job_version=%lld "
			  "worker_version=%u", h->id, kernel, (long long)version, h->k->version);
		return -1;
	}
	if (!h->k || seed_parse(seed, &h->seed) || samples < 1 ||
	    (uint64_t)samples > JOB_SAMPLES_MAX || bs < 1 || bs > samples || first < 0 ||
	    count < 1 ||
	    (uint64_t)first >= job_batches((uint64_t)samples, (uint64_t)bs) ||
	    (uint64_t)count > job_batches((uint64_t)samples, (uint64_t)bs) - (uint64_t)first) {
		log_error("msg=\"unusable lease\" lease=%s kernel=%.32s", h->id, kernel);
		return -1;
	}
	h->samples = (uint64_t)samples;
	h->batch_size = (uint64_t)bs;
	h->first = (uint64_t)first;
	h->count = (uint64_t)count;
	return 0;
}

/* Posts to path until the coordinator gives an answer that is not a 5xx. Returns the status,
 * or 0 when stopping cut the retries short. */
static long loop_deliver(struct loop *l, const char *path, const json_t *body, json_t **reply)
{
	int64_t give_up = 0;

	l->attempt = 0;
	for (;;) {
		long status = 0;
		enum tally_err rc = client_post(l->client, path, body, 10000, 0, &status, reply);
		if (!rc && status < 500 && status != 429) /* 429: too many 404s, slow down */
			return status;
		json_decref(*reply);
		*reply = NULL;
		if (rc)
			log_warn("msg=\"coordinator unreachable, will retry\" path=%s error=\"%s\"",
				 path, client_errmsg(l->client));
		else
			log_warn("msg=\"coordinator error, will retry\" path=%s status=%ld", path,
				 status);
		if (*l->stop && !give_up)
			give_up = timefmt_mono_ms() + LOOP_STOP_GRACE_MS;
		if (give_up && timefmt_mono_ms() > give_up)
			return 0;
		loop_backoff(l, 1);
	}
}

/* The path of a call about lease id: /v1/leases/<id>/<action>?worker=<name>, the worker name
 * the lease was granted to (the coordinator answers its leases to that name only). */
static void loop_lease_path(const struct loop *l, const char *id, const char *action,
			    char *path, size_t size)
{
	snprintf(path, size, "/v1/leases/%s/%s?worker=%s", id, action, l->cfg->name);
}

/* Fails a lease at once, so that it does not wait for its expiry. fault: the batches are to
 * blame (a kernel or program failed them), which counts towards failing the job; the worker's
 * own reasons (giving a lease back) do not. cannot_run: this worker cannot run the job at all (the
 * coordinator passes it over for this worker from then on). Returns the reply's status (0: none). */
static long loop_fail(struct loop *l, const char *id, const char *why, int fault, int cannot_run)
{
	char ascii[512];
	/* A reason may quote a program's stderr or a plug-in's message, whatever bytes. */
	json_t *body = json_pack("{s:s,s:b}", "error", text_ascii(why, ascii, sizeof ascii),
				 "fault", fault), *reply = NULL;
	char path[LOOP_PATH_MAX];
	long status = 0;

	if (!body || !id[0] ||
	    (cannot_run && json_object_set_new(body, "cannot_run", json_true())))
		goto done;
	loop_lease_path(l, id, "fail", path, sizeof path);
	if (client_post(l->client, path, body, 5000, 0, &status, &reply))
		log_warn("msg=\"cannot give a lease back\" lease=%s error=\"%s\"", id,
			 client_errmsg(l->client));
done:
	json_decref(reply);
	json_decref(body);
	return status;
}

static void loop_give_back(struct loop *l, const char *id, const char *why)
{
	(void)loop_fail(l, id, why, 0, 0);
}

/* Heartbeats while the pool computes. Returns 0 when the work finished; -1 when the lease was
 * lost, or when a stop request outlasted LOOP_STOP_GRACE_MS (the lease is then given back): in
 * both cases the pool has been aborted. */
static int loop_compute(struct loop *l, const struct held *h, struct compute *pool)
{
	int64_t every = (int64_t)(h->ttl_s * 1000.0 / 3.0);
	int64_t next_beat, give_up = 0;
	char path[LOOP_PATH_MAX];

	if (every < 100)
		every = 100;
	next_beat = timefmt_mono_ms() + every;
	loop_lease_path(l, h->id, "heartbeat", path, sizeof path);
	for (;;) {
		int64_t now = timefmt_mono_ms(), wait = next_beat - now;
		long status = 0;
		json_t *reply = NULL;

		if (*l->stop && !give_up)
			give_up = now + LOOP_STOP_GRACE_MS;
		if (give_up && now >= give_up) {
			log_warn("msg=\"stopping: giving the lease back unfinished\" lease=%s", h->id);
			compute_abort(pool);
			loop_give_back(l, h->id, "worker: stopped");
			return -1;
		}
		if (wait > 100)
			wait = 100; /* look at the stop flag ten times a second */
		if (compute_wait(pool, wait > 0 ? wait : 0))
			return 0;
		/* Other jobs' programs go idle while this lease computes. */
		(void)resident_reap(l->resident, timefmt_mono_ms());
		if (timefmt_mono_ms() < next_beat)
			continue;
		next_beat = timefmt_mono_ms() + every;
		if (client_post(l->client, path, NULL, 5000, 0, &status, &reply)) {
			log_warn("msg=\"heartbeat failed\" lease=%s error=\"%s\"", h->id,
				 client_errmsg(l->client));
		} else if (status == 409 || status == 404) {
			log_warn("msg=\"lease lost\" lease=%s status=%ld", h->id, status);
			json_decref(reply);
			compute_abort(pool);
			return -1;
		} else if (status == 200 && json_is_number(json_object_get(reply, "ttl_s"))) {
			/* The coordinator's lease timeout may have changed across a restart. */
			every = (int64_t)(json_number_value(json_object_get(reply, "ttl_s")) * 1000.0 /
					  3.0);
			if (every < 100)
				every = 100;
			next_beat = timefmt_mono_ms() + every;
		}
		json_decref(reply);
	}
}

/* Runs one lease to the end: compute, then deliver. Returns -1 when the lease was unusable (the
 * caller backs off: a coordinator that keeps sending such leases must not be hammered). */
static int loop_lease(struct loop *l, const json_t *lease)
{
	struct held h;
	struct compute *pool;
	struct compute_work w = { 0 };
	struct exec_job *ej = NULL;
	struct count_keys keys;
	uint64_t counts[KERNEL_MAX_KEYS] = { 0 };
	json_t *body, *reply = NULL;
	char path[LOOP_PATH_MAX], err[512], clean[201];
	long status;
	int64_t t0 = timefmt_mono_ms();
	int rc;

	if (held_parse(l, lease, &h)) {
		loop_give_back(l, h.id, "worker: unusable lease");
		return -1;
	}
	w = (struct compute_work){ .seed = h.seed, .samples = h.samples,
				   .batch_size = h.batch_size, .first = h.first, .count = h.count };
	/* The job's params are its own: refused params fail its batches (fault), like a program
	 * that cannot run. */
	if (h.k->run || h.k->abi) {
		w.k = h.k;
		rc = kernel_open(h.k, h.params, &w.state, err, sizeof err);
	} else if (!(ej = malloc(sizeof *ej))) {
		snprintf(err, sizeof err, "worker: out of memory");
		rc = -1;
	} else {
		w.exec = ej;
		rc = exec_job_open(ej, l->cfg->exec, h.params, h.job_id, err, sizeof err);
		if (!rc && ej->spec.resident)
			w.resident = l->resident;
	}
	if (rc == -2) {
		/* Its program is not allowed (or not there) on this worker: no fault of the
		 * batches, and other workers may run it. The coordinator remembers to pass the job
		 * over for this worker, so the next lease, asked for at once, is other work. One
		 * that refuses cannot_run (older), or offers the same job again, gets a backoff. */
		log_warn("msg=\"job skipped\" job=%s error=\"%s\"", h.job_id,
			 log_clean(err, clean, sizeof clean));
		if (loop_fail(l, h.id, err, 0, 1) == 400)
			loop_give_back(l, h.id, err);
		else if (strcmp(l->cannot_run, h.job_id))
			rc = 0;
		snprintf(l->cannot_run, sizeof l->cannot_run, "%s", h.job_id);
		goto done;
	}
	if (rc) {
		log_warn("msg=\"lease failed\" lease=%s error=\"%s\"", h.id,
			 log_clean(err, clean, sizeof clean));
		(void)loop_fail(l, h.id, err, 1, 0);
		goto done;
	}
	if (!(pool = compute_start(&w, l->cfg->threads))) {
		log_error("msg=\"cannot start compute threads\" lease=%s", h.id);
		loop_give_back(l, h.id, "worker: cannot start compute threads");
		rc = -1;
		goto done;
	}
	if (loop_compute(l, &h, pool)) {
		compute_finish(pool, NULL, NULL, NULL, 0);
		goto done;
	}
	if (compute_finish(pool, &keys, counts, err, sizeof err)) {
		log_warn("msg=\"lease failed\" lease=%s error=\"%s\"", h.id,
			 log_clean(err, clean, sizeof clean));
		(void)loop_fail(l, h.id, err, 1, 0);
		goto done;
	}
	if (l->cfg->tamper && l->cfg->tamper->counts)
		l->cfg->tamper->counts(&keys, counts);
	body = json_pack("{s:o}", "counts", counts_encode(&keys, counts));
	if (!body) {
		log_error("msg=\"out of memory\" lease=%s", h.id);
		loop_give_back(l, h.id, "worker: out of memory");
		rc = -1;
		goto done;
	}
	loop_lease_path(l, h.id, "complete", path, sizeof path);
	status = loop_deliver(l, path, body, &reply);
	if (status == 200)
		log_debug("msg=\"lease completed\" lease=%s batches=%" PRIu64 " ms=%lld", h.id,
			  h.count, (long long)(timefmt_mono_ms() - t0));
	else if (status)
		log_warn("msg=\"complete refused\" lease=%s status=%ld", h.id, status);
	else
		log_warn("msg=\"stopping with undelivered counts\" lease=%s", h.id);
	/* Its job is over: its programs here are of no more use (other workers' stop idle). */
	if (status == 200 && json_is_true(json_object_get(reply, "job_ended")) &&
	    resident_end_job(l->resident, h.job_id))
		log_debug("msg=\"resident programs stopped: their job ended\" job=%s", h.job_id);
	json_decref(reply);
	json_decref(body);
done:
	if (w.k)
		kernel_close(w.k, w.state);
	free(ej);
	return rc ? -1 : 0;
}

/* Returns 1 when a lease request's refusal says this worker is quarantined. */
static int loop_quarantined(const json_t *reply)
{
	const json_t *code = json_object_get(json_object_get(reply, "error"), "code");
	return json_is_string(code) && !strcmp(json_string_value(code), "worker_quarantined");
}

/* Adds k to the kernels a lease request offers, as "name@version". Returns 0, or -1. */
static int loop_offer(json_t *req, const struct kernel *k)
{
	char offer[KERNEL_NAME_MAX + 12];
	snprintf(offer, sizeof offer, "%s@%u", k->name, k->version);
	return json_array_append_new(json_object_get(req, "kernels"), json_string(offer));
}

int loop_run(const struct loop_config *cfg, volatile sig_atomic_t *stop)
{
	struct loop l = { .cfg = cfg, .stop = stop };
	json_t *req;
	int exit_code = 0;

	l.client = client_new(cfg->server, cfg->token, cfg->cacert, stop);
	req = json_pack("{s:s,s:[],s:i}", "worker", cfg->name, "kernels", "wait_s", cfg->wait_s);
	/* Offer every kernel this worker has, built in or plug-in, with its version; exec only
	 * when allowed to run programs. */
	for (size_t i = 0; req && kernel_at(i); i++)
		if (loop_offer(req, kernel_at(i)))
			json_decref(req), req = NULL;
	if (req && cfg->exec && cfg->exec->nallow &&
	    (loop_offer(req, kernel_find("exec")) ||
	     !(l.resident = resident_new(cfg->threads, cfg->exec_idle_s, cfg->exec_max_rss_mib))))
		json_decref(req), req = NULL;
	if (!l.client || !req) {
		client_free(l.client);
		json_decref(req);
		return 1;
	}
	log_info("msg=\"worker started\" worker=%s server=%s threads=%d", cfg->name, cfg->server,
		 cfg->threads);
	idle_init(&l.idle, cfg->idle_exit_s, timefmt_mono_ms());
	while (!*stop) {
		long status = 0;
		json_t *reply = NULL;
		int64_t now = timefmt_mono_ms();
		int wait_s = idle_wait_s(&l.idle, now, cfg->wait_s);
		int64_t reap = resident_reap(l.resident, now);
		enum tally_err rc;

		/* Asks again when the next idle program is due, so that it stops on time. */
		if (reap >= 0 && reap / 1000 + 1 < wait_s)
			wait_s = (int)(reap / 1000 + 1);
		if (idle_expired(&l.idle, now)) {
			log_info("msg=\"idle: no lease for --idle-exit seconds; exiting\" idle_exit_s=%lld",
				 (long long)cfg->idle_exit_s);
			break;
		}
		if (json_object_set_new(req, "wait_s", json_integer(wait_s))) {
			exit_code = 1;
			break;
		}
		rc = client_post(l.client, "/v1/leases", req, (long)wait_s * 1000 + 10000, 1,
				 &status, &reply);
		if (*stop && rc) {
			json_decref(reply);
			break;
		}
		if (*stop && status == 200 && reply) {
			/* Granted as the worker was told to stop: the lease goes back at once rather
			 * than wait for its expiry. */
			const char *id = json_string_value(json_object_get(reply, "id"));
			if (id)
				loop_give_back(&l, id, "worker stopping");
			json_decref(reply);
			break;
		}
		if (rc || status >= 500) {
			if (rc)
				log_warn("msg=\"coordinator unreachable\" error=\"%s\"",
					 client_errmsg(l.client));
			else
				log_warn("msg=\"coordinator error\" status=%ld", status);
			json_decref(reply);
			loop_backoff(&l, 0);
			continue;
		}
		if (status == 200 && reply) {
			int bad = loop_lease(&l, reply);
			idle_lease_ended(&l.idle, timefmt_mono_ms());
			if (bad)
				loop_backoff(&l, 0);
			else
				l.attempt = 0;
		} else if (status == 204) {
			l.attempt = 0;
		} else if (status == 403 && loop_quarantined(reply)) {
			/* Its counts disagreed with other workers': nothing it computes is taken. */
			const char *why = json_string_value(
				json_object_get(json_object_get(reply, "error"), "message"));
			log_error("msg=\"quarantined by the coordinator; stopping\" error=\"%s\"",
				  why ? why : "");
			json_decref(reply);
			exit_code = 3;
			break;
		} else {
			log_error("msg=\"lease request refused\" status=%ld", status);
			loop_backoff(&l, 0);
		}
		json_decref(reply);
	}
	resident_free(l.resident);
	log_info("msg=\"worker stopped\" worker=%s", cfg->name);
	json_decref(req);
	client_free(l.client);
	return exit_code;
}
