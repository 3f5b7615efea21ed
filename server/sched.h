/* Lease policy: how many batches a worker gets. Leases aim at about target_ms of the worker's
 * measured speed, so fast workers take big ranges and slow ones small ranges. Pure C: no clock
 * of its own (callers pass durations), no HTTP, no SQL. */
#ifndef TALLY_SCHED_H
#define TALLY_SCHED_H

#include <stdint.h>

#define SCHED_WORKERS 1024          /* workers whose rate is remembered; the stalest is evicted */
#define SCHED_DEFAULT_RATE 2.0e7    /* samples/s assumed for a worker not yet measured */

struct sched;

/* Returns a new policy aiming leases at target_ms of work, or NULL when out of memory. */
struct sched *sched_new(int64_t target_ms);
void sched_free(struct sched *s);

/* Returns the batch count for a lease of a job with batch_size to worker: from 1 to remaining,
 * and at most max_batches when that is non-zero. Can't fail. */
uint64_t sched_lease_batches(struct sched *s, const char *worker, uint64_t batch_size,
			     uint64_t remaining, uint64_t max_batches);
/* Records that worker computed samples in elapsed_ms (from grant to complete), at time now. */
void sched_observe(struct sched *s, const char *worker, uint64_t samples, int64_t elapsed_ms,
		   int64_t now);
/* Returns the worker's current rate estimate in samples/s (SCHED_DEFAULT_RATE when unknown). */
double sched_rate(const struct sched *s, const char *worker);
/* Returns the worker's measured rate in samples/s, or 0 when it has not been measured. */
double sched_known_rate(const struct sched *s, const char *worker);

#endif
