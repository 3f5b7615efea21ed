/* Names of job states and small derived quantities. */
#include <stdio.h>
#include <string.h>
#include "job.h"
#include "num.h"

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

json_t *job_seed_json(uint64_t seed)
{
	char s[24];
	if (seed <= INT64_MAX)
		return json_integer((json_int_t)seed);
	snprintf(s, sizeof s, "%llu", (unsigned long long)seed);
	return json_string(s);
}

int job_seed_parse(const json_t *v, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
		return num_parse_u64(json_string_value(v), 0, UINT64_MAX, out);
	return -1;
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
