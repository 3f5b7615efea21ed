/* Fair share: priorities first; equal shares of leases for two and three owners and for one
 * owner's several jobs; no credit for an owner back from idling; jobs finishing; ineligible top
 * jobs passed over (and the little credit that leaves); a fleet where only some workers can run
 * a job; out of memory; and the cost per lease with 100,000 jobs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "alloc.h"
#include "fair.h"

#define MAXJ 8

/* A job as the tests see it: its member, who it is, what it needs, the leases it got. */
struct tjob {
	struct fair_member m; /* first: a member is its job */
	const char *owner;
	int priority;
	unsigned kernel; /* a bit; a worker runs the jobs whose bit its mask has */
	unsigned leases;
};

static int runs(void *ctx, struct fair_member *m)
{
	const unsigned *mask = ctx;
	return (((struct tjob *)m)->kernel & *mask) != 0;
}

static void add(struct fair *f, struct tjob *j, int64_t id)
{
	if (!j->kernel)
		j->kernel = 1;
	assert_int_equal(fair_add(f, &j->m, id, j->priority, j->owner), TALLY_OK);
	fair_set_ready(f, &j->m, 1);
}

/* n leases to a worker running mask; each must find a job. */
static void lease(struct fair *f, unsigned mask, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct tjob *j = (struct tjob *)fair_pick(f, runs, &mask);
		assert_non_null(j);
		assert_true(fair_is_ready(&j->m));
		j->leases++;
		fair_charge(f, &j->m);
	}
}

static void forget(struct tjob *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		jobs[i].leases = 0;
}

/* Every job stays ready; leases are handed out and each job's count is compared. */
static void test_shares(void **state)
{
	static const struct {
		const char *name;
		struct {
			const char *owner;
			int priority;
		} jobs[MAXJ];
		size_t n;
		unsigned leases;
		unsigned want[MAXJ];
	} cases[] = {
		{ "two owners", { { "a", 0 }, { "b", 0 } }, 2, 100, { 50, 50 } },
		{ "three owners", { { "a", 0 }, { "b", 0 }, { "c", 0 } }, 3, 99, { 33, 33, 33 } },
		{ "one owner's three jobs share its half",
		  { { "a", 0 }, { "a", 0 }, { "a", 0 }, { "b", 0 } }, 4, 120, { 20, 20, 20, 60 } },
		{ "no users: every job shares alike", { { "", 0 }, { "", 0 }, { "", 0 } }, 3, 30,
		  { 10, 10, 10 } },
		{ "the highest priority takes all",
		  { { "a", 0 }, { "b", 50 }, { "c", -10 } }, 3, 40, { 0, 40, 0 } },
		{ "equal priorities share, lower ones wait",
		  { { "a", 10 }, { "b", 10 }, { "c", 0 } }, 3, 40, { 20, 20, 0 } },
		{ "an owner's higher job does not share with its lower one",
		  { { "a", 5 }, { "a", 0 }, { "b", 0 } }, 3, 30, { 30, 0, 0 } },
		{ "out-of-range priorities are clamped", { { "a", 1000 }, { "b", 100 } }, 2, 40,
		  { 20, 20 } },
	};
	(void)state;

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct fair f;
		struct tjob jobs[MAXJ] = { 0 };
		fair_init(&f);
		for (size_t i = 0; i < cases[c].n; i++) {
			jobs[i].owner = cases[c].jobs[i].owner;
			jobs[i].priority = cases[c].jobs[i].priority;
			add(&f, &jobs[i], (int64_t)i + 1);
		}
		lease(&f, 1, cases[c].leases);
		for (size_t i = 0; i < cases[c].n; i++)
			if (jobs[i].leases != cases[c].want[i])
				fail_msg("%s: job %zu got %u leases, not %u", cases[c].name, i + 1,
					 jobs[i].leases, cases[c].want[i]);
		fair_release(&f);
	}
}

/* The lower levels get leases once the higher ones have no work waiting; within a level, the
 * share is the owners'. */
