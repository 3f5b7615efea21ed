/* Resident programs (worker/resident.c), with real /bin/sh programs and no server: the batch line
 * as written, one program per job and thread kept across batches, its environment, each way a
 * program fails (then restarted), the stop flag, a job's end, the idle limit on an injected
 * clock, and the least recently used job's program giving way. */
#define _GNU_SOURCE /* mkdtemp() */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "resident.h"
#include "timefmt.h"

/* Logs each line it is sent to $LOG; answers n, TALLY_RESIDENT and the length of TALLY_SEED
 * (absent: 0). Batch 2 exits 3 after a word on stderr; 3 prints a line that is not JSON; 4
 * sleeps past any timeout; 5 prints 70,000 bytes without a newline; 6 a negative count. */
static const char script[] =
	"#!/bin/sh\n"
	"while read -r line; do\n"
	"  echo \"$line\" >> \"$LOG\"\n"
	"  case \"$line\" in\n"
	"  *'\"batch\":2,'*) echo 'dying now' >&2; exit 3;;\n"
	"  *'\"batch\":3,'*) echo hello;;\n"
	"  *'\"batch\":4,'*) sleep 30;;\n"
	"  *'\"batch\":5,'*) head -c 70000 /dev/zero | tr '\\0' a;;\n"
	"  *'\"batch\":6,'*) echo '{\"n\": -1}';;\n"
	"  *) echo \"{\\\"n\\\": 1, \\\"r\\\": $TALLY_RESIDENT, \\\"s\\\": ${#TALLY_SEED}}\";;\n"
	"  esac\n"
	"done\n";

struct fixture {
	char dir[64], prog[128], log[128], params[320];
	struct exec_policy policy;
	struct exec_job job;
	struct resident *r;
	struct count_keys keys;
	uint64_t counts[KERNEL_MAX_KEYS];
	int stop;
	char err[512];
};

static int setup(void **state)
{
	static struct fixture f;
	char err[256];
	FILE *out;

	memset(&f, 0, sizeof f);
	snprintf(f.dir, sizeof f.dir, "/tmp/tally-resident-XXXXXX");
	if (!mkdtemp(f.dir))
		return -1;
	snprintf(f.prog, sizeof f.prog, "%s/prog", f.dir);
	snprintf(f.log, sizeof f.log, "%s/log", f.dir);
	snprintf(f.params, sizeof f.params,
		 "{\"argv\": [\"%s\"], \"resident\": true, \"timeout_s\": 30}", f.prog);
	if (!(out = fopen(f.prog, "w")))
		return -1;
	fputs(script, out);
	fclose(out);
	chmod(f.prog, 0700);
	setenv("LOG", f.log, 1);
	if (exec_policy_allow(&f.policy, f.dir, err, sizeof err) ||
	    exec_policy_env(&f.policy, "LOG", err, sizeof err) ||
	    exec_job_open(&f.job, &f.policy, f.params, "7", err, sizeof err) ||
	    !f.job.spec.resident || !(f.r = resident_new(2, 30, 0)))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	resident_free(f->r);
	exec_policy_free(&f->policy);
	unlink(f->prog);
	unlink(f->log);
	rmdir(f->dir);
	return 0;
}

/* Runs batch b of f's job (or of job) on slot. */
static int run(struct fixture *f, int slot, const char *job, uint64_t seed, uint64_t b)
{
	struct exec_job j = f->job;
	snprintf(j.job_id, sizeof j.job_id, "%s", job);
	return resident_batch(f->r, slot, &j, seed, b, b * 10, 10, &f->stop, &f->keys, f->counts,
			      f->err, sizeof f->err);
}

static uint64_t count(const struct fixture *f, const char *name)
{
	for (size_t i = 0; i < f->keys.n; i++)
		if (!strcmp(f->keys.name[i], name))
			return f->counts[i];
	return UINT64_MAX;
}

/* 1 when pid is gone (reaped by its parent: resident.c reaps what it stops). */
static int gone(pid_t pid)
{
	return kill(pid, 0) && errno == ESRCH;
}

static void test_lines_and_one_program(void **state)
{
	struct fixture *f = *state;
	char text[512];
	FILE *in;
	pid_t pid;

	unlink(f->log);
	assert_int_equal(run(f, 0, "7", 42, 0), 0);
	pid = resident_pid(f->r, 0, "7");
	assert_true(pid > 0);
	assert_int_equal(run(f, 0, "7", 42, 1), 0);
	assert_int_equal(run(f, 0, "7", UINT64_MAX, 9), 0);
	assert_int_equal(resident_pid(f->r, 0, "7"), pid); /* the same program throughout */
	assert_int_equal(count(f, "n"), 3);
	assert_int_equal(count(f, "r"), 3); /* TALLY_RESIDENT=1 in each */
	assert_int_equal(count(f, "s"), 0); /* no TALLY_SEED */
	assert_non_null(in = fopen(f->log, "r"));
	assert_non_null(fgets(text, sizeof text, in));
	assert_string_equal(text, "{\"job_id\":\"7\",\"seed\":42,\"batch\":0,\"first_sample\":0,"
				  "\"samples\":10}\n");
	assert_non_null(fgets(text, sizeof text, in));
	assert_non_null(fgets(text, sizeof text, in));
	assert_string_equal(text, "{\"job_id\":\"7\",\"seed\":\"18446744073709551615\",\"batch\":9,"
				  "\"first_sample\":90,\"samples\":10}\n");
	fclose(in);
	assert_int_equal(resident_end_job(f->r, "7"), 1);
	assert_int_equal(resident_pid(f->r, 0, "7"), 0);
	assert_true(gone(pid));
}

