/* Inside the coordinator: struct coord and the helpers its files share. coord.c has its
 * life (creation, loading, durability through server/wb.h), the jobs and what it reports;
 * coord_leases.c has the leases (grant, heartbeat, complete with verification, fail, expiry);
 * coord_retain.c deletes finished jobs (DELETE and retention); coord_quota.c has the quotas and
 * the jobs by owner. Included by those files only. */
#ifndef TALLY_COORD_INT_H
#define TALLY_COORD_INT_H

#include "coord.h"
#include "siphash.h"

struct coord {
	struct db *db;
	struct live *live;
	struct wb *wb;
	struct sched *sched;
	struct workers *workers;
	struct history *history;
	struct offers *offers;
	struct passover *passover; /* what each worker cannot run */
	struct coord_config cfg;
	struct coord_clock clock;
	struct coord_hooks hooks;
	const struct lease_request *sizing; /* the request being sized, during coord_lease */
	uint64_t changes;                   /* changes whose replies wait for a flush */
	struct coord_metrics counted;       /* the counters of coord_metrics(), since the start */
	uint8_t lease_key[SIPHASH_KEY_SIZE]; /* lease tags' (coord_claim.c), kept in the store */
};

/* Reads the key of lease tags from the store, or makes one and stores it (a new store), so that
 * leases read back after a restart keep their tags (coord_claim.c). TALLY_EDB, TALLY_EIO. */
TALLY_WUR enum tally_err coord_key_load(struct coord *c);
/* Tells the HTTP layer that new work may be leasable (its long polls wake). */
void coord_wake(struct coord *c);
/* Tells the HTTP layer that a job finished or was cancelled. */
void coord_job_ended(struct coord *c);
/* Tells the HTTP layer when the next lease may expire, so that long polls wake to take it. */
void coord_tell_expiry(struct coord *c);
/* Returns TALLY_EQUOTA when owner has as many unfinished jobs as the limit, TALLY_EFULL when
 * every owner together has, TALLY_OK otherwise (coord_quota.c). */
TALLY_WUR enum tally_err coord_admit(struct coord *c, const char *owner);
/* Fills m's jobs by owner and fair share from the live state (coord_quota.c). */
void coord_owner_metrics(struct coord *c, struct coord_metrics *m);
/* A reply that reports state must not get ahead of the store: while changes are uncommitted,
 * it waits for the flush like a reply reporting a change of its own (c->changes moves). */
void coord_reported(struct coord *c);

#endif
