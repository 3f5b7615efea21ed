/* GET /metrics: the Prometheus text format (version 0.0.4). Counters since the coordinator
 * started, gauges read now: jobs by state, batches and samples completed, leases, refused
 * completes, workers by state, the queue an autoscaler can act on, verification, requests and
 * their latency by route, the latency of the store's commits, and unfinished jobs and fair share
 * by owner (bounded: COORD_OWNERS_SHOWN owners each). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"

#define METRICS_MAX (1 << 20)

/* Writes one metric's HELP and TYPE lines. */
static enum tally_err head(struct buf *b, const char *name, const char *type, const char *help)
{
	return buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes a metric without labels. */
static enum tally_err one(struct buf *b, const char *name, const char *type, const char *help,
			  uint64_t v)
{
	enum tally_err rc = head(b, name, type, help);
	return rc ? rc : buf_addf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* Writes the bucket, sum and count lines of a histogram; labels is "" or `a="b",`. */
static enum tally_err histogram(struct buf *b, const char *name, const char *labels,
				const struct latency *l)
{
	uint64_t cum = 0;
	enum tally_err rc = TALLY_OK;
	for (size_t i = 0; i < LATENCY_BUCKETS && !rc; i++) {
		cum += l->bucket[i];
		if (isinf(latency_le[i]))
			rc = buf_addf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
				      (unsigned long long)cum);
		else
			rc = buf_addf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels,
				      latency_le[i], (unsigned long long)cum);
	}
	if (!rc) {
		size_t n = strlen(labels);
		/* The sum and count take the same labels without the trailing comma. */
		rc = buf_addf(b, "%s_sum%s%.*s%s %.6f\n%s_count%s%.*s%s %llu\n", name, n ? "{" : "",
			      (int)(n ? n - 1 : 0), labels, n ? "}" : "", l->sum_s, name,
			      n ? "{" : "", (int)(n ? n - 1 : 0), labels, n ? "}" : "",
			      (unsigned long long)l->count);
	}
	return rc;
}

static enum tally_err coordinator(struct buf *b, const struct coord_metrics *m)
{
	static const char *const states[] = { "queued", "running", "succeeded", "failed",
					      "cancelled" };
	enum tally_err rc = head(b, "tally_jobs", "gauge", "Jobs in the store, by state.");
	for (int i = 0; i < 5 && !rc; i++)
		rc = buf_addf(b, "tally_jobs{state=\"%s\"} %llu\n", states[i],
			      (unsigned long long)m->jobs[i]);
	if (rc || (rc = one(b, "tally_jobs_submitted_total", "counter", "Jobs submitted.",
			    m->jobs_submitted)) ||
	    (rc = one(b, "tally_batches_completed_total", "counter",
		      "Batches counted by accepted completes.", m->batches_completed)) ||
	    (rc = one(b, "tally_samples_completed_total", "counter",
		      "Samples counted by accepted completes.", m->samples_completed)) ||
	    (rc = one(b, "tally_leases_granted_total", "counter", "Leases granted.",
		      m->leases_granted)) ||
	    (rc = one(b, "tally_leases_expired_total", "counter",
		      "Leases that expired without a heartbeat.", m->leases_expired)) ||
	    (rc = one(b, "tally_leases_failed_total", "counter", "Leases given back by a fail.",
		      m->leases_failed)) ||
	    (rc = one(b, "tally_leases_active", "gauge", "Live leases.", m->leases_active)) ||
	    (rc = one(b, "tally_speculative_leases_total", "counter",
		      "Speculative copies granted of leases a job waited for last.",
		      m->spec_granted)) ||
	    (rc = one(b, "tally_speculative_wins_total", "counter",
		      "Speculative copies that completed before the lease they copied.",
		      m->spec_won)) ||
	    (rc = head(b, "tally_completes_refused_total", "counter",
		       "Completes not counted, by reason.")) ||
	    (rc = buf_addf(b,
			   "tally_completes_refused_total{reason=\"lost\"} %llu\n"
			   "tally_completes_refused_total{reason=\"bad_counts\"} %llu\n"
			   "tally_completes_refused_total{reason=\"duplicate\"} %llu\n",
			   (unsigned long long)m->completes_lost,
			   (unsigned long long)m->completes_bad_counts,
			   (unsigned long long)m->completes_duplicate)) ||
	    (rc = one(b, "tally_queue_batches", "gauge",
		      "Batches waiting for a lease over unfinished jobs: scale workers on this.",
		      m->queue_batches)) ||
	    (rc = one(b, "tally_queue_samples", "gauge",
		      "Samples not yet counted over unfinished jobs.", m->queue_samples)) ||
	    (rc = one(b, "tally_checks_pending", "gauge",
		      "Verification checks waiting for an opinion.", m->checks_pending)) ||
	    (rc = one(b, "tally_quarantined_workers", "gauge",
		      "Workers quarantined, as stored (also those not heard from since the start).",
		      m->quarantined)) ||
	    (rc = head(b, "tally_workers", "gauge", "Workers heard from, by state.")))
		return rc;
	for (int i = 0; i < WORKER_STATES && !rc; i++)
		rc = buf_addf(b, "tally_workers{state=\"%s\"} %llu\n",
			      worker_state_name((enum worker_state)i),
			      (unsigned long long)m->workers[i]);
	return rc;
}

