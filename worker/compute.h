/* The compute pool: runs a lease's batches on N threads and sums their counts. Batches are handed
 * out one at a time from a shared counter; since counts are integers summed per batch, the total
 * is the same whatever the thread count or order. */
#ifndef TALLY_COMPUTE_H
#define TALLY_COMPUTE_H

#include <stdint.h>
#include "err.h"
#include "kernel.h"

struct compute;

/* Starts computing batches [first_batch, first_batch + count) of a job on nthreads threads.
 * Returns NULL when out of memory or threads cannot start. */
struct compute *compute_start(const struct kernel *k, uint64_t seed, uint64_t samples,
			      uint64_t batch_size, uint64_t first_batch, uint64_t count,
			      int nthreads);
/* Waits up to timeout_ms for the work to finish. Returns 1 when it has. */
int compute_wait(struct compute *c, int64_t timeout_ms);
/* Asks the threads to stop after their current batch. */
void compute_abort(struct compute *c);
/* Joins the threads, writes the summed counts into out[nkeys] (only meaningful when the work
 * finished without abort), and frees c. */
void compute_finish(struct compute *c, uint64_t *out);

#endif
