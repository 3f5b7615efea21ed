/* tally's kernel interface, ABI version 1: the one header a kernel plug-in includes.
 *
 * A kernel is the map function of a job. It turns one batch (samples [first, first + samples)
 * of a job with a given seed) into counts: non-negative integers under fixed names. tally adds up
 * the counts of every batch, exactly once each.
 *
 * The rule every kernel keeps: a batch's counts depend on nothing but (params, seed, batch,
 * first, samples). Not on the thread, the machine, the time, or how often the batch ran. That is
 * what makes a job's totals bit-identical whatever its workers did, and checkable by anyone.
 * When a kernel's counts for the same input change, its version must change: a job is computed
 * with one version only.
 *
 * A plug-in is a shared object (cc -shared -fPIC) that exports one function,
 *
 *     const struct tally_kernel *tally_kernel_v1(void);
 *
 * returning a table that lives as long as the process. tally-worker and tally-server load every
 * *.so in their --kernel-dir at start. docs/kernels.md walks through an example.
 *
 * This header depends on the C standard library only. Everything a kernel is given (params) and
 * gives back (a result) that is structured is JSON text. */
#ifndef TALLY_KERNEL_ABI_H
#define TALLY_KERNEL_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TALLY_KERNEL_ABI 1       /* the version of this interface: struct tally_kernel.abi */
#define TALLY_KERNEL_PARAMS_UNKNOWN (-2) /* open(): a member of params it does not know */
#define TALLY_KERNEL_NAME_MAX 32 /* a kernel's name with its NUL: 1-31 of [a-z0-9_-] */
#define TALLY_KERNEL_KEYS_MAX 8  /* count names of a kernel */
#define TALLY_KERNEL_KEY_MAX 32  /* a count name with its NUL: 1-31 of [a-z0-9_], not a digit first */
#define TALLY_KERNEL_RESULT_MAX 1024 /* bytes a result's JSON text may take, with the NUL */

/* One batch of a job. */
struct tally_batch {
	uint64_t seed;    /* the job's seed */
	uint64_t batch;   /* the batch's index in the job, from 0 */
	uint64_t first;   /* its first sample: batch * the job's batch_size */
	uint64_t samples; /* how many samples: the job's batch_size, fewer in its last batch */
	/* Becomes non-zero when the batch's counts are no longer wanted (the lease was lost, the
	 * worker is stopping). A long batch should poll it and may then return at once: counts
	 * returned after a stop are thrown away. */
	const volatile int *stop;
};

struct tally_kernel {
	unsigned abi;     /* TALLY_KERNEL_ABI */
	const char *name; /* what jobs ask for: {"kernel": name} */
	unsigned version; /* from 1; bump it whenever the counts of a batch change */
	const char *const *keys; /* the count names, NULL-terminated: 1 to TALLY_KERNEL_KEYS_MAX */

	/* Optional (NULL: the kernel takes no params; a job that gives some is refused).
	 * Reads a job's params (its JSON object, as text, "{}" when it gave none) and makes the
	 * state that every run() of that job gets. Returns 0, or -1 with a message naming the
	 * problem in err (the job is refused when the coordinator has the kernel; otherwise its
	 * batches fail with that message), or TALLY_KERNEL_PARAMS_UNKNOWN in the same way when
	 * the problem is a member it does not know (the refusal's code is then unknown_field, as
	 * for a misspelt field of the job itself; any other non-zero return is invalid_field). */
	int (*open)(const char *params, void **state, char *err, size_t errlen);
	/* Optional: frees what open() made. */
	void (*close)(void *state);

	/* Required. Adds the batch's counts to counts[i], i in the order of keys. Called from
	 * several threads at once with the same state, which it must therefore only read.
	 * Returns 0, or -1 with a message in err when the batch could not be computed (the lease
	 * fails and is retried elsewhere); never -1 for an answer it merely dislikes. */
	int (*run)(void *state, const struct tally_batch *b, uint64_t *counts, char *err,
		   size_t errlen);

	/* Optional. Checks counts summed over a lease of `samples` samples: returns NULL when
	 * they can be right, else a static message naming the problem (the lease's counts are
	 * then refused). Run by the coordinator. */
	const char *(*check)(const uint64_t *counts, uint64_t samples);

	/* Optional. Writes the result a job's counts give, as one JSON object, into out (a NUL-
	 * terminated text of at most outlen bytes). Returns 0, or -1 when no result can be derived
	 * yet (no samples). A member "stderr" (a number: the result's standard error) lets jobs
	 * with target_stderr stop early. Run by the coordinator. */
	int (*result)(const uint64_t *counts, char *out, size_t outlen);
};

/* What a plug-in exports (and tally looks up by name). */
const struct tally_kernel *tally_kernel_v1(void);
typedef const struct tally_kernel *(*tally_kernel_v1_fn)(void);
#define TALLY_KERNEL_ENTRY "tally_kernel_v1"

#ifdef __cplusplus
}
#endif

#endif
