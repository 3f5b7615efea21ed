/* Verification's decisions, table-driven: two agreeing opinions settle a check (passed when the
 * checked lease's counts are the agreed ones, refuted otherwise) and name every worker that
 * disagreed; no agreement waits for another worker up to VERIFY_OPINIONS_MAX opinions and then
 * gives up; the first disagreement is counted once. Then the lists: which check a worker may
 * take, opinions loaded and withdrawn, and the quarantined workers with their suspects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "alloc.h"
#include "verify.h"

static struct lease lease_of(int64_t id, const char *worker, uint64_t first, uint64_t count)
{
	struct lease l = { .id = id, .job_id = 7, .first_batch = first, .batch_count = count };
	snprintf(l.worker, sizeof l.worker, "%s", worker);
	return l;
}

/* One case: the checked lease's counts then the check leases', one value per opinion (the
 * counts are { v, 2 * v }), and what each opinion must decide. */
struct opinion_case {
	const char *name;
	uint64_t v[VERIFY_OPINIONS_MAX];
	size_t n;
	enum verify_outcome outcome[VERIFY_OPINIONS_MAX]; /* from the second opinion on */
	int disputed[VERIFY_OPINIONS_MAX];
	enum live_check_state state; /* at the end */
	size_t dissent[VERIFY_OPINIONS_MAX], ndissent;
	const char *reason;
};

static const struct opinion_case cases[] = {
	{ "agree at once", { 5, 5 }, 2, { 0, VERIFY_SETTLED }, { 0 }, CHECK_PASSED, { 0 }, 0,
	  "job 7, batches 10-13: its counts differed from those of 'A', 'B'" },
	{ "the checked lease lies", { 6, 5, 5 }, 3, { 0, VERIFY_WAIT, VERIFY_SETTLED }, { 0, 1, 0 },
	  CHECK_REFUTED, { 0 }, 1,
	  "job 7, batches 10-13: its counts differed from those of 'B', 'C'" },
	{ "the checker lies", { 5, 4, 5 }, 3, { 0, VERIFY_WAIT, VERIFY_SETTLED }, { 0, 1, 0 },
	  CHECK_PASSED, { 1 }, 1,
	  "job 7, batches 10-13: its counts differed from those of 'A', 'C'" },
	{ "two liars, then agreement", { 1, 2, 3, 2 }, 4,
	  { 0, VERIFY_WAIT, VERIFY_WAIT, VERIFY_SETTLED }, { 0, 1, 0, 0 }, CHECK_REFUTED, { 0, 2 }, 2,
	  "job 7, batches 10-13: its counts differed from those of 'B', 'D'" },
	{ "no two agree", { 1, 2, 3, 4, 5 }, 5,
	  { 0, VERIFY_WAIT, VERIFY_WAIT, VERIFY_WAIT, VERIFY_NO_AGREEMENT }, { 0, 1, 0, 0, 0 },
	  CHECK_PENDING, { 0 }, 0, "" },
	{ "agreement on the last opinion", { 1, 2, 3, 4, 3 }, 5,
	  { 0, VERIFY_WAIT, VERIFY_WAIT, VERIFY_WAIT, VERIFY_SETTLED }, { 0, 1, 0, 0, 0 },
	  CHECK_REFUTED, { 0, 1, 3 }, 3,
	  "job 7, batches 10-13: its counts differed from those of 'C', 'E'" },
};

static void test_opinions(void **state)
{
	static const char *const workers[] = { "A", "B", "C", "D", "E" };
	(void)state;

	assert_int_equal(VERIFY_OPINIONS_MAX, 5);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const struct opinion_case *t = &cases[c];
		struct verify_check *list = NULL, *ch;
		struct verify_verdict v = { 0 };
		uint64_t counts[KERNEL_MAX_KEYS] = { t->v[0], 2 * t->v[0] };
		struct lease checked = lease_of(100, workers[0], 10, 4);

		print_message("case: %s\n", t->name);
		assert_non_null(ch = verify_check_add(&list, &checked, counts));
		assert_int_equal(ch->state, CHECK_PENDING);
		assert_int_equal(ch->nop, 1);
		for (size_t i = 1; i < t->n; i++) {
			struct lease l = lease_of(100 + (int64_t)i, workers[i], 10, 4);
			counts[0] = t->v[i];
			counts[1] = 2 * t->v[i];
			verify_check_opinion(ch, &l, counts, 7, &v);
			assert_int_equal(v.outcome, t->outcome[i]);
			assert_int_equal(v.disputed, t->disputed[i]);
		}
		assert_int_equal(ch->state, t->state);
		assert_int_equal(ch->nop, t->n);
		assert_int_equal(ch->disputed, t->n > 2 || t->v[0] != t->v[1]);
		if (v.outcome == VERIFY_SETTLED) {
			assert_int_equal(v.ndissent, t->ndissent);
			for (size_t i = 0; i < v.ndissent; i++)
				assert_int_equal(v.dissent[i], t->dissent[i]);
			assert_string_equal(v.reason, t->reason);
		}
		verify_check_unlink(&list, ch);
		assert_null(list);
		free(ch);
	}
}

