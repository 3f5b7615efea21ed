/* Fair share: which job the next lease goes to. Priority first, then an equal share for each
 * owner, then an equal share for each of an owner's jobs: stride scheduling in two tiers, with
 * equal weights and a lease as the quantum.
 *
 * The algorithm. A job is a member of one flow, its (priority, owner), and a flow belongs to the
 * level of its priority. A member is ready while it has work waiting for a lease (the caller
 * says when: fair_set_ready()); a flow is ready while one of its members is. A lease goes to the
 * first ready member that the asking worker can run (the caller's test, eligible()), looking at
 * levels from the highest priority down, within a level at flows by (pass, age), within a flow
 * at members by (pass, id). The lease granted, fair_charge() adds one to its flow's pass and
 * one to its own. Leases are sized to equal time (sched.h), so equal counts of leases are equal
 * shares of worker time: flows of one level that stay ready (and that the workers can all run)
 * get leases within one of each other, and so do the members of one flow. A higher level takes
 * every lease its members can use, and a lower one's running job gives way at its next lease.
 *
 * Virtual time: no credit for being away. Each level keeps vt, the highest pass it has charged,
 * and each flow likewise for its members. A flow (member) that becomes ready after it was not
 * (a new one; one that had no work waiting, or none of whose members had) starts at max(its
 * pass, vt): time away
 * earns nothing, so an owner back from idling competes from then on and cannot take the fleet
 * to catch up (stride scheduling's rule for a client that returns). A flow that stayed ready
 * but was passed over (no worker that asked could run its jobs) is charged from at least
 * vt - FAIR_LAG when it is chosen: it keeps at most FAIR_LAG leases of credit. That is enough
 * for a flow only some workers can run to have those workers while the others serve the rest
 * (max-min fair), and never enough to hold the fleet for long once its workers come.
 *
 * Cost, for n ready members and f ready flows: fair_set_ready() and fair_charge() are heap
 * updates, O(log n + log f); fair_add() and fair_remove() are O(1) expected (a hash of flows)
 * besides the same. fair_pick() looks at the FAIR_LEVELS levels (a constant) and walks the
 * heaps best first (common/heap.h's walk): when the first ready member is eligible it costs
 * O(1); each member or flow it passes over (not eligible for this worker) costs O(log k) more
 * for the k-th. Its worst case, a worker that can run none of the ready jobs, is O(n log n):
 * every ready member is looked at once. `steps` counts comparisons and members looked at, so
 * that tests can show these bounds.
 *
 * Members are the caller's, embedded in its jobs; the structure owns its flows and arrays. Pure
 * C: no I/O, no clock. Not thread-safe. */
#ifndef TALLY_FAIR_H
#define TALLY_FAIR_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "heap.h"
#include "htab.h"
#include "wire.h"

#define FAIR_LEVELS (WIRE_PRIORITY_MAX - WIRE_PRIORITY_MIN + 1) /* one per priority */
#define FAIR_LAG 2 /* leases of credit a flow (member) passed over keeps: see above */

struct fair_flow; /* fair.c's: a (priority, owner) and its ready members */

/* A job's place in the structure, embedded in the job. */
struct fair_member {
	uint64_t pass;
	int64_t id;             /* the lower id wins a tie */
	size_t heap;            /* on its flow's heap of ready members; HEAP_NONE when not ready */
	struct fair_flow *flow; /* NULL while not added */
};

struct fair_level {
	struct heap ready; /* its flows with a ready member, by (pass, age) */
	uint64_t vt;       /* the highest flow pass charged */
	size_t flows;      /* its flows, ready or not (ready's reserved room) */
};

struct fair {
	struct fair_level level[FAIR_LEVELS]; /* by priority - WIRE_PRIORITY_MIN */
	struct htab flows;                    /* by (priority, owner); flows.n of them */
	size_t members;
	uint64_t seq;       /* flows made so far: a flow's age */
	size_t *scratch;    /* the walks' frontiers: flows in [0, cap), members in [cap, 2 cap) */
	size_t scratch_cap; /* at least flows.n and members */
	uint64_t steps;     /* comparisons made and members looked at, ever: a measure of cost */
};

/* Makes f empty. Allocates nothing; can't fail. */
void fair_init(struct fair *f);
/* Frees f's flows and arrays and leaves it empty (members are the caller's: they are not
 * touched, so add them again before using them). Can't fail. */
void fair_release(struct fair *f);

/* Adds m (not added yet; not ready) for job id of owner ("" for none) at priority (clamped to
 * WIRE_PRIORITY_MIN..MAX). Returns TALLY_OK, or TALLY_ENOMEM with nothing changed. */
TALLY_WUR enum tally_err fair_add(struct fair *f, struct fair_member *m, int64_t id, int priority,
				  const char *owner);
/* Takes m out (ready or not); its flow goes with its last member. Can't fail. */
void fair_remove(struct fair *f, struct fair_member *m);
/* Says whether m (added) has work waiting for a lease. Can't fail. */
void fair_set_ready(struct fair *f, struct fair_member *m, int ready);
/* Returns 1 when m is ready. */
int fair_is_ready(const struct fair_member *m);
/* Returns the ready member a lease goes to: the first, in the order above, for which
 * eligible(ctx, m) returns non-zero; NULL when there is none. Changes nothing but steps: charge
 * the member once its lease is granted. eligible must not change f. */
struct fair_member *fair_pick(struct fair *f, int (*eligible)(void *ctx, struct fair_member *m),
			      void *ctx);
/* Charges m (added) and its flow for one lease. Can't fail. */
void fair_charge(struct fair *f, struct fair_member *m);

/* A ready flow's place in its level, for GET /metrics. lead is its pass minus its level's vt:
 * how many leases it is ahead of (positive) or behind (negative) its priority's virtual time.
 * The next lease of a level goes to its flow with the lowest lead (the older on a tie) that the
 * asking worker can run; a flow that just became ready starts at 0 or more. */
struct fair_flow_info {
	const char *owner; /* borrowed for the call */
	int priority;
	int64_t lead;
	size_t ready; /* its ready members */
};
/* Calls fn(ctx, info) for every flow with a ready member, in no order. O(flows). */
void fair_each_ready(const struct fair *f,
		     void (*fn)(void *ctx, const struct fair_flow_info *info), void *ctx);

#endif
