/* The binary min-heap, as beanstalkd's testheap.c tests its own: items pushed in random order pop
 * in order, removal from the middle and a fix after a key change either way keep the order and
 * every item's position, and a push refused for want of memory leaves the heap as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "alloc.h"
#include "heap.h"
#include "rng.h"

#define N 1000

struct item {
	int64_t key;
	size_t pos;
};

static int item_less(const void *a, const void *b)
{
	return ((const struct item *)a)->key < ((const struct item *)b)->key;
}

static void item_setpos(void *item, size_t pos)
{
	((struct item *)item)->pos = pos;
}

/* Checks the heap order and that every item knows its index. */
static void check_heap(const struct heap *h)
{
	for (size_t i = 0; i < heap_len(h); i++) {
		const struct item *it = heap_at(h, i);
		assert_int_equal(it->pos, i);
		if (i > 0)
			assert_false(item_less(it, heap_at(h, (i - 1) / 2)));
	}
}

static void fill(struct heap *h, struct item *items, size_t n, uint64_t seed)
{
	heap_init(h, item_less, item_setpos);
	for (size_t i = 0; i < n; i++) {
		items[i].key = (int64_t)(rng_splitmix64(&seed) % 500); /* with repeats */
		items[i].pos = HEAP_NONE;
		assert_int_equal(heap_push(h, &items[i]), TALLY_OK);
	}
	assert_int_equal(heap_len(h), n);
	check_heap(h);
}

/* Pops come out in ascending order, whatever the order of the pushes. */
/* heap_remove of the root: what a pop is. */
static void *pop(struct heap *h)
{
	return heap_len(h) ? heap_remove(h, 0) : NULL;
}

static void test_pops_in_order(void **state)
{
	static struct item items[N];
	struct heap h;
	int64_t last = -1;
	(void)state;

	heap_init(&h, item_less, item_setpos);
	assert_null(heap_peek(&h));
	assert_null(pop(&h));
	fill(&h, items, N, 1);
	for (size_t i = 0; i < N; i++) {
		struct item *top = heap_peek(&h), *it = pop(&h);
		assert_ptr_equal(top, it);
		assert_true(it->key >= last);
		assert_int_equal(it->pos, HEAP_NONE);
		last = it->key;
	}
	assert_int_equal(heap_len(&h), 0);
	assert_null(pop(&h));
	heap_release(&h);
}

/* One push after another of keys that only fall: each becomes the first. */
static void test_push_new_minimum(void **state)
{
	struct item items[10];
	struct heap h;
	(void)state;

	heap_init(&h, item_less, item_setpos);
	for (int i = 0; i < 10; i++) {
		items[i].key = 100 - i;
		assert_int_equal(heap_push(&h, &items[i]), TALLY_OK);
		assert_ptr_equal(heap_peek(&h), &items[i]);
		check_heap(&h);
	}
	heap_release(&h);
}

/* Removing items from anywhere, found by their own position, keeps the order. */
static void test_remove_from_the_middle(void **state)
{
	static struct item items[N];
	struct heap h;
	int64_t last = -1;
	(void)state;

	fill(&h, items, N, 2);
	for (size_t i = 0; i < N; i += 3) {
		assert_ptr_equal(heap_remove(&h, items[i].pos), &items[i]);
		assert_int_equal(items[i].pos, HEAP_NONE);
		check_heap(&h);
	}
	assert_int_equal(heap_len(&h), N - (N + 2) / 3);
	while (heap_len(&h)) {
		struct item *it = pop(&h);
		assert_true(it->key >= last);
		assert_true((it - items) % 3 != 0);
		last = it->key;
	}
	heap_release(&h);
}

/* A key moved down (toward the top) or up (toward the leaves), then fixed in place. */
static void test_fix_after_key_change(void **state)
{
	static struct item items[N];
	struct heap h;
	uint64_t seed = 3;
	(void)state;

	fill(&h, items, N, 4);
	for (int round = 0; round < 2000; round++) {
		struct item *it = &items[rng_splitmix64(&seed) % N];
		if (round % 2)
			it->key -= (int64_t)(rng_splitmix64(&seed) % 300);
		else
			it->key += (int64_t)(rng_splitmix64(&seed) % 300);
		heap_fix(&h, it->pos);
		check_heap(&h);
	}
	items[N / 2].key = -1000000;
	heap_fix(&h, items[N / 2].pos);
	assert_ptr_equal(heap_peek(&h), &items[N / 2]);
	heap_release(&h);
}

static int keep_odd(void *ctx, void *item)
{
	const struct item *base = ctx, *it = item;
	return (it - base) % 2;
}

