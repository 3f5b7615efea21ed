/* The worker registry: every worker the coordinator has heard from (by name), when it last did,
 * and how many live leases it holds. In memory only: after a restart it fills again as workers
 * call. Bounded at WORKERS_MAX names; past that the one heard from longest ago is forgotten.
 * Pure C: times come in as arguments. Not thread-safe. */
#ifndef TALLY_WORKERS_H
#define TALLY_WORKERS_H

#include <stddef.h>
#include <stdint.h>
#include "job.h"

#define WORKERS_MAX 16384

struct workers;

/* What a worker is to the coordinator, as GET /v1/workers and GET /metrics name it. */
enum worker_state {
	WORKER_ACTIVE,      /* it holds a lease */
	WORKER_IDLE,        /* heard from within the lease timeout */
	WORKER_LOST,        /* not heard from since */
	WORKER_QUARANTINED, /* caught by a check (its reason says how) */
};
#define WORKER_STATES 4

/* Returns the state's name ("active", "idle", "lost", "quarantined"). Static; can't fail. */
const char *worker_state_name(enum worker_state s);

struct worker_info {
	const char *name;
	int64_t first_seen;
	int64_t last_seen;
	unsigned leases;    /* live leases it holds */
	int64_t lease_id;   /* the latest granted of them, 0 when none */
};

/* Returns a new, empty registry, or NULL when out of memory. */
struct workers *workers_new(void);
void workers_free(struct workers *ws);
/* Returns 1 when worker name is in the registry. */
int workers_known(const struct workers *ws, const char *name);
/* Records a call from worker name at now. */
void workers_seen(struct workers *ws, const char *name, int64_t now);
/* Lease counts are recounted from the live leases when asked for: workers_reset_leases, then
 * workers_holds for each live lease (the latest granted is the one shown). */
void workers_reset_leases(struct workers *ws);
void workers_holds(struct workers *ws, const char *name, int64_t lease_id, int64_t granted_at);
/* Calls each(ctx, info) for every worker, in no particular order; stops at a non-zero return. */
void workers_each(const struct workers *ws, int (*each)(void *ctx, const struct worker_info *w),
		  void *ctx);

#endif
