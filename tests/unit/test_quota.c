/* Quotas and jobs by owner, on the coordinator with an injected clock: an owner's limit of
 * unfinished jobs (others unaffected, a slot freed by a finish or a cancel, a delete counted
 * once, the counts restored by a restart's load, a key's retry found before any quota), the
 * global limit, an open coordinator's owner "", a failed allocation counting nothing, and what
 * GET /metrics reads by owner (bounded, the rest as "other"; the fair share's lead). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "runrange.h"
#include "alloc.h"
#include "coord.h"
#include "counts.h"
#include "db.h"
#include "tmpdb.h"

struct fixture {
	struct tmpdb t;
	struct db *db;
	struct coord *c;
	struct coord_config cfg;
	int64_t now;
};

static int64_t fake_now(void *ctx)
{
	return ((struct fixture *)ctx)->now;
}

/* (Re)opens the store and loads a coordinator with f->cfg over it. */
static void start(struct fixture *f)
{
	char err[256];
	if (db_open(f->t.path, &f->db, err, sizeof err))
		fail_msg("%s", err);
	f->c = coord_new(f->db, &f->cfg, (struct coord_clock){ fake_now, f },
			 (struct coord_hooks){ 0 });
	if (!f->c || coord_load(f->c))
		fail_msg("coord_load: %s", db_errmsg(f->db));
}

