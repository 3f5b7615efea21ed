/* Kernel exec's environment: the batch's TALLY_* variables always the batch's own, --exec-env
 * refusing TALLY_* names, and passed variables reaching the program whole. Runs a small shell
 * script per batch (fast: no server, no worker). */
#define _GNU_SOURCE /* mkdtemp(), setenv() */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "exec.h"

/* What the script prints: its TALLY_BATCH, how many TALLY_BATCH entries its environment has,
 * and the length of PASSED. */
static const char script[] =
	"#!/bin/sh\n"
	"n=$(env | grep -c '^TALLY_BATCH=')\n"
	"echo \"{\\\"batch\\\": $TALLY_BATCH, \\\"entries\\\": $n, \\\"passed\\\": ${#PASSED}}\"\n";

struct fixture {
	char dir[64];
	char prog[128];
	char params[256];
};

static int setup(void **state)
{
	static struct fixture f;
	FILE *out;

	snprintf(f.dir, sizeof f.dir, "/tmp/tally-exec-XXXXXX");
	if (!mkdtemp(f.dir))
		return -1;
	snprintf(f.prog, sizeof f.prog, "%s/prog", f.dir);
	snprintf(f.params, sizeof f.params, "{\"argv\": [\"%s\"]}", f.prog);
	if (!(out = fopen(f.prog, "w")))
		return -1;
	fputs(script, out);
	fclose(out);
	chmod(f.prog, 0700);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->prog);
	rmdir(f->dir);
	unsetenv("TALLY_BATCH");
	unsetenv("PASSED");
	return 0;
}

/* Runs batch 3 of job 7 through the policy p; returns counts by name in out (batch, entries,
 * passed). */
static void run(const struct fixture *f, struct exec_policy *p, uint64_t out[3])
{
	struct exec_job j;
	struct count_keys keys = { 0 };
	uint64_t counts[KERNEL_MAX_KEYS] = { 0 };
	char err[512];
	int stop = 0;

	assert_int_equal(exec_policy_allow(p, f->dir, err, sizeof err), 0);
	if (exec_job_open(&j, p, f->params, "7", err, sizeof err))
		fail_msg("exec_job_open: %s", err);
	if (exec_batch(&j, 1, 3, 12, 4, &stop, &keys, counts, err, sizeof err))
		fail_msg("exec_batch: %s", err);
	assert_int_equal(keys.n, 3);
	for (size_t i = 0; i < 3; i++) {
		static const char *const names[] = { "batch", "entries", "passed" };
		assert_string_equal(keys.name[i], names[i]);
		out[i] = counts[i];
	}
}

static void test_refuses_tally_names(void **state)
{
	static const char *const refused[] = { "TALLY_BATCH", "PATH:TALLY_SEED", "TALLY_",
					       "HOME:TALLY_WORKER_TOKEN:LANG" };
	struct exec_policy p = { 0 };
	char err[256];
	(void)state;

	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		err[0] = '\0';
		assert_int_equal(exec_policy_env(&p, refused[i], err, sizeof err), -1);
		assert_non_null(strstr(err, "--exec-env"));
		assert_non_null(strstr(err, "TALLY_"));
		assert_non_null(strstr(err, "the batch's own"));
		exec_policy_free(&p);
	}
	assert_int_equal(exec_policy_env(&p, "TALLY:MY_TALLY_X:tally_batch", err, sizeof err), 0);
	exec_policy_free(&p);
}

/* Defence in depth: a TALLY_* name in the policy, however it got there, does not reach the
 * program; its TALLY_BATCH is the batch's, once. */
static void test_batch_variables_are_the_batch_s(void **state)
{
	struct fixture *f = *state;
	struct exec_policy p = { 0 };
	uint64_t got[3];

	setenv("TALLY_BATCH", "1000", 1);
	p.env[p.nenv++] = strdup("TALLY_BATCH=1000");
	run(f, &p, got);
	assert_int_equal(got[0], 3);
	assert_int_equal(got[1], 1);
	exec_policy_free(&p);
}

/* A passed variable reaches the program whole, however long; one too long for exec is refused
 * at start. */
static void test_passed_variables_whole(void **state)
{
	struct fixture *f = *state;
	struct exec_policy p = { 0 };
	char *big = malloc(EXEC_ENV_VALUE_MAX + 2);
	uint64_t got[3];
	char err[256];

	assert_non_null(big);
	memset(big, 'x', 5000);
	big[5000] = '\0';
	setenv("PASSED", big, 1);
	assert_int_equal(exec_policy_env(&p, "PASSED", err, sizeof err), 0);
	run(f, &p, got);
	assert_int_equal(got[2], 5000);
	exec_policy_free(&p);

	memset(big, 'x', EXEC_ENV_VALUE_MAX + 1);
	big[EXEC_ENV_VALUE_MAX + 1] = '\0';
	setenv("PASSED", big, 1);
	assert_int_equal(exec_policy_env(&p, "PASSED", err, sizeof err), -1);
	assert_non_null(strstr(err, "PASSED"));
	exec_policy_free(&p);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuses_tally_names),
		cmocka_unit_test_setup_teardown(test_batch_variables_are_the_batch_s, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passed_variables_whole, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
