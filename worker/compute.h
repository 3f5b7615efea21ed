/* The compute pool: runs a lease's batches on N threads and sums their counts. Batches are handed
 * out one at a time from a shared counter; since counts are integers summed per batch, the total
 * is the same whatever the thread count or order. */
#ifndef TALLY_COMPUTE_H
#define TALLY_COMPUTE_H

#include <stdint.h>
#include "err.h"
#include "exec.h"
#include "kernel.h"
#include "resident.h"

struct compute;

/* A lease's work: batches [first, first + count) of a job, with a kernel that has code here and
 * its per-job state, or with a program (exec). Borrowed until compute_finish. */
struct compute_work {
	const struct kernel *k;      /* NULL with exec */
	void *state;                 /* k's, from kernel_open */
	const struct exec_job *exec; /* NULL with k */
	struct resident *resident;   /* exec's programs when its job is resident: thread i runs
				      * on slot i (the pool has at most as many threads) */
	uint64_t seed, samples, batch_size, first, count;
};

/* Starts computing the work on nthreads threads. Returns NULL when out of memory or threads
 * cannot start. */
struct compute *compute_start(const struct compute_work *w, int nthreads);
/* Waits up to timeout_ms for the work to finish. Returns 1 when it has. */
int compute_wait(struct compute *c, int64_t timeout_ms);
/* Asks the threads to stop after their current batch. */
void compute_abort(struct compute *c);
/* Joins the threads, writes the summed counts and their names into out and keys (only meaningful
 * when the work finished without abort; either may be NULL), and frees c. Returns 0, or -1 when
 * a batch failed (err: the first failure's message; the others were stopped). */
int compute_finish(struct compute *c, struct count_keys *keys, uint64_t *out, char *err,
		   size_t errlen);

#endif
