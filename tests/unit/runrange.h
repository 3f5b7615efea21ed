/* Tests' reference: a range of a job's batches computed in this process, with no worker. */
#ifndef TALLY_TEST_RUNRANGE_H
#define TALLY_TEST_RUNRANGE_H

#include <stdint.h>
#include "kernel.h"

/* Runs batches [first_batch, first_batch + count) of a job and adds their counts to
 * out[nkeys]. */
static inline void kernel_run_range(const struct kernel *k, uint64_t seed, uint64_t samples,
				    uint64_t batch_size, uint64_t first_batch, uint64_t count,
				    uint64_t *out)
{
	for (uint64_t b = first_batch; b < first_batch + count; b++) {
		uint64_t first = b * batch_size;
		if (first >= samples)
			break;
		uint64_t n = samples - first < batch_size ? samples - first : batch_size;
		char err[256];
		if (kernel_run_batch(k, NULL, seed, b, first, n, NULL, out, err, sizeof err))
			return;
	}
}

#endif
