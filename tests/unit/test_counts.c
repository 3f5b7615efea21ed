/* Counts: the JSON codec and the matcher of named counts to a job's names, under a kernel with
 * fixed names (pi) and an open one (exec). Table-driven: each row is a counts object, the job's
 * names before, and the outcome: the values in the job's order and its names after, or the
 * exact message of the refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "counts.h"

struct row {
	const char *kernel;
	const char *keys;   /* the job's names, stored form ("a\nb"); NULL: the kernel's own */
	const char *counts; /* the object, as JSON */
	const char *error;  /* the whole message; NULL: accepted */
	const char *after;  /* accepted: the job's names after, stored form */
	uint64_t v[4];      /* accepted: the values in that order */
};

static const struct row rows[] = {
	/* pi: exactly inside and samples, wherever the job has them. */
	{ "pi", NULL, "{\"samples\": 2, \"inside\": 1}", NULL, "inside\nsamples", { 1, 2 } },
	{ "pi", "samples\ninside", "{\"inside\": 1, \"samples\": 2}", NULL, "samples\ninside",
	  { 2, 1 } },
	{ "pi", "samples", "{\"inside\": 1, \"samples\": 2}", NULL, "samples\ninside", { 2, 1 } },
	{ "pi", "x\nsamples", "{\"inside\": 1, \"samples\": 2}", NULL, "x\nsamples\ninside",
	  { 0, 2, 1 } },
	{ "pi", NULL, "{\"inside\": 1}", "counts.samples: missing", NULL, { 0 } },
	{ "pi", NULL, "{}", "counts.inside: missing", NULL, { 0 } },
	{ "pi", NULL, "{\"inside\": 1, \"samples\": 2, \"x\": 3}", "counts.x: not a count of this job", NULL, { 0 } },
	{ "pi", NULL, "{\"Inside\": 1, \"samples\": 2}", "counts.Inside: not a count of this job", NULL, { 0 } },
	{ "pi", NULL, "{\"x\": -1, \"inside\": 1}", "counts.x: not a count of this job", NULL, { 0 } },
	{ "pi", NULL, "{\"inside\": -1, \"samples\": 2}",
	  "counts.inside: must be a non-negative integer", NULL, { 0 } },
	{ "pi", NULL, "{\"inside\": 1.5, \"samples\": 2}",
	  "counts.inside: must be a non-negative integer", NULL, { 0 } },
	{ "pi", NULL, "{\"inside\": \"1\", \"samples\": 2}",
	  "counts.inside: must be a non-negative integer", NULL, { 0 } },
	{ "pi", NULL, "{\"samples\": 2, \"inside\": null}",
	  "counts.inside: must be a non-negative integer", NULL, { 0 } },
	{ "pi", NULL, "{\"inside\": 1, \"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		      "\": 1}",
	  "counts.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: not a count of "
	  "this job", NULL, { 0 } },
	{ "pi", "a\nb\nc\nd\ne\nf\ng\nh", "{\"inside\": 1, \"samples\": 2}",
	  "counts.inside: the job has no room for it", NULL, { 0 } },
	/* exec: open names, learnt in the order they come. */
	{ "exec", NULL, "{\"b\": 2, \"a\": 1}", NULL, "b\na", { 2, 1 } },
	{ "exec", "a\nz", "{\"b\": 2, \"a\": 1}", NULL, "a\nz\nb", { 1, 0, 2 } },
	{ "exec", NULL, "{\"a\": 1, \"B\": 2}",
	  "counts.B: a count name is 1 to 31 of [a-z0-9_], not starting with a digit", NULL, { 0 } },
	{ "exec", NULL, "{\"9a\": 1}",
	  "counts.9a: a count name is 1 to 31 of [a-z0-9_], not starting with a digit", NULL, { 0 } },
	{ "exec", NULL, "{\"a\": -1}", "counts.a: must be a non-negative integer", NULL, { 0 } },
	{ "exec", "a\nb\nc\nd\ne\nf\ng\nh", "{\"i\": 1}", "counts.i: a job has at most 8 count names", NULL, { 0 } },
	{ "exec", "a\nb\nc\nd\ne\nf\ng\nh", "{\"i\": -1}", "counts.i: a job has at most 8 count names", NULL, { 0 } },
	{ "exec", "a\nb\nc\nd\ne\nf\ng\nh", "{\"a\": -1}", "counts.a: must be a non-negative integer", NULL, { 0 } },
	{ "exec", NULL, "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1}",
	  "counts.i: a job has at most 8 count names", NULL, { 0 } },
	{ "exec", NULL, "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"I\":1}",
	  "counts.I: a count name is 1 to 31 of [a-z0-9_], not starting with a digit", NULL, { 0 } },
	/* Nine names for pi: the first that is not pi's says so. */
	{ "pi", NULL, "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1}",
	  "counts.a: not a count of this job", NULL, { 0 } },
};

