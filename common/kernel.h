/* Kernels: the computations tally maps over batches. A kernel is a table entry (name, version,
 * count keys) with pure functions: run one batch, check counts against a lease, derive a result.
 * No I/O anywhere in a kernel; the server and the worker both link this. */
#ifndef TALLY_KERNEL_H
#define TALLY_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"

#define KERNEL_NAME_MAX 32 /* bytes, with the NUL */
#define KERNEL_MAX_KEYS 8

struct kernel {
	const char *name;
	unsigned version;
	size_t nkeys;
	const char *const *keys; /* count names, in the order of every counts array */
	/* Adds the counts of one batch (samples [first, first + n) of the job) to out[nkeys].
	 * Pure: depends on nothing but its arguments. stop may be NULL; when *stop becomes
	 * non-zero the kernel may return early, leaving out meaningless (the caller discards it):
	 * a batch can be as large as a job, and a worker must still answer a lost lease or SIGTERM. */
	void (*run)(uint64_t seed, uint64_t batch, uint64_t first, uint64_t n, const int *stop,
		    uint64_t *out);
	/* Checks counts summed over a lease of `samples` samples. Returns NULL when they can be right,
	 * else a static message naming the problem. */
	const char *(*check)(const uint64_t *counts, uint64_t samples);
	/* Returns a new reference to the result object for the given job counts, or NULL when none
	 * can be derived yet (or out of memory). */
	json_t *(*result)(const uint64_t *counts);
};

/* Returns the kernel called name, or NULL. The pointer is static. */
const struct kernel *kernel_find(const char *name);
/* Returns the i-th kernel (NULL past the end), for listing. */
const struct kernel *kernel_at(size_t i);

/* The number of batches of a job: ceil(samples / batch_size). batch_size > 0. */
uint64_t kernel_batches(uint64_t samples, uint64_t batch_size);
/* The number of samples in batches [first_batch, first_batch + count) of a job. */
uint64_t kernel_range_samples(uint64_t samples, uint64_t batch_size, uint64_t first_batch,
			      uint64_t count);
/* Runs batches [first_batch, first_batch + count) of a job and adds their counts to out[nkeys]. */
void kernel_run_range(const struct kernel *k, uint64_t seed, uint64_t samples, uint64_t batch_size,
		      uint64_t first_batch, uint64_t count, uint64_t *out);

/* Decodes a counts object {"key": n, ...} holding exactly k's keys, each an integer
 * 0..2^63-1, into out[nkeys]. On error returns TALLY_EINVAL and writes a message naming the key
 * into err. */
TALLY_WUR enum tally_err kernel_counts_decode(const struct kernel *k, const json_t *obj,
					      uint64_t *out, char *err, size_t errlen);
/* Returns a new reference to the counts object for out[nkeys], or NULL when out of memory. */
json_t *kernel_counts_encode(const struct kernel *k, const uint64_t *counts);

#endif