/* Writes s as a label value, escaped as the text format requires (backslash, quote, newline). */
static enum tally_err label(struct buf *b, const char *s)
{
	enum tally_err rc = TALLY_OK;
	for (; *s && !rc; s++)
		rc = *s == '\\' ? buf_addf(b, "\\\\")
		   : *s == '"'  ? buf_addf(b, "\\\"")
		   : *s == '\n' ? buf_addf(b, "\\n")
				: buf_addf(b, "%c", *s);
	return rc;
}

static enum tally_err by_owner(struct buf *b, const struct coord_metrics *m)
{
	enum tally_err rc = head(b, "tally_jobs_by_owner", "gauge",
				 "Unfinished jobs by owner and state: the 50 owners with the most, the "
				 "rest summed as owner \"other\".");
	for (size_t i = 0; i < m->nby_owner && !rc; i++) {
		const struct coord_owner_jobs *o = &m->by_owner[i];
		for (int k = 0; k < 2 && !rc; k++)
			if (!(rc = buf_addf(b, "tally_jobs_by_owner{owner=\"")) &&
			    !(rc = label(b, o->owner)))
				rc = buf_addf(b, "\",state=\"%s\"} %llu\n", k ? "running" : "queued",
					      (unsigned long long)(k ? o->running : o->queued));
	}
	if (rc || (rc = head(b, "tally_fair_lead_leases", "gauge",
			     "For each owner with work waiting, by priority: its pass minus the "
			     "priority's virtual time, in leases; the next lease of a priority goes to "
			     "the lowest. The first 50 in that order.")))
		return rc;
	for (size_t i = 0; i < m->nfair && !rc; i++)
		if (!(rc = buf_addf(b, "tally_fair_lead_leases{owner=\"")) &&
		    !(rc = label(b, m->fair[i].owner)))
			rc = buf_addf(b, "\",priority=\"%d\"} %lld\n", m->fair[i].priority,
				      (long long)m->fair[i].lead);
	return rc;
}

static enum tally_err requests(struct buf *b, const struct http_stats *s)
{
	static const char *const classes[] = { "closed", "1xx", "2xx", "3xx", "4xx", "5xx" };
	enum tally_err rc = head(b, "tally_http_requests_total", "counter",
				 "Requests answered, by route and status class.");
	char labels[160];

	for (size_t i = 0; i <= s->nroutes && !rc; i++) {
		const char *method = i < s->nroutes ? s->routes[i].method : "";
		const char *route = i < s->nroutes ? s->routes[i].pattern : "(none)";
		for (int k = 0; k < 6 && !rc; k++)
			if (s->per_route[i].status[k])
				rc = buf_addf(b,
					      "tally_http_requests_total{method=\"%s\",route=\"%s\","
					      "code=\"%s\"} %llu\n",
					      method, route, classes[k],
					      (unsigned long long)s->per_route[i].status[k]);
	}
	if (rc || (rc = head(b, "tally_http_request_duration_seconds", "histogram",
			     "From a request's first byte to its reply, by route.")))
		return rc;
	for (size_t i = 0; i <= s->nroutes && !rc; i++) {
		if (!s->per_route[i].latency.count)
			continue;
		snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\",",
			 i < s->nroutes ? s->routes[i].method : "",
			 i < s->nroutes ? s->routes[i].pattern : "(none)");
		rc = histogram(b, "tally_http_request_duration_seconds", labels,
			       &s->per_route[i].latency);
	}
	if (rc || (rc = head(b, "tally_sqlite_commit_duration_seconds", "histogram",
			     "Commits of the changes of one event-loop pass.")) ||
	    (rc = histogram(b, "tally_sqlite_commit_duration_seconds", "", &s->commit)))
		return rc;
	return one(b, "tally_http_connections", "gauge", "Connections open.", s->connections);
}

void metrics_get(struct req *r, void *app)
{
	struct api *a = app;
	struct coord_metrics m;
	struct http_stats s;
	struct buf b;
	enum tally_err rc;
	char *text;

	if ((rc = coord_metrics(a->coord, &m))) {
		api_reply_rc(r, a, rc, NULL);
		return;
	}
	req_stats(r, &s);
	buf_init(&b, METRICS_MAX);
	if ((rc = coordinator(&b, &m)) || (rc = by_owner(&b, &m)) || (rc = requests(&b, &s))) {
		buf_release(&b);
		api_reply_rc(r, a, rc == TALLY_ETOOBIG ? TALLY_ENOMEM : rc, NULL);
		return;
	}
	text = strdup(buf_str(&b));
	buf_release(&b);
	reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}