static void test_priority_gives_way(void **state)
{
	struct fair f;
	struct tjob jobs[4] = { { .owner = "a", .priority = 10 }, { .owner = "b", .priority = 10 },
				{ .owner = "c" }, { .owner = "a" } };
	(void)state;

	fair_init(&f);
	for (size_t i = 0; i < 4; i++)
		add(&f, &jobs[i], (int64_t)i + 1);
	lease(&f, 1, 20);
	assert_int_equal(jobs[0].leases, 10);
	assert_int_equal(jobs[1].leases, 10);
	fair_set_ready(&f, &jobs[0].m, 0); /* a's priority-10 job has all its batches out */
	lease(&f, 1, 10);
	assert_int_equal(jobs[1].leases, 20);
	fair_set_ready(&f, &jobs[1].m, 0);
	forget(jobs, 4);
	lease(&f, 1, 20); /* level 0: owners c and a, one job each */
	assert_int_equal(jobs[2].leases, 10);
	assert_int_equal(jobs[3].leases, 10);
	fair_set_ready(&f, &jobs[0].m, 1); /* a batch given back: the next lease is its */
	lease(&f, 1, 1);
	assert_int_equal(jobs[0].leases, 1);
	fair_release(&f);
}

/* An owner (or job) that had no work waiting earns nothing meanwhile: back, it gets its share
 * from then on, not the leases the others got while it was away. Without the rule, owner c
 * would take the next 100 leases, and job a2 the next 50 of owner a's. */
static void test_no_credit_for_idling(void **state)
{
	struct fair f;
	struct tjob jobs[6] = { { .owner = "a" }, { .owner = "b" }, { .owner = "c" },
				{ .owner = "b" }, { .owner = "d" }, { .owner = "a" } };
	(void)state;

	fair_init(&f);
	for (size_t i = 0; i < 3; i++)
		add(&f, &jobs[i], (int64_t)i + 1);
	add(&f, &jobs[5], 6);
	fair_set_ready(&f, &jobs[2].m, 0); /* c waits for nothing */
	fair_set_ready(&f, &jobs[5].m, 0); /* nor does a's second job */
	lease(&f, 1, 200);
	assert_int_equal(jobs[0].leases, 100);
	assert_int_equal(jobs[1].leases, 100);
	assert_int_equal(jobs[2].leases + jobs[5].leases, 0);
	forget(jobs, 6);
	fair_set_ready(&f, &jobs[2].m, 1);
	for (int round = 0; round < 10; round++) { /* every stretch of three: one each */
		lease(&f, 1, 3);
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(jobs[i].leases, round + 1);
	}
	forget(jobs, 6);
	fair_set_ready(&f, &jobs[5].m, 1); /* a's two jobs share a's third */
	for (int round = 0; round < 10; round++) { /* every stretch of six: a1 one, a2 one */
		lease(&f, 1, 6);
		assert_int_equal(jobs[0].leases, round + 1);
		assert_int_equal(jobs[5].leases, round + 1);
		assert_int_equal(jobs[1].leases, 2 * (round + 1));
	}
	/* A new owner, and an owner's new job, also start from now. */
	forget(jobs, 6);
	add(&f, &jobs[3], 4);
	add(&f, &jobs[4], 5);
	lease(&f, 1, 40);
	assert_in_range(jobs[0].leases + jobs[5].leases, 9, 11);
	assert_in_range(jobs[1].leases + jobs[3].leases, 9, 11);
	assert_in_range(jobs[3].leases, 4, 6);
	assert_in_range(jobs[2].leases, 9, 11);
	assert_in_range(jobs[4].leases, 9, 11);
	fair_release(&f);
}

/* A job that finishes leaves; its owner's other jobs take its part, and the owner's flow goes
 * with its last job. */
