/* Decoders for every request body and path or query value. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "decode.h"
#include "num.h"

static enum tally_err fail(struct decode_error *e, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum tally_err fail(struct decode_error *e, const char *code, const char *fmt, ...)
{
	va_list ap;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return TALLY_EINVAL;
}

/* Finds the key whose value ends just before pos (`"key": 123|`), for messages about numbers the
 * parser cannot hold. Writes it into out (empty when the number is not an object member). */
static void key_before(const char *data, size_t pos, char *out, size_t outlen)
{
	size_t i = pos, end;

	out[0] = '\0';
	while (i > 0 && strchr("0123456789+-.eE", data[i - 1]))
		i--;
	while (i > 0 && strchr(" \t\r\n", data[i - 1]))
		i--;
	if (i == 0 || data[--i] != ':')
		return;
	while (i > 0 && strchr(" \t\r\n", data[i - 1]))
		i--;
	if (i == 0 || data[--i] != '"')
		return;
	end = i;
	while (i > 0 && (data[i - 1] != '"' || (i > 1 && data[i - 2] == '\\')))
		i--;
	if (i == 0 || end - i >= outlen)
		return;
	memcpy(out, data + i, end - i);
	out[end - i] = '\0';
}

json_t *decode_json(const char *data, size_t len, struct decode_error *e)
{
	json_error_t je;
	json_t *root;
	char key[65];

	if (!len) {
		fail(e, "invalid_json", "body: empty; expected a JSON object");
		return NULL;
	}
	/* NUL in strings is parsed so that the field's own check can name it (JSON_ALLOW_NUL). */
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (root)
		return root;
	if (json_error_code(&je) == json_error_numeric_overflow) {
		key_before(data, je.position > 0 && (size_t)je.position <= len ? (size_t)je.position : 0,
			   key, sizeof key);
		fail(e, "invalid_field",
		     "%s: number out of range (integers must lie in -2^63..2^63-1; give seeds above "
		     "2^63-1 as a decimal string)", key[0] ? key : "body");
	} else {
		fail(e, "invalid_json", "body: %s at position %d", je.text, je.position);
	}
	return NULL;
}

/* Returns the string value of v, or NULL when v is not a string or holds a NUL. */
static const char *get_str(const json_t *v)
{
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

/* Checks that body is an object whose keys are all in allowed[] (NULL-terminated). */
static enum tally_err check_keys(const json_t *body, const char *const *allowed,
				 struct decode_error *e)
{
	const char *key;
	json_t *v;

	if (!json_is_object(body))
		return fail(e, "invalid_json", "body: must be a JSON object");
	json_object_foreach((json_t *)body, key, v) {
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (!strcmp(allowed[i], key))
				break;
		if (!allowed[i])
			return fail(e, "unknown_field", "%.64s: unknown field", key);
	}
	return TALLY_OK;
}

/* Reads an integral JSON number (an integer, or a real with no fraction such as 1e10) in
 * [min, max]. */
static enum tally_err get_uint(const json_t *v, const char *name, uint64_t min, uint64_t max,
			       uint64_t *out, struct decode_error *e)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
			goto range;
		*out = (uint64_t)i;
		return TALLY_OK;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		/* A real zero may be what is left of 1e-400: jansson keeps no text to tell. Zero is
		 * written 0. */
		if (!isfinite(d) || d != floor(d) || d == 0)
			return fail(e, "invalid_field", "%s: must be an integer", name);
		/* 2^64 is exact as a double; (double)max may round up, so compare as integers. */
		if (d < 0 || d >= 18446744073709551616.0 || (d == 0 && signbit(d)))
			goto range;
		*out = (uint64_t)d;
		if (*out < min || *out > max)
			goto range;
		return TALLY_OK;
	}
	return fail(e, "invalid_field", "%s: must be an integer", name);
range:
	return fail(e, "invalid_field", "%s: must be from %llu to %llu", name,
		    (unsigned long long)min, (unsigned long long)max);
}

