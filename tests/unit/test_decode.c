/* Request decoding: every field of every body, ids and query numbers. Table-driven: each row is
 * a body, the expected outcome, and for refusals the error code and a word the message must
 * contain (the field it names). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "decode.h"

struct row {
	const char *body;
	const char *code;   /* NULL: accepted */
	const char *needle; /* in the message */
};

static json_t *parse(const char *text, struct decode_error *e)
{
	return decode_json(text, strlen(text), e);
}

/* Decodes each row's body with decode() and checks the outcome the row expects. */
static void check_rows(const struct row *rows, size_t n,
		       enum tally_err (*decode)(const json_t *body, struct decode_error *e))
{
	for (size_t i = 0; i < n; i++) {
		struct decode_error e = { 0 };
		json_t *body = parse(rows[i].body, &e);
		enum tally_err rc = body ? decode(body, &e) : TALLY_EINVAL;
		json_decref(body);
		if (!rows[i].code) {
			if (rc)
				fail_msg("row %zu (%s) refused: %s", i, rows[i].body, e.message);
			continue;
		}
		if (rc != TALLY_EINVAL)
			fail_msg("row %zu (%s) accepted", i, rows[i].body);
		if (strcmp(e.code, rows[i].code) || !strstr(e.message, rows[i].needle))
			fail_msg("row %zu (%s): got %s '%s'", i, rows[i].body, e.code, e.message);
	}
}

static enum tally_err decode_spec_row(const json_t *body, struct decode_error *e)
{
	struct job_spec spec;
	char params[KERNEL_PARAMS_MAX];
	return decode_job_spec(body, 777, &spec, params, e);
}

static enum tally_err decode_lease_row(const json_t *body, struct decode_error *e)
{
	struct lease_request req;
	return decode_lease_request(body, &req, e);
}

static void test_json_layer(void **state)
{
	struct decode_error e;
	(void)state;
	assert_null(decode_json("", 0, &e));
	assert_string_equal(e.code, "invalid_json");
	assert_null(parse("{\"a\":1,\"a\":2}", &e));
	assert_string_equal(e.code, "invalid_json");
	assert_null(parse("{\"a\":\"\xff\"}", &e));
	assert_string_equal(e.code, "invalid_json");
	assert_null(parse("{\"a\":1} x", &e));
	assert_null(parse("{\"a\":NaN}", &e));
	assert_null(parse("{\"a\":Infinity}", &e));
	assert_null(parse("{\"seed\":18446744073709551616}", &e));
	assert_string_equal(e.code, "invalid_field");
	assert_non_null(strstr(e.message, "decimal string"));
	assert_non_null(strstr(e.message, "seed:"));
	assert_null(parse("{\"kernel\":\"pi\", \"samples\" : -9223372036854775809}", &e));
	assert_true(!strncmp(e.message, "samples:", 8));
	assert_null(parse("{\"samples\":1e400}", &e));
	assert_true(!strncmp(e.message, "samples:", 8));
	assert_null(parse("[99999999999999999999]", &e));
	assert_true(!strncmp(e.message, "body:", 5));
	/* Deep nesting is refused by the parser, not by the stack. */
	char deep[20001];
	memset(deep, '[', 10000);
	memset(deep + 10000, ']', 10000);
	deep[20000] = '\0';
	assert_null(parse(deep, &e));
	json_t *ok = parse("{\"a\":[1,2]}", &e);
	assert_non_null(ok);
	json_decref(ok);
}

