/* Lease policy: how many batches a worker gets. Leases aim at about target_ms of the worker's
 * measured speed, so fast workers take big ranges and slow ones small ranges. Pure C: no clock
 * of its own (callers pass times), no HTTP, no SQL. Not thread-safe.
 *
 * Every measured worker's rate is remembered, in a hash table by name (common/htab), bounded by
 * memory and not by a fixed table:
 *   - a worker not measured for SCHED_IDLE_MS is forgotten (at the next sched_observe);
 *   - past SCHED_WORKERS_MAX workers, the one measured longest ago is forgotten;
 *   - out of memory, a new worker is not remembered.
 * An entry is about 100 bytes (a 64-character name: 150), so the cap is 26-40 MB at the worst;
 * 10,000 workers take about 1 MB. Forgetting is never wrong, only slower: that worker's next
 * lease is sized by SCHED_DEFAULT_RATE, and the one after by its measured speed again. */
#ifndef TALLY_SCHED_H
#define TALLY_SCHED_H

#include <stddef.h>
#include <stdint.h>

#define SCHED_WORKERS_MAX 262144           /* workers whose rate is remembered at most */
#define SCHED_IDLE_MS (24LL * 3600 * 1000) /* a rate not measured again for this long is dropped */
#define SCHED_DEFAULT_RATE 2.0e7           /* samples/s assumed for a worker not yet measured */

struct sched;

/* Returns a new policy aiming leases at target_ms of work, or NULL when out of memory. */
struct sched *sched_new(int64_t target_ms);
/* Frees s and every rate it holds. Accepts NULL. */
void sched_free(struct sched *s);

/* Returns the batch count for a lease of a job with batch_size to worker: from 1 to remaining,
 * and at most max_batches when that is non-zero. Can't fail. */
uint64_t sched_lease_batches(struct sched *s, const char *worker, uint64_t batch_size,
			     uint64_t remaining, uint64_t max_batches);
/* Records that worker computed samples in elapsed_ms (from grant to complete), at time now (ms,
 * never decreasing from call to call), and forgets the workers idle since SCHED_IDLE_MS. Can't
 * fail: out of memory, a worker not yet known stays unknown. */
void sched_observe(struct sched *s, const char *worker, uint64_t samples, int64_t elapsed_ms,
		   int64_t now);
/* Returns the worker's current rate estimate in samples/s (SCHED_DEFAULT_RATE when unknown). */
double sched_rate(const struct sched *s, const char *worker);
/* Returns the worker's measured rate in samples/s, or 0 when it has not been measured. */
double sched_known_rate(const struct sched *s, const char *worker);
/* Returns how many workers' rates are remembered. */
size_t sched_size(const struct sched *s);

#endif
