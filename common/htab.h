/* A chained hash table of nodes embedded in the caller's structs, after the kernel's hlist: a
 * node keeps its hash, so the table grows without knowing keys, and a lookup walks the nodes of
 * one hash, leaving the key comparison to the caller. Items are borrowed: the table never frees
 * them. Lookups, inserts and removals are O(1) expected while the caller keeps room for its
 * items (htab_reserve()). Pure C. Not thread-safe.
 *
 *     for (struct htab_node *n = htab_first(&t, h); n; n = htab_next(n))
 *             if (same key as container_of(n)) ...
 */
#ifndef TALLY_HTAB_H
#define TALLY_HTAB_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

struct htab_node {
	struct htab_node *next;
	uint64_t hash;
};

struct htab {
	struct htab_node **bucket; /* nbuckets chains: 0, or a power of two */
	size_t nbuckets, n;
};

/* Makes t empty. Allocates nothing; can't fail. */
void htab_init(struct htab *t);
/* Frees t's buckets (not the items) and leaves it empty. Can't fail. */
void htab_release(struct htab *t);
/* Forgets every node without telling them (for when they were freed), keeping the buckets.
 * Can't fail. */
void htab_clear(struct htab *t);
/* Makes room for n items in all (at most one a bucket), growing the buckets. Returns TALLY_OK,
 * or TALLY_ENOMEM with t unchanged. */
TALLY_WUR enum tally_err htab_reserve(struct htab *t, size_t n);
/* Adds node (in no table) under hash. There must be buckets: reserve first. Can't fail. */
void htab_insert(struct htab *t, struct htab_node *node, uint64_t hash);
/* Takes node (in t) out. Can't fail. */
void htab_remove(struct htab *t, struct htab_node *node);
/* Returns the first node under hash, or NULL; htab_next() the next one under the same hash. */
struct htab_node *htab_first(const struct htab *t, uint64_t hash);
struct htab_node *htab_next(const struct htab_node *node);

/* The hash of an integer key: the golden-ratio multiply spreads consecutive ids. */
static inline uint64_t htab_hash_int(uint64_t v)
{
	v *= 0x9e3779b97f4a7c15ULL;
	return v ^ (v >> 32);
}

#endif