static void test_job_spec_table(void **state)
{
	static const struct row rows[] = {
		{ "{\"kernel\":\"pi\",\"samples\":100}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":1e10,\"batch_size\":1e5,\"seed\":42}", NULL, NULL },
		{ "{\"kernel\":\"count\",\"samples\":4611686018427387904}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"params\":{}}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"params\":null}", NULL, NULL },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"x\"],\"resident\":true}}", NULL, NULL },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"x\"],\"resident\":false}}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":\"18446744073709551615\"}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":9223372036854775807}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":0}", NULL, NULL },
		{ "[]", "invalid_json", "object" },
		{ "42", "invalid_json", "object" },
		{ "{}", "missing_field", "kernel" },
		{ "{\"kernel\":\"pi\"}", "missing_field", "samples" },
		{ "{\"kernel\":\"pi\",\"sample\":10}", "unknown_field", "sample" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"batchsize\":5}", "unknown_field", "batchsize" },
		{ "{\"kernel\":\"Tau\",\"samples\":10}", "invalid_field", "kernel" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"params\":{\"x\":1}}", "unknown_field", "params.x" },
		{ "{\"kernel\":\"exec\",\"samples\":10}", "invalid_field", "params.argv" },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[]}}", "invalid_field", "params.argv" },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"\"]}}", "invalid_field", "params.argv[0]" },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"x\",1]}}", "invalid_field", "params.argv[1]" },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"x\"],\"timeout_s\":0}}", "invalid_field", "params.timeout_s" },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"x\"],\"shell\":true}}", "unknown_field", "params.shell" },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"x\"],\"resident\":1}}", "invalid_field", "params.resident" },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"x\"],\"resident\":\"yes\"}}", "invalid_field", "params.resident" },
		{ "{\"kernel\":7,\"samples\":10}", "invalid_field", "kernel" },
		{ "{\"kernel\":null,\"samples\":10}", "invalid_field", "kernel" },
		{ "{\"kernel\":\"pi\",\"samples\":0}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":-1}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":-0.0}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":1.5}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":\"10\"}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":true}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":4611686018427387905}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":9223372036854775807}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":1e19}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":1e400}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\\u0000x\",\"samples\":10}", "invalid_field", "kernel" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":\"1\\u0000junk\"}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"batch_size\":0}", "invalid_field", "batch_size" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"batch_size\":11}", "invalid_field", "batch_size" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"batch_size\":2.5}", "invalid_field", "batch_size" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":-1}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":9.223372036854775808e18}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":4.611686018427387904e18}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":4.62e18,\"batch_size\":1}", "invalid_field", "samples" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":-0.0}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":1e-400}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":0.0}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":0.5}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":\"18446744073709551616\"}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":\"-1\"}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":\"\"}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":\"0x10\"}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"seed\":[1]}", "invalid_field", "seed" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"params\":[]}", "invalid_field", "params" },
		/* NUL in a params string: refused, never stored as other params (JSON text with
		 * \u0000 does not load back) */
		{ "{\"kernel\":\"no-such-plugin\",\"samples\":10,\"params\":{\"note\":\"a\\u0000b\"}}", "invalid_field", "params.note" },
		{ "{\"kernel\":\"no-such-plugin\",\"samples\":10,\"params\":{\"a\":[1,{\"b\":\"x\\u0000\"}]}}", "invalid_field", "params.a[1].b" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"params\":{\"r\":1}}", "unknown_field", "params.r" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":0}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":100}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":-100}", NULL, NULL },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":101}", "invalid_field", "priority: must be an integer from -100 to 100" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":-101}", "invalid_field", "priority" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":9223372036854775807}", "invalid_field", "priority" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":1.5}", "invalid_field", "priority" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":5.0}", "invalid_field", "priority" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":\"5\"}", "invalid_field", "priority" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":null}", "invalid_field", "priority" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"priority\":true}", "invalid_field", "priority" },
		{ "{\"kernel\":\"pi\",\"samples\":10,\"owner\":\"alice\"}", "unknown_field", "owner" },
		/* target_stderr: only for a kernel whose result has a stderr here. */
		{ "{\"kernel\":\"pi\",\"samples\":10,\"target_stderr\":0.01}", NULL, NULL },
		{ "{\"kernel\":\"count\",\"samples\":10,\"target_stderr\":0.01}", "invalid_field", "target_stderr" },
		{ "{\"kernel\":\"exec\",\"samples\":10,\"params\":{\"argv\":[\"x\"]},\"target_stderr\":0.01}", "invalid_field", "target_stderr" },
		{ "{\"kernel\":\"elsewhere\",\"samples\":10,\"target_stderr\":0.01}", "invalid_field", "target_stderr" },
	};
	(void)state;
	check_rows(rows, sizeof rows / sizeof rows[0], decode_spec_row);
}

