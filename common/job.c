/* Names of job states and small derived quantities. */
#include <string.h>
#include "job.h"

static const char *const job_state_names[] = { "queued", "running", "succeeded", "failed",
					       "cancelled" };

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
	return kernel_range_samples(l->spec.samples, l->spec.batch_size, l->first_batch,
				    l->batch_count);
}
