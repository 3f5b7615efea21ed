/* The CLI's progress line and summary, from job JSON as the coordinator sends it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "progress.h"

static json_t *job(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	assert_non_null(j);
	return j;
}

/* Halfway: half the bar, the percentage, counts as typed, the rate, the time left from the rate,
 * and the estimate with its error. */
static void test_line_running(void **state)
{
	json_t *j = job("{\"id\":\"7\",\"state\":\"running\",\"samples\":10000000000,"
			"\"batches\":{\"total\":100000,\"done\":50000},\"progress\":0.5,"
			"\"rate\":2.5e9,\"result\":{\"pi\":3.14161804,\"stderr\":0.0000227}}");
	char line[512];
	(void)state;

	progress_line(j, 1, line, sizeof line);
	assert_string_equal(line, "[############            ]  50.0%  5e9/1e10 samples  2.5e9/s  "
				  "ETA 2s  pi = 3.141618 +- 2.3e-05");
	progress_line(j, 0, line, sizeof line);
	assert_string_equal(line, " 50.0%  5e9/1e10 samples  2.5e9/s  ETA 2s  "
				  "pi = 3.141618 +- 2.3e-05");
	assert_false(progress_final(j));
	json_decref(j);
}

/* Not started: no rate, no time left, no estimate; small counts in digits. */
static void test_line_queued(void **state)
{
	json_t *j = job("{\"state\":\"queued\",\"samples\":950,\"batches\":{\"total\":1,"
			"\"done\":0},\"progress\":0.0,\"rate\":0,\"result\":null}");
	char line[512];
	(void)state;

	progress_line(j, 0, line, sizeof line);
	assert_string_equal(line, "  0.0%  0/950 samples  0/s");
	json_decref(j);
}

/* The summary: state, share done, samples, time and rate, estimate, and a failure's error. */
static void test_summary(void **state)
{
	json_t *ok = job("{\"id\":\"3\",\"state\":\"succeeded\",\"samples\":1000000000,"
			 "\"progress\":1.0,\"elapsed_s\":0.5,\"rate\":2e9,"
			 "\"result\":{\"samples\":1000000000},\"error\":null}");
	json_t *bad = job("{\"id\":\"4\",\"state\":\"failed\",\"samples\":100,\"progress\":0.25,"
			  "\"elapsed_s\":null,\"rate\":0,\"result\":null,"
			  "\"error\":\"batch 2 failed 3 times; last failure: boom\"}");
	char line[512];
	(void)state;

	progress_summary(ok, line, sizeof line);
	assert_string_equal(line, "job 3: succeeded, 100.0% of 1e9 samples in 0.5 s (2e9 "
				  "samples/s); samples = 1000000000");
	assert_true(progress_final(ok));
	progress_summary(bad, line, sizeof line);
	assert_string_equal(line, "job 4: failed, 25.0% of 100 samples; error: batch 2 failed 3 "
				  "times; last failure: boom");
	assert_true(progress_final(bad));
	progress_summary(bad, line, 20); /* cut, never overrun */
	assert_int_equal(strlen(line), 19);
	json_decref(ok);
	json_decref(bad);

	/* Whose it is and its priority, when there is something to say. */
	static const struct {
		const char *fields, *head;
	} who[] = {
		{ "\"owner\":null,\"priority\":0", "job 5: queued" },
		{ "\"owner\":\"alice\",\"priority\":0", "job 5 (alice): queued" },
		{ "\"owner\":\"alice\",\"priority\":-7", "job 5 (alice, priority -7): queued" },
		{ "\"owner\":null,\"priority\":100", "job 5 (no owner, priority 100): queued" },
	};
	for (size_t k = 0; k < sizeof who / sizeof who[0]; k++) {
		char text[256];
		snprintf(text, sizeof text, "{\"id\":\"5\",\"state\":\"queued\",\"samples\":10,"
			 "\"progress\":0,\"elapsed_s\":null,%s}", who[k].fields);
		ok = job(text);
		progress_summary(ok, line, sizeof line);
		if (strncmp(line, who[k].head, strlen(who[k].head)))
			fail_msg("'%s' does not start with '%s'", line, who[k].head);
		json_decref(ok);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_running),
		cmocka_unit_test(test_line_queued),
		cmocka_unit_test(test_summary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