/* Which check a worker may take next: not leased, not full, not one it gave an opinion on, and
 * not larger than its cap. */
static void test_check_for(void **state)
{
	struct verify_check *list = NULL, *a, *b;
	uint64_t c[KERNEL_MAX_KEYS] = { 1, 2 };
	struct lease la = lease_of(1, "A", 0, 10), lb = lease_of(2, "B", 10, 3);
	struct verify_verdict v;
	(void)state;

	assert_non_null(a = verify_check_add(&list, &la, c));
	assert_non_null(b = verify_check_add(&list, &lb, c));
	assert_ptr_equal(list, b); /* newest first */
	assert_ptr_equal(verify_check_find(list, 1), a);
	assert_ptr_equal(verify_check_find(list, 2), b);
	assert_null(verify_check_find(list, 3));

	assert_ptr_equal(verify_check_for(list, "C", 0), b);
	assert_ptr_equal(verify_check_for(list, "B", 0), a); /* B did b */
	assert_ptr_equal(verify_check_for(list, "A", 5), b); /* a has 10 batches */
	assert_null(verify_check_for(list, "B", 5));
	b->leased = 9;
	assert_ptr_equal(verify_check_for(list, "C", 0), a);
	b->leased = 0;
	for (int64_t i = 3; a->nop < VERIFY_OPINIONS_MAX; i++) { /* opinions until a is full */
		struct lease l = lease_of(i, i % 2 ? "X" : "Y", 0, 10);
		c[0] = (uint64_t)i;
		verify_check_opinion(a, &l, c, 7, &v);
	}
	assert_ptr_equal(verify_check_for(list, "B", 0), NULL);
	verify_check_unlink(&list, a);
	verify_check_unlink(&list, b);
	assert_null(list);
	free(a);
	free(b);
}

/* Opinions as stored come back in order, up to the limit; a discarded one is withdrawn, never
 * the checked lease's own. */
static void test_load_and_withdraw(void **state)
{
	struct verify_check *list = NULL, *ch;
	uint64_t c[KERNEL_MAX_KEYS] = { 5, 10 };
	struct lease l = lease_of(1, "A", 0, 2);
	(void)state;

	assert_non_null(ch = verify_check_add(&list, &l, c));
	l = lease_of(2, "B", 0, 2);
	verify_check_load_opinion(ch, &l, c);
	assert_false(ch->disputed);
	c[0] = 6;
	for (int64_t i = 3; i < 10; i++) {
		l = lease_of(i, "C", 0, 2);
		verify_check_load_opinion(ch, &l, c);
	}
	assert_int_equal(ch->nop, VERIFY_OPINIONS_MAX);
	assert_true(ch->disputed);
	assert_int_equal(ch->op[VERIFY_OPINIONS_MAX - 1].lease_id, 5);
	verify_check_withdraw(ch, 2);
	assert_int_equal(ch->nop, VERIFY_OPINIONS_MAX - 1);
	assert_int_equal(ch->op[1].lease_id, 3);
	verify_check_withdraw(ch, 1); /* the checked lease's own stays */
	verify_check_withdraw(ch, 99);
	assert_int_equal(ch->nop, VERIFY_OPINIONS_MAX - 1);
	assert_int_equal(ch->op[0].lease_id, 1);
	verify_check_unlink(&list, ch);
	free(ch);
}

/* Quarantined workers: found by name, suspects handed out once each (newest first), written
 * once; loaded ones are neither suspects nor to be written. */
