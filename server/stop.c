/* Early stopping (stop.h): per-segment counts of a job's done leases, summed into prefixes and
 * judged by the kernel's stderr once complete. */
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "kernel.h"
#include "stop.h"

struct stop *stop_new(void)
{
	return t_calloc(1, sizeof(struct stop));
}

void stop_free(struct stop *st)
{
	free(st);
}

void stop_add(struct stop *st, uint64_t first, uint64_t count, const uint64_t *counts)
{
	struct stop_seg *g = &st->seg[job_stop_segment(first)];
	for (size_t k = 0; k < KERNEL_MAX_KEYS; k++)
		g->counts[k] += counts[k];
	g->done += count;
}

void stop_take(struct stop *st, uint64_t first, uint64_t count, const uint64_t *counts)
{
	size_t i = job_stop_segment(first);
	struct stop_seg *g = &st->seg[i];
	for (size_t k = 0; k < KERNEL_MAX_KEYS; k++)
		g->counts[k] -= counts[k];
	g->done -= count;
	if (i < st->next)
		st->next = i; /* to be evaluated again once complete */
}

uint64_t stop_cap(uint64_t first, uint64_t count)
{
	uint64_t end = job_stop_boundary(job_stop_segment(first) + 1);
	return count > end - first ? end - first : count;
}

int stop_eval(struct stop *st, const struct job *job, uint64_t *counts, uint64_t *batches)
{
	uint64_t total = job->batches_total;

	while (st->next + 1 < JOB_STOP_SEGMENTS) {
		uint64_t lo = job_stop_boundary(st->next), hi = job_stop_boundary(st->next + 1);
		double e;

		if (hi >= total || st->seg[st->next].done < hi - lo)
			return 0;
		st->next++;
		memset(counts, 0, KERNEL_MAX_KEYS * sizeof *counts);
		for (size_t i = 0; i < st->next; i++)
			for (size_t k = 0; k < KERNEL_MAX_KEYS; k++)
				counts[k] += st->seg[i].counts[k];
		/* A prefix too small to estimate from, or whose estimate is degenerate (a stderr
		 * of 0: every sample in, or none), never stops a job. */
		if (job_range_samples(job->spec.samples, job->spec.batch_size, 0, hi) <
		    STOP_MIN_SAMPLES)
			continue;
		if (!kernel_stderr(job->spec.kernel, &job->keys, counts, &e) && e > 0 &&
		    e <= job->spec.target_stderr) {
			*batches = hi;
			return 1;
		}
	}
	return 0;
}