static void test_jobs_finishing(void **state)
{
	struct fair f;
	struct tjob jobs[3] = { { .owner = "a" }, { .owner = "a" }, { .owner = "b" } };
	(void)state;

	fair_init(&f);
	for (size_t i = 0; i < 3; i++)
		add(&f, &jobs[i], (int64_t)i + 1);
	assert_int_equal(f.flows.n, 2);
	assert_int_equal(f.members, 3);
	lease(&f, 1, 40);
	assert_int_equal(jobs[0].leases, 10);
	assert_int_equal(jobs[1].leases, 10);
	assert_int_equal(jobs[2].leases, 20);
	fair_remove(&f, &jobs[0].m); /* ready as it leaves */
	assert_null(jobs[0].m.flow);
	forget(jobs, 3);
	lease(&f, 1, 40);
	assert_int_equal(jobs[1].leases, 20);
	assert_int_equal(jobs[2].leases, 20);
	fair_set_ready(&f, &jobs[2].m, 0);
	fair_remove(&f, &jobs[2].m); /* not ready as it leaves */
	assert_int_equal(f.flows.n, 1);
	lease(&f, 1, 5);
	assert_int_equal(jobs[1].leases, 25);
	fair_remove(&f, &jobs[1].m);
	assert_int_equal(f.flows.n, 0);
	assert_int_equal(f.members, 0);
	assert_null(fair_pick(&f, runs, &(unsigned){ 1 }));
	add(&f, &jobs[0], 9); /* the table is usable again */
	lease(&f, 1, 1);
	fair_release(&f);
}

/* Jobs a worker cannot run are passed over, whatever their place; a worker that can run none
 * gets nothing. Passed over, a job keeps at most FAIR_LAG leases of credit. */
static void test_ineligible_top_jobs(void **state)
{
	struct fair f;
	struct tjob jobs[4] = { { .owner = "a", .kernel = 2 }, { .owner = "b", .kernel = 1 },
				{ .owner = "c", .kernel = 1, .priority = 90 },
				{ .owner = "c", .kernel = 4, .priority = 90 } };
	unsigned mask = 8;
	(void)state;

	fair_init(&f);
	for (size_t i = 0; i < 2; i++)
		add(&f, &jobs[i], (int64_t)i + 1);
	lease(&f, 1, 30); /* only b's job runs on this worker */
	assert_int_equal(jobs[0].leases, 0);
	assert_int_equal(jobs[1].leases, 30);
	forget(jobs, 2);
	lease(&f, 3, 30); /* this one runs both: a's lag is capped */
	assert_in_range(jobs[0].leases, 15, 15 + FAIR_LAG);
	assert_null(fair_pick(&f, runs, &mask));
	/* A higher priority's jobs this worker cannot run: the next level's. */
	add(&f, &jobs[2], 3);
	add(&f, &jobs[3], 4);
	forget(jobs, 4);
	lease(&f, 2, 4);
	assert_int_equal(jobs[0].leases, 4);
	lease(&f, 4, 4);
	assert_int_equal(jobs[3].leases, 4);
	lease(&f, 7, 10); /* c's jobs share its level; the one passed over has a little credit */
	assert_in_range(jobs[2].leases, 5, 5 + FAIR_LAG);
	assert_int_equal(jobs[2].leases + jobs[3].leases, 14);
	assert_int_equal(jobs[0].leases + jobs[1].leases, 4);
	fair_release(&f);
}

/* Worker X runs only a's kind of job, worker Y both kinds: Y serves b, whose work only Y can
 * do, while X serves a (each owner gets a worker: max-min fair), rather than splitting Y. */
static void test_some_workers_only(void **state)
{
	struct fair f;
	struct tjob jobs[2] = { { .owner = "a", .kernel = 1 }, { .owner = "b", .kernel = 2 } };
	(void)state;

	fair_init(&f);
	for (size_t i = 0; i < 2; i++)
		add(&f, &jobs[i], (int64_t)i + 1);
	for (int i = 0; i < 100; i++) {
		lease(&f, 1, 1);
		lease(&f, 3, 1);
	}
	assert_in_range(jobs[0].leases, 100, 100 + FAIR_LAG + 1);
	assert_in_range(jobs[1].leases, 100 - FAIR_LAG - 1, 100);
	fair_release(&f);
}

/* Out of memory at any of its allocations, an add changes nothing; once it can allocate, it
 * succeeds. */