static void test_job_spec_values(void **state)
{
	struct decode_error e;
	struct job_spec spec;
	char params[KERNEL_PARAMS_MAX];
	json_t *body;
	(void)state;

	body = parse("{\"kernel\":\"pi\",\"samples\":1e10}", &e);
	assert_int_equal(decode_job_spec(body, 777, &spec, params, &e), TALLY_OK);
	json_decref(body);
	assert_string_equal(spec.kernel->name, "pi");
	assert_int_equal(spec.samples, 10000000000ULL);
	assert_int_equal(spec.batch_size, 100000);
	assert_int_equal(spec.seed, 777);
	assert_int_equal(spec.priority, 0);
	assert_string_equal(spec.owner, "");

	body = parse("{\"kernel\":\"pi\",\"samples\":10,\"priority\":-42}", &e);
	assert_int_equal(decode_job_spec(body, 777, &spec, params, &e), TALLY_OK);
	json_decref(body);
	assert_int_equal(spec.priority, -42);

	body = parse("{\"kernel\":\"pi\",\"samples\":50,\"seed\":\"18446744073709551615\"}", &e);
	assert_int_equal(decode_job_spec(body, 777, &spec, params, &e), TALLY_OK);
	json_decref(body);
	assert_int_equal(spec.batch_size, 50); /* the default, clamped to samples */
	assert_true(spec.seed == UINT64_MAX);

	/* A kernel with no code here: the decoder leaves the name for coord_submit() to make a
	 * kernel of, and makes none itself. */
	body = parse("{\"kernel\":\"no-such-plugin\",\"samples\":5,\"params\":{\"a\":1}}", &e);
	assert_int_equal(decode_job_spec(body, 777, &spec, params, &e), TALLY_OK);
	json_decref(body);
	assert_ptr_equal(spec.kernel, kernel_placeholder());
	assert_string_equal(spec.kernel_name, "no-such-plugin");
	assert_string_equal(spec.params, "{\"a\":1}");
	assert_null(kernel_find("no-such-plugin"));
}

static void test_lease_request_table(void **state)
{
	static const struct row rows[] = {
		{ "{\"worker\":\"w1\",\"kernels\":[\"pi\"]}", NULL, NULL },
		{ "{\"worker\":\"node-1.a:b@c_d\",\"kernels\":[\"pi\",\"count\"],\"wait_s\":60,"
		  "\"max_batches\":1}", NULL, NULL },
		{ "{\"kernels\":[\"pi\"]}", "missing_field", "worker" },
		{ "{\"worker\":\"w\"}", "missing_field", "kernels" },
		{ "{\"worker\":\"\",\"kernels\":[\"pi\"]}", "invalid_field", "worker" },
		{ "{\"worker\":\"a b\",\"kernels\":[\"pi\"]}", "invalid_field", "worker" },
		{ "{\"worker\":\"a\\u0000b\",\"kernels\":[\"pi\"]}", "invalid_field", "worker" },
		{ "{\"worker\":\"w\",\"kernels\":[\"pi\\u0000x\"]}", "invalid_field", "kernels[0]" },
		{ "{\"worker\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		  "\"kernels\":[\"pi\"]}", "invalid_field", "worker" },
		{ "{\"worker\":5,\"kernels\":[\"pi\"]}", "invalid_field", "worker" },
		{ "{\"worker\":\"w\",\"kernels\":[]}", "invalid_field", "kernels" },
		{ "{\"worker\":\"w\",\"kernels\":\"pi\"}", "invalid_field", "kernels" },
		{ "{\"worker\":\"w\",\"kernels\":[1]}", "invalid_field", "kernels[0]" },
		{ "{\"worker\":\"w\",\"kernels\":[\"pi\",\"\"]}", "invalid_field", "kernels[1]" },
		{ "{\"worker\":\"w\",\"kernels\":[\"pi\"],\"wait_s\":61}", "invalid_field", "wait_s" },
		{ "{\"worker\":\"w\",\"kernels\":[\"pi\"],\"wait_s\":-1}", "invalid_field", "wait_s" },
		{ "{\"worker\":\"w\",\"kernels\":[\"pi\"],\"wait_s\":\"5\"}", "invalid_field", "wait_s" },
		{ "{\"worker\":\"w\",\"kernels\":[\"pi\"],\"max_batches\":-2}", "invalid_field", "max_batches" },
		{ "{\"worker\":\"w\",\"kernels\":[\"pi\"],\"wait\":5}", "unknown_field", "wait" },
	};
	(void)state;
	check_rows(rows, sizeof rows / sizeof rows[0], decode_lease_row);
}