int decode_id(const char *s, int64_t *out)
{
	uint64_t v;
	if (!s || s[0] == '0' || num_parse_u64(s, 1, INT64_MAX, &v))
		return -1;
	*out = (int64_t)v;
	return 0;
}

int decode_lease_ref(const char *s, int64_t *id, uint64_t *tag)
{
	static const char hex[] = "0123456789abcdef";
	const char *dash = s ? strchr(s, '-') : NULL;
	char digits[24];
	size_t n = dash ? (size_t)(dash - s) : 0;

	if (!dash || n >= sizeof digits || strlen(dash + 1) != DECODE_LEASE_TAG_DIGITS)
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (decode_id(digits, id))
		return -1;
	*tag = 0;
	for (const char *p = dash + 1; *p; p++) {
		const char *d = strchr(hex, *p);
		if (!d)
			return -1;
		*tag = *tag << 4 | (uint64_t)(d - hex);
	}
	return 0;
}

enum tally_err decode_job_spec(const json_t *body, uint64_t default_seed, struct job_spec *out,
			       char params[KERNEL_PARAMS_MAX], struct decode_error *e)
{
	static const char *const allowed[] = { "kernel", "samples", "batch_size", "seed",
					       "params", "verify", "target_stderr", "priority",
					       NULL };
	const char *kname;
	const json_t *v;
	enum tally_err rc;

	if ((rc = check_keys(body, allowed, e)))
		return rc;
	memset(out, 0, sizeof *out);
	params[0] = '\0';
	out->params = params;

	v = json_object_get(body, "kernel");
	if (!v)
		return fail(e, "missing_field", "kernel: required");
	if (!get_str(v))
		return fail(e, "invalid_field", "kernel: must be a string (without NUL)");
	/* A kernel this coordinator has no code for may be a plug-in of some workers: the job
	 * waits for a worker that offers it. Its name becomes a kernel at submit (coord_submit),
	 * so that refused jobs leave no names behind. */
	kname = json_string_value(v);
	if (!kernel_name_ok(kname))
		return fail(e, "invalid_field", "kernel: '%.32s' is not a kernel name (1 to %d of "
			    "a-z, 0-9, _ and -)", kname, KERNEL_NAME_MAX - 1);
	snprintf(out->kernel_name, sizeof out->kernel_name, "%s", kname);
	if (!(out->kernel = kernel_find(kname)))
		out->kernel = kernel_placeholder();

	v = json_object_get(body, "samples");
	if (!v)
		return fail(e, "missing_field", "samples: required");
	if ((rc = get_uint(v, "samples", 1, JOB_SAMPLES_MAX, &out->samples, e)))
		return rc;

	v = json_object_get(body, "batch_size");
	if (v) {
		if ((rc = get_uint(v, "batch_size", 1, out->samples, &out->batch_size, e)))
			return rc;
	} else {
		out->batch_size = out->samples < JOB_BATCH_SIZE_DEFAULT ? out->samples
									 : JOB_BATCH_SIZE_DEFAULT;
	}

	v = json_object_get(body, "seed");
	if (!v) {
		out->seed = default_seed;
	} else if (json_is_string(v)) {
		if (!get_str(v) || num_parse_u64(json_string_value(v), 0, UINT64_MAX, &out->seed))
			return fail(e, "invalid_field",
				    "seed: a string seed must be decimal digits, 0 to "
				    "18446744073709551615");
	} else if ((rc = get_uint(v, "seed", 0, INT64_MAX, &out->seed, e))) {
		return rc;
	}

	v = json_object_get(body, "verify");
	if (v) {
		double f = json_is_number(v) ? json_number_value(v) : -1.0;
		if (!(f >= 0.0 && f <= 1.0)) /* JSON has no NaN: jansson refuses the spelling */
			return fail(e, "invalid_field",
				    "verify: must be a number from 0 to 1 (the fraction of "
				    "completed leases computed again by another worker)");
		out->verify = f;
	}

	v = json_object_get(body, "params");
	if (v && json_is_null(v))
		v = NULL;
	char err[sizeof e->message];
	enum kernel_params_fault fault;
	rc = kernel_params_check(out->kernel, v, params, KERNEL_PARAMS_MAX, &fault, err,
				 sizeof err);
	if (rc == TALLY_ENOMEM)
		return fail(e, "invalid_field", "params: out of memory");
	if (rc)
		return fail(e, fault == KERNEL_PARAMS_UNKNOWN ? "unknown_field" : "invalid_field",
			    "%s", err);
	v = json_object_get(body, "target_stderr");
	if (v) {
		double t = json_is_number(v) ? json_number_value(v) : -1.0;
		if (!(t > 0.0))
			return fail(e, "invalid_field", "target_stderr: must be a number more than 0 "
				    "(the job stops once its result's standard error is that small)");
		if (!kernel_has_stderr(out->kernel))
			return fail(e, "invalid_field", "target_stderr: kernel %s derives no result "
				    "with a stderr here", kname);
		if (out->verify > 0)
			return fail(e, "invalid_field", "target_stderr: not with verify (a job that "
				    "stops early does not wait for its checks)");
		out->target_stderr = t;
	}
	v = json_object_get(body, "priority");
	if (v) {
		json_int_t p = json_is_integer(v) ? json_integer_value(v) : 0;
		if (!json_is_integer(v) || p < WIRE_PRIORITY_MIN || p > WIRE_PRIORITY_MAX)
			return fail(e, "invalid_field", "priority: must be an integer from %d to %d",
				    WIRE_PRIORITY_MIN, WIRE_PRIORITY_MAX);
		out->priority = (int)p;
	}
	return TALLY_OK;
}

