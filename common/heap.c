/* The binary min-heap of heap.h: an array of item pointers in heap order, each move told to its
 * item through setpos. */
#include <stdlib.h>
#include "alloc.h"
#include "heap.h"

#define HEAP_CAP_MIN 64

void heap_init(struct heap *h, int (*less)(const void *a, const void *b),
	       void (*setpos)(void *item, size_t pos))
{
	h->items = NULL;
	h->len = h->cap = 0;
	h->less = less;
	h->setpos = setpos;
}

void heap_release(struct heap *h)
{
	free(h->items);
	h->items = NULL;
	h->len = h->cap = 0;
}

void heap_clear(struct heap *h)
{
	h->len = 0;
}

static void set(struct heap *h, size_t i, void *item)
{
	h->items[i] = item;
	h->setpos(item, i);
}

/* The two arrays in heap order here, a heap's items and a walk's frontier, share their sifts:
 * each gives its order and its swap over indices. */
struct sift {
	void *arr;
	size_t len;
	int (*less)(const void *arr, size_t a, size_t b);
	void (*swap)(void *arr, size_t a, size_t b);
};

static size_t sift_up(const struct sift *s, size_t i)
{
	while (i > 0 && s->less(s->arr, i, (i - 1) / 2)) {
		s->swap(s->arr, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return i;
}

static void sift_down(const struct sift *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->len && s->less(s->arr, l, m))
			m = l;
		if (r < s->len && s->less(s->arr, r, m))
			m = r;
		if (m == i)
			break;
		s->swap(s->arr, i, m);
		i = m;
	}
}

static int less_at(const void *arr, size_t a, size_t b)
{
	const struct heap *h = arr;
	return h->less(h->items[a], h->items[b]);
}

static void swap(void *arr, size_t a, size_t b)
{
	struct heap *h = arr;
	void *t = h->items[a];
	set(h, a, h->items[b]);
	set(h, b, t);
}

static struct sift heap_sift(struct heap *h)
{
	struct sift s = { h, h->len, less_at, swap };
	return s;
}

void heap_fix(struct heap *h, size_t pos)
{
	struct sift s = heap_sift(h);
	sift_down(&s, sift_up(&s, pos));
}

enum tally_err heap_reserve(struct heap *h, size_t n)
{
	size_t cap = h->cap ? h->cap : HEAP_CAP_MIN;
	void **items;

	if (n <= h->cap)
		return TALLY_OK;
	while (cap < n)
		cap *= 2;
	if (!(items = t_realloc(h->items, cap * sizeof *items)))
		return TALLY_ENOMEM;
	h->items = items;
	h->cap = cap;
	return TALLY_OK;
}

enum tally_err heap_push(struct heap *h, void *item)
{
	if (h->len == h->cap && heap_reserve(h, h->len + 1))
		return TALLY_ENOMEM;
	set(h, h->len, item);
	heap_fix(h, h->len++);
	return TALLY_OK;
}

void *heap_remove(struct heap *h, size_t pos)
{
	void *item = h->items[pos];
	h->setpos(item, HEAP_NONE);
	if (pos != --h->len) {
		set(h, pos, h->items[h->len]);
		heap_fix(h, pos);
	}
	return item;
}

void *heap_peek(const struct heap *h)
{
	return h->len ? h->items[0] : NULL;
}

size_t heap_len(const struct heap *h)
{
	return h->len;
}

void *heap_at(const struct heap *h, size_t i)
{
	return h->items[i];
}

void heap_heapify(struct heap *h)
{
	struct sift s = heap_sift(h);
	for (size_t i = h->len / 2; i-- > 0;) /* sift each parent down, the last first */
		sift_down(&s, i);
}

void heap_retain(struct heap *h, int (*keep)(void *ctx, void *item), void *ctx)
{
	size_t kept = 0;
	for (size_t i = 0; i < h->len; i++) {
		void *item = h->items[i];
		if (keep(ctx, item)) {
			set(h, kept++, item);
			continue;
		}
		h->setpos(item, HEAP_NONE);
	}
	h->len = kept;
	heap_heapify(h);
}

/* --- walks ---------------------------------------------------------------------------------- */

/* 1 when frontier entry a comes before entry b: by their items' order in the heap. */
static int walk_less(const void *arr, size_t a, size_t b)
{
	const struct heap_walk *w = arr;
	return w->h->less(w->h->items[w->open[a]], w->h->items[w->open[b]]);
}

static void walk_swap(void *arr, size_t a, size_t b)
{
	struct heap_walk *w = arr;
	size_t t = w->open[a];
	w->open[a] = w->open[b];
	w->open[b] = t;
}

static struct sift walk_sift(struct heap_walk *w)
{
	struct sift s = { w, w->n, walk_less, walk_swap };
	return s;
}

/* Adds the heap's index i to the frontier. */
static void walk_push(struct heap_walk *w, size_t i)
{
	struct sift s;
	w->open[w->n++] = i;
	s = walk_sift(w);
	sift_up(&s, w->n - 1);
}

void heap_walk_init(struct heap_walk *w, const struct heap *h, size_t *scratch)
{
	w->h = h;
	w->open = scratch;
	w->n = 0;
	if (h->len)
		walk_push(w, 0);
}

void *heap_walk_next(struct heap_walk *w)
{
	struct sift s;
	size_t top;

	if (!w->n)
		return NULL;
	top = w->open[0];
	w->open[0] = w->open[--w->n];
	s = walk_sift(w);
	sift_down(&s, 0);
	/* Its children come next: every item before them in order has been returned or is open. */
	if (2 * top + 1 < w->h->len)
		walk_push(w, 2 * top + 1);
	if (2 * top + 2 < w->h->len)
		walk_push(w, 2 * top + 2);
	return w->h->items[top];
}
