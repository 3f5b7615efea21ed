/* The pass-over memory: the jobs each worker has said it cannot run (an exec job whose program it
 * does not allow or have: a fail with "cannot_run", or an older worker's skip_jobs), so that
 * lease choice passes them over for that worker and it gets the work it can run next.
 *
 * Bounds, so that no worker (nor a flood of worker names) can make it grow without end:
 *   - at most PASSOVER_JOBS_MAX jobs a worker: past that its least recently added goes;
 *   - at most PASSOVER_WORKERS_MAX workers: past that the one least recently added to goes,
 *     whole; memory is made only for a worker that passed something over, and freed with its
 *     last job;
 *   - an entry lives PASSOVER_TTL_MS from when it was last added (a worker restarted with
 *     another allowlist gets the job again then); a worker's expired entries go when it is
 *     looked up, a worker not added to for that long goes whole at any call;
 *   - a job that ended is forgotten for every worker (passover_forget).
 * At the worst, PASSOVER_WORKERS_MAX * PASSOVER_JOBS_MAX entries of about 100 bytes: 26 MB.
 *
 * Forgetting is never wrong, only slower: a job forgotten by eviction or expiry is granted to the
 * worker once more, which gives it back again. Lease choice passes over at most
 * PASSOVER_JOBS_MAX jobs a worker because of it, each looked up in O(1) expected
 * (passover_has).
 *
 * Pure C: times come in as arguments (ms). Not thread-safe. */
#ifndef TALLY_PASSOVER_H
#define TALLY_PASSOVER_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define PASSOVER_JOBS_MAX 256
#define PASSOVER_WORKERS_MAX 1024
#define PASSOVER_TTL_MS (5 * 60 * 1000)

struct passover;
struct passover_worker; /* one worker's jobs */

/* Returns a new, empty memory, or NULL when out of memory. */
struct passover *passover_new(void);
/* Frees it. Accepts NULL. */
void passover_free(struct passover *p);

/* Remembers at now that worker cannot run job (again: its time is renewed), evicting as said
 * above. Returns TALLY_OK, or TALLY_ENOMEM with the job not remembered (nothing else lost). */
TALLY_WUR enum tally_err passover_add(struct passover *p, const char *worker, int64_t job,
				      int64_t now);
/* Returns worker's jobs, its expired ones dropped first, or NULL when it has none. Borrowed
 * until the next call that changes p. Can't fail. */
const struct passover_worker *passover_of(struct passover *p, const char *worker, int64_t now);
/* Returns 1 when job is among w's (w may be NULL: none). O(1) expected. */
int passover_has(const struct passover_worker *w, int64_t job);
/* Forgets job for every worker (it ended). O(the workers that passed it over) expected. */
void passover_forget(struct passover *p, int64_t job);

/* How many jobs are remembered over all workers, and for how many workers. */
size_t passover_size(const struct passover *p);
size_t passover_workers(const struct passover *p);

#endif
