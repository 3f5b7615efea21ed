/* Unfinished jobs by owner: for each owner with a job in the job table (jobtab.h), how many of
 * its jobs are queued and how many running, and the same over every owner. It is what a quota
 * reads at submit (coord_submit: O(1) expected, one hash lookup) and what GET /metrics reports
 * by owner, so neither walks the jobs.
 *
 * The table keeps an entry for each owner with a job in memory (finished or not: finished jobs
 * stay until written), referenced by those jobs, so that counting a job's change of state
 * never allocates: only owners_ref() can fail. Owner "" is an open coordinator's, one owner
 * like any other. Pure C, no I/O. Not thread-safe. */
#ifndef TALLY_OWNERS_H
#define TALLY_OWNERS_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "htab.h"
#include "job.h"

struct owner_tally {
	struct htab_node node; /* first: the table's node is its entry */
	char owner[WIRE_USER_NAME_MAX];
	size_t jobs;              /* in the job table, finished or not: its references */
	uint64_t queued, running; /* of those, unfinished */
};

struct owners {
	struct htab byname;
	uint64_t queued, running; /* over every owner */
};

/* Makes o empty. Allocates nothing; can't fail. */
void owners_init(struct owners *o);
/* Frees every entry and leaves o empty. Can't fail. */
void owners_release(struct owners *o);
/* Sets *out to owner's entry (made when it has none, counting nothing) and adds a reference to
 * it for one job. Returns TALLY_OK, or TALLY_ENOMEM with o unchanged. */
TALLY_WUR enum tally_err owners_ref(struct owners *o, const char *owner,
				    struct owner_tally **out);
/* Drops one job's reference to e; the entry is freed with its last (its counts must then be
 * 0). Can't fail. */
void owners_unref(struct owners *o, struct owner_tally *e);
/* Counts one job of e in state (delta 1) or no longer (delta -1); only JOB_QUEUED and
 * JOB_RUNNING are counted, other states change nothing. Can't fail. */
void owners_count(struct owners *o, struct owner_tally *e, enum job_state state, int delta);
/* Returns owner's queued and running jobs, O(1) expected. */
uint64_t owners_unfinished(const struct owners *o, const char *owner);
/* Returns the queued and running jobs of every owner. */
uint64_t owners_total(const struct owners *o);
/* Calls fn(ctx, e) for every owner's entry (borrowed for the call), in no order. */
void owners_each(const struct owners *o, void (*fn)(void *ctx, const struct owner_tally *e),
		 void *ctx);

#endif