static void test_quarantine(void **state)
{
	struct verify v = { 0 };
	char name[WORKER_NAME_MAX];
	(void)state;

	assert_null(verify_quarantined(&v, "A"));
	assert_false(verify_dirty(&v));
	assert_int_equal(verify_load(&v, "L", "stored", 5), TALLY_OK);
	assert_false(verify_dirty(&v));
	assert_int_equal(verify_take_suspect(&v, name), 0);
	assert_int_equal(verify_quarantine(&v, "A", "why A", 10, 7), TALLY_OK);
	assert_int_equal(verify_quarantine(&v, "B", "why B", 11, 7), TALLY_OK);
	assert_string_equal(verify_quarantined(&v, "A"), "why A");
	assert_string_equal(verify_quarantined(&v, "L"), "stored");
	assert_int_equal(verify_count(&v), 3);
	assert_int_equal(v.nsuspects, 2);
	assert_true(verify_dirty(&v));
	assert_int_equal(v.quar->job_id, 7);
	assert_int_equal(verify_take_suspect(&v, name), 1);
	assert_string_equal(name, "B");
	assert_int_equal(verify_take_suspect(&v, name), 1);
	assert_string_equal(name, "A");
	assert_int_equal(verify_take_suspect(&v, name), 0);
	assert_int_equal(v.nsuspects, 0);
	verify_written(&v);
	assert_false(verify_dirty(&v));

	alloc_fail_after(0, 0);
	assert_int_equal(verify_quarantine(&v, "C", "why C", 12, 7), TALLY_ENOMEM);
	assert_null(verify_quarantined(&v, "C"));
	assert_int_equal(verify_count(&v), 3);
	assert_int_equal(v.nsuspects, 0);
	assert_false(verify_dirty(&v));
	alloc_fail_after(0, 0);
	assert_int_equal(verify_load(&v, "D", "why D", 12), TALLY_ENOMEM);
	assert_int_equal(verify_count(&v), 3);
	verify_clear(&v);
	assert_int_equal(verify_count(&v), 0);
	assert_null(verify_quarantined(&v, "A"));
}

static enum tally_err note_check(void *ctx, const struct verify_check *ch)
{
	int64_t **ids = ctx;
	*(*ids)++ = ch->lease_id;
	return TALLY_OK;
}

static enum tally_err note_quar(void *ctx, const struct verify_quar *q)
{
	int64_t **ids = ctx;
	*(*ids)++ = -q->at;
	return q->at == 13 ? TALLY_EDB : TALLY_OK;
}

/* Changed checks (newest first) then unwritten quarantines are handed out; once written, the
 * settled and dropped checks are freed, the pending ones stay their job's. */
static void test_changes(void **state)
{
	struct verify v = { 0 };
	struct verify_check *list = NULL, *a, *b;
	uint64_t c[KERNEL_MAX_KEYS] = { 1, 2 };
	struct lease la = lease_of(1, "A", 0, 10), lb = lease_of(2, "B", 10, 3);
	int64_t ids[8], *p = ids;
	(void)state;

	assert_non_null(a = verify_check_add(&list, &la, c));
	assert_non_null(b = verify_check_add(&list, &lb, c));
	assert_false(verify_dirty(&v));
	verify_touch(&v, a);
	verify_touch(&v, b);
	verify_touch(&v, a);
	assert_true(verify_dirty(&v));
	assert_int_equal(verify_quarantine(&v, "X", "why", 12, 7), TALLY_OK);
	assert_int_equal(verify_quarantine(&v, "Y", "why", 13, 7), TALLY_OK);
	assert_int_equal(verify_each_dirty(&v, note_check, note_quar, &p), TALLY_EDB);
	assert_int_equal(p - ids, 3);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 1);
	assert_int_equal(ids[2], -13); /* newest first, and it stopped there */
	verify_check_unlink(&list, b);
	b->state = CHECK_PASSED; /* settled: the changed list's now */
	verify_written(&v);      /* frees b */
	assert_false(verify_dirty(&v));
	assert_ptr_equal(list, a);
	assert_int_equal(a->dirty, 0);
	verify_touch(&v, a);
	verify_clear(&v); /* forgets a (pending: its job's) */
	assert_false(verify_dirty(&v));
	verify_check_unlink(&list, a);
	free(a);
}

/* A check that cannot be had for want of memory leaves the list as it was. */
static void test_check_add_enomem(void **state)
{
	struct verify_check *list = NULL, *a;
	uint64_t c[KERNEL_MAX_KEYS] = { 1, 2 };
	struct lease la = lease_of(1, "A", 0, 10), lb = lease_of(2, "B", 10, 3);
	(void)state;

	assert_non_null(a = verify_check_add(&list, &la, c));
	alloc_fail_after(0, 0);
	assert_null(verify_check_add(&list, &lb, c));
	assert_ptr_equal(list, a);
	assert_null(a->next);
	verify_check_unlink(&list, a);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opinions),
		cmocka_unit_test(test_check_for),
		cmocka_unit_test(test_load_and_withdraw),
		cmocka_unit_test(test_quarantine),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_check_add_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