static void stop(struct fixture *f)
{
	coord_free(f->c);
	db_close(f->db);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	tmpdb_make(&f->t);
	f->now = 1000000;
	f->cfg = (struct coord_config){ .lease_timeout_ms = 10000, .lease_target_ms = 1000,
					.max_unfinished_jobs = 3, .max_jobs_in_memory = 5 };
	start(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	stop(f);
	tmpdb_remove(&f->t);
	free(f);
	return 0;
}

/* Submits a one-batch pi job of owner (under key, may be NULL); returns what coord_submit
 * returned. */
static enum tally_err submit(struct fixture *f, const char *owner, const char *key,
			     struct job *out)
{
	struct job_spec spec = { .kernel = kernel_find("pi"), .samples = 1000, .batch_size = 1000,
				 .seed = 3, .params = "{}" };
	snprintf(spec.owner, sizeof spec.owner, "%s", owner);
	return coord_submit(f->c, &spec, key, out);
}

/* Leases the next job's batch and completes it; returns the job's id. */
static int64_t finish_next(struct fixture *f)
{
	struct lease_request req = { .worker = "w", .nkernels = 1, .max_batches = 1 };
	struct lease l;
	struct counts c = { 0 };
	char err[128];
	int dup;

	req.kernels[0] = "pi";
	assert_int_equal(coord_lease(f->c, &req, &l), TALLY_OK);
	kernel_keys(l.spec.kernel, &c.keys);
	kernel_run_range(l.spec.kernel, l.spec.seed, l.spec.samples, l.spec.batch_size,
			 l.first_batch, l.batch_count, c.v);
	assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	return l.job_id;
}

static uint64_t unfinished(struct fixture *f, const char *owner)
{
	struct coord_quota q;
	coord_quota(f->c, owner, &q);
	assert_int_equal(q.owner_limit, f->cfg.max_unfinished_jobs);
	assert_int_equal(q.limit, f->cfg.max_jobs_in_memory);
	return q.owner_unfinished;
}

/* An owner's limit: reached with queued and running jobs alike, another owner unaffected,
 * freed by a finish and by a cancel, a delete of a finished job counted once, a key's retry
 * found (the API answers it before submitting), and the counts back after a restart. */
static void test_owner_quota(void **state)
{
	struct fixture *f = *state;
	struct job a[4], j;
	struct lease_request req = { .worker = "w", .nkernels = 1, .max_batches = 1 };
	struct lease l;

	req.kernels[0] = "pi";
	assert_int_equal(submit(f, "alice", "k1", &a[0]), TALLY_OK);
	assert_int_equal(submit(f, "alice", NULL, &a[1]), TALLY_OK);
	assert_int_equal(coord_lease(f->c, &req, &l), TALLY_OK); /* a[0] runs */
	assert_int_equal(l.job_id, a[0].id);
	assert_int_equal(submit(f, "alice", NULL, &a[2]), TALLY_OK);
	assert_int_equal(unfinished(f, "alice"), 3);
	assert_int_equal(submit(f, "alice", "k2", &j), TALLY_EQUOTA);
	assert_int_equal(unfinished(f, "alice"), 3);
	/* The retry of k1 is the job that was, quota or not. */
	assert_int_equal(coord_job_by_key(f->c, "alice", "k1", &j), TALLY_OK);
	assert_int_equal(j.id, a[0].id);
	/* Bob is not Alice. */
	assert_int_equal(submit(f, "bob", NULL, &j), TALLY_OK);
	assert_int_equal(unfinished(f, "bob"), 1);
	assert_int_equal(unfinished(f, "carol"), 0);

	/* A cancel frees a slot at once (before the flush), and only one. */
	assert_int_equal(coord_cancel(f->c, COORD_ALL, a[1].id, &j), TALLY_OK);
	assert_int_equal(coord_cancel(f->c, COORD_ALL, a[1].id, &j), TALLY_OK);
	assert_int_equal(unfinished(f, "alice"), 2);
	assert_int_equal(submit(f, "alice", NULL, &a[3]), TALLY_OK);
	assert_int_equal(submit(f, "alice", NULL, &j), TALLY_EQUOTA);
	assert_int_equal(coord_flush(f->c), TALLY_OK);

	/* A finish frees one: a[0]'s lease completes. */
	{
		struct counts c = { 0 };
		char err[128];
		int dup;
		kernel_keys(l.spec.kernel, &c.keys);
		kernel_run_range(l.spec.kernel, l.spec.seed, l.spec.samples, l.spec.batch_size,
				 l.first_batch, l.batch_count, c.v);
		assert_int_equal(coord_complete(f->c, l.id, &c, &dup, NULL, err, sizeof err), TALLY_OK);
	}
	assert_int_equal(coord_job(f->c, COORD_ALL, a[0].id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_int_equal(unfinished(f, "alice"), 2);
	assert_int_equal(coord_flush(f->c), TALLY_OK); /* written: it leaves memory */
	assert_int_equal(unfinished(f, "alice"), 2);
	/* Deleting it (finished) frees nothing more, and nothing twice. */
	assert_int_equal(coord_delete(f->c, COORD_ALL, a[0].id, &j), TALLY_OK);
	assert_int_equal(coord_delete(f->c, COORD_ALL, a[1].id, &j), TALLY_OK);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	assert_int_equal(unfinished(f, "alice"), 2);
	assert_int_equal(submit(f, "alice", NULL, &j), TALLY_OK);
	assert_int_equal(submit(f, "alice", NULL, &j), TALLY_EQUOTA);
	assert_int_equal(coord_flush(f->c), TALLY_OK);

	/* A restart loads the jobs and their counts with them. */
	stop(f);
	start(f);
	assert_int_equal(unfinished(f, "alice"), 3);
	assert_int_equal(unfinished(f, "bob"), 1);
	assert_int_equal(submit(f, "alice", NULL, &j), TALLY_EQUOTA);
	assert_int_equal(submit(f, "bob", NULL, &j), TALLY_OK);
}

/* Extending a finished job makes it unfinished again: it must fit its owner's quota (and the
 * global cap) as a submit would; an unfinished job's extend adds no job. */
static void test_extend_of_finished_job_counts(void **state)
{
	struct fixture *f = *state;
	struct job done, bob, j;
	int64_t id;

	assert_int_equal(submit(f, "alice", NULL, &done), TALLY_OK);
	id = finish_next(f);
	assert_int_equal(id, done.id);
	assert_int_equal(coord_flush(f->c), TALLY_OK); /* written: out of memory */
	for (int i = 0; i < 3; i++)
		assert_int_equal(submit(f, "alice", NULL, &j), TALLY_OK);
	assert_int_equal(unfinished(f, "alice"), 3);
	assert_int_equal(coord_extend(f->c, COORD_ALL, id, 2000, &j), TALLY_EQUOTA);
	assert_int_equal(unfinished(f, "alice"), 3);
	assert_int_equal(coord_job(f->c, COORD_ALL, id, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_SUCCEEDED);
	assert_int_equal(j.spec.samples, 1000);
	/* An unfinished job grows whatever the quota. */
	assert_int_equal(coord_extend(f->c, COORD_ALL, j.id + 1, 2000, &j), TALLY_OK);
	/* Bob fills the global cap (5): Alice's extend is refused for that too, once her own
	 * quota has room. */
	assert_int_equal(coord_cancel(f->c, COORD_ALL, j.id, &j), TALLY_OK);
	assert_int_equal(submit(f, "bob", NULL, &j), TALLY_OK);
	assert_int_equal(submit(f, "bob", NULL, &j), TALLY_OK);
	assert_int_equal(submit(f, "bob", NULL, &bob), TALLY_OK);
	assert_int_equal(coord_extend(f->c, COORD_ALL, id, 2000, &j), TALLY_EFULL);
	assert_int_equal(coord_cancel(f->c, COORD_ALL, bob.id, &j), TALLY_OK);
	assert_int_equal(coord_extend(f->c, COORD_ALL, id, 2000, &j), TALLY_OK);
	assert_int_equal(j.state, JOB_RUNNING);
	assert_int_equal(unfinished(f, "alice"), 3);
}

/* The global limit counts every owner's unfinished jobs; a finish frees one. An owner's limit
 * is told first when both are reached. */
static void test_global_cap(void **state)
{
	struct fixture *f = *state;
	struct job j;
	struct coord_quota q;

	for (int i = 0; i < 3; i++)
		assert_int_equal(submit(f, "alice", NULL, &j), TALLY_OK);
	assert_int_equal(submit(f, "bob", NULL, &j), TALLY_OK);
	assert_int_equal(submit(f, "carol", NULL, &j), TALLY_OK);
	coord_quota(f->c, "dave", &q);
	assert_int_equal(q.unfinished, 5);
	assert_int_equal(submit(f, "dave", NULL, &j), TALLY_EFULL);
	assert_int_equal(submit(f, "alice", NULL, &j), TALLY_EQUOTA);
	(void)finish_next(f);
	assert_int_equal(submit(f, "dave", NULL, &j), TALLY_OK);
	assert_int_equal(submit(f, "dave", NULL, &j), TALLY_EFULL);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
}

/* An open coordinator's jobs are owner ""'s: one owner like any other. A submit that fails for
 * memory counts nothing. */
static void test_open_owner_and_failed_allocation(void **state)
{
	struct fixture *f = *state;
	struct job j;

	assert_int_equal(submit(f, "", NULL, &j), TALLY_OK);
	assert_int_equal(submit(f, "", NULL, &j), TALLY_OK);
	alloc_fail_after(0, 1);
	assert_int_equal(submit(f, "", NULL, &j), TALLY_ENOMEM);
	assert_int_equal(submit(f, "zed", NULL, &j), TALLY_ENOMEM); /* a new owner's entry */
	alloc_fail_never();
	assert_int_equal(unfinished(f, ""), 2);
	assert_int_equal(unfinished(f, "zed"), 0);
	assert_int_equal(submit(f, "", NULL, &j), TALLY_OK);
	assert_int_equal(submit(f, "", NULL, &j), TALLY_EQUOTA);
	assert_int_equal(unfinished(f, "zed"), 0);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
}

/* Metrics by owner: most jobs first, queued and running apart, at most COORD_OWNERS_SHOWN of
 * them and "other" with the rest; the fair share's lead for each owner with work waiting. */
static void test_metrics_by_owner(void **state)
{
	struct fixture *f = *state;
	struct coord_metrics *m = calloc(1, sizeof *m);
	uint64_t rest = 0, total = 0;
	char name[16];
	struct job j;

	stop(f);
	f->cfg.max_unfinished_jobs = 0; /* no limits */
	f->cfg.max_jobs_in_memory = 0;
	start(f);
	/* Owner u00 has 3 jobs, u01..u59 one each; then one lease: it goes to u00 (oldest flow). */
	for (int i = 0; i < 60; i++) {
		snprintf(name, sizeof name, "u%02d", i);
		for (int k = 0; k < (i ? 1 : 3); k++)
			assert_int_equal(submit(f, name, NULL, &j), TALLY_OK);
	}
	{
		struct lease_request req = { .worker = "w", .nkernels = 1, .max_batches = 1 };
		struct lease l;
		req.kernels[0] = "pi";
		assert_int_equal(coord_lease(f->c, &req, &l), TALLY_OK);
	}
	assert_int_equal(coord_metrics(f->c, m), TALLY_OK);
	assert_int_equal(m->nby_owner, COORD_OWNERS_SHOWN + 1);
	assert_string_equal(m->by_owner[0].owner, "u00");
	assert_int_equal(m->by_owner[0].queued, 2);
	assert_int_equal(m->by_owner[0].running, 1);
	assert_string_equal(m->by_owner[1].owner, "u01"); /* ties by name */
	assert_string_equal(m->by_owner[COORD_OWNERS_SHOWN - 1].owner, "u49");
	assert_string_equal(m->by_owner[COORD_OWNERS_SHOWN].owner, "other");
	assert_int_equal(m->by_owner[COORD_OWNERS_SHOWN].queued, 10);
	for (size_t i = 0; i < m->nby_owner; i++)
		total += m->by_owner[i].queued + m->by_owner[i].running;
	assert_int_equal(total, 62);
	/* Fair share: u00 was charged one lease, one ahead of the others (shown first). */
	assert_int_equal(m->nfair, COORD_OWNERS_SHOWN);
	for (size_t i = 0; i < m->nfair; i++) {
		assert_int_equal(m->fair[i].priority, 0);
		assert_string_not_equal(m->fair[i].owner, "u00");
		assert_int_equal(m->fair[i].lead, 0);
		rest += m->fair[i].ready;
	}
	assert_int_equal(rest, COORD_OWNERS_SHOWN);
	assert_string_equal(m->fair[0].owner, "u01");
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	free(m);
}

/* A real owner named "other" takes the rest into its own counts: one series, never two. */
static void test_metrics_owner_named_other(void **state)
{
	struct fixture *f = *state;
	struct coord_metrics *m = calloc(1, sizeof *m);
	char name[16];
	struct job j;
	size_t others = 0;

	stop(f);
	f->cfg.max_unfinished_jobs = 0;
	f->cfg.max_jobs_in_memory = 0;
	start(f);
	for (int k = 0; k < 2; k++)
		assert_int_equal(submit(f, "other", NULL, &j), TALLY_OK);
	for (int i = 0; i < 55; i++) {
		snprintf(name, sizeof name, "u%02d", i);
		assert_int_equal(submit(f, name, NULL, &j), TALLY_OK);
	}
	assert_int_equal(coord_metrics(f->c, m), TALLY_OK);
	assert_int_equal(m->nby_owner, COORD_OWNERS_SHOWN);
	for (size_t i = 0; i < m->nby_owner; i++)
		if (!strcmp(m->by_owner[i].owner, "other")) {
			others++;
			assert_int_equal(m->by_owner[i].queued, 2 + 6); /* u49..u54 */
		}
	assert_int_equal(others, 1);
	assert_int_equal(coord_flush(f->c), TALLY_OK);
	free(m);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_owner_quota),
		T(test_global_cap),
		T(test_extend_of_finished_job_counts),
		T(test_open_owner_and_failed_allocation),
		T(test_metrics_by_owner),
		T(test_metrics_owner_named_other),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