enum tally_err decode_extend(const json_t *body, uint64_t *samples, struct decode_error *e)
{
	static const char *const allowed[] = { "samples", NULL };
	const json_t *v;
	enum tally_err rc;

	if ((rc = check_keys(body, allowed, e)))
		return rc;
	if (!(v = json_object_get(body, "samples")))
		return fail(e, "missing_field", "samples: required");
	return get_uint(v, "samples", 1, JOB_SAMPLES_MAX, samples, e);
}

static int worker_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("._:@-", c);
}

enum tally_err decode_lease_request(const json_t *body, struct lease_request *out,
				    struct decode_error *e)
{
	static const char *const allowed[] = { "worker", "kernels", "wait_s", "max_batches",
					       "skip_jobs", NULL };
	const json_t *v, *k;
	const char *name;
	size_t i, len;
	uint64_t n;
	enum tally_err rc;

	if ((rc = check_keys(body, allowed, e)))
		return rc;
	memset(out, 0, sizeof *out);

	v = json_object_get(body, "worker");
	if (!v)
		return fail(e, "missing_field", "worker: required");
	if (!json_is_string(v))
		return fail(e, "invalid_field", "worker: must be a string");
	name = json_string_value(v);
	len = json_string_length(v);
	if (len < 1 || len >= WORKER_NAME_MAX)
		return fail(e, "invalid_field", "worker: must be 1 to %d characters",
			    WORKER_NAME_MAX - 1);
	for (i = 0; i < len; i++)
		if (!name[i] || !worker_char_ok(name[i]))
			return fail(e, "invalid_field",
				    "worker: only letters, digits and ._:@- are allowed");
	memcpy(out->worker, name, len + 1);

	v = json_object_get(body, "kernels");
	if (!v)
		return fail(e, "missing_field", "kernels: required");
	if (!json_is_array(v) || !json_array_size(v))
		return fail(e, "invalid_field", "kernels: must be a non-empty array of names");
	if (json_array_size(v) > COORD_KERNELS_MAX)
		return fail(e, "invalid_field", "kernels: at most %d names", COORD_KERNELS_MAX);
	json_array_foreach(v, i, k) {
		/* "name", or "name@version": the version of the kernel the worker has. */
		char kname[KERNEL_NAME_MAX];
		const char *s = get_str(k) ? json_string_value(k) : "";
		size_t klen = strcspn(s, "@");
		uint64_t version;
		if (!klen || klen >= KERNEL_NAME_MAX ||
		    (s[klen] && num_parse_u64(s + klen + 1, 1, UINT32_MAX, &version)))
			return fail(e, "invalid_field", "kernels[%zu]: must be a kernel name, or "
				    "name@version", i);
		memcpy(kname, s, klen);
		kname[klen] = '\0';
		if (!kernel_name_ok(kname))
			return fail(e, "invalid_field", "kernels[%zu]: must be a kernel name, or "
				    "name@version", i);
		out->kernels[out->nkernels++] = s;
	}

