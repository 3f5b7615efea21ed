/* Early stopping (job_spec.target_stderr): a job's done batches and their counts in each prefix
 * segment (job.h: segment i holds batches [job_stop_boundary(i), job_stop_boundary(i + 1))), and
 * the decision to stop. Prefixes are evaluated in order, each once it is complete, so a job
 * stops at the same prefix with the same counts whatever order its leases finished in.
 *
 * Invariant: every segment before `next` is complete and was evaluated; a done lease lies in
 * one segment (no lease straddles a boundary: stop_cap()).
 *
 * Pure C, no I/O. Not thread-safe. */
#ifndef TALLY_STOP_H
#define TALLY_STOP_H

#include <stddef.h>
#include <stdint.h>
#include "job.h"

#define STOP_MIN_SAMPLES 1000 /* the smallest prefix an early stop is decided on */

struct stop_seg {
	uint64_t done; /* batches */
	uint64_t counts[KERNEL_MAX_KEYS];
};

struct stop {
	struct stop_seg seg[JOB_STOP_SEGMENTS];
	size_t next; /* the first segment not yet evaluated */
};

/* Returns a new, empty set of segments (free it with stop_free()), or NULL when out of memory. */
struct stop *stop_new(void);
void stop_free(struct stop *st);

/* Adds a done lease's counts (of batches [first, first + count)) to its segment. Can't fail. */
void stop_add(struct stop *st, uint64_t first, uint64_t count, const uint64_t *counts);
/* Takes them back out (the lease was discarded); its segment is evaluated again once it is
 * complete again. Can't fail. */
void stop_take(struct stop *st, uint64_t first, uint64_t count, const uint64_t *counts);
/* Returns count, or less so that batches [first, first + count) stay in one segment. */
uint64_t stop_cap(uint64_t first, uint64_t count);

/* Evaluates the prefixes of running job `job` (whose target_stderr is set) that have become
 * complete, in order, and returns 1 at the first whose result has a stderr above 0 and at most
 * the target: counts (KERNEL_MAX_KEYS) are then that prefix's counts and *batches its size.
 * Returns 0 when no prefix stops it (yet). A prefix under STOP_MIN_SAMPLES samples never stops
 * a job, and the job's last batch ends none: a job that gets there simply finishes. */
int stop_eval(struct stop *st, const struct job *job, uint64_t *counts, uint64_t *batches);

#endif
