/* libFuzzer target: a POST /v1/jobs body through decode_json() and decode_job_spec(). An accepted
 * spec must hold exactly what the body says, within the protocol's ranges; a refusal must name
 * the field at fault. */
#include <stdlib.h>
#include <string.h>
#include "seed.h"
#include "fuzz.h"

static const char *const fields[] = { "body", "kernel", "samples", "batch_size", "seed",
				      "params", "verify", "target_stderr", "priority", NULL };

/* Checks an accepted spec against the body it came from. */
static void check_spec(const json_t *body, const void *out)
{
	const struct job_spec *s = out;
	const json_t *v;
	uint64_t batches, back;
	json_t *seed;

	FUZZ_CHECK(json_is_object(body), "accepted a body that is not an object");
	/* The decoder is pure: the kernel named is the one with code here, or the placeholder
	 * that coord_submit() turns into a kernel known by name only. */
	FUZZ_CHECK(!strcmp(s->kernel_name, json_string_value(json_object_get(body, "kernel"))),
		   "kernel %s is not the body's", s->kernel_name);
	FUZZ_CHECK(kernel_name_ok(s->kernel_name), "kernel name '%s'", s->kernel_name);
	FUZZ_CHECK(s->kernel && s->kernel == (kernel_find(s->kernel_name)
						      ? kernel_find(s->kernel_name)
						      : kernel_placeholder()),
		   "kernel %s is neither the one here nor the placeholder", s->kernel_name);
	FUZZ_CHECK(s->samples >= 1 && s->samples <= JOB_SAMPLES_MAX, "samples %llu",
		   (unsigned long long)s->samples);
	FUZZ_CHECK(fuzz_number_is(json_object_get(body, "samples"), s->samples),
		   "samples %llu is not the body's", (unsigned long long)s->samples);
	FUZZ_CHECK(s->batch_size >= 1 && s->batch_size <= s->samples, "batch_size %llu of %llu",
		   (unsigned long long)s->batch_size, (unsigned long long)s->samples);
	v = json_object_get(body, "batch_size");
	FUZZ_CHECK(v ? fuzz_number_is(v, s->batch_size)
		     : s->batch_size == (s->samples < JOB_BATCH_SIZE_DEFAULT ? s->samples
									: JOB_BATCH_SIZE_DEFAULT),
		   "batch_size %llu is not the body's or the default",
		   (unsigned long long)s->batch_size);

	/* Every batch holds at least one sample; together they hold them all. */
	batches = job_batches(s->samples, s->batch_size);
	FUZZ_CHECK(batches >= 1 && batches <= s->samples, "%llu batches",
		   (unsigned long long)batches);
	FUZZ_CHECK(job_range_samples(s->samples, s->batch_size, 0, batches) == s->samples &&
		   job_range_samples(s->samples, s->batch_size, batches - 1, 1) >= 1,
		   "batches do not cover the samples");

	/* A priority is the body's integer, in range, or 0; the decoder sets no owner. */
	v = json_object_get(body, "priority");
	FUZZ_CHECK(s->priority >= WIRE_PRIORITY_MIN && s->priority <= WIRE_PRIORITY_MAX &&
		   (v ? json_is_integer(v) && json_integer_value(v) == s->priority
		      : s->priority == 0), "priority %d", s->priority);
	FUZZ_CHECK(!s->owner[0], "an owner '%s' from the body", s->owner);

	v = json_object_get(body, "seed");
	if (!v)
		FUZZ_CHECK(s->seed == FUZZ_DEFAULT_SEED, "not the default seed");
	else if (!json_is_string(v))
		FUZZ_CHECK(fuzz_number_is(v, s->seed), "seed %llu is not the body's",
			   (unsigned long long)s->seed);
	else
		FUZZ_CHECK(strtoull(json_string_value(v), NULL, 10) == s->seed,
			   "seed %llu is not the body's '%s'", (unsigned long long)s->seed,
			   json_string_value(v));
	v = json_object_get(body, "verify");
	FUZZ_CHECK(s->verify >= 0.0 && s->verify <= 1.0, "verify %g", s->verify);
	FUZZ_CHECK(v ? json_is_number(v) && json_number_value(v) == s->verify : s->verify == 0.0,
		   "verify %g is not the body's", s->verify);
	v = json_object_get(body, "target_stderr");
	FUZZ_CHECK(v ? json_is_number(v) && json_number_value(v) == s->target_stderr &&
			       s->target_stderr > 0 && s->verify == 0.0 &&
			       kernel_has_stderr(s->kernel)
		     : s->target_stderr == 0.0,
		   "target_stderr %g is not the body's, or not allowed", s->target_stderr);
	/* The params kept are the body's, as compact JSON with sorted keys. */
	v = json_object_get(body, "params");
	if (v && !json_is_null(v)) {
		char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		json_t *loaded = json_loads(s->params, 0, NULL);
		FUZZ_CHECK(text && !strcmp(text, s->params), "params %s are not the body's",
			   s->params);
		/* ... and load back as they were: what is stored is what is sent to workers. */
		FUZZ_CHECK(loaded && json_equal(loaded, v), "params %s do not load back", s->params);
		json_decref(loaded);
		free(text);
	} else {
		FUZZ_CHECK(!strcmp(s->params, "{}"), "params %s without params", s->params);
	}
	/* The seed reads back from the JSON form it is stored and sent in. */
	seed = seed_json(s->seed);
	FUZZ_CHECK(seed && !seed_parse(seed, &back) && back == s->seed,
		   "seed %llu does not read back", (unsigned long long)s->seed);
	json_decref(seed);
}

static enum tally_err decode(const json_t *body, void *out, struct decode_error *e)
{
	static char params[KERNEL_PARAMS_MAX]; /* which the spec's params point to */
	return decode_job_spec(body, FUZZ_DEFAULT_SEED, out, params, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_decoder d = { fields, 0, decode, check_spec, NULL };
	struct job_spec spec;
	return fuzz_run_body(data, size, &d, &spec);
}
