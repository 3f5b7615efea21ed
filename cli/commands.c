/* submit, run, status, wait, list, cancel, extend, delete: requests to the jobs API and what they print. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "num.h"
#include "wire.h"
#include "progress.h"

#define CLI_TIMEOUT_MS 30000
#define CLI_LINE_MAX 512

/* Prints the coordinator's error reply (or the transport error) and returns 1. */
static int cli_fail(struct cli *c, enum tally_err rc, long status, const json_t *reply)
{
	const json_t *e = json_object_get(reply, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	if (rc)
		fprintf(stderr, "tally: cannot reach the coordinator: %s\n", client_errmsg(c->client));
	else
		fprintf(stderr, "tally: %ld: %s\n", status, msg ? msg : "unexpected reply");
	return 1;
}

/* Prints v as one line of compact JSON. */
static void print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	if (s)
		printf("%s\n", s);
	free(s);
}

/* Reads a whole number: decimal digits, or a number such as 1e10 or 2.5e9 that is whole.
 * Returns 0, or -1 after printing why. */
static int whole(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	double d;

	if (!num_parse_u64(s, min, max, out))
		return 0;
	d = strtod(s, &end);
	if (*s && !*end && isfinite(d) && d == floor(d) && d >= (double)min && d <= (double)max) {
		*out = (uint64_t)d;
		return 0;
	}
	fprintf(stderr, "tally: --%s: expected a whole number from %llu to %llu (1e10 is fine), "
			"not '%s'\n", flag, (unsigned long long)min, (unsigned long long)max, s);
	return -1;
}

/* Builds the body of POST /v1/jobs. Returns NULL after printing why. */
static json_t *spec_json(const struct cli_spec *spec)
{
	uint64_t samples, batch = 0, seed;
	json_t *body;
	char *end;

	if (!spec->samples) {
		fprintf(stderr, "tally: --samples is required\n");
		return NULL;
	}
	if (whole("samples", spec->samples, 1, 1ULL << 62, &samples) ||
	    (spec->batch_size && whole("batch-size", spec->batch_size, 1, samples, &batch)))
		return NULL;
	if (spec->seed && num_parse_u64(spec->seed, 0, UINT64_MAX, &seed)) {
		fprintf(stderr, "tally: --seed: expected decimal digits, 0 to 2^64-1\n");
		return NULL;
	}
	body = json_pack("{s:s,s:I}", "kernel", spec->kernel, "samples", (json_int_t)samples);
	if (!body)
		return NULL;
	if (batch)
		json_object_set_new(body, "batch_size", json_integer((json_int_t)batch));
	if (spec->seed) /* as a string: the coordinator takes the whole 64-bit range so */
		json_object_set_new(body, "seed", json_string(spec->seed));
	if (spec->verify) {
		double f = strtod(spec->verify, &end);
		if (!*spec->verify || *end || !(f >= 0.0 && f <= 1.0)) {
			fprintf(stderr, "tally: --verify: expected a fraction from 0 to 1\n");
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "verify", json_real(f));
	}
	if (spec->target_stderr) {
		double t = strtod(spec->target_stderr, &end);
		if (!*spec->target_stderr || *end || !(t > 0.0)) {
			fprintf(stderr, "tally: --target-stderr: expected a number more than 0\n");
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "target_stderr", json_real(t));
	}
	if (spec->priority) {
		const char *p = spec->priority;
		int neg = *p == '-';
		uint64_t v;
		if (num_parse_u64(p + neg, 0, neg ? -WIRE_PRIORITY_MIN : WIRE_PRIORITY_MAX, &v)) {
			fprintf(stderr, "tally: --priority: expected an integer from %d to %d\n",
				WIRE_PRIORITY_MIN, WIRE_PRIORITY_MAX);
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "priority", json_integer(neg ? -(json_int_t)v
								       : (json_int_t)v));
	}
	if (spec->params) {
		json_t *p = json_loads(spec->params, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(p)) {
			fprintf(stderr, "tally: --params: expected a JSON object, such as "
					"'{\"argv\": [\"/opt/sim/run\"]}'\n");
			json_decref(p);
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "params", p);
	}
	return body;
}

