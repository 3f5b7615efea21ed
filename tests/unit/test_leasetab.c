/* The lease table: leases found by id through the table's growth, the live ones in expiry order
 * (the first to expire first, fixed after a heartbeat, shifted all at once, some dropped), done
 * ones never on the heap, and an insert refused for want of memory leaving the table as it
 * was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "alloc.h"
#include "jobtab.h"
#include "leasetab.h"
#include "rng.h"

#define N 1000

static struct llease *new_lease(int64_t id, int64_t expires_at, enum lease_state s)
{
	struct llease *l = calloc(1, sizeof *l);
	assert_non_null(l);
	l->lease.id = id;
	l->lease.expires_at = expires_at;
	l->lease.state = s;
	return l;
}

/* Lease ids as live.c makes them: a sequence in the high bits, random low bits. */
static int64_t lease_id(uint64_t seq, uint64_t *rnd)
{
	return (int64_t)((seq << 16) | (rng_splitmix64(rnd) & 0xffff));
}

/* Checks that every live lease is where the heap says, and the first expires first. */
static void check_live(const struct leasetab *t)
{
	for (size_t i = 0; i < leasetab_live(t); i++) {
		const struct llease *l = leasetab_live_at(t, i);
		assert_int_equal(l->heap, i);
		assert_int_equal(l->lease.state, LEASE_ACTIVE);
		assert_true(l->lease.expires_at >= leasetab_next_expiry(t));
	}
}

/* Many leases, the table growing under them: each is found, the live ones expire in order. */
static void test_find_and_expire_in_order(void **state)
{
	static int64_t ids[N];
	struct leasetab t;
	uint64_t rnd = 1;
	int64_t last = 0;
	size_t live = 0;
	struct llease *l;
	(void)state;

	assert_int_equal(leasetab_init(&t), TALLY_OK);
	assert_null(leasetab_expired(&t, INT64_MAX));
	assert_int_equal(leasetab_next_expiry(&t), 0);
	for (size_t i = 0; i < N; i++) {
		enum lease_state s = i % 5 ? LEASE_ACTIVE : LEASE_DONE;
		ids[i] = lease_id(i + 1, &rnd);
		l = new_lease(ids[i], 1000 + (int64_t)(rng_splitmix64(&rnd) % 5000), s);
		assert_int_equal(leasetab_insert(&t, l), TALLY_OK);
		live += s == LEASE_ACTIVE;
		if (s != LEASE_ACTIVE)
			assert_int_equal(l->heap, HEAP_NONE);
	}
	assert_int_equal(leasetab_count(&t), N);
	assert_int_equal(leasetab_live(&t), live);
	check_live(&t);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(leasetab_find(&t, ids[i])->lease.id, ids[i]);
	assert_null(leasetab_find(&t, lease_id(N + 1, &rnd)));

	assert_null(leasetab_expired(&t, 999));
	while ((l = leasetab_expired(&t, 3000))) {
		assert_true(l->lease.expires_at >= last && l->lease.expires_at <= 3000);
		last = l->lease.expires_at;
		leasetab_unlive(&t, l); /* as live.c ends a lease */
		l->lease.state = LEASE_EXPIRED;
		assert_int_equal(l->heap, HEAP_NONE);
		live--;
	}
	assert_int_equal(leasetab_live(&t), live);
	assert_true(leasetab_next_expiry(&t) > 3000);
	check_live(&t);
	assert_int_equal(leasetab_count(&t), N); /* still found until removed */
	for (size_t i = 0; i < N; i += 2) {
		l = leasetab_find(&t, ids[i]);
		leasetab_remove(&t, l);
		free(l);
		assert_null(leasetab_find(&t, ids[i]));
	}
	assert_int_equal(leasetab_count(&t), N / 2);
	check_live(&t);
	leasetab_release(&t); /* frees the rest */
}