/* Retaining some items, and heapify after every key changed at once. */
static void test_retain_and_heapify(void **state)
{
	static struct item items[N];
	struct heap h;
	uint64_t seed = 5;
	(void)state;

	fill(&h, items, N, 6);
	heap_retain(&h, keep_odd, items);
	assert_int_equal(heap_len(&h), N / 2);
	check_heap(&h);
	for (size_t i = 0; i < N; i += 2)
		assert_int_equal(items[i].pos, HEAP_NONE);
	for (size_t i = 1; i < N; i += 2)
		items[i].key = (int64_t)(rng_splitmix64(&seed) % 500);
	heap_heapify(&h);
	check_heap(&h);
	heap_release(&h);
	assert_int_equal(heap_len(&h), 0);
}

/* A push that needs more room and cannot have it leaves the heap as it was. */
static void test_push_enomem(void **state)
{
	static struct item items[N];
	struct item more = { -1, HEAP_NONE };
	struct heap h;
	size_t n = 0;
	(void)state;

	heap_init(&h, item_less, item_setpos);
	alloc_fail_after(0, 0);
	assert_int_equal(heap_push(&h, &items[0]), TALLY_ENOMEM); /* the first array */
	alloc_fail_never();
	assert_int_equal(heap_len(&h), 0);
	assert_null(heap_peek(&h));
	heap_release(&h);

	fill(&h, items, 10, 7);
	alloc_fail_after(0, 1); /* every allocation from now on: pushes go on while there is room */
	for (n = 10; n < N; n++) {
		items[n].key = 1000 + (int64_t)n;
		items[n].pos = HEAP_NONE;
		if (heap_push(&h, &items[n]))
			break;
	}
	alloc_fail_never();
	assert_true(n < N);
	assert_int_equal(heap_len(&h), n);
	assert_int_equal(items[n].pos, HEAP_NONE);
	check_heap(&h);
	assert_int_equal(heap_push(&h, &more), TALLY_OK); /* and it grows when it can */
	assert_ptr_equal(heap_peek(&h), &more);
	assert_int_equal(heap_len(&h), n + 1);
	check_heap(&h);
	heap_release(&h);
}

/* A walk returns every item once, in order, and leaves the heap as it was; its frontier never
 * needs more room than the heap's length; a walk of an empty heap returns nothing. */
static void test_walk_in_order(void **state)
{
	static struct item items[N];
	static size_t scratch[N];
	static unsigned char seen[N];
	struct heap h;
	struct heap_walk w;
	struct item *it;
	int64_t last = -1;
	size_t n = 0;
	(void)state;

	heap_init(&h, item_less, item_setpos);
	heap_walk_init(&w, &h, scratch);
	assert_null(heap_walk_next(&w));
	fill(&h, items, N, 6);
	for (size_t i = 0; i < N / 2; i++) /* the walk starts from a heap that has changed */
		pop(&h);
	memset(seen, 0, sizeof seen);
	heap_walk_init(&w, &h, scratch);
	while ((it = heap_walk_next(&w))) {
		assert_true(it->key >= last);
		assert_true(w.n <= heap_len(&h));
		assert_false(seen[it - items]++);
		assert_ptr_equal(heap_at(&h, it->pos), it);
		last = it->key;
		n++;
	}
	assert_int_equal(n, N / 2);
	assert_null(heap_walk_next(&w));
	check_heap(&h);
	/* Stopping early: the first item is the heap's first. */
	heap_walk_init(&w, &h, scratch);
	assert_ptr_equal(heap_walk_next(&w), heap_peek(&h));
	heap_release(&h);
}

/* Room reserved: pushes up to it need no allocation; past it, the heap grows again. */
static void test_reserve(void **state)
{
	static struct item items[N];
	struct heap h;
	(void)state;

	heap_init(&h, item_less, item_setpos);
	alloc_fail_after(0, 1);
	assert_int_equal(heap_reserve(&h, 0), TALLY_OK); /* nothing to make room for */
	assert_int_equal(heap_reserve(&h, 100), TALLY_ENOMEM);
	alloc_fail_never();
	assert_int_equal(heap_reserve(&h, 100), TALLY_OK);
	alloc_fail_after(0, 1);
	assert_int_equal(heap_reserve(&h, 50), TALLY_OK); /* less than there is */
	assert_true(h.cap >= 100 && h.cap < N);
	for (size_t i = 0; i < h.cap; i++) {
		items[i].key = N - (int64_t)i;
		assert_int_equal(heap_push(&h, &items[i]), TALLY_OK);
	}
	assert_int_equal(heap_push(&h, &items[h.cap]), TALLY_ENOMEM);
	alloc_fail_never();
	assert_int_equal(heap_len(&h), h.cap);
	assert_ptr_equal(heap_peek(&h), &items[h.cap - 1]);
	check_heap(&h);
	heap_release(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pops_in_order),
		cmocka_unit_test(test_push_new_minimum),
		cmocka_unit_test(test_remove_from_the_middle),
		cmocka_unit_test(test_fix_after_key_change),
		cmocka_unit_test(test_retain_and_heapify),
		cmocka_unit_test(test_push_enomem),
		cmocka_unit_test(test_walk_in_order),
		cmocka_unit_test(test_reserve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
