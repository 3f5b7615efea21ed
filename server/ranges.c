/* A job's free batch ranges (ranges.h): a sorted array, searched by bisection, merged on every
 * give-back and taken from the front. */
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "ranges.h"

#define RANGES_CAP_MIN 8

void ranges_init(struct ranges *rs)
{
	rs->range = NULL;
	rs->n = rs->cap = 0;
}

void ranges_release(struct ranges *rs)
{
	free(rs->range);
	ranges_init(rs);
}

void ranges_clear(struct ranges *rs)
{
	rs->n = 0;
}

static int same_history(const struct batch_range *r, unsigned failures, unsigned strikes)
{
	return r->failures == failures && r->strikes == strikes;
}

enum tally_err ranges_give_back(struct ranges *rs, uint64_t first, uint64_t count,
				unsigned failures, unsigned strikes)
{
	struct batch_range *a = rs->range, *r;
	size_t lo = 0, hi = rs->n;

	while (lo < hi) { /* the first range starting after `first` */
		size_t mid = (lo + hi) / 2;
		if (a[mid].first < first)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && a[lo - 1].first + a[lo - 1].count == first &&
	    same_history(&a[lo - 1], failures, strikes)) {
		r = &a[lo - 1];
		r->count += count;
		if (lo < rs->n && r->first + r->count == a[lo].first &&
		    same_history(&a[lo], failures, strikes)) {
			r->count += a[lo].count;
			memmove(&a[lo], &a[lo + 1], (rs->n - lo - 1) * sizeof *a);
			rs->n--;
		}
		return TALLY_OK;
	}
	if (lo < rs->n && first + count == a[lo].first && same_history(&a[lo], failures, strikes)) {
		a[lo].first = first;
		a[lo].count += count;
		return TALLY_OK;
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : RANGES_CAP_MIN;
		if (!(a = t_realloc(rs->range, cap * sizeof *a)))
			return TALLY_ENOMEM;
		rs->range = a;
		rs->cap = cap;
	}
	memmove(&a[lo + 1], &a[lo], (rs->n - lo) * sizeof *a);
	a[lo] = (struct batch_range){ first, count, failures, strikes };
	rs->n++;
	return TALLY_OK;
}

int ranges_front(const struct ranges *rs, uint64_t want, struct batch_range *out)
{
	const struct batch_range *r = rs->range;
	uint64_t take = want;

	if (!rs->n)
		return 0;
	if (take > r->count)
		take = r->count;
	if (r->failures) {
		/* Halved by each failure, down to one batch, which a failure then names. */
		unsigned f = r->failures;
		uint64_t cap = f < 64 ? r->count >> f : 0;
		if (take > cap)
			take = cap ? cap : 1;
	}
	*out = (struct batch_range){ r->first, take, r->failures, r->strikes };
	return 1;
}

void ranges_take(struct ranges *rs, uint64_t count)
{
	struct batch_range *r = rs->range;
	if (count == r->count) {
		memmove(&r[0], &r[1], (rs->n - 1) * sizeof *r);
		rs->n--;
	} else {
		r->first += count;
		r->count -= count;
	}
}
