/* A job's free ranges: batches it handed out once that came back (their lease failed, expired,
 * was cancelled or discarded) and wait to be leased again before any fresh batch. Each range
 * carries the failure history of its batches (struct batch_range: failed leases, strikes).
 *
 * Invariant: ranges are sorted by first batch, do not overlap, and two adjacent ones differ in
 * their history (give-backs merge with a neighbour of the same history).
 *
 * The poison rule: a range whose batches were in f failed leases is leased at most count >> f
 * at a time (at least one), so each failure halves the leases around a bad batch until it is
 * leased alone, and a failure then names it.
 *
 * Pure C, no I/O. Not thread-safe. */
#ifndef TALLY_RANGES_H
#define TALLY_RANGES_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "job.h"

struct ranges {
	struct batch_range *range; /* n of them in order (NULL while none was ever given back) */
	size_t n, cap;
};

/* Makes rs empty. Allocates nothing; can't fail. */
void ranges_init(struct ranges *rs);
/* Frees rs's array and leaves it empty. */
void ranges_release(struct ranges *rs);
/* Forgets every range, keeping the array. Can't fail. */
void ranges_clear(struct ranges *rs);

/* Adds batches [first, first + count) (count > 0, overlapping no range) with their history,
 * merging with a neighbour that has the same. Also how ranges are loaded from the store.
 * Returns TALLY_OK, or TALLY_ENOMEM with rs unchanged. */
TALLY_WUR enum tally_err ranges_give_back(struct ranges *rs, uint64_t first, uint64_t count,
					  unsigned failures, unsigned strikes);
/* Returns 0 when rs is empty; otherwise 1, with *out set to the grant the front range allows
 * for a lease of at most want batches (want >= 1): its first batch, a count of at most want
 * that the poison rule may cut, and the range's history. Takes nothing: see ranges_take(). */
int ranges_front(const struct ranges *rs, uint64_t want, struct batch_range *out);
/* Takes count batches (1 to the front range's count) off the front range. Can't fail. */
void ranges_take(struct ranges *rs, uint64_t count);

#endif
