/* A binary min-heap of pointers, after beanstalkd's heap.c: the caller gives the order (less)
 * and a callback (setpos) through which each item learns its index, so that an item can be
 * removed or moved after its key changed in O(log n) without a search. Items are borrowed: the
 * heap never frees them. Pure C. Not thread-safe.
 *
 * Invariant: for every index i > 0, !less(items[i], items[(i - 1) / 2]), and setpos was last
 * called with i for items[i]. An item that leaves the heap gets setpos(item, HEAP_NONE). */
#ifndef TALLY_HEAP_H
#define TALLY_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define HEAP_NONE SIZE_MAX /* the position of an item that is on no heap */

struct heap {
	void **items;
	size_t len, cap;
	int (*less)(const void *a, const void *b); /* 1 when a comes before b */
	void (*setpos)(void *item, size_t pos);
};

/* Makes h an empty heap ordered by less. Allocates nothing; can't fail. */
void heap_init(struct heap *h, int (*less)(const void *a, const void *b),
	       void (*setpos)(void *item, size_t pos));
/* Frees h's array (not the items) and leaves it empty, ready for use again. */
void heap_release(struct heap *h);
/* Forgets every item without telling them (for when they were freed), keeping the array.
 * Can't fail. */
void heap_clear(struct heap *h);

/* Makes room for n items in all, so that pushes up to that many cannot fail. Returns TALLY_OK,
 * or TALLY_ENOMEM with h unchanged. */
TALLY_WUR enum tally_err heap_reserve(struct heap *h, size_t n);
/* Adds item. Returns TALLY_OK, or TALLY_ENOMEM with h unchanged (never while heap_len() is below
 * what heap_reserve() made room for). */
TALLY_WUR enum tally_err heap_push(struct heap *h, void *item);
/* Removes and returns the item at pos (< heap_len()). Can't fail. */
void *heap_remove(struct heap *h, size_t pos);
/* Restores the order after the key of the item at pos changed, either way. Can't fail. */
void heap_fix(struct heap *h, size_t pos);
/* Returns the first item (borrowed), or NULL when h is empty. */
void *heap_peek(const struct heap *h);
/* Returns how many items h holds. */
size_t heap_len(const struct heap *h);
/* Returns the item at index i (< heap_len()), borrowed: to walk every item, in array order. */
void *heap_at(const struct heap *h, size_t i);
/* Restores the order of every item, after keys changed in ways heap_fix() cannot follow one by
 * one. Can't fail. */
void heap_heapify(struct heap *h);
/* Keeps the items for which keep(ctx, item) returns non-zero, in array order, and removes the
 * others (they get HEAP_NONE), then heapifies. keep may change the items it drops. Can't fail. */
void heap_retain(struct heap *h, int (*keep)(void *ctx, void *item), void *ctx);

/* A walk over a heap's items in order, best first, that leaves the heap as it is: to find the
 * first item that passes a test when the best ones may not. Its frontier (the items whose parent
 * was returned) is a heap of indices in the caller's scratch array, so the k-th step costs
 * O(log k) comparisons and a walk that stops at the first item O(1). The heap must not change
 * while it is walked. */
struct heap_walk {
	const struct heap *h;
	size_t *open; /* the frontier: indices into h's items, as a min-heap in h's order */
	size_t n;
};

/* Starts a walk of h. scratch has room for heap_len(h) indices (a walk never holds more) and is
 * the walk's until it ends. Can't fail. */
void heap_walk_init(struct heap_walk *w, const struct heap *h, size_t *scratch);
/* Returns the next item in h's order (borrowed), or NULL when every item has been returned.
 * Items that compare equal come in no set order. Can't fail. */
void *heap_walk_next(struct heap_walk *w);

#endif