static void test_out_of_memory(void **state)
{
	struct tjob jobs[300] = { 0 };
	char owner[300][8];
	struct fair f;
	long failed = 0;
	(void)state;

	fair_init(&f);
	for (size_t i = 0; i < 300; i++) {
		struct tjob *j = &jobs[i];
		enum tally_err rc;
		snprintf(owner[i], sizeof owner[i], "o%zu", i % 40);
		j->owner = owner[i];
		j->kernel = 1;
		for (long after = 0;; after++) {
			alloc_fail_after(after, 0);
			rc = fair_add(&f, &j->m, (int64_t)i + 1, 0, j->owner);
			alloc_fail_never();
			if (!rc)
				break;
			assert_int_equal(rc, TALLY_ENOMEM);
			assert_null(j->m.flow);
			assert_int_equal(f.members, i);
			failed++;
		}
		fair_set_ready(&f, &j->m, 1);
	}
	assert_true(failed >= 40 * 2); /* a new flow allocates at least itself and its heap */
	assert_int_equal(f.flows.n, 40);
	lease(&f, 1, 400);
	for (size_t i = 0; i < 300; i++) /* 40 owners, 10 leases each, split among their jobs */
		assert_in_range(jobs[i].leases, 1, 2);
	fair_release(&f);
}

/* 100,000 jobs of 1,000 owners: a lease (pick and charge) costs O(log n) comparisons when the
 * best job is eligible, and O(k log k) more when k are passed over; the share stays fair. An
 * O(n) choice would take 100,000 steps a lease. */
static void test_cost_with_100000_jobs(void **state)
{
	enum { N = 100000, OWNERS = 1000, LEASES = 20000 };
	struct tjob *jobs = calloc(N, sizeof *jobs);
	static char owner[OWNERS][8];
	unsigned per_owner[OWNERS] = { 0 }, mask = 1;
	struct fair f;
	uint64_t before, worst = 0;
	const uint64_t log_n = 17; /* ceil(log2(N)) */
	(void)state;

	assert_non_null(jobs);
	fair_init(&f);
	for (size_t i = 0; i < OWNERS; i++)
		snprintf(owner[i], sizeof owner[i], "u%zu", i);
	for (size_t i = 0; i < N; i++) {
		jobs[i].owner = owner[i % OWNERS];
		jobs[i].kernel = 1;
		before = f.steps;
		add(&f, &jobs[i], (int64_t)i + 1);
		assert_true(f.steps - before <= 2 * log_n + 2);
	}
	for (size_t i = 0; i < LEASES; i++) {
		struct tjob *j;
		before = f.steps;
		j = (struct tjob *)fair_pick(&f, runs, &mask);
		fair_charge(&f, &j->m);
		j->leases++;
		per_owner[(size_t)(j - jobs) % OWNERS]++;
		if (f.steps - before > worst)
			worst = f.steps - before;
	}
	/* the walks' first steps, and a sift up and down in each of the two tiers */
	assert_true(worst <= 4 * log_n + 8);
	for (size_t i = 0; i < OWNERS; i++)
		assert_int_equal(per_owner[i], LEASES / OWNERS);
	/* Every job of the 100 owners first in line needs a kernel this worker lacks: passed over,
	 * at O(log k) each. */
	for (size_t o = 0; o < 100; o++)
		for (size_t i = o; i < N; i += OWNERS)
			jobs[i].kernel = 2;
	before = f.steps; /* 100 flows of 100 members passed over: k = 10,000, not n */
	assert_non_null(fair_pick(&f, runs, &mask));
	assert_true(f.steps - before >= 100 * 100);
	assert_true(f.steps - before <= 4 * 100 * 100 * log_n);
	mask = 4;
	before = f.steps; /* the worst case: nothing eligible, every member looked at once */
	assert_null(fair_pick(&f, runs, &mask));
	assert_true(f.steps - before >= N);
	assert_true(f.steps - before <= 4 * (uint64_t)N * log_n);
	/* Each job leaves, ready or not, at O(log n). */
	for (size_t i = 0; i < N; i++) {
		before = f.steps;
		if (i % 2)
			fair_set_ready(&f, &jobs[i].m, 0);
		fair_remove(&f, &jobs[i].m);
		assert_true(f.steps - before <= 4 * log_n + 4);
	}
	assert_int_equal(f.flows.n, 0);
	fair_release(&f);
	free(jobs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shares),
		cmocka_unit_test(test_priority_gives_way),
		cmocka_unit_test(test_no_credit_for_idling),
		cmocka_unit_test(test_jobs_finishing),
		cmocka_unit_test(test_ineligible_top_jobs),
		cmocka_unit_test(test_some_workers_only),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test(test_cost_with_100000_jobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
