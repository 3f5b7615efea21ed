/* Inside the coordinator: struct coord and the helpers its files share. coord.c has its
 * life (creation, loading, durability through server/wb.h), the jobs and what it reports;
 * coord_leases.c has the leases (grant, heartbeat, complete with verification, fail, expiry);
 * coord_retain.c deletes finished jobs (DELETE and retention). Included by those files only. */
#ifndef TALLY_COORD_INT_H
#define TALLY_COORD_INT_H

#include "coord.h"

struct coord {
	struct db *db;
	struct live *live;
	struct wb *wb;
	struct sched *sched;
	struct workers *workers;
	struct history *history;
	struct offers *offers;
	struct coord_config cfg;
	struct coord_clock clock;
	struct coord_hooks hooks;
	const struct lease_request *sizing; /* the request being sized, during coord_lease */
	uint64_t changes;                   /* changes whose replies wait for a flush */
	struct coord_metrics counted;       /* the counters of coord_metrics(), since the start */
};

/* Tells the HTTP layer that new work may be leasable (its long polls wake). */
void coord_wake(struct coord *c);
/* Tells the HTTP layer that a job finished or was cancelled. */
void coord_job_ended(struct coord *c);
/* Tells the HTTP layer when the next lease may expire, so that long polls wake to take it. */
void coord_tell_expiry(struct coord *c);
/* A reply that reports state must not get ahead of the store: while changes are uncommitted,
 * it waits for the flush like a reply reporting a change of its own (c->changes moves). */
void coord_reported(struct coord *c);

#endif