/* Checks an id given on the command line: the coordinator's ids are decimal. */
static int id_ok(const char *id)
{
	uint64_t v;
	if (id && !num_parse_u64(id, 1, INT64_MAX, &v))
		return 1;
	fprintf(stderr, "tally: expected a job id (a positive integer), not '%s'\n",
		id ? id : "");
	return 0;
}

/* Prints how a job ended (or stands) and returns the exit status it calls for. */
static int report(struct cli *c, const json_t *job)
{
	char line[CLI_LINE_MAX];
	const char *state = json_string_value(json_object_get(job, "state"));

	if (c->json) {
		print_json(job);
	} else {
		progress_summary(job, line, sizeof line);
		printf("%s\n", line);
	}
	return state && strcmp(state, "failed") && strcmp(state, "cancelled") ? 0 : 1;
}

/* Waits for job id to finish, showing progress: a bar redrawn in place on a terminal, a line a
 * second otherwise (none with --json). */
static int wait_job(struct cli *c, const char *id)
{
	char path[96], line[CLI_LINE_MAX];
	json_t *job = NULL;
	long status;
	enum tally_err rc;
	int drawn = 0, code;

	snprintf(path, sizeof path, "/v1/jobs/%s?wait_s=1", id);
	for (;;) {
		json_t *next = NULL;
		if (c->interrupt && *c->interrupt) {
			if (drawn && c->tty)
				printf("\n");
			fprintf(stderr, "tally: interrupted; job %s goes on (tally wait %s)\n", id,
				id);
			json_decref(job);
			return 1;
		}
		rc = client_get(c->client, path, CLI_TIMEOUT_MS, &status, &next);
		if (rc || status != 200) {
			if (drawn && c->tty)
				printf("\n");
			code = cli_fail(c, rc, status, next);
			json_decref(next);
			json_decref(job);
			return code;
		}
		json_decref(job);
		job = next;
		if (!c->json) {
			progress_line(job, c->tty, line, sizeof line);
			printf(c->tty ? "\r%s\033[K" : "%s\n", line);
			fflush(stdout);
			drawn = 1;
		}
		if (progress_final(job))
			break;
	}
	if (drawn && c->tty)
		printf("\n");
	code = report(c, job);
	json_decref(job);
	return code;
}

int cmd_submit(struct cli *c, const struct cli_spec *spec, int wait)
{
	json_t *body = spec_json(spec), *reply = NULL;
	const char *id;
	long status = 0;
	enum tally_err rc;
	int code;

	if (!body)
		return 2;
	rc = client_post(c->client, "/v1/jobs", body, CLI_TIMEOUT_MS, 0, &status, &reply);
	json_decref(body);
	if (rc || status != 201) {
		code = cli_fail(c, rc, status, reply);
		json_decref(reply);
		return code;
	}
	id = json_string_value(json_object_get(reply, "id"));
	if (!wait) {
		if (c->json)
			print_json(reply);
		else
			printf("submitted job %s\n", id ? id : "?");
		json_decref(reply);
		return 0;
	}
	if (id && json_object_get(reply, "waiting_for") &&
	    !json_integer_value(json_object_get(reply, "kernel_version"))) {
		/* Neither the coordinator nor any worker has the kernel (a typo, most likely):
		 * waiting would never end. */
		char path[64];
		json_t *r = NULL;
		snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
		if (client_post(c->client, path, NULL, CLI_TIMEOUT_MS, 0, &status, &r))
			status = 0;
		json_decref(r);
		fprintf(stderr, "tally: kernel '%s': unknown to the coordinator and offered by no "
				"worker; job %s cancelled (tally submit queues a job for workers yet "
				"to come)\n", spec->kernel, status == 200 ? id : "not");
		json_decref(reply);
		return 1;
	}
	if (!c->json)
		fprintf(stderr, "tally: job %s: %s, %s samples\n", id ? id : "?", spec->kernel,
			spec->samples);
	code = id ? wait_job(c, id) : 1;
	json_decref(reply);
	return code;
}