	v = json_object_get(body, "wait_s");
	if (v) {
		if ((rc = get_uint(v, "wait_s", 0, DECODE_WAIT_MAX_S, &n, e)))
			return rc;
		out->wait_ms = (int64_t)n * 1000;
	}
	v = json_object_get(body, "skip_jobs");
	if (v) {
		if (!json_is_array(v) || json_array_size(v) > COORD_SKIP_MAX)
			return fail(e, "invalid_field", "skip_jobs: must be an array of at most %d job "
				    "ids", COORD_SKIP_MAX);
		json_array_foreach(v, i, k) {
			if (!get_str(k) || decode_id(json_string_value(k), &out->skip[out->nskip]))
				return fail(e, "invalid_field", "skip_jobs[%zu]: must be a job id", i);
			out->nskip++;
		}
	}

	v = json_object_get(body, "max_batches");
	if (v && (rc = get_uint(v, "max_batches", 0, JOB_SAMPLES_MAX, &out->max_batches, e)))
		return rc;
	return TALLY_OK;
}

enum tally_err decode_complete(const json_t *body, struct counts *counts, struct decode_error *e)
{
	static const char *const allowed[] = { "counts", NULL };
	const json_t *v;
	enum tally_err rc;

	if ((rc = check_keys(body, allowed, e)))
		return rc;
	if (!(v = json_object_get(body, "counts")))
		return fail(e, "missing_field", "counts: required");
	if (counts_decode(v, counts))
		return fail(e, "invalid_field", "counts: must be an object");
	return TALLY_OK;
}

enum tally_err decode_fail(const json_t *body, char *reason, int *fault, int *cannot_run,
			   struct decode_error *e)
{
	static const char *const allowed[] = { "error", "fault", "cannot_run", NULL };
	const json_t *v, *f;
	enum tally_err rc;

	reason[0] = '\0';
	*fault = 1;
	*cannot_run = 0;
	if (!body)
		return TALLY_OK;
	if ((rc = check_keys(body, allowed, e)))
		return rc;
	v = json_object_get(body, "cannot_run");
	if (v && !json_is_boolean(v))
		return fail(e, "invalid_field", "cannot_run: must be true or false");
	*cannot_run = json_is_true(v);
	f = json_object_get(body, "fault");
	if (f && !json_is_boolean(f))
		return fail(e, "invalid_field", "fault: must be true or false");
	if (*cannot_run && json_is_true(f))
		return fail(e, "invalid_field", "fault: must be false with cannot_run (a job its "
			    "worker cannot run is no fault of its batches)");
	*fault = f ? json_is_true(f) : !*cannot_run;
	v = json_object_get(body, "error");
	if (!v)
		return TALLY_OK;
	if (!json_is_string(v))
		return fail(e, "invalid_field", "error: must be a string");
	if (json_string_length(v) >= DECODE_REASON_MAX)
		return fail(e, "invalid_field", "error: at most %d bytes", DECODE_REASON_MAX - 1);
	if (memchr(json_string_value(v), '\0', json_string_length(v)))
		return fail(e, "invalid_field", "error: must not contain NUL");
	memcpy(reason, json_string_value(v), json_string_length(v) + 1);
	return TALLY_OK;
}

enum tally_err decode_empty(const json_t *body, struct decode_error *e)
{
	static const char *const allowed[] = { NULL };
	return body ? check_keys(body, allowed, e) : TALLY_OK;
}