static void test_match_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		const struct kernel *k = kernel_find(r->kernel);
		struct count_keys keys, after;
		struct counts in;
		uint64_t out[KERNEL_MAX_KEYS];
		char err[256] = "", names[KERNEL_MAX_KEYS * KERNEL_KEY_MAX];
		json_t *o = json_loads(r->counts, JSON_REJECT_DUPLICATES, NULL);
		enum tally_err rc;

		assert_non_null(k);
		if (!o)
			fail_msg("row %zu: not JSON", i);
		assert_int_equal(counts_decode(o, &in), TALLY_OK);
		json_decref(o);
		if (r->keys)
			assert_int_equal(kernel_keys_parse(r->keys, &keys), 0);
		else
			kernel_keys(k, &keys);
		rc = counts_match(&in, k, &keys, out, err, sizeof err);
		if (r->error) {
			if (rc != TALLY_ECOUNTS || strcmp(err, r->error))
				fail_msg("row %zu (%s): rc %d, '%s'", i, r->counts, (int)rc, err);
			continue;
		}
		if (rc)
			fail_msg("row %zu (%s) refused: %s", i, r->counts, err);
		kernel_keys_format(&keys, names, sizeof names);
		assert_string_equal(names, r->after);
		assert_int_equal(kernel_keys_parse(r->after, &after), 0);
		for (size_t j = 0; j < after.n; j++)
			assert_int_equal(out[j], r->v[j]);
	}
}

/* Without a job's names: a fixed kernel's own order; an open kernel's counts as they came. */
static void test_match_without_job_names(void **state)
{
	struct counts in;
	uint64_t out[KERNEL_MAX_KEYS];
	char err[128];
	json_t *o = json_loads("{\"samples\": 7, \"inside\": 3}", 0, NULL);
	(void)state;

	assert_int_equal(counts_decode(o, &in), TALLY_OK);
	assert_int_equal(counts_match(&in, kernel_find("pi"), NULL, out, err, sizeof err), TALLY_OK);
	assert_int_equal(out[0], 3);
	assert_int_equal(out[1], 7);
	assert_int_equal(counts_match(&in, kernel_find("exec"), NULL, out, err, sizeof err),
			 TALLY_OK);
	assert_int_equal(out[0], 7);
	assert_int_equal(out[1], 3);
	json_decref(o);
}

/* JSON out and back: the same names and values, in order; not an object is refused. */
static void test_codec_round_trip(void **state)
{
	struct count_keys keys;
	uint64_t v[KERNEL_MAX_KEYS] = { 5, 0, (uint64_t)INT64_MAX };
	struct counts back;
	json_t *o, *arr = json_array();
	(void)state;

	assert_int_equal(kernel_keys_parse("zeta\nalpha\nmid", &keys), 0);
	o = counts_encode(&keys, v);
	assert_non_null(o);
	assert_int_equal(counts_decode(o, &back), TALLY_OK);
	assert_int_equal(back.fault, COUNTS_FAULT_NONE);
	assert_int_equal(back.keys.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(back.keys.name[i], keys.name[i]);
		assert_true(back.v[i] == v[i]);
	}
	json_decref(o);
	assert_int_equal(counts_decode(arr, &back), TALLY_EINVAL);
	json_decref(arr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_match_without_job_names),
		cmocka_unit_test(test_codec_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