/* Sends a GET of /v1/jobs/<id><suffix> (post: a POST) and reports the job it returns. */
static int job_request(struct cli *c, const char *id, int post, const char *suffix)
{
	char path[64];
	json_t *job = NULL;
	long status = 0;
	enum tally_err rc;
	int code;

	if (!id_ok(id))
		return 2;
	snprintf(path, sizeof path, "/v1/jobs/%s%s", id, suffix);
	rc = post ? client_post(c->client, path, NULL, CLI_TIMEOUT_MS, 0, &status, &job)
		  : client_get(c->client, path, CLI_TIMEOUT_MS, &status, &job);
	code = rc || status != 200 ? cli_fail(c, rc, status, job) : (report(c, job), 0);
	json_decref(job);
	return code;
}

int cmd_status(struct cli *c, const char *id)
{
	return job_request(c, id, 0, "");
}

int cmd_wait(struct cli *c, const char *id)
{
	return id_ok(id) ? wait_job(c, id) : 2;
}

int cmd_list(struct cli *c, const char *state, const char *limit, const char *owner)
{
	char path[192], line[CLI_LINE_MAX];
	json_t *reply = NULL, *job;
	long status = 0;
	size_t i;
	enum tally_err rc;
	int code = 0;

	snprintf(path, sizeof path, "/v1/jobs?limit=%.8s%s%.16s%s%.64s", limit,
		 state ? "&state=" : "", state ? state : "", owner ? "&owner=" : "",
		 owner ? owner : "");
	rc = client_get(c->client, path, CLI_TIMEOUT_MS, &status, &reply);
	if (rc || status != 200) {
		code = cli_fail(c, rc, status, reply);
	} else if (c->json) {
		print_json(reply);
	} else {
		json_array_foreach(json_object_get(reply, "jobs"), i, job) {
			progress_summary(job, line, sizeof line);
			printf("%s\n", line);
		}
	}
	json_decref(reply);
	return code;
}

int cmd_cancel(struct cli *c, const char *id)
{
	return job_request(c, id, 1, "/cancel");
}

int cmd_delete(struct cli *c, const char *id)
{
	char path[64];
	json_t *reply = NULL;
	long status = 0;
	enum tally_err rc;
	int code = 0;

	if (!id_ok(id))
		return 2;
	snprintf(path, sizeof path, "/v1/jobs/%s", id);
	rc = client_delete(c->client, path, CLI_TIMEOUT_MS, &status, &reply);
	if (rc || status != 204)
		code = cli_fail(c, rc, status, reply);
	else if (!c->json)
		printf("deleted job %s\n", id);
	json_decref(reply);
	return code;
}

int cmd_extend(struct cli *c, const char *id, const char *samples)
{
	char path[64];
	uint64_t n;
	json_t *body, *job = NULL;
	long status = 0;
	enum tally_err rc;
	int code;

	if (!id_ok(id))
		return 2;
	if (!samples) {
		fprintf(stderr, "tally: --samples is required\n");
		return 2;
	}
	if (whole("samples", samples, 1, 1ULL << 62, &n) ||
	    !(body = json_pack("{s:I}", "samples", (json_int_t)n)))
		return 2;
	snprintf(path, sizeof path, "/v1/jobs/%s/extend", id);
	rc = client_post(c->client, path, body, CLI_TIMEOUT_MS, 0, &status, &job);
	json_decref(body);
	code = rc || status != 200 ? cli_fail(c, rc, status, job) : (report(c, job), 0);
	json_decref(job);
	return code;
}
