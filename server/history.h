/* Each recent job's progress over time, for the dashboard's plot of the estimate converging: a
 * bounded list of (time, samples done, counts) points per job, in memory only. A job keeps at
 * most HISTORY_POINTS points: when full, every other one goes and points are taken half as
 * often, so the list always spans the whole run and ends at the latest state. At most
 * HISTORY_JOBS jobs are kept, the most recent: past that, the owner holding the most slots gives
 * up its oldest job's (lowest id), which may be the new job itself (then it gets none); so one
 * client's many jobs replace their own points, not another's. Pure C. Not thread-safe. */
#ifndef TALLY_HISTORY_H
#define TALLY_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include "job.h"

#define HISTORY_POINTS 200
#define HISTORY_JOBS 64

struct history_point {
	int64_t t; /* ms since the epoch */
	uint64_t samples;
	uint64_t counts[KERNEL_MAX_KEYS];
};

struct history;

/* Returns an empty history, or NULL when out of memory. */
struct history *history_new(void);
void history_free(struct history *h);
/* Records job_id's state at t; owner is the name of the job's owner. A job given no slot, or out
 * of memory, the point is dropped. */
void history_add(struct history *h, int64_t job_id, const char *owner, int64_t t,
		 uint64_t samples, const uint64_t *counts);
/* Forgets job_id's points (a deleted job). Can't fail. */
void history_remove(struct history *h, int64_t job_id);
/* Returns job_id's points, oldest first (borrowed until the next add), and sets *n; NULL with
 * *n = 0 when it has none. */
const struct history_point *history_get(const struct history *h, int64_t job_id, size_t *n);

#endif