/* A heartbeat moves a lease later, a stall shifts them all; both keep the order. */
static void test_fix_and_shift(void **state)
{
	struct leasetab t;
	struct llease *l[10];
	(void)state;

	assert_int_equal(leasetab_init(&t), TALLY_OK);
	for (int i = 0; i < 10; i++) {
		l[i] = new_lease(i + 1, 100 + i, LEASE_ACTIVE);
		assert_int_equal(leasetab_insert(&t, l[i]), TALLY_OK);
	}
	assert_int_equal(leasetab_next_expiry(&t), 100);
	l[0]->lease.expires_at = 500;
	leasetab_fix(&t, l[0]);
	assert_int_equal(leasetab_next_expiry(&t), 101);
	l[9]->lease.expires_at = 50;
	leasetab_fix(&t, l[9]);
	assert_ptr_equal(leasetab_expired(&t, 50), l[9]);
	check_live(&t);
	leasetab_shift(&t, 1000);
	assert_int_equal(leasetab_next_expiry(&t), 1050);
	assert_int_equal(l[0]->lease.expires_at, 1500);
	check_live(&t);
	leasetab_clear(&t);
	assert_int_equal(leasetab_count(&t), 0);
	assert_int_equal(leasetab_live(&t), 0);
	leasetab_release(&t);
}

/* Cancelling one job's leases takes them off the heap, finished and changed, keeping them in
 * the table; the other jobs' stay live. */
static void test_cancel_job(void **state)
{
	static struct ljob ja, jb;
	struct ljob *a = &ja, *b = &jb;
	struct leasetab t;
	struct llease *l;
	size_t changed = 0;
	(void)state;

	assert_int_equal(leasetab_init(&t), TALLY_OK);
	for (int i = 1; i <= 100; i++) {
		l = new_lease(i, 1000 - i, LEASE_ACTIVE);
		l->job = i % 2 ? a : b;
		assert_int_equal(leasetab_insert(&t, l), TALLY_OK);
	}
	leasetab_cancel_job(&t, b, 77);
	assert_int_equal(leasetab_live(&t), 50);
	assert_int_equal(leasetab_count(&t), 100);
	check_live(&t);
	for (size_t i = 0; i < leasetab_live(&t); i++)
		assert_ptr_equal(leasetab_live_at(&t, i)->job, a);
	assert_int_equal(leasetab_next_expiry(&t), 1000 - 99);
	l = leasetab_find(&t, 2);
	assert_int_equal(l->heap, HEAP_NONE);
	assert_int_equal(l->lease.state, LEASE_CANCELLED);
	assert_int_equal(l->finished_at, 77);
	for (l = t.dirty; l; l = l->dnext)
		changed++;
	assert_int_equal(changed, 50);
	leasetab_release(&t);
}

static enum tally_err note_id(void *ctx, const struct llease *l)
{
	int64_t **ids = ctx;
	*(*ids)++ = l->lease.id;
	return l->lease.id == 99 ? TALLY_EDB : TALLY_OK;
}

/* Changed leases are listed once each, in the order of their first change; once written the
 * finished ones leave the table, the live ones stay. Copies added as stored get their job's
 * spec; a worker's or a batch's live lease is found. */
