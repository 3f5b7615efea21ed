/* The chained hash table: every item found under its hash and only there, through growth;
 * removals from the middle of a chain; items that share a hash; and a reserve refused for want
 * of memory leaving the table as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "alloc.h"
#include "htab.h"

#define N 5000

struct item {
	struct htab_node node; /* first */
	int64_t key;
	int in;
};

static struct item *find(const struct htab *t, int64_t key)
{
	for (struct htab_node *e = htab_first(t, htab_hash_int((uint64_t)key)); e;
	     e = htab_next(e))
		if (((struct item *)e)->key == key)
			return (struct item *)e;
	return NULL;
}

static void check(const struct htab *t, struct item *items, size_t n)
{
	size_t in = 0;
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(find(t, items[i].key), items[i].in ? &items[i] : NULL);
		in += (size_t)items[i].in;
	}
	assert_int_equal(t->n, in);
	assert_null(find(t, -1));
}

static void test_insert_find_remove(void **state)
{
	static struct item items[N];
	struct htab t;
	(void)state;

	htab_init(&t);
	assert_null(htab_first(&t, 7)); /* no buckets yet */
	for (size_t i = 0; i < N; i++) {
		items[i].key = (int64_t)i * 3;
		assert_int_equal(htab_reserve(&t, t.n + 1), TALLY_OK);
		htab_insert(&t, &items[i].node, htab_hash_int((uint64_t)items[i].key));
		items[i].in = 1;
	}
	assert_true(t.nbuckets >= N);
	check(&t, items, N);
	for (size_t i = 0; i < N; i += 3) {
		htab_remove(&t, &items[i].node);
		items[i].in = 0;
	}
	check(&t, items, N);
	htab_release(&t);
	assert_int_equal(t.n, 0);
}

/* Items under one hash: each found by walking the hash's nodes; others' chains skipped. */
static void test_shared_hash(void **state)
{
	struct item a = { .key = 1 }, b = { .key = 2 }, c = { .key = 3 };
	struct htab t;
	struct htab_node *e;
	int seen = 0;
	(void)state;

	htab_init(&t);
	assert_int_equal(htab_reserve(&t, 1), TALLY_OK);
	htab_insert(&t, &a.node, 42);
	htab_insert(&t, &b.node, 42 + t.nbuckets); /* same bucket, other hash */
	htab_insert(&t, &c.node, 42);
	for (e = htab_first(&t, 42); e; e = htab_next(e))
		seen |= 1 << ((struct item *)e)->key;
	assert_int_equal(seen, (1 << 1) | (1 << 3));
	htab_remove(&t, &c.node);
	assert_ptr_equal(htab_first(&t, 42), &a.node);
	assert_null(htab_next(&a.node));
	assert_ptr_equal(htab_first(&t, 42 + t.nbuckets), &b.node);
	htab_release(&t);
}

static void test_reserve_enomem(void **state)
{
	static struct item items[100];
	struct htab t;
	size_t nb;
	(void)state;

	htab_init(&t);
	alloc_fail_after(0, 0);
	assert_int_equal(htab_reserve(&t, 1), TALLY_ENOMEM);
	assert_int_equal(t.nbuckets, 0);
	for (size_t i = 0; i < 100; i++) {
		items[i].key = (int64_t)i;
		items[i].in = 1;
		assert_int_equal(htab_reserve(&t, t.n + 1), TALLY_OK);
		htab_insert(&t, &items[i].node, htab_hash_int(i));
	}
	nb = t.nbuckets;
	alloc_fail_after(0, 0);
	assert_int_equal(htab_reserve(&t, nb + 1), TALLY_ENOMEM);
	assert_int_equal(t.nbuckets, nb);
	check(&t, items, 100);
	alloc_fail_after(0, 0);
	assert_int_equal(htab_reserve(&t, nb), TALLY_OK); /* room enough: no allocation */
	alloc_fail_never();
	htab_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove),
		cmocka_unit_test(test_shared_hash),
		cmocka_unit_test(test_reserve_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