/* Each failure names itself, stops the program, and the next batch starts another. */
static void test_failures_restart(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint64_t batch;
		const char *why;
	} cases[] = {
		{ 2, "(resident) exited with status 3; stderr: dying now" },
		{ 3, "answered a line that is not a JSON object of counts" },
		{ 4, "timed out after 0.3s (its process group was killed)" },
		{ 5, "answered more than 65536 bytes without a newline" },
		{ 6, "answered counts.n" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pid_t pid;
		assert_int_equal(run(f, 1, "8", 1, 0), 0);
		pid = resident_pid(f->r, 1, "8");
		/* A short timeout for the batch that sleeps only: a loaded machine may take long to
		 * start a shell, and the others must not time out. */
		f->job.spec.timeout_s = cases[i].batch == 4 ? 0.3 : 30.0;
		assert_int_equal(run(f, 1, "8", 1, cases[i].batch), -1);
		f->job.spec.timeout_s = 30.0;
		if (!strstr(f->err, cases[i].why))
			fail_msg("batch %d: '%s' lacks '%s'", (int)cases[i].batch, f->err,
				 cases[i].why);
		assert_non_null(strstr(f->err, f->prog));
		assert_int_equal(resident_pid(f->r, 1, "8"), 0);
		assert_true(gone(pid));
	}
	assert_int_equal(run(f, 1, "8", 1, 0), 0);
	assert_true(resident_pid(f->r, 1, "8") > 0);
	resident_end_job(f->r, "8");
}

static void test_stop_flag(void **state)
{
	struct fixture *f = *state;
	f->stop = 1;
	assert_int_equal(run(f, 0, "9", 1, 4), -1); /* would sleep 30 s */
	assert_string_equal(f->err, "worker: stopped");
	assert_int_equal(resident_pid(f->r, 0, "9"), 0);
	f->stop = 0;
}

/* Programs stop after the idle limit, on the clock passed in. */
static void test_idle(void **state)
{
	struct fixture *f = *state;
	int64_t now;
	pid_t a, b;

	assert_int_equal(resident_reap(f->r, timefmt_mono_ms()), -1); /* none running */
	assert_int_equal(run(f, 0, "10", 1, 0), 0);
	assert_int_equal(run(f, 1, "11", 1, 0), 0);
	now = timefmt_mono_ms();
	a = resident_pid(f->r, 0, "10");
	b = resident_pid(f->r, 1, "11");
	int64_t left = resident_reap(f->r, now);
	assert_true(left > 29000 && left <= 30000);
	assert_true(resident_reap(f->r, now + 29000) > 0);
	assert_int_equal(resident_pid(f->r, 0, "10"), a);
	assert_int_equal(resident_reap(f->r, now + 31000), -1);
	assert_int_equal(resident_pid(f->r, 0, "10"), 0);
	assert_int_equal(resident_pid(f->r, 1, "11"), 0);
	assert_true(gone(a) && gone(b));
}

/* A thread keeps RESIDENT_JOBS_MAX jobs' programs; a new one stops the least recently used. */
static void test_least_recently_used(void **state)
{
	struct fixture *f = *state;
	char job[8];

	for (int i = 0; i < RESIDENT_JOBS_MAX; i++) {
		snprintf(job, sizeof job, "%d", 20 + i);
		assert_int_equal(run(f, 0, job, 1, 0), 0);
	}
	assert_int_equal(run(f, 0, "20", 1, 1), 0); /* 21 is now the least recently used */
	assert_int_equal(run(f, 0, "30", 1, 0), 0);
	assert_true(resident_pid(f->r, 0, "20") > 0);
	assert_int_equal(resident_pid(f->r, 0, "21"), 0);
	assert_true(resident_pid(f->r, 0, "30") > 0);
	for (int i = 0; i < RESIDENT_JOBS_MAX; i++) {
		snprintf(job, sizeof job, "%d", 20 + i);
		resident_end_job(f->r, job);
	}
	assert_int_equal(resident_end_job(f->r, "30"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_and_one_program),
		cmocka_unit_test(test_failures_restart),
		cmocka_unit_test(test_stop_flag),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_least_recently_used),
	};
	signal(SIGPIPE, SIG_IGN); /* as the worker does */
	return cmocka_run_group_tests(tests, setup, teardown);
}