static void test_changes_and_lookups(void **state)
{
	static struct ljob ja, jb;
	struct job_spec spec = { .samples = 5000, .batch_size = 1000 };
	struct lease stored = { .id = 3, .first_batch = 4, .batch_count = 3, .state = LEASE_ACTIVE,
				.expires_at = 30, .worker = "w" };
	struct leasetab t;
	struct llease *a, *b, *c;
	int64_t ids[8], *p = ids;
	(void)state;

	assert_int_equal(leasetab_init(&t), TALLY_OK);
	a = new_lease(1, 10, LEASE_ACTIVE);
	b = new_lease(99, 20, LEASE_ACTIVE);
	a->job = b->job = &ja;
	assert_int_equal(leasetab_insert(&t, a), TALLY_OK);
	assert_int_equal(leasetab_insert(&t, b), TALLY_OK);
	assert_non_null(c = leasetab_add(&t, &stored, &spec, &jb));
	assert_int_equal(c->lease.spec.samples, 5000);
	assert_ptr_equal(c->job, &jb);
	assert_int_equal(c->heap != HEAP_NONE, 1);
	assert_ptr_equal(leasetab_live_of(&t, "w"), c);
	assert_null(leasetab_live_of(&t, "v"));
	assert_ptr_equal(leasetab_live_holding(&t, &jb, 6), c);
	assert_null(leasetab_live_holding(&t, &jb, 7));
	assert_null(leasetab_live_holding(&t, &ja, 6));
	c->lease.check_of = 1; /* a check lease holds no batch of its own */
	assert_null(leasetab_live_holding(&t, &jb, 6));

	assert_false(leasetab_dirty(&t));
	leasetab_touch(&t, c);
	leasetab_touch(&t, a);
	leasetab_touch(&t, c);
	leasetab_touch(&t, b);
	assert_true(leasetab_dirty(&t));
	assert_int_equal(leasetab_each_dirty(&t, note_id, &p), TALLY_EDB); /* stopped at 99 */
	assert_int_equal(p - ids, 3);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 1);
	assert_int_equal(ids[2], 99);
	leasetab_unlive(&t, a);
	a->lease.state = LEASE_DONE;
	leasetab_written(&t);
	assert_false(leasetab_dirty(&t));
	assert_null(leasetab_find(&t, 1)); /* freed */
	assert_ptr_equal(leasetab_find(&t, 99), b);
	assert_int_equal(leasetab_count(&t), 2);
	alloc_fail_after(0, 0);
	assert_null(leasetab_add(&t, &stored, &spec, &jb));
	assert_int_equal(leasetab_count(&t), 2);
	leasetab_release(&t);
}

/* Inserts refused for want of memory (the heap's array; the buckets' growth) change nothing,
 * and the lease stays the caller's. */
static void test_insert_enomem(void **state)
{
	struct leasetab t;
	struct llease *l;
	size_t n;
	(void)state;

	alloc_fail_after(0, 0);
	assert_int_equal(leasetab_init(&t), TALLY_ENOMEM);
	assert_int_equal(leasetab_init(&t), TALLY_OK);

	l = new_lease(1, 100, LEASE_ACTIVE);
	alloc_fail_after(0, 0); /* the heap's first array */
	assert_int_equal(leasetab_insert(&t, l), TALLY_ENOMEM);
	assert_null(leasetab_find(&t, 1));
	assert_int_equal(leasetab_count(&t), 0);
	assert_int_equal(leasetab_live(&t), 0);
	assert_int_equal(leasetab_insert(&t, l), TALLY_OK);

	for (int64_t id = 2; leasetab_count(&t) < t.byid.nbuckets; id++)
		assert_int_equal(leasetab_insert(&t, new_lease(id, 100 + id, LEASE_DONE)), TALLY_OK);
	n = leasetab_count(&t);
	l = new_lease(100000, 5, LEASE_ACTIVE);
	alloc_fail_after(0, 1); /* the buckets must grow */
	assert_int_equal(leasetab_insert(&t, l), TALLY_ENOMEM);
	alloc_fail_never();
	assert_int_equal(leasetab_count(&t), n);
	assert_null(leasetab_find(&t, 100000));
	assert_int_equal(leasetab_next_expiry(&t), 100);
	assert_int_equal(leasetab_insert(&t, l), TALLY_OK);
	assert_int_equal(leasetab_next_expiry(&t), 5);
	for (int64_t id = 1; id < (int64_t)n + 1; id++)
		assert_non_null(leasetab_find(&t, id));
	check_live(&t);
	leasetab_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_and_expire_in_order),
		cmocka_unit_test(test_fix_and_shift),
		cmocka_unit_test(test_cancel_job),
		cmocka_unit_test(test_changes_and_lookups),
		cmocka_unit_test(test_insert_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
