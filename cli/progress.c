/* Formatting a job's progress and summary. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "progress.h"

#define BAR_WIDTH 24

static double num(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* Writes the estimate: "pi = 3.141618 +- 0.000023" when the result has a standard error, the
 * first result value otherwise, "" when there is no result yet. */
static void estimate(const json_t *job, char *out, size_t n)
{
	const json_t *result = json_object_get(job, "result");
	const char *key;
	json_t *v;

	out[0] = '\0';
	if (!json_is_object(result))
		return;
	json_object_foreach((json_t *)result, key, v) {
		if (!strcmp(key, "stderr") || !json_is_number(v))
			continue;
		if (json_is_number(json_object_get(result, "stderr")))
			snprintf(out, n, "%s = %.8g +- %.2g", key, json_number_value(v),
				 num(result, "stderr"));
		else
			snprintf(out, n, "%s = %.10g", key, json_number_value(v));
		return;
	}
}

/* Writes a count the way it was likely typed: "950", "2.88e9", "1e10". */
static const char *sci(double v, char *out, size_t n)
{
	int e;
	if (!isfinite(v) || v < 1e5) {
		snprintf(out, n, "%.0f", isfinite(v) ? v : 0.0);
		return out;
	}
	e = (int)floor(log10(v));
	snprintf(out, n, "%.3ge%d", v / pow(10.0, e), e);
	return out;
}

/* Writes seconds as "2s", "3m05s" or "1h02m". */
static void duration(double s, char *out, size_t n)
{
	long t = (long)(s + 0.5);
	if (!isfinite(s) || s < 0)
		snprintf(out, n, "?");
	else if (t < 60)
		snprintf(out, n, "%lds", t);
	else if (t < 3600)
		snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
}

int progress_final(const json_t *job)
{
	const char *s = json_string_value(json_object_get(job, "state"));
	return s && (!strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "cancelled"));
}

void progress_line(const json_t *job, int bar, char *out, size_t n)
{
	const json_t *batches = json_object_get(job, "batches");
	double total = num(batches, "total"), done = num(batches, "done");
	double samples = num(job, "samples"), rate = num(job, "rate");
	double done_samples = samples * num(job, "progress");
	char bars[BAR_WIDTH + 3] = "", eta[32] = "", est[128], a[32], b[32], r[32];
	int filled = total > 0 ? (int)(BAR_WIDTH * done / total) : 0;

	if (bar) {
		bars[0] = '[';
		for (int i = 0; i < BAR_WIDTH; i++)
			bars[1 + i] = i < filled ? '#' : ' ';
		bars[BAR_WIDTH + 1] = ']';
		bars[BAR_WIDTH + 2] = '\0';
	}
	if (rate > 0 && !progress_final(job)) {
		memcpy(eta, "  ETA ", 7);
		duration((samples - done_samples) / rate, eta + 6, sizeof eta - 6);
	}
	estimate(job, est, sizeof est);
	snprintf(out, n, "%s%s%5.1f%%  %s/%s samples  %s/s%s%s%s", bars, bar ? " " : "",
		 total > 0 ? 100.0 * done / total : 0.0, sci(done_samples, a, sizeof a),
		 sci(samples, b, sizeof b), sci(rate, r, sizeof r), eta, est[0] ? "  " : "", est);
}

void progress_summary(const json_t *job, char *out, size_t n)
{
	const char *state = json_string_value(json_object_get(job, "state"));
	const char *id = json_string_value(json_object_get(job, "id"));
	const char *error = json_string_value(json_object_get(job, "error"));
	const char *owner = json_string_value(json_object_get(job, "owner"));
	const json_t *elapsed = json_object_get(job, "elapsed_s");
	json_int_t priority = json_integer_value(json_object_get(job, "priority"));
	double samples = num(job, "samples");
	char est[128], took[96] = "", who[128] = "", a[32], r[32];
	int len;

	estimate(job, est, sizeof est);
	/* Whose it is and its priority, when the coordinator has users or the job a priority. */
	if (owner || priority)
		snprintf(who, sizeof who, " (%s%s%.0d)", owner ? owner : "no owner",
			 priority ? ", priority " : "", (int)priority);
	if (json_is_number(elapsed))
		snprintf(took, sizeof took, " in %.3g s (%s samples/s)", json_number_value(elapsed),
			 sci(num(job, "rate"), r, sizeof r));
	len = snprintf(out, n, "job %s%s: %s, %.1f%% of %s samples%s", id ? id : "?", who,
		       state ? state : "?", 100.0 * num(job, "progress"), sci(samples, a, sizeof a),
		       took);
	if (len < 0 || (size_t)len >= n)
		return;
	if (est[0])
		len += snprintf(out + len, n - (size_t)len, "; %s", est);
	if (json_is_true(json_object_get(job, "stopped_early")) && len >= 0 && (size_t)len < n)
		len += snprintf(out + len, n - (size_t)len, " (stopped early: target_stderr %g reached)",
				num(job, "target_stderr"));
	if (error && len >= 0 && (size_t)len < n)
		snprintf(out + len, n - (size_t)len, "; error: %s", error);
}