static void test_complete_fail_empty(void **state)
{
	struct decode_error e;
	struct counts counts;
	char reason[DECODE_REASON_MAX];
	int fault, cannot_run;
	json_t *b;
	(void)state;

	b = parse("{\"counts\":{\"samples\":1}}", &e);
	assert_int_equal(decode_complete(b, &counts, &e), TALLY_OK);
	assert_int_equal(counts.keys.n, 1);
	assert_string_equal(counts.keys.name[0], "samples");
	assert_int_equal(counts.v[0], 1);
	assert_int_equal(counts.fault, COUNTS_FAULT_NONE);
	json_decref(b);
	/* Counts no lease can take are the coordinator's to refuse (422, after the lease's state):
	 * the decoder keeps the first member it could not hold. */
	b = parse("{\"counts\":{\"samples\":1,\"Inside\":2}}", &e);
	assert_int_equal(decode_complete(b, &counts, &e), TALLY_OK);
	assert_int_equal(counts.fault, COUNTS_FAULT_NAME);
	assert_string_equal(counts.fault_name, "Inside");
	json_decref(b);
	b = parse("{\"counts\":{\"samples\":-1}}", &e);
	assert_int_equal(decode_complete(b, &counts, &e), TALLY_OK);
	assert_int_equal(counts.fault, COUNTS_FAULT_VALUE);
	json_decref(b);
	b = parse("{\"count\":{}}", &e);
	assert_int_equal(decode_complete(b, &counts, &e), TALLY_EINVAL);
	assert_string_equal(e.code, "unknown_field");
	json_decref(b);
	b = parse("{\"counts\":[1]}", &e);
	assert_int_equal(decode_complete(b, &counts, &e), TALLY_EINVAL);
	assert_non_null(strstr(e.message, "counts"));
	json_decref(b);
	b = parse("{}", &e);
	assert_int_equal(decode_complete(b, &counts, &e), TALLY_EINVAL);
	assert_string_equal(e.code, "missing_field");
	json_decref(b);

	fault = -1;
	assert_int_equal(decode_fail(NULL, reason, &fault, &cannot_run, &e), TALLY_OK);
	assert_string_equal(reason, "");
	assert_int_equal(fault, 1); /* the batches are to blame unless the worker says not */
	b = parse("{\"error\":\"disk on fire\"}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_OK);
	assert_string_equal(reason, "disk on fire");
	assert_int_equal(fault, 1);
	json_decref(b);
	b = parse("{\"error\":\"stopping\",\"fault\":false}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_OK);
	assert_int_equal(fault, 0);
	json_decref(b);
	b = parse("{\"fault\":1}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_EINVAL);
	assert_non_null(strstr(e.message, "fault"));
	json_decref(b);
	b = parse("{\"error\":5}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_EINVAL);
	json_decref(b);
	/* A job its worker cannot run: no fault unless said, and never said with it. */
	b = parse("{\"error\":\"not allowed\",\"cannot_run\":true}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_OK);
	assert_int_equal(cannot_run, 1);
	assert_int_equal(fault, 0);
	json_decref(b);
	b = parse("{\"cannot_run\":true,\"fault\":false}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_OK);
	assert_int_equal(cannot_run, 1);
	assert_int_equal(fault, 0);
	json_decref(b);
	b = parse("{\"cannot_run\":true,\"fault\":true}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_EINVAL);
	assert_non_null(strstr(e.message, "cannot_run"));
	json_decref(b);
	b = parse("{\"cannot_run\":\"yes\"}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_EINVAL);
	assert_non_null(strstr(e.message, "cannot_run"));
	json_decref(b);
	b = parse("{\"cannot_run\":false}", &e);
	assert_int_equal(decode_fail(b, reason, &fault, &cannot_run, &e), TALLY_OK);
	assert_int_equal(cannot_run, 0);
	assert_int_equal(fault, 1);
	json_decref(b);

	assert_int_equal(decode_empty(NULL, &e), TALLY_OK);
	b = parse("{}", &e);
	assert_int_equal(decode_empty(b, &e), TALLY_OK);
	json_decref(b);
	b = parse("{\"x\":1}", &e);
	assert_int_equal(decode_empty(b, &e), TALLY_EINVAL);
	assert_non_null(strstr(e.message, "x"));
	json_decref(b);
}

static void test_ids_and_numbers(void **state)
{
	int64_t id;
	uint64_t n;
	(void)state;
	assert_int_equal(decode_id("1", &id), 0);
	assert_int_equal(id, 1);
	assert_int_equal(decode_id("9223372036854775807", &id), 0);
	assert_int_equal(id, INT64_MAX);
	const char *bad[] = { "", "0", "01", "-1", "+1", "1a", "9223372036854775808",
			      "99999999999999999999999", " 1", "1.0" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!decode_id(bad[i], &id))
			fail_msg("id '%s' accepted", bad[i]);
	assert_int_equal(num_parse_u64("18446744073709551615", 0, UINT64_MAX, &n), 0);
	assert_true(n == UINT64_MAX);
	assert_int_equal(num_parse_u64("18446744073709551616", 0, UINT64_MAX, &n), -1);
	assert_int_equal(num_parse_u64("1001", 1, 1000, &n), -1);
	assert_int_equal(num_parse_u64("0", 1, 1000, &n), -1);
}

static void test_lease_refs(void **state)
{
	int64_t id;
	uint64_t tag;
	const char *bad[] = { "", "17", "17-", "-0123456789abcdef", "017-0123456789abcdef",
			      "0-0123456789abcdef", "17-0123456789ABCDEF", "17-0123456789abcde",
			      "17-0123456789abcdef0", "17--123456789abcdef", "17-0x23456789abcdef",
			      "17-0123456789abcdeg", "17_0123456789abcdef", "17-0123456789abcdef ",
			      "9223372036854775808-0123456789abcdef", "17-0123456789abc-ef" };
	(void)state;
	assert_int_equal(decode_lease_ref("17-0123456789abcdef", &id, &tag), 0);
	assert_int_equal(id, 17);
	assert_true(tag == 0x0123456789abcdefULL);
	assert_int_equal(decode_lease_ref("9223372036854775807-ffffffffffffffff", &id, &tag), 0);
	assert_true(id == INT64_MAX && tag == UINT64_MAX);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!decode_lease_ref(bad[i], &id, &tag))
			fail_msg("lease id '%s' accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_layer),
		cmocka_unit_test(test_job_spec_table),
		cmocka_unit_test(test_job_spec_values),
		cmocka_unit_test(test_lease_request_table),
		cmocka_unit_test(test_complete_fail_empty),
		cmocka_unit_test(test_ids_and_numbers),
		cmocka_unit_test(test_lease_refs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
