/* Kernel count: counts samples and nothing else. The cheapest possible batch, for smoke-testing a
 * fleet and measuring the coordinator rather than the kernel. */
#include "kernel.h"

static void count_run(uint64_t seed, uint64_t batch, uint64_t first, uint64_t n,
		      const int *stop, uint64_t *out)
{
	(void)stop;
	(void)seed;
	(void)batch;
	(void)first;
	out[0] += n;
}

static const char *count_check(const uint64_t *counts, uint64_t samples)
{
	return counts[0] == samples ? NULL : "counts.samples: not the lease's sample count";
}

static json_t *count_result(const uint64_t *counts)
{
	return json_pack("{s:I}", "samples", (json_int_t)counts[0]);
}

static const char *const count_keys[] = { "samples" };

const struct kernel kernel_count = {
	.name = "count",
	.version = 1,
	.nkeys = 1,
	.keys = count_keys,
	.run = count_run,
	.check = count_check,
	.result = count_result,
};
