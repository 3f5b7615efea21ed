/* The leases the coordinator holds in memory: every one by id, in a chained hash table that
 * doubles as it fills; the live ones (LEASE_ACTIVE) by expiry, in a min-heap (common/heap.h);
 * and the ones changed since the last write, in the order they changed (so that new lease rows
 * append). Ids come from live.c: increasing, with random low bits.
 *
 * Speculation (spec.h) pairs two live leases on the same batches of one job, the original and
 * its copy: each one's twin is the other until either stops being live (taken off the heap,
 * cancelled with its job), which unpairs them.
 *
 * Invariant: a lease is on the heap (heap != HEAP_NONE) exactly while it was inserted live and
 * has not been taken off (leasetab_unlive, leasetab_cancel_job); the heap's first lease expires
 * first.
 *
 * The table owns the leases inserted in it: leasetab_clear() and leasetab_release() free them,
 * leasetab_written() the finished ones, leasetab_remove() hands one back. Pure C, no I/O. Not
 * thread-safe. */
#ifndef TALLY_LEASETAB_H
#define TALLY_LEASETAB_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "heap.h"
#include "htab.h"
#include "job.h"

struct ljob;

/* A lease in memory: the lease, what live.c keeps with it, and the table's links. */
struct llease {
	struct lease lease;
	uint64_t counts[KERNEL_MAX_KEYS]; /* once done */
	int has_counts;
	int64_t finished_at;
	struct ljob *job;      /* live.c's: its job */
	struct llease *twin;   /* the other lease on the same batches (a speculative pair, spec.h)
				* while both are live; NULL otherwise */
	int copy;              /* live.c's: granted as a speculative copy of another lease */
	size_t heap;           /* the table's: index on the expiry heap; HEAP_NONE when not on it */
	struct htab_node hnode; /* the table's: by id */
	int dirty;             /* the table's: changed since the last write */
	struct llease *dnext;  /* the table's: the list of changed leases */
};

struct leasetab {
	struct htab byid;
	struct heap live;
	struct llease *dirty, **dirty_tail;
	size_t pairs; /* live speculative pairs */
};

/* Makes t empty. Returns TALLY_OK, or TALLY_ENOMEM (t then holds nothing to release). */
TALLY_WUR enum tally_err leasetab_init(struct leasetab *t);
/* Frees every lease in t and t's arrays. */
void leasetab_release(struct leasetab *t);
/* Frees every lease in t, keeping its arrays for use again. Can't fail. */
void leasetab_clear(struct leasetab *t);

/* Adds l (its id not in t yet), and puts it on the heap when it is live. Returns TALLY_OK (t
 * owns l then), or TALLY_ENOMEM with t unchanged (the caller still owns l). */
TALLY_WUR enum tally_err leasetab_insert(struct leasetab *t, struct llease *l);
/* Adds a new copy of lease, with spec (its job's: a stored lease has none) and job, as
 * leasetab_insert(). Returns it (the table's), or NULL when out of memory (nothing changes). */
struct llease *leasetab_add(struct leasetab *t, const struct lease *lease,
			    const struct job_spec *spec, struct ljob *job);
/* Takes l out of t (off the heap too): the caller owns it again. Can't fail. */
void leasetab_remove(struct leasetab *t, struct llease *l);
/* Returns lease id (borrowed: until it is removed), or NULL. */
struct llease *leasetab_find(const struct leasetab *t, int64_t id);
/* Returns how many leases t holds, live or not. */
size_t leasetab_count(const struct leasetab *t);

/* Pairs live leases a and b (neither paired): each is the other's twin. Can't fail. */
void leasetab_pair(struct leasetab *t, struct llease *a, struct llease *b);
/* Unpairs l from its twin, if it has one. Can't fail. */
void leasetab_unpair(struct leasetab *t, struct llease *l);
/* Returns how many speculative pairs are live. */
size_t leasetab_pairs(const struct leasetab *t);
/* Takes l off the heap (it is no longer live), if it is on it, and unpairs it. Can't fail. */
void leasetab_unlive(struct leasetab *t, struct llease *l);
/* Restores the heap's order after live lease l's expires_at changed. Can't fail. */
void leasetab_fix(struct leasetab *t, struct llease *l);
/* Adds ms to every live lease's expires_at (one shift for all keeps the order). Can't fail. */
void leasetab_shift(struct leasetab *t, int64_t ms);
/* Returns the live lease that expires first if it expires at or before now (it stays live: the
 * caller ends it), or NULL. */
struct llease *leasetab_expired(const struct leasetab *t, int64_t now);
/* Returns when the first live lease expires, or 0 when none is live. */
int64_t leasetab_next_expiry(const struct leasetab *t);
/* Returns how many leases are live, and the i-th (i < that count; borrowed) in heap order, to
 * walk them all. The order changes when a lease comes, goes or changes its expiry. */
size_t leasetab_live(const struct leasetab *t);
struct llease *leasetab_live_at(const struct leasetab *t, size_t i);
/* Returns worker's first live lease in heap order, or NULL. */
struct llease *leasetab_live_of(const struct leasetab *t, const char *worker);
/* Returns the live lease of job that holds batch b, not a check lease, or NULL. */
struct llease *leasetab_live_holding(const struct leasetab *t, const struct ljob *job, uint64_t b);
/* Cancels every live lease of job at now (in heap order): each is finished, LEASE_CANCELLED, and
 * marked changed. Can't fail. */
void leasetab_cancel_job(struct leasetab *t, const struct ljob *job, int64_t now);

/* Marks l (in t) changed: once until written; the list keeps the order of first changes. */
void leasetab_touch(struct leasetab *t, struct llease *l);
/* Returns 1 when a lease changed since leasetab_written(). */
int leasetab_dirty(const struct leasetab *t);
/* Calls fn(ctx, l) for every changed lease, in order. Returns TALLY_OK, or fn's first other
 * return, at which it stopped. */
TALLY_WUR enum tally_err leasetab_each_dirty(const struct leasetab *t,
					     enum tally_err (*fn)(void *ctx, const struct llease *l),
					     void *ctx);
/* Marks every lease written; finished ones (not live) leave the table and are freed. */
void leasetab_written(struct leasetab *t);

#endif
