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

static int less_at(const struct heap *h, size_t a, size_t b)
{
	return h->less(h->items[a], h->items[b]);
}

static void swap(struct heap *h, size_t a, size_t b)
{
	void *t = h->items[a];
	set(h, a, h->items[b]);
	set(h, b, t);
}

static void sift_down(struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->len && less_at(h, l, m))
			m = l;
		if (r < h->len && less_at(h, r, m))
			m = r;
		if (m == i)
			break;
		swap(h, i, m);
		i = m;
	}
}

void heap_fix(struct heap *h, size_t pos)
{
	while (pos > 0 && less_at(h, pos, (pos - 1) / 2)) {
		swap(h, pos, (pos - 1) / 2);
		pos = (pos - 1) / 2;
	}
	sift_down(h, pos);
}

enum tally_err heap_push(struct heap *h, void *item)
{
	if (h->len == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : HEAP_CAP_MIN;
		void **n = t_realloc(h->items, cap * sizeof *n);
		if (!n)
			return TALLY_ENOMEM;
		h->items = n;
		h->cap = cap;
	}
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
	for (size_t i = h->len / 2; i-- > 0;) /* sift each parent down, the last first */
		sift_down(h, i);
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
