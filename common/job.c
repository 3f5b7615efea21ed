/* Names of job states and small derived quantities. */
#include <stdio.h>
#include <string.h>
#include "job.h"
#include "num.h"

static const char *const job_state_names[] = { "queued", "running", "succeeded", "failed",
					       "cancelled" };

const char *job_params(const struct job_spec *s)
{
	return s->params && s->params[0] ? s->params : "{}";
}

const char *job_error(const struct job *j)
{
	return j->error ? j->error : "";
}

const char *job_state_name(enum job_state s)
{
	return job_state_names[s];
}

int job_state_parse(const char *s, enum job_state *out)
{
	for (int i = 0; i < 5; i++) {
		if (!strcmp(job_state_names[i], s)) {
			*out = (enum job_state)i;
			return 0;
		}
	}
	return -1;
}

int job_is_final(enum job_state s)
{
	return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

uint64_t lease_samples(const struct lease *l)
{
	return job_range_samples(l->spec.samples, l->spec.batch_size, l->first_batch,
				    l->batch_count);
}

uint64_t job_stop_boundary(size_t i)
{
	if (i <= 8)
		return i;
	return (uint64_t)((i - 8) % 4 + 4) << ((i - 8) / 4 + 1);
}

size_t job_stop_segment(uint64_t batch)
{
	unsigned e;
	if (batch < 8)
		return (size_t)batch;
	e = 63 - (unsigned)__builtin_clzll(batch) - 2; /* batch = m * 2^e, m in [4, 8) */
	return 8 + (size_t)(e - 1) * 4 + (size_t)((batch >> e) - 4);
}

uint64_t job_batches(uint64_t samples, uint64_t batch_size)
{
	return samples / batch_size + (samples % batch_size != 0);
}

uint64_t job_range_samples(uint64_t samples, uint64_t batch_size, uint64_t first_batch,
			      uint64_t count)
{
	uint64_t lo = first_batch * batch_size;
	uint64_t hi = (first_batch + count) * batch_size;
	if (lo >= samples)
		return 0;
	if (hi > samples)
		hi = samples;
	return hi - lo;
}
